// coco-train's, coco-eval's and coco-recommend's runs.
#include "coco/experiment/runs.h"

#include <chrono>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>
#include <torch/torch.h>

#include "coco/common/atomic_file.h"
#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/data/text.h"
#include "coco/eval/recommend.h"
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

// best.pt of a run directory, or the checkpoint file itself.
std::string checkpoint_file(const std::string& path) {
  return fs::is_directory(path) ? (fs::path(path) / "best.pt").string() : path;
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
Json evaluation_config(const std::vector<std::string>& overrides, const std::string& checkpoint) {
  Json config = read_checkpoint_meta(checkpoint).config;
  for (const auto& o : overrides) {
    if (o.rfind("eval.", 0) != 0 && o.rfind("data.path=", 0) != 0 && o.rfind("device=", 0) != 0 &&
        o.rfind("coco.knowledge.llm.path=", 0) != 0) {
      throw ConfigError(
          "--set " + o +
          ": only eval.*, data.path, coco.knowledge.llm.path and device can change after training");
    }
    apply_override(config, o);
  }
  return config;
}

// The model of a checkpoint, built from its config with `overrides`, on its device.
Experiment trained_experiment(const std::string& checkpoint, std::vector<std::string> overrides,
                              const std::string& device) {
  if (!device.empty()) overrides.push_back("device=\"" + device + "\"");
  Experiment ex = Experiment::build(evaluation_config(overrides, checkpoint), checkpoint, ".");
  ex.model->set_epoch(load_checkpoint(checkpoint, *ex.model, nullptr, false).state.weights_epoch());
  ex.model->to(ex.run.device);
  return ex;
}

// --backbone-only and --knowledge-scale: the CoCo model ranked without, or with less of,
// its knowledge.
void apply_knowledge_switches(bool backbone_only, std::optional<double> knowledge_scale,
                              const std::string& checkpoint, Experiment& ex) {
  if (!backbone_only && !knowledge_scale) return;
  const auto coco = std::dynamic_pointer_cast<CoCoModelImpl>(ex.model);
  const std::string flag = backbone_only ? "--backbone-only" : "--knowledge-scale";
  if (!coco)
    throw ConfigError(checkpoint + ": " + flag + " needs a CoCo checkpoint, this is " +
                      ex.model_name);
  if (backbone_only) {
    ex.model = coco->backbone();
    ex.model_name += " (backbone only)";
  } else {
    coco->knowledge_scale = *knowledge_scale;
    ex.model_name += fmt::format(" (knowledge scale {})", *knowledge_scale);
  }
}

}  // namespace

void eval_run(const EvalRunOptions& options, std::ostream& shown_out) {
  const std::string checkpoint = checkpoint_file(options.checkpoint);
  std::vector<std::string> overrides = options.overrides;
  if (options.include_history) overrides.push_back("eval.exclude_history=false");
  Experiment ex = trained_experiment(checkpoint, overrides, options.device);
  apply_knowledge_switches(options.backbone_only, options.knowledge_scale, checkpoint, ex);

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

namespace {

// The users (0-based) listed in `file`, one 1-based id per line; every user when empty.
std::vector<int64_t> read_users(const std::string& file, int64_t num_users) {
  std::vector<int64_t> users;
  if (file.empty()) return users;
  const std::string text = read_file(file);
  for_each_line(file, text, [&](int64_t line_no, std::string_view line) {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty()) return;
    int64_t id = 0;
    if (!parse_uint(line, id) || id < 1 || id > num_users) {
      throw DataError(file + ":" + std::to_string(line_no) + ": expected a user id in 1.." +
                      std::to_string(num_users) + ", got '" + std::string(line) + "'");
    }
    users.push_back(id - 1);
  });
  if (users.empty()) throw DataError(file + ": no user ids (expected one per line)");
  return users;
}

// The lists as TSV (user, rank, item, score[, title]) or JSON lines.
void write_lists(const Recommendations& r, const RecommendRunOptions& o, const ItemCatalog& cat,
                 std::ostream& out) {
  const auto items = r.items.accessor<int64_t, 2>();
  const auto scores = r.scores.accessor<float, 2>();
  auto title = [&](int64_t item) -> const std::string& {
    return cat.title[static_cast<size_t>(item - 1)];
  };
  if (o.format == "tsv") out << "user\trank\titem\tscore" << (o.titles ? "\ttitle" : "") << "\n";
  for (size_t row = 0; row < r.users.size(); ++row) {
    const auto i = static_cast<int64_t>(row);
    if (o.format == "tsv") {
      for (int64_t k = 0; k < items.size(1); ++k) {
        out << r.users[row] + 1 << '\t' << k + 1 << '\t' << items[i][k] << '\t'
            << fmt::format("{:.9g}", scores[i][k]);
        if (o.titles) out << '\t' << title(items[i][k]);
        out << '\n';
      }
      continue;
    }
    Json line = {{"user", r.users[row] + 1}, {"items", Json::array()}, {"scores", Json::array()}};
    for (int64_t k = 0; k < items.size(1); ++k) {
      line["items"].push_back(items[i][k]);
      line["scores"].push_back(scores[i][k]);
      if (o.titles) line["titles"].push_back(title(items[i][k]));
    }
    out << line.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  }
}

// CoCo's own vectors beside h_u: the backbone's h_rs and the aligned knowledge.
std::vector<ExportedVectors> coco_vectors(Experiment& ex, const RecommendOptions& o) {
  const auto coco = std::dynamic_pointer_cast<CoCoModelImpl>(ex.model);
  if (!coco) return {};
  const auto both =
      per_user(*coco, ex.dataset.interactions, o, ex.run.device, [&](const EvalBatch& b) {
        const auto r = coco->representations(b);
        return torch::cat({r.h_rs, r.h_aligned}, 1);
      });  // [U, 2d]
  const auto halves = both.chunk(2, 1);
  return {{"users_backbone", "[U, d] float32: the backbone's own h_rs (coco-eval --backbone-only)",
           halves[0].contiguous()},
          {"knowledge", "[U, d] float32: the aligned LLM knowledge h_aligned fused into users",
           halves[1].contiguous()}};
}

}  // namespace

void recommend_run(const RecommendRunOptions& options, std::ostream& shown_out) {
  const std::string checkpoint = checkpoint_file(options.checkpoint);
  Experiment ex = trained_experiment(checkpoint, options.overrides, options.device);
  apply_knowledge_switches(options.backbone_only, std::nullopt, checkpoint, ex);
  RecommendOptions o;
  o.k = options.k;
  if (options.split != "next") o.split = options.split == "valid" ? Split::kValid : Split::kTest;
  o.exclude_history = !options.include_history;
  o.batch_size = ex.eval.batch_size;
  o.max_len = ex.eval.max_len;
  const Interactions& data = ex.dataset.interactions;

  if (!options.export_dir.empty()) {
    const Json describe = {
        {"model", ex.model_name}, {"dataset", ex.dataset.name}, {"checkpoint", checkpoint}};
    export_embeddings(*ex.model, data, o, ex.run.device, options.export_dir, describe,
                      coco_vectors(ex, o));
    log().info("[recommend] exported {} users and {} items to {}/embeddings.safetensors",
               data.num_users(), data.num_items, options.export_dir);
  }
  if (options.k == 0) return;
  const auto start = std::chrono::steady_clock::now();
  const Recommendations r = recommend(
      *ex.model, data, read_users(options.users_file, data.num_users()), o, ex.run.device);
  log().info("[recommend] top-{} of {} users in {:.2f} s", o.k, r.users.size(),
             std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (options.output_file.empty()) {
    write_lists(r, options, ex.dataset.catalog, shown(shown_out));
    return;
  }
  std::ostringstream text;
  write_lists(r, options, ex.dataset.catalog, text);
  write_file_atomic(options.output_file, text.str());
}

}  // namespace coco
