// Hugging Face checkpoints written from LlamaModel-named weights: a GGUF converted, or random
// weights of a config.json's shape.
#include "coco/llm/llama_convert.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "architectures.h"
#include "bpe_tokenizer.h"
#include "coco/common/error.h"
#include "coco/llm/gguf.h"
#include "coco/llm/llama_config.h"
#include "coco/llm/llama_loader.h"
#include "coco/llm/safetensors.h"
#include "coco/llm/spm_vocab.h"

namespace coco::llm {
namespace fs = std::filesystem;

ConvertReport save_hf_checkpoint(const LlamaConfig& config,
                                 std::vector<std::pair<std::string, torch::Tensor>> weights,
                                 const std::string& out_dir, torch::Dtype dtype,
                                 const nlohmann::json& extra, const std::string& source) {
  LlamaConfig hf = config;
  hf.rope_pairing(RopePairing::kHalf);
  auto json = hf.to_hf_json();  // before writing anything: it refuses what it cannot express
  json["torch_dtype"] = dtype == torch::kBFloat16 ? "bfloat16" : "float32";
  for (const auto& [key, value] : extra.items()) json[key] = value;
  const Architecture& arch = *find_architecture(config.architecture());
  // Each parameter goes where a Hugging Face checkpoint keeps it: fused tensors are put back
  // together from their row blocks, offsets (Gemma's 1 + w) taken off again.
  const HasTensor fused = [](const std::string&) { return true; };
  std::map<std::string, std::map<int64_t, torch::Tensor>> blocks;  // HF name → row → tensor
  for (auto& [name, w] : weights) {
    if (name.find("q_proj") != std::string::npos) {
      w = permute_rope_rows(w, config.num_heads(), config.rope_pairing(), RopePairing::kHalf);
    } else if (name.find("k_proj") != std::string::npos) {
      w = permute_rope_rows(w, config.num_kv_heads(), config.rope_pairing(), RopePairing::kHalf);
    }
    const TensorSource s = arch.hf_source(name, hf, fused);
    blocks[s.name][s.row_begin] = (s.add != 0 ? w - s.add : w).to(dtype);
    w = torch::Tensor();  // the float32 original is no longer needed
  }
  std::vector<std::pair<std::string, torch::Tensor>> out;
  ConvertReport report;
  for (auto& [name, rows] : blocks) {
    std::vector<torch::Tensor> parts;
    for (auto& [begin, w] : rows) parts.push_back(w);
    out.emplace_back(name, parts.size() == 1 ? parts[0] : torch::cat(parts, 0));
    report.bytes += static_cast<uint64_t>(out.back().second.nbytes());
  }
  report.tensors = static_cast<int64_t>(out.size());
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw ModelError(out_dir + ": cannot create directory (" + ec.message() + ")");
  save_safetensors((fs::path(out_dir) / "model.safetensors").string(), out,
                   {{"format", "pt"}, {"source", source}});
  std::ofstream config_out(fs::path(out_dir) / "config.json");
  config_out << json.dump(2) << "\n";
  if (!config_out) throw ModelError(out_dir + ": cannot write config.json");
  return report;
}

std::string convert_gguf_tokenizer(const GgufFile& file, const std::string& out_dir) {
  if (!file.has("tokenizer.ggml.tokens") || !file.has("tokenizer.ggml.model")) return "";
  const std::string model = file.get_string("tokenizer.ggml.model");
  if (model == "gpt2") {
    bpe::write_hf_tokenizer(file, out_dir);
    return "tokenizer.json";
  }
  if (model != "llama") return "";
  const std::string proto = SpmVocab::from_gguf(file).to_model_proto();
  std::ofstream out(fs::path(out_dir) / "tokenizer.model", std::ios::binary);
  out.write(proto.data(), static_cast<std::streamsize>(proto.size()));
  if (!out) throw ModelError(out_dir + ": cannot write tokenizer.model");
  return "tokenizer.model";
}

ConvertReport convert_gguf_to_hf(const std::string& gguf_path, const std::string& out_dir,
                                 torch::Dtype dtype) {
  GgufFile file(gguf_path);
  ConvertReport report;
  if (file.tensors().empty()) {  // a vocabulary-only GGUF: its tokenizer alone
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec) throw ModelError(out_dir + ": cannot create directory (" + ec.message() + ")");
    report.tokenizer = convert_gguf_tokenizer(file, out_dir);
    if (report.tokenizer.empty())
      throw ModelError(gguf_path + ": holds neither tensors nor a vocabulary");
    return report;
  }
  const LlamaConfig config = LlamaConfig::from_gguf(file);
  nlohmann::json extra = nlohmann::json::object();
  if (file.has("tokenizer.ggml.bos_token_id"))
    extra["bos_token_id"] = file.get_int("tokenizer.ggml.bos_token_id");
  if (file.has("tokenizer.ggml.eos_token_id"))
    extra["eos_token_id"] = file.get_int("tokenizer.ggml.eos_token_id");
  report = save_hf_checkpoint(config, read_llama_weights(gguf_path, config, torch::kFloat32),
                              out_dir, dtype, extra, fs::path(gguf_path).filename().string());
  report.tokenizer = convert_gguf_tokenizer(file, out_dir);
  return report;
}

ConvertReport write_random_checkpoint(const std::string& config_json, const std::string& out_dir,
                                      torch::Dtype dtype, uint64_t seed) {
  const LlamaConfig config = read_llama_config(config_json);
  torch::manual_seed(seed);
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  {
    // One tensor at a time, N(0, 0.02²) like Hugging Face's initializer_range, norms at 1.
    const LlamaModel shapes(config, torch::TensorOptions().device(torch::kMeta));
    torch::NoGradGuard no_grad;
    for (const auto& item : shapes->named_parameters()) {
      const bool norm = item.key().find("norm") != std::string::npos;
      auto w =
          norm ? torch::ones(item.value().sizes()) : torch::randn(item.value().sizes()).mul_(0.02);
      weights.emplace_back(item.key(), std::move(w));
    }
  }
  return save_hf_checkpoint(config, std::move(weights), out_dir, dtype, nlohmann::json::object(),
                            "random N(0, 0.02^2), seed " + std::to_string(seed));
}

}  // namespace coco::llm
