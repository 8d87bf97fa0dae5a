// Byte-level BPE (GPT-2 family: Qwen2, Llama 3, DeepSeek, StarCoder, Falcon, ...): added
// tokens split out first, then normalisation, pre-tokenizer and merges by rank. Private to
// coco::llm::Tokenizer, which is the public front. Loaders for a GGUF vocabulary
// (bpe_gguf.cpp) and a Hugging Face tokenizer.json (bpe_hf_json.cpp) fill in a BpeSpec.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bpe_pretokenize.h"

namespace coco::llm {
class GgufFile;
}

namespace coco::llm::bpe {

/// Token kinds, as GGUF's token_type names them (Hugging Face added tokens map onto
/// kControl when special and kUserDefined otherwise).
enum class TokenKind : uint8_t { kNormal, kUnknown, kControl, kUserDefined, kUnused, kByte };

/// A token matched as a whole in the text before BPE runs.
struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;     // matched only when the caller asks to parse special tokens
  bool normalized = false;  // matched in the normalised text rather than the raw text
  bool lstrip = false;      // swallows the whitespace on its left
  bool rstrip = false;      // swallows the whitespace on its right
};

/// What a loader reads from a file; BpeTokenizer checks it.
struct BpeSpec {
  std::string source;                                  // the file, first word of every error
  std::string merges_place;                            // where the merges live, e.g. "model.merges"
  std::vector<std::string> tokens;                     // by id: stored text
  std::vector<TokenKind> kinds;                        // by id
  std::unordered_map<std::string, int32_t> bpe_vocab;  // what BPE symbols look up
  std::vector<std::pair<std::string, std::string>> merges;  // by rank
  std::vector<AddedToken> added;
  bool ignore_merges = false;  // a pre-token that is itself a token is not merged
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  int64_t bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = false;
};

class BpeTokenizer {
 public:
  /// ModelError naming the merge index for a merge whose parts or result are not tokens.
  explicit BpeTokenizer(BpeSpec spec);

  /// Ids of `text`; special added tokens are matched only when `parse_special`.
  std::vector<int64_t> encode(const std::string& text, bool parse_special) const;
  /// Text of `ids`; control, unknown and unused tokens produce nothing.
  std::string decode(const std::vector<int64_t>& ids) const;

  const BpeSpec& spec() const { return spec_; }
  int64_t vocab_size() const { return static_cast<int64_t>(spec_.tokens.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  struct Fragment {
    std::string text;
    int32_t token = -1;  // >= 0: an added token, `text` unused
  };
  /// Added tokens of one matching pass, longest first within each leading byte.
  struct Matcher {
    std::vector<AddedToken> tokens;
    std::unordered_map<unsigned char, std::vector<size_t>> by_first_byte;
    void index();
  };

  struct Symbol;

  void split_added(std::vector<Fragment>& fragments, const Matcher& matcher,
                   bool parse_special) const;
  /// BPE of one pre-token: its characters, merged by rank, emitted as ids.
  void encode_word(const std::string& word, std::vector<int64_t>& out) const;
  std::vector<Symbol> characters(const std::string& word) const;
  void merge(std::vector<Symbol>& syms) const;
  void emit(const std::string& word, const std::vector<Symbol>& syms,
            std::vector<int64_t>& out) const;
  /// The id BPE gives a symbol's text, or -1.
  int32_t bpe_id(const std::string& symbol) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  BpeSpec spec_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) → rank, result
  Matcher raw_matcher_;                         // matched before normalisation
  Matcher normalized_matcher_;                  // matched in the normalised text
};

BpeSpec spec_from_gguf(const GgufFile& file);
/// `dir`/tokenizer.json and tokenizer_config.json for a GGUF vocabulary: the same tokens,
/// merges, added tokens, pre-tokenizer regexes and BOS rule, as a Hugging Face tokenizer.
void write_hf_tokenizer(const GgufFile& file, const std::string& dir);
/// `path` is a tokenizer.json; tokenizer_config.json beside it is read when present.
BpeSpec spec_from_hf_json(const std::string& path);

}  // namespace coco::llm::bpe
