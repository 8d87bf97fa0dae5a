// coco-eval: evaluates a checkpoint on the validation or test split with the full-ranking
// and/or sampled-negative protocol; prints Markdown tables and optionally writes JSON.
#include <iostream>

#include <CLI/CLI.hpp>

#include "coco/common/error.h"
#include "coco/dist/launcher.h"
#include "coco/experiment/runs.h"

int main(int argc, char** argv) {
  using namespace coco;
  return run_tool("coco-eval", [&]() -> int {
    CLI::App app{"Evaluate a CoCo checkpoint (HR@K, NDCG@K, MRR)."};
    EvalRunOptions o;
    std::string split = "test", protocol = "full";
    double knowledge_scale = 1.0;
    app.add_option("checkpoint", o.checkpoint, "checkpoint file (best.pt) or a run directory")
        ->required();
    app.add_option("--split", split, "valid or test")->check(CLI::IsMember({"valid", "test"}));
    app.add_option("--protocol", protocol, "full, sampled or both")
        ->check(CLI::IsMember({"full", "sampled", "both"}));
    app.add_flag("--include-history", o.include_history,
                 "full ranking: keep the user's earlier items in the ranking (as RecBole does)");
    auto* alone =
        app.add_flag("--backbone-only", o.backbone_only,
                     "CoCo checkpoints: rank with the backbone's own h_rs, without the knowledge");
    auto* scale = app.add_option("--knowledge-scale", knowledge_scale,
                                 "CoCo checkpoints: h_u = h_rs + A (fused h_u - h_rs); 1 as "
                                 "trained, 0 the backbone alone")
                      ->check(CLI::Range(0.0, 10.0))
                      ->excludes(alone);
    app.add_option("--set", o.overrides,
                   "override an eval setting, the data or LLM path: --set eval.num_negatives=99");
    app.add_option("--device", o.device, "auto, cpu, cuda or cuda:N (default: the run's)");
    app.add_option("--report", o.report_file, "write the results as JSON to this file");
    int nproc = 1;
    app.add_option("--nproc", nproc,
                   "data-parallel workers on this machine (or launch with torchrun)")
        ->check(CLI::Range(1, 1024));
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }
    o.split = split == "valid" ? Split::kValid : Split::kTest;
    o.full = protocol != "sampled";
    o.sampled = protocol != "full";
    if (*scale) o.knowledge_scale = knowledge_scale;
    if (nproc > 1) return dist::launch_local(nproc, dist::without_nproc(argc, argv));
    eval_run(o, std::cout);
    return kExitOk;
  });
}
