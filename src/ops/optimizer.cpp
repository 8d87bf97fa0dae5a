// Adam/AdamW over parameter groups and the shared optimisation step.
#include "coco/ops/optimizer.h"

#include <cmath>

#include <torch/torch.h>

namespace coco {

namespace {

std::unique_ptr<torch::optim::OptimizerOptions> group_options(const OptimizerOptions& o,
                                                              double lr) {
  if (o.kind == OptimizerKind::kAdamW) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay));
  }
  return std::make_unique<torch::optim::AdamOptions>(
      torch::optim::AdamOptions(lr).betas({o.beta1, o.beta2}).weight_decay(o.weight_decay));
}

// The L2 norm of the gradients of `params` (those that have one).
double grad_norm(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().detach().norm());
  return norms.empty() ? 0.0 : torch::stack(norms).norm().item<double>();
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<ParamGroup>& groups,
                                                        const OptimizerOptions& options) {
  std::vector<torch::optim::OptimizerParamGroup> torch_groups;
  for (const auto& g : groups) {
    if (!g.params.empty())
      torch_groups.emplace_back(g.params, group_options(options, g.lr > 0 ? g.lr : options.lr));
  }
  const auto defaults = group_options(options, options.lr);
  if (options.kind == OptimizerKind::kAdamW) {
    return std::make_unique<torch::optim::AdamW>(
        torch_groups, static_cast<torch::optim::AdamWOptions&>(*defaults));
  }
  return std::make_unique<torch::optim::Adam>(torch_groups,
                                              static_cast<torch::optim::AdamOptions&>(*defaults));
}

double optimizer_step(torch::optim::Optimizer& optimizer, const torch::Tensor& loss,
                      double clip_grad_norm, const std::function<void()>& after_backward) {
  optimizer.zero_grad();
  loss.backward();
  if (after_backward) after_backward();
  double largest = 0;
  for (auto& group : optimizer.param_groups()) {
    const double norm = clip_grad_norm > 0
                            ? torch::nn::utils::clip_grad_norm_(group.params(), clip_grad_norm)
                            : grad_norm(group.params());
    if (!std::isfinite(norm)) return norm;
    largest = std::max(largest, norm);
  }
  optimizer.step();
  return largest;
}

void move_optimizer_state(torch::optim::Optimizer& optimizer, torch::Device device) {
  auto move = [&](auto& st) {
    st.exp_avg(st.exp_avg().to(device));
    st.exp_avg_sq(st.exp_avg_sq().to(device));
    if (st.max_exp_avg_sq().defined()) st.max_exp_avg_sq(st.max_exp_avg_sq().to(device));
  };
  for (auto& [key, st] : optimizer.state()) {
    if (auto* adam = dynamic_cast<torch::optim::AdamParamState*>(st.get())) move(*adam);
    if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(st.get())) move(*adamw);
  }
}

}  // namespace coco
