// Ranking metrics from the 0-based rank of each user's target: HR@K, NDCG@K and MRR.
// Ranks are pessimistic: a target tied with other items is ranked after all of them, so
// ties (an untrained model, a collapsed one) can never inflate a result.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace coco {

/// Named metric values in a fixed order (HR@5, NDCG@5, HR@10, ..., MRR).
struct MetricTable {
  std::vector<std::pair<std::string, double>> values;
  double get(const std::string& name) const;  // throws std::out_of_range if absent
  bool has(const std::string& name) const;
};

/// Mean HR@K and NDCG@K for every K in `ks`, and MRR, over the given ranks.
MetricTable compute_metrics(const std::vector<int64_t>& ranks, const std::vector<int64_t>& ks);

/// Names of the metrics compute_metrics produces, to validate a chosen metric.
std::vector<std::string> metric_names(const std::vector<int64_t>& ks);

}  // namespace coco
