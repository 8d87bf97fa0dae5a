// describe_nonfinite counts NaN and Inf values and finds the first.
#include "coco/ops/finite.h"

#include <gtest/gtest.h>

#include <limits>

#include <torch/torch.h>

namespace coco {
namespace {

TEST(Finite, DescribesNaNAndInfValues) {
  auto t = torch::zeros({4, 5});
  EXPECT_EQ(describe_nonfinite(t), "");
  t[1][2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(describe_nonfinite(t), "1 NaN value (the first at flat index 7)");
  t[0][3] = -std::numeric_limits<float>::infinity();
  t[3][4] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(describe_nonfinite(t), "1 NaN and 2 Inf values (the first at flat index 3)");
  EXPECT_EQ(describe_nonfinite(t.to(torch::kBFloat16)),
            "1 NaN and 2 Inf values (the first at flat index 3)");
  EXPECT_EQ(describe_nonfinite(torch::ones({3}, torch::kInt64)), "");
}

}  // namespace
}  // namespace coco
