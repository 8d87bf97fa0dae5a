// Decoder block parts. Attention is `masked_attention` (coco/nn/attention.h), grouped-query
// without copying K/V per query head; its softmax runs in float32 for bfloat16 inputs.
#include "coco/llm/llama_layers.h"

#include <cmath>

#include <torch/torch.h>

#include "coco/nn/attention.h"

namespace coco::llm {

RMSNormImpl::RMSNormImpl(RMSNormOptions options_) : options(options_) { reset(); }

void RMSNormImpl::reset() {
  weight = register_parameter("weight", torch::ones({options.dim()}), /*requires_grad=*/false);
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) { return rms_norm(x, weight, options.eps()); }

RopeTables make_rope_tables(const torch::Tensor& positions, int64_t head_dim, double theta,
                            torch::Dtype dtype) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64).device(positions.device());
  const auto i = torch::arange(0, head_dim / 2, opts);                                // [Dh/2]
  const auto inv_freq = torch::pow(theta, -2.0 * i / static_cast<double>(head_dim));  // [Dh/2]
  const auto angles = positions.to(torch::kFloat64).unsqueeze(-1) * inv_freq;         // [B,T,Dh/2]
  return {angles.cos().unsqueeze(1).to(dtype), angles.sin().unsqueeze(1).to(dtype)};
}

LlamaAttentionImpl::LlamaAttentionImpl(LlamaConfig config_) : config(std::move(config_)) {
  reset();
}

void LlamaAttentionImpl::reset() {
  const auto d = config.hidden_size(), dh = config.head_dim();
  const bool b = config.attention_bias();
  q_proj =
      register_module("q_proj", LoRALinear(LoRALinearOptions(d, config.num_heads() * dh).bias(b)));
  k_proj = register_module("k_proj",
                           LoRALinear(LoRALinearOptions(d, config.num_kv_heads() * dh).bias(b)));
  v_proj = register_module("v_proj",
                           LoRALinear(LoRALinearOptions(d, config.num_kv_heads() * dh).bias(b)));
  o_proj = register_module("o_proj", LoRALinear(LoRALinearOptions(config.num_heads() * dh, d)));
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const DecoderContext& ctx) {
  const auto b = x.size(0), t = x.size(1);
  const auto h = config.num_heads(), hkv = config.num_kv_heads(), dh = config.head_dim();
  auto q = q_proj->forward(x, ctx.lora_mask).view({b, t, h, dh}).transpose(1, 2);    // [B,H,T,Dh]
  auto k = k_proj->forward(x, ctx.lora_mask).view({b, t, hkv, dh}).transpose(1, 2);  // [B,Hkv,T,Dh]
  auto v = v_proj->forward(x, ctx.lora_mask).view({b, t, hkv, dh}).transpose(1, 2);  // [B,Hkv,T,Dh]
  q = apply_rope(q, ctx.rope, config.rope_pairing());
  k = apply_rope(k, ctx.rope, config.rope_pairing());
  const auto out = masked_attention(q, k, v, ctx.allow, 1.0 / std::sqrt(static_cast<double>(dh)))
                       .transpose(1, 2)
                       .reshape({b, t, h * dh});  // [B,T,H·Dh]
  return o_proj->forward(out, ctx.lora_mask);
}

LlamaMLPImpl::LlamaMLPImpl(LlamaConfig config_) : config(std::move(config_)) { reset(); }

void LlamaMLPImpl::reset() {
  const auto d = config.hidden_size(), f = config.intermediate_size();
  gate_proj = register_module("gate_proj", LoRALinear(d, f));
  up_proj = register_module("up_proj", LoRALinear(d, f));
  down_proj = register_module("down_proj", LoRALinear(f, d));
}

torch::Tensor LlamaMLPImpl::forward(const torch::Tensor& x, const torch::Tensor& lora_mask) {
  const auto g = gate_proj->forward(x, lora_mask);                                  // [B,T,F]
  return down_proj->forward(swiglu(g, up_proj->forward(x, lora_mask)), lora_mask);
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(LlamaConfig config_) : config(std::move(config_)) {
  reset();
}

void LlamaDecoderLayerImpl::reset() {
  const auto norm = RMSNormOptions(config.hidden_size()).eps(config.rms_norm_eps());
  input_layernorm = register_module("input_layernorm", RMSNorm(norm));
  self_attn = register_module("self_attn", LlamaAttention(config));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(norm));
  mlp = register_module("mlp", LlamaMLP(config));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const DecoderContext& ctx) {
  const auto hcur = x + self_attn->forward(input_layernorm->forward(x), ctx);  // [B,T,D]
  return hcur + mlp->forward(post_attention_layernorm->forward(hcur), ctx.lora_mask);
}

}  // namespace coco::llm
