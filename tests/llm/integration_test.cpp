// Integration tests on the real files in ../shared/models, through the library and the
// coco-llm tool: Karpathy's greedy sample, llama.cpp's tokenizer vectors, GGUF vs converted
// safetensors, embeddings, and one clear line + non-zero exit for broken inputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "coco/common/error.h"
#include "coco/llm/gguf.h"
#include "coco/llm/llama_convert.h"
#include "coco/llm/llama_loader.h"
#include "coco/llm/safetensors.h"
#include "coco/llm/tokenizer.h"
#include "llm_test_util.h"

namespace coco::llm {
namespace {

using test::run_tool;

const char* kStories = "stories260K/stories260K.gguf";
const char* kSample =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park. One day, she saw a big, red ball.";

// A NaN in a weight (the last norm of stories260K) is named where the file is read, not
// found later as a diverged loss.
TEST(LlmIntegration, ANaNWeightIsNamedWhereTheFileIsRead) {
  COCO_REQUIRE_MODEL(path, kStories);
  test::TempDir tmp;
  const std::string broken = tmp.path() + "/broken.gguf";
  std::filesystem::copy_file(path, broken);
  const GgufTensorInfo* norm = GgufFile(path).find_tensor("output_norm.weight");
  ASSERT_NE(norm, nullptr);
  ASSERT_EQ(norm->type, GgmlType::kF32);
  {
    std::fstream f(broken, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(norm->offset + 3 * sizeof(float)));
    const float nan = std::numeric_limits<float>::quiet_NaN();
    f.write(reinterpret_cast<const char*>(&nan), sizeof nan);
  }
  try {
    load_llama(LlamaLoadOptions(broken));
    ADD_FAILURE() << "no error";
  } catch (const ModelError& e) {
    EXPECT_EQ(std::string(e.what()), broken +
                                         ": tensor 'output_norm.weight' holds 1 NaN value "
                                         "(the first at flat index 3); the file is damaged");
  }
}

TEST(LlmIntegration, GenerateWritesKarpathysSample) {
  COCO_REQUIRE_MODEL(path, kStories);
  const auto r = run_tool("generate --model '" + path + "' --prompt '' --max-tokens 60");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(kSample, 0), 0u) << r.out;
}

TEST(LlmIntegration, TokenizeToolReproducesLlamaCppVectors) {
  COCO_REQUIRE_MODEL(path, "llama-spm-vocab/ggml-vocab-llama-spm.gguf");
  const std::string inp = test::read_bytes(path + ".inp");
  std::istringstream out_lines(test::read_bytes(path + ".out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  test::TempDir tmp;
  int total = 0, passed = 0;
  for (size_t start = 0, end; (end = inp.find(sep, start)) != std::string::npos;
       start = end + sep.size()) {
    const std::string in_file =
        tmp.write("in" + std::to_string(total), inp.substr(start, end - start));
    std::string expected;
    std::getline(out_lines, expected);
    expected.erase(0, expected.find_first_not_of(' ') == std::string::npos
                          ? expected.size()
                          : expected.find_first_not_of(' '));
    const auto r = run_tool("tokenize --whole --model '" + path + "'", in_file);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, expected + "\n") << "case " << total;
    passed += r.out == expected + "\n";
    ++total;
  }
  EXPECT_EQ(total, 46);
  std::cout << "[coco-llm tokenize] " << passed << "/" << total
            << " llama.cpp vectors reproduced\n";
  // Line mode: one output line per input line; --bos prepends 1.
  const auto r = run_tool("tokenize --bos --model '" + path + "'",
                          tmp.write("lines", "Hello world\n Hello world\n"));
  EXPECT_EQ(r.out, "1 15043 3186\n1 29871 15043 3186\n");
}

TEST(LlmIntegration, ConvertedSafetensorsGiveTheSameHiddenStates) {
  COCO_REQUIRE_MODEL(path, kStories);
  test::TempDir tmp;
  const auto r = run_tool("convert --model '" + path + "' --out '" + tmp.file("hf") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(std::filesystem::exists(tmp.file("hf/config.json")));
  auto gguf = load_llama(LlamaLoadOptions(path));
  auto hf = load_llama(LlamaLoadOptions(tmp.file("hf")));
  EXPECT_EQ(gguf->config().rope_pairing(), RopePairing::kAdjacent);
  EXPECT_EQ(hf->config().rope_pairing(), RopePairing::kHalf);
  const auto tok = Tokenizer::from_file(path);
  const auto tok_hf = Tokenizer::from_file(tmp.file("hf"));
  const std::vector<std::string> texts = {"Once upon a time, there was a dog.",
                                          "Tom and Sue played in the big park all day."};
  const auto batch = tok.encode_batch(texts);
  EXPECT_TRUE(torch::equal(tok_hf.encode_batch(texts).input_ids, batch.input_ids));
  torch::NoGradGuard g;
  const auto a = gguf->run(LlamaInput{batch.input_ids, {}, batch.attention_mask, {}, 0, true});
  const auto b = hf->run(LlamaInput{batch.input_ids, {}, batch.attention_mask, {}, 0, true});
  const auto diff = (a.hidden - b.hidden).abs().max().item<float>();
  std::cout << "[convert] max |hidden_gguf - hidden_safetensors| = " << diff << "\n";
  EXPECT_LE(diff, 1e-5f);
  EXPECT_LE((a.logits - b.logits).abs().max().item<float>(), 1e-4f);
  // The test has teeth: the permuted weights under the wrong (adjacent) pairing differ.
  auto wrong_cfg = hf->config();
  wrong_cfg.rope_pairing(RopePairing::kAdjacent);
  LlamaModel wrong(wrong_cfg);
  auto dst = wrong->named_parameters();
  for (const auto& p : hf->named_parameters()) dst[p.key()].copy_(p.value());
  const auto w = wrong->run(LlamaInput{batch.input_ids, {}, batch.attention_mask, {}, 0, false});
  EXPECT_GT((a.hidden - w.hidden).abs().max().item<float>(), 1e-2f);
}

TEST(LlmIntegration, LibraryGreedyMatchesSampleAndBf16Runs) {
  COCO_REQUIRE_MODEL(path, kStories);
  const auto tok = Tokenizer::from_file(path);
  auto model = load_llama(LlamaLoadOptions(path));
  const auto ids = model->generate_greedy({tok.bos_id()}, 40, tok.eos_id());
  EXPECT_EQ(tok.decode(ids).rfind("Once upon a time, there was a little girl named Lily.", 0), 0u);
  auto bf = load_llama(LlamaLoadOptions(path).dtype(torch::kBFloat16));
  const auto x = torch::tensor(tok.encode("Once upon a time", true)).unsqueeze(0);
  torch::NoGradGuard g;
  const auto h32 = model->run(LlamaInput{x, {}, {}, {}, 0, false}).hidden;
  const auto h16 = bf->run(LlamaInput{x, {}, {}, {}, 0, false}).hidden.to(torch::kFloat32);
  EXPECT_LT((h32 - h16).abs().max().item<float>() / h32.abs().max().item<float>(), 0.1f);
}

TEST(LlmIntegration, EmbedWritesOneVectorPerItem) {
  COCO_REQUIRE_MODEL(path, kStories);
  test::TempDir tmp;
  const auto items = tmp.write("items.tsv",
                               "item_id\traw_id\ttitle\tbrand\tcategories\n"
                               "1\tA\tRed nail polish\tOPI\tMakeup\n"
                               "3\tB\tShampoo for dry hair, 12 oz\tX\tHair\n");
  for (const char* pooling : {"mean", "last"}) {
    const auto r = run_tool(std::string("embed --pooling ") + pooling + " --model '" + path +
                            "' --items '" + items + "' --out '" + tmp.file("e.safetensors") + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    SafetensorsFile f(tmp.file("e.safetensors"));
    const auto e = f.load("embeddings");
    EXPECT_EQ(e.sizes(), (std::vector<int64_t>{4, 64}));
    EXPECT_EQ(e[0].abs().sum().item<float>(), 0.0f);
    EXPECT_EQ(e[2].abs().sum().item<float>(), 0.0f);
    EXPECT_GT(e[1].abs().sum().item<float>(), 0.0f);
    // Row 3 equals the pooled state of the title encoded alone.
    const auto tok = Tokenizer::from_file(path);
    auto model = load_llama(LlamaLoadOptions(path));
    torch::NoGradGuard g;
    const auto h =
        model
            ->run(LlamaInput{
                torch::tensor(tok.encode("Shampoo for dry hair, 12 oz", true)).unsqueeze(0),
                {},
                {},
                {},
                0,
                false})
            .hidden[0];
    const auto ref = std::string(pooling) == "mean" ? h.mean(0) : h[h.size(0) - 1];
    EXPECT_TRUE(torch::allclose(e[3], ref, 1e-5, 1e-5)) << pooling;
  }
}

void expect_one_line_failure(const std::string& args, int code, const std::string& needle) {
  const auto r = run_tool(args);
  EXPECT_EQ(r.exit_code, code) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("coco-llm: error: "), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST(LlmIntegration, BrokenInputsGiveOneLineAndExitCode) {
  COCO_REQUIRE_MODEL(path, kStories);
  test::TempDir tmp;
  const std::string bytes = test::read_bytes(path);
  const auto cut = tmp.write("cut.gguf", bytes.substr(0, 5000));
  expect_one_line_failure("generate --model '" + cut + "' --max-tokens 2 --log-level off",
                          kExitModel, "file ends while reading");
  const auto data_cut = tmp.write("cut2.gguf", bytes.substr(0, bytes.size() - 100));
  expect_one_line_failure("info --model '" + data_cut + "' --log-level off", kExitModel,
                          "runs past the end of the file");
  // An unknown architecture.
  test::GgufBuilder g;
  g.kv_str("general.architecture", "falcon");
  expect_one_line_failure(
      "info --model '" + tmp.write("falcon.gguf", g.bytes()) + "'", kExitModel,
      "unsupported architecture 'falcon' (supported: llama, mistral, qwen2, qwen3, phi3, gemma2)");
  // A safetensors checkpoint whose header lies.
  std::filesystem::create_directories(tmp.file("hf"));
  std::ofstream(tmp.file("hf/config.json"))
      << R"({"architectures":["LlamaForCausalLM"],"vocab_size":8,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8})";
  std::string st;
  const std::string header =
      R"({"model.embed_tokens.weight":{"dtype":"F32","shape":[8,8],"data_offsets":[0,256]}})";
  test::GgufBuilder::put<uint64_t>(st, header.size());
  tmp.write("hf/model.safetensors", st + header + std::string(64, '\0'));
  expect_one_line_failure("generate --model '" + tmp.file("hf") + "' --log-level off", kExitModel,
                          "outside the data section");
  // An unknown HF architecture.
  std::ofstream(tmp.file("hf/config.json")) << R"({"architectures":["BertModel"]})";
  expect_one_line_failure("info --model '" + tmp.file("hf") + "'", kExitModel,
                          "unsupported architecture 'BertModel'");
  expect_one_line_failure("info --model '" + tmp.file("nope.gguf") + "'", kExitModel, "no such");
  // A Q4_K_M model with one tensor's type changed to IQ4_XS (same block, fewer bytes): `info`
  // reads it, loading the model names the tensor and its type.
  std::string iq = test::read_bytes(std::string(COCO_FIXTURES_DIR) + "/llm/arch/q4km.gguf");
  const std::string name = "blk.0.ffn_up.weight";
  const size_t at = iq.find(name) + name.size();
  uint32_t dims = 0;
  std::memcpy(&dims, iq.data() + at, 4);
  const uint32_t iq4_xs = 23;
  std::memcpy(&iq[at + 4 + 8 * dims], &iq4_xs, 4);
  const auto iq_path = tmp.write("iq4.gguf", iq);
  EXPECT_EQ(run_tool("info --model '" + iq_path + "'").exit_code, 0);
  expect_one_line_failure("generate --model '" + iq_path + "' --max-tokens 1 --log-level off",
                          kExitModel,
                          "GGUF tensor 'blk.0.ffn_up.weight': type IQ4_XS is not supported");
  // A truncated K-quant block: the Q4_K_M model without its last 100 bytes.
  const std::string q4km = test::read_bytes(std::string(COCO_FIXTURES_DIR) + "/llm/arch/q4km.gguf");
  expect_one_line_failure(
      "info --model '" + tmp.write("cut-q4km.gguf", q4km.substr(0, q4km.size() - 100)) + "'",
      kExitModel, "GGUF tensor 'blk.0.ffn_up.weight' (Q4_K [256, 256]): data at offset");
  // A Llama-3 config.json whose rope_scaling is one the decoder does not implement.
  std::filesystem::create_directories(tmp.file("yarn"));
  std::ofstream(tmp.file("yarn/config.json"))
      << R"({"architectures":["LlamaForCausalLM"],"vocab_size":8,"hidden_size":8,"num_hidden_layers":1,)"
      << R"("num_attention_heads":2,"intermediate_size":8,"rope_scaling":{"rope_type":"yarn","factor":4.0}})";
  expect_one_line_failure("info --model '" + tmp.file("yarn") + "'", kExitModel,
                          "key 'rope_scaling': type 'yarn' is not supported");
  // A tokenizer.json whose merges name a token that does not exist, and one with an unknown
  // pre-tokenizer.
  const std::string qwen = std::string(COCO_SHARED_DIR) + "/models/qwen-tokenizer/tokenizer.json";
  if (std::filesystem::exists(qwen)) {
    std::ifstream in(qwen);
    auto j = nlohmann::json::parse(in);
    j["model"]["merges"][5] = nlohmann::json::array({"\u0120", "no-such-token"});
    std::filesystem::create_directories(tmp.file("merges"));
    std::ofstream(tmp.file("merges/tokenizer.json")) << j.dump();
    expect_one_line_failure("tokenize --model '" + tmp.file("merges") + "'", kExitModel,
                            "model.merges[5]: 'no-such-token' is not a token of the vocabulary");
    j = nlohmann::json::parse(std::ifstream(qwen));
    j["pre_tokenizer"]["pretokenizers"][0]["type"] = "Whitespace";
    std::filesystem::create_directories(tmp.file("pre"));
    std::ofstream(tmp.file("pre/tokenizer.json")) << j.dump();
    expect_one_line_failure(
        "info --model '" + tmp.file("pre") + "'", kExitModel,
        "pre_tokenizer.pretokenizers[0].type: unknown pre-tokenizer 'Whitespace'");
  }
  // A vocabulary without a BOS id.
  test::GgufBuilder v;
  v.kv_str("tokenizer.ggml.model", "llama");
  v.kv_str_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a"});
  v.kv<uint32_t>("tokenizer.ggml.eos_token_id", 4, 2);
  expect_one_line_failure("tokenize --model '" + tmp.write("nobos.gguf", v.bytes()) + "'",
                          kExitModel, "'tokenizer.ggml.bos_token_id' is missing");
}

}  // namespace
}  // namespace coco::llm
