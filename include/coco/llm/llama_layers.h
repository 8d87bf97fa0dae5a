// The parts of a Llama-family decoder block: RMSNorm, rotary position embeddings (both
// pairings), grouped-query attention with causal + padding masks, SwiGLU, and the block.
// Not the whole model (llama_model.h), not weight loading (llama_loader.h).
#pragma once

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>

#include "coco/llm/llama_config.h"
#include "coco/llm/lora.h"

namespace coco::llm {

// Shape legend: B batch, T positions, D hidden, H heads, H_kv key/value heads, Dh head dim,
// F feed-forward width, V vocabulary, r LoRA rank.

struct RMSNormOptions {
  explicit RMSNormOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);  // D
  TORCH_ARG(double, eps) = 1e-5;
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

/// Angles pos · theta^(-2i/Dh) for positions [B, T] (int64), in `dtype`.
RopeTables make_rope_tables(const torch::Tensor& positions, int64_t head_dim, double theta,
                            torch::Dtype dtype);

/// Rotates pairs of x [B, H, T, Dh]: adjacent (2i, 2i+1) or halves (i, i + Dh/2).
/// Fused on CPU float32 (one pass forward and back); the composition elsewhere.
torch::Tensor apply_rope(const torch::Tensor& x, const RopeTables& tables, RopePairing pairing);
torch::Tensor apply_rope_reference(const torch::Tensor& x, const RopeTables& tables, RopePairing pairing);

/// silu(gate) ⊙ up, fused on CPU float32 (one pass forward and back); the composition elsewhere.
torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up);
torch::Tensor swiglu_reference(const torch::Tensor& gate, const torch::Tensor& up);

/// Per-forward inputs every block needs.
struct DecoderContext {
  RopeTables rope;
  torch::Tensor allow;      // [B, 1, T, T] bool: query may see key
  torch::Tensor lora_mask;  // [B], or undefined
};

/// Grouped-query self-attention: H query heads share H_kv key/value heads.
class LlamaAttentionImpl : public torch::nn::Cloneable<LlamaAttentionImpl> {
 public:
  explicit LlamaAttentionImpl(LlamaConfig config);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const DecoderContext& ctx);  // [B,T,D] -> [B,T,D]

  LlamaConfig config;
  LoRALinear q_proj{nullptr};  // D -> H·Dh
  LoRALinear k_proj{nullptr};  // D -> H_kv·Dh
  LoRALinear v_proj{nullptr};  // D -> H_kv·Dh
  LoRALinear o_proj{nullptr};  // H·Dh -> D
};
TORCH_MODULE(LlamaAttention);

/// SwiGLU feed-forward: down(silu(gate(x)) ⊙ up(x)).
class LlamaMLPImpl : public torch::nn::Cloneable<LlamaMLPImpl> {
 public:
  explicit LlamaMLPImpl(LlamaConfig config);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& lora_mask = {});  // [B,T,D]

  LlamaConfig config;
  LoRALinear gate_proj{nullptr};  // D -> F
  LoRALinear up_proj{nullptr};    // D -> F
  LoRALinear down_proj{nullptr};  // F -> D
};
TORCH_MODULE(LlamaMLP);

/// Pre-norm block: x + attn(norm(x)), then + mlp(norm(·)).
class LlamaDecoderLayerImpl : public torch::nn::Cloneable<LlamaDecoderLayerImpl> {
 public:
  explicit LlamaDecoderLayerImpl(LlamaConfig config);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x, const DecoderContext& ctx);  // [B,T,D]

  LlamaConfig config;
  RMSNorm input_layernorm{nullptr};
  LlamaAttention self_attn{nullptr};
  RMSNorm post_attention_layernorm{nullptr};
  LlamaMLP mlp{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

}  // namespace coco::llm
