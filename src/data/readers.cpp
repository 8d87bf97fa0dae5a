// Readers for the uniform format (sequences.txt + items.tsv) and RecBole atomic files.
#include "coco/data/readers.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <unordered_map>

#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/data/text.h"

namespace fs = std::filesystem;

namespace coco {

void ItemCatalog::resize(size_t n) {
  for (auto* field : {&raw_id, &title, &brand, &categories, &features, &description})
    field->resize(n);
}

void Interactions::add_user(const std::vector<int32_t>& seq) {
  items.insert(items.end(), seq.begin(), seq.end());
  offsets.push_back(static_cast<int64_t>(items.size()));
}

DataOptions DataOptions::from_config(ConfigNode& node) {
  DataOptions o;
  o.name = node.get_string("name", "");
  if (o.name.empty())
    node.fail("name", "required: the dataset's folder name, e.g. \"amazon-beauty\"");
  o.path = node.get_optional_string("path");
  o.format = node.get_enum("format", o.format,
                           {{"uniform", DataFormat::kUniform}, {"recbole", DataFormat::kRecBole}});
  o.max_len = node.get_int("max_len", o.max_len, 1, 4096);
  o.min_length = node.get_int("min_length", o.min_length, 3);
  o.title_field = node.get_string("title_field", o.title_field);
  o.max_users = node.get_int("max_users", o.max_users, 0);
  node.finish();
  return o;
}

namespace {

std::string at(const std::string& file, int64_t line) {
  return file + ":" + std::to_string(line) + ": ";
}

void check_utf8(const std::string& file, int64_t line, const char* column, std::string_view v) {
  if (auto off = invalid_utf8_offset(v); off != std::string_view::npos) {
    throw DataError(at(file, line) + "invalid UTF-8 in column '" + column + "' at byte " +
                    std::to_string(off));
  }
}

}  // namespace

ItemCatalog read_items_tsv(const std::string& file) {
  const std::string text = read_file(file);
  if (text.empty()) throw DataError(file + ": empty file (expected a header and one row per item)");
  static const char* kColumns[] = {"item_id",    "raw_id",   "title",      "brand",
                                   "categories", "features", "description"};
  static std::vector<std::string> ItemCatalog::*const kFields[] = {nullptr,
                                                                   &ItemCatalog::raw_id,
                                                                   &ItemCatalog::title,
                                                                   &ItemCatalog::brand,
                                                                   &ItemCatalog::categories,
                                                                   &ItemCatalog::features,
                                                                   &ItemCatalog::description};
  constexpr int kKnown = 7;
  ItemCatalog cat;
  std::vector<int> col_of(kKnown, -1);  // position of each known column in the header
  size_t num_columns = 0;
  for_each_line(file, text, [&](int64_t line_no, std::string_view line) {
    const auto fields = split(line, '\t');
    if (line_no == 1) {
      num_columns = fields.size();
      for (size_t i = 0; i < fields.size(); ++i) {
        for (int k = 0; k < kKnown; ++k) {
          if (fields[i] == kColumns[k]) col_of[k] = static_cast<int>(i);
        }
      }
      if (col_of[0] != 0) {
        throw DataError(at(file, 1) + "header must start with column 'item_id' (expected " +
                        "item_id, raw_id, title, brand, categories separated by tabs)");
      }
      return;
    }
    if (fields.size() != num_columns) {
      throw DataError(at(file, line_no) + "expected " + std::to_string(num_columns) +
                      " tab-separated columns, got " + std::to_string(fields.size()));
    }
    int64_t id = 0;
    if (!parse_uint(fields[0], id)) {
      throw DataError(at(file, line_no) + "item_id '" + std::string(fields[0]) +
                      "' is not a positive integer");
    }
    if (id != cat.size() + 1) {
      throw DataError(at(file, line_no) + "expected item_id " + std::to_string(cat.size() + 1) +
                      " (rows must list ids 1..N in order), got " + std::to_string(id));
    }
    cat.resize(static_cast<size_t>(id));
    for (int k = 1; k < kKnown; ++k) {
      if (col_of[k] < 0) continue;
      const std::string_view v = fields[col_of[k]];
      check_utf8(file, line_no, kColumns[k], v);
      (cat.*kFields[k]).back() = std::string(v);
    }
  });
  if (cat.size() == 0) throw DataError(file + ": no item rows after the header");
  return cat;
}

Interactions read_sequences_txt(const std::string& file, int64_t num_items, int64_t min_length) {
  const std::string text = read_file(file);
  if (text.empty()) {
    throw DataError(file + ": empty file (expected one line per user: 'user_id item_id ...')");
  }
  Interactions data;
  data.num_items = num_items;
  std::vector<int32_t> seq;
  for_each_line(file, text, [&](int64_t line_no, std::string_view line) {
    if (line.empty()) throw DataError(at(file, line_no) + "empty line");
    const auto tokens = split(line, ' ');
    int64_t user = 0;
    if (!parse_uint(tokens[0], user)) {
      throw DataError(at(file, line_no) + "user id '" + std::string(tokens[0]) +
                      "' is not a positive integer");
    }
    const int64_t expected = data.num_users() + 1;
    if (user < expected) {
      throw DataError(at(file, line_no) + "duplicate user " + std::to_string(user) +
                      " (already on line " + std::to_string(user) + ")");
    }
    if (user != expected) {
      throw DataError(at(file, line_no) + "expected user id " + std::to_string(expected) +
                      " (users are numbered 1..U in order), got " + std::to_string(user));
    }
    seq.clear();
    for (size_t t = 1; t < tokens.size(); ++t) {
      int64_t item = 0;
      if (!parse_uint(tokens[t], item)) {
        throw DataError(at(file, line_no) + "item id '" + std::string(tokens[t]) + "' (token " +
                        std::to_string(t + 1) + ") is not a positive integer");
      }
      if (item < 1 || item > num_items) {
        throw DataError(at(file, line_no) + "item id " + std::to_string(item) +
                        " is out of range 1.." + std::to_string(num_items) +
                        " (the number of rows in items.tsv)");
      }
      seq.push_back(static_cast<int32_t>(item));
    }
    if (static_cast<int64_t>(seq.size()) < min_length) {
      throw DataError(at(file, line_no) + "user " + std::to_string(user) + " has " +
                      std::to_string(seq.size()) + " items; leave-one-out needs at least " +
                      std::to_string(min_length));
    }
    data.add_user(seq);
  });
  return data;
}

namespace {

struct AtomicHeader {
  std::vector<std::string> names;  // field names without the ":type" suffix
  int index(const std::string& name) const {
    auto it = std::find(names.begin(), names.end(), name);
    return it == names.end() ? -1 : static_cast<int>(it - names.begin());
  }
};

AtomicHeader parse_atomic_header(std::string_view line) {
  AtomicHeader h;
  for (auto f : split(line, '\t')) h.names.emplace_back(f.substr(0, f.find(':')));
  return h;
}

// Reads a RecBole atomic file: its typed header goes to on_header(header), then each row,
// checked to hold one field per header field, to on_row(line_no, fields).
template <typename OnHeader, typename OnRow>
void read_atomic_file(const std::string& file, OnHeader&& on_header, OnRow&& on_row) {
  const std::string text = read_file(file);
  if (text.empty()) throw DataError(file + ": empty file");
  AtomicHeader h;
  for_each_line(file, text, [&](int64_t line_no, std::string_view line) {
    const auto f = split(line, '\t');
    if (line_no == 1) {
      h = parse_atomic_header(line);
      on_header(h);
      return;
    }
    if (f.size() != h.names.size()) {
      throw DataError(at(file, line_no) + "expected " + std::to_string(h.names.size()) +
                      " tab-separated fields, got " + std::to_string(f.size()));
    }
    on_row(line_no, f);
  });
}

std::string join_tokens(std::string_view token_seq) {
  std::string out;
  for (auto t : split(token_seq, ' ')) {
    if (t.empty()) continue;
    if (!out.empty()) out += " | ";
    out += t;
  }
  return out;
}

// The fields of <name>.item the catalogue takes; -1 where the file has none.
struct ItemColumns {
  int id = -1, title = -1, brand = -1, categories = -1;
};

ItemColumns item_columns(const AtomicHeader& h, const std::string& file, const DataOptions& opt) {
  ItemColumns c;
  c.id = h.index("item_id");
  if (c.id < 0) throw DataError(at(file, 1) + "header has no 'item_id' field");
  std::vector<std::string> title_names = {"title", "movie_title", "name"};
  if (!opt.title_field.empty()) title_names = {opt.title_field};
  for (const auto& n : title_names) {
    if (c.title < 0) c.title = h.index(n);
  }
  if (!opt.title_field.empty() && c.title < 0) {
    throw DataError(at(file, 1) + "header has no field '" + opt.title_field +
                    "' (data.title_field)");
  }
  c.brand = h.index("brand");
  for (const char* n : {"categories", "class", "genre"}) {
    if (c.categories < 0) c.categories = h.index(n);
  }
  return c;
}

// <name>.item: one catalogue row per item, numbered 1.. in file order into `item_id`.
void read_recbole_items(const std::string& file, const DataOptions& opt, ItemCatalog& cat,
                        std::unordered_map<std::string, int32_t>& item_id) {
  ItemColumns col;
  read_atomic_file(
      file, [&](const AtomicHeader& h) { col = item_columns(h, file, opt); },
      [&](int64_t line_no, const std::vector<std::string_view>& f) {
        const std::string raw(f[col.id]);
        if (!item_id.emplace(raw, static_cast<int32_t>(item_id.size() + 1)).second) {
          throw DataError(at(file, line_no) + "duplicate item '" + raw + "'");
        }
        for (auto v : f) check_utf8(file, line_no, "text", v);
        cat.raw_id.push_back(raw);
        cat.title.emplace_back(col.title >= 0 ? f[col.title] : "");
        cat.brand.emplace_back(col.brand >= 0 ? f[col.brand] : "");
        cat.categories.push_back(col.categories >= 0 ? join_tokens(f[col.categories]) : "");
      });
}

struct InterRow {
  int32_t user, item;  // user: 0-based, in order of first appearance; item: 1-based
  double time;
};

struct InterRows {
  std::vector<InterRow> rows;
  std::unordered_map<std::string, int32_t> user_id;
};

double parse_timestamp(const std::string& file, int64_t line_no, std::string_view field) {
  const std::string ts(field);
  char* end = nullptr;
  const double t = std::strtod(ts.c_str(), &end);
  if (ts.empty() || *end != '\0') {
    throw DataError(at(file, line_no) + "timestamp '" + ts + "' is not a number");
  }
  return t;
}

// <name>.inter. Without a .item file (`item_id` empty) items are numbered as they appear
// and their raw ids go into `cat`; with one, every item must be in it.
InterRows read_recbole_inter(const std::string& file, const std::string& name,
                             std::unordered_map<std::string, int32_t>& item_id, ItemCatalog& cat) {
  const bool have_items = !item_id.empty();
  InterRows out;
  int ucol = -1, icol = -1, tcol = -1;
  const auto on_header = [&](const AtomicHeader& h) {
    ucol = h.index("user_id");
    icol = h.index("item_id");
    tcol = h.index("timestamp");
    if (ucol < 0 || icol < 0) {
      throw DataError(at(file, 1) + "header needs fields 'user_id' and 'item_id'");
    }
  };
  read_atomic_file(file, on_header, [&](int64_t line_no, const std::vector<std::string_view>& f) {
    const std::string u(f[ucol]), i(f[icol]);
    auto uit = out.user_id.emplace(u, static_cast<int32_t>(out.user_id.size())).first;
    auto iit = item_id.find(i);
    if (iit == item_id.end()) {
      if (have_items) {
        throw DataError(at(file, line_no) + "item '" + i + "' is not in " + name + ".item");
      }
      iit = item_id.emplace(i, static_cast<int32_t>(item_id.size() + 1)).first;
      cat.raw_id.push_back(i);
    }
    const double t =
        tcol >= 0 ? parse_timestamp(file, line_no, f[tcol]) : static_cast<double>(out.rows.size());
    out.rows.push_back({uit->second, iit->second, t});
  });
  if (out.rows.empty()) throw DataError(file + ": no interactions after the header");
  return out;
}

// Groups rows by user (in order of first appearance), each user's items by time (stable).
void group_by_user(const InterRows& in, const std::string& file, int64_t min_length, Dataset& ds) {
  const auto& rows = in.rows;
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return rows[a].user != rows[b].user ? rows[a].user < rows[b].user : rows[a].time < rows[b].time;
  });
  ds.user_raw_ids.resize(in.user_id.size());
  for (const auto& [raw, id] : in.user_id) ds.user_raw_ids[id] = raw;
  std::vector<int32_t> seq;
  for (size_t k = 0; k < order.size(); ++k) {
    seq.push_back(rows[order[k]].item);
    if (k + 1 == order.size() || rows[order[k + 1]].user != rows[order[k]].user) {
      if (static_cast<int64_t>(seq.size()) < min_length) {
        throw DataError(file + ": user '" + ds.user_raw_ids[rows[order[k]].user] + "' has " +
                        std::to_string(seq.size()) +
                        " interactions; leave-one-out needs at least " +
                        std::to_string(min_length));
      }
      ds.interactions.add_user(seq);
      seq.clear();
    }
  }
}

}  // namespace

Dataset read_recbole(const std::string& dir, const std::string& name, const DataOptions& opt) {
  Dataset ds;
  ds.name = name;
  ds.directory = dir;
  std::unordered_map<std::string, int32_t> item_id;
  const std::string item_file = (fs::path(dir) / (name + ".item")).string();
  if (fs::exists(item_file)) read_recbole_items(item_file, opt, ds.catalog, item_id);
  const std::string inter_file = (fs::path(dir) / (name + ".inter")).string();
  const InterRows rows = read_recbole_inter(inter_file, name, item_id, ds.catalog);
  const size_t n_items = item_id.size();
  ds.interactions.num_items = static_cast<int64_t>(n_items);
  ds.catalog.resize(n_items);
  group_by_user(rows, inter_file, opt.min_length, ds);
  return ds;
}

std::string locate_dataset(const DataOptions& opt, const std::string& config_dir) {
  const std::string marker =
      opt.format == DataFormat::kUniform ? "sequences.txt" : opt.name + ".inter";
  std::vector<fs::path> candidates;
  if (!opt.path.empty()) {
    candidates.push_back(opt.path);
    if (!config_dir.empty() && fs::path(opt.path).is_relative()) {
      candidates.push_back(fs::path(config_dir) / ".." / opt.path);
    }
  } else {
    for (const fs::path& base :
         {fs::path("."), fs::path(config_dir.empty() ? "." : config_dir) / ".."}) {
      candidates.push_back(base / "data" / opt.name);
      candidates.push_back(base / ".." / "shared" / "data" / opt.name);
    }
  }
  std::string looked;
  for (const auto& c : candidates) {
    const fs::path p = c.lexically_normal();
    if (fs::exists(p / marker)) return p.string();
    const std::string shown = (p / marker).string();
    if (looked.find(shown) == std::string::npos) looked += (looked.empty() ? "" : ", ") + shown;
  }
  throw DataError("dataset '" + opt.name + "' not found; looked for " + looked +
                  " (set data.path or place the files there)");
}

Dataset load_dataset(const DataOptions& opt, const std::string& config_dir) {
  const std::string dir = locate_dataset(opt, config_dir);
  Dataset ds;
  if (opt.format == DataFormat::kUniform) {
    ds.name = opt.name;
    ds.directory = dir;
    ds.catalog = read_items_tsv((fs::path(dir) / "items.tsv").string());
    ds.interactions = read_sequences_txt((fs::path(dir) / "sequences.txt").string(),
                                         ds.catalog.size(), opt.min_length);
  } else {
    ds = read_recbole(dir, opt.name, opt);
  }
  auto& in = ds.interactions;
  if (opt.max_users > 0 && opt.max_users < in.num_users()) {  // the item catalogue stays whole
    in.offsets.resize(static_cast<size_t>(opt.max_users + 1));
    in.items.resize(static_cast<size_t>(in.offsets.back()));
    if (!ds.user_raw_ids.empty()) ds.user_raw_ids.resize(static_cast<size_t>(opt.max_users));
  }
  log().info("[data] {}: {} users, {} items, {} interactions (avg length {:.2f}) from {}", ds.name,
             in.num_users(), in.num_items, in.items.size(),
             static_cast<double>(in.items.size()) / std::max<int64_t>(1, in.num_users()), dir);
  return ds;
}

}  // namespace coco
