// The targets of the LLM side's readers: GGUF, the dequantisers, safetensors, tokenizers and
// LoRA adapters.
#include <fstream>
#include <sstream>

#include "coco/llm/gguf.h"
#include "coco/llm/llama_model.h"
#include "coco/llm/lora.h"
#include "coco/llm/safetensors.h"
#include "coco/llm/tokenizer.h"
#include "input.h"
#include "llm/ggml_quants.h"
#include "targets.h"

namespace coco::fuzz {
namespace {

const char* const kShard = "model-00001-of-00001.safetensors";

// A fixed text with special tokens, digits, non-ASCII, an emoji and whitespace runs.
const char* const kText = "Hello <s> <|endoftext|> wörld 1234 \xF0\x9F\x98\x80 it's\n\n\t  x";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

llm::LlamaModel tiny_llama() {
  llm::LlamaConfig c;
  c.vocab_size(16).hidden_size(8).num_layers(2).num_heads(2).num_kv_heads(1).intermediate_size(12);
  return llm::LlamaModel(c);
}

void use(const llm::Tokenizer& tokenizer) {
  (void)tokenizer.encode(kText, true, true, false);
  if (tokenizer.is_bpe()) (void)tokenizer.decode(tokenizer.encode(kText, false, false, true));
}

}  // namespace

void gguf(std::string_view input) {
  const std::string path = write_file("model.gguf", input);
  read_or_reject([&] {
    llm::GgufFile file(path);
    for (const auto& t : file.tensors()) (void)file.load(t.name);
  });
}

// The first byte picks the type (among those CoCo can load), the rest are its blocks.
void dequant(std::string_view input) {
  static const auto types = [] {
    std::vector<const llm::ggml::TypeTraits*> loadable;
    for (uint32_t id = 0; id < 64; ++id) {
      const auto* t = llm::ggml::type_traits(id);
      if (t && t->dequantize) loadable.push_back(t);
    }
    return loadable;
  }();
  if (input.empty()) return;
  const auto* type = types[static_cast<uint8_t>(input[0]) % types.size()];
  const int64_t blocks = static_cast<int64_t>(input.size() - 1) / type->bytes;
  std::vector<float> out(static_cast<size_t>(blocks * type->block));
  type->dequantize(reinterpret_cast<const uint8_t*>(input.data() + 1), out.data(), blocks);
}

// Without a line "----" the input is a model.safetensors file; with one, it is
// model.safetensors.index.json, the line, then the shard the index may name.
void safetensors(std::string_view input) {
  read_or_reject([&] {
    if (input.find("\n----\n") == std::string_view::npos) {
      llm::SafetensorsFile file(write_file("model.safetensors", input));
      for (const auto& [name, entry] : file.entries()) (void)file.load(name);
      return;
    }
    const auto parts = split_parts(input, 2);
    write_file(kShard, parts[1]);
    llm::SafetensorsCheckpoint checkpoint(write_file("model.safetensors.index.json", parts[0]));
    for (const auto& name : checkpoint.names()) (void)checkpoint.load(name);
  });
}

void safetensors_seeds(const std::string& dir) {
  const std::string path = (work_dir() / "seed.safetensors").string();
  llm::save_safetensors(path,
                        {{"embed.weight", torch::randn({4, 3})},
                         {"norm.weight", torch::ones({3}, torch::kBFloat16)},
                         {"bias", torch::arange(5).to(torch::kFloat16)}},
                        {{"format", "pt"}});
  const std::string file = read_bytes(path);
  std::ofstream(dir + "/single", std::ios::binary) << file;
  std::ofstream(dir + "/indexed", std::ios::binary)
      << R"({"metadata": {"total_size": 104}, "weight_map": {"embed.weight": ")" << kShard
      << R"(", "norm.weight": ")" << kShard << R"(", "bias": ")" << kShard << "\"}}\n----\n"
      << file;
}

void tokenizer_gguf(std::string_view input) {
  const std::string path = write_file("vocab.gguf", input);
  read_or_reject([&] { use(llm::Tokenizer::from_file(path)); });
}

void tokenizer_json(std::string_view input) {
  const std::string path = write_file("tokenizer.json", input);
  read_or_reject([&] { use(llm::Tokenizer::from_file(path)); });
}

void lora(std::string_view input) {
  const std::string path = write_file("adapter.safetensors", input);
  auto model = tiny_llama();
  read_or_reject([&] { (void)llm::load_lora(*model, path); });
}

void lora_seeds(const std::string& dir) {
  for (const auto& targets : {std::vector<std::string>{"q", "v"},
                              std::vector<std::string>{"q", "k", "v", "o", "up", "down"}}) {
    auto model = tiny_llama();
    const auto options = llm::LoRAOptions().rank(2).alpha(4).targets(targets);
    llm::attach_lora(*model, options);
    llm::save_lora(*model, dir + "/adapter-" + std::to_string(targets.size()), options);
  }
}

}  // namespace coco::fuzz
