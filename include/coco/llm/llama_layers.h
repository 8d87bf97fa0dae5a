// The parts of a Llama-family decoder block: RMSNorm, rotary position embeddings (both
// pairings, scaled frequencies), grouped-query attention with causal + padding + sliding-window
// masks, optional per-head q/k norms and score soft-capping, SwiGLU or GeGLU, and the block
// (pre-norm, or Gemma-2's pre- and post-norms).
// Not the whole model (llama_model.h), not weight loading (llama_loader.h).
#pragma once

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "coco/llm/llama_config.h"
#include "coco/llm/lora.h"

namespace coco::llm {

// Shape legend: B batch, T positions, D hidden, H heads, H_kv key/value heads, Dh head dim,
// F feed-forward width, V vocabulary, r LoRA rank.

struct RMSNormOptions {
  explicit RMSNormOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);  // D
  TORCH_ARG(double, eps) = 1e-5;
  /// Set: the weight is allocated like this and left for a loader to fill (see LoRALinearOptions).
  TORCH_ARG(c10::optional<torch::TensorOptions>, uninitialised) = c10::nullopt;
};

/// y = x / sqrt(mean(x²) + eps) · weight, computed in float32 whatever the input dtype.
class RMSNormImpl : public torch::nn::Cloneable<RMSNormImpl> {
 public:
  explicit RMSNormImpl(RMSNormOptions options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);  // [..., D] -> [..., D]

  RMSNormOptions options;
  torch::Tensor weight;  // [D], frozen
};
TORCH_MODULE(RMSNorm);

/// RMSNormImpl's function. On CPU float32 with a frozen weight it runs a fused kernel
/// (src/llm/fused_layers.cpp); elsewhere, and as the tests' reference, the composition.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& weight, double eps);

/// cos/sin of every (position, frequency) pair of a batch.
struct RopeTables {
  torch::Tensor cos;  // [B, 1, T, Dh/2]
  torch::Tensor sin;  // [B, 1, T, Dh/2]
};

/// Angles pos · inv_freq[i] for positions [B, T] (int64), in `dtype` (computed in float64).
RopeTables make_rope_tables(const torch::Tensor& positions, const std::vector<double>& inv_freq,
                            torch::Dtype dtype);
/// The same with inv_freq[i] = theta^(-2i/Dh).
RopeTables make_rope_tables(const torch::Tensor& positions, int64_t head_dim, double theta,
                            torch::Dtype dtype);

/// Rotates pairs of x [B, H, T, Dh]: adjacent (2i, 2i+1) or halves (i, i + Dh/2).
/// Fused on CPU float32 (one pass forward and back); the composition elsewhere.
torch::Tensor apply_rope(const torch::Tensor& x, const RopeTables& tables, RopePairing pairing);
torch::Tensor apply_rope_reference(const torch::Tensor& x, const RopeTables& tables,
                                   RopePairing pairing);

/// gelu_tanh(gate) ⊙ up (Gemma's GeGLU).
torch::Tensor geglu(const torch::Tensor& gate, const torch::Tensor& up);

/// silu(gate) ⊙ up, fused on CPU float32 (one pass forward and back); the composition elsewhere.
torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up);
torch::Tensor swiglu_reference(const torch::Tensor& gate, const torch::Tensor& up);

/// Per-forward inputs every block needs.
struct DecoderContext {
  RopeTables rope;
  torch::Tensor allow;          // [B, 1, T, T] bool: query may see key
  torch::Tensor allow_sliding;  // the same within the sliding window; undefined without one
  torch::Tensor lora_mask;      // [B], or undefined
};

/// Softmax(c·tanh(q kᵀ · scale / c) masked) v: Gemma-2's soft-capped attention, grouped-query.
torch::Tensor softcapped_attention(const torch::Tensor& q,      // [B, H, T, Dh]
                                   const torch::Tensor& k,      // [B, H_kv, T, Dh]
                                   const torch::Tensor& v,      // [B, H_kv, T, Dh]
                                   const torch::Tensor& allow,  // [B, 1, T, T]
                                   double scale, double cap);   // -> [B, H, T, Dh]

/// Where a block's weights are allocated: `index` picks sliding or global attention; a set
/// `uninitialised` leaves every weight for the loader (LoRALinearOptions::uninitialised).
struct LayerPlacement {
  int64_t index = 0;
  c10::optional<torch::TensorOptions> uninitialised;
};

/// Grouped-query self-attention: H query heads share H_kv key/value heads.
class LlamaAttentionImpl : public torch::nn::Cloneable<LlamaAttentionImpl> {
 public:
  explicit LlamaAttentionImpl(LlamaConfig config, LayerPlacement placement = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const DecoderContext& ctx);  // [B,T,D] -> [B,T,D]

  LlamaConfig config;
  LayerPlacement placement;
  LoRALinear q_proj{nullptr};  // D -> H·Dh
  LoRALinear k_proj{nullptr};  // D -> H_kv·Dh
  LoRALinear v_proj{nullptr};  // D -> H_kv·Dh
  LoRALinear o_proj{nullptr};  // H·Dh -> D
  RMSNorm q_norm{nullptr};     // [Dh] over each head (Qwen3); null without qk_norm
  RMSNorm k_norm{nullptr};
};
TORCH_MODULE(LlamaAttention);

/// Gated feed-forward: down(act(gate(x)) ⊙ up(x)), act silu (SwiGLU) or tanh-gelu (GeGLU).
class LlamaMLPImpl : public torch::nn::Cloneable<LlamaMLPImpl> {
 public:
  explicit LlamaMLPImpl(LlamaConfig config, LayerPlacement placement = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& lora_mask = {});  // [B,T,D]

  LlamaConfig config;
  LayerPlacement placement;
  LoRALinear gate_proj{nullptr};  // D -> F
  LoRALinear up_proj{nullptr};    // D -> F
  LoRALinear down_proj{nullptr};  // F -> D
};
TORCH_MODULE(LlamaMLP);

/// Pre-norm block: h = x + attn(norm₁(x)), h + mlp(norm₂(h)). With post_norms (Gemma-2):
/// h = x + norm₂(attn(norm₁(x))), h + norm₄(mlp(norm₃(h))). Norm names are Hugging Face's.
class LlamaDecoderLayerImpl : public torch::nn::Cloneable<LlamaDecoderLayerImpl> {
 public:
  explicit LlamaDecoderLayerImpl(LlamaConfig config, LayerPlacement placement = {});
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const DecoderContext& ctx);  // [B,T,D]

  LlamaConfig config;
  LayerPlacement placement;
  RMSNorm input_layernorm{nullptr};
  LlamaAttention self_attn{nullptr};
  RMSNorm post_attention_layernorm{nullptr};    // before the MLP, or (post_norms) after attn
  RMSNorm pre_feedforward_layernorm{nullptr};   // post_norms only
  RMSNorm post_feedforward_layernorm{nullptr};  // post_norms only
  LlamaMLP mlp{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

}  // namespace coco::llm
