// In-memory interaction data: every user's chronological item sequence in one
// compressed-row (CSR) array, plus the item catalogue with its text fields.
// Memory is proportional to the number of interactions; nothing here copies prefixes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace coco {

/// Item ids are 1-based (0 is padding). User u (0-based index) owns
/// items[offsets[u] .. offsets[u + 1]), oldest first.
struct Interactions {
  std::vector<int64_t> offsets{0};  // [U + 1]
  std::vector<int32_t> items;       // [N]
  int64_t num_items = 0;            // V: ids are in 1..V

  int64_t num_users() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t length(int64_t u) const { return offsets[u + 1] - offsets[u]; }
  const int32_t* begin(int64_t u) const { return items.data() + offsets[u]; }
  void add_user(const std::vector<int32_t>& seq);
};

/// Text of the items; row i describes item id i + 1. Any field may be empty; every field
/// has one entry per item.
struct ItemCatalog {
  std::vector<std::string> raw_id, title, brand, categories, features, description;
  int64_t size() const { return static_cast<int64_t>(raw_id.size()); }
  /// Gives every field n entries (new ones empty).
  void resize(size_t n);
};

/// A loaded dataset: the interactions, the catalogue and where they came from.
struct Dataset {
  std::string name;
  std::string directory;
  Interactions interactions;
  ItemCatalog catalog;
  std::vector<std::string> user_raw_ids;  // [U]; empty for the uniform format
};

}  // namespace coco
