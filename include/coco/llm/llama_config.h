// Hyper-parameters of a Llama-family decoder (Llama, Mistral, Qwen2), read from GGUF metadata
// or a Hugging Face config.json, with the registry of supported architectures.
// Not the weights: see llama_loader.h. Not the module: see llama_model.h.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace coco::llm {

class GgufFile;

/// Which dimensions of a head RoPE rotates together.
enum class RopePairing {
  kAdjacent,  // (0,1), (2,3), ...: llama.cpp GGUF files, llama2.c, Meta's original weights
  kHalf,      // (i, i + Dh/2): Hugging Face Llama checkpoints ("rotate_half")
};

struct LlamaConfig {
  TORCH_ARG(std::string, architecture) = "llama";  // "llama", "mistral" or "qwen2"
  TORCH_ARG(int64_t, vocab_size) = 32000;          // V
  TORCH_ARG(int64_t, hidden_size) = 512;           // D
  TORCH_ARG(int64_t, num_layers) = 8;
  TORCH_ARG(int64_t, num_heads) = 8;             // H
  TORCH_ARG(int64_t, num_kv_heads) = 8;          // H_kv (divides H)
  TORCH_ARG(int64_t, intermediate_size) = 1376;  // F (SwiGLU width)
  TORCH_ARG(double, rms_norm_eps) = 1e-5;
  TORCH_ARG(double, rope_theta) = 10000.0;
  TORCH_ARG(RopePairing, rope_pairing) = RopePairing::kHalf;
  TORCH_ARG(int64_t, max_position) = 2048;
  TORCH_ARG(bool, tie_word_embeddings) = false;
  TORCH_ARG(bool, attention_bias) = false;  // q/k/v biases (Qwen2)

 public:  // TORCH_ARG leaves the access at private
  int64_t head_dim() const { return hidden_size_ / num_heads_; }  // Dh
  /// Throws ModelError (prefixed by `source`) when the numbers are inconsistent.
  void validate(const std::string& source) const;

  /// From GGUF metadata ("<arch>.embedding_length", ...); rope pairing kAdjacent.
  static LlamaConfig from_gguf(const GgufFile& file);
  /// From a Hugging Face config.json object; rope pairing kHalf.
  static LlamaConfig from_hf_json(const nlohmann::json& config, const std::string& source);
  /// A Hugging Face config.json for this config (what `coco-llm convert` writes).
  nlohmann::json to_hf_json() const;

 private:
  static LlamaConfig from_hf_json_unchecked(const nlohmann::json& config, const std::string& source);
};

/// Supported architecture names ("llama", "mistral", "qwen2").
const std::vector<std::string>& supported_architectures();

}  // namespace coco::llm
