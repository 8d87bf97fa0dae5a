// Checked reads of the tokenizer.ggml.* keys that both GGUF vocabularies (byte-level BPE in
// bpe_gguf.cpp, SentencePiece in spm_vocab.cpp) share. Private to src/llm. Not a vocabulary:
// what the tokens mean is left to those two.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace coco::llm {

class GgufFile;

/// "<file>: GGUF key ", the start of every vocabulary error.
std::string gguf_key_place(const GgufFile& f);

/// tokenizer.ggml.model, or "" when absent.
std::string gguf_tokenizer_model(const GgufFile& f);

/// tokenizer.ggml.tokens: a non-empty array of strings (ModelError naming the entry).
std::vector<std::string> gguf_tokens(const GgufFile& f);

/// The token id at `key`; -1 when absent or GGUF's "none" (-1 or 0xFFFFFFFF). ModelError
/// "... is outside the vocabulary of <vocab_size> <unit>" otherwise out of range.
int64_t gguf_token_id(const GgufFile& f, const std::string& key, size_t vocab_size,
                      const char* unit);

/// The bool at `key` into `out` when the key is present; ModelError when it is not a bool.
void gguf_read_bool(const GgufFile& f, const std::string& key, bool& out);

}  // namespace coco::llm
