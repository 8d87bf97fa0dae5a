// Gradient averaging for data-parallel training, overlapped with backward as PyTorch's DDP
// does it: parameters are packed into buckets of about dist.bucket_mb in reverse order
// (the order backward produces their gradients), a hook copies each gradient into its
// bucket as soon as autograd has it, and a full bucket's all-reduce starts while backward
// goes on. Buckets start strictly in order, so every rank issues the same collectives.
#pragma once

#include <memory>
#include <vector>

#include <torch/types.h>

#include "coco/dist/process_group.h"

namespace coco::dist {

class GradientSync {
 public:
  GradientSync(const Group& group, std::vector<torch::Tensor> params, double bucket_mb);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  /// Before backward: this rank's gradients will count with `weight` (its share of the
  /// global batch, so that the sum over ranks is the global batch's gradient).
  void prepare(double weight);
  /// After backward: waits for every bucket and writes the reduced gradients back. A
  /// parameter that no rank gave a gradient keeps none (as in a single process).
  void finish();

  const std::vector<torch::Tensor>& params() const { return params_; }

  /// Seconds spent blocked in finish() since construction: the communication that
  /// backward did not hide.
  double wait_seconds() const { return wait_seconds_; }

 private:
  struct Bucket;
  void on_gradient(size_t param, const torch::Tensor& grad);
  void launch_ready();

  const Group& group_;
  std::vector<torch::Tensor> params_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<size_t> bucket_of_, offset_of_;  // per parameter
  std::vector<int64_t> hooks_;                 // per parameter; -1: none yet
  std::vector<char> has_grad_;                 // per parameter, this step
  size_t next_launch_ = 0;
  bool armed_ = false;
  double weight_ = 1;
  double wait_seconds_ = 0;
};

}  // namespace coco::dist
