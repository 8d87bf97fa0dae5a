// The one trainer for every model: mini-batch optimisation with warm-up/decay schedules
// and gradient clipping, validation with early stopping and best-model selection (on
// validation only), atomic checkpoints with exact resume, Ctrl-C handling, and a
// JSON-lines log of every epoch. Data-parallel (dist::world() larger than one): each rank
// trains on its share of every global batch, gradients are all-reduced (dist/gradient_sync.h),
// validation is sharded, and only rank 0 writes files.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <torch/optim/optimizer.h>

#include "coco/data/batches.h"
#include "coco/dist/gradient_sync.h"
#include "coco/eval/evaluator.h"
#include "coco/recommender/recommender.h"
#include "coco/train/checkpoint.h"
#include "coco/train/options.h"

namespace coco {

/// Everything a trainer needs besides the model and the data.
struct TrainerContext {
  Json config;             // resolved config, stored in checkpoints
  std::string output_dir;  // last.pt, best.pt, metrics.jsonl
  int64_t seed = 42;
  torch::Device device = torch::kCPU;
  double bucket_mb = 25;        // data-parallel gradient buckets (dist.bucket_mb)
  bool check_replicas = false;  // data-parallel: compare every rank's weights after each step
};

class Trainer {
 public:
  Trainer(std::shared_ptr<RecommenderImpl> model, const Interactions& data, TrainOptions options,
          const Evaluator& evaluator, TrainerContext context);

  /// Restores model, optimiser, progress and RNG from a checkpoint written by this trainer.
  void resume(const std::string& checkpoint);

  /// Trains until the epoch budget is spent, early stopping triggers or train.max_seconds
  /// runs out (the run then stays resumable). Throws
  /// Interrupted (after saving last.pt) when interrupt_requested() becomes true.
  const TrainState& fit();

  const TrainState& state() const { return state_; }
  std::string last_path() const;
  std::string best_path() const;
  std::string log_path() const;

  /// Called after every optimiser step with the global step count (tests use it).
  std::function<void(int64_t step)> on_step;

 private:
  void train_epoch();
  void end_epoch();
  /// Validates after the 1-based `epoch`, keeps best.pt and the early-stopping count; adds
  /// the results to the epoch's log `record` and returns them for the epoch's line.
  std::string validate(int64_t epoch, Json& record);
  void train_batch(const TrainBatch& batch, double weight);
  /// The loss terms of the global batch: this rank's weighted by its share, summed.
  std::map<std::string, double> reduce_loss(const LossTerms& loss, double weight) const;
  static bool all_finite(const std::map<std::string, double>& loss);
  bool any_rank(bool flag) const;  // data-parallel: the flag of any rank
  /// A NaN or Inf loss or gradient (no update was made): train.nonfinite stops or skips.
  void nonfinite_step(const std::map<std::string, double>& loss, double norm);
  void save_last();
  void save(const std::string& path, bool with_optimizer);  // rank 0 writes, all wait
  bool is_main() const { return dist::world().is_main(); }

  std::shared_ptr<RecommenderImpl> model_;
  const Interactions& data_;
  TrainOptions options_;
  const Evaluator& evaluator_;
  TrainerContext context_;
  TrainLoader loader_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<double> base_lr_;               // per parameter group
  std::vector<std::string> group_names_;      // per parameter group
  std::unique_ptr<dist::GradientSync> sync_;  // data-parallel only
  TrainState state_;
  std::chrono::steady_clock::time_point fit_start_;
  bool out_of_time_ = false;  // train.max_seconds spent in this fit() call
  double wait_seconds_logged_ = 0;
};

/// Ctrl-C handling: the first SIGINT asks the trainer to stop after the current batch
/// (it saves a checkpoint); a second one terminates the process.
void install_interrupt_handler();
bool interrupt_requested();
void request_interrupt(bool value = true);

/// Peak resident memory of this process in MiB.
double peak_rss_mib();

}  // namespace coco
