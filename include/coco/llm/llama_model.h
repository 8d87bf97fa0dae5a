// LlamaModel: a frozen Llama-family decoder (embeddings, blocks, final norm, optional output
// head) whose forward takes token ids or input embeddings plus padding and LoRA masks.
// Not a loader (llama_loader.h) and not a sampler beyond greedy decoding.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "coco/llm/llama_config.h"
#include "coco/llm/llama_layers.h"

namespace coco::llm {

/// What to run and what to return. Exactly one of input_ids / inputs_embeds is set.
struct LlamaInput {
  torch::Tensor input_ids;         // [B, T] int64
  torch::Tensor inputs_embeds;     // [B, T, D] (e.g. soft prompts prepended to embed_tokens(ids))
  torch::Tensor attention_mask;    // [B, T] 1 = token, 0 = padding (left or right); undefined = all
  torch::Tensor lora_mask;         // [B] 1 = this example trains the adapters; undefined = all.
                                   // Read at backward time (see LoRALinearImpl::forward).
  int64_t output_last_layers = 0;  // n > 0: also return the last n layers' states
  bool output_logits = false;
  /// Activation checkpointing: keep only each block's input and recompute the block in the
  /// backward pass (same gradients, dropout replayed; about one more forward of compute).
  bool checkpoint_layers = false;
};

struct LlamaOutput {
  torch::Tensor hidden;               // [B, T, D] last layer, after the final RMSNorm
  std::vector<torch::Tensor> layers;  // n × [B, T, D], oldest first; the last one == hidden
  torch::Tensor logits;               // [B, T, V] when asked for
  /// Mean of `layers` (n ≥ 1), else `hidden`.
  torch::Tensor mean_of_layers() const;  // [B, T, D]
};

/// The decoder. Every weight is frozen (requires_grad false); only LoRA adapters attached
/// later (attach_lora) are trainable. Parameter names follow Hugging Face without the
/// "model." prefix: embed_tokens.weight, layers.0.self_attn.q_proj.weight, norm.weight,
/// lm_head.weight (absent when tied).
class LlamaModelImpl : public torch::nn::Cloneable<LlamaModelImpl> {
 public:
  /// Random weights in float32 on CPU; with `uninitialised`, every weight allocated with those
  /// options and left for a loader to fill (see LoRALinearOptions::uninitialised).
  explicit LlamaModelImpl(LlamaConfig config,
                          c10::optional<torch::TensorOptions> uninitialised = c10::nullopt);
  void reset() override;

  /// The embedding rows (unscaled: Gemma's √D is applied in run(), to inputs_embeds as well).
  torch::Tensor embed_tokens(const torch::Tensor& input_ids);  // [B, T] -> [B, T, D]
  /// The main entry point for CoCo: embeddings in, last-layer hidden states out.
  torch::Tensor forward(const torch::Tensor& inputs_embeds,        // [B, T, D]
                        const torch::Tensor& attention_mask = {},  // [B, T]
                        const torch::Tensor& lora_mask = {});      // [B] -> [B, T, D]
  LlamaOutput run(const LlamaInput& input);
  /// Output head, soft-capped when the config says so.
  torch::Tensor logits(const torch::Tensor& hidden);  // [B, T, D] -> [B, T, V]

  /// Greedy continuation of `prompt` (token ids, BOS included if wanted); stops at `eos_id`.
  std::vector<int64_t> generate_greedy(const std::vector<int64_t>& prompt, int64_t max_new_tokens,
                                       int64_t eos_id);

  /// Makes every decoder weight (the LoRA adapters aside) trainable, for full fine-tuning,
  /// and returns them; freeze_weights() makes them frozen again.
  std::vector<torch::Tensor> unfreeze_weights();
  void freeze_weights();

  const LlamaConfig& config() const { return config_; }
  torch::Dtype dtype() const { return embed_->weight.scalar_type(); }
  torch::Device device() const { return embed_->weight.device(); }

 private:
  LlamaConfig config_;
  c10::optional<torch::TensorOptions> uninitialised_;
  torch::nn::Embedding embed_{nullptr};  // weight [V, D], frozen ("embed_tokens.weight")
  torch::nn::ModuleList layers_{nullptr};
  RMSNorm norm_{nullptr};
  LoRALinear lm_head_{nullptr};  // D -> V; null when tied to embed_
};
TORCH_MODULE(LlamaModel);

/// Which keys each query may see: causal and key-padding combined (all keys real when
/// `attention_mask` is undefined).
torch::Tensor make_attention_allow(const torch::Tensor& attention_mask, int64_t batch,
                                   int64_t length, torch::Device device);  // -> [B, 1, T, T] bool
/// `allow` narrowed to keys less than `window` positions behind the query.
torch::Tensor make_sliding_allow(const torch::Tensor& allow,      // [B, 1, T, T]
                                 const torch::Tensor& positions,  // [B, T] int64
                                 int64_t window);                 // -> [B, 1, T, T] bool

}  // namespace coco::llm
