// ConfigNode: defaults written back, unknown keys, type and range errors with JSON paths.
#include "coco/config/config.h"

#include <gtest/gtest.h>

#include "coco/common/error.h"
#include "test_util.h"

namespace coco {
namespace {

TEST(Config, DefaultsAreWrittenBackIntoTheResolvedConfig) {
  Json j = Json::parse(R"({"train": {"lr": 0.01}})");
  ConfigNode root(j, "c.json");
  ConfigNode train = root.child("train");
  EXPECT_DOUBLE_EQ(train.get_double("lr", 1e-3), 0.01);
  EXPECT_EQ(train.get_int("epochs", 200), 200);
  train.finish();
  EXPECT_EQ(j["train"]["epochs"], 200);
}

TEST(Config, UnknownKeyNamesItsPath) {
  Json j = Json::parse(R"({"train": {"lr": 0.01, "lrr": 1}})");
  ConfigNode root(j, "c.json");
  ConfigNode train = root.child("train");
  train.get_double("lr", 1e-3);
  EXPECT_EQ(test::error_text<ConfigError>([&] { train.finish(); }),
            "c.json: config error at /train/lrr: unknown key (known keys here: lr)");
}

TEST(Config, TypeAndRangeErrorsNameThePathAndValue) {
  Json j = Json::parse(R"({"model": {"heads": 0, "name": 5, "p": 1.5, "kind": "x"}})");
  ConfigNode root(j, "c.json");
  ConfigNode m = root.child("model");
  EXPECT_EQ(test::error_text<ConfigError>([&] { m.get_int("heads", 1, 1); }),
            "c.json: config error at /model/heads: must be >= 1, got 0");
  EXPECT_EQ(test::error_text<ConfigError>([&] { m.get_string("name", ""); }),
            "c.json: config error at /model/name: expected a string, got 5");
  EXPECT_EQ(test::error_text<ConfigError>([&] { m.get_double("p", 0, 0, 1); }),
            "c.json: config error at /model/p: must be in [0, 1], got 1.5");
  EXPECT_EQ(test::error_text<ConfigError>([&] {
              m.get_choice("kind", "a", {"a", "b"});
            }),
            "c.json: config error at /model/kind: expected one of a, b, got \"x\"");
}

TEST(Config, OverridesParseJsonOrStrings) {
  Json j = Json::parse(R"({"train": {"lr": 0.01}})");
  apply_override(j, "train.lr=0.5");
  apply_override(j, "backbone.name=sasrec");
  apply_override(j, "eval.ks=[1,2]");
  EXPECT_DOUBLE_EQ(j["train"]["lr"].get<double>(), 0.5);
  EXPECT_EQ(j["backbone"]["name"], "sasrec");
  EXPECT_EQ(j["eval"]["ks"], Json::parse("[1,2]"));
  EXPECT_THROW(apply_override(j, "no_equals_sign"), ConfigError);
}

TEST(Config, SyntaxErrorNamesFileLineAndColumn) {
  test::TempDir dir;
  const auto path = dir.write("bad.json", "{\n  \"a\": 1,\n  \"b\": }\n");
  const std::string msg = test::error_text<ConfigError>([&] { read_json_file(path); });
  EXPECT_EQ(msg.rfind(path + ":3:8: invalid JSON", 0), 0u) << msg;
}

TEST(Config, OverrideMustBeUtf8) {  // found by fuzz/ config: the value reached dump() later
  Json j = Json::object();
  EXPECT_EQ(test::error_text<ConfigError>([&] { apply_override(j, "train.lr=\x93"); }),
            "--set \"train.lr=\xEF\xBF\xBD\": not valid UTF-8");
}

TEST(Config, NestingIsBounded) {
  test::TempDir dir;
  const std::string deep =
      "{\"a\":\n" + std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']') + "}";
  EXPECT_EQ(test::error_text<ConfigError>([&] { read_json_file(dir.write("deep.json", deep)); }),
            dir.file("deep.json") + ":2:" + std::to_string(kMaxJsonDepth) +
                ": invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  // Brackets inside strings do not count; kMaxJsonDepth levels are accepted.
  const std::string ok = "{\"s\": \"[[[\\\"[[\", \"a\": " + std::string(kMaxJsonDepth - 1, '[') +
                         std::string(kMaxJsonDepth - 1, ']') + "}";
  EXPECT_NO_THROW(read_json_file(dir.write("ok.json", ok)));
  // A number no type holds is an error without a position (found by fuzz/ safetensors).
  EXPECT_EQ(
      test::error_text<ConfigError>([&] { read_json_file(dir.write("n.json", "[1e999]")); }),
      dir.file("n.json") +
          ": invalid JSON: [json.exception.out_of_range.406] number overflow parsing '1e999'");
}

}  // namespace
}  // namespace coco
