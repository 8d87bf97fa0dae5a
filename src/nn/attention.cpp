// Fused masked attention on CPU, and the libtorch composition it must equal.
#include "coco/nn/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace coco {

namespace {

float dot(const float* x, const float* y, int64_t n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// Forward keeps the softmax p (before dropout) for backward. With dS = p ⊙ (dP − Σ p dP)
// and dP = keep ⊙ (dO · vᵀ), backward needs only p: entries with p = 0 (masked keys,
// queries with no key) contribute nothing and are skipped in both passes.
struct FusedAttention : torch::autograd::Function<FusedAttention> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& allow, double scale,
                               const torch::Tensor& keep) {  // [B, H, L, S], or [0] for none
    const int64_t heads = q.size(1), l = q.size(2), d = q.size(3);
    const int64_t groups = k.size(1), s = k.size(2), rep = heads / groups;
    auto out = torch::zeros_like(q);
    auto probs = torch::zeros({q.size(0), heads, l, s}, q.options());
    const float *Q = q.data_ptr<float>(), *K = k.data_ptr<float>(), *V = v.data_ptr<float>();
    const float* keep_p = keep.numel() > 0 ? keep.data_ptr<float>() : nullptr;
    const bool* A = allow.data_ptr<bool>();
    float *O = out.data_ptr<float>(), *P = probs.data_ptr<float>();
    const auto sc = static_cast<float>(scale);
    at::parallel_for(0, q.size(0) * heads, 1, [&](int64_t begin, int64_t end) {
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / heads, kv = (b * groups + bh % heads / rep) * s * d;
        for (int64_t i = 0; i < l; ++i) {
          const int64_t row = bh * l + i;
          const bool* a = A + (b * l + i) * s;
          const float* qi = Q + row * d;
          float* p = P + row * s;
          float max = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < s; ++j) {
            if (!a[j]) continue;
            p[j] = sc * dot(qi, K + kv + j * d, d);
            max = std::max(max, p[j]);
          }
          if (max == -std::numeric_limits<float>::infinity()) continue;  // no key: p = 0, out = 0
          float sum = 0;
          for (int64_t j = 0; j < s; ++j) {
            if (a[j]) sum += p[j] = std::exp(p[j] - max);
          }
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j < s; ++j) {
            if (!a[j]) continue;
            p[j] *= inv;
            const float w = keep_p ? p[j] * keep_p[row * s + j] : p[j];
            if (w != 0) axpy(w, V + kv + j * d, O + row * d, d);
          }
        }
      }
    });
    ctx->save_for_backward({q, k, v, probs, keep});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3], &keep = saved[4];
    const auto dout = grad_out[0].contiguous();
    const int64_t heads = q.size(1), l = q.size(2), d = q.size(3);
    const int64_t groups = k.size(1), s = k.size(2), rep = heads / groups;
    auto dq = torch::zeros_like(q), dk = torch::zeros_like(k), dv = torch::zeros_like(v);
    const float *Q = q.data_ptr<float>(), *K = k.data_ptr<float>(), *V = v.data_ptr<float>();
    const float *P = probs.data_ptr<float>(), *dO = dout.data_ptr<float>();
    const float* keep_p = keep.numel() > 0 ? keep.data_ptr<float>() : nullptr;
    float *dQ = dq.data_ptr<float>(), *dK = dk.data_ptr<float>(), *dV = dv.data_ptr<float>();
    const auto sc = static_cast<float>(ctx->saved_data["scale"].toDouble());
    // One task per (user, key/value head): the query heads of a group write its dK and dV.
    at::parallel_for(0, q.size(0) * groups, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> dp(s);
      for (int64_t bg = begin; bg < end; ++bg) {
        const int64_t kv = bg * s * d;
        for (int64_t bh = bg / groups * heads + bg % groups * rep, r = 0; r < rep; ++r, ++bh) {
          for (int64_t i = 0; i < l; ++i) {
            const int64_t row = bh * l + i;
            const float* p = P + row * s;
            const float* doi = dO + row * d;
            float rowsum = 0;
            for (int64_t j = 0; j < s; ++j) {
              if (p[j] == 0) continue;
              const float kept = keep_p ? keep_p[row * s + j] : 1.0f;
              axpy(p[j] * kept, doi, dV + kv + j * d, d);
              dp[j] = kept * dot(doi, V + kv + j * d, d);
              rowsum += p[j] * dp[j];
            }
            for (int64_t j = 0; j < s; ++j) {
              if (p[j] == 0) continue;
              const float ds = sc * p[j] * (dp[j] - rowsum);
              axpy(ds, K + kv + j * d, dQ + row * d, d);
              axpy(ds, Q + row * d, dK + kv + j * d, d);
            }
          }
        }
      }
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
  const auto scores =
      (torch::matmul(q.reshape({b, g, rep * l, d}), k.transpose(-2, -1)) * scale)
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
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && k.sizes() == v.sizes() &&
                  k.size(0) == q.size(0) && k.size(3) == q.size(3) && k.size(1) > 0 &&
                  q.size(1) % k.size(1) == 0,
              "masked_attention: q [B, H, L, D] and k, v [B, G, S, D] with G dividing H, got ",
              q.sizes(), ", ", k.sizes(), ", ", v.sizes());
  TORCH_CHECK(allow.scalar_type() == torch::kBool &&
                  allow.sizes() == torch::IntArrayRef({q.size(0), 1, q.size(2), k.size(2)}),
              "masked_attention: allow must be bool [B, 1, L, S], got ", allow.sizes());
  TORCH_CHECK(!keep.defined() || keep.sizes() == torch::IntArrayRef({q.size(0), q.size(1),
                                                                      q.size(2), k.size(2)}),
              "masked_attention: keep must be [B, H, L, S], got ", keep.sizes());
  const bool fused = q.device().is_cpu() && q.scalar_type() == torch::kFloat32 &&
                     k.scalar_type() == torch::kFloat32 && v.scalar_type() == torch::kFloat32;
  if (!fused) return masked_attention_reference(q, k, v, allow, scale, keep);
  return FusedAttention::apply(q.contiguous(), k.contiguous(), v.contiguous(), allow.contiguous(),
                               scale, keep.defined() ? keep.to(torch::kFloat32).contiguous() : torch::empty({0}));
}

}  // namespace coco
