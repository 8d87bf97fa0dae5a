// LlamaModel forward and greedy decoding (no KV cache: the models this runs are small, and
// a cache would be a second code path to keep equal to the first).
#include "coco/llm/llama_model.h"

#include <torch/torch.h>

#include "coco/common/error.h"

namespace coco::llm {

torch::Tensor LlamaOutput::mean_of_layers() const {
  if (layers.empty()) return hidden;
  return torch::stack(layers, 0).mean(0);
}

torch::Tensor make_attention_allow(const torch::Tensor& attention_mask, int64_t batch,
                                  int64_t length, torch::Device device) {
  const auto bool_opts = torch::TensorOptions().dtype(torch::kBool).device(device);
  auto allowed = torch::ones({length, length}, bool_opts).tril().view({1, 1, length, length});
  if (attention_mask.defined()) {
    TORCH_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == batch &&
                    attention_mask.size(1) == length,
                "attention_mask must be [B, T] = [", batch, ", ", length, "], got ",
                attention_mask.sizes());
    const auto keys = attention_mask.to(device).to(torch::kBool).view({batch, 1, 1, length});
    return allowed & keys;  // [B, 1, T, T]
  }
  return allowed.expand({batch, 1, length, length}).contiguous();  // once, not per layer
}

LlamaModelImpl::LlamaModelImpl(LlamaConfig config) : config_(std::move(config)) {
  config_.validate("LlamaModel");
  reset();
}

void LlamaModelImpl::reset() {
  embed_ = register_module("embed_tokens",
                           torch::nn::Embedding(config_.vocab_size(), config_.hidden_size()));
  embed_->weight.set_requires_grad(false);
  layers_ = torch::nn::ModuleList();
  for (int64_t i = 0; i < config_.num_layers(); ++i) layers_->push_back(LlamaDecoderLayer(config_));
  layers_ = register_module("layers", layers_);
  norm_ = register_module(
      "norm", RMSNorm(RMSNormOptions(config_.hidden_size()).eps(config_.rms_norm_eps())));
  if (!config_.tie_word_embeddings()) {
    lm_head_ = register_module("lm_head", LoRALinear(config_.hidden_size(), config_.vocab_size()));
  } else {
    lm_head_ = nullptr;
  }
}

torch::Tensor LlamaModelImpl::embed_tokens(const torch::Tensor& input_ids) {
  TORCH_CHECK(input_ids.dim() == 2, "input_ids must be [B, T], got ", input_ids.sizes());
  return torch::embedding(embed_->weight, input_ids.to(device()));
}

torch::Tensor LlamaModelImpl::forward(const torch::Tensor& inputs_embeds,
                                      const torch::Tensor& attention_mask,
                                      const torch::Tensor& lora_mask) {
  LlamaInput in;
  in.inputs_embeds = inputs_embeds;
  in.attention_mask = attention_mask;
  in.lora_mask = lora_mask;
  return run(in).hidden;
}

torch::Tensor LlamaModelImpl::logits(const torch::Tensor& hidden) {
  if (lm_head_) return lm_head_->forward(hidden);
  return torch::matmul(hidden, embed_->weight.t());  // [B, T, V]
}

LlamaOutput LlamaModelImpl::run(const LlamaInput& input) {
  TORCH_CHECK(input.input_ids.defined() != input.inputs_embeds.defined(),
              "LlamaModel: give exactly one of input_ids and inputs_embeds");
  auto x = input.inputs_embeds.defined() ? input.inputs_embeds.to(device(), dtype())
                                         : embed_tokens(input.input_ids);  // [B, T, D]
  TORCH_CHECK(x.dim() == 3 && x.size(2) == config_.hidden_size(), "inputs_embeds must be [B, T, ",
              config_.hidden_size(), "], got ", x.sizes());
  const auto b = x.size(0), t = x.size(1);
  const auto dev = x.device();
  // Positions count real tokens only, so left-padded and right-padded rows get the same
  // angles for the same text.
  torch::Tensor positions;  // [B, T]
  if (input.attention_mask.defined()) {
    const auto m = input.attention_mask.to(dev).to(torch::kLong);
    positions = (m.cumsum(1) - 1).clamp_min(0);
  } else {
    positions = torch::arange(t, torch::TensorOptions().dtype(torch::kLong).device(dev))
                    .unsqueeze(0)
                    .expand({b, t});
  }
  DecoderContext ctx;
  ctx.rope = make_rope_tables(positions, config_.head_dim(), config_.rope_theta(), dtype());
  ctx.allow = make_attention_allow(input.attention_mask, b, t, dev);
  if (input.lora_mask.defined()) {
    TORCH_CHECK(input.lora_mask.numel() == b, "lora_mask must be [B] = [", b, "], got ",
                input.lora_mask.sizes());
    ctx.lora_mask = input.lora_mask.to(dev).reshape({b});
  }
  LlamaOutput out;
  const int64_t n_layers = config_.num_layers();
  const int64_t keep = std::min(input.output_last_layers, n_layers);
  for (int64_t i = 0; i < n_layers; ++i) {
    x = layers_[static_cast<size_t>(i)]->as<LlamaDecoderLayerImpl>()->forward(x, ctx);
    if (i >= n_layers - keep && i < n_layers - 1) out.layers.push_back(x);
  }
  out.hidden = norm_->forward(x);
  if (keep > 0) out.layers.push_back(out.hidden);
  if (input.output_logits) out.logits = logits(out.hidden);
  return out;
}

std::vector<int64_t> LlamaModelImpl::generate_greedy(const std::vector<int64_t>& prompt,
                                                     int64_t max_new_tokens, int64_t eos_id) {
  TORCH_CHECK(!prompt.empty(), "generate_greedy needs at least one prompt token (BOS)");
  torch::NoGradGuard no_grad;
  std::vector<int64_t> tokens = prompt;
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    const auto ids = torch::tensor(tokens, torch::kLong).to(device()).unsqueeze(0);  // [1, T]
    const auto h = run(LlamaInput{ids, {}, {}, {}, 0, false}).hidden;
    const auto last = logits(h.select(1, h.size(1) - 1));  // [1, V]
    const int64_t next = last.argmax(-1).item<int64_t>();
    if (next == eos_id) break;
    tokens.push_back(next);
  }
  return {tokens.begin() + static_cast<std::ptrdiff_t>(prompt.size()), tokens.end()};
}

}  // namespace coco::llm
