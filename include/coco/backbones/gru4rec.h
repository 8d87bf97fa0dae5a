// GRU4Rec (Hidasi et al., ICLR 2016) in its sequential-recommendation form: item
// embeddings through a (multi-layer) GRU, a dense projection, next-item prediction at
// every position. Sequences are packed, so padding never enters the recurrence.
#pragma once

#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

#include "coco/backbones/backbone.h"
#include "coco/backbones/dropout.h"
#include "coco/backbones/losses.h"

namespace coco {

struct GRU4RecOptions {
  int64_t num_items = 0;  // V
  int64_t max_len = 50;   // L
  int64_t hidden = 64;    // d: item embedding and output width
  int64_t gru_hidden = 128;
  int64_t num_layers = 1;
  double dropout = 0.3;   // on embeddings
  double init_std = 0.02;
  NextItemLossOptions loss;

  static GRU4RecOptions from_config(ConfigNode& node, const BackboneSpec& spec);
};

class GRU4RecImpl : public BackboneImpl {
 public:
  explicit GRU4RecImpl(GRU4RecOptions options);

  torch::Tensor encode(const torch::Tensor& items) override;  // [B, L] → [B, L, d]
  LossTerms loss(const TrainBatch& batch) override { return train_step(batch).loss; }
  BackboneStep train_step(const TrainBatch& batch) override;  // one shared forward
  bool is_causal() const override { return true; }
  torch::Tensor item_embeddings() override { return item_emb_->weight; }  // [V + 1, d]
  int64_t hidden_size() const override { return options.hidden; }

  GRU4RecOptions options;

 private:
  torch::nn::Embedding item_emb_{nullptr};
  FastDropout emb_drop_{nullptr};
  torch::nn::GRU gru_{nullptr};
  torch::nn::Linear dense_{nullptr};
};

COCO_REGISTER_BACKBONE("gru4rec", GRU4Rec);

}  // namespace coco
