// Qwen3 (dense): Qwen2's block without biases, an explicit head_dim (128 in every size) and an
// RMSNorm over each query and key head before RoPE (q_norm, k_norm).
#include "architectures.h"

namespace coco::llm {
namespace {

class Qwen3 : public Architecture {
 public:
  std::string name() const override { return "qwen3"; }
  std::vector<std::string> hf_classes() const override { return {"Qwen3ForCausalLM"}; }
  void read_hf(HfKeys& keys, LlamaConfig& c) const override {
    read_qwen_sliding(keys);
    c.qk_norm(true);
  }
  void read_gguf(GgufKeys& /*keys*/, GgufFile& /*file*/, LlamaConfig& c) const override {
    c.qk_norm(true);
  }
};

}  // namespace

std::unique_ptr<Architecture> make_qwen3_architecture() { return std::make_unique<Qwen3>(); }

}  // namespace coco::llm
