// Training loop, validation, early stopping, checkpoints and epoch logs.
#include "coco/train/trainer.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/eval/report.h"

namespace fs = std::filesystem;

namespace coco {

namespace {

std::atomic<bool> g_interrupt{false};

void on_sigint(int) {
  if (g_interrupt.exchange(true)) std::_Exit(kExitInterrupted);  // second Ctrl-C
}

using Clock = std::chrono::steady_clock;

// A one-line progress bar on a terminal (stderr); nothing otherwise.
class Progress {
 public:
  Progress(int64_t epoch, int64_t epochs, int64_t total)
      : epoch_(epoch), epochs_(epochs), total_(total), tty_(::isatty(2)) {}
  void update(int64_t done, double loss) {
    if (!tty_) return;
    const auto now = Clock::now();
    if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const int width = 30;
    const int filled = static_cast<int>(width * done / std::max<int64_t>(1, total_));
    std::fprintf(stderr, "\r[train] epoch %lld/%lld [%s%s] %lld/%lld loss %.4f ",
                 (long long)epoch_ + 1, (long long)epochs_, std::string(filled, '=').c_str(),
                 std::string(width - filled, ' ').c_str(), (long long)done, (long long)total_,
                 loss);
    std::fflush(stderr);
  }
  ~Progress() {
    if (tty_) std::fprintf(stderr, "\r%80s\r", "");
  }

 private:
  int64_t epoch_, epochs_, total_;
  bool tty_;
  Clock::time_point last_{};
};

}  // namespace

void install_interrupt_handler() { std::signal(SIGINT, on_sigint); }
bool interrupt_requested() { return g_interrupt.load(); }
void request_interrupt(bool value) { g_interrupt.store(value); }

double peak_rss_mib() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

Trainer::Trainer(std::shared_ptr<RecommenderImpl> model, const Interactions& data,
                 TrainOptions options, const Evaluator& evaluator, TrainerContext context)
    : model_(std::move(model)),
      data_(data),
      options_(std::move(options)),
      evaluator_(evaluator),
      context_(std::move(context)),
      loader_(data_, options_.max_len, options_.batch_size, static_cast<uint64_t>(context_.seed),
              options_.bucket_by_length, dist::world().rank(), dist::world().size()) {
  const dist::Group& world = dist::world();
  if (world.size() > options_.batch_size) {
    throw ConfigError(fmt::format(
        "config error at /train/batch_size: {} is smaller than the {} data-parallel workers",
        options_.batch_size, world.size()));
  }
  if (world.size() > data_.num_users()) {
    throw Error(fmt::format("{} training users cannot be shared among {} data-parallel workers",
                            data_.num_users(), world.size()));
  }
  const auto names = metric_names(evaluator_.options().ks);
  if (std::find(names.begin(), names.end(), options_.metric) == names.end()) {
    throw ConfigError("config error at /train/metric: \"" + options_.metric + "\" is not computed");
  }
  model_->to(context_.device);
  // One optimiser group per model group (e.g. CoCo: recommender, knowledge, LoRA).
  const auto groups = model_->param_groups();
  for (const auto& g : groups) {
    if (!g.params.empty()) group_names_.push_back(g.name);
  }
  optimizer_ = make_optimizer(groups, options_.optimizer_options());
  for (auto& g : optimizer_->param_groups()) base_lr_.push_back(g.options().get_lr());
  if (world.size() > 1) {
    std::vector<torch::Tensor> params;
    for (const auto& g : optimizer_->param_groups())
      params.insert(params.end(), g.params().begin(), g.params().end());
    sync_ = std::make_unique<dist::GradientSync>(world, params, context_.bucket_mb);
  }
  if (is_main()) fs::create_directories(context_.output_dir);
}

std::string Trainer::last_path() const {
  return (fs::path(context_.output_dir) / "last.pt").string();
}
std::string Trainer::best_path() const {
  return (fs::path(context_.output_dir) / "best.pt").string();
}
std::string Trainer::log_path() const {
  return (fs::path(context_.output_dir) / "metrics.jsonl").string();
}

void Trainer::resume(const std::string& checkpoint) {
  state_ = load_checkpoint(checkpoint, *model_, optimizer_.get(), /*restore_rng=*/true).state;
  move_optimizer_state(*optimizer_, context_.device);
  // Keep only the log lines of epochs the checkpoint has completed.
  if (is_main() && fs::exists(log_path())) {
    std::ifstream in(log_path());
    std::string line, kept;
    while (std::getline(in, line)) {
      const Json j = Json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("epoch", INT64_MAX) <= state_.epoch) kept += line + "\n";
    }
    in.close();
    std::ofstream(log_path(), std::ios::trunc) << kept;
  }
  if (!is_main()) {  // the checkpoint holds rank 0's random stream; the others draw anew
    torch::manual_seed(mix_seed(
        mix_seed(mix_seed(static_cast<uint64_t>(context_.seed), state_.epoch), state_.batch),
        dist::world().rank()));
  }
  log().info("[train] resumed from {} at epoch {}, batch {} (step {})", checkpoint,
             state_.epoch + 1, state_.batch, state_.step);
}

const TrainState& Trainer::fit() {
  fit_start_ = Clock::now();
  out_of_time_ = false;
  // Every rank starts from rank 0's weights.
  if (sync_) dist::world().broadcast(sync_->params(), "broadcast of the initial weights");
  while (!state_.finished && state_.epoch < options_.epochs && !out_of_time_) {
    train_epoch();
    end_epoch();
  }
  if (!state_.finished && !out_of_time_) {
    state_.finished = true;
    save_last();
  }
  return state_;
}

void Trainer::train_epoch() {
  const dist::Group& world = dist::world();
  loader_.set_epoch(state_.epoch);
  // Dropout and sampling draw from the torch RNG; seeding it per epoch makes an epoch a
  // function of (seed, epoch) (and of the rank). A mid-epoch resume restores the state.
  if (state_.batch == 0) {
    const uint64_t seed = mix_seed(static_cast<uint64_t>(context_.seed), state_.epoch);
    torch::manual_seed(world.is_main() ? seed : mix_seed(seed, world.rank()));
  }
  model_->train();
  model_->set_epoch(state_.epoch);
  const int64_t num_batches = loader_.num_batches();
  const int64_t total_steps = options_.epochs * num_batches;
  Progress progress(state_.epoch, options_.epochs, num_batches);
  auto start = Clock::now();
  for (; state_.batch < num_batches; ++state_.batch) {
    TrainBatch batch = loader_.batch(state_.batch);
    const double weight = static_cast<double>(batch.users.size(0)) /
                          static_cast<double>(loader_.global_size(state_.batch));
    batch = {batch.users.to(context_.device), batch.items.to(context_.device)};
    const double factor = lr_factor(options_, state_.step, total_steps);
    auto& groups = optimizer_->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) groups[g].options().set_lr(base_lr_[g] * factor);

    train_batch(batch, weight);
    progress.update(state_.batch + 1,
                    state_.loss_sums["loss"] / std::max(1.0, state_.loss_sums["batches"]));
    if (any_rank(interrupt_requested())) {
      ++state_.batch;
      state_.epoch_seconds += std::chrono::duration<double>(Clock::now() - start).count();
      save_last();
      throw Interrupted("interrupted at epoch " + std::to_string(state_.epoch + 1) + ", batch " +
                        std::to_string(state_.batch) + "; checkpoint saved to " + last_path() +
                        " (continue with --resume)");
    }
  }
  state_.epoch_seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

// One global batch: the loss, reduced over ranks, and an update unless a value is not finite.
void Trainer::train_batch(const TrainBatch& batch, double weight) {
  LossTerms terms = model_->loss(batch);
  const auto loss = reduce_loss(terms, weight);
  double norm = std::numeric_limits<double>::quiet_NaN();  // stays NaN: no step taken
  if (all_finite(loss)) {
    if (sync_) sync_->prepare(weight);
    norm = optimizer_step(*optimizer_, terms.total, options_.clip_grad_norm, [this] {
      if (sync_) sync_->finish();
    });
  }
  if (std::isfinite(norm)) {
    ++state_.step;
    for (const auto& [name, part] : loss) state_.loss_sums[name] += part;
    state_.loss_sums["batches"] += 1;
    if (sync_ && context_.check_replicas) {
      dist::check_identical(dist::world(), model_->parameters(),
                            "after step " + std::to_string(state_.step));
    }
    if (on_step) on_step(state_.step);
  } else {
    nonfinite_step(loss, norm);
  }
}

std::map<std::string, double> Trainer::reduce_loss(const LossTerms& loss, double weight) const {
  std::vector<torch::Tensor> values = {loss.total.detach()};
  for (const auto& part : loss.parts) values.push_back(part.second);
  auto scalars = torch::stack(values).to(torch::kCPU, torch::kFloat64) * weight;
  dist::world().all_reduce({scalars}, dist::ReduceOp::kSum, "all-reduce of the loss");
  const double* v = scalars.data_ptr<double>();
  std::map<std::string, double> out = {{"loss", v[0]}};
  for (size_t i = 0; i < loss.parts.size(); ++i) out[loss.parts[i].first] += v[i + 1];
  return out;
}

bool Trainer::all_finite(const std::map<std::string, double>& loss) {
  return std::all_of(loss.begin(), loss.end(),
                     [](const auto& kv) { return std::isfinite(kv.second); });
}

bool Trainer::any_rank(bool flag) const {
  if (!sync_) return flag;
  auto t = torch::full({1}, flag ? 1 : 0, torch::kInt64);
  dist::world().all_reduce({t}, dist::ReduceOp::kMax, "all-reduce of the stop request");
  return t.item<int64_t>() > 0;
}

void Trainer::nonfinite_step(const std::map<std::string, double>& loss, double norm) {
  std::string terms;
  for (const auto& [name, value] : loss)
    terms += fmt::format("{}{} {:.4g}", terms.empty() ? "" : ", ", name, value);
  const std::string what = fmt::format(
      "epoch {}, batch {}: {} ({})", state_.epoch + 1, state_.batch + 1,
      all_finite(loss) ? fmt::format("the gradient norm is {}", norm) : "the loss is not finite",
      terms);
  if (options_.nonfinite == NonFinite::kSkip) {
    state_.loss_sums["skipped"] += 1;
    log().warn("[train] skipped the step of {}", what);
    return;
  }
  const std::string kept = fs::exists(last_path()) ? last_path() + " keeps the last finished epoch"
                                                   : "no checkpoint was written yet";
  throw Error("training stopped at " + what + "; the weights were not updated and " + kept +
              " (lower train.lr, enable train.clip_grad_norm, or set train.nonfinite=skip)");
}

void Trainer::end_epoch() {
  const int64_t epoch = state_.epoch + 1;  // 1-based for people
  const double batches = std::max(1.0, state_.loss_sums["batches"]);
  Json record = {{"epoch", epoch}, {"step", state_.step}, {"train_seconds", state_.epoch_seconds}};
  Json train = Json::object();
  for (const auto& [name, sum] : state_.loss_sums) {
    if (name != "batches" && name != "skipped") train[name] = sum / batches;
  }
  record["train"] = train;
  if (state_.loss_sums.count("skipped")) record["skipped_steps"] = state_.loss_sums["skipped"];
  record["lr"] = optimizer_->param_groups()[0].options().get_lr();
  if (group_names_.size() > 1) {
    for (size_t g = 0; g < group_names_.size(); ++g) {
      record["lr_groups"][group_names_[g]] = optimizer_->param_groups()[g].options().get_lr();
    }
  }
  if (Json diagnostics = model_->epoch_diagnostics(); !diagnostics.is_null())
    record["diagnostics"] = diagnostics;

  const bool evaluate = epoch % options_.eval_every == 0 || epoch == options_.epochs;
  const std::string valid_text = evaluate ? validate(epoch, record) : "";
  record["peak_rss_mib"] = peak_rss_mib();
  if (sync_) {
    record["world_size"] = dist::world().size();
    record["gradient_wait_seconds"] = sync_->wait_seconds() - wait_seconds_logged_;
    wait_seconds_logged_ = sync_->wait_seconds();
  }
  log().info("[train] epoch {}/{} loss {:.4f} ({:.1f}s){}", epoch, options_.epochs,
             train.value("loss", 0.0), state_.epoch_seconds, valid_text);

  state_.epoch += 1;
  state_.batch = 0;
  state_.loss_sums.clear();
  state_.epoch_seconds = 0;
  if (state_.epoch >= options_.epochs) state_.finished = true;
  // Every rank stops after the same epoch: the slowest clock decides.
  auto spent = torch::full({1}, std::chrono::duration<double>(Clock::now() - fit_start_).count(),
                           torch::kFloat64);
  dist::world().all_reduce({spent}, dist::ReduceOp::kMax, "all-reduce of the time spent");
  if (options_.max_seconds > 0 && spent.item<double>() > options_.max_seconds) {
    // Not `finished`: --resume with a new budget continues the run.
    log().info("[train] time budget of {:.0f}s spent after epoch {}; stopping (--resume continues)",
               options_.max_seconds, epoch);
    out_of_time_ = true;
  }
  save_last();
  if (is_main()) {
    std::ofstream out(log_path(), std::ios::app);
    out << record.dump() << "\n";
  }
}

std::string Trainer::validate(int64_t epoch, Json& record) {
  const auto t0 = Clock::now();
  const EvalReport rep =
      evaluator_.evaluate(*model_, Split::kValid, Protocol::kFull, context_.device);
  record["valid_seconds"] = std::chrono::duration<double>(Clock::now() - t0).count();
  record["valid"] = metrics_to_json(rep.metrics);
  const double metric = rep.metrics.get(options_.metric);
  std::string text = fmt::format(" valid {} {:.4f}", options_.metric, metric);
  if (const auto backbone = model_->inner_backbone()) {  // what the enhancement adds, held out
    const EvalReport alone =
        evaluator_.evaluate(*backbone, Split::kValid, Protocol::kFull, context_.device);
    record["valid_backbone"] = metrics_to_json(alone.metrics);
    text += fmt::format(" (backbone alone {:.4f})", alone.metrics.get(options_.metric));
  }
  if (metric > state_.best_metric) {
    state_.best_metric = metric;
    state_.best_epoch = epoch;
    state_.bad_evals = 0;
    save(best_path(), false);
    text += " (best)";
  } else if (++state_.bad_evals >= options_.patience) {
    state_.finished = true;
    text += fmt::format(" — no improvement for {} evaluations, stopping (best epoch {})",
                        state_.bad_evals, state_.best_epoch);
  }
  return text;
}

void Trainer::save_last() { save(last_path(), true); }

void Trainer::save(const std::string& path, bool with_optimizer) {
  if (is_main()) {
    save_checkpoint(path, {context_.config, state_}, *model_,
                    with_optimizer ? optimizer_.get() : nullptr, with_optimizer);
  }
  // Nobody reads a checkpoint before it is complete.
  dist::world().barrier("barrier after writing " + path);
}

}  // namespace coco
