// coco-bench: speed and memory of the framework's hot paths on real data, reported
// as medians of repeated runs next to the machine's measured matmul rate, with the top-10
// lists of every user (coco-recommend) beside the evaluation.
//   coco-bench --config configs/amazon_beauty_sasrec.json [--epochs 3] [--evals 5]
// Prints one Markdown table; numbers go to BENCHMARKS.md with the command that made them.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/eval/recommend.h"
#include "coco/experiment/experiment.h"
#include "coco/train/trainer.h"

using namespace coco;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Median GFLOP/s of an n×n float32 matmul on `device` (reading one value back waits
// for an asynchronous device).
double matmul_gflops(int64_t n, int reps, torch::Device device) {
  const auto opts = torch::TensorOptions().device(device);
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  torch::matmul(a, b).sum().item<float>();  // warm-up
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    torch::matmul(a, b)[0][0].item<float>();
    rates.push_back(2.0 * n * n * n / seconds_since(t0) / 1e9);
  }
  return median(rates);
}

}  // namespace

int main(int argc, char** argv) {
  return run_tool("coco-bench", [&] {
    CLI::App app{"Benchmark training epochs and full-ranking evaluation."};
    std::string config;
    std::vector<std::string> overrides;
    int epochs = 3, evals = 5;
    app.add_option("--config", config, "JSON config file")->required();
    app.add_option("--set", overrides, "config override a.b=v (repeatable)");
    app.add_option("--epochs", epochs, "training epochs to time")->check(CLI::PositiveNumber);
    app.add_option("--evals", evals, "full-ranking evaluations to time")
        ->check(CLI::PositiveNumber);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? kExitOk : kExitUsage;
    }
    overrides.push_back("output_dir=/tmp/coco-bench");
    std::filesystem::remove_all("/tmp/coco-bench");
    Experiment ex = Experiment::from_file(config, overrides);
    set_log_level("warn");
    const double gflops = matmul_gflops(1024, 20, ex.run.device);

    ex.train.epochs = epochs;
    ex.train.eval_every = epochs + 1;  // validate only after the last epoch
    const Evaluator evaluator = ex.make_evaluator();
    Trainer trainer = ex.make_trainer(evaluator);
    trainer.fit();
    std::vector<double> epoch_s;  // the trainer's own per-epoch training time (no validation)
    std::ifstream log(trainer.log_path());
    for (std::string line; std::getline(log, line);)
      epoch_s.push_back(Json::parse(line)["train_seconds"]);
    // Evaluations alternate with coco-recommend's top-10 lists of every user (same batches).
    RecommendOptions top10;
    top10.batch_size = ex.eval.batch_size;
    top10.max_len = ex.eval.max_len;
    std::vector<double> eval_s, recommend_s;
    for (int r = 0; r < evals; ++r) {
      auto t0 = Clock::now();
      evaluator.evaluate(*ex.model, Split::kTest, Protocol::kFull, ex.run.device);
      eval_s.push_back(seconds_since(t0));
      t0 = Clock::now();
      recommend(*ex.model, ex.dataset.interactions, {}, top10, ex.run.device);
      recommend_s.push_back(seconds_since(t0));
    }
    // FLOPs of the dominant work: the item-scoring matmuls (forward + 2 backward).
    const auto& d = ex.dataset.interactions;
    int64_t positions = 0;
    for (int64_t u = 0; u < d.num_users(); ++u)
      positions += std::min<int64_t>(d.length(u) - 3, ex.data_options.max_len);
    const double hidden = ex.config["backbone"].value("hidden", 64);
    const double epoch_flops = 3.0 * 2.0 * positions * d.num_items * hidden;
    const double eval_flops = 2.0 * d.num_users() * d.num_items * hidden;
    // The first evaluation computes CoCo's knowledge vectors; later ones reuse them (cached).
    const double te = median(epoch_s), tv_first = eval_s.front();
    const double tv = eval_s.size() > 1 ? median({eval_s.begin() + 1, eval_s.end()}) : tv_first;
    const double tr = median(recommend_s);
    std::cout << "| measurement | median | note |\n|---|---:|---|\n"
              << "| matmul 1024x1024 fp32 | " << gflops << " GFLOP/s | torch::matmul on "
              << ex.run.device << " |\n"
              << "| training epoch (" << d.num_users() << " sequences) | " << te
              << " s | scoring matmuls " << epoch_flops / te / 1e9
              << " GFLOP/s = " << 100 * epoch_flops / te / 1e9 / gflops << "% of matmul rate |\n"
              << "| full-ranking evaluation (" << d.num_users() << " users), first | " << tv_first
              << " s | CoCo: computes every user's knowledge vector |\n"
              << "| full-ranking evaluation, repeated | " << tv << " s | scoring "
              << eval_flops / tv / 1e9 << " GFLOP/s = " << 100 * eval_flops / tv / 1e9 / gflops
              << "%; CoCo: knowledge cached |\n"
              << "| top-10 lists of every user (coco-recommend) | " << tr << " s | " << tr / tv
              << "x the repeated evaluation, run alternately with it |\n"
              << "| peak resident memory | " << peak_rss_mib() << " MiB | whole process |\n";
    return kExitOk;
  });
}
