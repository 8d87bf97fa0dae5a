// LlamaConfig from GGUF metadata and from Hugging Face config.json: the keys every
// architecture shares are read here, the rest by its entry in the registry (arch_*.cpp).
// Every key is read or known to be inert; any other key is an error naming it.
#include "coco/llm/llama_config.h"

#include <torch/torch.h>

#include <cmath>

#include "architectures.h"
#include "coco/common/error.h"
#include "coco/llm/gguf.h"

namespace coco::llm {
namespace {

std::string names(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

/// config.json "rope_scaling": none, "linear" or "llama3"; any other type is an error.
RopeScaling read_hf_rope_scaling(HfKeys& keys) {
  RopeScaling r;
  if (!keys.has("rope_scaling")) {
    keys.use("rope_scaling");
    return r;
  }
  auto fail = [&](const std::string& what) { keys.fail("rope_scaling", what); };
  if (!keys.get("rope_scaling").is_object()) fail("expected an object");
  HfKeys s(keys.get("rope_scaling"), keys.source() + ": key 'rope_scaling'");
  const std::string type = s.get_string("rope_type", s.get_string("type", "default"));
  s.use("type");
  s.use("rope_type");
  if (type == "default") return r;
  if (type == "linear") {
    r.type = RopeScaling::Type::kLinear;
  } else if (type == "llama3") {
    r.type = RopeScaling::Type::kLlama3;
    r.low_freq_factor = s.get_double("low_freq_factor", 1.0);
    r.high_freq_factor = s.get_double("high_freq_factor", 4.0);
    r.original_max_position = s.get_int("original_max_position_embeddings", 8192);
  } else {
    fail("type '" + type + "' is not supported (supported: linear, llama3)");
  }
  r.factor = s.get_double("factor", 1.0);
  for (const auto& item : keys.get("rope_scaling").items()) {
    static const std::set<std::string> known = {"type",
                                                "rope_type",
                                                "factor",
                                                "low_freq_factor",
                                                "high_freq_factor",
                                                "original_max_position_embeddings"};
    if (!known.count(item.key())) fail("key '" + item.key() + "' is not supported");
  }
  return r;
}

Activation read_activation(HfKeys& keys, const std::string& key, Activation def) {
  if (!keys.has(key)) return def;
  const std::string act = keys.get_string(key, "");
  if (act == "silu") return Activation::kSilu;
  if (act == "gelu_pytorch_tanh" || act == "gelu_tanh") return Activation::kGeluTanh;
  keys.fail(key, "activation '" + act + "' is not supported (supported: silu, gelu_pytorch_tanh)");
}

LlamaConfig from_hf_json_unchecked(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw ModelError(source + ": expected a JSON object");
  const Architecture* arch = nullptr;
  std::string arch_name;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    arch_name = j["architectures"][0].get<std::string>();
    arch = find_hf_architecture(arch_name);
  } else if (j.contains("model_type") && j["model_type"].is_string()) {
    arch_name = j["model_type"].get<std::string>();
    arch = find_architecture(arch_name);
  }
  if (!arch) {
    std::vector<std::string> hf;
    for (const auto& a : architectures()) {
      for (const auto& cls : a->hf_classes()) hf.push_back(cls);
    }
    throw ModelError(source + ": key 'architectures': unsupported architecture '" + arch_name +
                     "' (supported: " + names(hf) + ")");
  }
  HfKeys k(j, source);
  LlamaConfig c;
  c.architecture(arch->name());
  c.vocab_size(k.get_int("vocab_size"));
  c.hidden_size(k.get_int("hidden_size"));
  c.num_layers(k.get_int("num_hidden_layers"));
  c.num_heads(k.get_int("num_attention_heads"));
  c.num_kv_heads(k.get_int("num_key_value_heads", c.num_heads()));
  c.intermediate_size(k.get_int("intermediate_size"));
  if (k.has("head_dim")) c.head_dim(k.get_int("head_dim"));
  c.rms_norm_eps(k.get_double("rms_norm_eps", 1e-6));
  c.rope_theta(k.get_double("rope_theta", 10000.0));
  c.rope_scaling(read_hf_rope_scaling(k));
  c.max_position(k.get_int("max_position_embeddings", 2048));
  c.tie_word_embeddings(k.get_bool("tie_word_embeddings", arch->hf_tied_default()));
  c.attention_bias(k.get_bool("attention_bias", arch->attention_bias()));
  if (k.get_bool("mlp_bias", false)) k.fail("mlp_bias", "feed-forward biases are not supported");
  c.activation(read_activation(k, arch->hf_activation_key(), arch->activation()));
  c.rope_pairing(RopePairing::kHalf);
  arch->read_hf(k, c);
  k.finish();
  c.validate(source);
  return c;
}

}  // namespace

double LlamaConfig::attention_scale() const {
  const double d =
      query_pre_attn_scalar_ > 0 ? query_pre_attn_scalar_ : static_cast<double>(head_dim());
  return 1.0 / std::sqrt(d);
}

bool LlamaConfig::layer_is_sliding(int64_t layer) const {
  return sliding_window_ > 0 && (sliding_layers_ == SlidingLayers::kAll || layer % 2 == 0);
}

std::vector<double> LlamaConfig::rope_inv_freq() const {
  const int64_t half = head_dim() / 2;
  std::vector<double> inv(static_cast<size_t>(half));
  const auto& s = rope_scaling_;
  const double pi = std::acos(-1.0);
  for (int64_t i = 0; i < half; ++i) {
    double f =
        std::pow(rope_theta_, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim()));
    if (s.type == RopeScaling::Type::kLinear) {
      f /= s.factor;
    } else if (s.type == RopeScaling::Type::kLlama3) {
      // Meta's Llama-3.1 scaling: long wavelengths slowed by `factor`, short ones kept, the
      // band between interpolated (transformers' _compute_llama3_parameters).
      const double old = static_cast<double>(s.original_max_position);
      const double wavelen = 2 * pi / f;
      if (wavelen > old / s.low_freq_factor) {
        f /= s.factor;
      } else if (wavelen >= old / s.high_freq_factor) {
        const double smooth =
            (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    if (!rope_freq_factors_.empty()) f /= rope_freq_factors_[static_cast<size_t>(i)];
    inv[static_cast<size_t>(i)] = f;
  }
  return inv;
}

void LlamaConfig::validate(const std::string& source) const {
  auto bad = [&](const std::string& what) { throw ModelError(source + ": " + what); };
  if (vocab_size_ <= 0 || hidden_size_ <= 0 || num_layers_ <= 0 || num_heads_ <= 0 ||
      num_kv_heads_ <= 0 || intermediate_size_ <= 0 || head_dim_ < 0) {
    bad("sizes must be positive (vocab " + std::to_string(vocab_size_) + ", hidden " +
        std::to_string(hidden_size_) + ", layers " + std::to_string(num_layers_) + ", heads " +
        std::to_string(num_heads_) + "/" + std::to_string(num_kv_heads_) + ", ffn " +
        std::to_string(intermediate_size_) + ", head dim " + std::to_string(head_dim_) + ")");
  }
  if (head_dim_ == 0 && hidden_size_ % num_heads_ != 0) {
    bad("hidden size " + std::to_string(hidden_size_) + " is not a multiple of the head count " +
        std::to_string(num_heads_) + " and no head_dim is given");
  }
  if (num_heads_ % num_kv_heads_ != 0) {
    bad("head count " + std::to_string(num_heads_) + " is not a multiple of the kv head count " +
        std::to_string(num_kv_heads_));
  }
  if (head_dim() % 2 != 0)
    bad("head dim " + std::to_string(head_dim()) + " is odd; RoPE needs pairs");
  if (!(rms_norm_eps_ > 0) || !(rope_theta_ > 0))
    bad("rms_norm_eps and rope_theta must be positive");
  if (rope_scaling_.type != RopeScaling::Type::kNone && !(rope_scaling_.factor > 0))
    bad("rope_scaling.factor must be positive");
  if (rope_scaling_.type == RopeScaling::Type::kLlama3 &&
      !(rope_scaling_.high_freq_factor > rope_scaling_.low_freq_factor &&
        rope_scaling_.low_freq_factor > 0 && rope_scaling_.original_max_position > 0))
    bad("rope_scaling (llama3) needs 0 < low_freq_factor < high_freq_factor and a positive "
        "original_max_position_embeddings");
  if (!rope_freq_factors_.empty()) {
    if (static_cast<int64_t>(rope_freq_factors_.size()) != head_dim() / 2)
      bad("rope_freqs has " + std::to_string(rope_freq_factors_.size()) + " values, expected " +
          std::to_string(head_dim() / 2) + " (head dim / 2)");
    for (double f : rope_freq_factors_) {
      if (!(f > 0) || !std::isfinite(f)) bad("rope_freqs holds a value that is not positive");
    }
  }
  if (sliding_window_ < 0 || attn_softcap_ < 0 || final_softcap_ < 0 ||
      query_pre_attn_scalar_ < 0 || !(embedding_scale_ > 0))
    bad("sliding window, soft-caps and query_pre_attn_scalar must not be negative");
}

LlamaConfig LlamaConfig::from_gguf(GgufFile& f) {
  const std::string arch_name = f.get_string("general.architecture");
  const Architecture* arch = find_architecture(arch_name);
  if (!arch) {
    throw ModelError(f.path() + ": GGUF key 'general.architecture': unsupported architecture '" +
                     arch_name + "' (supported: " + names(supported_architectures()) + ")");
  }
  GgufKeys k(f, arch_name);
  LlamaConfig c;
  c.architecture(arch_name);
  c.hidden_size(k.get_int("embedding_length"));
  c.num_layers(k.get_int("block_count"));
  c.num_heads(k.get_int("attention.head_count"));
  c.num_kv_heads(k.get_int("attention.head_count_kv", c.num_heads()));
  c.intermediate_size(k.get_int("feed_forward_length"));
  c.max_position(k.get_int("context_length", 2048));
  c.rms_norm_eps(k.get_float("attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta(k.get_float("rope.freq_base", 10000.0));
  if (k.has("attention.key_length")) c.head_dim(k.get_int("attention.key_length"));
  if (k.get_int("attention.value_length", c.head_dim()) != c.head_dim())
    k.fail("attention.value_length", "must equal the key length " + std::to_string(c.head_dim()));
  const std::string scaling = k.get_string("rope.scaling.type", "none");
  if (scaling == "linear") {
    RopeScaling r;
    r.type = RopeScaling::Type::kLinear;
    r.factor = k.get_float("rope.scaling.factor", 1.0);
    c.rope_scaling(r);
  } else if (scaling != "none") {
    k.fail("rope.scaling.type", "'" + scaling + "' is not supported (supported: none, linear)");
  }
  if (k.get_float("rope.scaling.factor", 1.0) != 1.0 && scaling == "none")
    k.fail("rope.scaling.factor", "is set without rope.scaling.type");
  if (const auto* t = f.find_tensor("rope_freqs.weight")) {
    const auto w = f.load(t->name).to(torch::kFloat64).contiguous();
    c.rope_freq_factors({w.data_ptr<double>(), w.data_ptr<double>() + w.numel()});
  }
  c.rope_pairing(arch->gguf_pairing());
  c.activation(arch->activation());
  c.attention_bias(f.find_tensor("blk.0.attn_q.bias") != nullptr);
  if (f.has("tokenizer.ggml.tokens")) {
    c.vocab_size(static_cast<int64_t>(f.at("tokenizer.ggml.tokens").size()));
  }
  c.vocab_size(k.get_int("vocab_size", c.vocab_size()));
  if (const auto* emb = f.find_tensor("token_embd.weight")) {
    if (emb->ne.size() == 2) c.vocab_size(emb->ne[1]);
  }
  c.tie_word_embeddings(f.find_tensor("output.weight") == nullptr);
  arch->read_gguf(k, f, c);
  if (k.has("rope.dimension_count") && k.get_int("rope.dimension_count") != c.head_dim()) {
    k.fail("rope.dimension_count",
           "partial rotary (" + std::to_string(k.get_int("rope.dimension_count")) +
               " of head dim " + std::to_string(c.head_dim()) + ") is not supported");
  }
  k.finish();
  c.validate(f.path());
  return c;
}

LlamaConfig LlamaConfig::from_hf_json(const nlohmann::json& j, const std::string& source) {
  try {
    return from_hf_json_unchecked(j, source);
  } catch (const nlohmann::json::exception& e) {  // a key of the wrong JSON type
    throw ModelError(source + ": " + e.what());
  }
}

nlohmann::json LlamaConfig::to_hf_json() const {
  const Architecture* arch = find_architecture(architecture_);
  if (!arch) throw ModelError("to_hf_json: unknown architecture '" + architecture_ + "'");
  nlohmann::json j = {
      {"architectures", {arch->hf_classes().front()}},
      {"model_type", architecture_},
      {"vocab_size", vocab_size_},
      {"hidden_size", hidden_size_},
      {"num_hidden_layers", num_layers_},
      {"num_attention_heads", num_heads_},
      {"num_key_value_heads", num_kv_heads_},
      {"head_dim", head_dim()},
      {"intermediate_size", intermediate_size_},
      {"rms_norm_eps", rms_norm_eps_},
      {"rope_theta", rope_theta_},
      {"max_position_embeddings", max_position_},
      {"tie_word_embeddings", tie_word_embeddings_},
      {"attention_bias", attention_bias_},
      {"hidden_act", activation_ == Activation::kSilu ? "silu" : "gelu_pytorch_tanh"},
      {"torch_dtype", "float32"}};
  RopeScaling s = rope_scaling_;
  if (!rope_freq_factors_.empty()) {
    // GGUF keeps Llama-3's scaling as per-frequency factors; config.json can only say it as
    // the llama3 rule, so the factors must be that rule's with Meta's constants.
    if (s.type != RopeScaling::Type::kNone)
      throw ModelError("to_hf_json: rope_freqs together with rope.scaling.type");
    s.type = RopeScaling::Type::kLlama3;
    s.factor = *std::max_element(rope_freq_factors_.begin(), rope_freq_factors_.end());
    LlamaConfig rule = *this;
    rule.rope_freq_factors({}).rope_scaling(s);
    LlamaConfig plain = *this;
    plain.rope_freq_factors({});
    const auto a = rule.rope_inv_freq(), b = plain.rope_inv_freq();
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::abs(b[i] / rope_freq_factors_[i] - a[i]) > 1e-6 * a[i])
        throw ModelError("to_hf_json: rope_freqs.weight is not Llama-3's rope scaling (factor " +
                         std::to_string(s.factor) +
                         ", low 1, high 4, original 8192); config.json cannot express it");
    }
  }
  if (s.type == RopeScaling::Type::kLinear) {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", s.factor}};
  } else if (s.type == RopeScaling::Type::kLlama3) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", s.factor},
                         {"low_freq_factor", s.low_freq_factor},
                         {"high_freq_factor", s.high_freq_factor},
                         {"original_max_position_embeddings", s.original_max_position}};
  }
  arch->write_hf(*this, j);
  return j;
}

}  // namespace coco::llm
