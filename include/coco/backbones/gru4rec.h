// GRU4Rec (Hidasi et al., ICLR 2016) in its sequential-recommendation form: item
// embeddings through a (multi-layer) GRU, a dense projection, next-item prediction at
// every position. Sequences are packed, so padding never enters the recurrence.
#pragma once

#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

#include "coco/backbones/backbone.h"
#include "coco/ops/dropout.h"

namespace coco {

struct GRU4RecOptions : NextItemOptions {
  int64_t gru_hidden = 128;
  int64_t num_layers = 1;
  double dropout = 0.3;  // on embeddings

  static GRU4RecOptions from_config(ConfigNode& node, const BackboneSpec& spec);
};

class GRU4RecImpl : public NextItemBackboneImpl {
 public:
  explicit GRU4RecImpl(GRU4RecOptions options);

  torch::Tensor encode(const torch::Tensor& items) override;  // [B, L] → [B, L, d]

  GRU4RecOptions options;

 private:
  FastDropout emb_drop_{nullptr};
  torch::nn::GRU gru_{nullptr};
  torch::nn::Linear dense_{nullptr};
};

COCO_REGISTER_BACKBONE("gru4rec", GRU4Rec, R"({"hidden": 16})");

}  // namespace coco
