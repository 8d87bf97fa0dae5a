// Small text helpers shared by the data readers: line splitting, strict integer parsing
// and UTF-8 validation and encoding. Not a general string library.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace coco {

/// Reads a whole file into memory; throws DataError naming the file when it cannot.
std::string read_file(const std::string& path);

/// Splits on `sep` keeping empty fields ("a\t\tb" → {"a", "", "b"}).
std::vector<std::string_view> split(std::string_view line, char sep);

/// Parses a non-negative decimal integer; false on any other character or overflow.
bool parse_uint(std::string_view token, int64_t& out);

/// Offset of the first byte that is not valid UTF-8, or npos when the text is valid.
size_t invalid_utf8_offset(std::string_view text);

/// True when `text` is valid UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
inline bool is_valid_utf8(std::string_view text) {
  return invalid_utf8_offset(text) == std::string_view::npos;
}

/// Appends `cp`, a Unicode scalar value, encoded as UTF-8.
void append_utf8(std::string& out, uint32_t cp);

/// The value of a hexadecimal digit (0-9, a-f, A-F), or -1 for any other character.
int hex_digit(char c);

/// Calls fn(line_number, line) for each line of `text` (1-based, without "\n" or a
/// trailing "\r"). Throws DataError "<file>:<n>: file ends in the middle of a line
/// (truncated?)" when the last line has no newline.
template <typename Fn>
void for_each_line(const std::string& file, std::string_view text, Fn&& fn);

}  // namespace coco

#include "coco/common/error.h"

namespace coco {

template <typename Fn>
void for_each_line(const std::string& file, std::string_view text, Fn&& fn) {
  size_t start = 0;
  int64_t line_no = 0;
  while (start < text.size()) {
    ++line_no;
    const size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      throw DataError(file + ":" + std::to_string(line_no) +
                      ": file ends in the middle of a line (truncated?)");
    }
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(line_no, line);
    start = end + 1;
  }
}

}  // namespace coco
