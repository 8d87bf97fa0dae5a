// The composition root: an experiment assembled from a config — run options, the dataset,
// the model, the evaluator and the trainer, each parsed by its own component from its
// sub-object. The tools (coco-train, coco-eval, coco-bench) and integration tests start
// here; experiment/runs.h holds what the tools do with it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "coco/data/readers.h"
#include "coco/eval/evaluator.h"
#include "coco/recommender/recommender.h"
#include "coco/train/options.h"
#include "coco/train/trainer.h"

namespace coco {

struct Experiment {
  std::string source;  // config file (for messages)
  Json config;         // resolved: every default filled in, every path as found
  RunOptions run;
  DataOptions data_options;
  TrainOptions train;
  EvalOptions eval;
  Dataset dataset;
  std::shared_ptr<RecommenderImpl> model;
  std::string model_name;  // registered backbone name, e.g. "sasrec"; "coco-sasrec" with knowledge

  /// Parses `config` (after overrides), loads the data and builds the model. Relative
  /// data and model paths are searched from the working directory and from `config_dir/..`.
  static Experiment build(Json config, const std::string& source, const std::string& config_dir);

  /// Reads a config file, applies "a.b=v" overrides, then build().
  static Experiment from_file(const std::string& path, const std::vector<std::string>& overrides);

  Evaluator make_evaluator() const;
  /// The trainer of this experiment's model, validating with `evaluator`.
  Trainer make_trainer(const Evaluator& evaluator) const;
  /// What the model's run stages see (RecommenderImpl::start_run, finish_run).
  RunContext run_context() const;
};

}  // namespace coco
