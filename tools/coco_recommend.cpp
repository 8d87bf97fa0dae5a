// coco-recommend: the top-K items of every user (or those listed in a file) from a trained
// checkpoint, as TSV or JSON lines, and the vectors that serve them (--export).
#include <iostream>

#include <CLI/CLI.hpp>

#include "coco/common/error.h"
#include "coco/experiment/runs.h"

int main(int argc, char** argv) {
  using namespace coco;
  return run_tool("coco-recommend", [&]() -> int {
    CLI::App app{"Top-K recommendations of a CoCo checkpoint, and embeddings for serving."};
    RecommendRunOptions o;
    app.add_option("checkpoint", o.checkpoint, "checkpoint file (best.pt) or a run directory")
        ->required();
    app.add_option("-k,--k", o.k, "items per user (0: only --export)")
        ->check(CLI::Range(0, 1 << 30))
        ->capture_default_str();
    app.add_option("--split", o.split,
                   "the histories: test or valid (those coco-eval ranks with, the held-out items "
                   "excluded) or next (the whole sequence: what to recommend now)")
        ->check(CLI::IsMember({"valid", "test", "next"}))
        ->capture_default_str();
    app.add_flag("--include-history", o.include_history,
                 "allow items the user already has (excluded by default)");
    app.add_flag("--backbone-only", o.backbone_only,
                 "CoCo checkpoints: rank with the backbone's own h_rs, without the knowledge");
    app.add_option("--users", o.users_file, "file of user ids (1-based, one per line)");
    app.add_option("--format", o.format, "tsv (user, rank, item, score) or jsonl")
        ->check(CLI::IsMember({"tsv", "jsonl"}))
        ->capture_default_str();
    app.add_flag("--titles", o.titles, "add each item's title");
    app.add_option("-o,--output", o.output_file, "write the lists here (default: stdout)");
    app.add_option("--export", o.export_dir,
                   "also write DIR/embeddings.safetensors and DIR/embeddings.json (users, items, "
                   "how to score) for an ANN index");
    app.add_option("--set", o.overrides,
                   "override the data or LLM path or an eval setting: --set data.path=DIR");
    app.add_option("--device", o.device, "auto, cpu, cuda or cuda:N (default: the run's)");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }
    if (o.k == 0 && o.export_dir.empty()) {
      std::cerr << "coco-recommend: --k 0 writes nothing without --export\n";
      return kExitUsage;
    }
    recommend_run(o, std::cout);
    return kExitOk;
  });
}
