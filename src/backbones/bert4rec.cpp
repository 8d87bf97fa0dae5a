// BERT4Rec forward pass, cloze masking and scoring with the output bias.
#include "coco/backbones/bert4rec.h"

#include <torch/torch.h>

#include "coco/ops/next_item_loss.h"

namespace coco {

BERT4RecOptions BERT4RecOptions::from_config(ConfigNode& node, const BackboneSpec& spec) {
  BERT4RecOptions o;
  o.num_items = spec.num_items;
  o.max_len = spec.max_len;
  o.hidden = node.get_int("hidden", o.hidden, 1);
  o.num_blocks = node.get_int("num_blocks", o.num_blocks, 0);
  o.num_heads = node.get_int("num_heads", o.num_heads, 1);
  if (o.hidden % o.num_heads != 0) {
    node.fail("num_heads", "must divide hidden (" + std::to_string(o.hidden) + "), got " +
                               std::to_string(o.num_heads));
  }
  o.inner_factor = node.get_int("inner_factor", o.inner_factor, 1);
  o.dropout = node.get_double("dropout", o.dropout, 0, 1);
  o.attn_dropout = node.get_double("attn_dropout", o.attn_dropout, 0, 1);
  o.mask_prob = node.get_double("mask_prob", o.mask_prob, 0, 1);
  o.last_item_prob = node.get_double("last_item_prob", o.last_item_prob, 0, 1);
  o.init_std = node.get_double("init_std", o.init_std, 0, 1);
  node.finish();
  return o;
}

BERT4RecImpl::BERT4RecImpl(BERT4RecOptions options_) : options(std::move(options_)) {
  const int64_t d = options.hidden;
  item_emb_ = register_module(
      "item_emb",
      torch::nn::Embedding(torch::nn::EmbeddingOptions(options.num_items + 2, d).padding_idx(0)));
  pos_emb_ = register_module("pos_emb", torch::nn::Embedding(options.max_len + 1, d));
  emb_norm_ = register_module("emb_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  emb_drop_ = register_module("emb_drop", FastDropout(options.dropout));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_blocks; ++i) {
    blocks_->push_back(TransformerBlock(TransformerBlockOptions(d, options.num_heads)
                                            .inner(options.inner_factor * d)
                                            .dropout(options.dropout)
                                            .attn_dropout(options.attn_dropout)
                                            .pre_norm(false)
                                            .gelu(true)));
  }
  out_dense_ = register_module("out_dense", torch::nn::Linear(d, d));
  out_norm_ = register_module("out_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  out_bias_ = register_parameter("out_bias", torch::zeros({options.num_items + 2}));
  init_normal(*this, options.init_std, item_emb_->weight);
}

torch::Tensor BERT4RecImpl::encode(const torch::Tensor& items) {
  const int64_t b = items.size(0), l = items.size(1);
  const auto index = real_positions(items);  // [N]
  auto x = item_emb_(items) + pos_emb_(positions_from_end(l, items.device()));
  x = emb_drop_(emb_norm_(x.reshape({b * l, options.hidden}).index_select(0, index)));  // [N, d]
  const auto allow = attention_allow(items, /*causal=*/false);
  for (const auto& block : *blocks_) x = block->as<TransformerBlock>()->forward(x, index, allow);
  return unpack(out_norm_(torch::gelu(out_dense_(x))), index, b, l);
}

LossTerms BERT4RecImpl::loss(const TrainBatch& batch) {
  const auto items = batch.targets();  // the last L training items
  const int64_t l = items.size(1);
  const auto real = items > 0;
  const auto opts = torch::TensorOptions().device(items.device());
  auto masked = (torch::rand(items.sizes(), opts) < options.mask_prob) & real;  // [B, L]
  // "Mask the last item" samples, and rows the draw left without any mask.
  auto last = torch::zeros_like(masked);
  last.select(1, l - 1).fill_(true);
  const auto last_only =
      (torch::rand({items.size(0)}, opts) < options.last_item_prob) | masked.any(1).logical_not();
  masked = torch::where(last_only.unsqueeze(1), last & real, masked);
  const auto inputs = items.masked_fill(masked, mask_token());
  const auto hidden = encode(inputs);
  auto total = full_softmax_ce(hidden.index({masked}), items.index({masked}),
                               item_emb_->weight.narrow(0, 0, options.num_items + 1),
                               out_bias_.narrow(0, 0, options.num_items + 1));
  return {total, {{"rec", total.detach()}}};
}

torch::Tensor BERT4RecImpl::user_repr(const EvalBatch& batch) {
  const int64_t l = batch.history.size(1);
  auto mask = torch::full({batch.history.size(0), 1}, mask_token(), batch.history.options());
  const auto inputs = torch::cat({batch.history.narrow(1, 1, l - 1), mask}, 1);
  return encode(inputs).select(1, l - 1);
}

torch::Tensor BERT4RecImpl::score_all(const torch::Tensor& repr) {
  return torch::addmm(out_bias_.narrow(0, 0, options.num_items + 1), repr,
                      item_emb_->weight.narrow(0, 0, options.num_items + 1).t());
}

ItemTable BERT4RecImpl::item_table() {
  const int64_t rows = options.num_items + 1;
  return {item_emb_->weight.narrow(0, 0, rows), out_bias_.narrow(0, 0, rows)};
}

torch::Tensor BERT4RecImpl::score(const torch::Tensor& repr, const torch::Tensor& items) {
  return BackboneImpl::score(repr, items) + out_bias_.index({items});
}

}  // namespace coco
