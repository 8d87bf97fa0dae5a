// The text pipeline in front of byte-level BPE: Unicode normalisation (ICU), regex splitting
// (PCRE2, UTF + UCP so \p{L}, \p{N} and \s are Unicode-aware) and GPT-2's byte-to-character
// map. Private to the tokenizer; it knows nothing of vocabularies or merges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coco::llm::bpe {

/// `text` with every byte that does not start a well-formed UTF-8 sequence replaced by U+FFFD
/// (the regexes and ICU need valid UTF-8; llama.cpp makes the same replacement).
std::string valid_utf8(std::string_view text);

/// GPT-2's reversible map of the 256 byte values onto printable characters (UTF-8).
const std::string& byte_to_char(uint8_t byte);
/// The byte a character of that map stands for; -1 for a character outside it.
int char_to_byte(std::string_view utf8_char);
/// Every byte of `text` replaced by its character.
std::string bytes_to_chars(std::string_view text);
/// Length of the UTF-8 sequence starting with `lead` (1 for a stray byte).
size_t utf8_length(unsigned char lead);

/// A compiled PCRE2 pattern. Matches run on one piece at a time: a lookahead never sees past
/// the end of the piece it is given.
class Regex {
 public:
  /// `where` prefixes the error for a pattern PCRE2 rejects (a file and a place).
  Regex(const std::string& pattern, bool literal, const std::string& where);
  /// Non-empty matches as byte ranges [first, second) of `text` (valid UTF-8).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
  std::string where_;
};

/// Hugging Face's SplitDelimiterBehavior: what becomes of the matches of a Split.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

/// One step of the pre-tokenizer; every step maps each current piece to zero or more pieces.
struct PreTokenizeStep {
  enum class Kind { kSplit, kByteLevel };
  Kind kind = Kind::kSplit;
  // kSplit
  std::shared_ptr<const Regex> regex;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  // kByteLevel: optional leading space, optional GPT-2 split, then bytes → characters
  bool add_prefix_space = false;
  bool use_regex = false;
};

class PreTokenizer {
 public:
  void add(PreTokenizeStep step) { steps_.push_back(std::move(step)); }
  const std::vector<PreTokenizeStep>& steps() const { return steps_; }
  /// The pieces of `text` that BPE encodes one by one (in byte-mapped form after ByteLevel).
  std::vector<std::string> split(const std::string& text) const;

 private:
  std::vector<PreTokenizeStep> steps_;
};

/// GPT-2's pre-tokenizer regex, as Hugging Face's ByteLevel(use_regex) applies it.
const std::string& gpt2_pattern();

/// Unicode normalisation forms applied in order (empty: text unchanged).
class Normalizer {
 public:
  enum class Form { kNFC, kNFD, kNFKC, kNFKD };
  void add(Form form) { forms_.push_back(form); }
  bool empty() const { return forms_.empty(); }
  std::string apply(const std::string& text) const;

 private:
  std::vector<Form> forms_;
};

}  // namespace coco::llm::bpe
