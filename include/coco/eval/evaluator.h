// Leave-one-out evaluation of any Recommender: full ranking over all items (the user's
// earlier items excluded by default) or ranking among N sampled negatives, with results
// broken down by history length and by target-item popularity. Scoring is batched
// matrix work; the evaluator never loops over items.
#pragma once

#include <string>
#include <vector>

#include <torch/types.h>

#include "coco/config/config.h"
#include "coco/data/dataset.h"
#include "coco/eval/metrics.h"
#include "coco/recommender/recommender.h"

namespace coco {

enum class NegativeSampling { kUniform, kPopularity };  // "uniform" | "popularity"

struct EvalOptions {
  std::vector<int64_t> ks{5, 10, 20};
  bool exclude_history = true;  // full ranking: drop the user's earlier items
  int64_t num_negatives = 100;  // sampled protocol: N
  NegativeSampling sampling = NegativeSampling::kUniform;
  int64_t sample_seed = 0;  // negatives are a function of (seed, user)
  int64_t batch_size = 1024;
  std::vector<int64_t> length_buckets{5, 10, 20};  // upper edges of history-length groups
  double head_fraction = 0.2;  // most popular share of items that counts as "head"
  int64_t max_len = 50;        // L: the most recent items of a history (data.max_len)

  /// Reads the "eval" object; `max_len` comes from the data.
  static EvalOptions from_config(ConfigNode& node, int64_t max_len);
};

enum class Protocol { kFull, kSampled };

/// Groups of users: by the length of their history, or by their target's popularity.
enum class GroupFamily { kHistoryLength, kItemPopularity };
const char* group_family_name(GroupFamily f);  // "history_length" | "item_popularity"

/// One non-empty group of users (e.g. history length 6-10) and its metrics.
struct GroupResult {
  GroupFamily family;
  std::string name;  // "6-10", "head", ...
  int64_t users = 0;
  MetricTable metrics;
};

struct EvalReport {
  std::string split;
  std::string protocol;  // "full" or "sampled-N-uniform|popularity"
  Protocol kind = Protocol::kFull;
  bool exclude_history = true;
  int64_t users = 0;
  MetricTable metrics;
  std::vector<GroupResult> groups;
  std::vector<int64_t> ranks;  // [U] per user, pessimistic 0-based rank

  std::string describe_protocol() const;  // "full ranking, history excluded", ...
};

class Evaluator {
 public:
  Evaluator(const Interactions& data, EvalOptions options);

  EvalReport evaluate(RecommenderImpl& model, Split split, Protocol protocol,
                      torch::Device device) const;

  const EvalOptions& options() const { return options_; }

 private:
  torch::Tensor sample_negatives(const std::vector<int64_t>& users, int64_t begin,
                                 int64_t end) const;  // [B, N]
  void add_groups(EvalReport& report, Split split, const std::vector<int64_t>& targets) const;
  /// Full ranking: sets the scores of each user's earlier items to -inf, the target's kept.
  void exclude_histories(torch::Tensor& scores,              // [B, V + 1]
                         const torch::Tensor& target_score,  // [B, 1]
                         const EvalBatch& batch, const std::vector<int64_t>& users, int64_t begin,
                         Split split) const;

  const Interactions& data_;
  EvalOptions options_;
  std::vector<int64_t> counts_;     // [V + 1] training popularity
  std::vector<double> cumulative_;  // [V + 1] for popularity sampling
  std::vector<char> is_head_;       // [V + 1]
};

}  // namespace coco
