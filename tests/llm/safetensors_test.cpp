// safetensors: round trip, sharded index, and headers that lie about offsets and sizes.
#include "coco/llm/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "coco/common/error.h"
#include "llm_test_util.h"

namespace coco::llm {
namespace {

using test::TempDir;

std::string file_with_header(const std::string& json, const std::string& data) {
  std::string s;
  test::GgufBuilder::put<uint64_t>(s, json.size());
  return s + json + data;
}

void expect_error(const std::string& path, const std::string& needle) {
  try {
    SafetensorsFile f(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const ModelError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(needle), std::string::npos) << what;
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

TEST(Safetensors, RoundTripsEveryDtypeWithMetadata) {
  TempDir tmp;
  const auto a = torch::randn({3, 5});
  const auto b = torch::randn({7}).to(torch::kFloat16);
  const auto c = torch::randn({2, 2, 2}).to(torch::kBFloat16);
  const auto i64 = torch::tensor(std::vector<int64_t>{-1, 0, int64_t{1} << 40});
  const auto i32 = torch::tensor({7, -3}, torch::kInt32);
  save_safetensors(tmp.file("x.safetensors"),
                   {{"a", a}, {"b", b}, {"c", c}, {"i64", i64}, {"i32", i32}}, {{"k", "v"}});
  SafetensorsFile f(tmp.file("x.safetensors"));
  EXPECT_EQ(f.entries().size(), 5u);
  EXPECT_TRUE(torch::equal(f.load("i64"), i64));
  EXPECT_TRUE(torch::equal(f.load("i32"), i32));
  EXPECT_EQ(f.metadata().at("k"), "v");
  EXPECT_TRUE(torch::equal(f.load("a"), a));
  EXPECT_TRUE(torch::equal(f.load("b"), b));
  EXPECT_TRUE(torch::equal(f.load("c"), c));
  EXPECT_THROW(f.load("d"), ModelError);
}

TEST(Safetensors, ShardedIndex) {
  TempDir tmp;
  const auto a = torch::randn({4}), b = torch::randn({2, 3});
  save_safetensors(tmp.file("model-00001-of-00002.safetensors"), {{"a", a}});
  save_safetensors(tmp.file("model-00002-of-00002.safetensors"), {{"b", b}});
  tmp.write("model.safetensors.index.json",
            R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                "b": "model-00002-of-00002.safetensors"}})");
  SafetensorsCheckpoint ck(tmp.file(""));
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(torch::equal(ck.load("b"), b));
  EXPECT_TRUE(torch::equal(ck.load("a"), a));
  tmp.write("model.safetensors.index.json",
            R"({"weight_map": {"zz": "model-00001-of-00002.safetensors"}})");
  EXPECT_THROW(SafetensorsCheckpoint{tmp.file("model.safetensors.index.json")}, ModelError);
}

TEST(Safetensors, RejectsHeadersThatLie) {
  TempDir tmp;
  const std::string data(16, '\0');
  expect_error(
      tmp.write("past.st", file_with_header(
                               R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data)),
      "outside the data section of 16 bytes");
  expect_error(
      tmp.write("size.st", file_with_header(
                               R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data)),
      "span 16 bytes, expected 12");
  expect_error(
      tmp.write("rev.st", file_with_header(
                              R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data)),
      "data_offsets [8, 0]");
  expect_error(tmp.write("dtype.st",
                         file_with_header(
                             R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", data)),
               "unsupported dtype \"F64\"");
  expect_error(tmp.write("json.st", file_with_header("{not json", data)), "invalid JSON");
  expect_error(
      tmp.write("neg.st", file_with_header(
                              R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", data)),
      "not a non-negative integer");
  expect_error(
      tmp.write(
          "huge.st",
          file_with_header(
              R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})",
              data)),
      "element count overflows");
  std::string len_lies;
  test::GgufBuilder::put<uint64_t>(len_lies, 1ull << 62);
  expect_error(tmp.write("len.st", len_lies + "{}"), "header length 4611686018427387904");
  expect_error(tmp.write("tiny.st", "abc"), "expected at least 8");
}

}  // namespace
}  // namespace coco::llm
