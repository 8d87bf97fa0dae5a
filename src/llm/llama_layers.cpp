// Decoder block parts. Attention is `masked_attention` (coco/ops/attention.h), grouped-query
// without copying K/V per query head; its softmax runs in float32 for bfloat16 inputs.
#include "coco/llm/llama_layers.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "coco/ops/attention.h"

namespace coco::llm {

RMSNormImpl::RMSNormImpl(RMSNormOptions options_) : options(options_) { reset(); }

void RMSNormImpl::reset() {
  const auto& alloc = options.uninitialised();
  weight = register_parameter(
      "weight", alloc ? torch::empty({options.dim()}, *alloc) : torch::ones({options.dim()}),
      /*requires_grad=*/false);
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  return rms_norm(x, weight, options.eps());
}

RopeTables make_rope_tables(const torch::Tensor& positions, const std::vector<double>& inv_freq,
                            torch::Dtype dtype) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const auto freq = torch::tensor(inv_freq, opts).to(positions.device());  // [Dh/2]
  const auto angles = positions.to(torch::kFloat64).unsqueeze(-1) * freq;  // [B,T,Dh/2]
  return {angles.cos().unsqueeze(1).to(dtype), angles.sin().unsqueeze(1).to(dtype)};
}

RopeTables make_rope_tables(const torch::Tensor& positions, int64_t head_dim, double theta,
                            torch::Dtype dtype) {
  std::vector<double> inv_freq(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i)
    inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
  return make_rope_tables(positions, inv_freq, dtype);
}

torch::Tensor geglu(const torch::Tensor& gate, const torch::Tensor& up) {
  return torch::gelu(gate, "tanh") * up;
}

torch::Tensor softcapped_attention(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v, const torch::Tensor& allow, double scale,
                                   double cap) {
  const auto b = q.size(0), h = q.size(1), t = q.size(2), dh = q.size(3), hkv = k.size(1);
  const auto qg = q.reshape({b, hkv, h / hkv * t, dh});  // query heads grouped by kv head
  auto scores = torch::matmul(qg.to(torch::kFloat32), k.to(torch::kFloat32).transpose(-1, -2))
                    .view({b, h, t, k.size(2)});  // [B,H,T,S]
  scores = torch::tanh(scores * (scale / cap)) * cap;
  scores = scores.masked_fill(allow.logical_not(), -std::numeric_limits<float>::infinity());
  // A query row with no visible key (left padding) gives 0/0; it reads nothing instead.
  const auto p =
      torch::softmax(scores, -1).nan_to_num(0).to(v.scalar_type()).view({b, hkv, h / hkv * t, -1});
  return torch::matmul(p, v).view({b, h, t, dh});
}

namespace {

RMSNorm make_norm(int64_t dim, const LlamaConfig& c, const LayerPlacement& placement) {
  return RMSNorm(RMSNormOptions(dim).eps(c.rms_norm_eps()).uninitialised(placement.uninitialised));
}

LoRALinear make_linear(int64_t in, int64_t out, bool bias, const LayerPlacement& placement) {
  return LoRALinear(LoRALinearOptions(in, out).bias(bias).uninitialised(placement.uninitialised));
}

}  // namespace

LlamaAttentionImpl::LlamaAttentionImpl(LlamaConfig config_, LayerPlacement placement_)
    : config(std::move(config_)), placement(std::move(placement_)) {
  reset();
}

void LlamaAttentionImpl::reset() {
  const auto d = config.hidden_size(), dh = config.head_dim();
  const auto q = config.num_heads() * dh, kv = config.num_kv_heads() * dh;
  const bool b = config.attention_bias();
  q_proj = register_module("q_proj", make_linear(d, q, b, placement));
  k_proj = register_module("k_proj", make_linear(d, kv, b, placement));
  v_proj = register_module("v_proj", make_linear(d, kv, b, placement));
  o_proj = register_module("o_proj", make_linear(q, d, false, placement));
  if (config.qk_norm()) {
    q_norm = register_module("q_norm", make_norm(dh, config, placement));
    k_norm = register_module("k_norm", make_norm(dh, config, placement));
  }
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const DecoderContext& ctx) {
  const auto b = x.size(0), t = x.size(1);
  const auto h = config.num_heads(), hkv = config.num_kv_heads(), dh = config.head_dim();
  auto q = q_proj->forward(x, ctx.lora_mask).view({b, t, h, dh});                    // [B,T,H,Dh]
  auto k = k_proj->forward(x, ctx.lora_mask).view({b, t, hkv, dh});                  // [B,T,Hkv,Dh]
  auto v = v_proj->forward(x, ctx.lora_mask).view({b, t, hkv, dh}).transpose(1, 2);  // [B,Hkv,T,Dh]
  if (q_norm) {
    q = q_norm->forward(q);
    k = k_norm->forward(k);
  }
  q = apply_rope(q.transpose(1, 2), ctx.rope, config.rope_pairing());  // [B,H,T,Dh]
  k = apply_rope(k.transpose(1, 2), ctx.rope, config.rope_pairing());  // [B,Hkv,T,Dh]
  const bool sliding = config.layer_is_sliding(placement.index);
  TORCH_CHECK(!sliding || ctx.allow_sliding.defined(), "DecoderContext lacks the sliding mask");
  const auto& allow = sliding ? ctx.allow_sliding : ctx.allow;
  const double scale = config.attention_scale();
  const auto out = (config.attn_softcap() > 0
                        ? softcapped_attention(q, k, v, allow, scale, config.attn_softcap())
                        : masked_attention(q, k, v, allow, scale))
                       .transpose(1, 2)
                       .reshape({b, t, h * dh});  // [B,T,H·Dh]
  return o_proj->forward(out, ctx.lora_mask);
}

LlamaMLPImpl::LlamaMLPImpl(LlamaConfig config_, LayerPlacement placement_)
    : config(std::move(config_)), placement(std::move(placement_)) {
  reset();
}

void LlamaMLPImpl::reset() {
  const auto d = config.hidden_size(), f = config.intermediate_size();
  gate_proj = register_module("gate_proj", make_linear(d, f, false, placement));
  up_proj = register_module("up_proj", make_linear(d, f, false, placement));
  down_proj = register_module("down_proj", make_linear(f, d, false, placement));
}

torch::Tensor LlamaMLPImpl::forward(const torch::Tensor& x, const torch::Tensor& lora_mask) {
  const auto g = gate_proj->forward(x, lora_mask);  // [B,T,F]
  const auto u = up_proj->forward(x, lora_mask);
  return down_proj->forward(config.activation() == Activation::kSilu ? swiglu(g, u) : geglu(g, u),
                            lora_mask);
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(LlamaConfig config_, LayerPlacement placement_)
    : config(std::move(config_)), placement(std::move(placement_)) {
  reset();
}

void LlamaDecoderLayerImpl::reset() {
  const auto d = config.hidden_size();
  input_layernorm = register_module("input_layernorm", make_norm(d, config, placement));
  self_attn = register_module("self_attn", LlamaAttention(config, placement));
  post_attention_layernorm =
      register_module("post_attention_layernorm", make_norm(d, config, placement));
  if (config.post_norms()) {
    pre_feedforward_layernorm =
        register_module("pre_feedforward_layernorm", make_norm(d, config, placement));
    post_feedforward_layernorm =
        register_module("post_feedforward_layernorm", make_norm(d, config, placement));
  }
  mlp = register_module("mlp", LlamaMLP(config, placement));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const DecoderContext& ctx) {
  const auto attn = self_attn->forward(input_layernorm->forward(x), ctx);  // [B,T,D]
  if (!config.post_norms()) {
    const auto hcur = x + attn;
    return hcur + mlp->forward(post_attention_layernorm->forward(hcur), ctx.lora_mask);
  }
  const auto hcur = x + post_attention_layernorm->forward(attn);
  const auto ffn = mlp->forward(pre_feedforward_layernorm->forward(hcur), ctx.lora_mask);
  return hcur + post_feedforward_layernorm->forward(ffn);
}

}  // namespace coco::llm
