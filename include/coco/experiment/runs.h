// What the tools do, as library calls: coco-train's run (train, select on validation, test,
// report), coco-eval's evaluation of a checkpoint and coco-recommend's top-K lists and
// export. The tools only parse their command lines into these options.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "coco/data/batches.h"

namespace coco {

struct TrainRunOptions {
  std::string config_file;
  std::vector<std::string> overrides;  // "a.b=v"
  bool resume = false;                 // continue from OUTPUT_DIR/last.pt if it exists
  bool overwrite = false;              // discard an existing run in OUTPUT_DIR
  std::string report_file;             // also write the test report here
  std::string baseline_dir;            // a finished run whose test metrics are shown beside
};

/// Trains the model the config describes (or resumes it), selects the best epoch on
/// validation, evaluates it on test with both protocols and writes report.json; prints the
/// results tables to `out`.
void train_run(const TrainRunOptions& options, std::ostream& out);

struct EvalRunOptions {
  std::string checkpoint;  // best.pt, last.pt or a run directory
  Split split = Split::kTest;
  bool full = true, sampled = false;      // the protocols to run
  bool include_history = false;           // full ranking: keep the user's earlier items
  bool backbone_only = false;             // CoCo: rank with the backbone's own h_rs
  std::optional<double> knowledge_scale;  // CoCo: h_rs + A (h_u - h_rs)
  std::vector<std::string> overrides;     // eval.*, data.path, coco.knowledge.llm.path, device
  std::string device;                     // "" = the run's
  std::string report_file;
};

/// Evaluates a checkpoint and prints the results tables to `out`.
void eval_run(const EvalRunOptions& options, std::ostream& out);

struct RecommendRunOptions {
  std::string checkpoint;      // best.pt, last.pt or a run directory
  std::string split = "test";  // valid, test (the histories coco-eval ranks) or next
  int64_t k = 10;
  bool include_history = false;        // allow items the user already has
  bool backbone_only = false;          // CoCo: the backbone's own h_rs
  std::string users_file;              // user ids (1-based, as in sequences.txt), one per line
  std::string format = "tsv";          // tsv or jsonl
  bool titles = false;                 // add each item's title
  std::vector<std::string> overrides;  // data.path, coco.knowledge.llm.path, eval.batch_size
  std::string device;                  // "" = the run's
  std::string output_file;             // "" = `out`
  std::string export_dir;              // also (or instead, with k = 0) export the vectors
};

/// Writes the top-K lists of a checkpoint (and the exported vectors, when asked).
void recommend_run(const RecommendRunOptions& options, std::ostream& out);

}  // namespace coco
