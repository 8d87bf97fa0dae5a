// A Recommender whose scores are a fixed [U, V + 1] table, for tests of what ranks them
// (evaluator, top-K lists); the "representation" is the user's one-hot row.
#pragma once

#include <torch/torch.h>

#include "coco/recommender/recommender.h"

namespace coco::test {

class FixedScores : public RecommenderImpl {
 public:
  explicit FixedScores(torch::Tensor table) : table_(std::move(table)) {}
  LossTerms loss(const TrainBatch&) override { return {}; }
  torch::Tensor user_repr(const EvalBatch& b) override {
    return torch::one_hot(b.users, table_.size(0)).to(torch::kFloat32);
  }
  torch::Tensor score_all(const torch::Tensor& repr) override { return repr.matmul(table_); }
  torch::Tensor score(const torch::Tensor& repr, const torch::Tensor& items) override {
    return score_all(repr).gather(1, items);
  }

 private:
  torch::Tensor table_;
};

}  // namespace coco::test
