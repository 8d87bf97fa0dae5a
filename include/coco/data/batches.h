// Leave-one-out views and batch construction. Batches are cut from the CSR interaction
// array on demand — one window per user, never one copy per prefix — so memory stays
// proportional to the interactions.
//
// Leave-one-out: for a user with items s[0..n), the last item is the test target, the
// second-to-last the validation target, and s[0..n-2) is the training part.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "coco/data/dataset.h"

namespace coco {

enum class Split { kValid, kTest };
const char* split_name(Split s);

/// Evaluation examples: the history before the held-out item and the item itself.
struct EvalBatch {
  torch::Tensor users;    // [B] int64
  torch::Tensor history;  // [B, <= L] int64, last L items before the target, left-padded
  torch::Tensor target;   // [B] int64
};

/// Training examples: each user's last L + 1 training items, left-padded with 0. Leading
/// columns that are padding in every row are cut (all but one), so the width is at most
/// L + 1; models must not depend on it (position ids count from the right end).
struct TrainBatch {
  torch::Tensor users;  // [B] int64, 0-based user index
  torch::Tensor items;  // [B, L + 1] int64

  /// The window split for next-item prediction: position t of inputs predicts position t
  /// of targets (the item after it).
  torch::Tensor inputs() const;   // [B, L] items[:, :-1]
  torch::Tensor targets() const;  // [B, L] items[:, 1:]
  /// The window's last item as an evaluation example, the items before it the history.
  EvalBatch last_item() const;
};

/// Deterministic, shardable iteration over training users. The order of an epoch is a
/// pure function of (seed, epoch), so a resumed run sees the same batches. `batch_size` is
/// the global batch: with world_size > 1, rank r takes every world_size-th user of each
/// batch from the r-th on, so batch k holds the same users whatever the world size (only a
/// last batch of fewer users than ranks joins the one before it, so that no rank goes
/// without). With `by_length`, each batch holds users of similar length (in random order
/// of batches), so that batches are narrow: much less work on padding.
class TrainLoader {
 public:
  TrainLoader(const Interactions& data, int64_t max_len, int64_t batch_size, uint64_t seed,
              bool by_length = false, int64_t rank = 0, int64_t world_size = 1);

  void set_epoch(int64_t epoch);
  int64_t num_batches() const;
  TrainBatch batch(int64_t index) const;     // this rank's part of the index-th batch
  int64_t global_size(int64_t index) const;  // users in the index-th batch over all ranks

 private:
  int64_t begin_of(int64_t index) const;
  int64_t end_of(int64_t index) const;

  const Interactions& data_;
  int64_t max_len_, batch_size_;
  uint64_t seed_;
  bool by_length_;
  int64_t rank_, world_size_;
  std::vector<int64_t> order_;  // every user, in this epoch's order
};

/// Cuts each row of a training window before an item drawn uniformly (torch RNG) from its
/// second to last real item: the items before it become the history, right-aligned and
/// left-padded as in EvalBatch, and the item the target.
EvalBatch random_prefixes(const TrainBatch& batch);

/// Number of items before the target of `split` for user u.
int64_t history_length(const Interactions& data, int64_t u, Split split);

/// Evaluation batch for users [begin, end) of `users`; all-padding columns are cut as in
/// TrainBatch, so batching users of similar length makes evaluation cheaper.
EvalBatch make_eval_batch(const Interactions& data, const std::vector<int64_t>& users,
                          int64_t begin, int64_t end, Split split, int64_t max_len);

/// Batch for users [begin, end) of `users` whose histories are their whole sequences (what to
/// recommend after everything they did); the target is 0.
EvalBatch make_history_batch(const Interactions& data, const std::vector<int64_t>& users,
                             int64_t begin, int64_t end, int64_t max_len);

/// How often each item occurs in the training parts: [V + 1], index = item id.
std::vector<int64_t> train_item_counts(const Interactions& data);

/// 64-bit mixing function (splitmix64) used to derive independent seeds.
uint64_t mix_seed(uint64_t a, uint64_t b);

}  // namespace coco
