// Decision matrix signals, masking rules and per-code diagnostics.
#include "coco/nn/decision.h"

#include <torch/torch.h>

#include <string>

namespace coco {

DecisionOptions DecisionOptions::from_config(ConfigNode& node) {
  DecisionOptions o;
  o.rule(node.get_enum("rule", o.rule(),
                       {{"cosine", DecisionRule::kCosine},
                        {"utility", DecisionRule::kUtility},
                        {"both", DecisionRule::kBoth},
                        {"always", DecisionRule::kAlways},
                        {"never", DecisionRule::kNever}}));
  o.theta(node.get_double("theta", o.theta(), -1, 1));
  node.finish();
  return o;
}

DecisionMatrixImpl::DecisionMatrixImpl(DecisionOptions options_) : options(options_) {}

DecisionOutput DecisionMatrixImpl::forward(const torch::Tensor& h_aligned,
                                           const torch::Tensor& h_rs,
                                           const torch::Tensor& logp_with,
                                           const torch::Tensor& logp_without) {
  TORCH_CHECK(h_aligned.dim() == 2 && h_aligned.sizes() == h_rs.sizes(),
              "decision: expected h_aligned and h_rs [B, d], got ", h_aligned.sizes(), " and ",
              h_rs.sizes());
  const int64_t b = h_rs.size(0);
  TORCH_CHECK(
      logp_with.dim() == 1 && logp_with.size(0) == b && logp_without.sizes() == logp_with.sizes(),
      "decision: expected logp_with and logp_without [", b, "], got ", logp_with.sizes(), " and ",
      logp_without.sizes());
  torch::NoGradGuard no_grad;
  DecisionOutput out;
  out.a = torch::cosine_similarity(h_aligned.detach(), h_rs.detach(), 1, 1e-8);
  out.delta = logp_with.detach() - logp_without.detach();
  const auto low_alignment = out.a < options.theta();
  const auto harmful = out.delta < 0;
  torch::Tensor m;
  switch (options.rule()) {
    case DecisionRule::kCosine:
      m = low_alignment;
      break;
    case DecisionRule::kUtility:
      m = harmful;
      break;
    case DecisionRule::kBoth:
      m = low_alignment.logical_and(harmful);
      break;
    case DecisionRule::kAlways:
      m = torch::ones_like(harmful);
      break;
    case DecisionRule::kNever:
      m = torch::zeros_like(harmful);
      break;
  }
  out.mask = m.to(out.a.dtype());
  out.activation_rate = b > 0 ? out.mask.mean() : torch::zeros({}, out.a.options());
  return out;
}

CodeActivation DecisionMatrixImpl::per_code_activation(const torch::Tensor& mask,
                                                       const torch::Tensor& codes,
                                                       int64_t num_codes) {
  TORCH_CHECK(mask.dim() == 1 && codes.sizes() == mask.sizes(),
              "per_code_activation: expected mask and codes [B], got ", mask.sizes(), " and ",
              codes.sizes());
  torch::NoGradGuard no_grad;
  const auto opts = mask.options().dtype(torch::kFloat32);
  CodeActivation out;
  out.examples = torch::zeros({num_codes}, opts).index_add_(0, codes, torch::ones_like(mask, opts));
  out.active =
      torch::zeros({num_codes}, opts).index_add_(0, codes, mask.detach().to(torch::kFloat32));
  out.rate = torch::where(out.examples > 0, out.active / out.examples.clamp_min(1),
                          torch::zeros_like(out.active));
  return out;
}

}  // namespace coco
