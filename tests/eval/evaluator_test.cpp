// The evaluator against a model whose scores are fixed: ranks equal a naive count,
// ties are pessimistic, history is excluded, sampled negatives are reproducible.
#include "coco/eval/evaluator.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "eval/fixed_scores.h"

namespace coco {
namespace {

using test::FixedScores;

Interactions data_for_test() {
  Interactions d;
  d.num_items = 6;
  d.add_user({1, 2, 3});     // test target 3, history {1, 2}
  d.add_user({4, 5, 6, 1});  // test target 1, history {4, 5, 6}
  return d;
}

int64_t naive_rank(const std::vector<float>& scores, int64_t target,
                   const std::set<int64_t>& excluded) {
  int64_t rank = 0;
  for (int64_t i = 1; i < static_cast<int64_t>(scores.size()); ++i) {
    if (i == target || excluded.count(i)) continue;
    if (scores[i] >= scores[target]) ++rank;  // ties count against the target
  }
  return rank;
}

TEST(Evaluator, FullRankingMatchesNaiveCountWithTiesAndExclusion) {
  const std::vector<float> s0{0, 9, 8, 5, 5, 6, 1}, s1{0, 3, 0, 3, 9, 9, 9};
  auto table = torch::tensor(s0).unsqueeze(0);
  table = torch::cat({table, torch::tensor(s1).unsqueeze(0)});
  FixedScores model(table);
  const auto d = data_for_test();
  EvalOptions opt;
  opt.max_len = 4;
  opt.ks = {1, 2};
  const Evaluator ev(d, opt);
  const auto rep = ev.evaluate(model, Split::kTest, Protocol::kFull, torch::kCPU);
  // User 0: items 1, 2 excluded; target 3 (5) ties item 4 (5) and trails item 5 (6) → rank 2.
  EXPECT_EQ(rep.ranks[0], naive_rank(s0, 3, {1, 2}));
  EXPECT_EQ(rep.ranks[0], 2);
  // User 1: items 4, 5, 6 excluded; target 1 (3) ties item 3 → rank 1, not 0.
  EXPECT_EQ(rep.ranks[1], naive_rank(s1, 1, {4, 5, 6}));
  EXPECT_EQ(rep.ranks[1], 1);
  EXPECT_DOUBLE_EQ(rep.metrics.get("HR@2"), 0.5);

  opt.exclude_history = false;
  const Evaluator keep(d, opt);
  const auto rep2 = keep.evaluate(model, Split::kTest, Protocol::kFull, torch::kCPU);
  EXPECT_EQ(rep2.ranks[0], naive_rank(s0, 3, {}));
  EXPECT_EQ(rep2.ranks[1], naive_rank(s1, 1, {}));
}

TEST(Evaluator, ConstantScoresNeverRankFirst) {
  FixedScores model(torch::ones({2, 7}));
  const auto d = data_for_test();
  EvalOptions opt;
  opt.max_len = 4;
  opt.num_negatives = 2;
  const Evaluator ev(d, opt);
  const auto full = ev.evaluate(model, Split::kTest, Protocol::kFull, torch::kCPU);
  EXPECT_DOUBLE_EQ(full.metrics.get("MRR"), (1.0 / 4 + 1.0 / 3) / 2);  // last among 4 / 3 left
  const auto sampled = ev.evaluate(model, Split::kTest, Protocol::kSampled, torch::kCPU);
  EXPECT_EQ(sampled.ranks[0], 2);
  EXPECT_EQ(sampled.ranks[1], 2);
}

TEST(Evaluator, SampledNegativesAreReproducibleAndAvoidTheUsersItems) {
  // Item id as score: the target's rank among negatives depends on which were drawn.
  Interactions d;
  d.num_items = 200;
  for (int u = 0; u < 30; ++u) d.add_user({u + 1, u + 50, u + 100});
  auto table = torch::arange(201, torch::kFloat32).unsqueeze(0).expand({30, 201}).contiguous();
  FixedScores model(table);
  EvalOptions opt;
  opt.max_len = 5;
  opt.num_negatives = 20;
  const Evaluator a(d, opt), b(d, opt);
  const auto ra = a.evaluate(model, Split::kTest, Protocol::kSampled, torch::kCPU);
  const auto rb = b.evaluate(model, Split::kTest, Protocol::kSampled, torch::kCPU);
  EXPECT_EQ(ra.ranks, rb.ranks);
  opt.sample_seed = 1;
  const Evaluator c(d, opt);
  EXPECT_NE(c.evaluate(model, Split::kTest, Protocol::kSampled, torch::kCPU).ranks, ra.ranks);
  opt.sampling = NegativeSampling::kPopularity;
  const Evaluator p(d, opt);
  const auto rp = p.evaluate(model, Split::kTest, Protocol::kSampled, torch::kCPU);
  EXPECT_EQ(rp.ranks.size(), 30u);
}

TEST(Evaluator, GroupsPartitionTheUsers) {
  FixedScores model(torch::rand({2, 7}));
  const auto d = data_for_test();
  EvalOptions opt;
  opt.max_len = 4;
  opt.length_buckets = {2};
  const Evaluator ev(d, opt);
  const auto rep = ev.evaluate(model, Split::kTest, Protocol::kFull, torch::kCPU);
  ASSERT_EQ(rep.groups.size(), 4u);
  EXPECT_EQ(rep.groups[0].name, "1-2");
  EXPECT_EQ(rep.groups[0].users, 1);
  EXPECT_EQ(rep.groups[1].name, "3+");
  EXPECT_EQ(rep.groups[2].users + rep.groups[3].users, 2);

  opt.length_buckets = {10};  // "11+" would be empty: it is left out, not reported as zeros
  const Evaluator wide(d, opt);
  const auto rep2 = wide.evaluate(model, Split::kTest, Protocol::kFull, torch::kCPU);
  ASSERT_EQ(rep2.groups.size(), 3u);
  EXPECT_EQ(rep2.groups[0].name, "1-10");
  EXPECT_EQ(rep2.groups[0].users, 2);
}

}  // namespace
}  // namespace coco
