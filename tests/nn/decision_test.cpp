// Decision matrix: the cosine, utility, both, always and never rules on hand-made inputs,
// per-code activation, no gradient, config errors.
#include "coco/nn/decision.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "coco/common/error.h"

namespace coco {
namespace {

// h_rs = e_0 for every row; h_aligned at cosines 1, 0, ~0.707, −1, 0.44, 0.46 with it.
struct Inputs {
  torch::Tensor h_aligned, h_rs, logp_with, logp_without;
};

Inputs inputs() {
  const double s44 = std::sqrt(1 - 0.44 * 0.44), s46 = std::sqrt(1 - 0.46 * 0.46);
  Inputs in;
  in.h_aligned =
      torch::tensor({1.0, 0.0, 0.0, 2.0, 3.0, 3.0, -1.0, 0.0, 0.44, s44, 0.46 * 2, s46 * 2},
                    torch::kFloat32)
          .view({6, 2});
  in.h_rs = torch::tensor({1.0f, 0.0f}).expand({6, 2}).contiguous();
  in.logp_with = torch::tensor({-1.0f, -2.0f, -3.0f, -4.0f, -5.0f, -6.0f});
  // δ = with − without: −0.5, +1, −1, +2, −0.1, 0
  in.logp_without = torch::tensor({-0.5f, -3.0f, -2.0f, -6.0f, -4.9f, -6.0f});
  return in;
}

DecisionOutput run(DecisionRule rule, double theta = 0.45) {
  DecisionMatrix dm(DecisionOptions().rule(rule).theta(theta));
  const auto in = inputs();
  return dm->forward(in.h_aligned, in.h_rs, in.logp_with, in.logp_without);
}

TEST(Decision, SignalsAreCosineAndLogProbabilityGain) {
  const auto out = run(DecisionRule::kCosine);
  const double r = std::sqrt(0.5);
  EXPECT_TRUE(torch::allclose(
      out.a, torch::tensor({1.0, 0.0, r, -1.0, 0.44, 0.46}).to(torch::kFloat32), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(out.delta, torch::tensor({-0.5f, 1.0f, -1.0f, 2.0f, -0.1f, 0.0f}),
                              1e-5, 1e-6));
  EXPECT_EQ(out.mask.scalar_type(), torch::kFloat32);
}

TEST(Decision, CosineRuleMasksAlignmentBelowTheta) {
  EXPECT_TRUE(
      torch::equal(run(DecisionRule::kCosine).mask, torch::tensor({0.f, 1.f, 0.f, 1.f, 1.f, 0.f})));
  EXPECT_NEAR(run(DecisionRule::kCosine).activation_rate.item<double>(), 0.5, 1e-7);
  // θ = 0.8 also masks the 0.707 row; θ = −1 masks nothing (a < −1 never holds).
  EXPECT_TRUE(torch::equal(run(DecisionRule::kCosine, 0.8).mask,
                           torch::tensor({0.f, 1.f, 1.f, 1.f, 1.f, 1.f})));
  EXPECT_EQ(run(DecisionRule::kCosine, -1).mask.sum().item<double>(), 0);
}

TEST(Decision, UtilityRuleMasksNegativeGainOnly) {
  // δ = 0 is not harmful.
  EXPECT_TRUE(torch::equal(run(DecisionRule::kUtility).mask,
                           torch::tensor({1.f, 0.f, 1.f, 0.f, 1.f, 0.f})));
}

TEST(Decision, BothRuleNeedsLowAlignmentAndNegativeGain) {
  const auto out = run(DecisionRule::kBoth);
  EXPECT_TRUE(torch::equal(out.mask, torch::tensor({0.f, 0.f, 0.f, 0.f, 1.f, 0.f})));
  EXPECT_NEAR(out.activation_rate.item<double>(), 1.0 / 6, 1e-7);
}

TEST(Decision, AlwaysAndNeverAblations) {
  EXPECT_EQ(run(DecisionRule::kAlways).mask.sum().item<double>(), 6);
  EXPECT_EQ(run(DecisionRule::kNever).mask.sum().item<double>(), 0);
}

TEST(Decision, OutputsCarryNoGradient) {
  auto in = inputs();
  in.h_aligned.requires_grad_(true);
  in.logp_with.requires_grad_(true);
  DecisionMatrix dm;
  const auto out = dm->forward(in.h_aligned, in.h_rs, in.logp_with, in.logp_without);
  EXPECT_FALSE(out.a.requires_grad());
  EXPECT_FALSE(out.delta.requires_grad());
  EXPECT_FALSE(out.mask.requires_grad());
}

TEST(Decision, PerCodeActivationCountsAndRates) {
  const auto mask = torch::tensor({1.f, 0.f, 1.f, 1.f, 0.f});
  const auto codes = torch::tensor({2, 2, 0, 2, 0}, torch::kInt64);
  const auto act = DecisionMatrixImpl::per_code_activation(mask, codes, 4);
  EXPECT_TRUE(torch::equal(act.examples, torch::tensor({2.f, 0.f, 3.f, 0.f})));
  EXPECT_TRUE(torch::equal(act.active, torch::tensor({1.f, 0.f, 2.f, 0.f})));
  EXPECT_TRUE(torch::allclose(act.rate, torch::tensor({0.5f, 0.f, 2.f / 3, 0.f})));
}

std::string error_of(const std::string& text) {
  try {
    Json j = Json::parse(text);
    ConfigNode root(j, "c.json");
    auto node = root.child("decision");
    DecisionOptions::from_config(node);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Decision, ConfigRejectsThetaOutsideTheUnitIntervalAndUnknownRules) {
  EXPECT_EQ(error_of(R"({"decision": {"theta": 1.5}})"),
            "c.json: config error at /decision/theta: must be in [-1, 1], got 1.5");
  EXPECT_EQ(error_of(R"({"decision": {"theta": -1.01}})"),
            "c.json: config error at /decision/theta: must be in [-1, 1], got -1.01");
  EXPECT_EQ(error_of(R"({"decision": {"rule": "cos"}})"),
            "c.json: config error at /decision/rule: expected one of cosine, utility, both, "
            "always, never, got \"cos\"");
  EXPECT_EQ(error_of(R"({"decision": {"rule": "both", "theta": -1}})"), "(no error)");

  Json j = Json::parse(R"({"decision": {"rule": "utility"}})");
  ConfigNode root(j, "c.json");
  auto node = root.child("decision");
  const auto o = DecisionOptions::from_config(node);
  EXPECT_EQ(o.rule(), DecisionRule::kUtility);
  EXPECT_DOUBLE_EQ(o.theta(), 0.45);
  EXPECT_EQ(j["decision"]["theta"], 0.45);
}

}  // namespace
}  // namespace coco
