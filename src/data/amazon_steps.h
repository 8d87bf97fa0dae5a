// The steps of convert_amazon_raw() and the field access they share, private to
// src/data/amazon_*.cpp; the public API is include/coco/data/amazon_raw.h. Not a reader of
// the uniform format (readers.h) and not used by training.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "coco/data/amazon_raw.h"
#include "line_reader.h"
#include "literal_parser.h"

namespace coco::data::raw {

/// Errors "<file>:<line>: <problem>" for the line `reader` is on.
struct Where {
  const LineReader& reader;
  [[noreturn]] void fail(const std::string& problem) const;
};

/// Calls fn(line) for each line of `path` that holds more than spaces and tabs, with `where`
/// naming that line.
template <typename Fn>
void for_each_record(const std::string& path, Fn&& fn) {
  LineReader reader(path);
  const Where where{reader};
  std::string_view line;
  while (reader.next(line)) {
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    fn(line, where);
  }
}

/// The line parsed in `syntax`; it must hold an object ({...}).
Value parse_object_line(std::string_view line, Syntax syntax, const Where& where);

/// Whether a file's records use the 2023 field names: by `format`, or in auto mode by its
/// first record (`first`), which has the field `probe` only in 2023.
bool uses_2023_names(AmazonFormat format, const Value& first, const char* probe);

/// A raw id (reviewerID, asin): non-empty UTF-8 without whitespace or control characters,
/// since it is written verbatim into a space/tab separated file.
std::string id_field(const Value& obj, const char* name, const Where& where);

// --- reviews (amazon_reviews.cpp) ------------------------------------------------------

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

/// Every review line of `path`, grouped by user in file order.
Reviews read_reviews(const std::string& path, AmazonFormat format);

// --- k-core and numbering (amazon_kcore.cpp) -------------------------------------------

/// Each user's items (indices into item_raw), oldest first, ties in file order; with
/// `drop_duplicates` only a user's earliest review of an item, counting the others in
/// `dropped`. Empties reviews.by_user.
std::vector<std::vector<int32_t>> chronological_sequences(Reviews& reviews, bool drop_duplicates,
                                                          int64_t& dropped);

/// Iterative k-core in place (see amazon_kcore.cpp); returns the number of filtering passes.
int64_t filter_kcore(std::vector<std::vector<int32_t>>& seqs, size_t num_items, int64_t k);

/// Fills out.user_raw_ids, out.sequences, out.items (raw ids only) and
/// out.num_interactions from the non-empty sequences, numbering users and items by first
/// appearance; returns each kept item's raw id → its index in out.items.
std::unordered_map<std::string, size_t> number_by_first_appearance(
    const std::vector<std::vector<int32_t>>& seqs, const Reviews& reviews, AmazonDataset& out);

// --- metadata (amazon_meta.cpp) --------------------------------------------------------

/// Title, brand and categories of the items in `wanted` (raw id → index in out.items) from
/// the metadata file; counts out.items_with_meta and out.items_with_title.
void read_meta(const std::string& path, AmazonFormat format,
               const std::unordered_map<std::string, size_t>& wanted, AmazonDataset& out);

}  // namespace coco::data::raw
