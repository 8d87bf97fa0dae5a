// GGUF and safetensors → LlamaModel. GGUF tensor names are mapped to Hugging Face names
// (token_embd → embed_tokens, blk.N.attn_q → layers.N.self_attn.q_proj, ...).
#include "coco/llm/llama_loader.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/config/config.h"
#include "coco/llm/gguf.h"
#include "coco/llm/safetensors.h"

namespace coco::llm {
namespace fs = std::filesystem;

namespace {

/// GGUF per-block tensor suffix → module name suffix.
const std::vector<std::pair<std::string, std::string>>& block_names() {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"}};
  return m;
}

std::string hf_name(const std::string& module_name) {
  return module_name.rfind("lm_head", 0) == 0 ? module_name : "model." + module_name;
}

bool is_adapter(const std::string& name) {
  return name.find("lora_A") != std::string::npos || name.find("lora_B") != std::string::npos;
}

/// Copies `get(name)` into every frozen parameter of the model.
template <typename Get>
void fill_parameters(LlamaModelImpl& model, const std::string& source, Get&& get) {
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    if (is_adapter(item.key())) continue;
    torch::Tensor w = get(item.key());
    if (w.sizes() != item.value().sizes()) {
      throw ModelError(source + ": tensor '" + item.key() + "' has shape " + c10::str(w.sizes()) +
                       ", expected " + c10::str(item.value().sizes()));
    }
    item.value().copy_(w);
  }
}

std::string config_json_path(const std::string& path) {
  fs::path p(path);
  fs::path dir = fs::is_directory(p) ? p : p.parent_path();
  return (dir / "config.json").string();
}

}  // namespace

torch::Device parse_device(const std::string& name) {
  if (name == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  try {
    return torch::Device(name);
  } catch (const c10::Error&) {
    throw ConfigError("unknown device '" + name + "' (expected auto, cpu, cuda or cuda:N)");
  }
}

torch::Dtype parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  throw ConfigError("unknown dtype '" + name + "' (expected float32 or bfloat16)");
}

LlamaLoadOptions LlamaLoadOptions::from_config(ConfigNode& node) {
  LlamaLoadOptions o(node.get_string("path", ""));
  if (o.path().empty()) node.fail("path", "the LLM checkpoint path is required");
  o.dtype(parse_dtype(node.get_choice("dtype", "float32", {"float32", "bfloat16"})));
  const auto dev = node.get_string("device", "auto");
  try {
    o.device(parse_device(dev));
  } catch (const ConfigError& e) {
    node.fail("device", e.what());
  }
  node.finish();
  return o;
}

torch::Tensor permute_rope_rows(const torch::Tensor& w, int64_t n_head, RopePairing from,
                                RopePairing to) {
  if (from == to) return w;
  const auto rows = w.size(0);
  const auto half = rows / n_head / 2;
  auto shape = w.sizes().vec();
  std::vector<int64_t> split = {n_head, 0, 0};
  split[1] = from == RopePairing::kAdjacent ? half : 2;
  split[2] = from == RopePairing::kAdjacent ? 2 : half;
  for (size_t i = 1; i < shape.size(); ++i) split.push_back(shape[i]);
  return w.reshape(split).transpose(1, 2).contiguous().reshape(shape);
}

std::vector<std::pair<std::string, std::string>> gguf_weight_names(const GgufFile& file,
                                                                   const LlamaConfig& config) {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const std::string& gguf_name, const std::string& name, bool required) {
    if (!file.find_tensor(gguf_name)) {
      if (required) throw ModelError(file.path() + ": GGUF tensor '" + gguf_name + "' is missing");
      return;
    }
    out.emplace_back(name, gguf_name);
  };
  add("token_embd.weight", "embed_tokens.weight", true);
  add("output_norm.weight", "norm.weight", true);
  if (!config.tie_word_embeddings()) add("output.weight", "lm_head.weight", true);
  for (int64_t i = 0; i < config.num_layers(); ++i) {
    const std::string g = "blk." + std::to_string(i) + ".", m = "layers." + std::to_string(i) + ".";
    for (const auto& [suffix, name] : block_names()) {
      const bool bias = suffix.find(".bias") != std::string::npos;
      add(g + suffix, m + name, !bias || config.attention_bias());
    }
  }
  return out;
}

torch::Tensor load_gguf_weight(GgufFile& file, const LlamaConfig& config, const std::string& name,
                               const std::string& gguf_name, RopePairing pairing) {
  auto w = file.load(gguf_name);
  if (name.find("q_proj") != std::string::npos) {
    w = permute_rope_rows(w, config.num_heads(), config.rope_pairing(), pairing);
  } else if (name.find("k_proj") != std::string::npos) {
    w = permute_rope_rows(w, config.num_kv_heads(), config.rope_pairing(), pairing);
  }
  return w;
}

std::vector<std::pair<std::string, torch::Tensor>> read_gguf_weights(GgufFile& file,
                                                                     const LlamaConfig& config,
                                                                     RopePairing pairing) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, gguf_name] : gguf_weight_names(file, config)) {
    out.emplace_back(name, load_gguf_weight(file, config, name, gguf_name, pairing));
  }
  return out;
}

LlamaConfig read_llama_config(const std::string& path) {
  if (!fs::exists(path)) throw ModelError(path + ": no such file or directory");
  if (!fs::is_directory(path) && is_gguf_file(path)) {
    GgufFile file(path);
    return LlamaConfig::from_gguf(file);
  }
  const auto cfg = config_json_path(path);
  if (!fs::exists(cfg)) throw ModelError(path + ": not a GGUF file and no config.json next to it");
  std::ifstream in(cfg);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ModelError(cfg + ": invalid JSON (" + e.what() + ")");
  }
  return LlamaConfig::from_hf_json(j, cfg);
}

LlamaModel load_llama(const LlamaLoadOptions& options) {
  const auto& path = options.path();
  if (!fs::exists(path)) throw ModelError(path + ": no such file or directory");
  LlamaConfig config = read_llama_config(path);
  LlamaModel model(config);
  if (!fs::is_directory(path) && is_gguf_file(path)) {
    GgufFile file(path);
    const auto names = gguf_weight_names(file, config);
    const std::map<std::string, std::string> gguf_of(names.begin(), names.end());
    fill_parameters(*model, path, [&](const std::string& name) {  // one tensor in memory at a time
      auto it = gguf_of.find(name);
      if (it == gguf_of.end()) throw ModelError(path + ": GGUF has no tensor for '" + name + "'");
      return load_gguf_weight(file, config, name, it->second, config.rope_pairing());
    });
  } else {
    SafetensorsCheckpoint ckpt(path);
    fill_parameters(*model, path, [&](const std::string& name) {
      return ckpt.load(hf_name(name)).to(torch::kFloat32);
    });
  }
  model->to(options.device(), options.dtype());
  model->eval();
  log().info("[llm] loaded {} ({} layers, hidden {}, {} heads / {} kv, vocab {}) as {} on {}", path,
             config.num_layers(), config.hidden_size(), config.num_heads(), config.num_kv_heads(),
             config.vocab_size(), std::string(c10::toString(options.dtype())),
             options.device().str());
  return model;
}

}  // namespace coco::llm
