// The Transformer encoder block shared by SASRec (causal, pre- or post-LayerNorm) and
// BERT4Rec (bidirectional, post-LayerNorm, GELU). Attention is `masked_attention`
// (coco/ops/attention.h); padding keys are masked, and every query may always attend to
// itself.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "coco/ops/dropout.h"

namespace coco {

struct TransformerBlockOptions {
  TransformerBlockOptions(int64_t hidden, int64_t num_heads)
      : hidden_(hidden), num_heads_(num_heads) {}
  TORCH_ARG(int64_t, hidden);        // d
  TORCH_ARG(int64_t, num_heads);     // must divide d
  TORCH_ARG(int64_t, inner) = 0;     // FFN width; 0 → d
  TORCH_ARG(double, dropout) = 0.2;  // on residual branches and FFN activations
  TORCH_ARG(double, attn_dropout) = 0.2;
  TORCH_ARG(bool, pre_norm) = true;  // pre-LN (x + f(LN(x))) or post-LN (LN(x + f(x)))
  TORCH_ARG(bool, gelu) = false;     // GELU or ReLU in the FFN
};

class TransformerBlockImpl : public torch::nn::Cloneable<TransformerBlockImpl> {
 public:
  explicit TransformerBlockImpl(TransformerBlockOptions options);
  void reset() override;

  /// Position-wise work (projections, FFN, norms) runs on the N real positions only;
  /// attention scatters them into the padded [B, L] grid. Padding positions have no
  /// output, so the cost follows the number of items, not B × L.
  torch::Tensor forward(const torch::Tensor& x,       // [N, d] real positions, packed
                        const torch::Tensor& index,   // [N] their flat positions in B × L
                        const torch::Tensor& allow);  // [B, 1, L, L] bool: query may see key
                                                      // → [N, d]
  TransformerBlockOptions options;

 private:
  torch::Tensor attention(const torch::Tensor& x, const torch::Tensor& index,
                          const torch::Tensor& allow);
  torch::Tensor ffn(const torch::Tensor& x);

  torch::nn::Linear qkv_{nullptr}, out_{nullptr}, ff1_{nullptr}, ff2_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  FastDropout drop_{nullptr};
};
TORCH_MODULE(TransformerBlock);

/// Attention permission for left-padded items: key must be a real item (and not later
/// than the query when `causal`); the diagonal is always allowed.
torch::Tensor attention_allow(const torch::Tensor& items,  // [B, L]
                              bool causal);                // → [B, 1, L, L] bool

/// The real (non-padding) positions of left-padded items, as flat indices into B × L.
torch::Tensor real_positions(const torch::Tensor& items);  // [B, L] → [N] int64

/// Scatters packed rows back into a zero-padded [B, L, d] tensor.
torch::Tensor unpack(const torch::Tensor& packed,  // [N, d]
                     const torch::Tensor& index,   // [N]
                     int64_t b, int64_t l);        // → [B, L, d]

/// Position ids counted from the right end: the newest item is position 0, so a
/// sequence's representation does not depend on how much padding precedes it.
torch::Tensor positions_from_end(int64_t length, torch::Device device);  // [L]

}  // namespace coco
