// The tokenizer.ggml.* reads shared by the GGUF vocabularies (see gguf_vocab.h). Not the
// GGUF parser itself (gguf.cpp).
#include "gguf_vocab.h"

#include "coco/common/error.h"
#include "coco/llm/gguf.h"

namespace coco::llm {

std::string gguf_key_place(const GgufFile& f) { return f.path() + ": GGUF key "; }

std::string gguf_tokenizer_model(const GgufFile& f) {
  return f.has("tokenizer.ggml.model") ? f.get_string("tokenizer.ggml.model") : "";
}

std::vector<std::string> gguf_tokens(const GgufFile& f) {
  const std::string where = gguf_key_place(f);
  const auto& tokens = f.at("tokenizer.ggml.tokens");
  if (!tokens.is_array() || tokens.empty())
    throw ModelError(where + "'tokenizer.ggml.tokens': expected a non-empty string array");
  std::vector<std::string> out;
  out.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!tokens[i].is_string())
      throw ModelError(where + "'tokenizer.ggml.tokens'[" + std::to_string(i) +
                       "]: expected a string");
    out.push_back(tokens[i].get<std::string>());
  }
  return out;
}

int64_t gguf_token_id(const GgufFile& f, const std::string& key, size_t vocab_size,
                      const char* unit) {
  if (!f.has(key)) return -1;
  const int64_t id = f.get_int(key);
  if (id == 0xFFFFFFFFll || id == -1) return -1;
  if (id < 0 || id >= static_cast<int64_t>(vocab_size)) {
    throw ModelError(gguf_key_place(f) + "'" + key + "': id " + std::to_string(id) +
                     " is outside the vocabulary of " + std::to_string(vocab_size) + " " + unit);
  }
  return id;
}

void gguf_read_bool(const GgufFile& f, const std::string& key, bool& out) {
  if (!f.has(key)) return;
  const auto& v = f.at(key);
  if (!v.is_boolean()) throw ModelError(gguf_key_place(f) + "'" + key + "': expected a bool");
  out = v.get<bool>();
}

}  // namespace coco::llm
