// Every registered architecture against independent references: tiny random models
// (tests/fixtures/llm/arch, made by make_arch_fixtures.sh) whose logits llama.cpp and a float64
// NumPy implementation computed; the GGUF and its converted Hugging Face copy agree; config keys
// that would change the numerics are refused by name.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "coco/common/error.h"
#include "coco/llm/llama_config.h"
#include "coco/llm/llama_convert.h"
#include "coco/llm/llama_loader.h"
#include "coco/llm/lora.h"
#include "coco/llm/safetensors.h"
#include "llm_test_util.h"

namespace coco::llm {
namespace {

const std::string kDir = std::string(COCO_FIXTURES_DIR) + "/llm/arch/";

torch::Tensor read_f32(const std::string& path, int64_t rows) {
  const std::string bytes = test::read_bytes(path);
  EXPECT_FALSE(bytes.empty()) << path;
  auto t = torch::empty({static_cast<int64_t>(bytes.size() / 4)}, torch::kFloat32);
  std::memcpy(t.data_ptr<float>(), bytes.data(), bytes.size());
  return t.view({rows, -1});
}

torch::Tensor ids_of(const std::string& name) {
  std::ifstream in(kDir + name + ".ids");
  std::vector<int64_t> ids;
  for (std::string tok; std::getline(in, tok, ',');) ids.push_back(std::stoll(tok));
  return torch::tensor(ids, torch::kLong).unsqueeze(0);  // [1, T]
}

torch::Tensor logits_of(const std::string& path, const torch::Tensor& ids,
                        torch::Dtype dtype = torch::kFloat32) {
  auto model = load_llama(LlamaLoadOptions(path).dtype(dtype).device(torch::kCPU));
  torch::NoGradGuard no_grad;
  LlamaInput in;
  in.input_ids = ids;
  in.output_logits = true;
  return model->run(in).logits[0].to(torch::kFloat32);  // [T, V]
}

/// max |a − b| / max |b|.
double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

class ArchitectureReference : public ::testing::TestWithParam<std::string> {};

TEST_P(ArchitectureReference, LogitsMatchNumpyAndLlamaCpp) {
  const std::string name = GetParam();
  const auto ids = ids_of(name);
  const auto ours = logits_of(kDir + name + ".gguf", ids);
  const auto numpy = read_f32(kDir + name + ".numpy.f32", ids.size(1));
  EXPECT_LT(rel_error(ours, numpy), 1e-5) << name << " vs the NumPy reference";
  if (name != "qwen3") {  // llama.cpp at the pinned commit has no Qwen3
    const auto cpp = read_f32(kDir + name + ".llamacpp.f32", ids.size(1));
    // llama.cpp's CPU GELU is a float16 lookup table (GGML_GELU_FP16 in ggml-cpu.c): with it
    // emulated, the NumPy reference moves from 1.1e-3 to 1.7e-4 of llama.cpp's Gemma-2 logits.
    EXPECT_LT(rel_error(ours, cpp), name == "gemma2" ? 2e-3 : 1e-4) << name << " vs llama.cpp";
  }
}

// A Q4_K_M file made by llama-quantize (Q4_K and Q6_K tensors): dequantised at load, the model
// is the NumPy reference run on gguf-py's dequantised tensors. llama.cpp multiplies K-quant
// weights with activations quantised to 8 bits (Q8_K), which costs it 4.9% RMS of the logits
// on this file (run on the same tensors dequantised to F32 it matches NumPy within 2e-6):
// compared with it, the logits agree within 8% RMS and rank the same token first everywhere.
TEST(ArchitectureReference, Q4KMLogitsMatchTheDequantisedReferenceAndLlamaCpp) {
  const auto ids = ids_of("q4km");
  const auto ours = logits_of(kDir + "q4km.gguf", ids);
  EXPECT_LT(rel_error(ours, read_f32(kDir + "q4km.numpy.f32", ids.size(1))), 1e-5);
  const auto cpp = read_f32(kDir + "q4km.llamacpp.f32", ids.size(1));
  EXPECT_LT(((ours - cpp).pow(2).mean() / cpp.pow(2).mean()).sqrt().item<double>(), 0.08);
  EXPECT_TRUE(torch::equal(ours.argmax(1), cpp.argmax(1)));
  // Its converted safetensors copy (dequantised, float32) is the same model.
  test::TempDir dir;
  convert_gguf_to_hf(kDir + "q4km.gguf", dir.file("hf"));
  EXPECT_LT(rel_error(logits_of(dir.file("hf"), ids), ours), 1e-5);
}

TEST_P(ArchitectureReference, ConvertedHuggingFaceCopyAgrees) {
  const std::string name = GetParam();
  test::TempDir dir;
  convert_gguf_to_hf(kDir + name + ".gguf", dir.file("hf"));
  const auto ids = ids_of(name);
  const auto gguf = logits_of(kDir + name + ".gguf", ids);
  const auto hf = logits_of(dir.file("hf"), ids);
  EXPECT_LT(rel_error(hf, gguf), 1e-5) << name;
  // bfloat16 runs the same model within bfloat16's precision.
  EXPECT_LT(rel_error(logits_of(dir.file("hf"), ids, torch::kBFloat16), gguf), 0.1) << name;
}

INSTANTIATE_TEST_SUITE_P(All, ArchitectureReference,
                         ::testing::Values("llama3", "qwen2", "qwen3", "phi3", "gemma2"));

TEST(ArchitectureConfig, ConvertedConfigsSayWhatTheGgufSays) {
  test::TempDir dir;
  const auto read = [&](const std::string& name) {
    convert_gguf_to_hf(kDir + name + ".gguf", dir.file(name));
    std::ifstream in(dir.file(name) + "/config.json");
    return nlohmann::json::parse(in);
  };
  const auto llama = read("llama3");
  EXPECT_EQ(llama["rope_scaling"]["rope_type"], "llama3");
  EXPECT_DOUBLE_EQ(llama["rope_scaling"]["factor"].get<double>(), 8.0);
  const auto qwen3 = read("qwen3");
  EXPECT_EQ(qwen3["architectures"][0], "Qwen3ForCausalLM");
  EXPECT_EQ(qwen3["head_dim"], 16);  // ≠ hidden / heads = 8
  const auto gemma = read("gemma2");
  EXPECT_EQ(gemma["hidden_activation"], "gelu_pytorch_tanh");
  EXPECT_EQ(gemma["sliding_window"], 4);
  EXPECT_DOUBLE_EQ(gemma["final_logit_softcapping"].get<double>(), 3.0);
  // Phi-3's weights go back into their fused tensors.
  read("phi3");
  const auto phi = SafetensorsCheckpoint(dir.file("phi3") + "/model.safetensors").names();
  EXPECT_NE(std::find(phi.begin(), phi.end(), "model.layers.0.self_attn.qkv_proj.weight"),
            phi.end());
  EXPECT_NE(std::find(phi.begin(), phi.end(), "model.layers.0.mlp.gate_up_proj.weight"), phi.end());
}

nlohmann::json llama_json() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"vocab_size", 32},
          {"hidden_size", 16},
          {"num_hidden_layers", 1},
          {"num_attention_heads", 2},
          {"intermediate_size", 32}};
}

std::string config_error(const nlohmann::json& j) {
  try {
    LlamaConfig::from_hf_json(j, "config.json");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

TEST(ArchitectureConfig, RefusesWhatItDoesNotImplement) {
  auto j = llama_json();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_EQ(config_error(j),
            "config.json: key 'rope_scaling': type 'yarn' is not supported (supported: linear, "
            "llama3)");
  j = llama_json();
  j["rope_scaling"] = {{"type", "longrope"}, {"long_factor", {1.0}}};
  EXPECT_NE(config_error(j).find("type 'longrope' is not supported"), std::string::npos);
  j = llama_json();
  j["num_experts"] = 8;
  EXPECT_NE(config_error(j).find("key 'num_experts': is not supported"), std::string::npos);
  j = llama_json();
  j["hidden_act"] = "relu";
  EXPECT_NE(config_error(j).find("key 'hidden_act': activation 'relu'"), std::string::npos);
  j = llama_json();
  j["mlp_bias"] = true;
  EXPECT_NE(config_error(j).find("mlp_bias"), std::string::npos);
  j = llama_json();
  j["architectures"] = {"MixtralForCausalLM"};
  EXPECT_NE(config_error(j).find("unsupported architecture 'MixtralForCausalLM'"),
            std::string::npos);
  j = llama_json();
  j["architectures"] = {"Qwen2ForCausalLM"};
  j["use_sliding_window"] = true;
  EXPECT_NE(config_error(j).find("use_sliding_window"), std::string::npos);
  // Inert keys and switched-off features are accepted.
  j = llama_json();
  j["torch_dtype"] = "bfloat16";
  j["rope_scaling"] = nullptr;
  j["attention_dropout"] = 0.0;
  EXPECT_EQ(config_error(j), "");
}

TEST(ArchitectureConfig, Llama3RopeScalingFollowsMetasRule) {
  // Three bands of frequencies (transformers' _compute_llama3_parameters): long wavelengths
  // divided by the factor, short ones kept, the middle interpolated.
  auto j = llama_json();
  j["hidden_size"] = 256;
  j["num_attention_heads"] = 2;  // Dh = 128
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 32.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  const auto c = LlamaConfig::from_hf_json(j, "config.json");
  auto plain = c;
  plain.rope_scaling({});
  const auto scaled = c.rope_inv_freq(), base = plain.rope_inv_freq();
  const double pi = std::acos(-1.0);
  int kept = 0, divided = 0, between = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    const double wavelen = 2 * pi / base[i];
    if (wavelen < 8192 / 4.0) {
      EXPECT_DOUBLE_EQ(scaled[i], base[i]);
      ++kept;
    } else if (wavelen > 8192) {
      EXPECT_DOUBLE_EQ(scaled[i], base[i] / 32);
      ++divided;
    } else {
      EXPECT_LT(scaled[i], base[i]);
      EXPECT_GT(scaled[i], base[i] / 32);
      ++between;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(between, 0);
}

TEST(ArchitectureLoad, ExtraTensorInTheFileIsAnError) {
  test::TempDir dir;
  convert_gguf_to_hf(kDir + "qwen2.gguf", dir.file("hf"));
  auto tensors =
      read_llama_weights(dir.file("hf"), read_llama_config(dir.file("hf")), torch::kFloat32);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (auto& [name, t] : tensors) named.emplace_back("model." + name, t);
  named.emplace_back("model.layers.0.self_attn.q_norm.weight", torch::ones({8}));
  save_safetensors(dir.file("hf") + "/model.safetensors", named);
  try {
    load_llama(LlamaLoadOptions(dir.file("hf")));
    FAIL() << "expected a ModelError";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'model.layers.0.self_attn.q_norm.weight' is not "
                                         "part of a qwen2 model"),
              std::string::npos)
        << e.what();
  }
}

TEST(ArchitectureLoad, LoadsWithoutAFloat32Copy) {
  // The weights are allocated in the run's dtype and filled in place.
  auto model = load_llama(LlamaLoadOptions(kDir + "qwen3.gguf").dtype(torch::kBFloat16));
  for (const auto& p : model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
}

}  // namespace
}  // namespace coco::llm

namespace coco::llm {
namespace {

TEST(ArchitectureLoad, EveryArchitectureTakesLoRAOnEveryProjection) {
  for (const std::string name : {"llama3", "qwen2", "qwen3", "phi3", "gemma2"}) {
    auto model = load_llama(LlamaLoadOptions(kDir + name + ".gguf"));
    const auto adapted =
        attach_lora(*model, LoRAOptions().targets({"q", "k", "v", "o", "gate", "up", "down"}));
    EXPECT_EQ(adapted.size(), 7u * static_cast<size_t>(model->config().num_layers())) << name;
  }
}

// Activation checkpointing recomputes each block in the backward pass: the same loss and the
// same gradients (LoRA dropout replayed), on an architecture with every optional part.
TEST(ActivationCheckpointing, SameGradientsAsStoredActivations) {
  for (const std::string name : {"gemma2", "qwen3"}) {
    auto model = load_llama(LlamaLoadOptions(kDir + name + ".gguf"));
    attach_lora(*model, LoRAOptions().targets({"q", "v", "down"}).dropout(0.2));
    model->train();
    const auto d = model->config().hidden_size();
    torch::manual_seed(3);
    const auto embeds = torch::randn({2, 7, d}).requires_grad_(true);
    const auto mask = torch::tensor({{1, 1, 1, 1, 1, 1, 1}, {0, 0, 1, 1, 1, 1, 1}});
    auto grads = [&](bool checkpoint) {
      for (auto& p : lora_parameters(*model)) p.mutable_grad() = torch::Tensor();
      embeds.mutable_grad() = torch::Tensor();
      torch::manual_seed(11);  // the same dropout masks in both runs
      LlamaInput in;
      in.inputs_embeds = embeds;
      in.attention_mask = mask;
      in.checkpoint_layers = checkpoint;
      const auto loss = model->run(in).hidden.pow(2).mean();
      loss.backward();
      std::vector<torch::Tensor> g = {loss.detach(), embeds.grad().clone()};
      for (auto& p : lora_parameters(*model)) g.push_back(p.grad().clone());
      return g;
    };
    const auto stored = grads(false), recomputed = grads(true);
    ASSERT_EQ(stored.size(), recomputed.size());
    for (size_t i = 0; i < stored.size(); ++i) {
      EXPECT_TRUE(torch::allclose(stored[i], recomputed[i], 1e-5, 1e-7)) << name << " tensor " << i;
    }
    EXPECT_GT(stored.back().abs().sum().item<double>(), 0) << "LoRA learns";
  }
}

}  // namespace
}  // namespace coco::llm
