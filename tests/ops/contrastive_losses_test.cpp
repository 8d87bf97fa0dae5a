// CoCo auxiliary losses: InfoNCE variants against a naive per-row computation, and the
// orthogonality penalty on orthonormal, partly and fully collapsed codebooks.
#include "coco/ops/contrastive_losses.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace coco {
namespace {

double cosine(const torch::Tensor& x, const torch::Tensor& y) {
  double xy = 0, xx = 0, yy = 0;
  for (int64_t j = 0; j < x.size(0); ++j) {
    const double a = x[j].item<double>(), b = y[j].item<double>();
    xy += a * b, xx += a * a, yy += b * b;
  }
  return xy / std::sqrt(xx * yy);
}

// −log softmax_i over the row's candidates j (skipping those with skip(i, j)).
template <typename Skip>
double naive_nce(const torch::Tensor& a, const torch::Tensor& b, double tau, Skip skip) {
  double total = 0;
  const int64_t n = a.size(0);
  for (int64_t i = 0; i < n; ++i) {
    double denom = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (j != i && skip(i, j)) continue;
      denom += std::exp(cosine(a[i], b[j]) / tau);
    }
    total += -(cosine(a[i], b[i]) / tau - std::log(denom));
  }
  return total / n;
}

TEST(CocoLosses, InfoNceMatchesNaivePerRowComputation) {
  torch::manual_seed(0);
  const auto a = torch::randn({6, 5}, torch::kFloat64), b = torch::randn({6, 5}, torch::kFloat64);
  for (double tau : {0.1, 1.0}) {
    const double expected = naive_nce(a, b, tau, [](int64_t, int64_t) { return false; });
    EXPECT_NEAR(info_nce(a, b, tau).item<double>(), expected, 1e-9) << "tau " << tau;
  }
  // Scale-invariant (cosine), and lower when each a_i points at its own b_i.
  EXPECT_NEAR(info_nce(a * 3, b, 0.1).item<double>(), info_nce(a, b, 0.1).item<double>(), 1e-9);
  EXPECT_LT(info_nce(b + 0.01 * a, b, 0.1).item<double>(), info_nce(a, b, 0.1).item<double>());
}

TEST(CocoLosses, InfoNceGradientFollowsOnlyTheUndetachedSide) {
  torch::manual_seed(1);
  const auto a = torch::randn({4, 3}, torch::requires_grad());
  const auto b = torch::randn({4, 3}, torch::requires_grad());
  info_nce(a, b.detach(), 0.1).backward();
  EXPECT_GT(a.grad().abs().sum().item<double>(), 0);
  EXPECT_FALSE(b.grad().defined());
}

TEST(CocoLosses, NceItemLossDropsDuplicateTargetsFromTheNegatives) {
  torch::manual_seed(2);
  const auto h = torch::randn({5, 4}, torch::kFloat64), e = torch::randn({5, 4}, torch::kFloat64);
  EXPECT_NEAR(nce_item_loss(h, e, 0.1).item<double>(), info_nce(h, e, 0.1).item<double>(), 1e-12);
  const std::vector<int64_t> ids{7, 3, 7, 9, 3};
  const double expected =
      naive_nce(h, e, 0.1, [&](int64_t i, int64_t j) { return ids[i] == ids[j]; });
  EXPECT_NEAR(nce_item_loss(h, e, 0.1, torch::tensor(ids)).item<double>(), expected, 1e-9);
}

TEST(CocoLosses, OrthogonalityIsZeroForOrthonormalCodesAndGrowsAsTheyCollapse) {
  torch::manual_seed(3);
  const int64_t k = 4, p = 2, d = 4;
  // K orthonormal vectors of length P·D, with arbitrary positive scales (normalised away).
  const auto q = std::get<0>(torch::linalg_qr(torch::randn({p * d, k}, torch::kFloat64)));
  const auto ortho = (q.t() * torch::tensor({1.0, 2.0, 0.5, 3.0}, torch::kFloat64).unsqueeze(1))
                         .reshape({k, p, d});
  EXPECT_NEAR(orthogonality_loss(ortho).item<double>(), 0, 1e-12);

  auto half = ortho.clone();
  half[1] = ortho[0];  // two codes equal
  const double half_loss = orthogonality_loss(half).item<double>();
  EXPECT_NEAR(half_loss, 2.0 / (k * k), 1e-12);  // entries (0,1) and (1,0) are 1

  const auto collapsed = ortho[0].unsqueeze(0).expand({k, p, d}) * 5;
  EXPECT_NEAR(orthogonality_loss(collapsed).item<double>(), double(k * k - k) / (k * k), 1e-12);
  EXPECT_GT(orthogonality_loss(collapsed).item<double>(), half_loss);
}

TEST(CocoLosses, OrthogonalityGradientPushesCodesApart) {
  torch::manual_seed(4);
  auto prompts = (torch::randn({1, 2, 3}).expand({3, 2, 3}) + 0.1 * torch::randn({3, 2, 3}))
                     .detach()
                     .requires_grad_(true);
  const double before = orthogonality_loss(prompts).item<double>();
  orthogonality_loss(prompts).backward();
  const auto after = orthogonality_loss(prompts.detach() - 0.1 * prompts.grad()).item<double>();
  EXPECT_LT(after, before);
}

}  // namespace
}  // namespace coco
