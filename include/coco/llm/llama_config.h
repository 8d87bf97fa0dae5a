// Hyper-parameters of a decoder of the Llama family (Llama/Llama-3/SmolLM2, Mistral, Qwen2,
// Qwen3, Phi-3, Gemma-2), read from GGUF metadata or a Hugging Face config.json through the
// architecture registry (src/llm/arch_*.cpp, one file per architecture). Every key that
// changes the numerics is either implemented or an error naming it.
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
  kAdjacent,  // (0,1), (2,3), ...: llama.cpp's Llama GGUF files, llama2.c, Meta's weights
  kHalf,      // (i, i + Dh/2): Hugging Face checkpoints ("rotate_half"), llama.cpp NEOX types
};

/// RoPE frequency scaling (config.json "rope_scaling", GGUF "rope.scaling.*").
struct RopeScaling {
  enum class Type { kNone, kLinear, kLlama3 };
  Type type = Type::kNone;
  double factor = 1.0;            // linear: positions / factor; llama3: long wavelengths / factor
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position = 8192;  // llama3
};

/// The feed-forward's gate activation: SwiGLU (silu) or GeGLU (tanh-approximated gelu).
enum class Activation { kSilu, kGeluTanh };

/// Which layers use the sliding window (when sliding_window > 0).
enum class SlidingLayers { kAll, kEven };  // Mistral / Phi-3: all; Gemma-2: 0, 2, 4, ...

struct LlamaConfig {
  TORCH_ARG(std::string, architecture) = "llama";  // registry name (GGUF general.architecture)
  TORCH_ARG(int64_t, vocab_size) = 32000;          // V
  TORCH_ARG(int64_t, hidden_size) = 512;           // D
  TORCH_ARG(int64_t, num_layers) = 8;
  TORCH_ARG(int64_t, num_heads) = 8;             // H
  TORCH_ARG(int64_t, num_kv_heads) = 8;          // H_kv (divides H)
  TORCH_ARG(int64_t, intermediate_size) = 1376;  // F (gated feed-forward width)
  TORCH_ARG(double, rms_norm_eps) = 1e-5;
  TORCH_ARG(double, rope_theta) = 10000.0;
  TORCH_ARG(RopePairing, rope_pairing) = RopePairing::kHalf;
  TORCH_ARG(RopeScaling, rope_scaling) = {};
  /// Per-frequency divisors of the RoPE angles (GGUF "rope_freqs.weight", Dh/2 values);
  /// empty = none. Llama-3.x GGUF files store their rope scaling this way.
  TORCH_ARG(std::vector<double>, rope_freq_factors) = {};
  TORCH_ARG(int64_t, max_position) = 2048;
  TORCH_ARG(bool, tie_word_embeddings) = false;
  TORCH_ARG(bool, attention_bias) = false;  // q/k/v biases (Qwen2)
  TORCH_ARG(bool, qk_norm) = false;         // RMSNorm of each q and k head before RoPE (Qwen3)
  TORCH_ARG(Activation, activation) = Activation::kSilu;
  /// Gemma-2: norms after attention and after the feed-forward, before each residual add.
  TORCH_ARG(bool, post_norms) = false;
  TORCH_ARG(double, embedding_scale) = 1.0;      // token embeddings × this (Gemma: √D)
  TORCH_ARG(double, query_pre_attn_scalar) = 0;  // scores scaled by its −½ power; 0 = Dh
  TORCH_ARG(double, attn_softcap) = 0;           // scores → c·tanh(scores / c); 0 = none
  TORCH_ARG(double, final_softcap) = 0;          // logits → c·tanh(logits / c); 0 = none
  TORCH_ARG(int64_t, sliding_window) = 0;        // a query sees keys less than this far back
  TORCH_ARG(SlidingLayers, sliding_layers) = SlidingLayers::kAll;

 public:  // TORCH_ARG leaves the access at private
  /// Dh: explicit (Qwen3 128 with D/H = 64, Gemma-2 256) or D / H.
  int64_t head_dim() const { return head_dim_ > 0 ? head_dim_ : hidden_size_ / num_heads_; }
  LlamaConfig& head_dim(int64_t v) {
    head_dim_ = v;
    return *this;
  }
  double attention_scale() const;  // 1/√Dh, or query_pre_attn_scalar^−½
  bool layer_is_sliding(int64_t layer) const;
  /// theta^(−2i/Dh) for i < Dh/2, after rope scaling and frequency factors.
  std::vector<double> rope_inv_freq() const;

  /// Throws ModelError (prefixed by `source`) when the numbers are inconsistent.
  void validate(const std::string& source) const;

  /// From GGUF metadata ("<arch>.embedding_length", ...; "rope_freqs.weight" when present).
  static LlamaConfig from_gguf(GgufFile& file);
  /// From a Hugging Face config.json object.
  static LlamaConfig from_hf_json(const nlohmann::json& config, const std::string& source);
  /// A Hugging Face config.json for this config (what `coco-llm convert` writes).
  nlohmann::json to_hf_json() const;

 private:
  int64_t head_dim_ = 0;
};

/// Supported architecture names (GGUF general.architecture / config.json model_type).
std::vector<std::string> supported_architectures();

}  // namespace coco::llm
