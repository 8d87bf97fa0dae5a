// Causal language modelling on the item texts, before CoCo training.
#include "coco/model/catalogue_adaptation.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/model/knowledge_encoder.h"
#include "coco/ops/optimizer.h"

namespace coco {

AdaptOptions AdaptOptions::from_config(ConfigNode& node) {
  AdaptOptions o;
  o.epochs = node.get_int("epochs", o.epochs, 0, 1000);
  o.mode = node.get_enum("mode", o.mode, {{"lora", AdaptMode::kLora}, {"full", AdaptMode::kFull}});
  o.lr = node.get_double("lr", o.lr, 1e-12, 10);
  o.batch_size = node.get_int("batch_size", o.batch_size, 1);
  o.holdout = node.get_double("holdout", o.holdout, 0, 0.5);
  node.finish();
  return o;
}

Json AdaptResult::to_json() const {
  return {{"heldout_loss_before", heldout_loss_before},
          {"heldout_loss_after", heldout_loss_after},
          {"seconds", seconds},
          {"texts", texts}};
}

namespace {

// Mean next-token cross-entropy over the real tokens of `texts` [begin, end).
torch::Tensor lm_loss(llm::LlamaModelImpl& model, const std::vector<std::vector<int64_t>>& texts,
                      size_t begin, size_t end, int64_t pad) {
  size_t width = 0;
  for (size_t i = begin; i < end; ++i) width = std::max(width, texts[i].size());
  const auto n = static_cast<int64_t>(end - begin), t = static_cast<int64_t>(width);
  auto ids = torch::full({n, t}, pad, torch::kInt64);
  auto mask = torch::zeros({n, t}, torch::kInt64);
  for (size_t i = begin; i < end; ++i) {
    const auto& row = texts[i];
    const auto r = static_cast<int64_t>(i - begin), len = static_cast<int64_t>(row.size());
    ids[r].narrow(0, 0, len).copy_(torch::tensor(row, torch::kInt64));
    mask[r].narrow(0, 0, len).fill_(1);
  }
  ids = ids.to(model.device());
  mask = mask.to(model.device());
  llm::LlamaInput in;
  in.input_ids = ids;
  in.attention_mask = mask;
  in.output_logits = true;
  const auto logits = model.run(in).logits.narrow(1, 0, t - 1).to(torch::kFloat32);  // [N, T-1, V]
  const auto targets = ids.narrow(1, 1, t - 1).masked_fill(mask.narrow(1, 1, t - 1) == 0, -100);
  return torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(2)}), targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
}

double heldout_loss(llm::LlamaModelImpl& model, const std::vector<std::vector<int64_t>>& texts,
                    size_t count, int64_t batch, int64_t pad) {
  torch::NoGradGuard no_grad;
  model.eval();
  double sum = 0;
  size_t batches = 0;
  for (size_t i = 0; i < count; i += static_cast<size_t>(batch), ++batches) {
    sum += lm_loss(model, texts, i, std::min(count, i + static_cast<size_t>(batch)), pad)
               .item<double>();
  }
  return batches ? sum / static_cast<double>(batches) : 0;
}

}  // namespace

AdaptResult adapt_to_catalogue(KnowledgeEncoderImpl& encoder, const AdaptOptions& options,
                               uint64_t seed) {
  AdaptResult result;
  if (options.epochs == 0) return result;
  const auto start = std::chrono::steady_clock::now();
  auto& model = *encoder.llm();
  const auto& tok = encoder.tokenizer();
  const int64_t pad = tok.padding_id();

  std::vector<std::vector<int64_t>> texts;
  for (int64_t item = 1; item <= encoder.item_count(); ++item) {
    const std::string text = encoder.item_text(item);
    if (text.empty()) continue;
    auto ids = tok.encode(text, tok.add_bos(), /*add_eos=*/tok.eos_id() >= 0);
    if (static_cast<int64_t>(ids.size()) > encoder.options.max_tokens)
      ids.resize(static_cast<size_t>(encoder.options.max_tokens));
    if (ids.size() >= 2) texts.push_back(std::move(ids));
  }
  std::mt19937_64 rng(seed);
  std::shuffle(texts.begin(), texts.end(), rng);
  const auto held = std::min(
      texts.size() - 1, static_cast<size_t>(options.holdout * static_cast<double>(texts.size())));
  std::vector<std::vector<int64_t>> train(texts.begin() + static_cast<std::ptrdiff_t>(held),
                                          texts.end());
  texts.resize(held);  // the held-out part
  result.texts = static_cast<int64_t>(train.size());
  result.heldout_loss_before = heldout_loss(model, texts, held, options.batch_size, pad);

  const bool lora = options.mode == AdaptMode::kLora;
  const char* mode = lora ? "lora" : "full";
  const auto params = lora ? llm::lora_parameters(model) : model.unfreeze_weights();
  const auto optimizer =
      make_optimizer({{"llm", params, options.lr}}, {OptimizerKind::kAdam, options.lr});
  model.train();
  for (int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    std::shuffle(train.begin(), train.end(), rng);
    double sum = 0;
    size_t batches = 0;
    for (size_t i = 0; i < train.size(); i += static_cast<size_t>(options.batch_size), ++batches) {
      auto loss = lm_loss(model, train, i,
                          std::min(train.size(), i + static_cast<size_t>(options.batch_size)), pad);
      const double norm = optimizer_step(*optimizer, loss, /*clip_grad_norm=*/0);
      if (!std::isfinite(norm) || !std::isfinite(loss.item<double>())) {
        throw Error(fmt::format(
            "catalogue adaptation ({}) stopped at epoch {}, batch {}: the loss is {} and the "
            "gradient norm {} (lower coco.adapt.lr)",
            mode, epoch + 1, batches + 1, loss.item<double>(), norm));
      }
      sum += loss.item<double>();
    }
    log().info("[llm] catalogue adaptation ({}) epoch {}/{}: train loss {:.4f}", mode, epoch + 1,
               options.epochs, sum / static_cast<double>(std::max<size_t>(1, batches)));
  }
  // Freeze: fold the adapters into the weights and start CoCo's from zero, or refreeze.
  if (lora) {
    llm::merge_lora(model);
    llm::attach_lora(model, encoder.options.lora);
  } else {
    model.freeze_weights();
  }
  for (auto& p : model.parameters()) p.mutable_grad() = torch::Tensor();
  result.heldout_loss_after = heldout_loss(model, texts, held, options.batch_size, pad);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log().info("[llm] catalogue adaptation: held-out LM loss {:.4f} → {:.4f} on {} texts ({:.1f}s)",
             result.heldout_loss_before, result.heldout_loss_after, held, result.seconds);
  return result;
}

}  // namespace coco
