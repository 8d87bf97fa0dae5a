// Decoder parts against naive reference computations: RMSNorm, RoPE (both pairings and the
// permutation between them), grouped-query attention, SwiGLU, masks and padding.
#include "coco/llm/llama_layers.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "coco/llm/llama_loader.h"
#include "coco/llm/llama_model.h"

namespace coco::llm {
namespace {

LlamaConfig tiny_config() {
  LlamaConfig c;
  c.vocab_size(50)
      .hidden_size(32)
      .num_layers(2)
      .num_heads(4)
      .num_kv_heads(2)
      .intermediate_size(24)
      .rope_theta(500.0)
      .rms_norm_eps(1e-5);
  return c;
}

TEST(LlamaRMSNorm, MatchesNaive) {
  torch::manual_seed(0);
  RMSNorm norm(RMSNormOptions(6).eps(1e-6));
  {
    torch::NoGradGuard g;
    norm->weight.copy_(torch::randn({6}));
  }
  const auto x = torch::randn({2, 3, 6});
  const auto y = norm(x);
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 3; ++j) {
      double ss = 0;
      for (int64_t k = 0; k < 6; ++k) ss += std::pow(x[i][j][k].item<double>(), 2);
      const double r = 1.0 / std::sqrt(ss / 6 + 1e-6);
      for (int64_t k = 0; k < 6; ++k) {
        EXPECT_NEAR(y[i][j][k].item<double>(),
                    x[i][j][k].item<double>() * r * norm->weight[k].item<double>(), 1e-5);
      }
    }
  }
  EXPECT_FALSE(norm->weight.requires_grad());
}

// The fused CPU kernels against their libtorch compositions, values and gradients, on
// enough rows to be split over threads.
void expect_same_function(
    const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& fused,
    const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& reference,
    const std::vector<torch::Tensor>& inputs) {
  auto run = [&](const auto& f) {
    std::vector<torch::Tensor> xs;
    for (const auto& x : inputs) xs.push_back(x.detach().clone().requires_grad_());
    const auto y = f(xs);
    (y * torch::linspace(-1, 1, y.numel()).view(y.sizes())).sum().backward();
    std::vector<torch::Tensor> out = {y.detach()};
    for (const auto& x : xs) out.push_back(x.grad());
    return out;
  };
  const auto a = run(fused), b = run(reference);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-4, 1e-5))
        << (i == 0 ? "value" : "gradient of input " + std::to_string(i - 1));
  }
}

TEST(FusedKernels, MatchTheirCompositions) {
  torch::manual_seed(9);
  const auto w = torch::randn({64});
  expect_same_function([&](const auto& x) { return rms_norm(x[0], w, 1e-5); },
                       [&](const auto& x) { return rms_norm_reference(x[0], w, 1e-5); },
                       {torch::randn({3, 300, 64}) * 3});
  expect_same_function(
      [](const auto& x) { return swiglu(x[0], x[1]); },
      [](const auto& x) { return swiglu_reference(x[0], x[1]); },
      {torch::randn({70000}) * 20, torch::randn({70000})});  // |g| up to e^-87's range
  const auto pos = torch::randint(0, 40, {3, 100});
  const auto tables = make_rope_tables(pos, 8, 10000.0, torch::kFloat32);
  for (const auto pairing : {RopePairing::kHalf, RopePairing::kAdjacent}) {
    // [B, H, T, Dh] as the projections give it: a transposed view of [B, T, H, Dh].
    expect_same_function(
        [&](const auto& x) { return apply_rope(x[0].transpose(1, 2), tables, pairing); },
        [&](const auto& x) { return apply_rope_reference(x[0].transpose(1, 2), tables, pairing); },
        {torch::randn({3, 100, 4, 8})});
  }
}

// Naive RoPE: rotate pair (a, b) of head dims by pos * theta^(-2i/Dh).
torch::Tensor naive_rope(const torch::Tensor& x, double theta, bool adjacent) {
  auto out = x.clone();
  const int64_t dh = x.size(3);
  for (int64_t b = 0; b < x.size(0); ++b)
    for (int64_t h = 0; h < x.size(1); ++h)
      for (int64_t t = 0; t < x.size(2); ++t)
        for (int64_t i = 0; i < dh / 2; ++i) {
          const double ang =
              static_cast<double>(t) *
              std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(dh));
          const int64_t p = adjacent ? 2 * i : i, q = adjacent ? 2 * i + 1 : i + dh / 2;
          const double a = x[b][h][t][p].item<double>(), c = x[b][h][t][q].item<double>();
          out[b][h][t][p] = a * std::cos(ang) - c * std::sin(ang);
          out[b][h][t][q] = a * std::sin(ang) + c * std::cos(ang);
        }
  return out;
}

TEST(LlamaRope, BothPairingsMatchNaive) {
  torch::manual_seed(1);
  const auto x = torch::randn({2, 3, 5, 8});
  const auto pos = torch::arange(5).unsqueeze(0).expand({2, 5});
  const auto tables = make_rope_tables(pos, 8, 100.0, torch::kFloat32);
  EXPECT_TRUE(torch::allclose(apply_rope(x, tables, RopePairing::kAdjacent),
                              naive_rope(x, 100.0, true), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(apply_rope(x, tables, RopePairing::kHalf),
                              naive_rope(x, 100.0, false), 1e-5, 1e-5));
}

TEST(LlamaRope, PermutedWeightsWithHalfPairingGiveTheSameScores) {
  // q·k under (W_q, W_k, adjacent pairs) equals q·k under (P W_q, P W_k, halves).
  torch::manual_seed(2);
  const int64_t heads = 3, dh = 8, t = 6;
  const auto wq = torch::randn({heads * dh, 5}), wk = torch::randn({heads * dh, 5});
  const auto x = torch::randn({t, 5});
  const auto tables = make_rope_tables(torch::arange(t).unsqueeze(0), dh, 10000.0, torch::kFloat32);
  auto scores = [&](const torch::Tensor& q_w, const torch::Tensor& k_w, RopePairing pairing) {
    auto proj = [&](const torch::Tensor& w) {  // [1, H, T, Dh]
      return apply_rope(torch::matmul(x, w.t()).view({1, t, heads, dh}).transpose(1, 2), tables,
                        pairing);
    };
    return torch::matmul(proj(q_w), proj(k_w).transpose(-2, -1));  // [1, H, T, T]
  };
  const auto a = RopePairing::kAdjacent, h = RopePairing::kHalf;
  const auto ref = scores(wq, wk, a);
  EXPECT_TRUE(torch::allclose(
      scores(permute_rope_rows(wq, heads, a, h), permute_rope_rows(wk, heads, a, h), h), ref, 1e-4,
      1e-4));
  EXPECT_FALSE(torch::allclose(scores(wq, wk, h), ref, 1e-4, 1e-4));  // the pairing matters
  EXPECT_TRUE(torch::equal(permute_rope_rows(permute_rope_rows(wq, heads, a, h), heads, h, a), wq));
}

TEST(LlamaAttention, GqaMatchesNaiveLoopWithPadding) {
  torch::manual_seed(3);
  const auto cfg = tiny_config();
  LlamaAttention attn(cfg);
  const int64_t b = 2, t = 5, d = 32, h = 4, hkv = 2, dh = 8;
  const auto x = torch::randn({b, t, d});
  const auto mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, torch::kLong).view({b, t});
  DecoderContext ctx;
  const auto pos = (mask.cumsum(1) - 1).clamp_min(0);
  ctx.rope = make_rope_tables(pos, dh, cfg.rope_theta(), torch::kFloat32);
  ctx.allow = make_attention_allow(mask, b, t, torch::kCPU);
  const auto y = attn->forward(x, ctx);

  const auto q =
      apply_rope(torch::linear(x, attn->q_proj->weight).view({b, t, h, dh}).transpose(1, 2),
                 ctx.rope, cfg.rope_pairing());
  const auto k =
      apply_rope(torch::linear(x, attn->k_proj->weight).view({b, t, hkv, dh}).transpose(1, 2),
                 ctx.rope, cfg.rope_pairing());
  const auto v = torch::linear(x, attn->v_proj->weight).view({b, t, hkv, dh}).transpose(1, 2);
  auto heads = torch::zeros({b, t, h, dh});
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t i = 0; i < t; ++i) {
        if (mask[bi][i].item<int64_t>() == 0) continue;  // padding queries: unspecified
        std::vector<double> s;
        double mx = -1e300;
        for (int64_t j = 0; j <= i; ++j) {
          if (mask[bi][j].item<int64_t>() == 0) continue;
          s.push_back((q[bi][hi][i] * k[bi][hi / 2][j]).sum().item<double>() / std::sqrt(8.0));
          mx = std::max(mx, s.back());
        }
        double z = 0;
        for (double& e : s) z += (e = std::exp(e - mx));
        size_t n = 0;
        for (int64_t j = 0; j <= i; ++j) {
          if (mask[bi][j].item<int64_t>() == 0) continue;
          heads[bi][i][hi] += v[bi][hi / 2][j] * (s[n++] / z);
        }
      }
  const auto ref = torch::linear(heads.reshape({b, t, h * dh}), attn->o_proj->weight);
  EXPECT_TRUE(torch::allclose(y[0], ref[0], 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(y[1].narrow(0, 0, 3), ref[1].narrow(0, 0, 3), 1e-4, 1e-5));
  EXPECT_FALSE(y.isnan().any().item<bool>());
}

TEST(LlamaMlp, SwiGluMatchesNaive) {
  torch::manual_seed(4);
  LlamaMLP mlp(tiny_config());
  const auto x = torch::randn({2, 3, 32});
  const auto g = torch::matmul(x, mlp->gate_proj->weight.t());
  const auto u = torch::matmul(x, mlp->up_proj->weight.t());
  const auto ref = torch::matmul(g / (1 + torch::exp(-g)) * u, mlp->down_proj->weight.t());
  EXPECT_TRUE(torch::allclose(mlp(x), ref, 1e-5, 1e-6));
}

TEST(LlamaModel, PaddingLeftOrRightGivesTheSameStates) {
  torch::manual_seed(5);
  LlamaModel model(tiny_config());
  const auto ids = torch::randint(0, 50, {1, 4});
  const auto alone = model->run(LlamaInput{ids, {}, {}, {}, 0, false}).hidden;  // [1, 4, D]
  auto right = torch::zeros({2, 6}, torch::kLong);
  right[0].narrow(0, 0, 4).copy_(ids[0]);
  right[1].copy_(torch::randint(0, 50, {6}));
  auto rmask = torch::ones({2, 6}, torch::kLong);
  rmask[0].narrow(0, 4, 2).zero_();
  const auto r = model->run(LlamaInput{right, {}, rmask, {}, 0, false}).hidden;
  EXPECT_TRUE(torch::allclose(r[0].narrow(0, 0, 4), alone[0], 1e-5, 1e-5));
  auto left = torch::zeros({1, 6}, torch::kLong);
  left[0].narrow(0, 2, 4).copy_(ids[0]);
  auto lmask = torch::zeros({1, 6}, torch::kLong);
  lmask[0].narrow(0, 2, 4).fill_(1);
  const auto l = model->run(LlamaInput{left, {}, lmask, {}, 0, false}).hidden;
  EXPECT_TRUE(torch::allclose(l[0].narrow(0, 2, 4), alone[0], 1e-5, 1e-5));
  EXPECT_FALSE(l.isnan().any().item<bool>());
}

TEST(LlamaModel, CausalEmbedsAndLayerOutputs) {
  torch::manual_seed(6);
  LlamaModel model(tiny_config());
  const auto ids = torch::randint(0, 50, {2, 5});
  LlamaInput in{ids, {}, {}, {}, 2, true};
  const auto out = model->run(in);
  EXPECT_EQ(out.hidden.sizes(), (std::vector<int64_t>{2, 5, 32}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 5, 50}));
  ASSERT_EQ(out.layers.size(), 2u);
  EXPECT_TRUE(torch::equal(out.layers[1], out.hidden));
  EXPECT_TRUE(torch::allclose(out.mean_of_layers(), (out.layers[0] + out.layers[1]) / 2));
  // Embeddings path == ids path; changing a later token leaves earlier states alone.
  EXPECT_TRUE(torch::allclose(model->forward(model->embed_tokens(ids)), out.hidden, 1e-6, 1e-6));
  auto ids2 = ids.clone();
  ids2[0][4] = (ids[0][4].item<int64_t>() + 1) % 50;
  const auto h2 = model->forward(model->embed_tokens(ids2));
  EXPECT_TRUE(torch::allclose(h2[0].narrow(0, 0, 4), out.hidden[0].narrow(0, 0, 4), 1e-6, 1e-6));
  EXPECT_FALSE(torch::allclose(h2[0][4], out.hidden[0][4]));
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST(LlamaModel, Bfloat16CloseToFloat32) {
  torch::manual_seed(7);
  LlamaModel model(tiny_config());
  const auto ids = torch::randint(0, 50, {2, 6});
  const auto h32 = model->run(LlamaInput{ids, {}, {}, {}, 0, false}).hidden;
  model->to(torch::kBFloat16);
  const auto h16 = model->run(LlamaInput{ids, {}, {}, {}, 0, false}).hidden;
  EXPECT_EQ(h16.scalar_type(), torch::kBFloat16);
  EXPECT_LT((h16.to(torch::kFloat32) - h32).abs().max().item<float>(), 0.15f);
}

TEST(LlamaModel, QkvBiasesForQwen2) {
  auto cfg = tiny_config();
  cfg.attention_bias(true);
  LlamaModel model(cfg);
  auto params = model->named_parameters();
  EXPECT_NE(params.find("layers.0.self_attn.q_proj.bias"), nullptr);
  EXPECT_EQ(params.find("layers.0.self_attn.o_proj.bias"), nullptr);
  EXPECT_NE(params.find("lm_head.weight"), nullptr);
  cfg.tie_word_embeddings(true);
  LlamaModel tied(cfg);
  EXPECT_EQ(tied->named_parameters().find("lm_head.weight"), nullptr);
}

}  // namespace
}  // namespace coco::llm
