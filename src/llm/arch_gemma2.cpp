// Gemma-2: GeGLU (tanh gelu), RMSNorms that scale by (1 + w) (Hugging Face stores w, llama.cpp's
// GGUF stores 1 + w), norms after attention and after the feed-forward, embeddings × √D,
// tanh soft-capping of attention scores and final logits, a sliding window on even layers,
// queries scaled by query_pre_attn_scalar^−½, output tied to the embeddings.
#include "architectures.h"

#include <cmath>

namespace coco::llm {
namespace {

bool is_norm(const std::string& param) {
  static const std::string suffix = "norm.weight";
  return param.size() >= suffix.size() &&
         param.compare(param.size() - suffix.size(), suffix.size(), suffix) == 0;
}

class Gemma2 : public Architecture {
 public:
  std::string name() const override { return "gemma2"; }
  std::vector<std::string> hf_classes() const override { return {"Gemma2ForCausalLM"}; }
  bool hf_tied_default() const override { return true; }
  Activation activation() const override { return Activation::kGeluTanh; }
  std::string hf_activation_key() const override { return "hidden_activation"; }
  void read_hf(HfKeys& keys, LlamaConfig& c) const override {
    common(c);
    keys.use("hidden_act");  // transformers' Gemma2MLP reads hidden_activation only
    c.query_pre_attn_scalar(keys.get_double("query_pre_attn_scalar", 256));
    c.attn_softcap(keys.get_double("attn_logit_softcapping", 0));
    c.final_softcap(keys.get_double("final_logit_softcapping", 0));
    c.sliding_window(keys.get_int("sliding_window", 0));
    keys.use("cache_implementation");
    keys.use("sliding_window_size");
  }
  void read_gguf(GgufKeys& keys, GgufFile& /*file*/, LlamaConfig& c) const override {
    common(c);
    // Absent keys take llama.cpp's defaults for Gemma-2.
    c.attn_softcap(keys.get_float("attn_logit_softcapping", 50));
    c.final_softcap(keys.get_float("final_logit_softcapping", 30));
    c.sliding_window(keys.get_int("attention.sliding_window", 4096));
    // GGUF has no query_pre_attn_scalar; llama.cpp takes it from the size: 27B (46 layers)
    // scales by (D/H)^−½, the others by head_dim^−½.
    c.query_pre_attn_scalar(c.num_layers() == 46
                                ? static_cast<double>(c.hidden_size() / c.num_heads())
                                : static_cast<double>(c.head_dim()));
  }
  void write_hf(const LlamaConfig& c, nlohmann::json& j) const override {
    j["hidden_activation"] = j["hidden_act"];
    j.erase("hidden_act");
    j["query_pre_attn_scalar"] = c.query_pre_attn_scalar();
    j["attn_logit_softcapping"] = c.attn_softcap();
    j["final_logit_softcapping"] = c.final_softcap();
    j["sliding_window"] = c.sliding_window();
  }
  TensorSource gguf_source(const std::string& param, const LlamaConfig& c,
                           const HasTensor& has) const override {
    static const std::map<std::string, std::string> norms = {
        {"post_attention_layernorm.weight", "post_attention_norm.weight"},
        {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
        {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"}};
    int64_t layer = 0;
    std::string rest;
    if (split_layer_param(param, layer, rest) && norms.count(rest))
      return {"blk." + std::to_string(layer) + "." + norms.at(rest)};
    return Architecture::gguf_source(param, c, has);
  }
  TensorSource hf_source(const std::string& param, const LlamaConfig& c,
                         const HasTensor& has) const override {
    TensorSource s = Architecture::hf_source(param, c, has);
    if (is_norm(param)) s.add = 1;
    return s;
  }

 private:
  static void common(LlamaConfig& c) {
    c.post_norms(true)
        .embedding_scale(std::sqrt(static_cast<double>(c.hidden_size())))
        .sliding_layers(SlidingLayers::kEven);
  }
};

}  // namespace

std::unique_ptr<Architecture> make_gemma2_architecture() { return std::make_unique<Gemma2>(); }

}  // namespace coco::llm
