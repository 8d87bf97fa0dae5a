// Checkpoints: model weights, optimiser state, training progress, RNG state and the
// resolved config in one torch archive, written atomically. Loading checks every tensor's
// name and shape and reports a bad file in one line; it never half-loads silently.
#pragma once

#include <limits>
#include <map>
#include <string>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "coco/config/config.h"

namespace coco {

/// Where training stands; enough to continue exactly.
struct TrainState {
  int64_t epoch = 0;  // current epoch (0-based); == epochs when training is over
  int64_t batch = 0;  // batches of `epoch` already done (non-zero after an interrupt)
  int64_t step = 0;   // optimiser steps so far
  double best_metric = -std::numeric_limits<double>::infinity();
  int64_t best_epoch = -1;
  int64_t bad_evals = 0;  // validations since the last improvement
  bool finished = false;
  std::map<std::string, double> loss_sums;  // partial sums of the current epoch
  double epoch_seconds = 0;                 // time spent in the current epoch so far

  /// The epoch whose training produced the weights (-1: none yet).
  int64_t weights_epoch() const { return batch > 0 ? epoch : epoch - 1; }

  Json to_json() const;
  static TrainState from_json(const Json& j);
};

/// What a checkpoint holds besides tensors.
struct CheckpointMeta {
  Json config;  // resolved config of the run
  TrainState state;
};

/// Writes `path` atomically. `optimizer` may be null (best-model files); the torch
/// CPU RNG state is stored when `with_rng`.
void save_checkpoint(const std::string& path, const CheckpointMeta& meta,
                     const torch::nn::Module& model, const torch::optim::Optimizer* optimizer,
                     bool with_rng);

/// Reads only the config and state (to rebuild the model before loading weights).
CheckpointMeta read_checkpoint_meta(const std::string& path);

/// Loads weights (checked by name and shape), and optionally optimiser and RNG state.
CheckpointMeta load_checkpoint(const std::string& path, torch::nn::Module& model,
                               torch::optim::Optimizer* optimizer, bool restore_rng);

}  // namespace coco
