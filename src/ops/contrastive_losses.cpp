// InfoNCE variants and the codebook orthogonality penalty.
#include "coco/ops/contrastive_losses.h"

#include <torch/torch.h>

#include <limits>

namespace coco {
namespace {

torch::Tensor cosine_logits(const torch::Tensor& a, const torch::Tensor& b, double tau) {
  TORCH_CHECK(a.dim() == 2 && a.sizes() == b.sizes(), "InfoNCE: expected two [B, d], got ",
              a.sizes(), " and ", b.sizes());
  TORCH_CHECK(tau > 0, "InfoNCE: tau must be > 0, got ", tau);
  namespace F = torch::nn::functional;
  const auto an = F::normalize(a, F::NormalizeFuncOptions().dim(1).eps(1e-8));
  const auto bn = F::normalize(b, F::NormalizeFuncOptions().dim(1).eps(1e-8));
  return torch::mm(an, bn.t()) / tau;  // [B, B]
}

torch::Tensor diagonal_ce(const torch::Tensor& logits) {  // [B, B] → []
  const auto labels = torch::arange(logits.size(0), logits.options().dtype(torch::kInt64));
  return torch::nn::functional::cross_entropy(logits, labels);
}

}  // namespace

torch::Tensor info_nce(const torch::Tensor& a, const torch::Tensor& b, double tau) {
  return diagonal_ce(cosine_logits(a, b, tau));
}

torch::Tensor orthogonality_loss(const torch::Tensor& prompts) {
  TORCH_CHECK(prompts.dim() == 3, "orthogonality_loss: expected [K, P, D], got ", prompts.sizes());
  namespace F = torch::nn::functional;
  const int64_t k = prompts.size(0);
  const auto n = F::normalize(prompts.reshape({k, -1}), F::NormalizeFuncOptions().dim(1).eps(1e-8));
  const auto gram = torch::mm(n, n.t());  // [K, K]
  return (gram - torch::eye(k, gram.options())).pow(2).sum() / double(k * k);
}

torch::Tensor nce_item_loss(const torch::Tensor& h_u, const torch::Tensor& target_emb, double tau,
                            const torch::Tensor& target_ids) {
  auto logits = cosine_logits(h_u, target_emb, tau);
  if (target_ids.defined()) {
    TORCH_CHECK(target_ids.dim() == 1 && target_ids.size(0) == h_u.size(0),
                "nce_item_loss: expected target_ids [", h_u.size(0), "], got ", target_ids.sizes());
    const auto same = target_ids.unsqueeze(1) == target_ids.unsqueeze(0);  // [B, B]
    const auto off_diag = torch::eye(h_u.size(0), same.options()).logical_not();
    logits =
        logits.masked_fill(same.logical_and(off_diag), -std::numeric_limits<double>::infinity());
  }
  return diagonal_ce(logits);
}

}  // namespace coco
