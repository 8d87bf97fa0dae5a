// Raw Amazon dumps -> uniform dataset (see include/coco/data/amazon_raw.h).
// Holds a line reader over gzip/plain files, a small parser for JSON and Python literal
// lines, and the S3-Rec filtering/numbering. No torch here: this TU must compile fast.
#include "coco/data/amazon_raw.h"

#include <unicode/utf8.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "coco/common/atomic_file.h"
#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/data/text.h"

namespace coco::data {
namespace {

// ---------------------------------------------------------------------------------------
// Lines of a gzip file (concatenated members allowed) or of a plain file. Inflating by
// hand rather than with gzread() keeps every byte decoded before an error, so a corrupt
// or truncated file is reported at the exact line where the good data ends.

class LineReader {
 public:
  explicit LineReader(std::string path) : path_(std::move(path)), in_(1 << 16) {
    file_ = std::fopen(path_.c_str(), "rb");
    if (file_ == nullptr) throw DataError(path_ + ": cannot open: " + std::strerror(errno));
    refill_input();
    gzip_ = zs_.avail_in >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
    if (gzip_ && inflateInit2(&zs_, 15 + 32) != Z_OK) {
      std::fclose(file_);
      throw DataError(path_ + ": cannot initialise zlib");
    }
  }
  ~LineReader() {
    if (gzip_) inflateEnd(&zs_);
    std::fclose(file_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// Next line without its "\n" / "\r\n"; false at the end of the file.
  bool next(std::string_view& line) {
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
      fill();
    }
  }

  int64_t line_no() const { return line_no_; }
  const std::string& path() const { return path_; }

 private:
  static constexpr size_t kChunk = 1 << 17;

  // Data decoded before an error is handed out first; the error is thrown by the next
  // fill and names the first line that was not read completely.
  void fill() {
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

  void refill_input() {
    const size_t n = std::fread(in_.data(), 1, in_.size(), file_);
    if (n == 0 && std::ferror(file_)) error_ = std::string("read error: ") + std::strerror(errno);
    input_eof_ = n == 0;
    zs_.next_in = in_.data();
    zs_.avail_in = static_cast<uInt>(n);
  }

  size_t copy_some(char* out, size_t cap) {
    if (zs_.avail_in == 0 && !input_eof_) refill_input();
    const size_t n = std::min<size_t>(cap, zs_.avail_in);
    std::memcpy(out, zs_.next_in, n);
    zs_.next_in += n;
    zs_.avail_in -= static_cast<uInt>(n);
    return n;
  }

  size_t inflate_some(char* out, size_t cap) {
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

// ---------------------------------------------------------------------------------------
// UTF-8

bool valid_utf8(std::string_view s) { return invalid_utf8_offset(s) == std::string_view::npos; }

void append_utf8(std::string& out, uint32_t cp) {  // cp: a Unicode scalar value
  uint8_t bytes[U8_MAX_LENGTH];
  int32_t n = 0;
  U8_APPEND_UNSAFE(bytes, n, cp);
  out.append(reinterpret_cast<const char*>(bytes), static_cast<size_t>(n));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ---------------------------------------------------------------------------------------
// One line of JSON or Python literal syntax -> Value tree.

enum class Syntax { kJson, kPython, kEither };

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kList, kDict };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;               // string contents, or the spelling of a number
  std::vector<Value> items;       // list elements, or dict values
  std::vector<std::string> keys;  // dict keys, parallel to items

  const Value* find(std::string_view key) const {
    for (size_t i = keys.size(); i-- > 0;) {  // the last duplicate wins, as in Python
      if (keys[i] == key) return &items[i];
    }
    return nullptr;
  }
};

struct ParseError {
  size_t column;  // 1-based byte column
  std::string message;
};

class Parser {
 public:
  Parser(std::string_view s, Syntax syntax) : s_(s), syntax_(syntax) {}

  Value parse_line() {
    Value v = parse_value(0);
    skip_ws();
    if (i_ != s_.size()) fail("unexpected text after the value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 200;

  bool json_ok() const { return syntax_ != Syntax::kPython; }
  bool python_ok() const { return syntax_ != Syntax::kJson; }

  [[noreturn]] void fail(const std::string& message) const { throw ParseError{i_ + 1, message}; }

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r' ||
                              (python_ok() && s_[i_] == '\f'))) {
      ++i_;
    }
  }

  bool starts_with(std::string_view word) const { return s_.substr(i_, word.size()) == word; }

  Value parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    skip_ws();
    if (i_ >= s_.size()) fail("unexpected end of line");
    const char c = s_[i_];
    if (c == '{') return parse_dict(depth);
    if (c == '[') return parse_list(depth, ']');
    if (c == '(' && python_ok()) return parse_list(depth, ')');
    if (c == '"' || (c == '\'' && python_ok())) return parse_string_value(false);
    if (python_ok() && (c == 'u' || c == 'U' || c == 'b' || c == 'B') && i_ + 1 < s_.size() &&
        (s_[i_ + 1] == '\'' || s_[i_ + 1] == '"')) {
      const bool unicode = (c == 'u' || c == 'U');
      ++i_;
      return parse_string_value(unicode);
    }
    if (c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9')) return parse_number();
    Value v;
    const struct {
      std::string_view word;
      bool json;
      Value::Kind kind;
      bool value;
    } keywords[] = {
        {"true", true, Value::Kind::kBool, true},    {"false", true, Value::Kind::kBool, false},
        {"null", true, Value::Kind::kNull, false},   {"True", false, Value::Kind::kBool, true},
        {"False", false, Value::Kind::kBool, false}, {"None", false, Value::Kind::kNull, false}};
    for (const auto& kw : keywords) {
      if ((kw.json ? json_ok() : python_ok()) && starts_with(kw.word)) {
        i_ += kw.word.size();
        v.kind = kw.kind;
        v.boolean = kw.value;
        return v;
      }
    }
    fail(std::string("unexpected character '") + c + "'");
  }

  Value parse_dict(int depth) {
    Value v;
    v.kind = Value::Kind::kDict;
    ++i_;  // '{'
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return v;
    }
    while (true) {
      skip_ws();
      if (i_ < s_.size() && s_[i_] == '}' && python_ok()) {  // trailing comma
        ++i_;
        return v;
      }
      if (i_ >= s_.size()) fail("unexpected end of line inside an object");
      const char c = s_[i_];
      const bool u_prefix = python_ok() && c == 'u' && i_ + 1 < s_.size() &&
                            (s_[i_ + 1] == '\'' || s_[i_ + 1] == '"');
      if (u_prefix) ++i_;
      if (!(u_prefix || s_[i_] == '"' || (python_ok() && s_[i_] == '\''))) {
        fail("expected a string key");
      }
      Value key = parse_string_value(u_prefix);
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != ':') fail("expected ':' after a key");
      ++i_;
      v.keys.push_back(std::move(key.text));
      v.items.push_back(parse_value(depth + 1));
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return v;
      }
      fail("expected ',' or '}'");
    }
  }

  Value parse_list(int depth, char close) {
    Value v;
    v.kind = Value::Kind::kList;
    ++i_;  // '[' or '('
    skip_ws();
    if (i_ < s_.size() && s_[i_] == close) {
      ++i_;
      return v;
    }
    while (true) {
      skip_ws();
      if (i_ < s_.size() && s_[i_] == close && python_ok()) {  // trailing comma
        ++i_;
        return v;
      }
      v.items.push_back(parse_value(depth + 1));
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == close) {
        ++i_;
        return v;
      }
      fail(std::string("expected ',' or '") + close + "'");
    }
  }

  Value parse_number() {
    const size_t start = i_;
    auto digits = [&] {
      const size_t d = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ - d;
    };
    if (s_[i_] == '+' && !python_ok()) fail("unexpected character '+'");
    if (s_[i_] == '-' || s_[i_] == '+') ++i_;
    const size_t int_start = i_;
    const size_t int_digits = digits();
    if (json_ok() && !python_ok()) {
      if (int_digits == 0) fail("expected a digit");
      if (int_digits > 1 && s_[int_start] == '0') fail("leading zero in a number");
    }
    size_t frac_digits = 0;
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      frac_digits = digits();
      if (frac_digits == 0 && !python_ok()) fail("expected a digit after '.'");
    }
    if (int_digits == 0 && frac_digits == 0) fail("expected a digit");
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    Value v;
    v.kind = Value::Kind::kNumber;
    v.text = std::string(s_.substr(start, i_ - start));
    if (python_ok() && i_ < s_.size() && (s_[i_] == 'L' || s_[i_] == 'l')) ++i_;  // Python 2
    return v;
  }

  // A quoted string at i_. Python 2 byte strings (no prefix) take \xHH as a raw byte,
  // u'' strings as a code point; if the bytes are not UTF-8 they are re-read as Latin-1.
  Value parse_string_value(bool unicode_prefix) {
    const size_t open = i_;
    bool had_x = false;
    Value v;
    v.kind = Value::Kind::kString;
    v.text = decode_string(unicode_prefix, had_x);
    if (had_x && !unicode_prefix && !valid_utf8(v.text)) {
      const size_t end = i_;
      i_ = open;
      v.text = decode_string(true, had_x);
      i_ = end;
    }
    return v;
  }

  uint32_t read_hex(int n) {
    uint32_t cp = 0;
    for (int k = 0; k < n; ++k) {
      const int d = i_ < s_.size() ? hex_digit(s_[i_]) : -1;
      if (d < 0) fail("expected " + std::to_string(n) + " hex digits in an escape");
      cp = cp * 16 + static_cast<uint32_t>(d);
      ++i_;
    }
    return cp;
  }

  std::string decode_string(bool x_is_code_point, bool& had_x) {
    const size_t open = i_;
    const char quote = s_[i_++];
    std::string out;
    while (true) {
      if (i_ >= s_.size()) {
        i_ = open;
        fail("unterminated string");
      }
      const char c = s_[i_];
      if (c == quote) {
        ++i_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20 && json_ok() && !python_ok()) {
        fail("control character in a string");
      }
      if (c != '\\') {
        out += c;
        ++i_;
        continue;
      }
      escape_at_ = i_++;
      if (i_ >= s_.size()) {
        i_ = open;
        fail("unterminated string");
      }
      const char e = s_[i_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u':
          append_code_point(out, read_hex(4), true);
          break;
        default:
          if (!python_ok()) {
            --i_;
            fail(std::string("invalid escape '\\") + e + "'");
          }
          decode_python_escape(e, out, x_is_code_point, had_x);
      }
    }
  }

  void decode_python_escape(char e, std::string& out, bool x_is_code_point, bool& had_x) {
    switch (e) {
      case '\'':
        out += '\'';
        return;
      case 'a':
        out += '\a';
        return;
      case 'v':
        out += '\v';
        return;
      case 'U':
        append_code_point(out, read_hex(8), false);
        return;
      case 'x': {
        const uint32_t byte = read_hex(2);
        had_x = true;
        if (x_is_code_point) {
          append_utf8(out, byte);
        } else {
          out += static_cast<char>(byte);
        }
        return;
      }
      default:
        break;
    }
    if (e >= '0' && e <= '7') {
      uint32_t value = static_cast<uint32_t>(e - '0');
      for (int k = 0; k < 2 && i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '7'; ++k) {
        value = value * 8 + static_cast<uint32_t>(s_[i_++] - '0');
      }
      append_utf8(out, value);
      return;
    }
    out += '\\';  // Python keeps unknown escapes verbatim
    out += e;
  }

  // \uXXXX (possibly the first half of a surrogate pair) or \UXXXXXXXX.
  void append_code_point(std::string& out, uint32_t cp, bool may_pair) {
    if (may_pair && cp >= 0xD800 && cp <= 0xDBFF && starts_with("\\u")) {
      const size_t save = i_;
      i_ += 2;
      const uint32_t low = read_hex(4);
      if (low >= 0xDC00 && low <= 0xDFFF) {
        append_utf8(out, 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00));
        return;
      }
      i_ = save;
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      i_ = escape_at_;
      fail("invalid code point in an escape");
    }
    append_utf8(out, cp);
  }

  std::string_view s_;
  Syntax syntax_;
  size_t i_ = 0;
  size_t escape_at_ = 0;  // the backslash of the escape being decoded
};

// ---------------------------------------------------------------------------------------
// Field access with "<file>:<line>: problem" errors.

const char* syntax_name(Syntax s) {
  switch (s) {
    case Syntax::kJson:
      return "JSON";
    case Syntax::kPython:
      return "Python literal";
    case Syntax::kEither:
      return "JSON/Python literal";
  }
  return "";
}

struct Where {
  const LineReader& reader;
  [[noreturn]] void fail(const std::string& problem) const {
    throw DataError(reader.path() + ":" + std::to_string(reader.line_no()) + ": " + problem);
  }
};

Value parse_object_line(std::string_view line, Syntax syntax, const Where& where) {
  Value v;
  try {
    v = Parser(line, syntax).parse_line();
  } catch (const ParseError& e) {
    where.fail(std::string("invalid ") + syntax_name(syntax) + " at column " +
               std::to_string(e.column) + ": " + e.message);
  }
  if (v.kind != Value::Kind::kDict) where.fail("expected an object ({...}) on the line");
  return v;
}

// A raw id (reviewerID, asin): non-empty UTF-8 without whitespace or control characters,
// since it is written verbatim into a space/tab separated file.
std::string id_field(const Value& obj, const char* name, const Where& where) {
  const Value* v = obj.find(name);
  if (v == nullptr) where.fail(std::string("missing field '") + name + "'");
  if (v->kind != Value::Kind::kString)
    where.fail(std::string("field '") + name + "' is not a string");
  if (v->text.empty()) where.fail(std::string("field '") + name + "' is empty");
  if (!valid_utf8(v->text)) where.fail(std::string("invalid UTF-8 in field '") + name + "'");
  for (char c : v->text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      where.fail(std::string("field '") + name + "' contains whitespace or control characters");
    }
  }
  return v->text;
}

// unixReviewTime as Python's int() reads it: an integer, a float (truncated) or a string
// of digits.
int64_t time_field(const Value& obj, const Where& where) {
  const Value* v = obj.find("unixReviewTime");
  if (v == nullptr) where.fail("missing field 'unixReviewTime'");
  std::string spelled = v->text;
  if (v->kind == Value::Kind::kString) {
    const auto b = spelled.find_first_not_of(" \t");
    const auto e = spelled.find_last_not_of(" \t");
    spelled = b == std::string::npos ? "" : spelled.substr(b, e - b + 1);
    size_t digits_from = (!spelled.empty() && (spelled[0] == '-' || spelled[0] == '+')) ? 1 : 0;
    const bool ok = spelled.size() > digits_from &&
                    std::all_of(spelled.begin() + static_cast<std::ptrdiff_t>(digits_from),
                                spelled.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!ok) where.fail("non-numeric unixReviewTime \"" + v->text + "\"");
  } else if (v->kind != Value::Kind::kNumber) {
    where.fail("non-numeric unixReviewTime (not a number or string)");
  }
  errno = 0;
  char* end = nullptr;
  const long long as_int = std::strtoll(spelled.c_str(), &end, 10);
  if (errno == 0 && end != nullptr && *end == '\0') return as_int;
  const double d = std::strtod(spelled.c_str(), &end);
  if (end == nullptr || *end != '\0' || !std::isfinite(d) || std::fabs(d) > 9.2e18) {
    where.fail("unixReviewTime out of range: " + spelled);
  }
  return static_cast<int64_t>(d);
}

// Optional text field: missing or None -> "", otherwise a UTF-8 string, cleaned.
std::string text_field(const Value& obj, const char* name, const Where& where) {
  const Value* v = obj.find(name);
  if (v == nullptr || v->kind == Value::Kind::kNull) return "";
  if (v->kind != Value::Kind::kString)
    where.fail(std::string("field '") + name + "' is not a string");
  if (!valid_utf8(v->text)) where.fail(std::string("invalid UTF-8 in field '") + name + "'");
  return clean_text(v->text);
}

// 2014 'categories' = list of paths (lists); 2018 'category' = one flat path. Each path
// loses its root level; names are cleaned, empty ones dropped, duplicates dropped.
std::string categories_field(const Value& obj, const Where& where) {
  std::vector<std::string> names;
  std::unordered_set<std::string> seen;
  auto add_path = [&](const std::vector<const Value*>& path, const char* field) {
    for (size_t i = 1; i < path.size(); ++i) {
      if (path[i]->kind != Value::Kind::kString) {
        where.fail(std::string("field '") + field + "' holds a non-string category");
      }
      if (!valid_utf8(path[i]->text)) {
        where.fail(std::string("invalid UTF-8 in field '") + field + "'");
      }
      std::string name = clean_text(path[i]->text);
      if (!name.empty() && seen.insert(name).second) names.push_back(std::move(name));
    }
  };
  for (const char* field : {"categories", "category"}) {
    const Value* v = obj.find(field);
    if (v == nullptr || v->kind == Value::Kind::kNull) continue;
    if (v->kind != Value::Kind::kList)
      where.fail(std::string("field '") + field + "' is not a list");
    std::vector<const Value*> flat;
    for (const Value& e : v->items) {
      if (e.kind == Value::Kind::kList) {
        std::vector<const Value*> path;
        for (const Value& level : e.items) path.push_back(&level);
        add_path(path, field);
      } else {
        flat.push_back(&e);
      }
    }
    add_path(flat, field);
  }
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += " | ";
    out += n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Reviews -> per-user chronological item lists -> k-core.

struct Review {
  int64_t time;
  int32_t item;  // index into Reviews::item_raw
};

struct Reviews {
  std::vector<std::string> user_raw;  // in order of first appearance in the file
  std::vector<std::string> item_raw;  // in order of first appearance in the file
  std::vector<std::vector<Review>> by_user;
  int64_t lines = 0;
};

Reviews read_reviews(const std::string& path, AmazonFormat format) {
  const Syntax syntax = format == AmazonFormat::kAuto ? Syntax::kEither : Syntax::kJson;
  Reviews r;
  std::unordered_map<std::string, int32_t> user_index, item_index;
  LineReader reader(path);
  const Where where{reader};
  std::string_view line;
  while (reader.next(line)) {
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    const Value obj = parse_object_line(line, syntax, where);
    std::string user = id_field(obj, "reviewerID", where);
    std::string item = id_field(obj, "asin", where);
    const int64_t time = time_field(obj, where);
    auto [uit, new_user] = user_index.try_emplace(user, static_cast<int32_t>(r.user_raw.size()));
    if (new_user) {
      r.user_raw.push_back(std::move(user));
      r.by_user.emplace_back();
    }
    auto [iit, new_item] = item_index.try_emplace(item, static_cast<int32_t>(r.item_raw.size()));
    if (new_item) r.item_raw.push_back(std::move(item));
    r.by_user[static_cast<size_t>(uit->second)].push_back({time, iit->second});
    ++r.lines;
  }
  return r;
}

// Iterative k-core as in S3-Rec's filter_Kcore: each pass counts interactions (duplicates
// included), drops users below k and every occurrence of items below k, until a pass
// finds nothing to drop. The result is the unique maximal k-core, so pass order does not
// matter. Users emptied by a pass are dropped (S3-Rec would keep them as empty lines).
int64_t filter_kcore(std::vector<std::vector<int32_t>>& seqs, size_t num_items, int64_t k) {
  int64_t passes = 0;
  std::vector<int64_t> count(num_items);
  while (true) {
    std::fill(count.begin(), count.end(), 0);
    bool holds = true;
    for (const auto& s : seqs) {
      if (!s.empty() && static_cast<int64_t>(s.size()) < k) holds = false;
      for (int32_t i : s) ++count[static_cast<size_t>(i)];
    }
    for (int64_t c : count) {
      if (c > 0 && c < k) holds = false;
    }
    if (holds) return passes;
    ++passes;
    for (auto& s : seqs) {
      if (static_cast<int64_t>(s.size()) < k) {
        s.clear();
      } else {
        s.erase(std::remove_if(s.begin(), s.end(),
                               [&](int32_t i) { return count[static_cast<size_t>(i)] < k; }),
                s.end());
      }
    }
  }
}

void read_meta(const std::string& path, AmazonFormat format,
               const std::unordered_map<std::string, size_t>& wanted, AmazonDataset& out) {
  const Syntax syntax = format == AmazonFormat::kAuto   ? Syntax::kEither
                        : format == AmazonFormat::k2014 ? Syntax::kPython
                                                        : Syntax::kJson;
  std::vector<bool> have(out.items.size(), false);
  int64_t lines = 0, repeated = 0;
  LineReader reader(path);
  const Where where{reader};
  std::string_view line;
  while (reader.next(line)) {
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    ++lines;
    const Value obj = parse_object_line(line, syntax, where);
    const std::string asin = id_field(obj, "asin", where);
    const auto it = wanted.find(asin);
    if (it == wanted.end()) continue;
    if (have[it->second]) {  // the 2018 dumps repeat some products: first line wins
      ++repeated;
      continue;
    }
    have[it->second] = true;
    AmazonItem& item = out.items[it->second];
    item.title = text_field(obj, "title", where);
    item.brand = text_field(obj, "brand", where);
    item.categories = categories_field(obj, where);
    ++out.items_with_meta;
    if (!item.title.empty()) ++out.items_with_title;
  }
  log().info("[data] {}: {} metadata lines, {} of {} items found, {} repeated lines ignored", path,
             lines, out.items_with_meta, out.items.size(), repeated);
}

}  // namespace

AmazonFormat parse_amazon_format(const std::string& name) {
  if (name == "auto") return AmazonFormat::kAuto;
  if (name == "2014") return AmazonFormat::k2014;
  if (name == "2018") return AmazonFormat::k2018;
  throw Error("unknown Amazon format '" + name + "' (expected auto, 2014 or 2018)");
}

std::string clean_text(const std::string& text) {
  // 1. HTML entities, one pass ("&amp;lt;" -> "&lt;", as Python's html.unescape).
  std::string un;
  un.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] != '&') {
      un += text[i++];
      continue;
    }
    const size_t semi = text.find(';', i);
    if (semi == std::string::npos || semi - i > 10) {
      un += text[i++];
      continue;
    }
    const std::string_view name = std::string_view(text).substr(i + 1, semi - i - 1);
    static const std::pair<std::string_view, std::string_view> kNamed[] = {
        {"amp", "&"}, {"quot", "\""}, {"apos", "'"}, {"lt", "<"}, {"gt", ">"}, {"nbsp", " "}};
    bool done = false;
    for (const auto& [n, repl] : kNamed) {
      if (name == n) {
        un += repl;
        done = true;
        break;
      }
    }
    if (!done && name.size() >= 2 && name[0] == '#') {
      const bool hex = name[1] == 'x' || name[1] == 'X';
      const std::string_view digits = name.substr(hex ? 2 : 1);
      uint32_t cp = 0;
      bool ok = !digits.empty();
      for (char c : digits) {
        const int d = hex ? hex_digit(c) : (c >= '0' && c <= '9' ? c - '0' : -1);
        if (d < 0 || cp > 0x10FFFF) {
          ok = false;
          break;
        }
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
      }
      if (ok && cp > 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF)) {
        append_utf8(un, cp);
        done = true;
      }
    }
    if (done) {
      i = semi + 1;
    } else {
      un += text[i++];
    }
  }
  // 2. Whitespace: every ASCII space-like character becomes one space, runs collapse.
  std::string out;
  out.reserve(un.size());
  bool pending_space = false;
  for (char c : un) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

AmazonDataset convert_amazon_raw(const AmazonRawOptions& options) {
  if (options.k < 1) throw Error("k-core must be at least 1, got " + std::to_string(options.k));
  Reviews reviews = read_reviews(options.reviews_path, options.format);
  log().info("[data] {}: {} reviews, {} users, {} items", options.reviews_path, reviews.lines,
             reviews.user_raw.size(), reviews.item_raw.size());

  AmazonDataset out;
  out.reviews_read = reviews.lines;

  // Chronological per user; ties keep file order (Python's sort is stable).
  std::vector<std::vector<int32_t>> seqs(reviews.by_user.size());
  for (size_t u = 0; u < reviews.by_user.size(); ++u) {
    auto& rs = reviews.by_user[u];
    std::stable_sort(rs.begin(), rs.end(),
                     [](const Review& a, const Review& b) { return a.time < b.time; });
    std::unordered_set<int32_t> seen;
    for (const Review& r : rs) {
      if (options.drop_duplicates && !seen.insert(r.item).second) {
        ++out.duplicates_dropped;
        continue;
      }
      seqs[u].push_back(r.item);
    }
    rs = {};
  }

  out.kcore_passes = filter_kcore(seqs, reviews.item_raw.size(), options.k);

  // Ids by first appearance: users in file order, items walking those users' sequences.
  std::vector<int64_t> item_id(reviews.item_raw.size(), 0);
  std::unordered_map<std::string, size_t> wanted;
  for (size_t u = 0; u < seqs.size(); ++u) {
    if (seqs[u].empty()) continue;
    std::vector<int64_t> ids;
    ids.reserve(seqs[u].size());
    for (int32_t i : seqs[u]) {
      auto& id = item_id[static_cast<size_t>(i)];
      if (id == 0) {
        out.items.push_back({reviews.item_raw[static_cast<size_t>(i)], "", "", ""});
        id = static_cast<int64_t>(out.items.size());
        wanted.emplace(out.items.back().raw_id, out.items.size() - 1);
      }
      ids.push_back(id);
    }
    out.num_interactions += static_cast<int64_t>(ids.size());
    out.user_raw_ids.push_back(reviews.user_raw[u]);
    out.sequences.push_back(std::move(ids));
  }
  if (out.sequences.empty()) {
    throw DataError(options.reviews_path + ": no interactions left after " +
                    std::to_string(options.k) + "-core filtering (" +
                    std::to_string(reviews.lines) + " reviews, " +
                    std::to_string(reviews.user_raw.size()) + " users, " +
                    std::to_string(reviews.item_raw.size()) + " items read)");
  }
  log().info("[data] {}-core after {} filtering passes: {} users, {} items, {} interactions",
             options.k, out.kcore_passes, out.sequences.size(), out.items.size(),
             out.num_interactions);

  if (!options.meta_path.empty()) read_meta(options.meta_path, options.format, wanted, out);
  return out;
}

void write_uniform_dataset(const AmazonDataset& dataset, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw DataError(dir + ": cannot create directory: " + ec.message());

  std::string seq;
  for (size_t u = 0; u < dataset.sequences.size(); ++u) {
    seq += std::to_string(u + 1);
    for (int64_t i : dataset.sequences[u]) {
      seq += ' ';
      seq += std::to_string(i);
    }
    seq += '\n';
  }
  std::string tsv = "item_id\traw_id\ttitle\tbrand\tcategories\n";
  for (size_t i = 0; i < dataset.items.size(); ++i) {
    const AmazonItem& it = dataset.items[i];
    tsv += std::to_string(i + 1) + '\t' + it.raw_id + '\t' + it.title + '\t' + it.brand + '\t' +
           it.categories + '\n';
  }
  const std::filesystem::path d(dir);
  write_file_atomic((d / "sequences.txt").string(), seq);
  write_file_atomic((d / "items.tsv").string(), tsv);
  log().info("[data] wrote {} and {}", (d / "sequences.txt").string(), (d / "items.tsv").string());
}

}  // namespace coco::data
