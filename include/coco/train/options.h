// Options of the trainer (the config's "train" object) and of the run as a whole
// (seed, device, output directory).
#pragma once

#include <string>

#include <spdlog/common.h>
#include <torch/types.h>

#include "coco/config/config.h"
#include "coco/dist/process_group.h"
#include "coco/ops/optimizer.h"

namespace coco {

enum class Schedule { kConstant, kLinear, kCosine };  // the decay after warm-up
/// A step whose loss or gradient is NaN or Inf: stop the run (the weights stay as they were,
/// last.pt keeps the last good epoch) or skip the step and count it in metrics.jsonl.
enum class NonFinite { kStop, kSkip };

struct TrainOptions {
  int64_t epochs = 200;
  int64_t batch_size = 256;
  bool bucket_by_length = false;  // batches of users with similar history length
  OptimizerKind optimizer = OptimizerKind::kAdam;
  double lr = 1e-3;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999;
  Schedule schedule = Schedule::kConstant;
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.0;       // floor of the decay, as a fraction of lr
  double clip_grad_norm = 5.0;     // per parameter group; 0 disables clipping
  std::string metric = "NDCG@10";  // validation metric for early stopping / selection
  int64_t patience = 20;           // evaluations without improvement before stopping
  int64_t eval_every = 1;          // epochs between validation runs
  double max_seconds = 0;          // wall-clock budget of one fit() call; 0 = none
  NonFinite nonfinite = NonFinite::kStop;
  int64_t max_len = 50;  // L: the training window (data.max_len)

  /// Reads the "train" object; `max_len` comes from the data.
  static TrainOptions from_config(ConfigNode& node, int64_t max_len);

  /// The optimiser settings for a group at train.lr.
  OptimizerOptions optimizer_options() const { return {optimizer, lr, weight_decay, beta1, beta2}; }
};

/// Learning-rate multiplier at `step` of `total_steps` (warm-up, then decay).
double lr_factor(const TrainOptions& opt, int64_t step, int64_t total_steps);

/// Top-level run settings.
struct RunOptions {
  int64_t seed = 42;
  torch::Device device = torch::kCPU;  // from "auto" | "cpu" | "cuda" | "cuda:N"
  std::string output_dir = "runs/default";
  int64_t threads = 0;  // libtorch intra-op threads (OpenBLAS gets 1); 0 = all cores
  spdlog::level::level_enum log_level = spdlog::level::info;
  dist::DistOptions dist;  // the "dist" object: data-parallel backend, timeout, buckets

  static RunOptions from_config(ConfigNode& node);  // reads the keys above from the root
};

/// Resolves "auto"/"cpu"/"cuda"/"cuda:N"; CUDA without a CUDA build is a ConfigError.
torch::Device resolve_device(const std::string& spec, const std::string& source = "config");

}  // namespace coco
