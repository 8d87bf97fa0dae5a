// The architecture registry: how each supported decoder is described in GGUF metadata and
// config.json, and where each of its weights is stored in either format. One file per
// architecture (arch_*.cpp), as llama.cpp keeps them; the decoder itself is shared
// (llama_layers.h), switched by LlamaConfig's fields. Internal to src/llm.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "coco/llm/llama_config.h"

namespace coco::llm {

class GgufFile;

/// The keys of a config.json object, each remembered when read. finish() rejects every key
/// that was neither read nor known to leave the numerics alone.
class HfKeys {
 public:
  HfKeys(const nlohmann::json& j, std::string source);
  bool has(const std::string& key) const;             // present and not null
  const nlohmann::json& get(const std::string& key);  // ModelError when absent
  int64_t get_int(const std::string& key);
  int64_t get_int(const std::string& key, int64_t def);
  double get_double(const std::string& key, double def);
  bool get_bool(const std::string& key, bool def);
  std::string get_string(const std::string& key, const std::string& def);
  void use(const std::string& key) { used_.insert(key); }
  const std::string& source() const { return source_; }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  void finish() const;

 private:
  const nlohmann::json& j_;
  std::string source_;
  std::set<std::string> used_;
};

/// The "<arch>." keys of a GGUF file, each remembered when read; finish() rejects the rest.
class GgufKeys {
 public:
  GgufKeys(const GgufFile& file, std::string arch);
  bool has(const std::string& key) const;  // key without the "<arch>." prefix
  int64_t get_int(const std::string& key);
  int64_t get_int(const std::string& key, int64_t def);
  double get_float(const std::string& key, double def);
  std::string get_string(const std::string& key, const std::string& def);
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  void finish() const;

 private:
  const GgufFile& file_;
  std::string prefix_;
  std::set<std::string> used_;
};

/// Where one parameter of LlamaModel comes from in a checkpoint file.
struct TensorSource {
  std::string name;       // tensor name in the file
  int64_t row_begin = 0;  // a block of rows of a fused tensor (Phi-3's qkv_proj, gate_up_proj)
  int64_t rows = -1;      // -1: all rows
  double add = 0;         // added to every value on load (Gemma's (1 + w) norms in HF files)
};

/// Whether the file being read holds a tensor of that name.
using HasTensor = std::function<bool(const std::string&)>;

class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual std::string name() const = 0;                     // general.architecture, model_type
  virtual std::vector<std::string> hf_classes() const = 0;  // config.json "architectures"
  /// How the architecture's GGUF files pair RoPE dimensions (llama.cpp's rope type).
  virtual RopePairing gguf_pairing() const { return RopePairing::kHalf; }
  virtual bool hf_tied_default() const { return false; }
  virtual bool attention_bias() const { return false; }
  /// The feed-forward activation when a file does not name one, and config.json's key for it.
  virtual Activation activation() const { return Activation::kSilu; }
  virtual std::string hf_activation_key() const { return "hidden_act"; }
  /// Architecture-specific keys, after the common ones (llama_config.cpp) were read.
  virtual void read_hf(HfKeys& /*keys*/, LlamaConfig& /*c*/) const {}
  virtual void read_gguf(GgufKeys& /*keys*/, GgufFile& /*file*/, LlamaConfig& /*c*/) const {}
  virtual void write_hf(const LlamaConfig& /*c*/, nlohmann::json& /*j*/) const {}
  /// The tensor behind a parameter (LlamaModel's name, e.g. "layers.3.mlp.up_proj.weight").
  virtual TensorSource gguf_source(const std::string& param, const LlamaConfig& c,
                                   const HasTensor& has) const;
  virtual TensorSource hf_source(const std::string& param, const LlamaConfig& c,
                                 const HasTensor& has) const;
};

/// Every registered architecture, in the order `info` and errors list them.
const std::vector<std::unique_ptr<Architecture>>& architectures();
/// By GGUF general.architecture / config.json model_type; null when unknown.
const Architecture* find_architecture(const std::string& name);
/// By config.json "architectures"[0] ("Qwen3ForCausalLM"); null when unknown.
const Architecture* find_hf_architecture(const std::string& hf_class);

/// Splits "layers.N.rest" into N and rest; false for non-layer parameters.
bool split_layer_param(const std::string& param, int64_t& layer, std::string& rest);

/// Qwen2/Qwen3 config.json: sliding-window keys, accepted only when switched off.
void read_qwen_sliding(HfKeys& keys);

// The architectures, one file each.
std::unique_ptr<Architecture> make_llama_architecture();  // arch_llama.cpp
std::unique_ptr<Architecture> make_mistral_architecture();
std::unique_ptr<Architecture> make_qwen2_architecture();   // arch_qwen2.cpp
std::unique_ptr<Architecture> make_qwen3_architecture();   // arch_qwen3.cpp
std::unique_ptr<Architecture> make_phi3_architecture();    // arch_phi3.cpp
std::unique_ptr<Architecture> make_gemma2_architecture();  // arch_gemma2.cpp

}  // namespace coco::llm
