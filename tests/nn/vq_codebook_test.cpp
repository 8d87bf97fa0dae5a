// VQ prompt codebook: shapes, nearest-code selection, losses against a naive computation,
// straight-through gradients, usage statistics, dead-code restart, config errors.
#include "coco/nn/vq_codebook.h"

#include <gtest/gtest.h>

#include <torch/torch.h>
#include "test_util.h"

#include <functional>
#include <limits>

#include "coco/common/error.h"

namespace coco {
namespace {

constexpr int64_t kB = 5, kD = 8, kLlm = 6, kK = 7, kDq = 4, kP = 3;

VQCodebook make_vq(VQSelection selection = VQSelection::kHard) {
  return VQCodebook(
      VQCodebookOptions(kD, kLlm).num_codes(kK).code_dim(kDq).prompt_len(kP).selection(selection));
}

// K = d = d_q, W_q = identity, keys = 10·I: input 10·e_i selects code i.
VQCodebook make_identity_vq(int64_t k, int64_t restart_after = 0) {
  VQCodebook vq(
      VQCodebookOptions(k, 2).num_codes(k).code_dim(k).prompt_len(1).restart_after(restart_after));
  torch::NoGradGuard no_grad;
  vq->query_proj()->weight.copy_(torch::eye(k));
  vq->query_proj()->bias.zero_();
  vq->keys().copy_(torch::eye(k) * 10);
  return vq;
}

torch::Tensor one_hot_rows(const std::vector<int64_t>& codes, int64_t k) {
  return torch::one_hot(torch::tensor(codes, torch::kInt64), k).to(torch::kFloat32) * 10;
}

TEST(VQCodebook, OutputShapesInEveryMode) {
  torch::manual_seed(0);
  for (auto mode : {VQSelection::kHard, VQSelection::kSoft, VQSelection::kRandom}) {
    auto vq = make_vq(mode);
    const auto out = vq->forward(torch::randn({kB, kD}));
    EXPECT_EQ(out.prompts.sizes(), (std::vector<int64_t>{kB, kP, kLlm}));
    EXPECT_EQ(out.codes.sizes(), (std::vector<int64_t>{kB}));
    EXPECT_EQ(out.codes.scalar_type(), torch::kInt64);
    EXPECT_EQ(out.loss_vq.dim(), 0);
    EXPECT_EQ(out.query.sizes(), (std::vector<int64_t>{kB, kDq}));
    EXPECT_EQ(out.quantized.sizes(), (std::vector<int64_t>{kB, kDq}));
    EXPECT_EQ(out.probs.sizes(), (std::vector<int64_t>{kB, kK}));
    EXPECT_TRUE((out.codes >= 0).all().item<bool>() && (out.codes < kK).all().item<bool>());
  }
}

TEST(VQCodebook, SelectsTheNearestCode) {
  torch::manual_seed(1);
  auto vq = make_vq();
  const auto out = vq->forward(torch::randn({32, kD}));
  const auto q = out.query.detach();
  const auto keys = vq->keys().detach();
  for (int64_t i = 0; i < q.size(0); ++i) {
    int64_t best = -1;
    double best_dist = std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < kK; ++k) {
      double dist = 0;
      for (int64_t j = 0; j < kDq; ++j) {
        const double diff = q[i][j].item<double>() - keys[k][j].item<double>();
        dist += diff * diff;
      }
      if (dist < best_dist) best_dist = dist, best = k;
    }
    EXPECT_EQ(out.codes[i].item<int64_t>(), best) << "row " << i;
    EXPECT_TRUE(torch::equal(out.prompts[i], vq->prompts()[best])) << "row " << i;
  }
}

TEST(VQCodebook, LossMatchesNaiveCodebookPlusCommitment) {
  torch::manual_seed(2);
  auto vq = make_vq();
  const auto out = vq->forward(torch::randn({kB, kD}));
  const auto q = out.query.detach();
  const auto keys = vq->keys().detach();
  double codebook = 0, commitment = 0;
  for (int64_t i = 0; i < kB; ++i) {
    const int64_t k = out.codes[i].item<int64_t>();
    for (int64_t j = 0; j < kDq; ++j) {
      const double diff = q[i][j].item<double>() - keys[k][j].item<double>();
      codebook += diff * diff;
      commitment += diff * diff;
    }
  }
  const double expected = codebook / kB + 0.25 * commitment / kB;
  EXPECT_NEAR(out.loss_vq.item<double>(), expected, 1e-5);

  // The codebook term moves only the keys; the commitment term (β) only the query.
  out.loss_vq.backward();
  const auto dq_expected = 0.25 * 2 * (q - keys.index_select(0, out.codes)) / kB;  // [B, d_q]
  const auto dkeys_expected = torch::zeros_like(keys).index_add_(
      0, out.codes, 2 * (keys.index_select(0, out.codes) - q) / kB);
  EXPECT_TRUE(torch::allclose(vq->keys().grad(), dkeys_expected, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(vq->query_proj()->bias.grad(), dq_expected.sum(0), 1e-5, 1e-6));
}

TEST(VQCodebook, StraightThroughGradientReachesQueryProjection) {
  torch::manual_seed(3);
  auto vq = make_vq();
  const auto h = torch::randn({kB, kD});
  const auto out = vq->forward(h);
  // Forward value is the selected key; backward treats it as the identity on q.
  EXPECT_TRUE(torch::allclose(out.quantized, vq->keys().index_select(0, out.codes), 1e-5, 1e-6));
  const auto target = torch::randn({kB, kDq});
  (out.quantized - target).pow(2).sum().backward();
  const auto dq = 2 * (out.quantized.detach() - target);  // [B, d_q]
  ASSERT_TRUE(vq->query_proj()->weight.grad().defined());
  EXPECT_TRUE(torch::allclose(vq->query_proj()->weight.grad(), torch::mm(dq.t(), h), 1e-4, 1e-5));
  EXPECT_GT(vq->query_proj()->weight.grad().abs().sum().item<double>(), 0);
  // The downstream loss does not move the keys (only L_vq does).
  EXPECT_TRUE(!vq->keys().grad().defined() || vq->keys().grad().abs().sum().item<double>() == 0);
}

TEST(VQCodebook, SelectedPromptsReceiveDownstreamGradient) {
  auto vq = make_identity_vq(4);
  const auto out = vq->forward(one_hot_rows({1, 3, 1}, 4));
  out.prompts.sum().backward();
  const auto g = vq->prompts().grad().flatten(1).sum(1);                 // [K]
  EXPECT_TRUE(torch::allclose(g, torch::tensor({0.f, 4.f, 0.f, 2.f})));  // P·D = 2 per use
}

TEST(VQCodebook, SoftProbabilitiesSumToOneAndMixThePrompts) {
  torch::manual_seed(4);
  auto vq = make_vq(VQSelection::kSoft);
  const auto out = vq->forward(torch::randn({kB, kD}));
  EXPECT_TRUE(torch::allclose(out.probs.sum(1), torch::ones({kB}), 1e-5, 1e-6));
  EXPECT_TRUE((out.probs > 0).all().item<bool>());
  const auto mix = torch::einsum("bk,kpd->bpd", {out.probs, vq->prompts()});
  EXPECT_TRUE(torch::allclose(out.prompts, mix, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(out.codes, out.probs.argmax(1)));
  // Gradient reaches the query projection through the mixture weights.
  out.prompts.pow(2).sum().backward();
  EXPECT_GT(vq->query_proj()->weight.grad().abs().sum().item<double>(), 0);
}

TEST(VQCodebook, PerplexityIsKForUniformUsageAndOneForASingleCode) {
  auto vq = make_identity_vq(4);
  EXPECT_EQ(vq->perplexity(), 0);
  vq->forward(one_hot_rows({0, 1, 2, 3}, 4));
  vq->forward(one_hot_rows({3, 2, 1, 0}, 4));
  EXPECT_NEAR(vq->perplexity(), 4.0, 1e-9);
  EXPECT_TRUE(torch::allclose(vq->usage_histogram(), torch::full({4}, 0.25, torch::kFloat64)));
  EXPECT_TRUE(torch::equal(vq->usage_counts(), torch::full({4}, 2.0, torch::kFloat64)));

  vq->reset_usage();
  EXPECT_EQ(vq->usage_counts().sum().item<double>(), 0);
  vq->forward(one_hot_rows({2, 2, 2}, 4));
  EXPECT_NEAR(vq->perplexity(), 1.0, 1e-9);

  vq->eval();  // evaluation does not count
  vq->forward(one_hot_rows({0, 1}, 4));
  EXPECT_EQ(vq->usage_counts().sum().item<double>(), 3);
}

TEST(VQCodebook, DeadCodeRestartReplacesExactlyTheUnusedCodes) {
  torch::manual_seed(5);
  auto vq = make_identity_vq(4, /*restart_after=*/2);
  const auto keys_before = vq->keys().detach().clone();
  const auto h = one_hot_rows({0, 1}, 4) + 0.5;  // queries near codes 0 and 1
  EXPECT_EQ(vq->forward(h).num_restarted, 0);
  EXPECT_EQ(vq->forward(h).num_restarted, 0);  // codes 2, 3 now idle for 2 calls
  EXPECT_TRUE(torch::equal(vq->keys(), keys_before));

  const auto out = vq->forward(h);
  EXPECT_EQ(out.num_restarted, 2);
  const auto keys = vq->keys().detach();
  EXPECT_TRUE(torch::equal(keys.narrow(0, 0, 2), keys_before.narrow(0, 0, 2)));
  for (int64_t k : {2, 3}) {
    EXPECT_FALSE(torch::equal(keys[k], keys_before[k])) << "code " << k;
    const bool is_a_query = torch::equal(keys[k], h[0]) || torch::equal(keys[k], h[1]);
    EXPECT_TRUE(is_a_query) << "code " << k << " was not set to a query of the batch";
  }
  // Restarted codes are usable at once: each now sits exactly on a query.
  EXPECT_EQ(std::get<0>(torch::_unique(out.codes)).numel(), 2);
  EXPECT_TRUE((out.codes >= 2).all().item<bool>());
}

// The epoch's usage reset must not reset how long a code has been idle: epochs shorter
// than restart_after would otherwise never restart anything.
TEST(VQCodebook, IdleCountersSurviveAUsageReset) {
  auto vq = make_identity_vq(4, /*restart_after=*/2);
  const auto h = one_hot_rows({0, 1}, 4) + 0.5;
  EXPECT_EQ(vq->forward(h).num_restarted, 0);
  vq->reset_usage();
  EXPECT_EQ(vq->forward(h).num_restarted, 0);
  vq->reset_usage();
  EXPECT_EQ(vq->forward(h).num_restarted, 2);
}

TEST(VQCodebook, EvalModeAndRestartAfterZeroNeverRestart) {
  auto vq = make_identity_vq(4, /*restart_after=*/1);
  vq->eval();
  const auto h = one_hot_rows({0}, 4);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(vq->forward(h).num_restarted, 0);
  auto never = make_identity_vq(4, /*restart_after=*/0);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(never->forward(h).num_restarted, 0);
}

TEST(VQCodebook, RandomSelectionCoversTheCodesAndHasNoVQLoss) {
  torch::manual_seed(6);
  auto vq = make_vq(VQSelection::kRandom);
  const auto out = vq->forward(torch::randn({400, kD}));
  EXPECT_EQ(out.loss_vq.item<double>(), 0);
  EXPECT_EQ(torch::bincount(out.codes, {}, kK).gt(0).sum().item<int64_t>(), kK);
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_TRUE(torch::equal(out.prompts[i], vq->prompts()[out.codes[i].item<int64_t>()]));
  }
}

TEST(VQCodebook, RandomSelectionIsReproducibleInEvalModeOnly) {
  torch::manual_seed(8);
  auto vq = make_vq(VQSelection::kRandom);
  const auto h = torch::randn({64, kD});
  const auto train_a = vq->forward(h).codes, train_b = vq->forward(h).codes;
  EXPECT_FALSE(torch::equal(train_a, train_b));  // fresh draws while training
  vq->eval();
  const auto eval_a = vq->forward(h).codes;
  torch::manual_seed(9);  // the global RNG does not matter
  EXPECT_TRUE(torch::equal(vq->forward(h).codes, eval_a));
  EXPECT_GT(torch::bincount(eval_a, {}, kK).gt(0).sum().item<int64_t>(), 1);
}

TEST(VQCodebook, InitPromptsCopiesEmbeddingsPlusSmallNoise) {
  torch::manual_seed(7);
  auto vq = make_vq();
  const auto emb = torch::randn({kK, kP, kLlm});
  vq->init_prompts(emb, 0.0);
  EXPECT_TRUE(torch::equal(vq->prompts(), emb));
  vq->init_prompts(emb, 0.01);
  const auto diff = (vq->prompts() - emb).abs();
  EXPECT_GT(diff.max().item<double>(), 0);
  EXPECT_LT(diff.max().item<double>(), 0.1);
  EXPECT_TRUE(vq->prompts().requires_grad());
  EXPECT_THROW(vq->init_prompts(torch::randn({kK + 1, kP, kLlm})), c10::Error);
}

TEST(VQCodebook, CloneCopiesParametersAndUsageBuffers) {
  auto vq = make_identity_vq(4);
  vq->forward(one_hot_rows({1, 1, 2}, 4));
  const auto copy = std::dynamic_pointer_cast<VQCodebookImpl>(vq->clone());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(torch::equal(copy->keys(), vq->keys()));
  EXPECT_TRUE(torch::equal(copy->usage_counts(), vq->usage_counts()));
  EXPECT_EQ(copy->named_buffers().size(), 2u);
  copy->reset_usage();  // independent storage
  EXPECT_EQ(vq->usage_counts().sum().item<double>(), 3);
}

TEST(VQCodebook, ConfigReadsEveryKeyAndNamesBadValues) {
  Json j = Json::parse(R"({"vq": {"num_codes": 16, "selection": "soft", "temperature": 0.5}})");
  ConfigNode root(j, "c.json");
  auto node = root.child("vq");
  const auto o = VQCodebookOptions::from_config(node, 64, 32);
  EXPECT_EQ(o.num_codes(), 16);
  EXPECT_EQ(o.selection(), VQSelection::kSoft);
  EXPECT_EQ(o.hidden(), 64);
  EXPECT_EQ(o.llm_width(), 32);
  EXPECT_EQ(j["vq"]["commitment_beta"], 0.25);  // defaults written back

  auto parse = [](const std::string& text) {
    return test::error_text<ConfigError>([&] {
      Json c = Json::parse(text);
      ConfigNode r(c, "c.json");
      auto n = r.child("vq");
      VQCodebookOptions::from_config(n, 64, 32);
    });
  };
  EXPECT_EQ(parse(R"({"vq": {"num_codes": 0}})"),
            "c.json: config error at /vq/num_codes: must be >= 1, got 0");
  EXPECT_EQ(parse(R"({"vq": {"selection": "nearest"}})"),
            "c.json: config error at /vq/selection: expected one of hard, soft, random, got "
            "\"nearest\"");
  EXPECT_EQ(parse(R"({"vq": {"temperature": 0}})"),
            "c.json: config error at /vq/temperature: must be > 0, got 0");
  EXPECT_NE(parse(R"({"vq": {"num_code": 8}})").find("/vq/num_code: unknown key"),
            std::string::npos);
}

}  // namespace
}  // namespace coco
