// The interface the trainer and evaluator see: anything that can compute its training
// loss on a TrainBatch and score items for the users of an EvalBatch. Backbones and
// (later) LLM-enhanced models implement it; nothing else is assumed about them.
//
// Shape legend for the whole project: B batch, L max sequence length, V items (ids 1..V,
// 0 = padding), d recommender width, C candidates per user, K codebook size.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

#include "coco/config/config.h"
#include "coco/data/batches.h"

namespace coco {

/// A training loss and its named parts (detached, for logging).
struct LossTerms {
  torch::Tensor total;                                        // [] with grad
  std::vector<std::pair<std::string, torch::Tensor>> parts;  // name → [] detached
};

/// Trainable parameters that share one learning rate.
struct ParamGroup {
  std::string name;
  std::vector<torch::Tensor> params;
  double lr = 0;  // 0: the trainer's train.lr
};

class RecommenderImpl : public torch::nn::Module {
 public:
  /// Optimiser groups; default: every trainable parameter in one group at train.lr.
  virtual std::vector<ParamGroup> param_groups();

  /// The 0-based epoch the weights are in, e.g. for warm-up phases: set by the trainer
  /// before each training epoch, and after loading a checkpoint (TrainState::weights_epoch).
  virtual void set_epoch(int64_t /*epoch*/) {}

  /// Statistics gathered since the last call (logged with each epoch), then reset; null
  /// when the model has none.
  virtual Json epoch_diagnostics() { return nullptr; }

  /// The backbone inside an enhanced model, while its output differs from the backbone's;
  /// the trainer validates it beside the model each epoch, so the log shows what the
  /// enhancement adds on held-out users. Null for a backbone itself.
  virtual std::shared_ptr<RecommenderImpl> inner_backbone() { return nullptr; }

  /// Loss of one training batch (the module is in train mode).
  virtual LossTerms loss(const TrainBatch& batch) = 0;

  /// User representation from the history before each target.
  virtual torch::Tensor user_repr(const EvalBatch& batch) = 0;  // [B, d]

  /// Scores of every item id for each user; column 0 (padding) is meaningless.
  virtual torch::Tensor score_all(const torch::Tensor& repr) = 0;  // [B, d] → [B, V + 1]

  /// Scores of the given item ids.
  virtual torch::Tensor score(const torch::Tensor& repr,  // [B, d]
                              const torch::Tensor& items  // [B, C]
                              ) = 0;                      // → [B, C]
};

}  // namespace coco
