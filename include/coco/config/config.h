// JSON configuration: loading with `--set a.b=v` overrides, and ConfigNode, the typed,
// path-aware reader every component uses to parse its own sub-object.
// Not a schema language: each component's options struct says what it accepts.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace coco {

using Json = nlohmann::json;

/// The deepest nesting of arrays and objects any JSON file CoCo reads may have.
constexpr int kMaxJsonDepth = 256;

/// Parses JSON text read from a file. Invalid JSON, or nesting deeper than kMaxJsonDepth,
/// throws nothing: it returns false and sets `error` to "LINE:COLUMN: invalid JSON: ..." (or
/// " invalid JSON: ..." where the parser gives no position), for the caller to prefix with
/// "FILE:" and throw as its own kind of error.
bool parse_json(const std::string& text, Json& out, std::string& error);

/// Reads a JSON file (parse_json); an error names the file, line and column.
Json read_json_file(const std::string& path);

/// Writes JSON to `path` atomically (temporary file, then rename), indented.
void write_json_atomic(const std::string& path, const Json& value);

/// Applies one override "a.b.c=value" to `config`. The value is parsed as JSON when it
/// is valid JSON (numbers, true/false, null, arrays, quoted strings) and taken as a
/// plain string otherwise. Intermediate objects are created as needed.
void apply_override(Json& config, const std::string& assignment);

/// A view of one JSON object inside a config, at a JSON-pointer path ("/model").
/// Reading a key with a default writes the default back, so that the config, once every
/// component has parsed its part, is the fully resolved config. finish() rejects keys
/// nobody read: a typo must never silently fall back to a default.
class ConfigNode {
 public:
  /// `root` must outlive the node; `source` (usually the file name) prefixes errors.
  ConfigNode(Json& root, std::string source);

  const std::string& path() const { return path_; }
  bool has(const std::string& key) const;

  ConfigNode child(const std::string& key);  // creates {} when absent

  /// Replaces a value read earlier with its resolved form (e.g. the path a search found),
  /// so that the saved config holds what was used.
  void set(const std::string& key, Json value);

  bool get_bool(const std::string& key, bool def);
  int64_t get_int(const std::string& key, int64_t def, int64_t min = INT64_MIN,
                  int64_t max = INT64_MAX);
  double get_double(const std::string& key, double def, double min = -1e300, double max = 1e300);
  std::string get_string(const std::string& key, const std::string& def);
  /// A string that must be one of `choices`.
  std::string get_choice(const std::string& key, const std::string& def,
                         std::initializer_list<const char*> choices);
  /// A string that must be one of `choices`, returned as the value it names: config
  /// strings end here, and the options hold enums.
  template <typename E>
  E get_enum(const std::string& key, E def,
             std::initializer_list<std::pair<const char*, E>> choices);
  std::vector<int64_t> get_int_list(const std::string& key, const std::vector<int64_t>& def,
                                    int64_t min = INT64_MIN);
  std::vector<std::string> get_string_list(const std::string& key,
                                           const std::vector<std::string>& def);
  /// Optional string: empty when absent or null.
  std::string get_optional_string(const std::string& key);
  /// The raw JSON value of a key (marks it read); null when absent.
  const Json& raw(const std::string& key);

  /// Throws ConfigError for every key of this object that no getter has read.
  void finish() const;

  /// Throws "<source>: config error at <path>/<key>: <message>".
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

 private:
  ConfigNode(Json* node, std::string source, std::string path);
  /// The index in `names` of the string at `key` (`def` when absent).
  size_t get_choice_index(const std::string& key, const char* def,
                          const std::vector<const char*>& names);
  Json& slot(const std::string& key);  // marks read; creates null when absent

  Json* node_;
  std::string source_;
  std::string path_;
  std::shared_ptr<std::set<std::string>> read_;
};

template <typename E>
E ConfigNode::get_enum(const std::string& key, E def,
                       std::initializer_list<std::pair<const char*, E>> choices) {
  std::vector<const char*> names;
  const char* def_name = nullptr;
  for (const auto& [name, value] : choices) {
    names.push_back(name);
    if (value == def) def_name = name;
  }
  return (choices.begin() + get_choice_index(key, def_name, names))->second;
}

/// Short JSON rendering of a value for error messages ("5", "\"abc\"", "[1,2]").
std::string describe(const Json& value);

}  // namespace coco
