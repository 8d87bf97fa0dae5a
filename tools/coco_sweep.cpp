// coco-sweep: runs a grid of coco-train runs (configs × --set-grid × --variant × seeds),
// resumably and a bounded number at a time, and prints one summary table.
#include <iostream>

#include <CLI/CLI.hpp>

#include "coco/common/error.h"
#include "coco/experiment/sweep.h"

int main(int argc, char** argv) {
  using namespace coco;
  return run_tool("coco-sweep", [&]() -> int {
    CLI::App app{
        "Run a grid of coco-train runs over seeds and summarise them (mean ± std, "
        "paired differences against a baseline cell)."};
    SweepOptions o;
    std::vector<std::string> grid, variants;
    bool summary_only = false;
    app.add_option("--config", o.configs, "config file (repeatable: the 'config' axis)")
        ->required();
    app.add_option("--seeds", o.seeds, "seeds, comma-separated")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--set-grid", grid, "an axis: --set-grid train.lr=0.001,0.0005 (repeatable)");
    app.add_option("--variant", variants,
                   "a value of the 'variant' axis: NAME=KEY=VALUE;KEY=VALUE, NAME= for none, "
                   "config=FILE to change the config (repeatable)");
    app.add_option("--set", o.overrides, "override for every run: --set threads=1 (repeatable)");
    app.add_option("--out", o.out_dir,
                   "the sweep's directory: one run directory per cell and "
                   "seed, summary.md, summary.json")
        ->capture_default_str();
    app.add_option("--jobs", o.jobs, "runs at a time")
        ->check(CLI::Range(1, 1024))
        ->capture_default_str();
    app.add_option("--baseline", o.baseline,
                   "the cell each cell is compared with, seed by seed: AXIS=VALUE[,AXIS=VALUE], "
                   "e.g. variant=backbone");
    app.add_option("--paired-metrics", o.paired_metrics, "metrics of the paired differences")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--train-binary", o.train_binary, "coco-train (default: beside coco-sweep)");
    app.add_flag("--summary-only", summary_only, "print the summary of the finished runs only");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }
    for (const auto& g : grid) o.grid.push_back(parse_grid(g));
    for (const auto& v : variants) o.variants.push_back(parse_variant(v));
    const int64_t failed = summary_only ? 0 : run_sweep(o, std::cerr);
    std::cout << summarize_sweep(o);
    if (failed > 0) {
      std::cerr << "coco-sweep: " << failed << " run(s) did not finish\n";
      return kExitRuntime;
    }
    return kExitOk;
  });
}
