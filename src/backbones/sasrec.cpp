// SASRec forward pass and loss.
#include "coco/backbones/sasrec.h"

#include <cmath>

#include <torch/torch.h>

namespace coco {

SASRecOptions SASRecOptions::from_config(ConfigNode& node, const BackboneSpec& spec) {
  SASRecOptions o;
  o.num_items = spec.num_items;
  o.max_len = spec.max_len;
  o.hidden = node.get_int("hidden", o.hidden, 1);
  o.num_blocks = node.get_int("num_blocks", o.num_blocks, 0);
  o.num_heads = node.get_int("num_heads", o.num_heads, 1);
  if (o.hidden % o.num_heads != 0) {
    node.fail("num_heads", "must divide hidden (" + std::to_string(o.hidden) + "), got " +
                               std::to_string(o.num_heads));
  }
  o.dropout = node.get_double("dropout", o.dropout, 0, 1);
  o.attn_dropout = node.get_double("attn_dropout", o.attn_dropout, 0, 1);
  o.norm = node.get_choice("norm", o.norm, {"pre", "post"});
  o.scale_embeddings = node.get_bool("scale_embeddings", o.scale_embeddings);
  o.init_std = node.get_double("init_std", o.init_std, 0, 1);
  o.loss = NextItemLossOptions::from_config(node);
  node.finish();
  return o;
}

SASRecImpl::SASRecImpl(SASRecOptions options_) : options(std::move(options_)) {
  const int64_t d = options.hidden;
  item_emb_ = register_module(
      "item_emb", torch::nn::Embedding(torch::nn::EmbeddingOptions(options.num_items + 1, d).padding_idx(0)));
  pos_emb_ = register_module("pos_emb", torch::nn::Embedding(options.max_len + 1, d));
  emb_drop_ = register_module("emb_drop", FastDropout(options.dropout));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_blocks; ++i) {
    blocks_->push_back(TransformerBlock(TransformerBlockOptions(d, options.num_heads)
                                            .dropout(options.dropout)
                                            .attn_dropout(options.attn_dropout)
                                            .pre_norm(options.norm == "pre")));
  }
  // Post-LN blocks end normalised already; only the pre-LN stack needs a final LayerNorm.
  if (options.norm == "pre") {
    final_norm_ = register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  }
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters()) {
    if (p.key().find("norm") != std::string::npos) continue;  // LayerNorm keeps 1 / 0
    if (p.value().dim() >= 2) p.value().normal_(0, options.init_std);
    else p.value().zero_();
  }
  item_emb_->weight[0].zero_();
}

torch::Tensor SASRecImpl::encode(const torch::Tensor& items) {
  const int64_t b = items.size(0), l = items.size(1);
  const auto index = real_positions(items);  // [N]
  auto x = item_emb_(items);
  if (options.scale_embeddings) x = x * std::sqrt(double(options.hidden));
  x = x + pos_emb_(positions_from_end(l, items.device()));
  x = emb_drop_(x.reshape({b * l, options.hidden}).index_select(0, index));  // [N, d]
  const auto allow = attention_allow(items, /*causal=*/true);
  for (const auto& block : *blocks_) x = block->as<TransformerBlock>()->forward(x, index, allow);
  return unpack(final_norm_ ? final_norm_(x) : x, index, b, l);
}

BackboneStep SASRecImpl::train_step(const TrainBatch& batch) {
  const int64_t l = batch.items.size(1) - 1;
  const auto inputs = batch.items.narrow(1, 0, l);
  const auto targets = batch.items.narrow(1, 1, l);
  const auto hidden = encode(inputs);
  auto total = next_item_loss(hidden, inputs, targets, item_emb_->weight, options.loss);
  return {{total, {{"rec", total.detach()}}}, hidden.select(1, l - 1)};
}

}  // namespace coco
