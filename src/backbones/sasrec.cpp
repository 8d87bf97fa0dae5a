// SASRec's layers and forward pass.
#include "coco/backbones/sasrec.h"

#include <cmath>

#include <torch/torch.h>

namespace coco {

SASRecOptions SASRecOptions::from_config(ConfigNode& node, const BackboneSpec& spec) {
  SASRecOptions o;
  o.parse_common(node, spec);
  o.num_blocks = node.get_int("num_blocks", o.num_blocks, 0);
  o.num_heads = node.get_int("num_heads", o.num_heads, 1);
  if (o.hidden % o.num_heads != 0) {
    node.fail("num_heads", "must divide hidden (" + std::to_string(o.hidden) + "), got " +
                               std::to_string(o.num_heads));
  }
  o.dropout = node.get_double("dropout", o.dropout, 0, 1);
  o.attn_dropout = node.get_double("attn_dropout", o.attn_dropout, 0, 1);
  o.norm =
      node.get_enum("norm", o.norm, {{"pre", NormPlacement::kPre}, {"post", NormPlacement::kPost}});
  o.scale_embeddings = node.get_bool("scale_embeddings", o.scale_embeddings);
  node.finish();
  return o;
}

SASRecImpl::SASRecImpl(SASRecOptions options_)
    : NextItemBackboneImpl(options_), options(std::move(options_)) {
  const int64_t d = options.hidden;
  const bool pre = options.norm == NormPlacement::kPre;
  pos_emb_ = register_module("pos_emb", torch::nn::Embedding(options.max_len + 1, d));
  emb_drop_ = register_module("emb_drop", FastDropout(options.dropout));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.num_blocks; ++i) {
    blocks_->push_back(TransformerBlock(TransformerBlockOptions(d, options.num_heads)
                                            .dropout(options.dropout)
                                            .attn_dropout(options.attn_dropout)
                                            .pre_norm(pre)));
  }
  // Post-LN blocks end normalised already; only the pre-LN stack needs a final LayerNorm.
  if (pre)
    final_norm_ =
        register_module("final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  init_normal(*this, options.init_std, item_emb_->weight);
}

torch::Tensor SASRecImpl::encode(const torch::Tensor& items) {
  const int64_t b = items.size(0), l = items.size(1);
  const auto index = real_positions(items);  // [N]
  auto x = embed(items);
  if (options.scale_embeddings) x = x * std::sqrt(double(options.hidden));
  x = x + pos_emb_(positions_from_end(l, items.device()));
  x = emb_drop_(x.reshape({b * l, options.hidden}).index_select(0, index));  // [N, d]
  const auto allow = attention_allow(items, /*causal=*/true);
  for (const auto& block : *blocks_) x = block->as<TransformerBlock>()->forward(x, index, allow);
  return unpack(final_norm_ ? final_norm_(x) : x, index, b, l);
}

}  // namespace coco
