// Cross-attention decoupling and alignment (METHOD.md steps 4-5): the prompt positions of
// the LLM's hidden states attend to its text positions, and an MLP maps the pooled result
// into the recommender's space. Not the alignment loss (coco/ops/contrastive_losses.h: info_nce).
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "coco/config/config.h"
#include "coco/ops/dropout.h"

namespace coco {

struct AlignerOptions {
  AlignerOptions(int64_t llm_width, int64_t hidden) : llm_width_(llm_width), hidden_(hidden) {}
  TORCH_ARG(int64_t, llm_width);         // D
  TORCH_ARG(int64_t, hidden);            // d: width of h_aligned
  TORCH_ARG(int64_t, attn_width) = 128;  // d_a
  TORCH_ARG(int64_t, num_heads) = 4;     // must divide d_a
  TORCH_ARG(int64_t, mlp_hidden) = 256;  // width between the two MLP layers
  TORCH_ARG(double, dropout) = 0.1;      // in the MLP, after the LayerNorm

 public:  // TORCH_ARG leaves the struct private
  /// Reads attn_width, num_heads, mlp_hidden and dropout; D and d come from the LLM and the
  /// backbone.
  static AlignerOptions from_config(ConfigNode& node, int64_t llm_width, int64_t hidden);
};

struct AlignerOutput {
  torch::Tensor h_text;     // [B, d_a] cross-attention output, mean over the P prompt queries
  torch::Tensor h_aligned;  // [B, d]
};

class AlignerImpl : public torch::nn::Cloneable<AlignerImpl> {
 public:
  explicit AlignerImpl(AlignerOptions options);
  void reset() override;

  /// States are cast to the module's dtype (the LLM may run in half precision). A row
  /// without any valid text token gets h_text = out-projection bias (finite).
  AlignerOutput forward(const torch::Tensor& prompt_states,  // [B, P, D]
                        const torch::Tensor& text_states,    // [B, T, D]
                        const torch::Tensor& text_mask);     // [B, T] bool: real token
  /// The same on the LLM's whole output H = [prompt ; text]; P = H.size(1) − T.
  AlignerOutput forward_joint(const torch::Tensor& states,      // [B, P + T, D]
                              const torch::Tensor& text_mask);  // [B, T] bool

  AlignerOptions options;

 private:
  torch::nn::Linear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr}, out_proj_{nullptr};
  torch::nn::Linear mlp1_{nullptr}, mlp2_{nullptr};
  torch::nn::LayerNorm mlp_norm_{nullptr};
  FastDropout drop_{nullptr};
};
TORCH_MODULE(Aligner);

}  // namespace coco
