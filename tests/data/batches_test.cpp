// Leave-one-out windows, deterministic shuffling and sharding.
#include "coco/data/batches.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace coco {
namespace {

Interactions toy() {
  Interactions d;
  d.num_items = 9;
  d.add_user({1, 2, 3, 4, 5, 6});
  d.add_user({7, 8, 9});
  d.add_user({2, 4, 6, 8});
  return d;
}

TEST(Batches, TrainWindowHoldsTheTrainingPartLeftPadded) {
  const auto d = toy();
  TrainLoader loader(d, /*max_len=*/3, /*batch_size=*/3, /*seed=*/1);
  const auto b = loader.batch(0);
  for (int64_t r = 0; r < 3; ++r) {
    const int64_t u = b.users[r].item<int64_t>();
    const auto row = b.items[r];
    const std::vector<std::vector<int64_t>> expected{{1, 2, 3, 4}, {0, 0, 0, 7}, {0, 0, 2, 4}};
    EXPECT_TRUE(torch::equal(row, torch::tensor(expected[u], torch::kInt64))) << u;
  }
}

TEST(Batches, EvalBatchHoldsHistoryAndTarget) {
  const auto d = toy();
  const std::vector<int64_t> users{0, 1};
  const auto valid = make_eval_batch(d, users, 0, 2, Split::kValid, 3);
  EXPECT_TRUE(torch::equal(valid.history[0], torch::tensor({2, 3, 4}, torch::kInt64)));
  EXPECT_EQ(valid.target[0].item<int64_t>(), 5);
  const auto test = make_eval_batch(d, users, 0, 2, Split::kTest, 3);
  EXPECT_TRUE(torch::equal(test.history[1], torch::tensor({0, 7, 8}, torch::kInt64)));
  EXPECT_EQ(test.target[1].item<int64_t>(), 9);
}

TEST(Batches, RandomPrefixesCutEachRowBeforeADrawnItem) {
  const auto d = toy();
  TrainLoader loader(d, /*max_len=*/5, /*batch_size=*/3, /*seed=*/1);
  const auto batch = loader.batch(0);
  const int64_t w = batch.items.size(1);
  std::vector<std::set<int64_t>> targets(3);
  for (uint64_t seed = 0; seed < 40; ++seed) {
    torch::manual_seed(seed);
    const auto cut = random_prefixes(batch);
    ASSERT_EQ(cut.history.size(0), 3);
    ASSERT_LE(cut.history.size(1), w - 1);
    EXPECT_TRUE(torch::equal(cut.users, batch.users));
    for (int64_t r = 0; r < 3; ++r) {
      std::vector<int64_t> row, hist;
      for (int64_t j = 0; j < w; ++j) {
        if (batch.items[r][j].item<int64_t>() > 0) row.push_back(batch.items[r][j].item<int64_t>());
      }
      // The history is the row's items before the target, right-aligned after padding.
      bool padding = true;
      for (int64_t j = 0; j < cut.history.size(1); ++j) {
        const int64_t x = cut.history[r][j].item<int64_t>();
        if (x > 0) padding = false;
        if (!padding) hist.push_back(x);
        EXPECT_TRUE(padding || x > 0) << "padding after an item in row " << r;
      }
      const int64_t target = cut.target[r].item<int64_t>();
      ASSERT_LT(hist.size(), row.size());
      EXPECT_EQ(target, row[hist.size()]);
      EXPECT_TRUE(std::equal(hist.begin(), hist.end(), row.begin()));
      targets[static_cast<size_t>(batch.users[r].item<int64_t>())].insert(target);
    }
  }
  // Every item after the first is drawn; a row with one item keeps it as its target.
  EXPECT_EQ(targets[0], (std::set<int64_t>{2, 3, 4}));
  EXPECT_EQ(targets[1], (std::set<int64_t>{7}));
  EXPECT_EQ(targets[2], (std::set<int64_t>{4}));
}

TEST(Batches, EpochOrderIsAFunctionOfSeedAndEpoch) {
  Interactions d;
  d.num_items = 3;
  for (int i = 0; i < 50; ++i) d.add_user({1, 2, 3});
  TrainLoader a(d, 2, 50, 7), b(d, 2, 50, 7);
  a.set_epoch(3);
  b.set_epoch(0);
  b.set_epoch(3);
  EXPECT_TRUE(torch::equal(a.batch(0).users, b.batch(0).users));
  b.set_epoch(4);
  EXPECT_FALSE(torch::equal(a.batch(0).users, b.batch(0).users));
}

TEST(Batches, ShardsPartitionTheUsers) {
  Interactions d;
  d.num_items = 3;
  for (int i = 0; i < 11; ++i) d.add_user({1, 2, 3});
  std::set<int64_t> seen;
  for (int64_t rank = 0; rank < 3; ++rank) {
    TrainLoader l(d, 2, 100, 5, /*by_length=*/false, rank, 3);
    const auto users = l.batch(0).users;
    for (int64_t i = 0; i < users.size(0); ++i)
      EXPECT_TRUE(seen.insert(users[i].item<int64_t>()).second);
  }
  EXPECT_EQ(seen.size(), 11u);
}

// Batch k over all ranks is batch k of one process, with and without length buckets; a
// last batch of fewer users than ranks joins the one before, so no rank goes without.
TEST(Batches, EveryRanksShareOfABatchMakesTheSingleProcessBatch) {
  Interactions d;
  d.num_items = 60;
  std::vector<int32_t> seq;
  for (int u = 0; u < 42; ++u) {
    seq.assign(3 + u % 7, 1);
    d.add_user(seq);
  }
  for (bool by_length : {false, true}) {
    TrainLoader one(d, 50, 10, 9, by_length);
    TrainLoader r0(d, 50, 10, 9, by_length, 0, 3), r1(d, 50, 10, 9, by_length, 1, 3),
        r2(d, 50, 10, 9, by_length, 2, 3);
    for (auto* l : {&one, &r0, &r1, &r2}) l->set_epoch(2);
    ASSERT_EQ(one.num_batches(), 5);  // 4 × 10 + 2
    ASSERT_EQ(r0.num_batches(), 4);   // the last 2 users join batch 4
    for (int64_t b = 0; b < 4; ++b) {
      std::multiset<int64_t> expected, got;
      auto add = [](std::multiset<int64_t>& s, const torch::Tensor& users) {
        for (int64_t i = 0; i < users.size(0); ++i) s.insert(users[i].item<int64_t>());
      };
      add(expected, one.batch(b).users);
      if (b == 3) add(expected, one.batch(4).users);
      int64_t local = 0;
      for (auto* l : {&r0, &r1, &r2}) {
        const auto users = l->batch(b).users;
        EXPECT_GE(users.size(0), 3);
        local += users.size(0);
        add(got, users);
      }
      EXPECT_EQ(got, expected) << "batch " << b << (by_length ? " by length" : "");
      EXPECT_EQ(local, r0.global_size(b));
    }
  }
}

TEST(Batches, LengthBucketsMakeNarrowBatchesOfEveryUser) {
  Interactions d;
  d.num_items = 60;
  std::vector<int32_t> seq;
  for (int u = 0; u < 40; ++u) {
    seq.assign(3 + (u % 4 == 0 ? 40 : u % 5), 1);
    d.add_user(seq);
  }
  TrainLoader plain(d, 50, 10, 3), bucketed(d, 50, 10, 3, /*by_length=*/true);
  int64_t plain_width = 0, bucketed_width = 0;
  std::set<int64_t> seen;
  for (int64_t b = 0; b < bucketed.num_batches(); ++b) {
    plain_width += plain.batch(b).items.size(1);
    const auto batch = bucketed.batch(b);
    bucketed_width += batch.items.size(1);
    for (int64_t i = 0; i < batch.users.size(0); ++i) seen.insert(batch.users[i].item<int64_t>());
  }
  EXPECT_EQ(seen.size(), 40u);
  EXPECT_LT(bucketed_width, plain_width / 2);
}

TEST(Batches, TrainCountsUseOnlyTrainingParts) {
  const auto counts = train_item_counts(toy());
  EXPECT_EQ(counts[1], 1);  // user 1's training part is 1..4
  EXPECT_EQ(counts[5], 0);  // validation target
  EXPECT_EQ(counts[7], 1);
  EXPECT_EQ(counts[4], 2);
}

}  // namespace
}  // namespace coco
