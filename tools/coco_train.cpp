// coco-train: trains the model a config describes, selects the best epoch on validation,
// and prints the test-split HR/NDCG table (full ranking and sampled negatives).
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/eval/report.h"
#include "coco/model/experiment.h"
#include "coco/train/trainer.h"

namespace fs = std::filesystem;
using namespace coco;

namespace {

// Settings a resumed run may change: they alter neither the model nor the data.
const char* kResumable[] = {"/train/epochs", "/train/patience", "/train/max_seconds", "/log_level",
                            "/threads", "/device"};

// The first JSON path where two configs differ (outside kResumable), or "" when equal.
std::string first_difference(Json a, Json b) {
  for (const char* path : kResumable) {
    const Json::json_pointer p(path);
    if (a.contains(p)) a[p] = nullptr;
    if (b.contains(p)) b[p] = nullptr;
  }
  const Json patch = Json::diff(a, b);
  return patch.empty() ? "" : patch[0]["path"].get<std::string>();
}

}  // namespace

int main(int argc, char** argv) {
  return run_tool("coco-train", [&] {
    CLI::App app{"Train a sequential recommender and report test HR/NDCG."};
    std::string config_path, report_path;
    std::vector<std::string> overrides;
    bool resume = false, overwrite = false;
    app.add_option("--config", config_path, "JSON config file")->required();
    app.add_option("--set", overrides, "override a config value: --set train.lr=0.001 (repeatable)");
    app.add_flag("--resume", resume, "continue from OUTPUT_DIR/last.pt if it exists");
    app.add_flag("--overwrite", overwrite, "discard an existing run in OUTPUT_DIR");
    app.add_option("--report", report_path, "also write the test report as JSON to this file");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }

    Experiment ex = Experiment::from_file(config_path, overrides);
    log().info("[train] resolved config:\n{}", ex.config.dump(2));
    Evaluator evaluator(ex.dataset.interactions, ex.eval, ex.data_options.max_len);
    TrainerContext ctx{ex.config, ex.run.output_dir, ex.run.seed, ex.data_options.max_len, ex.device};
    Trainer trainer(ex.model, ex.dataset.interactions, ex.train, evaluator, ctx);

    const std::string last = trainer.last_path();
    if (fs::exists(last) && resume) {
      const Json saved = read_checkpoint_meta(last).config;
      if (const auto where = first_difference(saved, ex.config); !where.empty()) {
        throw ConfigError(config_path + ": config differs from the checkpoint's at " + where +
                          " (" + last + "); use --overwrite to start a new run");
      }
      trainer.resume(last);
    } else if (fs::exists(last) && !overwrite) {
      throw Error(ex.run.output_dir + " already holds a run (" + last +
                  "); pass --resume to continue it or --overwrite to start over");
    } else {
      for (const char* f : {"last.pt", "best.pt", "metrics.jsonl", "report.json"}) {
        fs::remove(fs::path(ex.run.output_dir) / f);
      }
    }
    fs::create_directories(ex.run.output_dir);
    write_json_atomic((fs::path(ex.run.output_dir) / "config.json").string(), ex.config);

    install_interrupt_handler();
    const TrainState& state = trainer.fit();
    if (state.best_epoch < 0) throw Error("no validation was run; nothing to report");

    load_checkpoint(trainer.best_path(), *ex.model, nullptr, false);
    std::vector<EvalReport> reports = {
        evaluator.evaluate(*ex.model, Split::kTest, Protocol::kFull, ex.device),
        evaluator.evaluate(*ex.model, Split::kTest, Protocol::kSampled, ex.device)};
    Json report = {{"model", ex.model_name}, {"dataset", ex.dataset.name}, {"best_epoch", state.best_epoch},
                   {"valid_" + ex.train.metric, state.best_metric},
                   {"metrics", metrics_to_json(reports[0].metrics)}, {"groups", report_to_json(reports[0])["groups"]},
                   {"sampled", report_to_json(reports[1])}, {"peak_rss_mib", peak_rss_mib()}};
    write_json_atomic((fs::path(ex.run.output_dir) / "report.json").string(), report);
    if (!report_path.empty()) write_json_atomic(report_path, report);

    std::cout << "\n" << ex.model_name << " on " << ex.dataset.name << ": best epoch " << state.best_epoch
              << " (valid " << ex.train.metric << " " << state.best_metric << "), checkpoint "
              << trainer.best_path() << "\n\n"
              << markdown_table(reports, {ex.model_name, ex.model_name}) << "\n"
              << markdown_groups(reports[0]);
    return kExitOk;
  });
}
