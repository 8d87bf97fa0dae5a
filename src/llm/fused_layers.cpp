// Fused CPU kernels for the decoder's elementwise parts: RMSNorm, rotary embeddings, SwiGLU.
// libtorch composes each from several operations, every one a pass over the activations
// forward and again backward; on a small LLM's [B·T, 64] activations those passes take
// about as long as its projections. Here each is one pass forward and one
// backward, parallel over rows. The compositions remain as the *_reference functions: the
// path for CUDA, other dtypes and trainable norm weights, and what the tests hold the
// kernels to.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>

#include "coco/llm/llama_layers.h"
#include "coco/ops/fast_exp.h"

namespace coco::llm {

namespace {

constexpr int64_t kRowsPerTask = 256;

bool fusable(const torch::Tensor& x) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32;
}

// y = x · r · w with r = 1 / √(mean(x²) + eps) per row; saves r for backward.
struct FusedRMSNorm : torch::autograd::Function<FusedRMSNorm> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               const torch::Tensor& x,  // [N, D]
                               const torch::Tensor& weight, double eps) {
    const int64_t n = x.size(0), d = x.size(1);
    auto y = torch::empty_like(x), r = torch::empty({n}, x.options());
    const float *xp = x.data_ptr<float>(), *w = weight.data_ptr<float>();
    float *yp = y.data_ptr<float>(), *rp = r.data_ptr<float>();
    at::parallel_for(0, n, kRowsPerTask, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const float* xi = xp + i * d;
        float ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < d; ++j) ss += xi[j] * xi[j];
        const float ri = 1.0f / std::sqrt(ss / static_cast<float>(d) + static_cast<float>(eps));
        rp[i] = ri;
        float* yi = yp + i * d;
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) yi[j] = xi[j] * ri * w[j];
      }
    });
    ctx->save_for_backward({x, weight, r});
    return y;
  }

  // dx_j = r · (w_j g_j − x_j r² Σ_i w_i g_i x_i / D)
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &r = saved[2];
    const auto g = grad_out[0].contiguous();
    const int64_t n = x.size(0), d = x.size(1);
    auto dx = torch::empty_like(x);
    const float *xp = x.data_ptr<float>(), *w = weight.data_ptr<float>(), *rp = r.data_ptr<float>(),
                *gp = g.data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    at::parallel_for(0, n, kRowsPerTask, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const float *xi = xp + i * d, *gi = gp + i * d;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t j = 0; j < d; ++j) dot += w[j] * gi[j] * xi[j];
        const float ri = rp[i], c = ri * ri * dot / static_cast<float>(d);
        float* dxi = dxp + i * d;
#pragma omp simd
        for (int64_t j = 0; j < d; ++j) dxi[j] = ri * (w[j] * gi[j] - c * xi[j]);
      }
    });
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

// Rotates each pair (a, b) of x [N, H, Dh] by the angle of its row (cos, sin [N, Dh/2]):
// (a c − b s, a s + b c); `sign` −1 rotates back, which is the gradient.
void rotate(const float* x, const float* cos, const float* sin, int64_t n, int64_t heads,
            int64_t dh, bool adjacent, float sign, float* y) {
  const int64_t half = dh / 2, stride = adjacent ? 2 : 1,
                off = adjacent ? 1 : half;  // a at stride·i, b at +off
  at::parallel_for(0, n, kRowsPerTask, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float *c = cos + row * half, *s = sin + row * half;
      for (int64_t h = 0; h < heads; ++h) {
        const float* xr = x + (row * heads + h) * dh;
        float* yr = y + (row * heads + h) * dh;
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          const float a = xr[stride * i], b = xr[stride * i + off], si = sign * s[i];
          yr[stride * i] = a * c[i] - b * si;
          yr[stride * i + off] = a * si + b * c[i];
        }
      }
    }
  });
}

struct FusedRope : torch::autograd::Function<FusedRope> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               const torch::Tensor& x,                              // [B, T, H, Dh]
                               const torch::Tensor& cos, const torch::Tensor& sin,  // [B, T, Dh/2]
                               bool adjacent) {
    auto y = torch::empty_like(x);
    rotate(x.data_ptr<float>(), cos.data_ptr<float>(), sin.data_ptr<float>(), x.size(0) * x.size(1),
           x.size(2), x.size(3), adjacent, 1.0f, y.data_ptr<float>());
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["adjacent"] = adjacent;
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto g = grad_out[0].contiguous();
    auto dx = torch::empty_like(g);
    rotate(g.data_ptr<float>(), saved[0].data_ptr<float>(), saved[1].data_ptr<float>(),
           g.size(0) * g.size(1), g.size(2), g.size(3), ctx->saved_data["adjacent"].toBool(), -1.0f,
           dx.data_ptr<float>());
    return {dx, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// y = silu(g) ⊙ u = g σ(g) u, elementwise over [N] floats.
struct FusedSwiGLU : torch::autograd::Function<FusedSwiGLU> {
  // σ(g) from e^−|g| ≤ 1, which the polynomial covers and which cannot overflow.
  static float sigmoid(float g) {
    const float e = exp_nonpositive(-std::abs(g)), inv = 1.0f / (1.0f + e);
    return g >= 0 ? inv : e * inv;
  }

  static constexpr int64_t kGrain = 1 << 15;

  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& g,
                               const torch::Tensor& u) {
    auto y = torch::empty_like(g);
    const float *gp = g.data_ptr<float>(), *up = u.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    at::parallel_for(0, g.numel(), kGrain, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) yp[i] = gp[i] * sigmoid(gp[i]) * up[i];
    });
    ctx->save_for_backward({g, u});
    return y;
  }

  // dg = dy u σ (1 + g (1 − σ)), du = dy g σ
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto& g = saved[0];
    const auto dy = grad_out[0].contiguous();
    auto dg = torch::empty_like(g), du = torch::empty_like(g);
    const float *gp = g.data_ptr<float>(), *up = saved[1].data_ptr<float>(),
                *dyp = dy.data_ptr<float>();
    float *dgp = dg.data_ptr<float>(), *dup = du.data_ptr<float>();
    at::parallel_for(0, g.numel(), kGrain, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        const float s = sigmoid(gp[i]);
        dgp[i] = dyp[i] * up[i] * s * (1.0f + gp[i] * (1.0f - s));
        dup[i] = dyp[i] * gp[i] * s;
      }
    });
    return {dg, du};
  }
};

}  // namespace

torch::Tensor swiglu_reference(const torch::Tensor& gate, const torch::Tensor& up) {
  return torch::silu(gate) * up;
}

torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up) {
  if (!fusable(gate) || !fusable(up) || gate.sizes() != up.sizes())
    return swiglu_reference(gate, up);
  return FusedSwiGLU::apply(gate.contiguous(), up.contiguous());
}

torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const auto xf = x.to(torch::kFloat32);
  const auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (!fusable(x) || !fusable(weight) || weight.requires_grad())
    return rms_norm_reference(x, weight, eps);
  const auto rows = x.reshape({-1, x.size(-1)}).contiguous();
  return FusedRMSNorm::apply(rows, weight.contiguous(), eps).view(x.sizes());
}

torch::Tensor apply_rope_reference(const torch::Tensor& x, const RopeTables& t,
                                   RopePairing pairing) {
  const auto half = x.size(-1) / 2;
  if (pairing == RopePairing::kHalf) {
    const auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);  // [B,H,T,Dh/2]
    return torch::cat({x1 * t.cos - x2 * t.sin, x1 * t.sin + x2 * t.cos}, -1);
  }
  auto shape = x.sizes().vec();
  const auto pairs = x.reshape({x.size(0), x.size(1), x.size(2), half, 2});  // [B,H,T,Dh/2,2]
  const auto x1 = pairs.select(-1, 0), x2 = pairs.select(-1, 1);
  return torch::stack({x1 * t.cos - x2 * t.sin, x1 * t.sin + x2 * t.cos}, -1).reshape(shape);
}

torch::Tensor apply_rope(const torch::Tensor& x, const RopeTables& t, RopePairing pairing) {
  if (!fusable(x) || !fusable(t.cos) || !fusable(t.sin) || t.cos.requires_grad() ||
      t.sin.requires_grad()) {
    return apply_rope_reference(x, t, pairing);
  }
  const int64_t b = x.size(0), len = x.size(2), half = x.size(3) / 2;
  auto table = [&](const torch::Tensor& v) {  // [B or 1, 1, T, Dh/2] → [B, T, Dh/2]
    return v.expand({b, 1, len, half}).reshape({b, len, half}).contiguous();
  };
  // [B, H, T, Dh] is usually a transposed view of the projection's [B, T, H, Dh].
  return FusedRope::apply(x.transpose(1, 2).contiguous(), table(t.cos), table(t.sin),
                          pairing == RopePairing::kAdjacent)
      .transpose(1, 2);
}

}  // namespace coco::llm
