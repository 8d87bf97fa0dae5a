// Review lines of a raw Amazon dump → reviews grouped by user, and the checked field access
// (objects, ids) that the metadata reader shares. Not the k-core (amazon_kcore.cpp) and not
// the metadata (amazon_meta.cpp).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "amazon_steps.h"
#include "coco/common/error.h"
#include "coco/data/text.h"

namespace coco::data::raw {

void Where::fail(const std::string& problem) const {
  throw DataError(reader.path() + ":" + std::to_string(reader.line_no()) + ": " + problem);
}

Value parse_object_line(std::string_view line, Syntax syntax, const Where& where) {
  Value v;
  try {
    v = parse_literal_line(line, syntax);
  } catch (const ParseError& e) {
    where.fail(std::string("invalid ") + syntax_name(syntax) + " at column " +
               std::to_string(e.column) + ": " + e.message);
  }
  if (v.kind != Value::Kind::kDict) where.fail("expected an object ({...}) on the line");
  return v;
}

bool uses_2023_names(AmazonFormat format, const Value& first, const char* probe) {
  if (format == AmazonFormat::kAuto) return first.find(probe) != nullptr;
  return format == AmazonFormat::k2023;
}

std::string id_field(const Value& obj, const char* name, const Where& where) {
  const Value* v = obj.find(name);
  if (v == nullptr) where.fail(std::string("missing field '") + name + "'");
  if (v->kind != Value::Kind::kString)
    where.fail(std::string("field '") + name + "' is not a string");
  if (v->text.empty()) where.fail(std::string("field '") + name + "' is empty");
  if (!is_valid_utf8(v->text)) where.fail(std::string("invalid UTF-8 in field '") + name + "'");
  for (char c : v->text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) {
      where.fail(std::string("field '") + name + "' contains whitespace or control characters");
    }
  }
  return v->text;
}

namespace {

// A time (unixReviewTime, timestamp) as Python's int() reads it: an integer, a float
// (truncated) or a string of digits.
int64_t time_field(const Value& obj, const char* name, const Where& where) {
  const Value* v = obj.find(name);
  if (v == nullptr) where.fail(std::string("missing field '") + name + "'");
  std::string spelled = v->text;
  if (v->kind == Value::Kind::kString) {
    const auto b = spelled.find_first_not_of(" \t");
    const auto e = spelled.find_last_not_of(" \t");
    spelled = b == std::string::npos ? "" : spelled.substr(b, e - b + 1);
    size_t digits_from = (!spelled.empty() && (spelled[0] == '-' || spelled[0] == '+')) ? 1 : 0;
    const bool ok = spelled.size() > digits_from &&
                    std::all_of(spelled.begin() + static_cast<std::ptrdiff_t>(digits_from),
                                spelled.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!ok) where.fail(std::string("non-numeric ") + name + " \"" + v->text + "\"");
  } else if (v->kind != Value::Kind::kNumber) {
    where.fail(std::string("non-numeric ") + name + " (not a number or string)");
  }
  errno = 0;
  char* end = nullptr;
  const long long as_int = std::strtoll(spelled.c_str(), &end, 10);
  if (errno == 0 && end != nullptr && *end == '\0') return as_int;
  const double d = std::strtod(spelled.c_str(), &end);
  if (end == nullptr || *end != '\0' || !std::isfinite(d) || std::fabs(d) > 9.2e18) {
    where.fail(std::string(name) + " out of range: " + spelled);
  }
  return static_cast<int64_t>(d);
}

}  // namespace

Reviews read_reviews(const std::string& path, AmazonFormat format) {
  const Syntax syntax = format == AmazonFormat::kAuto ? Syntax::kEither : Syntax::kJson;
  Reviews r;
  std::unordered_map<std::string, int32_t> user_index, item_index;
  int v2023 = -1;  // the field names, from the first record
  for_each_record(path, [&](std::string_view line, const Where& where) {
    const Value obj = parse_object_line(line, syntax, where);
    if (v2023 < 0) v2023 = uses_2023_names(format, obj, "user_id");
    // 2023: parent_asin, the product (asin is one of its variants), and milliseconds.
    std::string user = id_field(obj, v2023 ? "user_id" : "reviewerID", where);
    std::string item = id_field(obj, v2023 ? "parent_asin" : "asin", where);
    const int64_t time = time_field(obj, v2023 ? "timestamp" : "unixReviewTime", where);
    auto [uit, new_user] = user_index.try_emplace(user, static_cast<int32_t>(r.user_raw.size()));
    if (new_user) {
      r.user_raw.push_back(std::move(user));
      r.by_user.emplace_back();
    }
    auto [iit, new_item] = item_index.try_emplace(item, static_cast<int32_t>(r.item_raw.size()));
    if (new_item) r.item_raw.push_back(std::move(item));
    r.by_user[static_cast<size_t>(uit->second)].push_back({time, iit->second});
    ++r.lines;
  });
  return r;
}

}  // namespace coco::data::raw
