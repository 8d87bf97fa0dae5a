// Byte-level BPE tokenizer: llama.cpp's vectors for four GGUF vocabularies and for Qwen2
// through its tokenizer.json (100%), goldens from @huggingface/tokenizers (JS), synthetic
// vocabularies for merges, splits, normalisers, added tokens and BOS rules, and every
// rejected input with the place it names.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "coco/common/error.h"
#include "coco/llm/gguf.h"
#include "coco/llm/llama_convert.h"
#include "coco/llm/tokenizer.h"
#include "llm_test_util.h"

namespace coco::llm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::join;
using test::read_vocab_cases;

// ---------------------------------------------------------------------------------------------
// Synthetic vocabularies

/// GPT-2's bytes_to_unicode, written out here independently of the library: printable
/// Latin-1 bytes stand for themselves, the other 68 bytes map to U+0100.. in byte order.
std::string byte_char(int b) {
  static const std::vector<std::string> map = [] {
    std::vector<std::string> m(256);
    int extra = 0;
    for (int i = 0; i < 256; ++i) {
      const bool printable = (i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE;
      const int cp = printable ? i : 256 + extra++;
      std::string s;
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
      m[static_cast<size_t>(i)] = s;
    }
    return m;
  }();
  return map[static_cast<size_t>(b)];
}

/// The byte-level form of `text` ("a b" → "aĠb").
std::string chars(const std::string& text) {
  std::string s;
  for (unsigned char c : text) s += byte_char(c);
  return s;
}

json byte_level(bool add_prefix_space = false, bool use_regex = false) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", add_prefix_space},
          {"trim_offsets", false},
          {"use_regex", use_regex}};
}

json split(const std::string& pattern, const std::string& behavior, bool invert = false,
           const char* kind = "Regex") {
  return {{"type", "Split"},
          {"pattern", {{kind, pattern}}},
          {"behavior", behavior},
          {"invert", invert}};
}

/// A tokenizer.json over the 256 byte characters (ids 0..255 in byte order) plus one token
/// per merge (raw-text pairs, e.g. {"a", " "}), ids from 256 in merge order.
json tiny_json(const std::vector<std::pair<std::string, std::string>>& merges,
               json pre_tokenizer = byte_level(), json normalizer = nullptr) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  json m = json::array();
  int next = 256;
  for (const auto& [a, b] : merges) {
    m.push_back(chars(a) + " " + chars(b));
    if (!vocab.contains(chars(a + b))) vocab[chars(a + b)] = next++;
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", json::array()},
          {"normalizer", normalizer},
          {"pre_tokenizer", pre_tokenizer},
          {"post_processor", nullptr},
          {"decoder", byte_level()},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", ""},
            {"end_of_word_suffix", ""},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", m}}}};
}

/// The id of a raw-text token of a tiny_json vocabulary.
int64_t id(const json& j, const std::string& text) {
  return j["model"]["vocab"].at(chars(text)).get<int64_t>();
}

std::vector<int64_t> ids(const json& j, const std::vector<std::string>& texts) {
  std::vector<int64_t> out;
  for (const auto& t : texts) out.push_back(id(j, t));
  return out;
}

/// Writes `j` as DIR/tokenizer.json (and `config` as tokenizer_config.json) and loads it.
Tokenizer load(const test::TempDir& tmp, const json& j, const json& config = nullptr,
               const std::string& sub = "tok") {
  fs::create_directories(tmp.file(sub));
  tmp.write(sub + "/tokenizer.json", j.dump());
  if (!config.is_null()) tmp.write(sub + "/tokenizer_config.json", config.dump());
  return Tokenizer::from_file(tmp.file(sub + "/tokenizer.json"));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ModelError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BpeTokenizer, MergesByRankLeftmostFirst) {
  test::TempDir tmp;
  // "bc" ranks before "ab": a|bc; the other way round: ab|c.
  json j = tiny_json({{"b", "c"}, {"a", "b"}});
  EXPECT_EQ(load(tmp, j).encode("abc"), ids(j, {"a", "bc"}));
  j = tiny_json({{"a", "b"}, {"b", "c"}});
  EXPECT_EQ(load(tmp, j).encode("abc"), ids(j, {"ab", "c"}));
  // Equal ranks (the same pair twice): the leftmost merges first.
  j = tiny_json({{"a", "a"}});
  EXPECT_EQ(load(tmp, j).encode("aaa"), ids(j, {"aa", "a"}));
  EXPECT_EQ(load(tmp, j).encode("aaaa"), ids(j, {"aa", "aa"}));
  // Merges build on merges.
  j = tiny_json({{"l", "l"}, {"h", "e"}, {"he", "ll"}, {"hell", "o"}});
  const auto tok = load(tmp, j);
  EXPECT_EQ(tok.encode("hello"), ids(j, {"hello"}));
  EXPECT_EQ(tok.encode("hellhello"), ids(j, {"hell", "hello"}));
  EXPECT_TRUE(tok.is_bpe());
  EXPECT_EQ(tok.vocab_size(), 260);
  EXPECT_EQ(tok.piece(id(j, "hello")), "hello");
  EXPECT_EQ(tok.bos_id(), -1);
  EXPECT_FALSE(tok.add_bos());
  EXPECT_EQ(tok.encode("hello", /*add_bos=*/true), ids(j, {"hello"}));
  EXPECT_THROW(tok.encode("hello", false, /*add_eos=*/true), ModelError);  // no EOS
  EXPECT_THROW(tok.model_proto(), ModelError);
}

TEST(BpeTokenizer, IgnoreMergesTakesWholeTokens) {
  test::TempDir tmp;
  json j = tiny_json({{"a", "b"}});
  j["model"]["vocab"][chars("abc")] = 257;  // a token no merge reaches
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(load(tmp, j).encode("abc"), (std::vector<int64_t>{257}));
  j["model"]["ignore_merges"] = false;
  EXPECT_EQ(load(tmp, j).encode("abc"), (std::vector<int64_t>{256, 'c'}));
}

TEST(BpeTokenizer, SplitBehaviours) {
  test::TempDir tmp;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"a", " "}, {" ", "b"}, {" ", " "}, {"a", "."}};
  const auto encode = [&](const json& split_step, const std::string& text) {
    const json j =
        tiny_json(merges, {{"type", "Sequence"}, {"pretokenizers", {split_step, byte_level()}}});
    return load(tmp, j).encode(text);
  };
  const json j = tiny_json(merges);
  EXPECT_EQ(encode(split(" ", "Isolated"), "a b"), ids(j, {"a", " ", "b"}));
  EXPECT_EQ(encode(split(" ", "MergedWithPrevious"), "a b"), ids(j, {"a ", "b"}));
  EXPECT_EQ(encode(split(" ", "MergedWithNext"), "a b"), ids(j, {"a", " b"}));
  EXPECT_EQ(encode(split(" ", "Removed"), "a b"), ids(j, {"a", "b"}));
  EXPECT_EQ(encode(split(" ", "Isolated"), "a  b"), ids(j, {"a", " ", " ", "b"}));
  EXPECT_EQ(encode(split(" ", "Contiguous"), "a  b"), ids(j, {"a", "  ", "b"}));
  EXPECT_EQ(encode(split(" ", "Removed", /*invert=*/true), "a b"), ids(j, {" "}));
  // A String pattern is literal; the same text as a Regex matches every character.
  EXPECT_EQ(encode(split(".", "Removed", false, "String"), "a.b"), ids(j, {"a", "b"}));
  EXPECT_EQ(encode(split(".", "Removed", false, "Regex"), "a.b"), (std::vector<int64_t>{}));
  // Without a split, merges run across the whole text.
  EXPECT_EQ(load(tmp, j).encode("a.b"), ids(j, {"a.", "b"}));
  // Unicode classes: \p{L}+ keeps letters of any script together, \p{N} splits digits.
  EXPECT_EQ(encode(split(R"(\p{N})", "Isolated"), "a12"), ids(j, {"a", "1", "2"}));
  const json digits = tiny_json(
      {{"1", "2"}},
      {{"type", "Sequence"},
       {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level()}}});
  EXPECT_EQ(load(tmp, digits).encode("12"), ids(digits, {"1", "2"}));
}

TEST(BpeTokenizer, ByteLevelPrefixSpaceAndGpt2Regex) {
  test::TempDir tmp;
  const std::vector<std::pair<std::string, std::string>> merges = {{" ", "a"}, {"a", " "}};
  json j = tiny_json(merges, byte_level(/*add_prefix_space=*/true, /*use_regex=*/false));
  EXPECT_EQ(load(tmp, j).encode("a"), ids(j, {" a"}));
  EXPECT_EQ(load(tmp, j).encode(" a"), ids(j, {" a"}));  // no second space
  // GPT-2's regex splits "a a" into "a", " a": the "a " merge cannot happen.
  j = tiny_json({{"a", " "}, {" ", "a"}}, byte_level(false, /*use_regex=*/true));
  EXPECT_EQ(load(tmp, j).encode("a a"), ids(j, {"a", " a"}));
  j = tiny_json({{"a", " "}, {" ", "a"}}, byte_level(false, false));
  EXPECT_EQ(load(tmp, j).encode("a a"), ids(j, {"a ", "a"}));
}

TEST(BpeTokenizer, EveryByteRoundTrips) {
  test::TempDir tmp;
  const auto tok = load(tmp, tiny_json({{"e", "r"}, {" ", "t"}}, byte_level(false, true)));
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::string text;
    // Valid UTF-8 of 1-4 byte characters, ASCII controls and spaces included.
    for (int k = 0; k < 40; ++k) {
      const auto draw = [&](uint32_t lo, uint32_t n) {
        return lo + static_cast<uint32_t>(rng() % n);
      };
      const uint32_t kind = draw(0, 4);
      const uint32_t cp = kind == 0   ? draw(0, 0x80)
                          : kind == 1 ? draw(0x80, 0x780)
                          : kind == 2 ? draw(0x800, 0xD000)  // below the surrogates
                                      : draw(0x10000, 0xFFFFF);
      std::string c;
      if (cp < 0x80) {
        c += static_cast<char>(cp);
      } else if (cp < 0x800) {
        c += {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
      } else if (cp < 0x10000) {
        c += {static_cast<char>(0xE0 | (cp >> 12)), static_cast<char>(0x80 | ((cp >> 6) & 0x3F)),
              static_cast<char>(0x80 | (cp & 0x3F))};
      } else {
        c += {static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
              static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
      }
      text += c;
    }
    ASSERT_EQ(tok.decode(tok.encode(text)), text) << "round " << round;
  }
  // A byte that starts no valid sequence becomes U+FFFD (its three bytes).
  EXPECT_EQ(tok.encode("a\xff"), (std::vector<int64_t>{'a', 0xEF, 0xBF, 0xBD}));
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_THROW(tok.decode({999}), ModelError);
}

TEST(BpeTokenizer, NormalizerForms) {
  test::TempDir tmp;
  const auto with = [&](json normalizer) {
    return load(tmp, tiny_json({}, byte_level(), normalizer));
  };
  const std::string fi = "\xEF\xAC\x81";                        // U+FB01 LATIN SMALL LIGATURE FI
  const std::string e_acute = "\xC3\xA9", e_nfd = "e\xCC\x81";  // é composed / decomposed
  EXPECT_EQ(with({{"type", "NFKC"}}).encode(fi), (std::vector<int64_t>{'f', 'i'}));
  EXPECT_EQ(with({{"type", "NFC"}}).encode(fi), (std::vector<int64_t>{0xEF, 0xAC, 0x81}));
  EXPECT_EQ(with({{"type", "NFC"}}).encode(e_nfd), (std::vector<int64_t>{0xC3, 0xA9}));
  EXPECT_EQ(with({{"type", "NFD"}}).encode(e_acute), (std::vector<int64_t>{'e', 0xCC, 0x81}));
  EXPECT_EQ(with({{"type", "NFKD"}}).encode(fi), (std::vector<int64_t>{'f', 'i'}));
  EXPECT_EQ(with(nullptr).encode(e_nfd), (std::vector<int64_t>{'e', 0xCC, 0x81}));
  const json seq = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFD"}}, {{"type", "NFC"}}}}};
  EXPECT_EQ(with(seq).encode(e_nfd), (std::vector<int64_t>{0xC3, 0xA9}));
}

TEST(BpeTokenizer, AddedTokens) {
  test::TempDir tmp;
  json j = tiny_json({}, byte_level(), {{"type", "NFKC"}});
  const auto added = [](int64_t i, const std::string& content, bool special, bool normalized,
                        bool lstrip = false, bool rstrip = false) {
    return json{{"id", i},           {"content", content}, {"single_word", false},
                {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", normalized},
                {"special", special}};
  };
  j["added_tokens"] = {added(256, "<|x|>", true, false),
                       added(257, "<u>", false, false),
                       added(258, "<r>", false, false, false, true),
                       added(259, "<l>", false, false, true, false),
                       added(260, "fi", false, true),
                       added(261, "ab", false, false)};
  const auto tok = load(tmp, j);
  EXPECT_EQ(tok.vocab_size(), 262);
  // Special tokens only with parse_special; the others always.
  EXPECT_EQ(tok.encode("a<|x|>"), (std::vector<int64_t>{'a', '<', '|', 'x', '|', '>'}));
  EXPECT_EQ(tok.encode("a<|x|>", false, false, /*parse_special=*/true),
            (std::vector<int64_t>{'a', 256}));
  EXPECT_EQ(tok.encode("a<u>b"), (std::vector<int64_t>{'a', 257, 'b'}));
  // rstrip / lstrip swallow the whitespace beside the token.
  EXPECT_EQ(tok.encode("<r>  c"), (std::vector<int64_t>{258, 'c'}));
  EXPECT_EQ(tok.encode("c  <l>"), (std::vector<int64_t>{'c', 259}));
  EXPECT_EQ(tok.encode("c  <u>"),
            (std::vector<int64_t>{'c', ' ', ' ', 257}));  // byte ids: "Ġ" is 32
  // A normalized token matches the normalised text (NFKC turns the ligature into "fi"); a raw
  // one only the text as written.
  EXPECT_EQ(tok.encode("\xEF\xAC\x81"), (std::vector<int64_t>{260}));
  EXPECT_EQ(tok.encode("ab"), (std::vector<int64_t>{261}));
  EXPECT_EQ(tok.encode("\xEF\xBD\x81"
                       "b"),
            (std::vector<int64_t>{'a', 'b'}));  // full-width a
  // Decoding: special tokens vanish, the others are their text.
  EXPECT_EQ(tok.decode({'a', 256, 257, 261}), "a<u>ab");
}

TEST(BpeTokenizer, BosFromTemplateAndConfig) {
  test::TempDir tmp;
  json j = tiny_json({});
  j["added_tokens"] = {
      {{"id", 256}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
      {{"id", 257}, {"content", "</s>"}, {"special", true}, {"normalized", false}}};
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair", json::array()},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {256}}, {"tokens", {"<s>"}}}}}}};
  auto tok = load(tmp, j, nullptr, "template");
  EXPECT_EQ(tok.bos_id(), 256);
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("a", true), (std::vector<int64_t>{256, 'a'}));
  EXPECT_EQ(tok.encode_batch({"a"}).input_ids[0][0].item<int64_t>(), 256);
  // tokenizer_config.json names EOS and may turn BOS off.
  tok = load(tmp, j,
             {{"add_bos_token", false}, {"eos_token", "</s>"}, {"bos_token", {{"content", "<s>"}}}},
             "config");
  EXPECT_FALSE(tok.add_bos());
  EXPECT_EQ(tok.bos_id(), 256);
  EXPECT_EQ(tok.eos_id(), 257);
  EXPECT_EQ(tok.encode("a", false, true), (std::vector<int64_t>{'a', 257}));
  EXPECT_EQ(tok.decode({256, 'a', 257}), "a");
  // Without a template, add_bos_token alone asks for BOS.
  j["post_processor"] = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}};
  tok = load(tmp, j, {{"add_bos_token", true}, {"bos_token", "<s>"}}, "plain");
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("a", true), (std::vector<int64_t>{256, 'a'}));
}

/// `mutate` applied to a good tokenizer.json (and config); the error must name the file and
/// `needle`.
void expect_json_error(const std::function<void(json&, json&)>& mutate, const std::string& needle,
                       bool config_file = false) {
  test::TempDir tmp;
  json j = tiny_json({{"a", "b"}}, {{"type", "Sequence"},
                                    {"pretokenizers", {split(" ", "Isolated"), byte_level()}}});
  json config = json::object();
  mutate(j, config);
  fs::create_directories(tmp.file("t"));
  const std::string path = tmp.write("t/tokenizer.json", j.dump());
  const std::string config_path = tmp.write("t/tokenizer_config.json", config.dump());
  const std::string e = error_of([&] { Tokenizer::from_file(tmp.file("t")); });
  EXPECT_NE(e.find(needle), std::string::npos) << e;
  EXPECT_EQ(e.rfind((config_file ? config_path : path) + ": ", 0), 0u) << e;
}

TEST(BpeTokenizer, RejectsBadTokenizerJson) {
  expect_json_error([](json& j, json&) { j["model"]["type"] = "WordPiece"; },
                    "model.type: expected 'BPE' (a byte-level BPE tokenizer), got 'WordPiece'");
  expect_json_error([](json& j, json&) { j["model"]["merges"].push_back("a zz"); },
                    "model.merges[1]: 'zz' is not a token of the vocabulary");
  expect_json_error(
      [](json& j, json&) {
        j["model"]["merges"].push_back(json::array({"a", "c"}));
      },
      "model.merges[1]: the merged 'ac' is not a token of the vocabulary");
  expect_json_error([](json& j, json&) { j["model"]["merges"].push_back("a b c"); },
                    "model.merges[1]: expected 'left right'");
  expect_json_error(
      [](json& j, json&) {
        j["normalizer"] = {{"type", "Lowercase"}};
      },
      "normalizer.type: unknown normalizer 'Lowercase' (supported: NFC, NFD, NFKC, NFKD, "
      "Sequence)");
  expect_json_error(
      [](json& j, json&) {
        j["normalizer"] = {{"type", "Sequence"},
                           {"normalizers", {{{"type", "NFC"}}, {{"type", "Strip"}}}}};
      },
      "normalizer.normalizers[1].type: unknown normalizer 'Strip'");
  expect_json_error(
      [](json& j, json&) { j["pre_tokenizer"]["pretokenizers"][1]["type"] = "Foo"; },
      "pre_tokenizer.pretokenizers[1].type: unknown pre-tokenizer 'Foo' (supported: Split, "
      "ByteLevel, Digits, Sequence)");
  expect_json_error(
      [](json& j, json&) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(a"; },
      "pre_tokenizer.pretokenizers[0].pattern.Regex: PCRE2 rejects the pattern at offset 2");
  expect_json_error(
      [](json& j, json&) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Dropped"; },
      "pre_tokenizer.pretokenizers[0].behavior: unknown split behavior 'Dropped'");
  expect_json_error([](json& j, json&) { j["pre_tokenizer"] = split(" ", "Isolated"); },
                    "pre_tokenizer: expected exactly one ByteLevel pre-tokenizer");
  expect_json_error([](json& j, json&) { j["model"]["byte_fallback"] = true; },
                    "model.byte_fallback: ");
  expect_json_error([](json& j, json&) { j["model"]["dropout"] = 0.1; },
                    "model.dropout: BPE dropout");
  expect_json_error(
      [](json& j, json&) {
        j["decoder"] = {{"type", "Metaspace"}};
      },
      "decoder.type: unknown decoder 'Metaspace' (supported: ByteLevel)");
  expect_json_error([](json& j, json&) { j["model"]["vocab"].erase(byte_char(7)); },
                    "model.vocab: no token has id 7");
  expect_json_error(
      [](json& j, json&) {
        j["truncation"] = {{"max_length", 8}};
      },
      "truncation: not supported");
  expect_json_error(
      [](json& j, json&) {
        j["added_tokens"] = {{{"id", 300}, {"content", "<x>"}, {"single_word", true}}};
      },
      "added_tokens[0].single_word: ");
  expect_json_error(
      [](json& j, json&) {
        j["post_processor"] = {
            {"type", "TemplateProcessing"},
            {"single", {{{"Sequence", {{"id", "A"}}}}, {{"SpecialToken", {{"id", "a"}}}}}}};
      },
      "post_processor.single[1]: special tokens after the text are not supported");
  expect_json_error(
      [](json& j, json&) {
        j["post_processor"] = {{"type", "BertProcessing"}};
      },
      "post_processor.type: unknown post-processor 'BertProcessing'");
  expect_json_error([](json&, json& c) { c["bos_token"] = "<nope>"; },
                    "bos_token: '<nope>' is not a token",
                    /*config_file=*/true);
  expect_json_error([](json&, json& c) { c["add_bos_token"] = true; },
                    "add_bos_token: true, but there is no bos_token", true);
  // Not JSON at all.
  test::TempDir tmp;
  const std::string path = tmp.write("tokenizer.json", "{\"model\": ");
  const std::string e = error_of([&] { Tokenizer::from_file(path); });
  EXPECT_EQ(e.rfind(path + ":1:11: invalid JSON: syntax error", 0), 0u) << e;
}

// ---------------------------------------------------------------------------------------------
// Synthetic GGUF vocabularies (tokenizer.ggml.model = "gpt2")

std::string bpe_gguf(const std::vector<std::string>& merges, const std::string& pre, int bos = -1,
                     int add_bos = -1) {
  test::GgufBuilder g;
  g.kv_str("tokenizer.ggml.model", "gpt2");
  if (!pre.empty()) g.kv_str("tokenizer.ggml.pre", pre);
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_char(b));
  tokens.push_back(chars("ab"));
  tokens.push_back("<|end|>");
  g.kv_str_array("tokenizer.ggml.tokens", tokens);
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;  // control
  g.kv_array<int32_t>("tokenizer.ggml.token_type", 5, types);
  g.kv_str_array("tokenizer.ggml.merges", merges);
  g.kv<uint32_t>("tokenizer.ggml.eos_token_id", 4, 257);
  if (bos >= 0) g.kv<uint32_t>("tokenizer.ggml.bos_token_id", 4, static_cast<uint32_t>(bos));
  if (add_bos >= 0) g.kv<uint8_t>("tokenizer.ggml.add_bos_token", 7, static_cast<uint8_t>(add_bos));
  return g.bytes();
}

TEST(BpeTokenizer, GgufVocabularies) {
  test::TempDir tmp;
  auto tok = Tokenizer::from_file(tmp.write("ok.gguf", bpe_gguf({"a b"}, "gpt-2")));
  EXPECT_TRUE(tok.is_bpe());
  EXPECT_EQ(tok.vocab_size(), 258);
  EXPECT_EQ(tok.encode("ab a"), (std::vector<int64_t>{256, ' ', 'a'}));
  EXPECT_EQ(tok.bos_id(), -1);
  EXPECT_EQ(tok.eos_id(), 257);
  EXPECT_FALSE(tok.add_bos());
  // Control tokens are text unless parse_special; they decode to nothing.
  EXPECT_EQ(tok.encode("<|end|>").size(), 7u);
  EXPECT_EQ(tok.encode("<|end|>", false, false, true), (std::vector<int64_t>{257}));
  EXPECT_EQ(tok.decode({256, 257}), "ab");
  // llama3 takes BOS by default; tokenizer.ggml.add_bos_token overrides.
  tok = Tokenizer::from_file(tmp.write("l3.gguf", bpe_gguf({"a b"}, "llama-bpe", 257)));
  EXPECT_TRUE(tok.add_bos());
  EXPECT_EQ(tok.encode("ab", true), (std::vector<int64_t>{257, 256}));
  tok = Tokenizer::from_file(tmp.write("l3off.gguf", bpe_gguf({"a b"}, "llama-bpe", 257, 0)));
  EXPECT_FALSE(tok.add_bos());
  tok = Tokenizer::from_file(tmp.write("on.gguf", bpe_gguf({"a b"}, "qwen2", 257, 1)));
  EXPECT_TRUE(tok.add_bos());
  // No tokenizer.ggml.pre: llama.cpp's "default" (punctuation runs split off).
  tok = Tokenizer::from_file(tmp.write("nopre.gguf", bpe_gguf({"a b"}, "")));
  EXPECT_EQ(tok.encode("ab"), (std::vector<int64_t>{256}));
}

TEST(BpeTokenizer, RejectsBadGgufVocab) {
  test::TempDir tmp;
  const auto expect = [&](const std::string& name, const std::string& bytes,
                          const std::string& needle) {
    const std::string path = tmp.write(name, bytes);
    const std::string e = error_of([&] { Tokenizer::from_file(path); });
    EXPECT_EQ(e.rfind(path + ": GGUF key ", 0), 0u) << e;
    EXPECT_NE(e.find(needle), std::string::npos) << e;
  };
  expect("pre.gguf", bpe_gguf({"a b"}, "foo"),
         "'tokenizer.ggml.pre': unknown pre-tokenizer 'foo' (supported: default, llama3, ");
  expect("merge.gguf", bpe_gguf({"a b", "a zz"}, "gpt-2"),
         "'tokenizer.ggml.merges'[1]: 'zz' is not a token");
  expect("nosep.gguf", bpe_gguf({"ab"}, "gpt-2"),
         "'tokenizer.ggml.merges'[0]: expected 'left right', got 'ab'");
  expect("bos.gguf", bpe_gguf({"a b"}, "gpt-2", -1, 1),
         "'tokenizer.ggml.bos_token_id': the vocabulary asks for a BOS token");
  expect("bosrange.gguf", bpe_gguf({"a b"}, "gpt-2", 999),
         "id 999 is outside the vocabulary of 258 tokens");
}

// Every pre-tokenizer name the library knows (it lists them for an unknown one) compiles
// and loses nothing.
TEST(BpeTokenizer, EveryGgufPreTokenizerRoundTrips) {
  test::TempDir tmp;
  const std::string e =
      error_of([&] { Tokenizer::from_file(tmp.write("x.gguf", bpe_gguf({"a b"}, "?"))); });
  const auto open = e.find("(supported: ");
  ASSERT_NE(open, std::string::npos) << e;
  std::vector<std::string> names;
  std::stringstream list(e.substr(open + 12, e.rfind(')') - open - 12));
  for (std::string n; std::getline(list, n, ',');) names.push_back(n.substr(n[0] == ' ' ? 1 : 0));
  EXPECT_GE(names.size(), 30u);
  const std::string text =
      "Hello World's 12345 caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD\t\n\n  x!? <|end|> "
      "\xF0\x9F\x98\x80";
  for (const auto& name : names) {
    const auto tok = Tokenizer::from_file(tmp.write(name + ".gguf", bpe_gguf({"a b"}, name, 257)));
    const auto ids = tok.encode(text);
    EXPECT_EQ(tok.decode(ids), text) << name;
    EXPECT_GE(ids.size(), 10u) << name;
  }
}

// ---------------------------------------------------------------------------------------------
// llama.cpp's vectors for the real GGUF vocabularies

struct GgufVocab {
  const char* file;
  int64_t vocab_size;
};

void PrintTo(const GgufVocab& v, std::ostream* os) { *os << v.file; }

class BpeGgufVectors : public ::testing::TestWithParam<GgufVocab> {};

TEST_P(BpeGgufVectors, MatchLlamaCppAndRoundTrip) {
  COCO_REQUIRE_MODEL(path, std::string("bpe-vocab/") + GetParam().file);
  const auto tok = Tokenizer::from_file(path);
  EXPECT_TRUE(tok.is_bpe());
  EXPECT_EQ(tok.vocab_size(), GetParam().vocab_size);
  const auto cases = read_vocab_cases(path + ".inp", path + ".out");
  ASSERT_EQ(cases.size(), 46u);
  int passed = 0, round_trips = 0;
  for (const auto& c : cases) {
    const auto ids = tok.encode(c.text);  // llama.cpp's test: no BOS, parse_special off
    const auto got = join(ids);
    EXPECT_EQ(got, c.expected) << "input: '" << c.text << "'";
    passed += got == c.expected;
    const std::string back = tok.decode(ids);
    EXPECT_EQ(back, c.text) << "round trip of '" << c.text << "'";
    round_trips += back == c.text;
  }
  std::cout << "[" << GetParam().file << " vectors] " << passed << "/" << cases.size()
            << " passed, " << round_trips << " round trips\n";
  // The tokenizer.json + tokenizer_config.json that `coco-llm convert` writes for it.
  test::TempDir tmp;
  GgufFile file(path);
  EXPECT_EQ(convert_gguf_tokenizer(file, tmp.path()), "tokenizer.json");
  const auto hf = Tokenizer::from_file(tmp.path());
  EXPECT_EQ(hf.vocab_size(), tok.vocab_size());
  EXPECT_EQ(hf.bos_id(), tok.bos_id());
  EXPECT_EQ(hf.eos_id(), tok.eos_id());
  EXPECT_EQ(hf.add_bos(), tok.add_bos());
  for (const auto& c : cases) {
    EXPECT_EQ(hf.encode(c.text, true), tok.encode(c.text, true)) << "HF copy: '" << c.text << "'";
    EXPECT_EQ(hf.encode(c.text, false, false, true), tok.encode(c.text, false, false, true))
        << "HF copy, special tokens parsed: '" << c.text << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, BpeGgufVectors,
                         ::testing::Values(GgufVocab{"ggml-vocab-gpt-2.gguf", 50257},
                                           GgufVocab{"ggml-vocab-starcoder.gguf", 49152},
                                           GgufVocab{"ggml-vocab-deepseek-llm.gguf", 102400},
                                           GgufVocab{"ggml-vocab-falcon.gguf", 65024}),
                         [](const auto& param_info) {
                           std::string n = param_info.param.file;
                           n = n.substr(11, n.size() - 16);  // between "ggml-vocab-" and ".gguf"
                           for (auto& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// ---------------------------------------------------------------------------------------------
// Qwen2 through a folder holding only tokenizer.json + tokenizer_config.json

class QwenTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string src = test::shared_model("qwen-tokenizer/tokenizer.json");
    if (src.empty()) return;
    dir_ = new test::TempDir;
    fs::create_directories(dir_->file("qwen"));
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
      fs::copy_file(fs::path(src).parent_path() / name, dir_->file(std::string("qwen/") + name));
    tok_ = new Tokenizer(Tokenizer::from_file(dir_->file("qwen")));
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete dir_;
    tok_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!tok_)
      GTEST_SKIP() << "shared model qwen-tokenizer/tokenizer.json not found under " COCO_SHARED_DIR;
  }
  static std::string folder() { return dir_->file("qwen"); }
  static const Tokenizer& tok() { return *tok_; }

  void expect_vectors(const std::string& name) {
    const std::string base =
        std::string(COCO_SHARED_DIR) + "/models/qwen-tokenizer/ggml-vocab-" + name + ".gguf";
    const auto cases = read_vocab_cases(base + ".inp", base + ".out");
    ASSERT_EQ(cases.size(), 46u);
    int passed = 0;
    for (const auto& c : cases) {
      const auto ids = tok().encode(c.text);
      EXPECT_EQ(join(ids), c.expected) << "input: '" << c.text << "'";
      passed += join(ids) == c.expected;
      EXPECT_EQ(tok().decode(ids), c.text);
    }
    std::cout << "[" << name << " vectors via tokenizer.json] " << passed << "/" << cases.size()
              << " passed\n";
  }

 private:
  static inline test::TempDir* dir_ = nullptr;
  static inline Tokenizer* tok_ = nullptr;
};

TEST_F(QwenTokenizer, FactsAndNoBos) {
  EXPECT_TRUE(tok().is_bpe());
  EXPECT_EQ(tok().vocab_size(), 151669);  // 151,643 BPE tokens + 26 added
  EXPECT_EQ(tok().bos_id(), -1);          // tokenizer_config.json: bos_token null
  EXPECT_FALSE(tok().add_bos());
  EXPECT_EQ(tok().eos_id(), 151645);  // <|im_end|>
  EXPECT_EQ(tok().pad_id(), 151643);  // <|endoftext|>
  EXPECT_EQ(tok().unk_id(), -1);
  EXPECT_EQ(tok().piece(9707), "Hello");
  EXPECT_EQ(tok().piece(151644), "<|im_start|>");
  const auto ids = tok().encode("Hello world");
  EXPECT_EQ(tok().encode("Hello world", /*add_bos=*/true), ids);  // no BOS to add
  const auto batch = tok().encode_batch({"Hello world", "Hi"});
  EXPECT_EQ(batch.input_ids[0][0].item<int64_t>(), ids[0]);
  EXPECT_EQ(batch.input_ids[1][1].item<int64_t>(), 151643);  // padded with <|endoftext|>
  const std::string e = error_of([&] { tok().model_proto(); });
  EXPECT_NE(e.find("a byte-level BPE tokenizer has no SentencePiece model"), std::string::npos)
      << e;
}

// The GGUF for these vectors names pre-tokenizer "qwen2"; llama.cpp maps it to the regex of
// this tokenizer.json's Split (contractions written out case by case instead of (?i:...)),
// so the tokenizer.json pipeline must reproduce them as is.
TEST_F(QwenTokenizer, Qwen2VectorsFromTokenizerJson) { expect_vectors("qwen2"); }

// DeepSeek-R1-Distill-Qwen ships the Qwen2.5 vocabulary and merges with other added tokens;
// llama.cpp gives its "deepseek-r1-qwen" pre-tokenizer the qwen2 regex, and its .inp/.out
// files here equal the qwen2 ones (no special tokens in the texts). So the same
// tokenizer.json, unchanged, is the right reference for them.
TEST_F(QwenTokenizer, DeepseekR1QwenVectorsFromTokenizerJson) {
  expect_vectors("deepseek-r1-qwen");
}

// Goldens from @huggingface/tokenizers (JS): make_hf_goldens.mjs beside the JSON. That library
// matches added tokens, special ones included, so parse_special is on here.
TEST_F(QwenTokenizer, MatchesHuggingFaceJsGoldens) {
  const json goldens = json::parse(
      test::read_bytes(std::string(COCO_FIXTURES_DIR) + "/llm/tokenizers/qwen_hf_goldens.json"));
  const auto& cases = goldens.at("cases");
  ASSERT_GE(cases.size(), 20u);
  int passed = 0;
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    const auto expected = c.at("ids").get<std::vector<int64_t>>();
    const auto got = tok().encode(text, false, false, /*parse_special=*/true);
    EXPECT_EQ(got, expected) << "input: '" << text << "'";
    passed += got == expected;
  }
  std::cout << "[Qwen tokenizer.json vs @huggingface/tokenizers] " << passed << "/" << cases.size()
            << " passed\n";
  // NFC: decomposed and composed accents give the same ids.
  EXPECT_EQ(tok().encode("Cafe\xCC\x81"), tok().encode("Caf\xC3\xA9"));
  // Without parse_special "<|im_start|>" is text; "<think>" (not special) still matches.
  const auto plain = tok().encode("<|im_start|>user<think>");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 151644), 0);
  EXPECT_EQ(plain.back(), 151667);
  EXPECT_EQ(tok().decode(tok().encode("<|im_start|>user<|im_end|>", false, false, true)), "user");
}

TEST_F(QwenTokenizer, ModifiedCopyWithUnknownPreTokenizer) {
  test::TempDir tmp;
  json j = json::parse(test::read_bytes(folder() + "/tokenizer.json"));
  j["pre_tokenizer"]["pretokenizers"][1]["type"] = "Foo";
  const std::string path = tmp.write("tokenizer.json", j.dump());
  EXPECT_EQ(
      error_of([&] { Tokenizer::from_file(path); }),
      path +
          ": pre_tokenizer.pretokenizers[1].type: unknown pre-tokenizer 'Foo' (supported: Split, "
          "ByteLevel, Digits, Sequence)");
}

// ---------------------------------------------------------------------------------------------
// Through the coco-llm tool

// Through the tool, one process per input: the four BPE GGUFs, and the Qwen folder (its
// tokenizer.json) with the qwen2 and deepseek-r1-qwen vectors beside it.
struct ToolVectors {
  const char* model;    // under ../shared/models
  const char* vectors;  // .inp/.out prefix under ../shared/models
};

void PrintTo(const ToolVectors& v, std::ostream* os) { *os << v.vectors; }

class BpeIntegrationTool : public ::testing::TestWithParam<ToolVectors> {};

TEST_P(BpeIntegrationTool, TokenizeWholeReproducesLlamaCppVectors) {
  COCO_REQUIRE_MODEL(path, GetParam().model);
  COCO_REQUIRE_MODEL(inp, std::string(GetParam().vectors) + ".inp");
  const auto cases = read_vocab_cases(inp, inp.substr(0, inp.size() - 4) + ".out");
  test::TempDir tmp;
  int passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string in_file = tmp.write("in" + std::to_string(i), cases[i].text);
    const auto r = test::run_tool("tokenize --whole --model '" + path + "'", in_file);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, cases[i].expected + "\n") << "case " << i;
    passed += r.out == cases[i].expected + "\n";
  }
  EXPECT_EQ(cases.size(), 46u);
  std::cout << "[coco-llm tokenize, " << GetParam().vectors << "] " << passed << "/" << cases.size()
            << " llama.cpp vectors\n";
}

INSTANTIATE_TEST_SUITE_P(
    LlamaCpp, BpeIntegrationTool,
    ::testing::Values(
        ToolVectors{"bpe-vocab/ggml-vocab-gpt-2.gguf", "bpe-vocab/ggml-vocab-gpt-2.gguf"},
        ToolVectors{"bpe-vocab/ggml-vocab-starcoder.gguf", "bpe-vocab/ggml-vocab-starcoder.gguf"},
        ToolVectors{"bpe-vocab/ggml-vocab-deepseek-llm.gguf",
                    "bpe-vocab/ggml-vocab-deepseek-llm.gguf"},
        ToolVectors{"bpe-vocab/ggml-vocab-falcon.gguf", "bpe-vocab/ggml-vocab-falcon.gguf"},
        ToolVectors{"qwen-tokenizer", "qwen-tokenizer/ggml-vocab-qwen2.gguf"},
        ToolVectors{"qwen-tokenizer", "qwen-tokenizer/ggml-vocab-deepseek-r1-qwen.gguf"}),
    [](const auto& param_info) { return std::to_string(param_info.index); });

TEST(BpeIntegration, ToolOnAFolderWithOnlyTokenizerJson) {
  COCO_REQUIRE_MODEL(src, "qwen-tokenizer/tokenizer.json");
  test::TempDir tmp;
  fs::create_directories(tmp.file("qwen"));
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(fs::path(src).parent_path() / name, tmp.file(std::string("qwen/") + name));
  const std::string dir = tmp.file("qwen");
  // Line mode, --bos asked for but there is none: nothing is prepended.
  auto r = test::run_tool("tokenize --bos --model '" + dir + "'",
                          tmp.write("lines", "Hello world\n Hello world\n"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "9707 1879\n21927 1879\n");
  r = test::run_tool("info --model '" + dir + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "tokenizer: bpe\ntokenizer_vocab_size: 151669\nbos_id: -1\neos_id: 151645\nunk_id: -1\n"
            "pad_id: 151643\nadd_bos: no\n");
  // A broken copy: one line on stderr naming the file and the place, model exit code.
  json j = json::parse(test::read_bytes(dir + "/tokenizer.json"));
  j["model"]["type"] = "WordPiece";
  tmp.write("qwen/tokenizer.json", j.dump());
  r = test::run_tool("tokenize --model '" + dir + "'", tmp.file("lines"));
  EXPECT_EQ(r.exit_code, kExitModel);
  EXPECT_NE(r.err.find(dir + "/tokenizer.json: model.type: expected 'BPE'"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace coco::llm
