// The decision matrix of CoCo (METHOD.md step 6): per example, alignment quality a_u and
// knowledge utility δ_u, turned by a rule into the mask m_u of examples whose LLM output
// is ineffective. Computed without gradient; not the LoRA gradient masking itself.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "coco/config/config.h"

namespace coco {

/// Which examples get m_u = 1 (and so train the LoRA weights).
enum class DecisionRule {
  kCosine,   // a_u < θ (default)
  kUtility,  // δ_u < 0
  kBoth,     // a_u < θ and δ_u < 0
  kAlways,   // every example (ablation: no contradiction elimination, LoRA always trained)
  kNever,    // no example (ablation: LoRA never trained)
};

struct DecisionOptions {
  TORCH_ARG(DecisionRule, rule) = DecisionRule::kCosine;
  TORCH_ARG(double, theta) = 0.45;  // θ in [−1, 1]

 public:  // TORCH_ARG leaves the struct private
  /// Reads rule ("cosine" | "utility" | "both" | "always" | "never") and theta.
  static DecisionOptions from_config(ConfigNode& node);
};

struct DecisionOutput {
  torch::Tensor a;                // [B] cos(h_aligned, h_rs)
  torch::Tensor delta;            // [B] logp_with − logp_without
  torch::Tensor mask;             // [B] float 0/1: m_u
  torch::Tensor activation_rate;  // [] mean of mask
};

struct CodeActivation {
  torch::Tensor examples;  // [K] float: examples that selected each code
  torch::Tensor active;    // [K] float: of those, examples with m_u = 1
  torch::Tensor rate;      // [K] active / examples (0 for codes nobody selected)
};

class DecisionMatrixImpl : public torch::nn::Cloneable<DecisionMatrixImpl> {
 public:
  explicit DecisionMatrixImpl(DecisionOptions options = {});
  void reset() override {}

  /// Inputs are detached here; the result carries no gradient.
  DecisionOutput forward(const torch::Tensor& h_aligned,      // [B, d]
                         const torch::Tensor& h_rs,           // [B, d]
                         const torch::Tensor& logp_with,      // [B]
                         const torch::Tensor& logp_without);  // [B]

  /// Per-code activation of a mask (the per-code column of the diagnostics).
  static CodeActivation per_code_activation(const torch::Tensor& mask,   // [B] float 0/1
                                            const torch::Tensor& codes,  // [B] int64 in [0, K)
                                            int64_t num_codes);          // K

  DecisionOptions options;
};
TORCH_MODULE(DecisionMatrix);

}  // namespace coco
