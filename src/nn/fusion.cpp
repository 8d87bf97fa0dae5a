// Gate, sum and concat fusion of h_rs and h_aligned.
#include "coco/nn/fusion.h"

#include <torch/torch.h>

#include <string>

#include "coco/common/error.h"

namespace coco {

FusionOptions FusionOptions::from_config(ConfigNode& node, int64_t hidden) {
  FusionOptions o(hidden);
  o.mode(node.get_enum(
      "mode", o.mode(),
      {{"gate", FusionMode::kGate}, {"sum", FusionMode::kSum}, {"concat", FusionMode::kConcat}}));
  node.finish();
  return o;
}

FusionImpl::FusionImpl(FusionOptions options_) : options(options_) { reset(); }

void FusionImpl::reset() {
  const int64_t d = options.hidden();
  if (d < 1) throw ConfigError("fusion: hidden must be >= 1, got " + std::to_string(d));
  if (options.mode() != FusionMode::kSum) {
    proj_ = register_module(options.mode() == FusionMode::kGate ? "gate" : "concat",
                            torch::nn::Linear(2 * d, d));
  }
}

torch::Tensor FusionImpl::forward(const torch::Tensor& h_rs, const torch::Tensor& h_aligned) {
  TORCH_CHECK(
      h_rs.dim() == 2 && h_rs.size(1) == options.hidden() && h_aligned.sizes() == h_rs.sizes(),
      "fusion: expected h_rs and h_aligned [B, ", options.hidden(), "], got ", h_rs.sizes(),
      " and ", h_aligned.sizes());
  switch (options.mode()) {
    case FusionMode::kSum:
      return h_rs + h_aligned;
    case FusionMode::kConcat:
      return proj_(torch::cat({h_rs, h_aligned}, 1));
    case FusionMode::kGate:
      break;
  }
  return h_rs + torch::sigmoid(proj_(torch::cat({h_rs, h_aligned}, 1))) * h_aligned;
}

}  // namespace coco
