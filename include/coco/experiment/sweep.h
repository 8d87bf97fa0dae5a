// coco-sweep: a grid of coco-train runs (configs × --set-grid values × named variants ×
// seeds), a bounded number at a time, each in a run directory of its own; a second call
// resumes it (finished runs are kept, interrupted ones continue from their last.pt). Then
// one summary table: mean ± std over seeds per cell, and the paired difference of each cell
// against a baseline cell, seed by seed.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "coco/config/config.h"

namespace coco {

struct SweepOptions {
  std::vector<std::string> configs;  // the "config" axis
  std::vector<int64_t> seeds{1, 2, 3};
  /// --set-grid key=a,b: one axis per key.
  std::vector<std::pair<std::string, std::vector<std::string>>> grid;
  /// --variant NAME=K=V;K=V (NAME= alone: no change): the "variant" axis. A variant's
  /// config=FILE replaces the cell's config file.
  std::vector<std::pair<std::string, std::vector<std::string>>> variants;
  std::vector<std::string> overrides;  // --set for every run
  std::string out_dir = "runs/sweep";
  int64_t jobs = 1;      // runs at a time
  std::string baseline;  // "axis=value,...": the cell each cell is compared with
  std::vector<std::string> paired_metrics{"NDCG@10", "HR@10"};
  std::string train_binary;  // coco-train; "" = the one beside this executable
};

/// One point of the grid: its name (the run directory under out_dir), the value of each
/// axis, and the coco-train arguments that make it.
struct SweepCell {
  std::string name;
  std::vector<std::pair<std::string, std::string>> axes;  // axis → value
  std::string config;
  std::vector<std::string> overrides;  // "k=v", before the seed's and output_dir's
};

/// Parses "--variant" text NAME=K=V;K=V; ConfigError naming `text` when malformed.
std::pair<std::string, std::vector<std::string>> parse_variant(const std::string& text);
/// Parses "--set-grid" text KEY=A,B; ConfigError naming `text` when malformed.
std::pair<std::string, std::vector<std::string>> parse_grid(const std::string& text);

/// The cells in order: configs, then grid keys as given, then variants (the last fastest).
std::vector<SweepCell> sweep_cells(const SweepOptions& options);

/// Runs every (cell, seed) that has no report yet; returns how many failed.
int64_t run_sweep(const SweepOptions& options, std::ostream& log);

/// The Markdown tables of the finished runs under out_dir (full ranking, then sampled
/// negatives); also written to out_dir/summary.md and summary.json.
std::string summarize_sweep(const SweepOptions& options);

}  // namespace coco
