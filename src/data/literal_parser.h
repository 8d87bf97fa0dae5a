// One line of JSON or Python literal syntax parsed into a Value tree; private to the raw
// Amazon converter (src/data/amazon_*.cpp). Not a general JSON library: numbers keep their
// spelling, nothing is written back, and a line holds exactly one value.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace coco::data::raw {

/// Which syntax a line may use; kEither accepts both (JSON true/false/null and Python
/// True/False/None, single quotes, tuples, trailing commas, u'' and b'' prefixes).
enum class Syntax { kJson, kPython, kEither };

/// "JSON", "Python literal" or "JSON/Python literal", for error messages.
const char* syntax_name(Syntax syntax);

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kList, kDict };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;               // string contents, or the spelling of a number
  std::vector<Value> items;       // list elements, or dict values
  std::vector<std::string> keys;  // dict keys, parallel to items

  /// The value of a dict key, or nullptr; the last duplicate wins, as in Python.
  const Value* find(std::string_view key) const {
    for (size_t i = keys.size(); i-- > 0;) {
      if (keys[i] == key) return &items[i];
    }
    return nullptr;
  }
};

/// Thrown by parse_literal_line; the caller adds the file and line.
struct ParseError {
  size_t column;  // 1-based byte column
  std::string message;
};

/// Parses `line` as exactly one value (surrounding whitespace allowed).
Value parse_literal_line(std::string_view line, Syntax syntax);

}  // namespace coco::data::raw
