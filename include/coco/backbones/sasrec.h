// SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the item sequence,
// next-item prediction at every position, item embeddings shared with the output layer.
// Switches: pre/post LayerNorm, full cross-entropy or BCE with sampled negatives.
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>

#include "coco/backbones/backbone.h"
#include "coco/backbones/losses.h"
#include "coco/backbones/transformer.h"

namespace coco {

struct SASRecOptions {
  int64_t num_items = 0;  // V
  int64_t max_len = 50;   // L
  int64_t hidden = 64;    // d
  int64_t num_blocks = 2;
  int64_t num_heads = 1;
  double dropout = 0.5;
  double attn_dropout = 0.5;
  std::string norm = "pre";          // "pre" | "post"
  bool scale_embeddings = true;      // multiply item embeddings by sqrt(d), as the paper
  double init_std = 0.02;
  NextItemLossOptions loss;

  static SASRecOptions from_config(ConfigNode& node, const BackboneSpec& spec);
};

class SASRecImpl : public BackboneImpl {
 public:
  explicit SASRecImpl(SASRecOptions options);

  torch::Tensor encode(const torch::Tensor& items) override;  // [B, L] → [B, L, d]
  LossTerms loss(const TrainBatch& batch) override { return train_step(batch).loss; }
  BackboneStep train_step(const TrainBatch& batch) override;  // one shared forward
  bool is_causal() const override { return true; }
  torch::Tensor item_embeddings() override { return item_emb_->weight; }  // [V + 1, d]
  int64_t hidden_size() const override { return options.hidden; }

  SASRecOptions options;

 private:
  torch::nn::Embedding item_emb_{nullptr}, pos_emb_{nullptr};
  FastDropout emb_drop_{nullptr};
  torch::nn::ModuleList blocks_;
  torch::nn::LayerNorm final_norm_{nullptr};
};

COCO_REGISTER_BACKBONE("sasrec", SASRec);

}  // namespace coco
