// e^t for t ≤ 0 as an inline polynomial (Cephes' expf, about 2 ulp) that GCC vectorises
// inside `#pragma omp simd` loops, where std::exp stays one call per element. Arguments
// below −87 give e^−87 instead of a denormal. The including file needs
// -fno-trapping-math (the float → int conversion) for the loop to vectorise.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace coco {

inline float exp_nonpositive(float t) {
  t = std::max(t, -87.0f);
  const auto n = static_cast<int32_t>(t * 1.44269504f - 0.5f);  // round(t / ln 2), t ≤ 0
  const float fn = static_cast<float>(n);
  const float r = t - fn * 0.693359375f + fn * 2.12194440e-4f;  // t − n ln 2
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  const int32_t bits = (n + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

}  // namespace coco
