// Hugging Face checkpoints (model.safetensors + config.json) written by the project: a GGUF
// of any registered architecture and tensor type converted (with its tokenizer), or random
// weights of a config.json's shape (tests, real-size benchmarks). Tensors go under Hugging
// Face's names (fused where HF fuses), Q/K rows permuted to the HF (half) RoPE pairing, so
// that the two readers can be checked against each other. Not a quantiser; not HF → GGUF.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "coco/llm/llama_config.h"

namespace coco::llm {

class GgufFile;

struct ConvertReport {
  int64_t tensors = 0;
  uint64_t bytes = 0;
  std::string tokenizer;  // the tokenizer file written, "" for none
};

/// Writes `out_dir`/model.safetensors (tensors in `dtype`: float32 or bfloat16), config.json
/// and, when the GGUF holds a vocabulary, the tokenizer. Creates `out_dir` if needed.
ConvertReport convert_gguf_to_hf(const std::string& gguf_path, const std::string& out_dir,
                                 torch::Dtype dtype = torch::kFloat32);

/// The tokenizer of a GGUF vocabulary written into `out_dir` (an existing directory):
/// tokenizer.model for SentencePiece (`llama`), tokenizer.json + tokenizer_config.json for
/// byte-level BPE (`gpt2`). Returns the file written, "" when the GGUF holds no vocabulary.
std::string convert_gguf_tokenizer(const GgufFile& file, const std::string& out_dir);

/// Writes `weights` (LlamaModel's parameter names, Q/K rows in `config`'s RoPE pairing) as a
/// Hugging Face checkpoint in `dtype`; `extra` keys are added to config.json.
ConvertReport save_hf_checkpoint(const LlamaConfig& config,
                                 std::vector<std::pair<std::string, torch::Tensor>> weights,
                                 const std::string& out_dir, torch::Dtype dtype,
                                 const nlohmann::json& extra, const std::string& source);

/// A checkpoint of `config_json`'s architecture and shape with random weights: N(0, 0.02²),
/// norms 1. No tokenizer is written.
ConvertReport write_random_checkpoint(const std::string& config_json, const std::string& out_dir,
                                      torch::Dtype dtype, uint64_t seed);

}  // namespace coco::llm
