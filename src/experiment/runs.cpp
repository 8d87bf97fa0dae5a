// coco-train's and coco-eval's runs.
#include "coco/experiment/runs.h"

#include <filesystem>

#include <fmt/format.h>
#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/eval/report.h"
#include "coco/experiment/experiment.h"
#include "coco/model/coco_model.h"
#include "coco/train/checkpoint.h"

namespace fs = std::filesystem;

namespace coco {

namespace {

// Settings a resumed run may change: they alter neither the model nor the data.
const char* kResumable[] = {"/train/epochs",
                            "/train/patience",
                            "/train/max_seconds",
                            "/train/nonfinite",
                            "/log_level",
                            "/threads",
                            "/device",
                            "/dist"};

// The first JSON path where two configs differ (outside kResumable), or "" when equal.
std::string first_difference(Json a, Json b) {
  for (const char* path : kResumable) {
    const Json::json_pointer p(path);
    a[p] = nullptr;  // absent from a checkpoint older than the key is no difference
    b[p] = nullptr;
  }
  const Json patch = Json::diff(a, b);
  return patch.empty() ? "" : patch[0]["path"].get<std::string>();
}

// The test metrics of this run beside those of a baseline run's report.json.
std::string comparison_table(const Json& ours, const std::string& our_name,
                             const std::string& baseline_dir) {
  const std::string file = (fs::path(baseline_dir) / "report.json").string();
  if (!fs::exists(file)) throw Error(file + ": no such file (train the baseline run first)");
  const Json base = read_json_file(file);
  if (!base.contains("metrics") || !base["metrics"].is_object()) {
    throw Error(file + ": expected an object at /metrics");
  }
  const std::string base_name = base.value("model", std::string("baseline"));
  std::string out = "Test, full ranking: " + our_name + " vs " + base_name + " (" + file +
                    ")\n\n| metric | " + our_name + " | " + base_name +
                    " | change |\n|---|---:|---:|---:|\n";
  for (const auto& [name, value] : ours["metrics"].items()) {
    if (!base["metrics"].contains(name)) continue;
    const double a = value.get<double>(), b = base["metrics"][name].get<double>();
    out += fmt::format("| {} | {:.4f} | {:.4f} | {:+.2f}% |\n", name, a, b,
                       b > 0 ? 100.0 * (a - b) / b : 0.0);
  }
  return out;
}

// Temporary files of atomic writes that a killed process left behind (name.tmp-PID).
void remove_partial_writes(const std::string& dir) {
  if (!fs::is_directory(dir)) return;
  for (const auto& f : fs::directory_iterator(dir)) {
    if (f.path().filename().string().find(".tmp-") != std::string::npos) fs::remove(f.path());
  }
}

// Resumes the run in the trainer's directory, refuses to overwrite it, or clears it for a
// new run (which then starts with the model's own stages). Returns whether it resumed.
bool prepare_run_dir(const TrainRunOptions& options, Experiment& ex, Trainer& trainer) {
  const std::string last = trainer.last_path();
  if (dist::world().is_main()) remove_partial_writes(ex.run.output_dir);
  if (fs::exists(last) && options.resume) {
    const Json saved = read_checkpoint_meta(last).config;
    if (const auto where = first_difference(saved, ex.config); !where.empty()) {
      throw ConfigError(options.config_file + ": config differs from the checkpoint's at " + where +
                        " (" + last + "); use --overwrite to start a new run");
    }
    trainer.resume(last);
    return true;
  }
  if (fs::exists(last) && !options.overwrite) {
    throw Error(ex.run.output_dir + " already holds a run (" + last +
                "); pass --resume to continue it or --overwrite to start over");
  }
  if (dist::world().is_main()) {
    std::vector<std::string> files = {"last.pt", "best.pt", "metrics.jsonl", "report.json"};
    for (const auto& f : ex.model->run_files()) files.push_back(f);
    for (const auto& f : files) fs::remove(fs::path(ex.run.output_dir) / f);
  }
  dist::world().barrier("barrier after clearing " + ex.run.output_dir);
  return false;
}

// Ranks other than 0 print nothing.
std::ostream& shown(std::ostream& out) {
  static std::ostream nowhere(nullptr);
  return dist::world().is_main() ? out : nowhere;
}

}  // namespace

void train_run(const TrainRunOptions& options, std::ostream& shown_out) {
  Experiment ex = Experiment::from_file(options.config_file, options.overrides);
  std::ostream& out = shown(shown_out);
  const bool is_main = dist::world().is_main();
  log().debug("[train] resolved config:\n{}", ex.config.dump(2));
  const fs::path dir = ex.run.output_dir;
  const Evaluator evaluator = ex.make_evaluator();
  Trainer trainer = ex.make_trainer(evaluator);
  fs::create_directories(dir);
  if (!prepare_run_dir(options, ex, trainer)) ex.model->start_run(ex.run_context());
  if (is_main) write_json_atomic((dir / "config.json").string(), ex.config);
  log().info("[train] {} on {}: resolved config in {}", ex.model_name, ex.dataset.name,
             (dir / "config.json").string());

  install_interrupt_handler();
  const TrainState& state = trainer.fit();
  if (state.best_epoch < 0) throw Error("no validation was run; nothing to report");

  ex.model->set_epoch(
      load_checkpoint(trainer.best_path(), *ex.model, nullptr, false).state.weights_epoch());
  const std::vector<EvalReport> reports = {
      evaluator.evaluate(*ex.model, Split::kTest, Protocol::kFull, ex.run.device),
      evaluator.evaluate(*ex.model, Split::kTest, Protocol::kSampled, ex.run.device)};
  const Json report = {{"model", ex.model_name},
                       {"dataset", ex.dataset.name},
                       {"best_epoch", state.best_epoch},
                       {"valid_" + ex.train.metric, state.best_metric},
                       {"metrics", metrics_to_json(reports[0].metrics)},
                       {"groups", report_to_json(reports[0])["groups"]},
                       {"sampled", report_to_json(reports[1])},
                       {"peak_rss_mib", peak_rss_mib()}};
  if (is_main) {
    write_json_atomic((dir / "report.json").string(), report);
    if (!options.report_file.empty()) write_json_atomic(options.report_file, report);
  }
  ex.model->finish_run(ex.run_context());

  out << "\n"
      << ex.model_name << " on " << ex.dataset.name << ": best epoch " << state.best_epoch
      << " (valid " << ex.train.metric << " " << state.best_metric << "), checkpoint "
      << trainer.best_path() << "\n\n"
      << markdown_table(reports, {ex.model_name, ex.model_name}) << "\n"
      << markdown_groups(reports[0]);
  if (!options.baseline_dir.empty())
    out << "\n" << comparison_table(report, ex.model_name, options.baseline_dir);
}

namespace {

// The config a checkpoint was trained with, and the changes an evaluation may make to it.
Json evaluation_config(const EvalRunOptions& options, const std::string& checkpoint) {
  Json config = read_checkpoint_meta(checkpoint).config;
  for (const auto& o : options.overrides) {
    if (o.rfind("eval.", 0) != 0 && o.rfind("data.path=", 0) != 0 && o.rfind("device=", 0) != 0 &&
        o.rfind("coco.knowledge.llm.path=", 0) != 0) {
      throw ConfigError(
          "--set " + o +
          ": only eval.*, data.path, coco.knowledge.llm.path and device can change after training");
    }
    apply_override(config, o);
  }
  if (options.include_history) config["eval"]["exclude_history"] = false;
  if (!options.device.empty()) config["device"] = options.device;
  return config;
}

// --backbone-only and --knowledge-scale: the CoCo model ranked without, or with less of,
// its knowledge.
void apply_knowledge_switches(const EvalRunOptions& options, const std::string& checkpoint,
                              Experiment& ex) {
  if (!options.backbone_only && !options.knowledge_scale) return;
  const auto coco = std::dynamic_pointer_cast<CoCoModelImpl>(ex.model);
  const std::string flag = options.backbone_only ? "--backbone-only" : "--knowledge-scale";
  if (!coco)
    throw ConfigError(checkpoint + ": " + flag + " needs a CoCo checkpoint, this is " +
                      ex.model_name);
  if (options.backbone_only) {
    ex.model = coco->backbone();
    ex.model_name += " (backbone only)";
  } else {
    coco->knowledge_scale = *options.knowledge_scale;
    ex.model_name += fmt::format(" (knowledge scale {})", *options.knowledge_scale);
  }
}

}  // namespace

void eval_run(const EvalRunOptions& options, std::ostream& shown_out) {
  const std::string checkpoint = fs::is_directory(options.checkpoint)
                                     ? (fs::path(options.checkpoint) / "best.pt").string()
                                     : options.checkpoint;
  Experiment ex = Experiment::build(evaluation_config(options, checkpoint), checkpoint, ".");
  ex.model->set_epoch(load_checkpoint(checkpoint, *ex.model, nullptr, false).state.weights_epoch());
  ex.model->to(ex.run.device);
  apply_knowledge_switches(options, checkpoint, ex);

  const Evaluator evaluator = ex.make_evaluator();
  std::vector<EvalReport> reports;
  if (options.full)
    reports.push_back(evaluator.evaluate(*ex.model, options.split, Protocol::kFull, ex.run.device));
  if (options.sampled) {
    reports.push_back(
        evaluator.evaluate(*ex.model, options.split, Protocol::kSampled, ex.run.device));
  }
  const std::vector<std::string> labels(reports.size(), ex.model_name);
  std::ostream& out = shown(shown_out);
  out << markdown_table(reports, labels) << "\n" << markdown_groups(reports[0]);
  if (!options.report_file.empty() && dist::world().is_main()) {
    Json report = report_to_json(reports[0]);
    report["model"] = ex.model_name;
    report["dataset"] = ex.dataset.name;
    report["checkpoint"] = checkpoint;
    if (reports.size() > 1) report["sampled"] = report_to_json(reports[1]);
    write_json_atomic(options.report_file, report);
  }
}

}  // namespace coco
