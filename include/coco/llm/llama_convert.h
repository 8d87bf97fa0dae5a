// GGUF → Hugging Face-style checkpoint (model.safetensors + config.json + tokenizer.model),
// with Q/K rows permuted from the GGUF (adjacent) to the HF (half) RoPE pairing, so that both
// readers can be checked against each other. Not a quantiser; not the reverse direction.
#pragma once

#include <string>

namespace coco::llm {

struct ConvertReport {
  int64_t tensors = 0;
  uint64_t bytes = 0;
  bool tokenizer_written = false;
};

/// Writes `out_dir`/model.safetensors (float32), config.json and, when the GGUF holds a
/// vocabulary, tokenizer.model. Creates `out_dir` if needed.
ConvertReport convert_gguf_to_hf(const std::string& gguf_path, const std::string& out_dir);

}  // namespace coco::llm
