// HR@K, NDCG@K and MRR from ranks.
#include "coco/eval/metrics.h"

#include <cmath>
#include <stdexcept>

namespace coco {

double MetricTable::get(const std::string& name) const {
  for (const auto& [n, v] : values) {
    if (n == name) return v;
  }
  throw std::out_of_range("no metric " + name);
}

bool MetricTable::has(const std::string& name) const {
  for (const auto& [n, v] : values) {
    if (n == name) return true;
  }
  return false;
}

std::vector<std::string> metric_names(const std::vector<int64_t>& ks) {
  std::vector<std::string> names;
  for (int64_t k : ks) {
    names.push_back("HR@" + std::to_string(k));
    names.push_back("NDCG@" + std::to_string(k));
  }
  names.push_back("MRR");
  return names;
}

MetricTable compute_metrics(const std::vector<int64_t>& ranks, const std::vector<int64_t>& ks) {
  const double n = ranks.empty() ? 1.0 : static_cast<double>(ranks.size());
  MetricTable t;
  for (int64_t k : ks) {
    double hr = 0, ndcg = 0;
    for (int64_t r : ranks) {
      if (r < k) {
        hr += 1;
        ndcg += 1.0 / std::log2(static_cast<double>(r) + 2.0);
      }
    }
    t.values.emplace_back("HR@" + std::to_string(k), hr / n);
    t.values.emplace_back("NDCG@" + std::to_string(k), ndcg / n);
  }
  double mrr = 0;
  for (int64_t r : ranks) mrr += 1.0 / (static_cast<double>(r) + 1.0);
  t.values.emplace_back("MRR", mrr / n);
  return t;
}

}  // namespace coco
