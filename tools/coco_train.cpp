// coco-train: trains the model a config describes, selects the best epoch on validation,
// and prints the test-split HR/NDCG table (full ranking and sampled negatives).
#include <iostream>

#include <CLI/CLI.hpp>

#include "coco/common/error.h"
#include "coco/dist/launcher.h"
#include "coco/experiment/runs.h"

int main(int argc, char** argv) {
  using namespace coco;
  return run_tool("coco-train", [&]() -> int {
    CLI::App app{"Train a sequential recommender and report test HR/NDCG."};
    TrainRunOptions o;
    app.add_option("--config", o.config_file, "JSON config file")->required();
    app.add_option("--set", o.overrides,
                   "override a config value: --set train.lr=0.001 (repeatable)");
    app.add_flag("--resume", o.resume, "continue from OUTPUT_DIR/last.pt if it exists");
    app.add_flag("--overwrite", o.overwrite, "discard an existing run in OUTPUT_DIR");
    app.add_option("--report", o.report_file, "also write the test report as JSON to this file");
    app.add_option("--baseline", o.baseline_dir,
                   "a finished run directory (e.g. of the plain backbone) whose test metrics are "
                   "printed beside "
                   "this run's");
    int nproc = 1;
    app.add_option("--nproc", nproc,
                   "data-parallel workers on this machine (or launch with torchrun)")
        ->check(CLI::Range(1, 1024));
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }
    if (nproc > 1) return dist::launch_local(nproc, dist::without_nproc(argc, argv));
    train_run(o, std::cout);
    return kExitOk;
  });
}
