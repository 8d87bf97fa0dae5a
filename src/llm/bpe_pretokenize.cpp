// Normalisation with ICU's Normalizer2, splitting with PCRE2 (JIT when the platform has it)
// following Hugging Face's Split semantics, and GPT-2's byte-to-character map.
#include "bpe_pretokenize.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/errorcode.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <array>
#include <tuple>

#include "coco/common/error.h"

namespace coco::llm::bpe {

namespace {

void append_utf8(std::string& out, uint32_t cp) {  // cp: a Unicode scalar value
  uint8_t bytes[U8_MAX_LENGTH];
  int32_t n = 0;
  U8_APPEND_UNSAFE(bytes, n, cp);
  out.append(reinterpret_cast<const char*>(bytes), static_cast<size_t>(n));
}

/// Decodes one well-formed UTF-8 sequence at `text[pos]`; returns its length, 0 when malformed
/// (overlong forms, surrogates and code points past U+10FFFF included).
size_t decode_utf8(std::string_view text, size_t pos, uint32_t& cp) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  const size_t len = b0 < 0x80           ? 1
                     : (b0 >> 5) == 0x6  ? 2
                     : (b0 >> 4) == 0xE  ? 3
                     : (b0 >> 3) == 0x1E ? 4
                                         : 0;
  if (len == 0 || pos + len > text.size()) return 0;
  static constexpr uint32_t kLeadMask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  cp = b0 & kLeadMask[len];
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(text[pos + i]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

struct ByteMap {
  std::array<std::string, 256> to_char;
  std::array<int16_t, 324> to_byte{};  // indexed by code point; every mapped one is < 324
  ByteMap() {
    to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      // Printable Latin-1 stands for itself; the rest (controls, space, 0x7F-0xA0, 0xAD)
      // moves to U+0100 onwards, in byte order.
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const uint32_t cp =
          printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
      append_utf8(to_char[static_cast<size_t>(b)], cp);
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

struct Range {
  size_t begin, end;
  bool is_match;
};

/// Hugging Face's split of one piece by its delimiter ranges (tokenizers' normalizer.rs).
void split_piece(const std::string& piece, std::vector<Range> ranges, SplitBehavior behavior,
                 std::vector<std::string>& out) {
  std::vector<Range> kept;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const auto& r : ranges)
        if (!r.is_match) kept.push_back(r);
      break;
    case SplitBehavior::kIsolated:
      kept = std::move(ranges);
      break;
    case SplitBehavior::kContiguous:
      for (const auto& r : ranges) {
        if (r.is_match == previous_match && !kept.empty()) {
          kept.back().end = r.end;
        } else {
          kept.push_back(r);
        }
        previous_match = r.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const auto& r : ranges) {
        if (r.is_match && !previous_match && !kept.empty()) {
          kept.back().end = r.end;
        } else {
          kept.push_back(r);
        }
        previous_match = r.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty()) {
          kept.back().begin = it->begin;
        } else {
          kept.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
  }
  for (const auto& r : kept)
    if (r.end > r.begin) out.push_back(piece.substr(r.begin, r.end - r.begin));
}

void split_by(const Regex& regex, SplitBehavior behavior, bool invert, const std::string& piece,
              std::vector<std::string>& out) {
  std::vector<Range> ranges;
  size_t prev = 0;
  for (const auto& [b, e] : regex.find_all(piece)) {
    if (b > prev) ranges.push_back({prev, b, invert});
    ranges.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < piece.size()) ranges.push_back({prev, piece.size(), invert});
  split_piece(piece, std::move(ranges), behavior, out);
}

}  // namespace

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = 0;
    const size_t len = decode_utf8(text, pos, cp);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++pos;
    } else {
      out.append(text.data() + pos, len);
      pos += len;
    }
  }
  return out;
}

const std::string& byte_to_char(uint8_t byte) { return byte_map().to_char[byte]; }

int char_to_byte(std::string_view utf8_char) {
  uint32_t cp = 0;
  if (utf8_char.empty() || decode_utf8(utf8_char, 0, cp) != utf8_char.size()) return -1;
  return cp < byte_map().to_byte.size() ? byte_map().to_byte[cp] : -1;
}

std::string bytes_to_chars(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) out += byte_to_char(static_cast<uint8_t>(c));
  return out;
}

size_t utf8_length(unsigned char lead) {
  return lead < 0x80           ? 1
         : (lead >> 5) == 0x6  ? 2
         : (lead >> 4) == 0xE  ? 3
         : (lead >> 3) == 0x1E ? 4
                               : 1;
}

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

Regex::Regex(const std::string& pattern, bool literal, const std::string& where) : where_(where) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  // PCRE2_LITERAL admits no UCP (nothing in a literal needs it).
  const uint32_t options = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
  auto code = std::make_shared<Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options,
                             &err, &offset, nullptr);
  if (!code->code) {
    throw ModelError(where + ": PCRE2 rejects the pattern at offset " + std::to_string(offset) +
                     ": " + pcre2_message(err));
  }
  // JIT is an optimisation only: without it (unsupported platform) matching is interpreted.
  pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE);
  code_ = std::move(code);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  // PCRE2 counts U+180E MONGOLIAN VOWEL SEPARATOR as \s (its \h list predates Unicode 6.3,
  // which made it a format character); Unicode's White_Space, Oniguruma (Hugging Face) and
  // llama.cpp do not. Matching runs on a copy where it reads as U+200B ZERO WIDTH SPACE, of
  // the same length and the same properties otherwise (Cf, not \s).
  static constexpr std::string_view kMvs = "\xE1\xA0\x8E", kZwsp = "\xE2\x80\x8B";
  std::string copy;
  if (text.find(kMvs) != std::string_view::npos) {
    copy.assign(text);
    for (size_t at = copy.find(kMvs); at != std::string::npos; at = copy.find(kMvs, at + 3))
      copy.replace(at, 3, kZwsp);
    text = copy;
  }
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(code_->code, nullptr), &pcre2_match_data_free);
  if (!md) throw ModelError(where_ + ": out of memory for PCRE2 match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::vector<std::pair<size_t, size_t>> out;
  size_t pos = 0;
  while (pos < text.size()) {
    int rc =
        pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // a very long match: the interpreter has no such limit
      rc = pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       md.get(), nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw ModelError(where_ + ": PCRE2 matching failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t begin = ov[0], end = ov[1];
    if (end == begin) {  // empty match: it splits nothing; try again one character on
      if (begin >= text.size()) break;
      pos = begin + utf8_length(static_cast<unsigned char>(text[begin]));
      continue;
    }
    out.emplace_back(begin, end);
    pos = end;
  }
  return out;
}

const std::string& gpt2_pattern() {
  static const std::string p =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  return p;
}

std::vector<std::string> PreTokenizer::split(const std::string& text) const {
  std::vector<std::string> pieces;
  if (!text.empty()) pieces.push_back(text);
  for (const auto& step : steps_) {
    std::vector<std::string> next;
    next.reserve(pieces.size());
    for (auto& piece : pieces) {
      if (step.kind == PreTokenizeStep::Kind::kSplit) {
        split_by(*step.regex, step.behavior, step.invert, piece, next);
        continue;
      }
      if (step.add_prefix_space && piece[0] != ' ') piece.insert(piece.begin(), ' ');
      if (!step.use_regex) {
        next.push_back(bytes_to_chars(piece));
        continue;
      }
      static const Regex gpt2(gpt2_pattern(), false, "the GPT-2 pre-tokenizer pattern");
      std::vector<std::string> words;
      split_by(gpt2, SplitBehavior::kIsolated, false, piece, words);
      for (const auto& w : words) next.push_back(bytes_to_chars(w));
    }
    pieces = std::move(next);
  }
  return pieces;
}

std::string Normalizer::apply(const std::string& text) const {
  if (forms_.empty()) return text;
  icu::UnicodeString s = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  for (Form form : forms_) {
    icu::ErrorCode err;
    const icu::Normalizer2* n = form == Form::kNFC    ? icu::Normalizer2::getNFCInstance(err)
                                : form == Form::kNFD  ? icu::Normalizer2::getNFDInstance(err)
                                : form == Form::kNFKC ? icu::Normalizer2::getNFKCInstance(err)
                                                      : icu::Normalizer2::getNFKDInstance(err);
    if (err.isFailure())
      throw ModelError(std::string("ICU has no normaliser data: ") + err.errorName());
    s = n->normalize(s, err);
    if (err.isFailure())
      throw ModelError(std::string("ICU normalisation failed: ") + err.errorName());
  }
  std::string out;
  s.toUTF8String(out);
  return out;
}

}  // namespace coco::llm::bpe
