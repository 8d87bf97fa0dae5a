// LlamaConfig from GGUF metadata and from Hugging Face config.json; the architecture registry.
#include "coco/llm/llama_config.h"

#include "coco/common/error.h"
#include "coco/llm/gguf.h"

namespace coco::llm {
namespace {

struct ArchEntry {
  const char* name;     // GGUF general.architecture
  const char* hf_name;  // config.json "architectures"[0]
  bool attention_bias;
};
const ArchEntry kArchs[] = {{"llama", "LlamaForCausalLM", false},
                            {"mistral", "MistralForCausalLM", false},
                            {"qwen2", "Qwen2ForCausalLM", true}};

std::string arch_list() {
  std::string s;
  for (const auto& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

}  // namespace

const std::vector<std::string>& supported_architectures() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& a : kArchs) v.emplace_back(a.name);
    return v;
  }();
  return names;
}

void LlamaConfig::validate(const std::string& source) const {
  auto bad = [&](const std::string& what) { throw ModelError(source + ": " + what); };
  if (vocab_size_ <= 0 || hidden_size_ <= 0 || num_layers_ <= 0 || num_heads_ <= 0 ||
      num_kv_heads_ <= 0 || intermediate_size_ <= 0) {
    bad("sizes must be positive (vocab " + std::to_string(vocab_size_) + ", hidden " +
        std::to_string(hidden_size_) + ", layers " + std::to_string(num_layers_) + ", heads " +
        std::to_string(num_heads_) + "/" + std::to_string(num_kv_heads_) + ", ffn " +
        std::to_string(intermediate_size_) + ")");
  }
  if (hidden_size_ % num_heads_ != 0) {
    bad("hidden size " + std::to_string(hidden_size_) + " is not a multiple of the head count " +
        std::to_string(num_heads_));
  }
  if (num_heads_ % num_kv_heads_ != 0) {
    bad("head count " + std::to_string(num_heads_) + " is not a multiple of the kv head count " +
        std::to_string(num_kv_heads_));
  }
  if (head_dim() % 2 != 0)
    bad("head dim " + std::to_string(head_dim()) + " is odd; RoPE needs pairs");
  if (!(rms_norm_eps_ > 0) || !(rope_theta_ > 0))
    bad("rms_norm_eps and rope_theta must be positive");
}

LlamaConfig LlamaConfig::from_gguf(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  const ArchEntry* entry = nullptr;
  for (const auto& a : kArchs) {
    if (arch == a.name) entry = &a;
  }
  if (!entry) {
    throw ModelError(f.path() + ": GGUF key 'general.architecture': unsupported architecture '" +
                     arch + "' (supported: " + arch_list() + ")");
  }
  LlamaConfig c;
  c.architecture(arch);
  const std::string p = arch + ".";
  c.hidden_size(f.get_int(p + "embedding_length"));
  c.num_layers(f.get_int(p + "block_count"));
  c.num_heads(f.get_int(p + "attention.head_count"));
  c.num_kv_heads(f.get_int(p + "attention.head_count_kv", c.num_heads()));
  c.intermediate_size(f.get_int(p + "feed_forward_length"));
  c.max_position(f.get_int(p + "context_length", 2048));
  c.rms_norm_eps(f.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta(f.get_float(p + "rope.freq_base", 10000.0));
  c.rope_pairing(arch == "qwen2" ? RopePairing::kHalf : RopePairing::kAdjacent);
  c.attention_bias(entry->attention_bias);
  if (f.has("tokenizer.ggml.tokens")) {
    c.vocab_size(static_cast<int64_t>(f.at("tokenizer.ggml.tokens").size()));
  }
  c.vocab_size(f.get_int(p + "vocab_size", c.vocab_size()));
  if (const auto* emb = f.find_tensor("token_embd.weight")) {
    if (emb->ne.size() == 2) c.vocab_size(emb->ne[1]);
  }
  c.tie_word_embeddings(f.find_tensor("output.weight") == nullptr);
  c.validate(f.path());
  if (f.has(p + "rope.dimension_count") && f.get_int(p + "rope.dimension_count") != c.head_dim()) {
    throw ModelError(f.path() + ": GGUF key '" + p + "rope.dimension_count': partial rotary (" +
                     std::to_string(f.get_int(p + "rope.dimension_count")) + " of head dim " +
                     std::to_string(c.head_dim()) + ") is not supported");
  }
  return c;
}

LlamaConfig LlamaConfig::from_hf_json(const nlohmann::json& j, const std::string& source) {
  try {
    return from_hf_json_unchecked(j, source);
  } catch (const nlohmann::json::exception& e) {  // a key of the wrong JSON type
    throw ModelError(source + ": " + e.what());
  }
}

LlamaConfig LlamaConfig::from_hf_json_unchecked(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw ModelError(source + ": expected a JSON object");
  auto get = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) throw ModelError(source + ": key '" + key + "' is missing");
    return j.at(key);
  };
  auto get_int = [&](const char* key) -> int64_t {
    const auto& v = get(key);
    if (!v.is_number_integer())
      throw ModelError(source + ": key '" + key + "': expected an integer, got " + v.dump());
    return v.get<int64_t>();
  };
  const ArchEntry* entry = nullptr;
  std::string arch_name;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    arch_name = j["architectures"][0].get<std::string>();
    for (const auto& a : kArchs) {
      if (arch_name == a.hf_name) entry = &a;
    }
  } else if (j.contains("model_type") && j["model_type"].is_string()) {
    arch_name = j["model_type"].get<std::string>();
    for (const auto& a : kArchs) {
      if (arch_name == a.name) entry = &a;
    }
  }
  if (!entry) {
    std::string hf;
    for (const auto& a : kArchs) hf += (hf.empty() ? "" : ", ") + std::string(a.hf_name);
    throw ModelError(source + ": key 'architectures': unsupported architecture '" + arch_name +
                     "' (supported: " + hf + ")");
  }
  LlamaConfig c;
  c.architecture(entry->name);
  c.vocab_size(get_int("vocab_size"));
  c.hidden_size(get_int("hidden_size"));
  c.num_layers(get_int("num_hidden_layers"));
  c.num_heads(get_int("num_attention_heads"));
  c.num_kv_heads(j.contains("num_key_value_heads") ? get_int("num_key_value_heads")
                                                   : c.num_heads());
  c.intermediate_size(get_int("intermediate_size"));
  c.rms_norm_eps(j.value("rms_norm_eps", 1e-6));
  c.rope_theta(j.value("rope_theta", 10000.0));
  c.max_position(j.value("max_position_embeddings", int64_t{2048}));
  c.tie_word_embeddings(j.value("tie_word_embeddings", false));
  c.attention_bias(j.value("attention_bias", entry->attention_bias));
  c.rope_pairing(RopePairing::kHalf);
  c.validate(source);
  return c;
}

nlohmann::json LlamaConfig::to_hf_json() const {
  const ArchEntry* entry = &kArchs[0];
  for (const auto& a : kArchs) {
    if (architecture_ == a.name) entry = &a;
  }
  return {{"architectures", {entry->hf_name}},
          {"model_type", architecture_},
          {"vocab_size", vocab_size_},
          {"hidden_size", hidden_size_},
          {"num_hidden_layers", num_layers_},
          {"num_attention_heads", num_heads_},
          {"num_key_value_heads", num_kv_heads_},
          {"intermediate_size", intermediate_size_},
          {"rms_norm_eps", rms_norm_eps_},
          {"rope_theta", rope_theta_},
          {"max_position_embeddings", max_position_},
          {"tie_word_embeddings", tie_word_embeddings_},
          {"attention_bias", attention_bias_},
          {"hidden_act", "silu"},
          {"torch_dtype", "float32"}};
}

}  // namespace coco::llm
