// Counting NaN and Inf values.
#include "coco/ops/finite.h"

#include <fmt/format.h>
#include <torch/torch.h>

namespace coco {

std::string describe_nonfinite(const torch::Tensor& t) {
  if (!t.defined() || !t.is_floating_point() || t.numel() == 0) return "";
  torch::NoGradGuard no_grad;
  const auto finite = torch::isfinite(t);
  if (finite.all().item<bool>()) return "";
  const int64_t nan = torch::isnan(t).sum().item<int64_t>();
  const int64_t inf = t.numel() - finite.sum().item<int64_t>() - nan;
  const int64_t first = torch::logical_not(finite).flatten().nonzero()[0][0].item<int64_t>();
  std::string what;
  if (nan > 0) what = fmt::format("{} NaN", nan);
  if (inf > 0) what += fmt::format("{}{} Inf", what.empty() ? "" : " and ", inf);
  return fmt::format("{} value{} (the first at flat index {})", what, nan + inf > 1 ? "s" : "",
                     first);
}

}  // namespace coco
