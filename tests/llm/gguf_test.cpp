// GGUF reader: every metadata value type, tensor types, alignment, and rejection of broken
// files (truncated anywhere, lying sizes, unknown types) with one ModelError line.
#include "coco/llm/gguf.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/llm/llama_config.h"
#include "llm_test_util.h"

namespace coco::llm {
namespace {

using test::GgufBuilder;
using test::raw_bytes;
using test::TempDir;

TEST(Gguf, ReadsEveryMetadataType) {
  GgufBuilder g(2);
  g.kv<uint8_t>("u8", 0, 200);
  g.kv<int8_t>("i8", 1, -5);
  g.kv<uint16_t>("u16", 2, 60000);
  g.kv<int16_t>("i16", 3, -30000);
  g.kv<uint32_t>("u32", 4, 4000000000u);
  g.kv<int32_t>("i32", 5, -2000000000);
  g.kv<float>("f32", 6, 1.5f);
  g.kv<uint8_t>("bool", 7, 1);
  g.kv_str("str", "héllo");
  g.kv_array<int32_t>("arr", 5, {1, -2, 3});
  g.kv_str_array("strs", {"a", "", "ccc"});
  g.kv<uint64_t>("u64", 10, 1ull << 40);
  g.kv<int64_t>("i64", 11, -(1ll << 40));
  g.kv<double>("f64", 12, 0.25);
  TempDir tmp;
  GgufFile f(tmp.write("m.gguf", g.bytes()));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.at("u8").get<int>(), 200);
  EXPECT_EQ(f.at("i8").get<int>(), -5);
  EXPECT_EQ(f.at("u16").get<int>(), 60000);
  EXPECT_EQ(f.at("i16").get<int>(), -30000);
  EXPECT_EQ(f.get_int("u32"), 4000000000ll);
  EXPECT_EQ(f.get_int("i32"), -2000000000ll);
  EXPECT_FLOAT_EQ(f.at("f32").get<float>(), 1.5f);
  EXPECT_TRUE(f.at("bool").get<bool>());
  EXPECT_EQ(f.get_string("str"), "héllo");
  EXPECT_EQ(f.at("arr"), nlohmann::json({1, -2, 3}));
  EXPECT_EQ(f.metadata().at("arr").array_type, GgufValueType::kInt32);
  EXPECT_EQ(f.at("strs"), nlohmann::json({"a", "", "ccc"}));
  EXPECT_EQ(f.get_int("u64"), 1ll << 40);
  EXPECT_EQ(f.get_int("i64"), -(1ll << 40));
  EXPECT_DOUBLE_EQ(f.at("f64").get<double>(), 0.25);
  EXPECT_THROW(f.get_int("str"), ModelError);
  EXPECT_THROW(f.at("nope"), ModelError);
}

TEST(Gguf, LoadsF32F16Bf16AndQ8_0) {
  const auto ref = torch::linspace(-2, 2, 64).reshape({2, 32});  // [ne1=2, ne0=32]
  std::vector<float> f32(ref.data_ptr<float>(), ref.data_ptr<float>() + 64);
  std::vector<c10::Half> f16;
  std::vector<c10::BFloat16> bf16;
  for (float v : f32) {
    f16.emplace_back(v);
    bf16.emplace_back(v);
  }
  // Q8_0: per block of 32, d = max|x| / 127 (fp16), q = round(x / d).
  std::string q8;
  for (int blk = 0; blk < 2; ++blk) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::abs(f32[blk * 32 + i]));
    const c10::Half d(amax / 127.0f);
    GgufBuilder::put(q8, d);
    for (int i = 0; i < 32; ++i) {
      q8.push_back(static_cast<char>(
          static_cast<int8_t>(std::lround(f32[blk * 32 + i] / static_cast<float>(d)))));
    }
  }
  GgufBuilder g(3, 64);
  g.kv<uint32_t>("general.alignment", 4, 64);
  g.tensor("a", {32, 2}, 0, raw_bytes(f32));
  g.tensor("b", {32, 2}, 1, raw_bytes(f16));
  g.tensor("c", {32, 2}, 30, raw_bytes(bf16));
  g.tensor("d", {32, 2}, 8, q8);
  TempDir tmp;
  GgufFile f(tmp.write("t.gguf", g.bytes()));
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.find_tensor("a")->shape(), (std::vector<int64_t>{2, 32}));
  EXPECT_TRUE(torch::equal(f.load("a"), ref));
  EXPECT_TRUE(torch::allclose(f.load("b"), ref, 0, 2e-3));
  EXPECT_TRUE(torch::allclose(f.load("c"), ref, 0, 1e-2));
  EXPECT_TRUE(torch::allclose(f.load("d"), ref, 0, 2.0 / 127));
  EXPECT_THROW(f.load("zzz"), ModelError);
}

void expect_model_error(const std::string& path, const std::string& needle) {
  try {
    GgufFile f(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const ModelError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(needle), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find(path), std::string::npos) << what;
  }
}

TEST(Gguf, RejectsUnknownTensorTypeNamingTheTensor) {
  GgufBuilder g;
  g.tensor("blk.0.attn_q.weight", {32}, 77, std::string(144, '\0'));
  TempDir tmp;
  expect_model_error(tmp.write("t77.gguf", g.bytes()),
                     "tensor 'blk.0.attn_q.weight': unknown ggml tensor type 77");
}

TEST(Gguf, RejectsLyingHeaders) {
  TempDir tmp;
  {
    GgufBuilder g;
    g.tensor("w", {1000, 1000}, 0, std::string(16, '\0'));
    expect_model_error(tmp.write("short.gguf", g.bytes()), "runs past the end of the file");
  }
  {
    GgufBuilder g;
    std::string raw;
    GgufBuilder::put_str(raw, "k");
    GgufBuilder::put<uint32_t>(raw, 8);
    GgufBuilder::put<uint64_t>(raw, 1ull << 60);  // string length far beyond the file
    g.kv_raw(raw);
    expect_model_error(tmp.write("str.gguf", g.bytes()), "has length 1152921504606846976");
  }
  {
    GgufBuilder g;
    std::string raw;
    GgufBuilder::put_str(raw, "arr");
    GgufBuilder::put<uint32_t>(raw, 9);
    GgufBuilder::put<uint32_t>(raw, 4);
    GgufBuilder::put<uint64_t>(raw, 1ull << 50);
    g.kv_raw(raw);
    expect_model_error(tmp.write("arr.gguf", g.bytes()), "metadata key 'arr': array of");
  }
  {
    GgufBuilder g;
    g.kv<uint32_t>("x", 99, 0);
    expect_model_error(tmp.write("vt.gguf", g.bytes()), "unknown value type 99");
  }
  {
    GgufBuilder g;
    g.kv<uint32_t>("general.alignment", 4, 48);
    expect_model_error(tmp.write("al.gguf", g.bytes()), "general.alignment");
  }
  {
    GgufBuilder g(4);
    expect_model_error(tmp.write("v4.gguf", g.bytes()), "unsupported GGUF version 4");
  }
  expect_model_error(tmp.write("magic.gguf", "GGML1234567890123456789012"), "bad magic");
  {
    GgufBuilder g;
    g.tensor("w", {0, 4}, 0, "");
    expect_model_error(tmp.write("zero.gguf", g.bytes()), "dimension 0 is not positive");
  }
  {
    GgufBuilder g;
    g.tensor("w", {2, 2, 2, 2, 2}, 0, std::string(128, '\0'));
    expect_model_error(tmp.write("dims.gguf", g.bytes()), "5 dimensions");
  }
  {
    GgufBuilder g;
    g.tensor("w", {20}, 8, std::string(34, '\0'));
    expect_model_error(tmp.write("q8.gguf", g.bytes()), "not a multiple of 32");
  }
}

TEST(Gguf, RejectsNonLlamaArchitectureListingSupportedOnes) {
  GgufBuilder g;
  g.kv_str("general.architecture", "gpt2");
  TempDir tmp;
  GgufFile f(tmp.write("gpt2.gguf", g.bytes()));
  try {
    LlamaConfig::from_gguf(f);
    ADD_FAILURE() << "gpt2 accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("unsupported architecture 'gpt2' (supported: llama, "
                                         "mistral, qwen2, qwen3, phi3, gemma2)"),
              std::string::npos)
        << e.what();
  }
}

TEST(Gguf, RealStoriesHeader) {
  COCO_REQUIRE_MODEL(path, "stories260K/stories260K.gguf");
  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 19u);
  EXPECT_EQ(f.tensors().size(), 48u);
  EXPECT_EQ(f.find_tensor("token_embd.weight")->shape(), (std::vector<int64_t>{512, 64}));
  EXPECT_TRUE(torch::equal(f.load("output.weight"), f.load("token_embd.weight")));
  const auto c = LlamaConfig::from_gguf(f);
  EXPECT_EQ(c.hidden_size(), 64);
  EXPECT_EQ(c.num_layers(), 5);
  EXPECT_EQ(c.num_heads(), 8);
  EXPECT_EQ(c.num_kv_heads(), 4);
  EXPECT_EQ(c.intermediate_size(), 172);
  EXPECT_EQ(c.vocab_size(), 512);
  EXPECT_DOUBLE_EQ(c.rope_theta(), 10000.0);
  EXPECT_EQ(c.rope_pairing(), RopePairing::kAdjacent);
}

// A GGUF cut anywhere — inside the header or the tensor data — is one ModelError, never a
// crash or a huge allocation.
TEST(Gguf, TruncatedRealFileAlwaysModelError) {
  COCO_REQUIRE_MODEL(path, "stories260K/stories260K.gguf");
  const std::string bytes = test::read_bytes(path);
  TempDir tmp;
  const std::string cut = tmp.file("cut.gguf");
  std::vector<size_t> offsets;
  for (size_t n = 0; n < 12100; n += (n < 2000 ? 1 : 7)) offsets.push_back(n);  // header
  for (size_t n = 12100; n < bytes.size(); n += 9973) offsets.push_back(n);     // data
  offsets.push_back(bytes.size() - 1);
  for (size_t n : offsets) {
    { std::ofstream(cut, std::ios::binary | std::ios::trunc) << bytes.substr(0, n); }
    EXPECT_THROW(GgufFile{cut}, ModelError) << "cut at " << n;
  }
  EXPECT_NO_THROW(GgufFile{path});
}

}  // namespace
}  // namespace coco::llm
