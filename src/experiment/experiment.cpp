// Assembling an experiment from its config.
#include "coco/experiment/experiment.h"

#include <filesystem>
#include <thread>

#include <torch/torch.h>

#include "coco/backbones/backbone.h"
#include "coco/common/log.h"
#include "coco/common/runtime.h"
#include "coco/model/coco_model.h"

namespace fs = std::filesystem;

namespace coco {

namespace {

// A data-parallel worker takes the GPU of its local rank and its share of the cores; only
// rank 0 reports progress.
void bind_worker(const dist::Group& world, RunOptions& run) {
  if (run.device.is_cuda()) run.device = torch::Device(torch::kCUDA, world.local_rank());
  if (run.threads == 0) {
    run.threads = std::max<int64_t>(
        1, static_cast<int64_t>(std::thread::hardware_concurrency()) / world.local_size());
  }
  if (!world.is_main()) log().set_level(std::max(run.log_level, spdlog::level::warn));
}

}  // namespace

Experiment Experiment::build(Json config, const std::string& source,
                             const std::string& config_dir) {
  Experiment ex;
  ex.source = source;
  ex.config = std::move(config);
  ConfigNode root(ex.config, source);
  ex.run = RunOptions::from_config(root);
  log().set_level(ex.run.log_level);
  const dist::Group& world = dist::init(ex.run.dist, ex.run.device);
  if (world.size() > 1) bind_worker(world, ex.run);
  ConfigNode data = root.child("data");
  ex.data_options = DataOptions::from_config(data);
  const int64_t max_len = ex.data_options.max_len;
  ConfigNode train = root.child("train");
  ex.train = TrainOptions::from_config(train, max_len);
  ConfigNode eval = root.child("eval");
  ex.eval = EvalOptions::from_config(eval, max_len);
  const auto names = metric_names(ex.eval.ks);
  if (std::find(names.begin(), names.end(), ex.train.metric) == names.end()) {
    train.fail("metric", "\"" + ex.train.metric +
                             "\" is not computed (use HR@K or NDCG@K with K from eval.ks, or MRR)");
  }
  // Check the backbone's name before the (slower) data loading, then build it.
  ConfigNode backbone = root.child("backbone");
  ex.model_name = backbone.get_string("name", "");
  const bool with_knowledge = root.has("coco");
  ConfigNode coco = root.child("coco");
  root.finish();
  set_compute_threads(static_cast<int>(ex.run.threads));

  ex.dataset = load_dataset(ex.data_options, config_dir);
  data.set("path", fs::absolute(ex.dataset.directory).lexically_normal().string());
  torch::manual_seed(static_cast<uint64_t>(ex.run.seed));  // initial weights
  Backbone net =
      BackboneRegistry::instance().create(backbone, {ex.dataset.interactions.num_items, max_len});
  if (with_knowledge) {
    auto options = CoCoOptions::from_config(coco, net->hidden_size(), config_dir);
    ex.model = std::make_shared<CoCoModelImpl>(net, std::move(options), ex.dataset.catalog);
    ex.model_name = "coco-" + ex.model_name;
  } else {
    ex.config.erase("coco");  // child() left an empty object
    ex.model = net;
  }
  return ex;
}

Experiment Experiment::from_file(const std::string& path,
                                 const std::vector<std::string>& overrides) {
  Json config = read_json_file(path);
  for (const auto& o : overrides) apply_override(config, o);
  const auto dir = fs::path(path).parent_path();
  return build(std::move(config), path, dir.empty() ? "." : dir.string());
}

Evaluator Experiment::make_evaluator() const { return Evaluator(dataset.interactions, eval); }

Trainer Experiment::make_trainer(const Evaluator& evaluator) const {
  return Trainer(model, dataset.interactions, train, evaluator,
                 {config, run.output_dir, run.seed, run.device, run.dist.bucket_mb,
                  run.log_level <= spdlog::level::debug});
}

RunContext Experiment::run_context() const {
  return {dataset.interactions, data_options.max_len, run.device, run.output_dir,
          static_cast<uint64_t>(run.seed)};
}

}  // namespace coco
