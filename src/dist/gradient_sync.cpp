// Bucketed gradient all-reduce driven by autograd hooks.
#include "coco/dist/gradient_sync.h"

#include <chrono>

#include <torch/torch.h>

namespace coco::dist {

struct GradientSync::Bucket {
  torch::Tensor flat;          // the gradients of `params`, back to back
  std::vector<size_t> params;  // indices into params_
  int64_t numel = 0;
  size_t pending = 0;  // gradients still to arrive this step
  Pending work;
};

GradientSync::GradientSync(const Group& group, std::vector<torch::Tensor> params, double bucket_mb)
    : group_(group),
      params_(std::move(params)),
      bucket_of_(params_.size()),
      offset_of_(params_.size()),
      hooks_(params_.size(), -1),
      has_grad_(params_.size(), 0) {
  const auto cap = static_cast<int64_t>(bucket_mb * (1 << 20));
  int64_t bytes = 0;
  for (size_t i = params_.size(); i-- > 0;) {
    const auto& p = params_[i];
    const int64_t size = p.numel() * p.element_size();
    const auto& first = buckets_.empty() ? p : params_[buckets_.back()->params[0]];
    if (buckets_.empty() || first.scalar_type() != p.scalar_type() ||
        first.device() != p.device() || bytes + size > cap) {
      buckets_.push_back(std::make_unique<Bucket>());
      bytes = 0;
    }
    Bucket& b = *buckets_.back();
    bucket_of_[i] = buckets_.size() - 1;
    offset_of_[i] = static_cast<size_t>(b.numel);
    b.params.push_back(i);
    b.numel += p.numel();
    bytes += size;
  }
  for (auto& b : buckets_) b->flat = torch::zeros({b->numel}, params_[b->params[0]].options());
}

GradientSync::~GradientSync() {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (hooks_[i] >= 0) params_[i].remove_hook(static_cast<unsigned>(hooks_[i]));
  }
}

void GradientSync::prepare(double weight) {
  weight_ = weight;
  next_launch_ = 0;
  std::fill(has_grad_.begin(), has_grad_.end(), 0);
  for (auto& b : buckets_) b->pending = b->params.size();
  // Hooks go on when a parameter first takes part (a stage may unfreeze it later).
  for (size_t i = 0; i < params_.size(); ++i) {
    if (hooks_[i] < 0 && params_[i].requires_grad()) {
      hooks_[i] =
          params_[i].register_hook([this, i](const torch::Tensor& grad) { on_gradient(i, grad); });
    }
  }
  armed_ = true;
}

void GradientSync::on_gradient(size_t param, const torch::Tensor& grad) {
  if (!armed_) return;  // a backward pass outside the trainer's step
  Bucket& b = *buckets_[bucket_of_[param]];
  b.flat.narrow(0, static_cast<int64_t>(offset_of_[param]), grad.numel()).copy_(grad.reshape(-1));
  has_grad_[param] = 1;
  if (--b.pending == 0) launch_ready();
}

void GradientSync::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_]->pending == 0) {
    Bucket& b = *buckets_[next_launch_++];
    if (weight_ != 1) b.flat.mul_(weight_);
    b.work = group_.all_reduce_async(b.flat, "all-reduce of gradients");
  }
}

void GradientSync::finish() {
  torch::NoGradGuard no_grad;
  armed_ = false;
  // Parameters without a gradient on this rank contribute zeros.
  for (size_t k = next_launch_; k < buckets_.size(); ++k) {
    Bucket& b = *buckets_[k];
    for (size_t i : b.params) {
      if (!has_grad_[i]) {
        b.flat.narrow(0, static_cast<int64_t>(offset_of_[i]), params_[i].numel()).zero_();
      }
    }
    b.pending = 0;
  }
  launch_ready();
  auto flags = torch::empty({static_cast<int64_t>(params_.size())}, torch::kFloat32);
  for (size_t i = 0; i < params_.size(); ++i) flags[i] = static_cast<float>(has_grad_[i]);
  const auto start = std::chrono::steady_clock::now();
  group_.all_reduce({flags}, ReduceOp::kMax, "all-reduce of gradient flags");
  for (auto& b : buckets_) b->work.wait();
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const float* any = flags.data_ptr<float>();
  for (size_t i = 0; i < params_.size(); ++i) {
    if (any[i] == 0) continue;  // as a single process: untouched
    auto& p = params_[i];
    const auto reduced = buckets_[bucket_of_[i]]
                             ->flat.narrow(0, static_cast<int64_t>(offset_of_[i]), p.numel())
                             .view(p.sizes());
    if (p.grad().defined()) {
      p.mutable_grad().copy_(reduced);
    } else {
      p.mutable_grad() = reduced.clone();
    }
  }
}

}  // namespace coco::dist
