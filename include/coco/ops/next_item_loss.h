// Next-item objectives shared by the causal backbones (SASRec, GRU4Rec, ...): full softmax
// cross-entropy over all items at non-padding positions, or the SASRec paper's binary
// cross-entropy with sampled negatives.
#pragma once

#include <torch/types.h>

#include "coco/config/config.h"

namespace coco {

enum class NextItemLoss {
  kFullSoftmax,  // "ce": softmax cross-entropy over all V items
  kSampledBce,   // "bce": binary cross-entropy, the target against sampled negatives
};

struct NextItemLossOptions {
  NextItemLoss kind = NextItemLoss::kFullSoftmax;
  int64_t num_negatives = 1;  // kSampledBce only

  /// Reads "loss" and "num_negatives" from a backbone's node.
  static NextItemLossOptions from_config(ConfigNode& node);
};

/// Loss over every position whose input and target are both real items.
torch::Tensor next_item_loss(const torch::Tensor& hidden,    // [B, L, d]
                             const torch::Tensor& inputs,    // [B, L]
                             const torch::Tensor& targets,   // [B, L]
                             const torch::Tensor& item_emb,  // [V + 1, d]
                             const NextItemLossOptions& opt);

/// Softmax cross-entropy of `repr` against item ids 1..V (the item table's rows 1..V).
torch::Tensor full_softmax_ce(const torch::Tensor& repr,      // [N, d]
                              const torch::Tensor& targets,   // [N] in 1..V
                              const torch::Tensor& item_emb,  // [V + 1, d]
                              const torch::Tensor& bias = {}  // [V + 1] or undefined
);

}  // namespace coco
