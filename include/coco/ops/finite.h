// Non-finite values (NaN, ±Inf) in a tensor, described for a one-line error: loaded model
// weights and checkpoints are checked with it, so that a damaged file is named where it is
// read, not found as a diverged loss later.
#pragma once

#include <string>

#include <torch/types.h>

namespace coco {

/// "" when every value of `t` is finite (or `t` is not floating-point); otherwise, e.g.,
/// "1 NaN and 2 Inf values (the first at flat index 17)".
std::string describe_nonfinite(const torch::Tensor& t);

}  // namespace coco
