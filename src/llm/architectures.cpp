// The registry, the key readers that reject unread keys, and the tensor names most
// architectures share (llama.cpp's GGUF names; Hugging Face's "model." names).
#include "architectures.h"

#include <algorithm>

#include "coco/common/error.h"
#include "coco/llm/gguf.h"

namespace coco::llm {

HfKeys::HfKeys(const nlohmann::json& j, std::string source) : j_(j), source_(std::move(source)) {}

bool HfKeys::has(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }

const nlohmann::json& HfKeys::get(const std::string& key) {
  if (!has(key)) fail(key, "is missing");
  used_.insert(key);
  return j_[key];
}

int64_t HfKeys::get_int(const std::string& key) {
  const auto& v = get(key);
  if (!v.is_number_integer()) fail(key, "expected an integer, got " + v.dump());
  return v.get<int64_t>();
}

int64_t HfKeys::get_int(const std::string& key, int64_t def) {
  used_.insert(key);
  return has(key) ? get_int(key) : def;
}

double HfKeys::get_double(const std::string& key, double def) {
  used_.insert(key);
  if (!has(key)) return def;
  const auto& v = j_[key];
  if (!v.is_number()) fail(key, "expected a number, got " + v.dump());
  return v.get<double>();
}

bool HfKeys::get_bool(const std::string& key, bool def) {
  used_.insert(key);
  if (!has(key)) return def;
  const auto& v = j_[key];
  if (!v.is_boolean()) fail(key, "expected true or false, got " + v.dump());
  return v.get<bool>();
}

std::string HfKeys::get_string(const std::string& key, const std::string& def) {
  used_.insert(key);
  if (!has(key)) return def;
  const auto& v = j_[key];
  if (!v.is_string()) fail(key, "expected a string, got " + v.dump());
  return v.get<std::string>();
}

void HfKeys::fail(const std::string& key, const std::string& what) const {
  throw ModelError(source_ + ": key '" + key + "': " + what);
}

void HfKeys::finish() const {
  // Keys that never change what the frozen decoder computes.
  static const std::set<std::string> inert = {"_name_or_path",
                                              "architectures",
                                              "model_type",
                                              "torch_dtype",
                                              "dtype",
                                              "transformers_version",
                                              "use_cache",
                                              "initializer_range",
                                              "bos_token_id",
                                              "eos_token_id",
                                              "pad_token_id",
                                              "attention_dropout",
                                              "tokenizer_class",
                                              "auto_map",
                                              "pretraining_tp",
                                              "max_position_embeddings",
                                              "return_dict",
                                              "output_attentions",
                                              "output_hidden_states",
                                              "id2label",
                                              "label2id",
                                              "unsloth_fixed",
                                              "unsloth_version",
                                              "embd_pdrop",
                                              "resid_pdrop"};
  for (const auto& item : j_.items()) {
    if (used_.count(item.key()) || inert.count(item.key())) continue;
    if (item.value().is_null() || item.value() == false) continue;  // a switch left off
    fail(item.key(), "is not supported: it would change the model's numerics (value " +
                         item.value().dump() + ")");
  }
}

GgufKeys::GgufKeys(const GgufFile& file, std::string arch)
    : file_(file), prefix_(std::move(arch) + ".") {}

bool GgufKeys::has(const std::string& key) const { return file_.has(prefix_ + key); }

int64_t GgufKeys::get_int(const std::string& key) {
  used_.insert(key);
  return file_.get_int(prefix_ + key);
}

int64_t GgufKeys::get_int(const std::string& key, int64_t def) {
  used_.insert(key);
  return file_.get_int(prefix_ + key, def);
}

double GgufKeys::get_float(const std::string& key, double def) {
  used_.insert(key);
  return file_.get_float(prefix_ + key, def);
}

std::string GgufKeys::get_string(const std::string& key, const std::string& def) {
  used_.insert(key);
  return has(key) ? file_.get_string(prefix_ + key) : def;
}

void GgufKeys::fail(const std::string& key, const std::string& what) const {
  throw ModelError(file_.path() + ": GGUF key '" + prefix_ + key + "': " + what);
}

void GgufKeys::finish() const {
  static const std::set<std::string> inert = {"context_length", "rope.scaling.finetuned",
                                              "tensor_data_layout"};
  for (const auto& [key, value] : file_.metadata()) {
    if (key.rfind(prefix_, 0) != 0) continue;
    const std::string k = key.substr(prefix_.size());
    if (used_.count(k) || inert.count(k)) continue;
    fail(k, "is not supported: it would change the model's numerics (value " + value.value.dump() +
                ")");
  }
}

bool split_layer_param(const std::string& param, int64_t& layer, std::string& rest) {
  static const std::string prefix = "layers.";
  if (param.rfind(prefix, 0) != 0) return false;
  const auto dot = param.find('.', prefix.size());
  if (dot == std::string::npos) return false;
  layer = std::stoll(param.substr(prefix.size(), dot - prefix.size()));
  rest = param.substr(dot + 1);
  return true;
}

TensorSource Architecture::gguf_source(const std::string& param, const LlamaConfig& /*c*/,
                                       const HasTensor& /*has*/) const {
  // LlamaModel's name within a block → llama.cpp's (llama-arch.cpp LLM_TENSOR_NAMES).
  static const std::map<std::string, std::string> block = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  if (param == "embed_tokens.weight") return {"token_embd.weight"};
  if (param == "norm.weight") return {"output_norm.weight"};
  if (param == "lm_head.weight") return {"output.weight"};
  int64_t layer = 0;
  std::string rest;
  if (split_layer_param(param, layer, rest)) {
    auto it = block.find(rest);
    if (it != block.end()) return {"blk." + std::to_string(layer) + "." + it->second};
  }
  throw ModelError("architecture " + name() + " has no GGUF tensor for parameter '" + param + "'");
}

TensorSource Architecture::hf_source(const std::string& param, const LlamaConfig& /*c*/,
                                     const HasTensor& /*has*/) const {
  return {param.rfind("lm_head", 0) == 0 ? param : "model." + param};
}

const std::vector<std::unique_ptr<Architecture>>& architectures() {
  static const auto all = [] {
    std::vector<std::unique_ptr<Architecture>> v;
    v.push_back(make_llama_architecture());
    v.push_back(make_mistral_architecture());
    v.push_back(make_qwen2_architecture());
    v.push_back(make_qwen3_architecture());
    v.push_back(make_phi3_architecture());
    v.push_back(make_gemma2_architecture());
    return v;
  }();
  return all;
}

const Architecture* find_architecture(const std::string& name) {
  for (const auto& a : architectures()) {
    if (a->name() == name) return a.get();
  }
  return nullptr;
}

const Architecture* find_hf_architecture(const std::string& hf_class) {
  for (const auto& a : architectures()) {
    const auto classes = a->hf_classes();
    if (std::find(classes.begin(), classes.end(), hf_class) != classes.end()) return a.get();
  }
  return nullptr;
}

std::vector<std::string> supported_architectures() {
  std::vector<std::string> names;
  for (const auto& a : architectures()) names.push_back(a->name());
  return names;
}

}  // namespace coco::llm
