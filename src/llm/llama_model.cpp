// LlamaModel forward and greedy decoding (no KV cache: the models this runs are small, and
// a cache would be a second code path to keep equal to the first).
#include "coco/llm/llama_model.h"

#include <torch/torch.h>

#include "coco/common/error.h"

namespace coco::llm {

namespace {

// One decoder block under activation checkpointing (the reentrant scheme of PyTorch's
// torch.utils.checkpoint): the forward keeps the block's input and the random generator's
// state, the backward re-runs the block with autograd on and back-propagates through it,
// which also accumulates the gradients of its LoRA adapters.
struct CheckpointedBlock : torch::autograd::Function<CheckpointedBlock> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               LlamaDecoderLayerImpl* block, const DecoderContext& dc) {
    ctx->saved_data["x"] = x.detach();
    ctx->saved_data["block"] = reinterpret_cast<int64_t>(block);  // owned by the model
    ctx->saved_data["cos"] = dc.rope.cos;
    ctx->saved_data["sin"] = dc.rope.sin;
    ctx->saved_data["allow"] = dc.allow;
    ctx->saved_data["allow_sliding"] = dc.allow_sliding;
    ctx->saved_data["lora_mask"] = dc.lora_mask;
    ctx->saved_data["rng"] = at::globalContext().defaultGenerator(x.device()).get_state();
    torch::NoGradGuard no_grad;
    return block->forward(x, dc);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_out) {
    auto& d = ctx->saved_data;
    const auto x = d["x"].toTensor().detach().requires_grad_(true);
    auto* block = reinterpret_cast<LlamaDecoderLayerImpl*>(d["block"].toInt());
    DecoderContext dc;
    dc.rope = {d["cos"].toTensor(), d["sin"].toTensor()};
    dc.allow = d["allow"].toTensor();
    dc.allow_sliding = d["allow_sliding"].toTensor();
    dc.lora_mask = d["lora_mask"].toTensor();
    auto gen = at::globalContext().defaultGenerator(x.device());
    const auto now = gen.get_state();
    gen.set_state(d["rng"].toTensor());  // the forward's dropout masks again
    torch::Tensor y;
    {
      torch::AutoGradMode grad_on(true);
      y = block->forward(x, dc);
    }
    gen.set_state(now);
    torch::autograd::backward({y}, {grad_out[0]});
    return {x.grad(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

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

torch::Tensor make_sliding_allow(const torch::Tensor& allow, const torch::Tensor& positions,
                                 int64_t window) {
  const auto behind = positions.unsqueeze(2) - positions.unsqueeze(1);  // [B, T, T] q − k
  return allow & (behind < window).unsqueeze(1).to(allow.device());
}

LlamaModelImpl::LlamaModelImpl(LlamaConfig config,
                               c10::optional<torch::TensorOptions> uninitialised)
    : config_(std::move(config)), uninitialised_(std::move(uninitialised)) {
  config_.validate("LlamaModel");
  reset();
}

std::vector<torch::Tensor> LlamaModelImpl::unfreeze_weights() {
  std::vector<torch::Tensor> weights;
  for (auto& p : named_parameters()) {
    if (p.key().find("lora_") == std::string::npos)
      weights.push_back(p.value().set_requires_grad(true));
  }
  return weights;
}

void LlamaModelImpl::freeze_weights() {
  for (auto& p : named_parameters()) {
    if (p.key().find("lora_") == std::string::npos) p.value().set_requires_grad(false);
  }
}

void LlamaModelImpl::reset() {
  const auto v = config_.vocab_size(), d = config_.hidden_size();
  auto embed = torch::nn::EmbeddingOptions(v, d);
  if (uninitialised_) embed._weight(torch::empty({v, d}, *uninitialised_));
  embed_ = register_module("embed_tokens", torch::nn::Embedding(embed));
  embed_->weight.set_requires_grad(false);
  layers_ = torch::nn::ModuleList();
  for (int64_t i = 0; i < config_.num_layers(); ++i)
    layers_->push_back(LlamaDecoderLayer(config_, LayerPlacement{i, uninitialised_}));
  layers_ = register_module("layers", layers_);
  norm_ = register_module(
      "norm", RMSNorm(RMSNormOptions(d).eps(config_.rms_norm_eps()).uninitialised(uninitialised_)));
  lm_head_ = nullptr;
  if (!config_.tie_word_embeddings()) {
    lm_head_ = register_module("lm_head",
                               LoRALinear(LoRALinearOptions(d, v).uninitialised(uninitialised_)));
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
  auto out = lm_head_ ? lm_head_->forward(hidden) : torch::matmul(hidden, embed_->weight.t());
  const double cap = config_.final_softcap();
  if (cap > 0) out = torch::tanh(out / cap) * cap;
  return out;  // [B, T, V]
}

LlamaOutput LlamaModelImpl::run(const LlamaInput& input) {
  TORCH_CHECK(input.input_ids.defined() != input.inputs_embeds.defined(),
              "LlamaModel: give exactly one of input_ids and inputs_embeds");
  auto x = input.inputs_embeds.defined() ? input.inputs_embeds.to(device(), dtype())
                                         : embed_tokens(input.input_ids);  // [B, T, D]
  TORCH_CHECK(x.dim() == 3 && x.size(2) == config_.hidden_size(), "inputs_embeds must be [B, T, ",
              config_.hidden_size(), "], got ", x.sizes());
  if (config_.embedding_scale() != 1.0) {
    // Gemma multiplies by √D rounded to the run's dtype, as transformers does.
    x = x * torch::scalar_tensor(config_.embedding_scale(), x.options()).item<double>();
  }
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
  ctx.rope = make_rope_tables(positions, config_.rope_inv_freq(), dtype());
  ctx.allow = make_attention_allow(input.attention_mask, b, t, dev);
  if (config_.sliding_window() > 0)
    ctx.allow_sliding = make_sliding_allow(ctx.allow, positions, config_.sliding_window());
  if (input.lora_mask.defined()) {
    TORCH_CHECK(input.lora_mask.numel() == b, "lora_mask must be [B] = [", b, "], got ",
                input.lora_mask.sizes());
    ctx.lora_mask = input.lora_mask.to(dev).reshape({b});
  }
  LlamaOutput out;
  const int64_t n_layers = config_.num_layers();
  const int64_t keep = std::min(input.output_last_layers, n_layers);
  const bool checkpoint = input.checkpoint_layers && torch::GradMode::is_enabled();
  if (checkpoint && !x.requires_grad()) x = x.detach().requires_grad_(true);  // so LoRA learns
  for (int64_t i = 0; i < n_layers; ++i) {
    auto* block = layers_[static_cast<size_t>(i)]->as<LlamaDecoderLayerImpl>();
    x = checkpoint ? CheckpointedBlock::apply(x, block, ctx) : block->forward(x, ctx);
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
