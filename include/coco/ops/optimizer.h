// The optimiser of every training loop in the framework (the trainer, the catalogue
// adaptation of the LLM): Adam or AdamW over named parameter groups, each at its own
// learning rate, and the one step they all take. Not the schedules (train/options.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>
#include <torch/types.h>

namespace coco {

enum class OptimizerKind { kAdam, kAdamW };  // AdamW decouples the weight decay

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kAdam;
  double lr = 1e-3;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999;
};

/// Trainable parameters that share one learning rate.
struct ParamGroup {
  std::string name;
  std::vector<torch::Tensor> params;
  double lr = 0;  // 0: the options' lr
};

/// An optimiser over the non-empty groups (in order), each at its own rate.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<ParamGroup>& groups,
                                                        const OptimizerOptions& options);

/// One update: clears the old gradients, back-propagates `loss`, calls `after_backward`
/// (data-parallel training averages the gradients there), clips each group's gradient
/// norm to `clip_grad_norm` (0: no clipping; per group, so that one part's large gradients
/// do not shrink another's), and steps. Returns the largest group's gradient norm before
/// clipping; when a norm is NaN or Inf it is returned and the weights are not updated.
double optimizer_step(torch::optim::Optimizer& optimizer, const torch::Tensor& loss,
                      double clip_grad_norm, const std::function<void()>& after_backward = {});

/// Moves the optimiser's state (deserialised on the CPU) to where the parameters live.
void move_optimizer_state(torch::optim::Optimizer& optimizer, torch::Device device);

}  // namespace coco
