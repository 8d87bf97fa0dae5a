// GGUF tensor types: every type number of gguf-py in the header, dequantisation of the block
// formats bit-exact against gguf-py's goldens (tests/fixtures/llm/quants), loads into bf16 and of
// row ranges, and the errors for unsupported types, truncated data and ragged rows.
#include <c10/util/Half.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <random>
#include <sstream>

#include "coco/common/error.h"
#include "coco/llm/gguf.h"
#include "llm_test_util.h"

namespace coco::llm {
namespace {

using test::GgufBuilder;
using test::TempDir;

std::string quant_fixture(const std::string& name) {
  return std::string(COCO_FIXTURES_DIR) + "/llm/quants/" + name;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

/// The float32 gguf-py dequantised for the fixture tensor `name`.
torch::Tensor golden(const std::string& name) {
  const std::string bytes = test::read_bytes(quant_fixture(name + ".f32"));
  EXPECT_EQ(bytes.size(), 4u * 512 * 4) << name;
  auto t = torch::empty({4, 512}, torch::kFloat32);
  std::memcpy(t.data_ptr(), bytes.data(), std::min<size_t>(bytes.size(), t.nbytes()));
  return t;
}

/// Bitwise equality of two float32 tensors (tells -0 from 0 and compares NaN payloads).
bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.nbytes()) == 0;
}

/// The ModelError text of `f()`, or "" (with a failure) when it does not throw.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ModelError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ModelError";
  return "";
}

class GgufQuantType : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufQuantType, DequantisesBitExactlyLikeGgufPy) {
  GgufFile f(quant_fixture("quants.gguf"));
  const std::string name = GetParam();
  const GgufTensorInfo* t = f.find_tensor(name);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(ggml_type_name(static_cast<uint32_t>(t->type)), upper(name));
  EXPECT_EQ(t->shape(), (std::vector<int64_t>{4, 512}));
  const auto got = f.load(name);
  const auto want = golden(name);
  EXPECT_TRUE(same_bits(got, want))
      << name << ": max |diff| " << (got - want).abs().max().item<float>();
  EXPECT_TRUE(same_bits(f.load(name, torch::kFloat32), want));
}

TEST_P(GgufQuantType, LowPrecisionLoadEqualsFloat32LoadConverted) {
  GgufFile f(quant_fixture("quants.gguf"));
  const auto ref = f.load(GetParam());
  for (const auto dtype : {torch::kBFloat16, torch::kFloat16}) {
    const auto got = f.load(GetParam(), dtype);
    EXPECT_EQ(got.scalar_type(), dtype);
    EXPECT_TRUE(torch::equal(got, ref.to(dtype))) << dtype;
  }
}

TEST_P(GgufQuantType, LoadRowsEqualsNarrowOfLoad) {
  GgufFile f(quant_fixture("quants.gguf"));
  const auto ref = f.load(GetParam());
  EXPECT_TRUE(same_bits(f.load_rows(GetParam(), 1, 3, torch::kFloat32), ref.narrow(0, 1, 3)));
  EXPECT_TRUE(same_bits(f.load_rows(GetParam(), 3, 1, torch::kFloat32), ref.narrow(0, 3, 1)));
  EXPECT_TRUE(torch::equal(f.load_rows(GetParam(), 1, 2, torch::kBFloat16),
                           ref.narrow(0, 1, 2).to(torch::kBFloat16)));
  EXPECT_EQ(f.load_rows(GetParam(), 2, 0, torch::kFloat32).sizes().vec(),
            (std::vector<int64_t>{0, 512}));
}

INSTANTIATE_TEST_SUITE_P(Gguf, GgufQuantType,
                         ::testing::Values("f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1",
                                           "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"),
                         [](const auto& p) { return p.param; });

// Every type gguf-py lists (its GGML_QUANT_SIZES, written out by the fixture script) opens with
// the right name and byte size.
TEST(GgufQuant, HeaderAcceptsEveryGgufPyType) {
  std::ifstream in(quant_fixture("ggml_types.tsv"));
  ASSERT_TRUE(in) << quant_fixture("ggml_types.tsv");
  int types = 0;
  for (std::string line; std::getline(in, line); ++types) {
    std::istringstream row(line);
    uint32_t id = 0;
    std::string name;
    uint64_t block = 0, bytes = 0;
    row >> id >> name >> block >> bytes;
    SCOPED_TRACE(line);
    EXPECT_EQ(ggml_type_name(id), name);
    GgufBuilder g;
    g.tensor("w", {2 * block, 3}, id, std::string(6 * bytes, '\x11'));
    TempDir tmp;
    GgufFile f(tmp.write("t.gguf", g.bytes()));
    EXPECT_EQ(static_cast<uint32_t>(f.find_tensor("w")->type), id);
    EXPECT_EQ(f.find_tensor("w")->nbytes, 6 * bytes);
  }
  EXPECT_EQ(types, 31);
  EXPECT_EQ(ggml_type_name(4), "type 4");  // Q4_2, removed from ggml
}

TEST(GgufQuant, UnsupportedTypeOpensButLoadNamesTensorAndType) {
  const std::string path = quant_fixture("unsupported.gguf");
  GgufFile f(path);
  const GgufTensorInfo* t = f.find_tensor("iq2_xxs");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->type, GgmlType::kIQ2_XXS);
  EXPECT_EQ(t->nbytes, 4u * 2 * 66);
  EXPECT_TRUE(torch::equal(f.load("norm"), torch::arange(4, torch::kFloat32)));
  const std::string want = path +
                           ": GGUF tensor 'iq2_xxs': type IQ2_XXS is not supported (supported: "
                           "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, "
                           "Q6_K)";
  EXPECT_EQ(error_of([&] { f.load("iq2_xxs"); }), want);
  EXPECT_EQ(error_of([&] { f.load("iq2_xxs", torch::kBFloat16); }), want);
  EXPECT_EQ(error_of([&] { f.load_rows("iq2_xxs", 0, 1, torch::kFloat32); }), want);
}

// A file cut inside a tensor's data is refused at open, naming the first tensor that does not
// fit and how many of its bytes are there.
TEST(GgufQuant, TruncatedDataNamesTensorAndBytes) {
  const std::string bytes = test::read_bytes(quant_fixture("quants.gguf"));
  const GgufFile whole(quant_fixture("quants.gguf"));
  TempDir tmp;
  for (const std::string name : {"q4_k", "q6_k"}) {
    const GgufTensorInfo& t = *whole.find_tensor(name);
    const size_t cut = t.offset + 100;
    const std::string path = tmp.write("cut.gguf", bytes.substr(0, cut));
    const std::string what = error_of([&] { GgufFile f(path); });
    EXPECT_EQ(what, path + ": GGUF tensor '" + name + "' (" + upper(name) +
                        " [4, 512]): data at offset " + std::to_string(t.offset) +
                        " runs past the end of the file: " + std::to_string(t.nbytes) +
                        " bytes expected, 100 available");
  }
}

TEST(GgufQuant, RaggedRowsAndUnknownTypesRejectedAtOpen) {
  TempDir tmp;
  const auto open_error = [&](uint64_t ne0, uint32_t type) {
    GgufBuilder g;
    g.tensor("blk.0.ffn_down.weight", {ne0, 2}, type, std::string(4096, '\0'));
    const std::string path = tmp.write("bad.gguf", g.bytes());
    std::string what = error_of([&] { GgufFile f(path); });
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    return what;
  };
  EXPECT_NE(open_error(128, 12).find("tensor 'blk.0.ffn_down.weight': Q4_K row length 128 is not "
                                     "a multiple of 256 (the Q4_K block size)"),
            std::string::npos);
  EXPECT_NE(open_error(48, 20).find("IQ4_NL row length 48 is not a multiple of 32"),
            std::string::npos);
  EXPECT_NE(open_error(32, 5).find("tensor 'blk.0.ffn_down.weight': unknown ggml tensor type 5"),
            std::string::npos);
  EXPECT_NE(open_error(32, 36).find("unknown ggml tensor type 36"), std::string::npos);
}

// A tensor larger than one load chunk (4 Mi elements), read whole and as a row range that starts
// and ends inside blocks: Q8_0 with scale 1 dequantises to its int8 codes exactly.
TEST(GgufQuant, LoadsAcrossChunksAndPartialBlocks) {
  constexpr int64_t kBlocks = 140000;  // 4.48 M elements
  std::mt19937 rng(7);
  std::string raw;
  std::vector<float> want;
  for (int64_t b = 0; b < kBlocks; ++b) {
    GgufBuilder::put(raw, c10::Half(1.0f));
    for (int i = 0; i < 32; ++i) {
      const auto q = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
      raw.push_back(static_cast<char>(q));
      want.push_back(q);
    }
  }
  GgufBuilder g;
  g.tensor("v", {32 * kBlocks}, 8, raw);
  TempDir tmp;
  GgufFile f(tmp.write("big.gguf", g.bytes()));
  const auto ref = torch::from_blob(want.data(), {32 * kBlocks}, torch::kFloat32);
  EXPECT_TRUE(same_bits(f.load("v"), ref));
  EXPECT_TRUE(torch::equal(f.load("v", torch::kBFloat16), ref.to(torch::kBFloat16)));
  const int64_t begin = 1000003, rows = 3400000;  // crosses the chunk boundary at 4194304
  EXPECT_TRUE(
      same_bits(f.load_rows("v", begin, rows, torch::kFloat32), ref.narrow(0, begin, rows)));
  const std::string what = error_of([&] { f.load_rows("v", 10, 32 * kBlocks, torch::kFloat32); });
  EXPECT_NE(what.find("GGUF tensor 'v' of shape [4480000]: rows [10, 4480010) are out of range"),
            std::string::npos)
      << what;
}

}  // namespace
}  // namespace coco::llm
