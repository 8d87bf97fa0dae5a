// Metrics against a naive reference, including ties.
#include "coco/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace coco {
namespace {

TEST(Metrics, HitRateNdcgMrrMatchHandComputation) {
  // Ranks 0, 1, 4, 12: HR@5 = 3/4, NDCG@5 = (1 + 1/log2(3) + 1/log2(6)) / 4.
  const auto t = compute_metrics({0, 1, 4, 12}, {5, 10});
  EXPECT_DOUBLE_EQ(t.get("HR@5"), 0.75);
  EXPECT_NEAR(t.get("NDCG@5"), (1 + 1 / std::log2(3.0) + 1 / std::log2(6.0)) / 4, 1e-12);
  EXPECT_DOUBLE_EQ(t.get("HR@10"), 0.75);
  EXPECT_NEAR(t.get("MRR"), (1 + 0.5 + 0.2 + 1.0 / 13) / 4, 1e-12);
}

TEST(Metrics, NamesFollowCutoffs) {
  EXPECT_EQ(metric_names({1, 20}),
            (std::vector<std::string>{"HR@1", "NDCG@1", "HR@20", "NDCG@20", "MRR"}));
}

}  // namespace
}  // namespace coco
