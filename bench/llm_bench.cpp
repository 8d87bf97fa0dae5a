// coco-llm-bench: forward throughput of the Llama decoder (tokens/s and achieved FLOP/s as a
// fraction of the measured 1024×1024 matmul rate) for stories260K and a random 512-wide
// model, float32 and bfloat16. With --real: one checkpoint at its real size — load time, peak
// RSS after loading and after the forwards, and tokens/s at each --shapes batch x seq.
// Not a correctness test; prints a markdown table to stdout.
#include <torch/torch.h>

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/llm/llama_loader.h"

using namespace coco::llm;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// Runs `fn` until `min_seconds` have passed (after one warm-up call); returns calls/s.
template <typename Fn>
double rate(Fn&& fn, double min_seconds) {
  fn();
  int64_t calls = 0;
  const auto t0 = Clock::now();
  do {
    fn();
    ++calls;
  } while (seconds_since(t0) < min_seconds);
  return static_cast<double>(calls) / seconds_since(t0);
}

double matmul_flops(torch::Dtype dtype, double min_seconds) {
  const auto a = torch::randn({1024, 1024}).to(dtype), b = torch::randn({1024, 1024}).to(dtype);
  return 2.0 * 1024 * 1024 * 1024 * rate([&] { (void)torch::matmul(a, b); }, min_seconds);
}

/// Multiply-adds ×2 of one forward without the output head (what the bench runs).
double forward_flops(const LlamaConfig& c, int64_t batch, int64_t seq) {
  const double d = static_cast<double>(c.hidden_size()), dh = static_cast<double>(c.head_dim());
  const double h = static_cast<double>(c.num_heads()), hkv = static_cast<double>(c.num_kv_heads());
  const double f = static_cast<double>(c.intermediate_size()), t = static_cast<double>(seq);
  const double linear = d * h * dh * 2 + 2 * d * hkv * dh + 3 * d * f;  // q,o + k,v + gate,up,down
  const double attention = 2 * t * h * dh;  // QKᵀ and PV over the full T×T matrix
  return 2.0 * static_cast<double>(batch) * t * static_cast<double>(c.num_layers()) *
         (linear + attention);
}

struct Row {
  std::string model;
  std::string dtype;
  double tokens_per_s;
  double flops;
  double fraction;  // of the best 1024×1024 matmul rate seen in the same dtype
};

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux: KiB
}

/// --real: load `path` once in `dtype`, then per shape the median of `repeats` forwards after a
/// warm-up.
int bench_real(const std::string& path, const std::string& dtype,
               const std::vector<std::string>& shapes, int repeats) {
  const double rss0 = peak_rss_mib();
  const auto t0 = Clock::now();
  LlamaModel m = load_llama(LlamaLoadOptions(path).dtype(parse_dtype(dtype)));
  const double load_s = seconds_since(t0), rss_load = peak_rss_mib();
  uint64_t bytes = 0;
  for (const auto& p : m->parameters()) bytes += p.nbytes();
  std::printf(
      "| model | dtype | threads | weights MiB | load s | peak RSS after load MiB | "
      "shape | forward s (median) | tokens/s | peak RSS MiB |\n| --- | --- | ---: | ---: | ---: | "
      "---: | --- | ---: | ---: | ---: |\n");
  for (const auto& shape : shapes) {
    const auto x = shape.find('x');
    if (x == std::string::npos) throw coco::ConfigError("--shapes: expected BxT, got " + shape);
    const int64_t b = std::stoll(shape.substr(0, x)), t = std::stoll(shape.substr(x + 1));
    const auto ids = torch::randint(0, m->config().vocab_size(), {b, t});
    const auto mask = torch::ones({b, t}, torch::kLong);
    (void)m->run(
        LlamaInput{ids.narrow(0, 0, 1), {}, mask.narrow(0, 0, 1), {}, 0, false});  // warm-up
    std::vector<double> times;
    for (int r = 0; r < repeats; ++r) {
      const auto t1 = Clock::now();
      (void)m->run(LlamaInput{ids, {}, mask, {}, 0, false});
      times.push_back(seconds_since(t1));
    }
    std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
    const double s = times[static_cast<size_t>(repeats / 2)];  // the median
    std::printf(
        "| %s | %s | %d | %.0f | %.1f | %.0f (base %.0f) | %lldx%lld | %.2f | %.0f | %.0f |\n",
        std::filesystem::path(path).filename().c_str(), dtype.c_str(), torch::get_num_threads(),
        static_cast<double>(bytes) / (1 << 20), load_s, rss_load, rss0, static_cast<long long>(b),
        static_cast<long long>(t), s, static_cast<double>(b * t) / s, peak_rss_mib());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return coco::run_tool("coco-llm-bench", [&]() -> int {
    CLI::App app{"coco-llm-bench: Llama decoder forward throughput"};
    std::string model = std::string(COCO_SHARED_DIR) + "/models/stories260K/stories260K.gguf";
    int64_t batch = 64, seq = 64;
    double seconds = 3.0;
    int threads = 1;  // >1 fights OpenBLAS's own threads on a 2-core machine (see docs/llm.md)
    app.add_option("--model", model, "a real checkpoint to time besides the random one");
    app.add_option("--batch", batch, "sequences per forward")->check(CLI::PositiveNumber);
    app.add_option("--seq", seq, "tokens per sequence")->check(CLI::PositiveNumber);
    app.add_option("--seconds", seconds, "minimum timed seconds per measurement");
    app.add_option("--threads", threads, "torch intra-op threads")->check(CLI::PositiveNumber);
    bool real = false;
    std::string real_dtype = "bfloat16";
    std::vector<std::string> shapes = {"64x16", "64x64"};
    app.add_flag("--real", real, "time only --model at its real size (load, RSS, forward)");
    app.add_option("--dtype", real_dtype, "--real: float32 or bfloat16");
    app.add_option("--shapes", shapes, "--real: batch x seq of each forward (64x16 64x64)");
    int repeats = 3;
    app.add_option("--repeats", repeats, "--real: timed forwards per shape (the median is shown)")
        ->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    coco::set_log_level("warn");
    torch::set_num_threads(threads);
    torch::manual_seed(0);
    torch::NoGradGuard no_grad;
    if (real) return bench_real(model, real_dtype, shapes, repeats);

    const double mm32 = matmul_flops(torch::kFloat32, seconds);
    const double mm16 = matmul_flops(torch::kBFloat16, seconds);
    std::cout << "threads " << threads << "; 1024x1024 matmul: float32 " << mm32 / 1e9
              << " GFLOP/s, bfloat16 " << mm16 / 1e9 << " GFLOP/s\n\n";

    std::vector<std::pair<std::string, std::function<LlamaModel()>>> models;
    if (std::filesystem::exists(model)) {
      models.emplace_back(std::filesystem::path(model).stem().string(),
                          [&] { return load_llama(LlamaLoadOptions(model)); });
    } else {
      std::cerr << "coco-llm-bench: " << model << " not found; timing the random model only\n";
    }
    models.emplace_back("random-512x8", [] {
      LlamaConfig c;
      c.vocab_size(32000)
          .hidden_size(512)
          .num_layers(8)
          .num_heads(8)
          .num_kv_heads(8)
          .intermediate_size(1376);
      LlamaModel m(c);
      m->eval();
      return m;
    });
    std::vector<Row> rows;
    for (auto& [name, make] : models) {
      for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
        LlamaModel m = make();
        m->to(dtype);
        const auto ids = torch::randint(0, m->config().vocab_size(), {batch, seq});
        const auto mask = torch::ones({batch, seq}, torch::kLong);
        const double calls = rate(
            [&] {
              (void)m->run(LlamaInput{ids, {}, mask, {}, 0, false});
            },
            seconds);
        const double flops = forward_flops(m->config(), batch, seq) * calls;
        // The machine may be shared: time the reference matmul right next to the forward.
        const double peak =
            std::max(dtype == torch::kFloat32 ? mm32 : mm16, matmul_flops(dtype, seconds / 2));
        rows.push_back({name, dtype == torch::kFloat32 ? "float32" : "bfloat16",
                        calls * static_cast<double>(batch * seq), flops, flops / peak});
      }
    }
    std::cout << "| model | dtype | batch x seq | tokens/s | GFLOP/s | of matmul rate |\n"
              << "| --- | --- | --- | ---: | ---: | ---: |\n";
    for (const auto& r : rows) {
      std::printf("| %s | %s | %lld x %lld | %.0f | %.2f | %.1f%% |\n", r.model.c_str(),
                  r.dtype.c_str(), static_cast<long long>(batch), static_cast<long long>(seq),
                  r.tokens_per_s, r.flops / 1e9, 100 * r.fraction);
    }
    return 0;
  });
}
