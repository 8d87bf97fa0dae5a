// Conformance tests run on every registered backbone: shapes (and the item table that serves
// score_all), causality, padding invariance, a finite loss whose gradient reaches every
// parameter, save/load round trip.
#include "coco/backbones/backbone.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/train/checkpoint.h"
#include "test_util.h"

namespace coco {
namespace {

constexpr int64_t kItems = 30, kLen = 8;

// Each backbone's own small config, as its registration line gives it.
Backbone make(const std::string& name) {
  Json j = BackboneRegistry::instance().small_config(name);
  ConfigNode node(j, "test");
  torch::manual_seed(0);
  auto b = BackboneRegistry::instance().create(node, {kItems, kLen});
  b->eval();
  return b;
}

class Conformance : public ::testing::TestWithParam<std::string> {};

TEST_P(Conformance, ShapesOfEveryOutput) {
  auto b = make(GetParam());
  const auto items = torch::randint(1, kItems + 1, {3, kLen}, torch::kInt64);
  const int64_t d = b->hidden_size();
  EXPECT_EQ(b->encode(items).sizes(), (std::vector<int64_t>{3, kLen, d}));
  EvalBatch eb{torch::arange(3), items, torch::ones({3}, torch::kInt64)};
  const auto repr = b->user_repr(eb);
  EXPECT_EQ(repr.sizes(), (std::vector<int64_t>{3, d}));
  EXPECT_EQ(b->score_all(repr).size(1), kItems + 1);
  const auto cand = torch::randint(1, kItems + 1, {3, 5}, torch::kInt64);
  const auto scores = b->score(repr, cand);
  EXPECT_EQ(scores.sizes(), (std::vector<int64_t>{3, 5}));
  // score() agrees with the matching columns of score_all().
  EXPECT_TRUE(torch::allclose(scores, b->score_all(repr).gather(1, cand), 1e-5, 1e-5));
  // The exported item table scores as score_all() does (coco-recommend --export).
  const ItemTable table = b->item_table();
  ASSERT_EQ(table.items.sizes(), (std::vector<int64_t>{kItems + 1, d}));
  auto served = repr.matmul(table.items.t());
  if (table.bias.defined()) served = served + table.bias;
  EXPECT_TRUE(torch::allclose(served, b->score_all(repr), 1e-5, 1e-5));
}

TEST_P(Conformance, NoPositionSeesALaterOne) {
  auto b = make(GetParam());
  if (!b->is_causal()) GTEST_SKIP() << GetParam() << " is bidirectional by design";
  auto items = torch::randint(1, kItems + 1, {2, kLen}, torch::kInt64);
  const auto before = b->encode(items);
  auto changed = items.clone();
  changed.select(1, 5).fill_(7);
  changed.select(1, 6).fill_(9);
  const auto after = b->encode(changed);
  EXPECT_TRUE(torch::allclose(before.narrow(1, 0, 5), after.narrow(1, 0, 5), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(before.select(1, 6), after.select(1, 6)));
}

TEST_P(Conformance, PaddingAndBatchNeverChangeARepresentation) {
  auto b = make(GetParam());
  const auto seq = torch::tensor({4, 9, 2}, torch::kInt64);
  auto short_row = torch::zeros({1, 4}, torch::kInt64);
  short_row.narrow(1, 1, 3).copy_(seq);
  auto long_rows = torch::randint(1, kItems + 1, {2, kLen}, torch::kInt64);  // another user beside
  long_rows[0].zero_();
  long_rows[0].narrow(0, kLen - 3, 3).copy_(seq);
  const auto a = b->encode(short_row).select(1, 3);
  const auto c = b->encode(long_rows)[0].select(0, kLen - 1).unsqueeze(0);
  EXPECT_TRUE(torch::allclose(a, c, 1e-5, 1e-5)) << a << c;
}

TEST_P(Conformance, LossIsFiniteAndReachesEveryParameter) {
  auto b = make(GetParam());
  b->train();
  TrainBatch batch{torch::arange(4), torch::randint(1, kItems + 1, {4, kLen + 1}, torch::kInt64)};
  batch.items[0].narrow(0, 0, 5).zero_();
  const auto loss = b->loss(batch);
  ASSERT_TRUE(std::isfinite(loss.total.item<double>()));
  loss.total.backward();
  for (const auto& p : b->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key() << " gets no gradient";
  }
}

TEST_P(Conformance, SaveLoadRoundTrip) {
  auto b = make(GetParam());
  test::TempDir dir;
  const auto path = dir.file("m.pt");
  save_checkpoint(path, {Json::object(), {}}, *b, nullptr, false);
  torch::manual_seed(123);
  auto fresh = make(GetParam());
  {
    torch::NoGradGuard g;
    for (auto& p : fresh->parameters()) p.add_(1.0);
  }
  load_checkpoint(path, *fresh, nullptr, false);
  const auto items = torch::randint(1, kItems + 1, {2, kLen}, torch::kInt64);
  EXPECT_TRUE(torch::equal(b->encode(items), fresh->encode(items)));
}

INSTANTIATE_TEST_SUITE_P(AllRegistered, Conformance,
                         ::testing::ValuesIn(BackboneRegistry::instance().names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(Registry, UnknownNameListsRegisteredBackbones) {
  Json j = {{"name", "sasrek"}};
  ConfigNode node(j, "c.json");
  try {
    BackboneRegistry::instance().create(node, {10, 5});
    FAIL();
  } catch (const ConfigError& e) {
    // Every registered name, sorted; the built-in ones among them.
    std::string known;
    for (const auto& n : BackboneRegistry::instance().names())
      known += (known.empty() ? "" : ", ") + n;
    for (const char* n : {"bert4rec, ", "gru4rec, ", "sasrec"})
      EXPECT_NE(known.find(n), std::string::npos) << n;
    EXPECT_EQ(
        std::string(e.what()),
        "c.json: config error at /name: unknown backbone \"sasrek\" (registered: " + known + ")");
  }
}

TEST(Registry, HeadsMustDivideHidden) {
  Json j = {{"name", "sasrec"}, {"hidden", 64}, {"num_heads", 5}};
  ConfigNode node(j, "c.json");
  EXPECT_THROW(
      {
        try {
          BackboneRegistry::instance().create(node, {10, 5});
        } catch (const ConfigError& e) {
          EXPECT_STREQ(e.what(),
                       "c.json: config error at /num_heads: must divide hidden (64), got 5");
          throw;
        }
      },
      ConfigError);
}

}  // namespace
}  // namespace coco
