// The gzip/plain line reader of the raw Amazon converter (see line_reader.h). Not a parser:
// what a line holds is read by literal_parser.cpp.
#include "line_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "coco/common/error.h"

namespace coco::data::raw {

LineReader::LineReader(std::string path) : path_(std::move(path)), in_(1 << 16) {
  file_ = std::fopen(path_.c_str(), "rb");
  if (file_ == nullptr) throw DataError(path_ + ": cannot open: " + std::strerror(errno));
  refill_input();
  gzip_ = zs_.avail_in >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
  if (gzip_ && inflateInit2(&zs_, 15 + 32) != Z_OK) {
    std::fclose(file_);
    throw DataError(path_ + ": cannot initialise zlib");
  }
}

LineReader::~LineReader() {
  if (gzip_) inflateEnd(&zs_);
  std::fclose(file_);
}

bool LineReader::next(std::string_view& line) {
  while (true) {
    const auto nl = buf_.find('\n', pos_);
    if (nl != std::string::npos || (eof_ && pos_ < buf_.size())) {
      const size_t end = nl != std::string::npos ? nl : buf_.size();
      line = std::string_view(buf_).substr(pos_, end - pos_);
      pos_ = nl != std::string::npos ? nl + 1 : buf_.size();
      ++line_no_;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      return true;
    }
    if (eof_) return false;
    if (buf_.size() - pos_ > kMaxLine) {
      throw DataError(path_ + ":" + std::to_string(line_no_ + 1) + ": line longer than " +
                      std::to_string(kMaxLine >> 20) + " MiB (not a review or metadata dump?)");
    }
    fill();
  }
}

// Data decoded before an error is handed out first; the error is thrown by the next fill and
// names the first line that was not read completely.
void LineReader::fill() {
  if (!error_.empty()) {
    throw DataError(path_ + ":" + std::to_string(line_no_ + 1) + ": " + error_);
  }
  buf_.erase(0, pos_);
  pos_ = 0;
  const size_t old = buf_.size();
  buf_.resize(old + kChunk);
  const size_t n = gzip_ ? inflate_some(&buf_[old], kChunk) : copy_some(&buf_[old], kChunk);
  buf_.resize(old + n);
  if (n == 0 && error_.empty()) eof_ = true;
}

void LineReader::refill_input() {
  const size_t n = std::fread(in_.data(), 1, in_.size(), file_);
  if (n == 0 && std::ferror(file_)) error_ = std::string("read error: ") + std::strerror(errno);
  input_eof_ = n == 0;
  zs_.next_in = in_.data();
  zs_.avail_in = static_cast<uInt>(n);
}

size_t LineReader::copy_some(char* out, size_t cap) {
  if (zs_.avail_in == 0 && !input_eof_) refill_input();
  const size_t n = std::min<size_t>(cap, zs_.avail_in);
  std::memcpy(out, zs_.next_in, n);
  zs_.next_in += n;
  zs_.avail_in -= static_cast<uInt>(n);
  return n;
}

size_t LineReader::inflate_some(char* out, size_t cap) {
  zs_.next_out = reinterpret_cast<Bytef*>(out);
  zs_.avail_out = static_cast<uInt>(cap);
  while (zs_.avail_out > 0 && error_.empty()) {
    if (zs_.avail_in == 0) {
      if (!input_eof_) refill_input();
      if (zs_.avail_in == 0) {
        if (error_.empty() && !between_members_) {
          error_ = "gzip data corrupt or truncated (unexpected end of file)";
        }
        break;
      }
    }
    const int ret = inflate(&zs_, Z_NO_FLUSH);
    if (ret == Z_STREAM_END) {
      between_members_ = true;  // a following member, if any, continues the data
      inflateReset(&zs_);
    } else if (ret == Z_OK) {
      between_members_ = false;
    } else if (ret != Z_BUF_ERROR) {
      error_ = std::string("gzip data corrupt or truncated (") +
               (zs_.msg != nullptr ? zs_.msg : "zlib error " + std::to_string(ret)) + ")";
    }
  }
  return cap - zs_.avail_out;
}

}  // namespace coco::data::raw
