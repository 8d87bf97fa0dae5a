// coco-train: trains the model a config describes, selects the best epoch on validation,
// and prints the test-split HR/NDCG table (full ranking and sampled negatives).
#include <filesystem>
#include <iostream>
#include <numeric>

#include <CLI/CLI.hpp>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/eval/report.h"
#include "coco/model/coco_model.h"
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

// h_rs and h_aligned of the first validation users, for the projection plot.
void write_knowledge_snapshot(CoCoModelImpl& model, const Interactions& data, int64_t max_len,
                              torch::Device device, const std::string& path) {
  std::vector<int64_t> users(static_cast<size_t>(std::min<int64_t>(512, data.num_users())));
  std::iota(users.begin(), users.end(), 0);
  EvalBatch batch = make_eval_batch(data, users, 0, static_cast<int64_t>(users.size()), Split::kValid, max_len);
  batch = {batch.users.to(device), batch.history.to(device), batch.target.to(device)};
  const auto reps = model.representations(batch);
  auto rows = [](const torch::Tensor& t) {
    const auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
    Json out = Json::array();
    for (int64_t r = 0; r < c.size(0); ++r) {
      out.push_back(std::vector<double>(c[r].data_ptr<double>(), c[r].data_ptr<double>() + c.size(1)));
    }
    return out;
  };
  const auto codes = reps.codes.to(torch::kCPU).contiguous();
  write_json_atomic(path, {{"split", "valid"},
                           {"users", users},
                           {"h_rs", rows(reps.h_rs)},
                           {"h_aligned", rows(reps.h_aligned)},
                           {"codes", std::vector<int64_t>(codes.data_ptr<int64_t>(),
                                                          codes.data_ptr<int64_t>() + codes.numel())}});
}

// The test metrics of this run beside those of a baseline run's report.json.
std::string comparison_table(const Json& ours, const std::string& our_name, const std::string& baseline_dir) {
  const std::string file = (fs::path(baseline_dir) / "report.json").string();
  if (!fs::exists(file)) throw Error(file + ": no such file (train the baseline run first)");
  const Json base = read_json_file(file);
  if (!base.contains("metrics") || !base["metrics"].is_object()) {
    throw Error(file + ": expected an object at /metrics");
  }
  const std::string base_name = base.value("model", std::string("baseline"));
  std::string out = "Test, full ranking: " + our_name + " vs " + base_name + " (" + file + ")\n\n| metric | " +
                    our_name + " | " + base_name + " | change |\n|---|---:|---:|---:|\n";
  for (const auto& [name, value] : ours["metrics"].items()) {
    if (!base["metrics"].contains(name)) continue;
    const double a = value.get<double>(), b = base["metrics"][name].get<double>();
    out += fmt::format("| {} | {:.4f} | {:.4f} | {:+.2f}% |\n", name, a, b, b > 0 ? 100.0 * (a - b) / b : 0.0);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  return run_tool("coco-train", [&] {
    CLI::App app{"Train a sequential recommender and report test HR/NDCG."};
    std::string config_path, report_path, baseline_dir;
    std::vector<std::string> overrides;
    bool resume = false, overwrite = false;
    app.add_option("--config", config_path, "JSON config file")->required();
    app.add_option("--set", overrides, "override a config value: --set train.lr=0.001 (repeatable)");
    app.add_flag("--resume", resume, "continue from OUTPUT_DIR/last.pt if it exists");
    app.add_flag("--overwrite", overwrite, "discard an existing run in OUTPUT_DIR");
    app.add_option("--report", report_path, "also write the test report as JSON to this file");
    app.add_option("--baseline", baseline_dir,
                   "a finished run directory (e.g. of the plain backbone) whose test metrics are printed beside "
                   "this run's");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }

    Experiment ex = Experiment::from_file(config_path, overrides);
    log().info("[train] resolved config:\n{}", ex.config.dump(2));
    auto coco = std::dynamic_pointer_cast<CoCoModelImpl>(ex.model);
    const fs::path out_dir = ex.run.output_dir;
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
      for (const char* f : {"last.pt", "best.pt", "metrics.jsonl", "report.json", "adaptation.json",
                            "knowledge_before.json", "knowledge_after.json"}) {
        fs::remove(out_dir / f);
      }
      if (coco) {  // a fresh CoCo run: adapt the LLM (if asked), then record the start
        const AdaptResult adapted = coco->adapt_catalogue(static_cast<uint64_t>(ex.run.seed));
        if (coco->options.adapt.epochs > 0) {
          write_json_atomic((out_dir / "adaptation.json").string(), adapted.to_json());
        }
        write_knowledge_snapshot(*coco, ex.dataset.interactions, ex.data_options.max_len, ex.device,
                                 (out_dir / "knowledge_before.json").string());
      }
    }
    fs::create_directories(out_dir);
    write_json_atomic((out_dir / "config.json").string(), ex.config);

    install_interrupt_handler();
    const TrainState& state = trainer.fit();
    if (state.best_epoch < 0) throw Error("no validation was run; nothing to report");

    ex.model->set_epoch(load_checkpoint(trainer.best_path(), *ex.model, nullptr, false).state.weights_epoch());
    std::vector<EvalReport> reports = {
        evaluator.evaluate(*ex.model, Split::kTest, Protocol::kFull, ex.device),
        evaluator.evaluate(*ex.model, Split::kTest, Protocol::kSampled, ex.device)};
    Json report = {{"model", ex.model_name}, {"dataset", ex.dataset.name}, {"best_epoch", state.best_epoch},
                   {"valid_" + ex.train.metric, state.best_metric},
                   {"metrics", metrics_to_json(reports[0].metrics)}, {"groups", report_to_json(reports[0])["groups"]},
                   {"sampled", report_to_json(reports[1])}, {"peak_rss_mib", peak_rss_mib()}};
    write_json_atomic((out_dir / "report.json").string(), report);
    if (!report_path.empty()) write_json_atomic(report_path, report);
    if (coco) {
      write_knowledge_snapshot(*coco, ex.dataset.interactions, ex.data_options.max_len, ex.device,
                               (out_dir / "knowledge_after.json").string());
    }

    std::cout << "\n" << ex.model_name << " on " << ex.dataset.name << ": best epoch " << state.best_epoch
              << " (valid " << ex.train.metric << " " << state.best_metric << "), checkpoint "
              << trainer.best_path() << "\n\n"
              << markdown_table(reports, {ex.model_name, ex.model_name}) << "\n"
              << markdown_groups(reports[0]);
    if (!baseline_dir.empty()) std::cout << "\n" << comparison_table(report, ex.model_name, baseline_dir);
    return kExitOk;
  });
}
