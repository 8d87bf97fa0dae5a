// SentencePiece tokenizer: llama.cpp's own test vectors for the Llama vocabulary (100%), the
// stories260K vocabulary, batched encoding, and broken vocabularies. BPE: tokenizer_bpe_test.cpp.
#include "coco/llm/tokenizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/llm/gguf.h"
#include "coco/llm/spm_vocab.h"
#include "llm_test_util.h"

namespace coco::llm {
namespace {

using test::join;
using test::read_vocab_cases;

TEST(SpmTokenizer, LlamaSpmVocabMatchesLlamaCppVectors) {
  COCO_REQUIRE_MODEL(path, "llama-spm-vocab/ggml-vocab-llama-spm.gguf");
  const auto tok = Tokenizer::from_file(path);
  EXPECT_EQ(tok.vocab_size(), 32000);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  const auto cases = read_vocab_cases(path + ".inp", path + ".out");
  ASSERT_EQ(cases.size(), 46u);
  int passed = 0;
  for (const auto& c : cases) {
    const auto got = join(tok.encode(c.text));
    EXPECT_EQ(got, c.expected) << "input: '" << c.text << "'";
    passed += got == c.expected;
  }
  std::cout << "[llama-spm vectors] " << passed << "/" << cases.size() << " passed\n";
}

TEST(SpmTokenizer, StoriesVocabRoundTrip) {
  COCO_REQUIRE_MODEL(path, "stories260K/stories260K.gguf");
  const auto tok = Tokenizer::from_file(path);
  EXPECT_EQ(tok.vocab_size(), 512);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.pad_id(), -1);
  EXPECT_EQ(tok.piece(3), "<0x00>");
  EXPECT_FALSE(tok.is_bpe());
  EXPECT_TRUE(tok.add_bos());  // SentencePiece takes BOS by default
  EXPECT_THROW(tok.encode("a", false, false, /*parse_special=*/true), ModelError);
  const std::string text = "Once upon a time, Lily saw a big red ball. Ünïcödé ☃!";
  const auto ids = tok.encode(text, true);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(tok.decode(ids), text);  // byte fallback covers what the 512 pieces do not
  EXPECT_TRUE(tok.encode("").empty());
  // Serialized proto reloads to the same tokenizer.
  const auto again = Tokenizer::from_model_proto(tok.model_proto(), "copy");
  EXPECT_EQ(again.encode(text), tok.encode(text));
}

TEST(SpmTokenizer, BatchPaddingAndTruncation) {
  COCO_REQUIRE_MODEL(path, "stories260K/stories260K.gguf");
  const auto tok = Tokenizer::from_file(path);
  const std::vector<std::string> texts = {"Once upon a time there was a cat", "Hi", ""};
  const auto a = tok.encode(texts[0], true), b = tok.encode(texts[1], true);
  BatchEncodeOptions o;
  auto batch = tok.encode_batch(texts, o);
  ASSERT_EQ(batch.input_ids.size(0), 3);
  EXPECT_EQ(batch.input_ids.size(1), static_cast<int64_t>(a.size()));
  EXPECT_EQ(batch.lengths, (std::vector<int64_t>{static_cast<int64_t>(a.size()),
                                                 static_cast<int64_t>(b.size()), 1}));
  EXPECT_EQ(batch.attention_mask.sum(1)[1].item<int64_t>(), static_cast<int64_t>(b.size()));
  EXPECT_EQ(batch.input_ids[1][0].item<int64_t>(), 1);
  EXPECT_EQ(batch.input_ids[1][static_cast<int64_t>(b.size())].item<int64_t>(),
            tok.eos_id());  // pad
  o.max_length = 4;
  o.add_eos = true;
  o.padding = PaddingSide::kLeft;
  o.pad_to_max_length = true;
  batch = tok.encode_batch(texts, o);
  EXPECT_EQ(batch.input_ids.sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(batch.input_ids[0][0].item<int64_t>(), 1);
  EXPECT_EQ(batch.input_ids[0][1].item<int64_t>(), a[1]);
  EXPECT_EQ(batch.input_ids[0][3].item<int64_t>(), 2);
  EXPECT_TRUE(torch::equal(batch.attention_mask[2], torch::tensor({0, 0, 1, 1}, torch::kLong)));
  o.truncate_left = true;
  batch = tok.encode_batch(texts, o);
  EXPECT_EQ(batch.input_ids[0][2].item<int64_t>(), a.back());
}

std::string vocab_gguf(bool with_bos, int64_t bos = 1, const std::string& model = "llama",
                       int add_bos = -1) {
  test::GgufBuilder g;
  g.kv_str("tokenizer.ggml.model", model);
  g.kv_str_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>",
                                           "\xe2\x96\x81"
                                           "a",
                                           "b"});
  g.kv_array<float>("tokenizer.ggml.scores", 6, {0, 0, 0, -1, -2});
  g.kv_array<int32_t>("tokenizer.ggml.token_type", 5, {2, 3, 3, 1, 1});
  if (with_bos) g.kv<uint32_t>("tokenizer.ggml.bos_token_id", 4, static_cast<uint32_t>(bos));
  g.kv<uint32_t>("tokenizer.ggml.eos_token_id", 4, 2);
  if (add_bos >= 0) g.kv<uint8_t>("tokenizer.ggml.add_bos_token", 7, static_cast<uint8_t>(add_bos));
  return g.bytes();
}

void expect_vocab_error(const std::string& path, const std::string& needle) {
  try {
    Tokenizer::from_file(path);
    ADD_FAILURE() << "no error";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(SpmTokenizer, SyntheticVocabAndBrokenOnes) {
  test::TempDir tmp;
  const auto tok = Tokenizer::from_file(tmp.write("ok.gguf", vocab_gguf(true)));
  EXPECT_EQ(tok.encode("a"), (std::vector<int64_t>{3}));
  EXPECT_EQ(tok.encode("ab"), (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(tok.add_bos());
  // tokenizer.ggml.add_bos_token turns the default off; encode(..., true) still adds BOS.
  const auto no_bos =
      Tokenizer::from_file(tmp.write("nobos_default.gguf", vocab_gguf(true, 1, "llama", 0)));
  EXPECT_FALSE(no_bos.add_bos());
  EXPECT_EQ(no_bos.encode("a", true), (std::vector<int64_t>{1, 3}));
  expect_vocab_error(tmp.write("nobos.gguf", vocab_gguf(false)),
                     "'tokenizer.ggml.bos_token_id' is missing");
  expect_vocab_error(tmp.write("badbos.gguf", vocab_gguf(true, 9)),
                     "id 9 is outside the vocabulary of 5 pieces");
  expect_vocab_error(tmp.write("bert.gguf", vocab_gguf(true, 1, "bert")),
                     "'tokenizer.ggml.model': unsupported tokenizer 'bert'");
  // A "gpt2" vocabulary goes to the BPE backend, which needs merges.
  expect_vocab_error(tmp.write("gpt2.gguf", vocab_gguf(true, 1, "gpt2")),
                     "'tokenizer.ggml.merges' is missing");
  expect_vocab_error(tmp.write("garbage.model", "not a protobuf at all"), "SentencePiece rejected");
}

}  // namespace
}  // namespace coco::llm
