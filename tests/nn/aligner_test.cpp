// Aligner: shapes, cross-attention against a naive loop, masked text keys ignored, rows without
// text stay finite, gradients reach every parameter, config errors.
#include "coco/nn/aligner.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "coco/common/error.h"

namespace coco {
namespace {

constexpr int64_t kB = 3, kP = 2, kT = 5, kLlm = 12, kD = 6;

Aligner make_aligner() {
  return Aligner(AlignerOptions(kLlm, kD).attn_width(8).num_heads(2).mlp_hidden(10).dropout(0.1));
}

torch::Tensor text_mask() {  // [B, T]: row 0 full, row 1 three tokens, row 2 one token
  return torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1}, torch::kBool).view({kB, kT});
}

TEST(Aligner, OutputShapes) {
  torch::manual_seed(0);
  auto al = make_aligner();
  const auto out =
      al->forward(torch::randn({kB, kP, kLlm}), torch::randn({kB, kT, kLlm}), text_mask());
  EXPECT_EQ(out.h_text.sizes(), (std::vector<int64_t>{kB, 8}));
  EXPECT_EQ(out.h_aligned.sizes(), (std::vector<int64_t>{kB, kD}));
}

// h_text from the module's own weights, one query, head and key at a time: a softmax over
// the valid text tokens, the weighted values, the output projection, the mean over the
// prompt positions.
TEST(Aligner, CrossAttentionMatchesNaiveLoop) {
  torch::manual_seed(5);
  auto al = make_aligner();
  al->eval();
  const auto prompt = torch::randn({kB, kP, kLlm}), text = torch::randn({kB, kT, kLlm});
  const auto mask = text_mask();
  const auto out = al->forward(prompt, text, mask);
  auto params = al->named_parameters();
  auto linear = [&](const std::string& name, const torch::Tensor& x) {
    return torch::linear(x, params[name + ".weight"], params[name + ".bias"]);
  };
  const int64_t heads = 2, dh = 4;
  for (int64_t b = 0; b < kB; ++b) {
    const auto q = linear("q_proj", prompt[b]), k = linear("k_proj", text[b]),
               v = linear("v_proj", text[b]);
    auto ctx = torch::zeros({kP, heads * dh});
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < kP; ++i) {
        std::vector<double> w(kT, 0.0);
        double z = 0;
        for (int64_t j = 0; j < kT; ++j) {
          if (!mask[b][j].item<bool>()) continue;
          const double s =
              (q[i].narrow(0, h * dh, dh) * k[j].narrow(0, h * dh, dh)).sum().item<double>() / 2.0;
          z += w[static_cast<size_t>(j)] = std::exp(s);
        }
        for (int64_t j = 0; j < kT; ++j) {
          ctx[i].narrow(0, h * dh, dh) +=
              w[static_cast<size_t>(j)] / z * v[j].narrow(0, h * dh, dh);
        }
      }
    }
    EXPECT_TRUE(torch::allclose(out.h_text[b], linear("out_proj", ctx).mean(0), 1e-5, 1e-6))
        << "row " << b;
  }
}

TEST(Aligner, MaskedTextStatesChangeNothing) {
  torch::manual_seed(1);
  auto al = make_aligner();
  al->eval();
  const auto prompt = torch::randn({kB, kP, kLlm});
  const auto text = torch::randn({kB, kT, kLlm});
  const auto mask = text_mask();
  const auto changed = torch::where(mask.unsqueeze(-1), text, torch::randn({kB, kT, kLlm}) * 100);
  const auto a = al->forward(prompt, text, mask), b = al->forward(prompt, changed, mask);
  EXPECT_TRUE(torch::equal(a.h_aligned, b.h_aligned));
  EXPECT_TRUE(torch::equal(a.h_text, b.h_text));
  // ... while a valid text state does change the result.
  auto valid_changed = text.clone();
  valid_changed[2][4] += 1;
  EXPECT_FALSE(torch::equal(al->forward(prompt, valid_changed, mask).h_aligned, a.h_aligned));
}

TEST(Aligner, RowWithoutValidTextStaysFinite) {
  torch::manual_seed(2);
  auto al = make_aligner();
  auto mask = text_mask();
  mask[1].fill_(false);
  const auto text = torch::randn({kB, kT, kLlm}, torch::requires_grad());
  const auto out = al->forward(torch::randn({kB, kP, kLlm}), text, mask);
  EXPECT_TRUE(torch::isfinite(out.h_aligned).all().item<bool>());
  EXPECT_TRUE(torch::equal(out.h_text[1], al->named_parameters()["out_proj.bias"]));  // no context
  out.h_aligned.sum().backward();
  EXPECT_TRUE(torch::isfinite(text.grad()).all().item<bool>());
  for (const auto& p : al->parameters()) EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
}

TEST(Aligner, GradientReachesEveryParameterAndTheStates) {
  torch::manual_seed(3);
  auto al = make_aligner();
  const auto prompt = torch::randn({kB, kP, kLlm}, torch::requires_grad());
  const auto text = torch::randn({kB, kT, kLlm}, torch::requires_grad());
  al->forward(prompt, text, text_mask()).h_aligned.pow(2).sum().backward();
  for (const auto& p : al->named_parameters()) {
    // A key bias adds the same q·b_k to every score of a query: softmax cancels it, so its
    // gradient is zero up to rounding.
    if (p.key() == "k_proj.bias") continue;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
  EXPECT_GT(prompt.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(text.grad().abs().sum().item<double>(), 0);
}

TEST(Aligner, ForwardJointSplitsPromptAndTextPositions) {
  torch::manual_seed(4);
  auto al = make_aligner();
  al->eval();
  const auto states = torch::randn({kB, kP + kT, kLlm});
  const auto joint = al->forward_joint(states, text_mask());
  const auto split = al->forward(states.narrow(1, 0, kP), states.narrow(1, kP, kT), text_mask());
  EXPECT_TRUE(torch::equal(joint.h_aligned, split.h_aligned));
  // Half-precision LLM states are cast to the module's dtype.
  const auto half = al->forward_joint(states.to(torch::kBFloat16), text_mask());
  EXPECT_EQ(half.h_aligned.scalar_type(), torch::kFloat32);
}

TEST(Aligner, ConfigRejectsHeadsThatDoNotDivideTheWidth) {
  Json j = Json::parse(R"({"aligner": {"attn_width": 10, "num_heads": 4}})");
  ConfigNode root(j, "c.json");
  auto node = root.child("aligner");
  std::string what;
  try {
    AlignerOptions::from_config(node, 16, 8);
  } catch (const ConfigError& e) {
    what = e.what();
  }
  EXPECT_EQ(what, "c.json: config error at /aligner/num_heads: must divide attn_width (10), got 4");

  Json ok = Json::parse(R"({"aligner": {"attn_width": 16, "num_heads": 4, "dropout": 0.0}})");
  ConfigNode ok_root(ok, "c.json");
  auto ok_node = ok_root.child("aligner");
  const auto o = AlignerOptions::from_config(ok_node, 32, 8);
  EXPECT_EQ(o.attn_width(), 16);
  EXPECT_EQ(o.llm_width(), 32);
  EXPECT_EQ(ok["aligner"]["mlp_hidden"], 256);
}

}  // namespace
}  // namespace coco
