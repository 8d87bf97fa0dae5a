// Masked attention: the libtorch composition against a naive loop, and the fused CPU
// kernel against the composition (in float64) in value and in all three gradients.
#include "coco/ops/attention.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "coco/ops/dropout.h"

namespace coco {
namespace {

struct Case {
  int64_t b, h, g, l, s, d;
  bool dropout;
};

struct Inputs {
  torch::Tensor q, k, v, allow, keep;
};

Inputs make_inputs(const Case& c) {
  Inputs in;
  in.q = torch::randn({c.b, c.h, c.l, c.d});
  in.k = torch::randn({c.b, c.g, c.s, c.d});
  in.v = torch::randn({c.b, c.g, c.s, c.d});
  in.allow = torch::rand({c.b, 1, c.l, c.s}) > 0.3;
  in.allow[0][0][0].fill_(false);  // a query that may see no key
  if (c.dropout) in.keep = dropout_mask({c.b, c.h, c.l, c.s}, 0.4, torch::kFloat32);
  return in;
}

TEST(MaskedAttention, ReferenceMatchesNaiveLoop) {
  torch::manual_seed(1);
  const Case c{2, 4, 2, 5, 6, 3, true};
  const auto in = make_inputs(c);
  const double scale = 0.7;
  const auto out = masked_attention_reference(in.q, in.k, in.v, in.allow, scale, in.keep);
  for (int64_t b = 0; b < c.b; ++b)
    for (int64_t h = 0; h < c.h; ++h)
      for (int64_t i = 0; i < c.l; ++i) {
        const int64_t g = h / (c.h / c.g);
        std::vector<double> w(c.s, 0.0);
        double max = -INFINITY, sum = 0;
        for (int64_t j = 0; j < c.s; ++j) {
          if (!in.allow[b][0][i][j].item<bool>()) continue;
          w[j] = scale * (in.q[b][h][i] * in.k[b][g][j]).sum().item<double>();
          max = std::max(max, w[j]);
        }
        for (int64_t j = 0; j < c.s; ++j)
          if (in.allow[b][0][i][j].item<bool>()) sum += w[j] = std::exp(w[j] - max);
        for (int64_t e = 0; e < c.d; ++e) {
          double expect = 0;
          for (int64_t j = 0; j < c.s; ++j) {
            if (!in.allow[b][0][i][j].item<bool>()) continue;
            expect +=
                w[j] / sum * in.keep[b][h][i][j].item<double>() * in.v[b][g][j][e].item<double>();
          }
          EXPECT_NEAR(out[b][h][i][e].item<double>(), expect, 1e-5) << b << h << i << e;
        }
      }
  EXPECT_EQ(out[0][0][0].abs().sum().item<double>(), 0.0);  // no key → zero
}

TEST(MaskedAttention, FusedKernelMatchesReferenceInValueAndGradients) {
  // Shapes of SASRec (one head, width 64, causal), BERT4Rec (two heads), an LLM with
  // grouped-query heads of width 8, and an odd width that no vector unit divides.
  for (const Case& c : {Case{3, 1, 1, 7, 7, 64, true}, Case{2, 2, 2, 6, 6, 32, false},
                        Case{2, 8, 4, 9, 9, 8, false}, Case{2, 3, 1, 4, 5, 5, true}}) {
    SCOPED_TRACE(testing::Message() << "H=" << c.h << " G=" << c.g << " D=" << c.d);
    torch::manual_seed(2);
    const auto in = make_inputs(c);
    const double scale = 1.0 / std::sqrt(double(c.d));
    const auto grad = torch::randn({c.b, c.h, c.l, c.d});
    auto run = [&](bool fused, torch::Dtype dtype) {
      auto q = in.q.detach().to(dtype).requires_grad_(),
           k = in.k.detach().to(dtype).requires_grad_(),
           v = in.v.detach().to(dtype).requires_grad_();
      const auto keep = in.keep.defined() ? in.keep.to(dtype) : in.keep;
      const auto out = fused ? masked_attention(q, k, v, in.allow, scale, keep)
                             : masked_attention_reference(q, k, v, in.allow, scale, keep);
      (out * grad.to(dtype)).sum().backward();
      return std::vector<torch::Tensor>{out.to(torch::kFloat64), q.grad().to(torch::kFloat64),
                                        k.grad().to(torch::kFloat64), v.grad().to(torch::kFloat64)};
    };
    const auto fused = run(true, torch::kFloat32), expect = run(false, torch::kFloat64);
    const char* names[] = {"out", "dq", "dk", "dv"};
    for (int i = 0; i < 4; ++i) {
      EXPECT_TRUE(torch::allclose(fused[i], expect[i], 1e-4, 1e-5))
          << names[i] << " max error " << (fused[i] - expect[i]).abs().max().item<double>();
    }
    EXPECT_GT(fused[1].abs().sum().item<double>(), 0.0);
  }
}

TEST(MaskedAttention, RejectsMismatchedShapes) {
  const auto q = torch::randn({2, 3, 4, 8}), k = torch::randn({2, 2, 4, 8});
  const auto allow = torch::ones({2, 1, 4, 4}, torch::kBool);
  EXPECT_THROW(masked_attention(q, k, k, allow, 1.0), c10::Error);  // 2 does not divide 3
  EXPECT_THROW(masked_attention(q, q, q, allow.to(torch::kFloat32), 1.0), c10::Error);
}

}  // namespace
}  // namespace coco
