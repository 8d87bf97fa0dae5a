// Loading a LlamaModel of any registered architecture from a GGUF file (any tensor type the
// reader dequantises) or a Hugging Face safetensors checkpoint (single file, sharded index, or a
// directory with config.json), in float32 or bfloat16 on any device, one tensor at a time.
// Not the conversion between the two formats: see llama_convert.h.
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "coco/llm/llama_config.h"
#include "coco/llm/llama_model.h"

namespace coco {
class ConfigNode;
}

namespace coco::llm {

struct LlamaLoadOptions {
  explicit LlamaLoadOptions(std::string path = "") : path_(std::move(path)) {}
  TORCH_ARG(std::string, path);  // .gguf, .safetensors, index .json or checkpoint directory
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;  // float32 or bfloat16
  TORCH_ARG(torch::Device, device) = torch::kCPU;

 public:  // TORCH_ARG leaves the access at private
  /// {"path": ..., "dtype": "float32"|"bfloat16", "device": "auto"|"cpu"|"cuda"}.
  static LlamaLoadOptions from_config(ConfigNode& node);
};

/// The configuration of a checkpoint without loading its weights.
LlamaConfig read_llama_config(const std::string& path);

/// Builds the model and loads every weight; ModelError naming the tensor for a missing
/// tensor or a shape mismatch.
LlamaModel load_llama(const LlamaLoadOptions& options);

/// Every weight of the checkpoint at `path` under LlamaModel's parameter names, in `dtype`
/// (fused tensors split, Gemma's norm offsets applied), each checked against its shape.
/// ModelError naming the tensor for a missing or misshapen one, or one the model would not use.
std::vector<std::pair<std::string, torch::Tensor>> read_llama_weights(const std::string& path,
                                                                      const LlamaConfig& config,
                                                                      torch::Dtype dtype);

/// Reorders the rows of a Q or K projection ([n_head·Dh, ...] weight or [n_head·Dh] bias)
/// from one RoPE pairing to the other.
torch::Tensor permute_rope_rows(const torch::Tensor& w, int64_t n_head, RopePairing from,
                                RopePairing to);

/// "cpu", "cuda", "cuda:1" or "auto" (CUDA when available).
torch::Device parse_device(const std::string& name);
/// "float32"/"fp32" or "bfloat16"/"bf16".
torch::Dtype parse_dtype(const std::string& name);

}  // namespace coco::llm
