// Parsing of the train options, the learning-rate schedule and device resolution.
#include "coco/train/options.h"

#include <cmath>

#include <torch/cuda.h>

#include "coco/common/error.h"

namespace coco {

TrainOptions TrainOptions::from_config(ConfigNode& node, int64_t max_len) {
  TrainOptions o;
  o.max_len = max_len;
  o.epochs = node.get_int("epochs", o.epochs, 1);
  o.batch_size = node.get_int("batch_size", o.batch_size, 1);
  o.bucket_by_length = node.get_bool("bucket_by_length", o.bucket_by_length);
  o.optimizer = node.get_enum("optimizer", o.optimizer,
                              {{"adam", OptimizerKind::kAdam}, {"adamw", OptimizerKind::kAdamW}});
  o.lr = node.get_double("lr", o.lr, 1e-12, 10);
  o.weight_decay = node.get_double("weight_decay", o.weight_decay, 0, 10);
  o.beta1 = node.get_double("beta1", o.beta1, 0, 0.999999);
  o.beta2 = node.get_double("beta2", o.beta2, 0, 0.999999);
  o.schedule = node.get_enum("schedule", o.schedule,
                             {{"constant", Schedule::kConstant},
                              {"linear", Schedule::kLinear},
                              {"cosine", Schedule::kCosine}});
  o.warmup_steps = node.get_int("warmup_steps", o.warmup_steps, 0);
  o.min_lr_ratio = node.get_double("min_lr_ratio", o.min_lr_ratio, 0, 1);
  o.clip_grad_norm = node.get_double("clip_grad_norm", o.clip_grad_norm, 0);
  o.metric = node.get_string("metric", o.metric);
  o.patience = node.get_int("patience", o.patience, 1);
  o.eval_every = node.get_int("eval_every", o.eval_every, 1);
  o.max_seconds = node.get_double("max_seconds", o.max_seconds, 0);
  o.nonfinite = node.get_enum("nonfinite", o.nonfinite,
                              {{"stop", NonFinite::kStop}, {"skip", NonFinite::kSkip}});
  node.finish();
  return o;
}

double lr_factor(const TrainOptions& opt, int64_t step, int64_t total_steps) {
  if (step < opt.warmup_steps)
    return static_cast<double>(step + 1) / static_cast<double>(opt.warmup_steps);
  if (opt.schedule == Schedule::kConstant) return 1.0;
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - opt.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - opt.warmup_steps) / span);
  const double decay =
      opt.schedule == Schedule::kLinear ? 1.0 - progress : 0.5 * (1.0 + std::cos(M_PI * progress));
  return opt.min_lr_ratio + (1.0 - opt.min_lr_ratio) * decay;
}

RunOptions RunOptions::from_config(ConfigNode& node) {
  RunOptions o;
  o.seed = node.get_int("seed", o.seed, 0);
  try {
    o.device = resolve_device(node.get_string("device", "auto"));
  } catch (const ConfigError& e) {
    node.fail("device", e.what());
  }
  o.output_dir = node.get_string("output_dir", o.output_dir);
  o.threads = node.get_int("threads", o.threads, 0, 1024);
  namespace level = spdlog::level;
  o.log_level = node.get_enum("log_level", o.log_level,
                              {{"trace", level::trace},
                               {"debug", level::debug},
                               {"info", level::info},
                               {"warn", level::warn},
                               {"error", level::err},
                               {"off", level::off}});
  ConfigNode dist = node.child("dist");
  o.dist = dist::DistOptions::from_config(dist);
  return o;
}

torch::Device resolve_device(const std::string& spec, const std::string& source) {
  if (spec == "cpu") return torch::kCPU;
  if (spec == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    int64_t index = 0;
    if (spec.size() > 5) {
      try {
        index = std::stoll(spec.substr(5));
      } catch (...) {
        throw ConfigError("expected cuda:N with a device number N, got \"" + spec + "\"");
      }
    }
    if (!torch::cuda::is_available()) {
      throw ConfigError("\"" + spec +
                        "\" requested but no CUDA device is available (CPU-only libtorch?)");
    }
    if (index < 0 || index >= static_cast<int64_t>(torch::cuda::device_count())) {
      throw ConfigError("\"" + spec + "\": only " + std::to_string(torch::cuda::device_count()) +
                        " CUDA device(s)");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw ConfigError("expected auto, cpu, cuda or cuda:N, got \"" + spec + "\"");
}

}  // namespace coco
