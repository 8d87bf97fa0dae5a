// The interface the trainer and evaluator see: anything that can compute its training
// loss on a TrainBatch and score items for the users of an EvalBatch. Backbones and the
// LLM-enhanced CoCo model implement it; nothing else is assumed about them.
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
#include "coco/ops/optimizer.h"

namespace coco {

/// A training loss and its named parts (detached, for logging).
struct LossTerms {
  torch::Tensor total;                                       // [] with grad
  std::vector<std::pair<std::string, torch::Tensor>> parts;  // name → [] detached
};

/// Scores as a dot product, for serving with an index: score_all(repr) equals
/// repr · items^T + bias.
struct ItemTable {
  torch::Tensor items;  // [V + 1, d], row = item id (row 0 padding)
  torch::Tensor bias;   // [V + 1]; undefined when there is none
};

/// What a model's run stages (start_run, finish_run) may use.
struct RunContext {
  const Interactions& data;
  int64_t max_len;  // L
  torch::Device device;
  std::string output_dir;  // the run directory, for the files a stage writes
  uint64_t seed;
};

class RecommenderImpl : public torch::nn::Module {
 public:
  /// Optimiser groups; default: every trainable parameter in one group at train.lr.
  virtual std::vector<ParamGroup> param_groups();

  /// Stages of a run besides training, run by the experiment: start_run before the first
  /// epoch of a new run (not on resume), finish_run once the best checkpoint is loaded at
  /// the end. They may write files into the run directory; run_files() names them, so that
  /// a new run in the same directory removes stale ones.
  virtual void start_run(const RunContext& /*run*/) {}
  virtual void finish_run(const RunContext& /*run*/) {}
  virtual std::vector<std::string> run_files() const { return {}; }

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

  /// The table score_all multiplies with; ConfigError (naming the model) for a model
  /// whose scores are not a dot product with an item table.
  virtual ItemTable item_table();

  /// Scores of the given item ids.
  virtual torch::Tensor score(const torch::Tensor& repr,  // [B, d]
                              const torch::Tensor& items  // [B, C]
                              ) = 0;                      // → [B, C]
};

}  // namespace coco
