// Llama, Llama-2/3.x, SmolLM2, TinyLlama: the reference block. config.json rope_scaling
// (linear, llama3) is read with the common keys; llama.cpp's GGUF files keep Meta's adjacent
// RoPE pairing and store Llama-3's scaling as rope_freqs.weight.
#include "architectures.h"

namespace coco::llm {
namespace {

class Llama : public Architecture {
 public:
  std::string name() const override { return "llama"; }
  std::vector<std::string> hf_classes() const override { return {"LlamaForCausalLM"}; }
  RopePairing gguf_pairing() const override { return RopePairing::kAdjacent; }
};

}  // namespace

std::unique_ptr<Architecture> make_llama_architecture() { return std::make_unique<Llama>(); }

}  // namespace coco::llm
