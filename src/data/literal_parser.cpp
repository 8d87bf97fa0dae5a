// Recursive-descent parser for one line of JSON or Python literal syntax (see
// literal_parser.h). Not a validator of what the fields mean: amazon_reviews.cpp and
// amazon_meta.cpp read the fields.
#include "literal_parser.h"

#include <cstdint>

#include "coco/data/text.h"

namespace coco::data::raw {
namespace {

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

  /// Steps over `c` when it is next; leaves i_ where it was otherwise.
  bool consume(char c) {
    if (i_ >= s_.size() || s_[i_] != c) return false;
    ++i_;
    return true;
  }

  /// A quote follows the character at i_ (a Python string prefix such as u'...').
  bool quote_follows() const {
    return i_ + 1 < s_.size() && (s_[i_ + 1] == '\'' || s_[i_ + 1] == '"');
  }

  Value parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    skip_ws();
    if (i_ >= s_.size()) fail("unexpected end of line");
    const char c = s_[i_];
    if (c == '{') return parse_dict(depth);
    if (c == '[') return parse_list(depth, ']');
    if (c == '(' && python_ok()) return parse_list(depth, ')');
    if (c == '"' || (c == '\'' && python_ok())) return parse_string_value(false);
    if (python_ok() && (c == 'u' || c == 'U' || c == 'b' || c == 'B') && quote_follows()) {
      const bool unicode = (c == 'u' || c == 'U');
      ++i_;
      return parse_string_value(unicode);
    }
    if (c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9')) return parse_number();
    return parse_keyword();
  }

  Value parse_keyword() {
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
        Value v;
        v.kind = kw.kind;
        v.boolean = kw.value;
        return v;
      }
    }
    fail(std::string("unexpected character '") + s_[i_] + "'");
  }

  Value parse_dict(int depth) {
    Value v;
    v.kind = Value::Kind::kDict;
    ++i_;  // '{'
    skip_ws();
    if (consume('}')) return v;
    while (true) {
      skip_ws();
      if (python_ok() && consume('}')) return v;  // trailing comma
      if (i_ >= s_.size()) fail("unexpected end of line inside an object");
      const bool u_prefix = python_ok() && s_[i_] == 'u' && quote_follows();
      if (u_prefix) ++i_;
      if (!(u_prefix || s_[i_] == '"' || (python_ok() && s_[i_] == '\''))) {
        fail("expected a string key");
      }
      Value key = parse_string_value(u_prefix);
      skip_ws();
      if (!consume(':')) fail("expected ':' after a key");
      v.keys.push_back(std::move(key.text));
      v.items.push_back(parse_value(depth + 1));
      skip_ws();
      if (consume(',')) continue;
      if (consume('}')) return v;
      fail("expected ',' or '}'");
    }
  }

  Value parse_list(int depth, char close) {
    Value v;
    v.kind = Value::Kind::kList;
    ++i_;  // '[' or '('
    skip_ws();
    if (consume(close)) return v;
    while (true) {
      skip_ws();
      if (python_ok() && consume(close)) return v;  // trailing comma
      v.items.push_back(parse_value(depth + 1));
      skip_ws();
      if (consume(',')) continue;
      if (consume(close)) return v;
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
    if (consume('.')) {
      frac_digits = digits();
      if (frac_digits == 0 && !python_ok()) fail("expected a digit after '.'");
    }
    if (int_digits == 0 && frac_digits == 0) fail("expected a digit");
    if (consume('e') || consume('E')) {
      if (!consume('+')) consume('-');
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    Value v;
    v.kind = Value::Kind::kNumber;
    v.text = std::string(s_.substr(start, i_ - start));
    if (python_ok() && !consume('L')) consume('l');  // Python 2 long
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
    if (had_x && !unicode_prefix && !is_valid_utf8(v.text)) {
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
      decode_escape(s_[i_++], out, x_is_code_point, had_x);
    }
  }

  // `e` follows a backslash: JSON's escapes (also valid in Python), then Python's own.
  void decode_escape(char e, std::string& out, bool x_is_code_point, bool& had_x) {
    static constexpr std::string_view kEscapes = "\"\\/bfnrt", kDecoded = "\"\\/\b\f\n\r\t";
    if (const size_t k = kEscapes.find(e); k != std::string_view::npos) {
      out += kDecoded[k];
      return;
    }
    if (e == 'u') {
      append_code_point(out, read_hex(4), true);
      return;
    }
    if (!python_ok()) {
      --i_;
      fail(std::string("invalid escape '\\") + e + "'");
    }
    decode_python_escape(e, out, x_is_code_point, had_x);
  }

  void decode_python_escape(char e, std::string& out, bool x_is_code_point, bool& had_x) {
    static constexpr std::string_view kEscapes = "'av", kDecoded = "'\a\v";
    if (const size_t k = kEscapes.find(e); k != std::string_view::npos) {
      out += kDecoded[k];
    } else if (e == 'U') {
      append_code_point(out, read_hex(8), false);
    } else if (e == 'x') {
      const uint32_t byte = read_hex(2);
      had_x = true;
      if (x_is_code_point) {
        append_utf8(out, byte);
      } else {
        out += static_cast<char>(byte);
      }
    } else if (e >= '0' && e <= '7') {
      uint32_t value = static_cast<uint32_t>(e - '0');
      for (int n = 0; n < 2 && i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '7'; ++n) {
        value = value * 8 + static_cast<uint32_t>(s_[i_++] - '0');
      }
      append_utf8(out, value);
    } else {
      out += '\\';  // Python keeps unknown escapes verbatim
      out += e;
    }
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

}  // namespace

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

Value parse_literal_line(std::string_view line, Syntax syntax) {
  return Parser(line, syntax).parse_line();
}

}  // namespace coco::data::raw
