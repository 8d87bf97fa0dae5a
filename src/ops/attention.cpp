// Fused masked attention on CPU, and the libtorch composition it must equal.
#include "coco/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "coco/ops/fast_exp.h"

namespace coco {

namespace {

constexpr int64_t kMaxWidth = 256;  // head widths the fused kernel takes

// Raw views of one call's tensors, all contiguous float32.
struct Views {
  int64_t heads, groups, l, s, d;
  float scale;
  const float *q, *k, *v, *keep;  // keep may be null
  const bool* allow;
};

// The allowed keys of one query lie in [first, last): the loops skip the rest (half of
// them under a causal mask).
std::pair<int64_t, int64_t> key_range(const bool* allow, int64_t s) {
  int64_t first = 0, last = s;
  while (first < last && !allow[first]) ++first;
  while (last > first && !allow[last - 1]) --last;
  return {first, last};
}

// x [S, D] → xt [D, S], so that q · k_j over all j runs as D vectorised sweeps along j.
void transpose(const float* x, int64_t s, int64_t d, float* xt) {
  for (int64_t j = 0; j < s; ++j)
    for (int64_t e = 0; e < d; ++e) xt[e * s + j] = x[j * d + e];
}

// y[j] = Σ_e a[e] · xt[e, j] for j in [first, last).
void row_times(const float* a, const float* xt, int64_t s, int64_t d, int64_t first, int64_t last,
               float* y) {
  std::fill(y + first, y + last, 0.0f);
  for (int64_t e = 0; e < d; ++e) {
    const float ae = a[e];
    const float* x = xt + e * s;
#pragma omp simd
    for (int64_t j = first; j < last; ++j) y[j] += ae * x[j];
  }
}

// y[j] = e^(x[j] − max) for j in [first, last), with x[j] ≤ max.
void exp_shifted(float* x, int64_t first, int64_t last, float max) {
#pragma omp simd
  for (int64_t j = first; j < last; ++j) x[j] = exp_nonpositive(x[j] - max);
}

// The width is a template parameter for the common head widths (0: any width up to
// kMaxWidth), so that per-key updates of a D-vector unroll into registers.
template <int64_t kD>
void forward_group(const Views& a, int64_t bg, float* out, float* probs, float* kt) {
  const int64_t d = kD ? kD : a.d, s = a.s, l = a.l, rep = a.heads / a.groups;
  const int64_t b = bg / a.groups;
  const float *k = a.k + bg * s * d, *v = a.v + bg * s * d;
  transpose(k, s, d, kt);
  for (int64_t bh = b * a.heads + bg % a.groups * rep, r = 0; r < rep; ++r, ++bh) {
    for (int64_t i = 0; i < l; ++i) {
      const int64_t row = bh * l + i;
      const bool* allow = a.allow + (b * l + i) * s;
      // Named locals, not a structured binding: OpenMP clauses below may not name one (clang).
      int64_t first, last;
      std::tie(first, last) = key_range(allow, s);
      float* p = probs + row * s;
      std::fill(p, p + first, 0.0f);
      std::fill(p + last, p + s, 0.0f);
      if (first == last) {  // no key: p = 0, out = 0
        std::fill(out + row * d, out + row * d + d, 0.0f);
        continue;
      }
      float qs[kMaxWidth];
      for (int64_t e = 0; e < d; ++e) qs[e] = a.scale * a.q[row * d + e];
      row_times(qs, kt, s, d, first, last, p);
      float max = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : max)
      for (int64_t j = first; j < last; ++j)
        max = std::max(max, allow[j] ? p[j] : -std::numeric_limits<float>::infinity());
      exp_shifted(p, first, last, max);
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = first; j < last; ++j) sum += p[j] = allow[j] ? p[j] : 0.0f;
      const float inv = 1.0f / sum;
      const float* keep = a.keep ? a.keep + row * s : nullptr;
      float acc[kMaxWidth] = {};
      for (int64_t j = first; j < last; ++j) {
        p[j] *= inv;
        const float w = keep ? p[j] * keep[j] : p[j];
        if (w == 0) continue;
        const float* vj = v + j * d;
#pragma omp simd
        for (int64_t e = 0; e < d; ++e) acc[e] += w * vj[e];
      }
      std::copy(acc, acc + d, out + row * d);
    }
  }
}

// dS = p ⊙ (dP − Σ_j p dP) with dP = keep ⊙ (dO · vᵀ); keys with p = 0 (masked, or a
// query with no key) contribute nothing and are skipped.
template <int64_t kD>
void backward_group(const Views& a, int64_t bg, const float* probs, const float* dout, float* dq,
                    float* dk, float* dv, float* vt, float* dp) {
  const int64_t d = kD ? kD : a.d, s = a.s, l = a.l, rep = a.heads / a.groups;
  const int64_t b = bg / a.groups, kv = bg * s * d;
  transpose(a.v + kv, s, d, vt);
  for (int64_t bh = b * a.heads + bg % a.groups * rep, r = 0; r < rep; ++r, ++bh) {
    for (int64_t i = 0; i < l; ++i) {
      const int64_t row = bh * l + i;
      const auto [first, last] = key_range(a.allow + (b * l + i) * s, s);
      if (first == last) {
        std::fill(dq + row * d, dq + row * d + d, 0.0f);
        continue;
      }
      const float *p = probs + row * s, *g = dout + row * d, *qi = a.q + row * d;
      const float* keep = a.keep ? a.keep + row * s : nullptr;
      row_times(g, vt, s, d, first, last, dp);
      float rowsum = 0;
      for (int64_t j = first; j < last; ++j) {
        if (p[j] == 0) continue;
        const float kept = keep ? keep[j] : 1.0f, w = p[j] * kept;
        float* dvj = dv + kv + j * d;
#pragma omp simd
        for (int64_t e = 0; e < d; ++e) dvj[e] += w * g[e];
        dp[j] *= kept;
        rowsum += p[j] * dp[j];
      }
      float acc[kMaxWidth] = {};
      for (int64_t j = first; j < last; ++j) {
        if (p[j] == 0) continue;
        const float ds = a.scale * p[j] * (dp[j] - rowsum);
        const float* kj = a.k + kv + j * d;
        float* dkj = dk + kv + j * d;
#pragma omp simd
        for (int64_t e = 0; e < d; ++e) {
          acc[e] += ds * kj[e];
          dkj[e] += ds * qi[e];
        }
      }
      std::copy(acc, acc + d, dq + row * d);
    }
  }
}

// Calls body.template operator()<kD>() with the width as a constant where it is common.
template <typename Body>
void with_width(int64_t d, Body&& body) {
  switch (d) {
    case 8:
      return body(std::integral_constant<int64_t, 8>());
    case 16:
      return body(std::integral_constant<int64_t, 16>());
    case 32:
      return body(std::integral_constant<int64_t, 32>());
    case 64:
      return body(std::integral_constant<int64_t, 64>());
    default:
      return body(std::integral_constant<int64_t, 0>());
  }
}

Views views(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
            const torch::Tensor& allow, double scale, const torch::Tensor& keep) {
  return {q.size(1),
          k.size(1),
          q.size(2),
          k.size(2),
          q.size(3),
          static_cast<float>(scale),
          q.data_ptr<float>(),
          k.data_ptr<float>(),
          v.data_ptr<float>(),
          keep.numel() > 0 ? keep.data_ptr<float>() : nullptr,
          allow.data_ptr<bool>()};
}

// One task per (user, key/value head); the query heads of a group run in it, so backward
// tasks own their dK and dV rows.
struct FusedAttention : torch::autograd::Function<FusedAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& allow, double scale,
                               const torch::Tensor& keep) {  // [B, H, L, S], or [0] for none
    const Views a = views(q, k, v, allow, scale, keep);
    auto out = torch::empty_like(q);
    auto probs = torch::empty({q.size(0), a.heads, a.l, a.s}, q.options());
    float *o = out.data_ptr<float>(), *p = probs.data_ptr<float>();
    at::parallel_for(0, q.size(0) * a.groups, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> kt(static_cast<size_t>(a.s * a.d));
      with_width(a.d, [&](auto width) {
        for (int64_t bg = begin; bg < end; ++bg) forward_group<width()>(a, bg, o, p, kt.data());
      });
    });
    ctx->save_for_backward({q, k, v, allow, probs, keep});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[4];
    const Views a = views(q, k, v, saved[3], ctx->saved_data["scale"].toDouble(), saved[5]);
    const auto dout = grad_out[0].contiguous();
    auto dq = torch::empty_like(q), dk = torch::zeros_like(k), dv = torch::zeros_like(v);
    const float *p = probs.data_ptr<float>(), *g = dout.data_ptr<float>();
    float *dq_p = dq.data_ptr<float>(), *dk_p = dk.data_ptr<float>(), *dv_p = dv.data_ptr<float>();
    at::parallel_for(0, q.size(0) * a.groups, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> vt(static_cast<size_t>(a.s * a.d)), dp(static_cast<size_t>(a.s));
      with_width(a.d, [&](auto width) {
        for (int64_t bg = begin; bg < end; ++bg)
          backward_group<width()>(a, bg, p, g, dq_p, dk_p, dv_p, vt.data(), dp.data());
      });
    });
    return {dq, dk, dv, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor masked_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v, const torch::Tensor& allow,
                                         double scale, const torch::Tensor& keep) {
  const int64_t b = q.size(0), h = q.size(1), l = q.size(2), d = q.size(3);
  const int64_t g = k.size(1), s = k.size(2), rep = h / g;
  // The query heads of a group are stacked along L, so K and V are not copied per head.
  const auto scores = (torch::matmul(q.reshape({b, g, rep * l, d}), k.transpose(-2, -1)) * scale)
                          .to(torch::kFloat32)
                          .view({b, g, rep, l, s});
  const auto a = allow.unsqueeze(1);  // [B, 1, 1, L, S]
  // A finite fill keeps key-less rows free of NaN; multiplying by `a` then zeroes them.
  auto probs = (torch::softmax(scores.masked_fill(a.logical_not(), -1e30), -1) * a)
                   .to(q.scalar_type())
                   .view({b, h, l, s});
  if (keep.defined()) probs = probs * keep;
  return torch::matmul(probs.view({b, g, rep * l, s}), v).view({b, h, l, d});
}

torch::Tensor masked_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& allow, double scale,
                               const torch::Tensor& keep) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && k.sizes() == v.sizes() && k.size(0) == q.size(0) &&
                  k.size(3) == q.size(3) && k.size(1) > 0 && q.size(1) % k.size(1) == 0,
              "masked_attention: q [B, H, L, D] and k, v [B, G, S, D] with G dividing H, got ",
              q.sizes(), ", ", k.sizes(), ", ", v.sizes());
  TORCH_CHECK(allow.scalar_type() == torch::kBool &&
                  allow.sizes() == torch::IntArrayRef({q.size(0), 1, q.size(2), k.size(2)}),
              "masked_attention: allow must be bool [B, 1, L, S], got ", allow.sizes());
  TORCH_CHECK(!keep.defined() ||
                  keep.sizes() == torch::IntArrayRef({q.size(0), q.size(1), q.size(2), k.size(2)}),
              "masked_attention: keep must be [B, H, L, S], got ", keep.sizes());
  const bool fused = q.device().is_cpu() && q.size(3) <= kMaxWidth &&
                     q.scalar_type() == torch::kFloat32 && k.scalar_type() == torch::kFloat32 &&
                     v.scalar_type() == torch::kFloat32;
  if (!fused) return masked_attention_reference(q, k, v, allow, scale, keep);
  return FusedAttention::apply(
      q.contiguous(), k.contiguous(), v.contiguous(), allow.contiguous(), scale,
      keep.defined() ? keep.to(torch::kFloat32).contiguous() : torch::empty({0}));
}

}  // namespace coco
