// Reviews → chronological per-user item lists → the S3-Rec k-core → users and items numbered
// by first appearance. Not the parsing of lines (amazon_reviews.cpp) and not the metadata.
#include <algorithm>
#include <unordered_set>
#include <utility>

#include "amazon_steps.h"

namespace coco::data::raw {

std::vector<std::vector<int32_t>> chronological_sequences(Reviews& reviews, bool drop_duplicates,
                                                          int64_t& dropped) {
  std::vector<std::vector<int32_t>> seqs(reviews.by_user.size());
  for (size_t u = 0; u < reviews.by_user.size(); ++u) {
    auto& rs = reviews.by_user[u];
    // Ties keep file order (Python's sort is stable).
    std::stable_sort(rs.begin(), rs.end(),
                     [](const Review& a, const Review& b) { return a.time < b.time; });
    std::unordered_set<int32_t> seen;
    for (const Review& r : rs) {
      if (drop_duplicates && !seen.insert(r.item).second) {
        ++dropped;
        continue;
      }
      seqs[u].push_back(r.item);
    }
    rs = {};
  }
  return seqs;
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

// Users in file order, items walking those users' sequences.
std::unordered_map<std::string, size_t> number_by_first_appearance(
    const std::vector<std::vector<int32_t>>& seqs, const Reviews& reviews, AmazonDataset& out) {
  std::vector<int64_t> item_id(reviews.item_raw.size(), 0);
  std::unordered_map<std::string, size_t> index_of;
  for (size_t u = 0; u < seqs.size(); ++u) {
    if (seqs[u].empty()) continue;
    std::vector<int64_t> ids;
    ids.reserve(seqs[u].size());
    for (int32_t i : seqs[u]) {
      auto& id = item_id[static_cast<size_t>(i)];
      if (id == 0) {
        out.items.emplace_back();
        out.items.back().raw_id = reviews.item_raw[static_cast<size_t>(i)];
        id = static_cast<int64_t>(out.items.size());
        index_of.emplace(out.items.back().raw_id, out.items.size() - 1);
      }
      ids.push_back(id);
    }
    out.num_interactions += static_cast<int64_t>(ids.size());
    out.user_raw_ids.push_back(reviews.user_raw[u]);
    out.sequences.push_back(std::move(ids));
  }
  return index_of;
}

}  // namespace coco::data::raw
