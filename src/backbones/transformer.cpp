// Multi-head self-attention block with pre/post LayerNorm.
#include "coco/backbones/transformer.h"

#include <cmath>

#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/ops/attention.h"

namespace coco {

TransformerBlockImpl::TransformerBlockImpl(TransformerBlockOptions options_)
    : options(std::move(options_)) {
  reset();
}

void TransformerBlockImpl::reset() {
  const int64_t d = options.hidden();
  const int64_t inner = options.inner() > 0 ? options.inner() : d;
  if (d % options.num_heads() != 0) {
    throw ConfigError("num_heads (" + std::to_string(options.num_heads()) +
                      ") must divide hidden (" + std::to_string(d) + ")");
  }
  qkv_ = register_module("qkv", torch::nn::Linear(d, 3 * d));
  out_ = register_module("out", torch::nn::Linear(d, d));
  ff1_ = register_module("ff1", torch::nn::Linear(d, inner));
  ff2_ = register_module("ff2", torch::nn::Linear(inner, d));
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  drop_ = register_module("drop", FastDropout(options.dropout()));
}

torch::Tensor TransformerBlockImpl::attention(const torch::Tensor& x, const torch::Tensor& index,
                                              const torch::Tensor& allow) {
  const int64_t b = allow.size(0), l = allow.size(2), h = options.num_heads();
  const int64_t d = options.hidden(), dh = d / h;
  // chunk (not indexing) so that the backward pass concatenates instead of zero-filling.
  auto qkv = unpack(qkv_(x), index, b, l).chunk(3, -1);  // 3 × [B, L, d]
  auto heads = [&](const torch::Tensor& t) {
    return t.reshape({b, l, h, dh}).transpose(1, 2);
  };  // [B, H, L, dh]
  const auto q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);
  const double p = options.attn_dropout();
  const auto keep =
      is_training() && p > 0 ? dropout_mask({b, h, l, l}, p, q.options()) : torch::Tensor();
  const auto ctx =
      masked_attention(q, k, v, allow, 1.0 / std::sqrt(double(dh)), keep)  // [B, H, L, dh]
          .transpose(1, 2)
          .reshape({b * l, d})
          .index_select(0, index);
  return drop_(out_(ctx));
}

torch::Tensor TransformerBlockImpl::ffn(const torch::Tensor& x) {
  auto a = ff1_(x);
  a = options.gelu() ? torch::gelu(a) : torch::relu(a);
  return drop_(ff2_(drop_(a)));
}

torch::Tensor TransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& index,
                                            const torch::Tensor& allow) {
  if (options.pre_norm()) {
    auto y = x + attention(norm1_(x), index, allow);
    return y + ffn(norm2_(y));
  }
  auto y = norm1_(x + attention(x, index, allow));
  return norm2_(y + ffn(y));
}

torch::Tensor real_positions(const torch::Tensor& items) {
  return (items.reshape({-1}) > 0).nonzero().squeeze(1);
}

torch::Tensor unpack(const torch::Tensor& packed, const torch::Tensor& index, int64_t b,
                     int64_t l) {
  return torch::zeros({b * l, packed.size(1)}, packed.options())
      .index_copy(0, index, packed)
      .view({b, l, -1});
}

torch::Tensor attention_allow(const torch::Tensor& items, bool causal) {
  const int64_t l = items.size(1);
  auto allow = (items > 0).unsqueeze(1).unsqueeze(1);  // [B, 1, 1, L] keys
  const auto eye = torch::eye(l, torch::TensorOptions().dtype(torch::kBool).device(items.device()));
  if (causal) allow = allow & torch::tril(torch::ones_like(eye));
  return allow | eye;  // [B, 1, L, L]
}

torch::Tensor positions_from_end(int64_t length, torch::Device device) {
  return torch::arange(length - 1, -1, -1,
                       torch::TensorOptions().dtype(torch::kInt64).device(device));
}

}  // namespace coco
