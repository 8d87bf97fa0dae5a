// LoRA: adapted == base at init, one optimiser step changes only adapters, per-example
// gradient masking equals computing the masked-in examples alone, merge, save/load.
#include "coco/llm/lora.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/config/config.h"
#include "coco/llm/llama_loader.h"
#include "coco/llm/llama_model.h"
#include "llm_test_util.h"

namespace coco::llm {
namespace {

LlamaConfig tiny_config() {
  LlamaConfig c;
  c.vocab_size(40).hidden_size(16).num_layers(2).num_heads(4).num_kv_heads(2).intermediate_size(24);
  return c;
}

TEST(LoRALinear, MaskedForwardValuesEqualUnmasked) {
  torch::manual_seed(0);
  LoRALinear lin(LoRALinearOptions(6, 4).bias(true));
  const auto x = torch::randn({3, 2, 6});
  const auto base = lin(x);
  lin->attach_adapter(2, 4.0, 0.0);
  EXPECT_TRUE(torch::equal(lin(x), base));  // B = 0
  {
    torch::NoGradGuard g;
    lin->lora_B.normal_();
  }
  const auto y = lin(x);
  EXPECT_TRUE(torch::allclose(
      y, base + torch::matmul(torch::matmul(x, lin->lora_A.t()), lin->lora_B.t()) * 2.0, 1e-5,
      1e-5));
  EXPECT_TRUE(torch::equal(lin(x, torch::tensor({1, 0, 1})), y));
  EXPECT_TRUE(torch::equal(lin(x, torch::tensor({0, 0, 0})), y));
}

// The adapter's hand-written backward (through M = s B A and G = Σ g hᵀ) against autograd
// on the plain composition x Wᵀ + b + s (x Aᵀ) Bᵀ, masked rows dropped from A's and B's.
TEST(LoRALinear, GradientsMatchAutogradOnTheComposition) {
  torch::manual_seed(7);
  LoRALinear lin(LoRALinearOptions(6, 5).bias(true));
  lin->attach_adapter(3, 6.0, 0.0);
  {
    torch::NoGradGuard g;
    lin->lora_B.normal_();
  }
  const auto x = torch::randn({4, 70, 6}, torch::requires_grad());  // rows split over threads
  const auto w = torch::randn({4, 70, 5});
  const auto mask = torch::tensor({1.f, 0.f, 1.f, 1.f});
  (lin(x, mask) * w).sum().backward();
  const auto ga = lin->lora_A.grad().clone(), gb = lin->lora_B.grad().clone(),
             gx = x.grad().clone();

  const auto a = lin->lora_A.detach().requires_grad_(), b = lin->lora_B.detach().requires_grad_();
  const auto x2 = x.detach().requires_grad_();
  const auto m = mask.view({4, 1, 1});
  const auto adapter =
      m * torch::matmul(torch::matmul(x2, a.t()), b.t()) * 2.0 +
      (1 - m) * torch::matmul(torch::matmul(x2, a.detach().t()), b.detach().t()) * 2.0;
  ((torch::linear(x2, lin->weight, lin->bias) + adapter) * w).sum().backward();
  EXPECT_TRUE(torch::allclose(ga, a.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(gb, b.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(gx, x2.grad(), 1e-4, 1e-5));
}

TEST(Lora, AttachByNameDefaultsToQAndV) {
  LlamaModel model(tiny_config());
  const auto names = attach_lora(*model, LoRAOptions());
  EXPECT_EQ(names,
            (std::vector<std::string>{"layers.0.self_attn.q_proj", "layers.1.self_attn.q_proj",
                                      "layers.0.self_attn.v_proj", "layers.1.self_attn.v_proj"}));
  EXPECT_EQ(lora_parameters(*model).size(), 8u);
  size_t trainable = 0;
  for (const auto& p : model->parameters()) trainable += p.requires_grad() ? 1 : 0;
  EXPECT_EQ(trainable, 8u);
  LlamaModel all(tiny_config());
  EXPECT_EQ(
      attach_lora(*all, LoRAOptions().targets({"q", "k", "v", "o", "gate", "up", "down"})).size(),
      14u);
  EXPECT_THROW(attach_lora(*all, LoRAOptions().targets({"qq"})), ConfigError);
}

TEST(Lora, OptionsFromConfig) {
  Json j = {{"lora", {{"rank", 4}, {"alpha", 8}, {"targets", {"q", "down"}}}}};
  ConfigNode root(j, "test.json");
  auto node = root.child("lora");
  const auto o = LoRAOptions::from_config(node);
  EXPECT_EQ(o.rank(), 4);
  EXPECT_DOUBLE_EQ(o.scale(), 2.0);
  EXPECT_DOUBLE_EQ(o.dropout(), 0.05);
  EXPECT_EQ(o.targets(), (std::vector<std::string>{"q", "down"}));
  Json bad = {{"lora", {{"rnk", 4}}}};
  ConfigNode broot(bad, "bad.json");
  auto bnode = broot.child("lora");
  EXPECT_THROW(LoRAOptions::from_config(bnode), ConfigError);
}

TEST(LlamaLoadOptions, FromConfig) {
  Json j = {{"llm", {{"path", "m.gguf"}, {"dtype", "bfloat16"}, {"device", "cpu"}}}};
  ConfigNode root(j, "test.json");
  auto node = root.child("llm");
  const auto o = LlamaLoadOptions::from_config(node);
  EXPECT_EQ(o.path(), "m.gguf");
  EXPECT_EQ(o.dtype(), torch::kBFloat16);
  EXPECT_EQ(o.device(), torch::Device(torch::kCPU));
  Json bad = {{"llm", {{"path", "m.gguf"}, {"dtype", "fp8"}}}};
  ConfigNode broot(bad, "bad.json");
  auto bnode = broot.child("llm");
  EXPECT_THROW(LlamaLoadOptions::from_config(bnode), ConfigError);
}

TEST(Lora, InitEqualsBaseAndOneStepChangesOnlyAdapters) {
  torch::manual_seed(1);
  LlamaModel model(tiny_config());
  const auto ids = torch::randint(0, 40, {3, 5});
  const auto base = model->run(LlamaInput{ids, {}, {}, {}, 0, true});
  attach_lora(*model, LoRAOptions().targets({"q", "v", "down"}).dropout(0.1));
  model->eval();
  const auto adapted = model->run(LlamaInput{ids, {}, {}, {}, 0, true});
  EXPECT_TRUE(torch::equal(adapted.hidden, base.hidden));
  EXPECT_TRUE(torch::equal(adapted.logits, base.logits));

  std::map<std::string, torch::Tensor> before;
  for (const auto& p : model->named_parameters()) before[p.key()] = p.value().clone();
  model->train();
  torch::optim::AdamW opt(lora_parameters(*model), torch::optim::AdamWOptions(1e-2));
  const auto out = model->run(LlamaInput{ids, {}, {}, {}, 0, true});
  torch::nll_loss(torch::log_softmax(out.logits.reshape({-1, 40}), -1), ids.reshape({-1}))
      .backward();
  opt.step();
  for (const auto& p : model->named_parameters()) {
    const bool changed = !torch::equal(before[p.key()], p.value());
    const bool is_b = p.key().find("lora_B") != std::string::npos;
    if (p.key().find("lora_") == std::string::npos) {
      EXPECT_FALSE(changed) << p.key();
      EXPECT_FALSE(p.value().grad().defined()) << p.key();
    } else if (is_b) {
      EXPECT_TRUE(changed) << p.key();  // B gets gradient at step 0 (A does not: B = 0)
    }
  }
}

TEST(Lora, MaskedGradientEqualsGradientOfMaskedInExamplesAlone) {
  torch::manual_seed(2);
  LlamaModel model(tiny_config());
  attach_lora(*model,
              LoRAOptions().targets({"q", "k", "v", "o", "gate", "up", "down"}).dropout(0.0));
  {
    torch::NoGradGuard g;
    for (auto& p : lora_parameters(*model)) p.normal_(0, 0.1);  // non-zero B so A gets gradient too
  }
  const auto ids = torch::randint(0, 40, {4, 6});
  const auto mask = torch::tensor({1, 0, 1, 0});
  auto embeds =
      model->embed_tokens(ids).detach().requires_grad_(true);  // stands in for soft prompts
  const auto target = torch::randn({4, 6, 16});
  auto loss_of = [&](const torch::Tensor& e, const torch::Tensor& m, const torch::Tensor& tgt) {
    return (model->forward(e, {}, m) * tgt).sum();
  };
  auto grads = [&] {
    std::vector<torch::Tensor> g;
    for (auto& p : lora_parameters(*model)) {
      g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
      p.mutable_grad() = torch::Tensor();
    }
    return g;
  };
  // Masked batch: adapters learn from examples 0 and 2 only; the input gets every gradient.
  loss_of(embeds, mask, target).backward();
  const auto masked = grads();
  const auto input_grad_masked = embeds.grad().clone();
  embeds.mutable_grad() = torch::Tensor();
  // Reference: examples 0 and 2 alone, no mask.
  const auto keep = torch::tensor({0, 2});
  auto sub = embeds.index_select(0, keep).detach();
  loss_of(sub, {}, target.index_select(0, keep)).backward();
  const auto alone = grads();
  for (size_t i = 0; i < masked.size(); ++i) {
    EXPECT_GT(alone[i].abs().sum().item<double>(), 0.0);
    EXPECT_TRUE(torch::allclose(masked[i], alone[i], 1e-4, 1e-6)) << "parameter " << i;
  }
  // Gradient to the input is that of the unmasked computation, for every example.
  loss_of(embeds, {}, target).backward();
  grads();
  EXPECT_TRUE(torch::allclose(input_grad_masked, embeds.grad(), 1e-5, 1e-6));
  // Same forward values with and without the mask.
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::equal(model->forward(embeds, {}, mask), model->forward(embeds)));
}

// CoCo decides the mask from the forward's output: a mask filled in after the forward must
// act exactly like the same mask given up front.
TEST(Lora, MaskFilledAfterForwardActsAtBackward) {
  torch::manual_seed(4);
  LlamaModel model(tiny_config());
  attach_lora(*model, LoRAOptions().dropout(0.0));
  {
    torch::NoGradGuard g;
    for (auto& p : lora_parameters(*model)) p.normal_(0, 0.1);
  }
  const auto embeds = model->embed_tokens(torch::randint(0, 40, {3, 5})).detach();
  auto grads_with = [&](bool deferred) {
    auto mask = deferred ? torch::zeros({3}) : torch::tensor({0.f, 1.f, 0.f});
    auto loss = model->forward(embeds, {}, mask).pow(2).sum();
    if (deferred) mask.index_put_({1}, 1.0f);
    loss.backward();
    std::vector<torch::Tensor> g;
    for (auto& p : lora_parameters(*model)) {
      g.push_back(p.grad().clone());
      p.mutable_grad() = torch::Tensor();
    }
    return g;
  };
  const auto upfront = grads_with(false), deferred = grads_with(true);
  for (size_t i = 0; i < upfront.size(); ++i) {
    EXPECT_GT(upfront[i].abs().sum().item<double>(), 0.0);
    EXPECT_TRUE(torch::allclose(upfront[i], deferred[i])) << "parameter " << i;
  }
}

// After merging, a new adapter of the same rank starts fresh (B = 0) and trains again.
TEST(Lora, ReattachAfterMerge) {
  LoRALinear lin(LoRALinearOptions(4, 3));
  lin->attach_adapter(2, 4.0, 0.0);
  {
    torch::NoGradGuard g;
    lin->lora_B.fill_(0.5);
  }
  lin->merge_adapter();
  const auto x = torch::randn({2, 4});
  const auto merged = lin->forward(x).detach();
  lin->attach_adapter(2, 4.0, 0.0);
  EXPECT_FALSE(lin->merged());
  EXPECT_TRUE(lin->lora_B.requires_grad());
  EXPECT_EQ(lin->lora_B.abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::allclose(lin->forward(x), merged));
}

TEST(Lora, MergeAndSaveLoad) {
  torch::manual_seed(3);
  test::TempDir tmp;
  LlamaModel model(tiny_config());
  const auto opts = LoRAOptions().rank(2).alpha(4).targets({"q", "up"});
  attach_lora(*model, opts);
  {
    torch::NoGradGuard g;
    for (auto& p : lora_parameters(*model)) p.normal_(0, 0.2);
  }
  model->eval();
  const auto ids = torch::randint(0, 40, {2, 5});
  const auto adapted = model->run(LlamaInput{ids, {}, {}, {}, 0, false}).hidden;
  save_lora(*model, tmp.file("a.safetensors"), opts);

  // A fresh model with the same base weights, then load the adapters.
  LlamaModel other(tiny_config());
  {
    torch::NoGradGuard g;
    auto dst = other->named_parameters();
    for (const auto& p : model->named_parameters())
      if (p.key().find("lora_") == std::string::npos) dst[p.key()].copy_(p.value());
  }
  const auto loaded = load_lora(*other, tmp.file("a.safetensors"));
  EXPECT_EQ(loaded.rank(), 2);
  EXPECT_DOUBLE_EQ(loaded.alpha(), 4.0);
  other->eval();
  EXPECT_TRUE(torch::allclose(other->run(LlamaInput{ids, {}, {}, {}, 0, false}).hidden, adapted,
                              1e-6, 1e-6));

  // clone() (Cloneable) keeps the adapters.
  auto copy = std::dynamic_pointer_cast<LlamaModelImpl>(model->clone());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(torch::equal(copy->run(LlamaInput{ids, {}, {}, {}, 0, false}).hidden, adapted));
  EXPECT_EQ(lora_parameters(*copy).size(), lora_parameters(*model).size());

  merge_lora(*model);
  EXPECT_TRUE(lora_parameters(*model).empty());
  EXPECT_TRUE(torch::allclose(model->run(LlamaInput{ids, {}, {}, {}, 0, false}).hidden, adapted,
                              1e-5, 1e-5));
  EXPECT_LT(std::filesystem::file_size(tmp.file("a.safetensors")), 4096u);
}

}  // namespace
}  // namespace coco::llm

namespace coco::llm {
namespace {

TEST(Lora, Float32AdaptersOnABfloat16Model) {
  torch::manual_seed(4);
  LlamaModel model(tiny_config());
  model->to(torch::kBFloat16);
  const auto ids = torch::randint(0, 40, {2, 5});
  const auto base = model->run(LlamaInput{ids, {}, {}, {}, 0, false}).hidden;
  attach_lora(*model, LoRAOptions().dropout(0.0));
  for (const auto& p : lora_parameters(*model)) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
  const auto h = model->run(LlamaInput{ids, {}, {}, torch::tensor({1, 0}), 0, false}).hidden;
  EXPECT_EQ(h.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(h, base));
  h.to(torch::kFloat32).sum().backward();
  for (const auto& p : lora_parameters(*model)) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_EQ(p.grad().scalar_type(), torch::kFloat32);
  }
}

}  // namespace
}  // namespace coco::llm
