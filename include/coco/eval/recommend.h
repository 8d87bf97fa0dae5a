// Top-K recommendations of any Recommender, and the vectors that serve them: each user's
// representation and the item table, so that an index (FAISS, ScaNN, a NumPy matmul)
// ranks items as score_all does. Batched as the evaluator batches, so that a user's scores
// are bit for bit those the evaluator ranks. Not the evaluation itself (evaluator.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "coco/config/config.h"
#include "coco/data/batches.h"
#include "coco/recommender/recommender.h"

namespace coco {

struct RecommendOptions {
  int64_t k = 10;
  /// The history each user is represented by: the items before this split's target
  /// (the history coco-eval ranks with), or none: the whole sequence (what comes next).
  std::optional<Split> split = Split::kTest;
  bool exclude_history = true;  // never recommend an item of the history
  int64_t batch_size = 1024;    // as eval.batch_size: equal batches, equal scores
  int64_t max_len = 50;         // L
};

/// The users' top-K, row r for users[r] (in the order asked for): items in descending score,
/// ties in no promised order (coco-eval counts a tie against the target).
struct Recommendations {
  std::vector<int64_t> users;  // 0-based
  torch::Tensor items;         // [U, K] int64 item ids
  torch::Tensor scores;        // [U, K] float32
};

/// Top-K of `users` (0-based; every user, in order, when empty). coco::Error naming the user
/// when fewer than K items are left to recommend or the scores are NaN.
Recommendations recommend(RecommenderImpl& model, const Interactions& data,
                          std::vector<int64_t> users, const RecommendOptions& options,
                          torch::Device device);

/// Row u: fn(batch) for the row of user u in it, float32 on the CPU; batched as the
/// evaluator batches, the model in eval mode and without gradient.
torch::Tensor per_user(RecommenderImpl& model, const Interactions& data,
                       const RecommendOptions& options, torch::Device device,
                       const std::function<torch::Tensor(const EvalBatch&)>& fn);  // [U, ...]

/// Vectors exported beside the users' representations (e.g. CoCo's knowledge), one row per
/// user.
struct ExportedVectors {
  std::string name, meaning;
  torch::Tensor rows;  // [U, ...]
};

/// Writes <dir>/embeddings.safetensors (users: what score_all multiplies; items, item_bias;
/// the histories to exclude; `extra`) and <dir>/embeddings.json saying how to score, with the
/// fields of `describe` (model, dataset, checkpoint). Both written atomically.
void export_embeddings(RecommenderImpl& model, const Interactions& data,
                       const RecommendOptions& options, torch::Device device,
                       const std::string& dir, const Json& describe,
                       const std::vector<ExportedVectors>& extra = {});

}  // namespace coco
