// Dropout masks from a xorshift64* stream seeded by the torch generator.
#include "coco/ops/dropout.h"

#include <torch/torch.h>

namespace coco {

torch::Tensor dropout_mask(torch::IntArrayRef sizes, double p,
                           const torch::TensorOptions& options) {
  if (p >= 1) return torch::zeros(sizes, options);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  if (!options.device().is_cpu())
    return (torch::rand(sizes, options) >= p).to(options.dtype()) * scale;
  auto mask = torch::empty(sizes, options.dtype(torch::kFloat32));
  uint64_t state =
      static_cast<uint64_t>(torch::randint(1, INT64_MAX, {1}, torch::kInt64).item<int64_t>());
  const auto threshold = static_cast<uint32_t>(p * 4294967296.0);
  float* m = mask.data_ptr<float>();
  for (int64_t i = 0, n = mask.numel(); i < n; ++i) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    const auto r = static_cast<uint32_t>((state * 0x2545F4914F6CDD1DULL) >> 32);
    m[i] = r >= threshold ? scale : 0.0f;
  }
  return mask.to(options.dtype());
}

torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p <= 0) return x;
  return x * dropout_mask(x.sizes(), p, x.options());
}

}  // namespace coco
