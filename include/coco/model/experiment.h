// An experiment assembled from a config: run options, the dataset, the model and the
// evaluation/training options, each parsed by its own component from its sub-object.
// Tools (coco-train, coco-eval, coco-bench) and integration tests start here.
#pragma once

#include <memory>
#include <string>

#include "coco/backbones/backbone.h"
#include "coco/data/readers.h"
#include "coco/eval/evaluator.h"
#include "coco/train/options.h"

namespace coco {

struct Experiment {
  std::string source;      // config file (for messages)
  Json config;             // resolved: every default filled in
  RunOptions run;
  DataOptions data_options;
  TrainOptions train;
  EvalOptions eval;
  Dataset dataset;
  std::shared_ptr<RecommenderImpl> model;
  std::string model_name;  // registered backbone name, e.g. "sasrec"; "coco-sasrec" with knowledge
  torch::Device device = torch::kCPU;

  /// Parses `config` (after overrides), loads the data and builds the model. Relative
  /// data paths are searched from the working directory and from `config_dir/..`.
  static Experiment build(Json config, const std::string& source, const std::string& config_dir);

  /// Reads a config file, applies "a.b=v" overrides, then build().
  static Experiment from_file(const std::string& path, const std::vector<std::string>& overrides);
};

}  // namespace coco
