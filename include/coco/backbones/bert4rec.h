// BERT4Rec (Sun et al., CIKM 2019): bidirectional Transformer trained with the cloze
// task — random items are replaced by [MASK] and predicted from both sides — plus
// "mask the last item" samples that match next-item prediction. At inference a [MASK]
// is appended after the history and its output scores the next item.
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>

#include "coco/backbones/backbone.h"
#include "coco/backbones/transformer.h"
#include "coco/ops/dropout.h"

namespace coco {

struct BERT4RecOptions {
  int64_t num_items = 0;  // V; the [MASK] token is id V + 1
  int64_t max_len = 50;   // L
  int64_t hidden = 64;    // d
  int64_t num_blocks = 2;
  int64_t num_heads = 2;
  int64_t inner_factor = 4;  // FFN width = inner_factor * d
  double dropout = 0.2;
  double attn_dropout = 0.2;
  double mask_prob = 0.2;       // cloze masking probability per item
  double last_item_prob = 0.1;  // share of training sequences masked only at the last item
  double init_std = 0.02;

  static BERT4RecOptions from_config(ConfigNode& node, const BackboneSpec& spec);
};

class BERT4RecImpl : public BackboneImpl {
 public:
  explicit BERT4RecImpl(BERT4RecOptions options);

  /// Bidirectional hidden states, passed through the output transform.
  torch::Tensor encode(const torch::Tensor& items) override;  // [B, L] → [B, L, d]
  LossTerms loss(const TrainBatch& batch) override;
  torch::Tensor user_repr(const EvalBatch& batch) override;  // appends [MASK]
  torch::Tensor score_all(const torch::Tensor& repr) override;
  torch::Tensor score(const torch::Tensor& repr, const torch::Tensor& items) override;
  ItemTable item_table() override;  // the table's first V + 1 rows and the output bias
  bool is_causal() const override { return false; }
  torch::Tensor item_embeddings() override { return item_emb_->weight; }  // [V + 2, d]
  int64_t hidden_size() const override { return options.hidden; }
  int64_t mask_token() const { return options.num_items + 1; }

  BERT4RecOptions options;

 private:
  torch::nn::Embedding item_emb_{nullptr}, pos_emb_{nullptr};
  torch::nn::LayerNorm emb_norm_{nullptr}, out_norm_{nullptr};
  FastDropout emb_drop_{nullptr};
  torch::nn::ModuleList blocks_;
  torch::nn::Linear out_dense_{nullptr};
  torch::Tensor out_bias_;  // [V + 2]
};

COCO_REGISTER_BACKBONE("bert4rec", BERT4Rec, R"({"hidden": 16, "num_heads": 2})");

}  // namespace coco
