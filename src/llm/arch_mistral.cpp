// Mistral: Llama's block with an optional sliding window on every layer (config.json
// "sliding_window"; null in v0.2 and later).
#include "architectures.h"

namespace coco::llm {
namespace {

class Mistral : public Architecture {
 public:
  std::string name() const override { return "mistral"; }
  std::vector<std::string> hf_classes() const override { return {"MistralForCausalLM"}; }
  RopePairing gguf_pairing() const override { return RopePairing::kAdjacent; }
  void read_hf(HfKeys& keys, LlamaConfig& c) const override {
    c.sliding_window(keys.get_int("sliding_window", 0));
  }
  void read_gguf(GgufKeys& keys, GgufFile& /*file*/, LlamaConfig& c) const override {
    c.sliding_window(keys.get_int("attention.sliding_window", 0));
  }
  void write_hf(const LlamaConfig& c, nlohmann::json& j) const override {
    if (c.sliding_window() > 0) j["sliding_window"] = c.sliding_window();
  }
};

}  // namespace

std::unique_ptr<Architecture> make_mistral_architecture() { return std::make_unique<Mistral>(); }

}  // namespace coco::llm
