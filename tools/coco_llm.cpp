// coco-llm: inspect, tokenize with, run, embed with, convert and make random Llama-family
// checkpoints (GGUF or Hugging Face safetensors). A thin CLI over coco::llm; see docs/llm.md.
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <numeric>
#include <sstream>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/llm/gguf.h"
#include "coco/llm/llama_convert.h"
#include "coco/llm/llama_loader.h"
#include "coco/llm/safetensors.h"
#include "coco/llm/tokenizer.h"

namespace fs = std::filesystem;
using namespace coco::llm;

namespace {

struct Common {
  std::string model;
  std::string dtype = "float32";
  std::string device = "auto";
  std::string log_level = "info";
};

LlamaModel load(const Common& c) {
  return load_llama(
      LlamaLoadOptions(c.model).dtype(parse_dtype(c.dtype)).device(parse_device(c.device)));
}

std::string join_ids(const std::vector<int64_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

void print_tokenizer(const Tokenizer& tok) {
  std::cout << "tokenizer: " << (tok.is_bpe() ? "bpe" : "sentencepiece")
            << "\ntokenizer_vocab_size: " << tok.vocab_size() << "\nbos_id: " << tok.bos_id()
            << "\neos_id: " << tok.eos_id() << "\nunk_id: " << tok.unk_id()
            << "\npad_id: " << tok.pad_id() << "\nadd_bos: " << (tok.add_bos() ? "yes" : "no")
            << "\n";
}

/// A tokenizer file, or a folder with a tokenizer and no model (no config.json).
bool tokenizer_only(const std::string& path) {
  if (fs::is_directory(path)) return !fs::exists(fs::path(path) / "config.json");
  const auto name = fs::path(path).filename();
  return name == "tokenizer.json" || name.extension() == ".model";
}

int cmd_info(const Common& c) {
  if (tokenizer_only(c.model)) {
    print_tokenizer(Tokenizer::from_file(c.model));
    return 0;
  }
  const LlamaConfig cfg = read_llama_config(c.model);
  const auto& rs = cfg.rope_scaling();
  const char* scaling = rs.type == RopeScaling::Type::kLinear   ? "linear"
                        : rs.type == RopeScaling::Type::kLlama3 ? "llama3"
                        : cfg.rope_freq_factors().empty()       ? "none"
                                                                : "rope_freqs";
  std::cout << "architecture: " << cfg.architecture() << "\n"
            << "vocab_size: " << cfg.vocab_size() << "\nhidden_size: " << cfg.hidden_size()
            << "\nnum_layers: " << cfg.num_layers() << "\nnum_heads: " << cfg.num_heads()
            << "\nnum_kv_heads: " << cfg.num_kv_heads() << "\nhead_dim: " << cfg.head_dim()
            << "\nintermediate_size: " << cfg.intermediate_size()
            << "\nactivation: " << (cfg.activation() == Activation::kSilu ? "silu" : "gelu_tanh")
            << "\nrms_norm_eps: " << cfg.rms_norm_eps() << "\nrope_theta: " << cfg.rope_theta()
            << "\nrope_pairing: "
            << (cfg.rope_pairing() == RopePairing::kAdjacent ? "adjacent" : "half")
            << "\nrope_scaling: " << scaling;
  if (rs.type != RopeScaling::Type::kNone) std::cout << " (factor " << rs.factor << ")";
  std::cout << "\ncontext_length: " << cfg.max_position()
            << "\ntied_output: " << (cfg.tie_word_embeddings() ? "yes" : "no")
            << "\nattention_bias: " << (cfg.attention_bias() ? "yes" : "no")
            << "\nqk_norm: " << (cfg.qk_norm() ? "yes" : "no")
            << "\nsliding_window: " << cfg.sliding_window();
  if (cfg.post_norms()) std::cout << "\npost_norms: yes";
  if (cfg.attn_softcap() > 0) std::cout << "\nattn_softcap: " << cfg.attn_softcap();
  if (cfg.final_softcap() > 0) std::cout << "\nfinal_softcap: " << cfg.final_softcap();
  std::cout << "\n";
  if (!fs::is_directory(c.model) && is_gguf_file(c.model)) {
    GgufFile f(c.model);
    uint64_t params = 0;
    std::map<std::string, int> types;
    for (const auto& t : f.tensors()) {
      uint64_t n = 1;
      for (auto d : t.ne) n *= static_cast<uint64_t>(d);
      params += n;
      types[ggml_type_name(static_cast<uint32_t>(t.type))]++;
    }
    std::cout << "format: GGUF v" << f.version() << "\nmetadata_keys: " << f.metadata().size()
              << "\ntensors: " << f.tensors().size() << "\nparameters: " << params
              << "\ntensor_types:";
    for (const auto& [name, count] : types) std::cout << " " << name << "=" << count;
    std::cout << "\n";
  } else {
    SafetensorsCheckpoint ck(c.model);
    std::cout << "format: safetensors\ntensors: " << ck.names().size() << "\n";
  }
  try {
    print_tokenizer(Tokenizer::from_file(c.model));
  } catch (const coco::ModelError& e) {
    std::cout << "tokenizer: none (" << e.what() << ")\n";
  }
  return 0;
}

int cmd_tokenize(const Common& c, bool bos, bool whole) {
  const Tokenizer tok = Tokenizer::from_file(c.model);
  const std::string input((std::istreambuf_iterator<char>(std::cin)),
                          std::istreambuf_iterator<char>());
  if (whole) {
    std::cout << join_ids(tok.encode(input, bos)) << "\n";
    return 0;
  }
  size_t start = 0;
  while (start < input.size()) {
    size_t end = input.find('\n', start);
    if (end == std::string::npos) end = input.size();
    std::cout << join_ids(tok.encode(input.substr(start, end - start), bos)) << "\n";
    start = end + 1;
  }
  return 0;
}

int cmd_generate(const Common& c, const std::string& prompt, int64_t max_tokens) {
  LlamaModel model = load(c);
  const Tokenizer tok = Tokenizer::from_file(c.model);
  const auto prompt_ids = tok.encode(prompt, tok.add_bos());
  if (prompt_ids.empty())
    throw coco::ModelError(c.model + ": the prompt is empty and the model takes no BOS");
  const auto out = model->generate_greedy(prompt_ids, max_tokens, tok.eos_id());
  std::vector<int64_t> all(prompt_ids.begin() + (tok.add_bos() ? 1 : 0), prompt_ids.end());
  all.insert(all.end(), out.begin(), out.end());
  std::cout << tok.decode(all) << "\n";
  return 0;
}

struct Item {
  int64_t id;
  std::string title;
};

std::vector<Item> read_items(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw coco::DataError(path + ": cannot open items file");
  std::string line;
  std::getline(in, line);
  if (line.rfind("item_id\t", 0) != 0 || line.find("\ttitle") == std::string::npos) {
    throw coco::DataError(
        path + ":1: expected the header 'item_id raw_id title brand categories' (tab-separated)");
  }
  std::vector<Item> items;
  for (int64_t lineno = 2; std::getline(in, line); ++lineno) {
    if (line.empty()) continue;
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string col; std::getline(ss, col, '\t');) cols.push_back(col);
    if (cols.size() < 3)
      throw coco::DataError(path + ":" + std::to_string(lineno) +
                            ": expected at least 3 tab-separated columns");
    try {
      size_t used = 0;
      const int64_t id = std::stoll(cols[0], &used);
      if (used != cols[0].size() || id < 0) throw std::invalid_argument("id");
      items.push_back({id, cols[2]});
    } catch (const std::logic_error&) {
      throw coco::DataError(path + ":" + std::to_string(lineno) + ": item_id '" + cols[0] +
                            "' is not a non-negative integer");
    }
  }
  return items;
}

int cmd_embed(const Common& c, const std::string& items_path, const std::string& out_path,
              const std::string& pooling, int64_t batch_size, int64_t max_length) {
  const auto items = read_items(items_path);
  LlamaModel model = load(c);
  const Tokenizer tok = Tokenizer::from_file(c.model);
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(items.size());
  int64_t max_id = 0;
  for (const auto& it : items) max_id = std::max(max_id, it.id);
  auto table = torch::zeros({max_id + 1, model->config().hidden_size()}, torch::kFloat32);
  // Encode everything first and batch by length: less padding, same vectors.
  std::vector<std::vector<int64_t>> ids(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    ids[i] = tok.encode(items[i].title, tok.add_bos());
    if (static_cast<int64_t>(ids[i].size()) > max_length)
      ids[i].resize(static_cast<size_t>(max_length));
  }
  std::vector<size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ids[a].size() < ids[b].size(); });
  const bool tty = isatty(STDERR_FILENO) != 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t b = std::min(batch_size, n - start);
    int64_t t = 0;
    for (int64_t i = 0; i < b; ++i)
      t = std::max<int64_t>(
          t, static_cast<int64_t>(ids[order[static_cast<size_t>(start + i)]].size()));
    auto input = torch::zeros({b, t}, torch::kLong);
    auto mask = torch::zeros({b, t}, torch::kLong);
    for (int64_t i = 0; i < b; ++i) {
      const auto& s = ids[order[static_cast<size_t>(start + i)]];
      const auto len = static_cast<int64_t>(s.size());
      input[i].narrow(0, 0, len).copy_(torch::tensor(s, torch::kLong));
      mask[i].narrow(0, 0, len).fill_(1);
    }
    LlamaInput in;
    in.input_ids = input.to(model->device());
    in.attention_mask = mask.to(model->device());
    const auto h = model->run(in).hidden.to(torch::kCPU, torch::kFloat32);  // [b, t, D]
    torch::Tensor pooled;                                                   // [b, D]
    if (pooling == "mean") {
      const auto m = mask.unsqueeze(-1).to(torch::kFloat32);
      pooled = (h * m).sum(1) / m.sum(1).clamp_min(1);
    } else {
      const auto last = (mask.sum(1) - 1).clamp_min(0);  // [b]
      pooled = h.index({torch::arange(b), last});
    }
    for (int64_t i = 0; i < b; ++i)
      table[items[order[static_cast<size_t>(start + i)]].id].copy_(pooled[i]);
    if (tty) {
      const int64_t done = start + b, width = 40, fill = done * width / n;
      std::fprintf(stderr, "\r[%s%s] %lld/%lld",
                   std::string(static_cast<size_t>(fill), '#').c_str(),
                   std::string(static_cast<size_t>(width - fill), ' ').c_str(),
                   static_cast<long long>(done), static_cast<long long>(n));
      std::fflush(stderr);
    }
  }
  if (tty) std::fprintf(stderr, "\n");
  save_safetensors(out_path, {{"embeddings", table}},
                   {{"model", fs::path(c.model).filename().string()},
                    {"pooling", pooling},
                    {"items", std::to_string(n)},
                    {"rows", "indexed by item_id; unused rows are zero"}});
  coco::log().info("[llm] wrote {} item embeddings [{}, {}] to {}", n, max_id + 1,
                   model->config().hidden_size(), out_path);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return coco::run_tool("coco-llm", [&]() -> int {
    CLI::App app{
        "coco-llm: inspect, tokenize, generate, embed, convert and init Llama-family models"};
    app.require_subcommand(1);
    Common c;
    auto add_common = [&](CLI::App* sub, bool weights) {
      sub->add_option("--model", c.model,
                      "GGUF file, .safetensors, index .json or checkpoint dir (tokenize, info: "
                      "also a tokenizer.json, a .model or a folder with one)")
          ->required();
      sub->add_option("--log-level", c.log_level, "trace, debug, info, warn, error, off");
      if (weights) {
        sub->add_option("--dtype", c.dtype, "float32 or bfloat16")
            ->check(CLI::IsMember({"float32", "bfloat16"}));
        sub->add_option("--device", c.device, "auto, cpu, cuda, cuda:N");
      }
    };
    auto* info = app.add_subcommand("info", "architecture, sizes and tokenizer facts");
    add_common(info, false);
    auto* tokenize =
        app.add_subcommand("tokenize", "token ids of stdin, one line of ids per input line");
    add_common(tokenize, false);
    bool bos = false, whole = false;
    tokenize->add_flag("--bos", bos, "prepend the BOS id (where the vocabulary has one)");
    tokenize->add_flag("--whole", whole, "all of stdin (newlines included) is one input");
    auto* generate =
        app.add_subcommand("generate", "greedy continuation of a prompt (printed with the prompt)");
    add_common(generate, true);
    std::string prompt;
    int64_t max_tokens = 128;
    generate->add_option("--prompt", prompt, "prompt text (after BOS where the model takes one)");
    generate->add_option("--max-tokens", max_tokens, "new tokens at most")
        ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
    auto* embed = app.add_subcommand("embed", "one vector per item title of an items.tsv");
    add_common(embed, true);
    std::string items, out, pooling = "mean";
    int64_t batch = 64, max_length = 64;
    embed->add_option("--items", items, "items.tsv (item_id raw_id title brand categories)")
        ->required();
    embed->add_option("--out", out, "output .safetensors (tensor 'embeddings' [max_id+1, D])")
        ->required();
    embed->add_option("--pooling", pooling, "mean or last")->check(CLI::IsMember({"mean", "last"}));
    embed->add_option("--batch-size", batch, "titles per forward")->check(CLI::PositiveNumber);
    embed->add_option("--max-length", max_length, "tokens per title, BOS (if any) included")
        ->check(CLI::PositiveNumber);
    auto* convert =
        app.add_subcommand("convert", "GGUF -> model.safetensors + config.json + tokenizer.model");
    add_common(convert, false);
    std::string out_dir;
    convert->add_option("--out", out_dir, "output directory")->required();
    convert->add_option("--dtype", c.dtype, "dtype of the written tensors: float32 or bfloat16")
        ->check(CLI::IsMember({"float32", "bfloat16"}));
    auto* init = app.add_subcommand(
        "init", "random weights of a config.json's shape -> model.safetensors + config.json");
    std::string config_json;
    uint64_t seed = 0;
    init->add_option("--config", config_json, "a Hugging Face config.json")->required();
    init->add_option("--out", out_dir, "output directory")->required();
    init->add_option("--dtype", c.dtype, "dtype of the written tensors: float32 or bfloat16")
        ->check(CLI::IsMember({"float32", "bfloat16"}));
    init->add_option("--seed", seed, "random seed");
    init->add_option("--log-level", c.log_level, "trace, debug, info, warn, error, off");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e) == 0 ? coco::kExitOk : coco::kExitUsage;
    }
    coco::set_log_level(c.log_level);
    if (*info) return cmd_info(c);
    if (*tokenize) return cmd_tokenize(c, bos, whole);
    if (*generate) return cmd_generate(c, prompt, max_tokens);
    if (*embed) return cmd_embed(c, items, out, pooling, batch, max_length);
    if (*init) {
      const auto report = write_random_checkpoint(config_json, out_dir, parse_dtype(c.dtype), seed);
      coco::log().info("[llm] wrote {} random tensors ({} bytes) to {}", report.tensors,
                       report.bytes, out_dir);
      return 0;
    }
    const auto report = convert_gguf_to_hf(c.model, out_dir, parse_dtype(c.dtype));
    coco::log().info("[llm] wrote {} tensors ({} bytes){} to {}", report.tensors, report.bytes,
                     report.tokenizer.empty() ? "" : " and " + report.tokenizer, out_dir);
    return 0;
  });
}
