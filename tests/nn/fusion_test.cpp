// Fusion: shapes of every mode, sum is exact, the gate interpolates, config errors.
#include "coco/nn/fusion.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "coco/common/error.h"

namespace coco {
namespace {

TEST(Fusion, EveryModeMapsToBatchByHidden) {
  torch::manual_seed(0);
  const auto h_rs = torch::randn({4, 6}), h_al = torch::randn({4, 6});
  for (auto mode : {FusionMode::kGate, FusionMode::kSum, FusionMode::kConcat}) {
    Fusion f(FusionOptions(6).mode(mode));
    EXPECT_EQ(f->forward(h_rs, h_al).sizes(), (std::vector<int64_t>{4, 6}));
  }
  EXPECT_EQ(Fusion(FusionOptions(6).mode(FusionMode::kSum))->parameters().size(), 0u);
  EXPECT_EQ(Fusion(FusionOptions(6).mode(FusionMode::kConcat))->parameters().size(), 2u);
}

TEST(Fusion, SumIsHrsPlusHaligned) {
  torch::manual_seed(1);
  const auto h_rs = torch::randn({3, 5}), h_al = torch::randn({3, 5});
  Fusion f(FusionOptions(5).mode(FusionMode::kSum));
  EXPECT_TRUE(torch::equal(f->forward(h_rs, h_al), h_rs + h_al));
}

TEST(Fusion, GateMatchesItsFormulaAndTrains) {
  torch::manual_seed(2);
  const auto h_rs = torch::randn({3, 5}), h_al = torch::randn({3, 5}, torch::requires_grad());
  Fusion f(FusionOptions(5));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : f->parameters()) p.zero_();
  }
  // Zero weights: σ(0) = 1/2.
  EXPECT_TRUE(torch::allclose(f->forward(h_rs, h_al), h_rs + 0.5 * h_al));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : f->parameters()) p.normal_();
  }
  const auto w = f->named_parameters()["gate.weight"], b = f->named_parameters()["gate.bias"];
  const auto g = torch::sigmoid(torch::cat({h_rs, h_al}, 1).mm(w.t()) + b);
  const auto out = f->forward(h_rs, h_al);
  EXPECT_TRUE(torch::allclose(out, h_rs + g * h_al, 1e-5, 1e-6));
  out.sum().backward();
  EXPECT_GT(w.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(h_al.grad().abs().sum().item<double>(), 0);
}

TEST(Fusion, ConcatIsALinearMapOfTheConcatenation) {
  torch::manual_seed(3);
  const auto h_rs = torch::randn({3, 4}), h_al = torch::randn({3, 4});
  Fusion f(FusionOptions(4).mode(FusionMode::kConcat));
  const auto w = f->named_parameters()["concat.weight"], b = f->named_parameters()["concat.bias"];
  EXPECT_TRUE(torch::allclose(f->forward(h_rs, h_al), torch::cat({h_rs, h_al}, 1).mm(w.t()) + b,
                              1e-5, 1e-6));
}

TEST(Fusion, ConfigReadsTheModeAndRejectsUnknownOnes) {
  Json j = Json::parse(R"({"fusion": {"mode": "concat"}})");
  ConfigNode root(j, "c.json");
  auto node = root.child("fusion");
  EXPECT_EQ(FusionOptions::from_config(node, 8).mode(), FusionMode::kConcat);

  Json bad = Json::parse(R"({"fusion": {"mode": "product"}})");
  ConfigNode bad_root(bad, "c.json");
  auto bad_node = bad_root.child("fusion");
  std::string what;
  try {
    FusionOptions::from_config(bad_node, 8);
  } catch (const ConfigError& e) {
    what = e.what();
  }
  EXPECT_EQ(
      what,
      "c.json: config error at /fusion/mode: expected one of gate, sum, concat, got \"product\"");
}

}  // namespace
}  // namespace coco
