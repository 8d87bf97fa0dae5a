// Fusion of the behaviour representation h_rs with the aligned LLM knowledge h_aligned
// (METHOD.md step 7) into the user representation h_u that scores items.
// Not the scoring itself (h_u · E_iᵀ stays with the backbone's item table).
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "coco/config/config.h"

namespace coco {

enum class FusionMode {
  kGate,    // h_rs + σ(W_g [h_rs ; h_aligned]) ⊙ h_aligned (default)
  kSum,     // h_rs + h_aligned
  kConcat,  // W_c [h_rs ; h_aligned]
};

struct FusionOptions {
  explicit FusionOptions(int64_t hidden) : hidden_(hidden) {}
  TORCH_ARG(int64_t, hidden);  // d
  TORCH_ARG(FusionMode, mode) = FusionMode::kGate;

 public:  // TORCH_ARG leaves the struct private
  /// Reads mode ("gate" | "sum" | "concat"); d comes from the backbone.
  static FusionOptions from_config(ConfigNode& node, int64_t hidden);
};

class FusionImpl : public torch::nn::Cloneable<FusionImpl> {
 public:
  explicit FusionImpl(FusionOptions options);
  void reset() override;

  torch::Tensor forward(const torch::Tensor& h_rs,        // [B, d]
                        const torch::Tensor& h_aligned);  // [B, d] → h_u [B, d]

  FusionOptions options;

 private:
  torch::nn::Linear proj_{nullptr};  // W_g (gate) or W_c (concat): 2d → d; none for sum
};
TORCH_MODULE(Fusion);

}  // namespace coco
