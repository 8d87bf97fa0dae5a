// Next-item cross-entropy and sampled binary cross-entropy.
#include "coco/backbones/losses.h"

#include <torch/torch.h>

namespace coco {

NextItemLossOptions NextItemLossOptions::from_config(ConfigNode& node) {
  NextItemLossOptions o;
  o.kind = node.get_choice("loss", o.kind, {"ce", "bce"});
  o.num_negatives = node.get_int("num_negatives", o.num_negatives, 1, 1000);
  return o;
}

torch::Tensor full_softmax_ce(const torch::Tensor& repr, const torch::Tensor& targets,
                              const torch::Tensor& item_emb, const torch::Tensor& bias) {
  // Row 0 (padding) is left out of the softmax: logits cover items 1..V only.
  const int64_t num_items = item_emb.size(0) - 1;
  auto logits = torch::matmul(repr, item_emb.narrow(0, 1, num_items).t());  // [N, V]
  if (bias.defined()) logits = logits + bias.narrow(0, 1, num_items);
  return torch::nn::functional::cross_entropy(logits, targets - 1);
}

torch::Tensor next_item_loss(const torch::Tensor& hidden, const torch::Tensor& inputs,
                             const torch::Tensor& targets, const torch::Tensor& item_emb,
                             const NextItemLossOptions& opt) {
  const auto valid = (inputs > 0) & (targets > 0);  // [B, L]
  const auto h = hidden.index({valid});              // [N, d]
  const auto t = targets.index({valid});             // [N]
  if (t.numel() == 0) return hidden.sum() * 0;       // keeps the graph; no real position
  if (opt.kind == "ce") return full_softmax_ce(h, t, item_emb);

  const int64_t num_items = item_emb.size(0) - 1;
  auto neg = torch::randint(1, num_items + 1, {t.size(0), opt.num_negatives},
                            torch::TensorOptions().dtype(torch::kInt64).device(t.device()));
  neg = torch::where(neg == t.unsqueeze(1), neg % num_items + 1, neg);  // never the target
  const auto pos_logit = (h * item_emb.index_select(0, t)).sum(-1);            // [N]
  const auto neg_logit = torch::bmm(item_emb.index({neg}), h.unsqueeze(2)).squeeze(2);  // [N, k]
  namespace F = torch::nn::functional;
  return F::binary_cross_entropy_with_logits(pos_logit, torch::ones_like(pos_logit)) +
         F::binary_cross_entropy_with_logits(neg_logit, torch::zeros_like(neg_logit)) *
             opt.num_negatives;
}

}  // namespace coco
