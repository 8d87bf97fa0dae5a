// Masked multi-head cross-attention (prompt → text) followed by the alignment MLP.
#include "coco/nn/aligner.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

#include "coco/common/error.h"
#include "coco/ops/attention.h"

namespace coco {

AlignerOptions AlignerOptions::from_config(ConfigNode& node, int64_t llm_width, int64_t hidden) {
  AlignerOptions o(llm_width, hidden);
  o.attn_width(node.get_int("attn_width", o.attn_width(), 1));
  o.num_heads(node.get_int("num_heads", o.num_heads(), 1));
  if (o.attn_width() % o.num_heads() != 0) {
    node.fail("num_heads", "must divide attn_width (" + std::to_string(o.attn_width()) + "), got " +
                               std::to_string(o.num_heads()));
  }
  o.mlp_hidden(node.get_int("mlp_hidden", o.mlp_hidden(), 1));
  o.dropout(node.get_double("dropout", o.dropout(), 0, 1));
  node.finish();
  return o;
}

AlignerImpl::AlignerImpl(AlignerOptions options_) : options(std::move(options_)) { reset(); }

void AlignerImpl::reset() {
  const int64_t dd = options.llm_width(), da = options.attn_width();
  if (options.num_heads() < 1 || da % options.num_heads() != 0) {
    throw ConfigError("aligner: num_heads (" + std::to_string(options.num_heads()) +
                      ") must divide attn_width (" + std::to_string(da) + ")");
  }
  q_proj_ = register_module("q_proj", torch::nn::Linear(dd, da));
  k_proj_ = register_module("k_proj", torch::nn::Linear(dd, da));
  v_proj_ = register_module("v_proj", torch::nn::Linear(dd, da));
  out_proj_ = register_module("out_proj", torch::nn::Linear(da, da));
  mlp1_ = register_module("mlp1", torch::nn::Linear(da, options.mlp_hidden()));
  mlp_norm_ = register_module(
      "mlp_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.mlp_hidden()})));
  drop_ = register_module("drop", FastDropout(options.dropout()));
  mlp2_ = register_module("mlp2", torch::nn::Linear(options.mlp_hidden(), options.hidden()));
}

AlignerOutput AlignerImpl::forward(const torch::Tensor& prompt_states,
                                   const torch::Tensor& text_states,
                                   const torch::Tensor& text_mask) {
  TORCH_CHECK(prompt_states.dim() == 3 && text_states.dim() == 3 &&
                  prompt_states.size(0) == text_states.size(0) &&
                  prompt_states.size(2) == options.llm_width() &&
                  text_states.size(2) == options.llm_width(),
              "aligner: expected prompt [B, P, ", options.llm_width(), "] and text [B, T, ",
              options.llm_width(), "], got ", prompt_states.sizes(), " and ", text_states.sizes());
  TORCH_CHECK(text_mask.sizes() == text_states.sizes().slice(0, 2),
              "aligner: expected text_mask [B, T], got ", text_mask.sizes());
  const auto dtype = q_proj_->weight.scalar_type();
  const int64_t b = prompt_states.size(0), p = prompt_states.size(1), t = text_states.size(1);
  const int64_t h = options.num_heads(), dh = options.attn_width() / h;
  auto heads = [&](const torch::Tensor& x, int64_t len) {  // [B, len, d_a] → [B, H, len, dh]
    return x.reshape({b, len, h, dh}).transpose(1, 2);
  };
  const auto q = heads(q_proj_(prompt_states.to(dtype)), p);
  const auto text = text_states.to(dtype);
  const auto k = heads(k_proj_(text), t), v = heads(v_proj_(text), t);
  // Each prompt query may see every valid text token (masked_attention: fused on CPU).
  const auto allow = text_mask.to(torch::kBool).view({b, 1, 1, t}).expand({b, 1, p, t});
  const auto ctx = masked_attention(q, k, v, allow, 1.0 / std::sqrt(double(dh)))  // [B, H, P, dh]
                       .transpose(1, 2)
                       .reshape({b, p, h * dh});
  AlignerOutput out;
  out.h_text = out_proj_(ctx).mean(1);  // [B, d_a]
  out.h_aligned = mlp2_(drop_(mlp_norm_(torch::gelu(mlp1_(out.h_text)))));
  return out;
}

AlignerOutput AlignerImpl::forward_joint(const torch::Tensor& states,
                                         const torch::Tensor& text_mask) {
  TORCH_CHECK(states.dim() == 3 && text_mask.dim() == 2 && text_mask.size(1) < states.size(1),
              "aligner: expected states [B, P + T, D] and text_mask [B, T] with P >= 1, got ",
              states.sizes(), " and ", text_mask.sizes());
  const int64_t t = text_mask.size(1), p = states.size(1) - t;
  return forward(states.narrow(1, 0, p), states.narrow(1, p, t), text_mask);
}

}  // namespace coco
