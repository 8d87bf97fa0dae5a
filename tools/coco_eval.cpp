// coco-eval: evaluates a checkpoint on the validation or test split with the full-ranking
// and/or sampled-negative protocol; prints Markdown tables and optionally writes JSON.
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "coco/common/error.h"
#include "coco/eval/report.h"
#include "coco/model/coco_model.h"
#include "coco/model/experiment.h"
#include "coco/train/checkpoint.h"

namespace fs = std::filesystem;
using namespace coco;

int main(int argc, char** argv) {
  return run_tool("coco-eval", [&] {
    CLI::App app{"Evaluate a CoCo checkpoint (HR@K, NDCG@K, MRR)."};
    std::string checkpoint, split = "test", protocol = "full", report_path, device;
    std::vector<std::string> overrides;
    bool include_history = false, backbone_only = false;
    double knowledge_scale = 1.0;
    app.add_option("checkpoint", checkpoint, "checkpoint file (best.pt) or a run directory")->required();
    app.add_option("--split", split, "valid or test")->check(CLI::IsMember({"valid", "test"}));
    app.add_option("--protocol", protocol, "full, sampled or both")
        ->check(CLI::IsMember({"full", "sampled", "both"}));
    app.add_flag("--include-history", include_history,
                 "full ranking: keep the user's earlier items in the ranking (as RecBole does)");
    auto* alone = app.add_flag("--backbone-only", backbone_only,
                               "CoCo checkpoints: rank with the backbone's own h_rs, without the knowledge");
    auto* scale =
        app.add_option("--knowledge-scale", knowledge_scale,
                       "CoCo checkpoints: h_u = h_rs + A (fused h_u - h_rs); 1 as trained, 0 the backbone alone")
            ->check(CLI::Range(0.0, 10.0))
            ->excludes(alone);
    app.add_option("--set", overrides,
                   "override an eval setting, the data or LLM path: --set eval.num_negatives=99");
    app.add_option("--device", device, "auto, cpu, cuda or cuda:N (default: the run's)");
    app.add_option("--report", report_path, "write the results as JSON to this file");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }
    if (fs::is_directory(checkpoint)) checkpoint = (fs::path(checkpoint) / "best.pt").string();

    Json config = read_checkpoint_meta(checkpoint).config;
    for (const auto& o : overrides) {
      if (o.rfind("eval.", 0) != 0 && o.rfind("data.path=", 0) != 0 && o.rfind("device=", 0) != 0 &&
          o.rfind("coco.knowledge.llm.path=", 0) != 0) {
        throw ConfigError("--set " + o +
                          ": only eval.*, data.path, coco.knowledge.llm.path and device can change after training");
      }
      apply_override(config, o);
    }
    if (include_history) config["eval"]["exclude_history"] = false;
    if (!device.empty()) config["device"] = device;
    Experiment ex = Experiment::build(config, checkpoint, ".");
    ex.model->set_epoch(load_checkpoint(checkpoint, *ex.model, nullptr, false).state.weights_epoch());
    ex.model->to(ex.device);
    if (*alone || *scale) {  // given on the command line
      const auto coco = std::dynamic_pointer_cast<CoCoModelImpl>(ex.model);
      const std::string flag = backbone_only ? "--backbone-only" : "--knowledge-scale";
      if (!coco) throw ConfigError(checkpoint + ": " + flag + " needs a CoCo checkpoint, this is " + ex.model_name);
      if (backbone_only) {
        ex.model = coco->backbone();
        ex.model_name += " (backbone only)";
      } else {
        coco->knowledge_scale = knowledge_scale;
        ex.model_name += fmt::format(" (knowledge scale {})", knowledge_scale);
      }
    }

    Evaluator evaluator(ex.dataset.interactions, ex.eval, ex.data_options.max_len);
    const Split s = split == "valid" ? Split::kValid : Split::kTest;
    std::vector<EvalReport> reports;
    if (protocol != "sampled") reports.push_back(evaluator.evaluate(*ex.model, s, Protocol::kFull, ex.device));
    if (protocol != "full") reports.push_back(evaluator.evaluate(*ex.model, s, Protocol::kSampled, ex.device));

    std::vector<std::string> labels(reports.size(), ex.model_name);
    std::cout << markdown_table(reports, labels) << "\n" << markdown_groups(reports[0]);
    if (!report_path.empty()) {
      Json out = report_to_json(reports[0]);
      out["model"] = ex.model_name;
      out["dataset"] = ex.dataset.name;
      out["checkpoint"] = checkpoint;
      if (reports.size() > 1) out["sampled"] = report_to_json(reports[1]);
      write_json_atomic(report_path, out);
    }
    return kExitOk;
  });
}
