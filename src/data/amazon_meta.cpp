// Metadata lines of a raw Amazon dump → each kept item's title, brand, categories, features
// and description, and the text cleaning every items.tsv field goes through. Not the reviews
// (amazon_reviews.cpp) and not the file writer (amazon_raw.cpp).
#include <unordered_set>
#include <utility>

#include "amazon_steps.h"
#include "coco/common/log.h"
#include "coco/data/text.h"

namespace coco::data {
namespace {

// A numeric entity's name ("#233", "#xE9"): the code point it names, when it names one.
bool numeric_entity(std::string_view name, uint32_t& cp) {
  if (name.size() < 2 || name[0] != '#') return false;
  const bool hex = name[1] == 'x' || name[1] == 'X';
  const std::string_view digits = name.substr(hex ? 2 : 1);
  if (digits.empty()) return false;
  cp = 0;
  for (char c : digits) {
    const int d = hex ? hex_digit(c) : (c >= '0' && c <= '9' ? c - '0' : -1);
    if (d < 0 || cp > 0x10FFFF) return false;
    cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(d);
  }
  return cp > 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

// Appends what the entity &name; stands for; false (nothing appended) for any other name.
bool append_entity(std::string_view name, std::string& out) {
  static const std::pair<std::string_view, std::string_view> kNamed[] = {
      {"amp", "&"}, {"quot", "\""}, {"apos", "'"}, {"lt", "<"}, {"gt", ">"}, {"nbsp", " "}};
  for (const auto& [n, repl] : kNamed) {
    if (name == n) {
      out += repl;
      return true;
    }
  }
  uint32_t cp = 0;
  if (!numeric_entity(name, cp)) return false;
  append_utf8(out, cp);
  return true;
}

// One pass, so "&amp;lt;" becomes "&lt;" (as Python's html.unescape).
std::string unescape_html_entities(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '&') {
      const size_t semi = text.find(';', i);
      if (semi != std::string::npos && semi - i <= 10 &&
          append_entity(std::string_view(text).substr(i + 1, semi - i - 1), out)) {
        i = semi + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

// Every ASCII space-like character becomes one space, runs collapse, ends are trimmed.
std::string collapse_whitespace(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char c : text) {
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

}  // namespace

std::string clean_text(const std::string& text) {
  return collapse_whitespace(unescape_html_entities(text));
}

namespace raw {
namespace {

// A UTF-8 string, cleaned; `field` names it in the error.
std::string cleaned_string(const Value& v, const char* field, const Where& where) {
  if (!is_valid_utf8(v.text)) where.fail(std::string("invalid UTF-8 in field '") + field + "'");
  return clean_text(v.text);
}

// Optional text field: missing or None -> "", otherwise a UTF-8 string, cleaned.
std::string text_field(const Value& obj, const char* name, const Where& where) {
  const Value* v = obj.find(name);
  if (v == nullptr || v->kind == Value::Kind::kNull) return "";
  if (v->kind != Value::Kind::kString)
    where.fail(std::string("field '") + name + "' is not a string");
  return cleaned_string(*v, name, where);
}

// Optional text or list of texts: cleaned, empty ones dropped, joined with `sep`.
std::string texts_field(const Value& obj, const char* name, const char* sep, const Where& where) {
  const Value* v = obj.find(name);
  if (v == nullptr || v->kind != Value::Kind::kList) return text_field(obj, name, where);
  std::string out;
  for (const Value& e : v->items) {
    if (e.kind != Value::Kind::kString)
      where.fail(std::string("field '") + name + "' holds a non-string entry");
    const std::string text = cleaned_string(e, name, where);
    if (text.empty()) continue;
    if (!out.empty()) out += sep;
    out += text;
  }
  return out;
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
      std::string name = cleaned_string(*path[i], field, where);
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

}  // namespace

void read_meta(const std::string& path, AmazonFormat format,
               const std::unordered_map<std::string, size_t>& wanted, AmazonDataset& out) {
  const Syntax syntax = format == AmazonFormat::kAuto   ? Syntax::kEither
                        : format == AmazonFormat::k2014 ? Syntax::kPython
                                                        : Syntax::kJson;  // 2018, 2023
  std::vector<bool> have(out.items.size(), false);
  int64_t lines = 0, repeated = 0;
  int v2023 = -1;  // the field names, from the first record
  for_each_record(path, [&](std::string_view line, const Where& where) {
    ++lines;
    const Value obj = parse_object_line(line, syntax, where);
    if (v2023 < 0) v2023 = uses_2023_names(format, obj, "parent_asin");
    const std::string asin = id_field(obj, v2023 ? "parent_asin" : "asin", where);
    const auto it = wanted.find(asin);
    if (it == wanted.end()) return;
    if (have[it->second]) {  // the 2018 dumps repeat some products: first line wins
      ++repeated;
      return;
    }
    have[it->second] = true;
    AmazonItem& item = out.items[it->second];
    item.title = text_field(obj, "title", where);
    item.brand = text_field(obj, v2023 ? "store" : "brand", where);
    item.categories = categories_field(obj, where);
    item.features = texts_field(obj, v2023 ? "features" : "feature", " | ", where);
    item.description = texts_field(obj, "description", " ", where);
    ++out.items_with_meta;
    if (!item.title.empty()) ++out.items_with_title;
  });
  log().info("[data] {}: {} metadata lines, {} of {} items found, {} repeated lines ignored", path,
             lines, out.items_with_meta, out.items.size(), repeated);
}

}  // namespace raw
}  // namespace coco::data
