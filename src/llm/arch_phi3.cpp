// Phi-3 / Phi-3.5 (mini, medium): Llama's block with fused weights — qkv_proj ([q; k; v]
// rows) and gate_up_proj ([gate; up]) in Hugging Face files, attn_qkv and ffn_up in GGUF —
// split into q/k/v and gate/up at load, and a sliding window on every layer. LongRoPE
// (the 128k variants) is refused by name.
#include "architectures.h"

#include "coco/common/error.h"
#include "coco/llm/gguf.h"

namespace coco::llm {
namespace {

/// The rows of q, k or v inside [q; k; v]; gate or up inside [gate; up].
bool fused_rows(const std::string& rest, const LlamaConfig& c, std::string& fused, int64_t& begin,
                int64_t& rows) {
  const int64_t q = c.num_heads() * c.head_dim(), kv = c.num_kv_heads() * c.head_dim();
  const int64_t f = c.intermediate_size();
  if (rest == "self_attn.q_proj.weight") {
    fused = "qkv", begin = 0, rows = q;
  } else if (rest == "self_attn.k_proj.weight") {
    fused = "qkv", begin = q, rows = kv;
  } else if (rest == "self_attn.v_proj.weight") {
    fused = "qkv", begin = q + kv, rows = kv;
  } else if (rest == "mlp.gate_proj.weight") {
    fused = "gate_up", begin = 0, rows = f;
  } else if (rest == "mlp.up_proj.weight") {
    fused = "gate_up", begin = f, rows = f;
  } else {
    return false;
  }
  return true;
}

class Phi3 : public Architecture {
 public:
  std::string name() const override { return "phi3"; }
  std::vector<std::string> hf_classes() const override { return {"Phi3ForCausalLM"}; }
  void read_hf(HfKeys& keys, LlamaConfig& c) const override {
    c.sliding_window(keys.get_int("sliding_window", 0));
    if (keys.get_double("partial_rotary_factor", 1.0) != 1.0)
      keys.fail("partial_rotary_factor", "partial rotary embeddings are not supported");
    keys.use("original_max_position_embeddings");  // read by longrope only
  }
  void read_gguf(GgufKeys& keys, GgufFile& file, LlamaConfig& c) const override {
    // Files written before the key existed: llama.cpp's windows for the released sizes.
    const int64_t layers = c.num_layers(), ctx = c.max_position();
    int64_t window = 0;
    if ((layers == 32 || layers == 40) && ctx == 4096) {
      window = 2047;
    } else if (layers == 32 && c.num_kv_heads() == 32 && ctx == 131072) {
      window = 262144;
    } else if (layers == 40 && ctx == 131072) {
      window = 131072;
    }
    c.sliding_window(keys.get_int("attention.sliding_window", window));
    if (c.sliding_window() == 0) keys.fail("attention.sliding_window", "is missing");
    keys.get_int("rope.scaling.original_context_length", 0);  // read by longrope only
    keys.get_float("rope.scaling.attn_factor", 1.0);
    if (file.find_tensor("rope_factors_long.weight") ||
        file.find_tensor("rope_factors_short.weight"))
      throw ModelError(file.path() +
                       ": GGUF tensor 'rope_factors_long.weight': LongRoPE is not "
                       "supported");
  }
  void write_hf(const LlamaConfig& c, nlohmann::json& j) const override {
    if (c.sliding_window() > 0) j["sliding_window"] = c.sliding_window();
  }
  TensorSource gguf_source(const std::string& param, const LlamaConfig& c,
                           const HasTensor& has) const override {
    int64_t layer = 0, begin = 0, rows = 0;
    std::string rest, fused;
    if (split_layer_param(param, layer, rest) && fused_rows(rest, c, fused, begin, rows)) {
      const std::string blk = "blk." + std::to_string(layer) + ".";
      const std::string name = blk + (fused == "qkv" ? "attn_qkv.weight" : "ffn_up.weight");
      if (fused == "gate_up" || has(name)) return {name, begin, rows};
    }
    return Architecture::gguf_source(param, c, has);
  }
  TensorSource hf_source(const std::string& param, const LlamaConfig& c,
                         const HasTensor& has) const override {
    int64_t layer = 0, begin = 0, rows = 0;
    std::string rest, fused;
    if (split_layer_param(param, layer, rest) && fused_rows(rest, c, fused, begin, rows)) {
      const std::string name =
          "model.layers." + std::to_string(layer) +
          (fused == "qkv" ? ".self_attn.qkv_proj.weight" : ".mlp.gate_up_proj.weight");
      if (has(name)) return {name, begin, rows};
    }
    return Architecture::hf_source(param, c, has);
  }
};

}  // namespace

std::unique_ptr<Architecture> make_phi3_architecture() { return std::make_unique<Phi3>(); }

}  // namespace coco::llm
