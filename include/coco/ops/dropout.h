// Inverted dropout with a fast mask generator. libtorch 1.13's CPU bernoulli_ draws each
// element through a distribution object (~15 ns/element), more than the rest of a SASRec
// step costs; here one draw from the torch RNG seeds a xorshift stream, so masks stay
// reproducible under torch::manual_seed and checkpointed RNG state.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

namespace coco {

/// Inverted-dropout multipliers: 1 / (1 - p) with probability 1 - p, else 0.
torch::Tensor dropout_mask(torch::IntArrayRef sizes, double p, const torch::TensorOptions& options);

/// x * mask / (1 - p) with mask ~ Bernoulli(1 - p); identity when !training or p == 0.
torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool training);

class FastDropoutImpl : public torch::nn::Cloneable<FastDropoutImpl> {
 public:
  explicit FastDropoutImpl(double rate = 0.5) : p(rate) {}
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& x) { return fast_dropout(x, p, is_training()); }
  double p;
};
TORCH_MODULE(FastDropout);

}  // namespace coco
