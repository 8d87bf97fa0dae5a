// Qwen2 / Qwen2.5: Llama's block with q/k/v biases and rotate-half RoPE. Its sliding window
// is off in every released checkpoint (use_sliding_window false); turned on it is refused.
#include "architectures.h"

namespace coco::llm {

void read_qwen_sliding(HfKeys& keys) {
  if (keys.get_bool("use_sliding_window", false))
    keys.fail("use_sliding_window", "Qwen's sliding-window layers are not supported");
  keys.use("sliding_window");  // only read when use_sliding_window is true
  keys.use("max_window_layers");
  if (keys.has("layer_types")) {
    for (const auto& t : keys.get("layer_types")) {
      if (t != "full_attention") keys.fail("layer_types", "only full_attention is supported");
    }
  }
}

namespace {

class Qwen2 : public Architecture {
 public:
  std::string name() const override { return "qwen2"; }
  std::vector<std::string> hf_classes() const override { return {"Qwen2ForCausalLM"}; }
  bool attention_bias() const override { return true; }
  void read_hf(HfKeys& keys, LlamaConfig& /*c*/) const override { read_qwen_sliding(keys); }
};

}  // namespace

std::unique_ptr<Architecture> make_qwen2_architecture() { return std::make_unique<Qwen2>(); }

}  // namespace coco::llm
