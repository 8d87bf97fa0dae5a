// GGUF → Hugging Face-style checkpoint (model.safetensors + config.json + tokenizer), any
// registered architecture and any tensor type the GGUF reader dequantises, written as float32
// under Hugging Face's names (fused where HF fuses), with Q/K rows permuted from the GGUF
// (adjacent) to the HF (half) RoPE pairing, so that both readers can be checked against each
// other. Not a quantiser; not the reverse direction.
#pragma once

#include <torch/types.h>

#include <string>

namespace coco::llm {

struct ConvertReport {
  int64_t tensors = 0;
  uint64_t bytes = 0;
  bool tokenizer_written = false;
};

/// Writes `out_dir`/model.safetensors (tensors in `dtype`: float32 or bfloat16), config.json
/// and, when the GGUF holds a vocabulary, the tokenizer. Creates `out_dir` if needed.
ConvertReport convert_gguf_to_hf(const std::string& gguf_path, const std::string& out_dir,
                                 torch::Dtype dtype = torch::kFloat32);

}  // namespace coco::llm
