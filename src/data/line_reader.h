// Lines of a gzip file (concatenated members allowed) or of a plain file, read a chunk at a
// time; private to the raw Amazon converter (src/data/amazon_*.cpp). Not a general stream:
// it hands out lines and names the line where good data ends.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace coco::data::raw {

/// Inflating by hand rather than with gzread() keeps every byte decoded before an error, so
/// a corrupt or truncated file is reported at the exact line where the good data ends.
class LineReader {
 public:
  /// Throws DataError when the file cannot be opened or zlib cannot start.
  explicit LineReader(std::string path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// Next line without its "\n" / "\r\n"; false at the end of the file. Throws DataError
  /// "<file>:<line>: <problem>" once the data read before a read or gzip error is consumed.
  bool next(std::string_view& line);

  int64_t line_no() const { return line_no_; }
  const std::string& path() const { return path_; }

 private:
  static constexpr size_t kChunk = 1 << 17;
  // The longest line accepted: a gzip member can inflate a thousandfold, and a line with no
  // end must not take all memory. Real review and metadata lines are under 1 MiB.
  static constexpr size_t kMaxLine = size_t{64} << 20;

  void fill();
  void refill_input();
  size_t copy_some(char* out, size_t cap);
  size_t inflate_some(char* out, size_t cap);

  std::string path_;
  FILE* file_ = nullptr;
  std::vector<Bytef> in_;
  z_stream zs_{};
  bool gzip_ = false;
  bool input_eof_ = false;
  bool between_members_ = false;
  std::string error_;  // pending: thrown once the data before it is consumed
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  int64_t line_no_ = 0;
};

}  // namespace coco::data::raw
