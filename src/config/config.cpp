// JSON config loading, overrides and the path-aware ConfigNode reader.
#include "coco/config/config.h"

#include <fstream>
#include <sstream>

#include "coco/common/atomic_file.h"
#include "coco/common/error.h"

namespace coco {

namespace {

std::string line_column(const std::string& text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

// The offset of the first bracket that opens level kMaxJsonDepth + 1 (outside strings), or
// npos. nlohmann's parser is not recursive, but every reader of the result walks it.
size_t too_deep_at(const std::string& text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string::npos;
}

}  // namespace

bool parse_json(const std::string& text, Json& out, std::string& error) {
  if (const size_t at = too_deep_at(text); at != std::string::npos) {
    error = line_column(text, at) + ": invalid JSON: nested deeper than " +
            std::to_string(kMaxJsonDepth) + " levels";
    return false;
  }
  try {
    out = Json::parse(text);
    return true;
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    if (auto p = what.find("syntax error"); p != std::string::npos) what = what.substr(p);
    error = line_column(text, e.byte > 0 ? e.byte - 1 : 0) + ": invalid JSON: " + what;
    return false;
  } catch (const Json::exception& e) {  // a number too large for any type: no position
    error = std::string(" invalid JSON: ") + e.what();
    return false;
  }
}

Json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open config file");
  std::stringstream buf;
  buf << in.rdbuf();
  Json config;
  std::string error;
  if (!parse_json(buf.str(), config, error)) throw ConfigError(path + ":" + error);
  return config;
}

void apply_override(Json& config, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("--set " + assignment + ": expected KEY.PATH=VALUE");
  }
  try {
    (void)Json(assignment).dump();  // a JSON file is UTF-8, and so must an override be
  } catch (const Json::type_error&) {
    throw ConfigError("--set " +
                      Json(assignment).dump(-1, ' ', false, Json::error_handler_t::replace) +
                      ": not valid UTF-8");
  }
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;

  Json* node = &config;
  std::stringstream parts(key);
  std::string part, pointer;
  std::vector<std::string> names;
  while (std::getline(parts, part, '.')) names.push_back(part);
  for (size_t i = 0; i < names.size(); ++i) {
    pointer += "/" + names[i];
    if (names[i].empty()) throw ConfigError("--set " + assignment + ": empty key in path");
    if (node->is_null()) *node = Json::object();
    if (!node->is_object()) {
      throw ConfigError("--set " + assignment + ": " + pointer + " is not inside an object");
    }
    node = &(*node)[names[i]];
  }
  *node = value;
}

std::string describe(const Json& value) {
  std::string s = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

ConfigNode::ConfigNode(Json& root, std::string source) : ConfigNode(&root, std::move(source), "") {}

ConfigNode::ConfigNode(Json* node, std::string source, std::string path)
    : node_(node),
      source_(std::move(source)),
      path_(std::move(path)),
      read_(std::make_shared<std::set<std::string>>()) {
  if (node_->is_null()) *node_ = Json::object();
  if (!node_->is_object()) {
    throw ConfigError(source_ + ": config error at " + (path_.empty() ? "/" : path_) +
                      ": expected an object, got " + describe(*node_));
  }
}

void ConfigNode::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(source_ + ": config error at " + path_ + "/" + key + ": " + message);
}

bool ConfigNode::has(const std::string& key) const {
  return node_->contains(key) && !(*node_)[key].is_null();
}

Json& ConfigNode::slot(const std::string& key) {
  read_->insert(key);
  return (*node_)[key];
}

const Json& ConfigNode::raw(const std::string& key) { return slot(key); }

void write_json_atomic(const std::string& path, const Json& value) {
  write_file_atomic(path, value.dump(2) + "\n");
}

void ConfigNode::set(const std::string& key, Json value) { slot(key) = std::move(value); }

ConfigNode ConfigNode::child(const std::string& key) {
  return ConfigNode(&slot(key), source_, path_ + "/" + key);
}

bool ConfigNode::get_bool(const std::string& key, bool def) {
  Json& v = slot(key);
  if (v.is_null()) v = def;
  if (!v.is_boolean()) fail(key, "expected true or false, got " + describe(v));
  return v.get<bool>();
}

int64_t ConfigNode::get_int(const std::string& key, int64_t def, int64_t min, int64_t max) {
  Json& v = slot(key);
  if (v.is_null()) v = def;
  if (!v.is_number_integer()) fail(key, "expected an integer, got " + describe(v));
  const int64_t x = v.get<int64_t>();
  if (x < min || x > max) {
    std::string range = max == INT64_MAX ? ">= " + std::to_string(min)
                        : min == INT64_MIN
                            ? "<= " + std::to_string(max)
                            : "in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    fail(key, "must be " + range + ", got " + std::to_string(x));
  }
  return x;
}

double ConfigNode::get_double(const std::string& key, double def, double min, double max) {
  Json& v = slot(key);
  if (v.is_null()) v = def;
  if (!v.is_number()) fail(key, "expected a number, got " + describe(v));
  const double x = v.get<double>();
  if (!(x >= min && x <= max)) {
    std::ostringstream range;
    range << "must be in [" << min << ", " << max << "], got " << x;
    fail(key, range.str());
  }
  return x;
}

std::string ConfigNode::get_string(const std::string& key, const std::string& def) {
  Json& v = slot(key);
  if (v.is_null()) v = def;
  if (!v.is_string()) fail(key, "expected a string, got " + describe(v));
  return v.get<std::string>();
}

std::string ConfigNode::get_optional_string(const std::string& key) {
  Json& v = slot(key);
  if (v.is_null()) return "";
  if (!v.is_string()) fail(key, "expected a string or null, got " + describe(v));
  return v.get<std::string>();
}

std::string ConfigNode::get_choice(const std::string& key, const std::string& def,
                                   std::initializer_list<const char*> choices) {
  const std::vector<const char*> names(choices);
  return names[get_choice_index(key, def.c_str(), names)];
}

size_t ConfigNode::get_choice_index(const std::string& key, const char* def,
                                    const std::vector<const char*>& names) {
  const std::string s = get_string(key, def);
  std::string list;
  for (size_t i = 0; i < names.size(); ++i) {
    if (s == names[i]) return i;
    list += (list.empty() ? "" : ", ") + std::string(names[i]);
  }
  fail(key, "expected one of " + list + ", got \"" + s + "\"");
}

std::vector<int64_t> ConfigNode::get_int_list(const std::string& key,
                                              const std::vector<int64_t>& def, int64_t min) {
  Json& v = slot(key);
  if (v.is_null()) v = def;
  if (!v.is_array()) fail(key, "expected an array of integers, got " + describe(v));
  std::vector<int64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer() || v[i].get<int64_t>() < min) {
      fail(key + "/" + std::to_string(i),
           "expected an integer >= " + std::to_string(min) + ", got " + describe(v[i]));
    }
    out.push_back(v[i].get<int64_t>());
  }
  return out;
}

std::vector<std::string> ConfigNode::get_string_list(const std::string& key,
                                                     const std::vector<std::string>& def) {
  Json& v = slot(key);
  if (v.is_null()) v = def;
  if (!v.is_array()) fail(key, "expected an array of strings, got " + describe(v));
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) {
      fail(key + "/" + std::to_string(i), "expected a string, got " + describe(v[i]));
    }
    out.push_back(v[i].get<std::string>());
  }
  return out;
}

void ConfigNode::finish() const {
  for (const auto& item : node_->items()) {
    if (!read_->count(item.key())) {
      std::string known;
      for (const auto& k : *read_) known += (known.empty() ? "" : ", ") + k;
      fail(item.key(), "unknown key (known keys here: " + known + ")");
    }
  }
}

}  // namespace coco
