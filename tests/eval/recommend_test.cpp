// Top-K lists: exact lists on fixed scores (history and padding excluded, user subsets in
// the order asked), the test-split hit rate of real backbones equal to the evaluator's
// HR@10, and exported vectors that reproduce the lists.
#include "coco/eval/recommend.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/eval/evaluator.h"
#include "coco/experiment/experiment.h"
#include "coco/llm/safetensors.h"
#include "eval/fixed_scores.h"
#include "test_util.h"

namespace coco {
namespace {

using test::FixedScores;

std::vector<int64_t> row(const torch::Tensor& t, int64_t r) {
  const auto c = t[r].contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

TEST(Recommend, ListsExcludePaddingAndHistoryInScoreOrder) {
  Interactions d;
  d.num_items = 6;
  d.add_user({1, 2, 3});     // test history {1, 2}
  d.add_user({4, 5, 6, 1});  // test history {4, 5, 6}
  const auto table =
      torch::tensor(std::vector<float>{0, 9, 8, 5, 4, 6, 1, 99, 3, 0, 2, 9, 9, 9}).view({2, 7});
  FixedScores model(table);
  RecommendOptions o;
  o.k = 3;
  const auto r = recommend(model, d, {}, o, torch::kCPU);
  EXPECT_EQ(r.users, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(row(r.items, 0), (std::vector<int64_t>{5, 3, 4}));  // 1, 2 are history
  EXPECT_EQ(row(r.items, 1), (std::vector<int64_t>{1, 3, 2}));  // 0 is padding
  EXPECT_FLOAT_EQ(r.scores[0][0].item<float>(), 6);

  o.exclude_history = false;
  EXPECT_EQ(row(recommend(model, d, {}, o, torch::kCPU).items, 0), (std::vector<int64_t>{1, 2, 5}));
  // The whole sequence as history: user 0's item 3 is excluded too (user 1 has 2 items left).
  o.exclude_history = true;
  o.split.reset();
  o.k = 2;
  EXPECT_EQ(row(recommend(model, d, {}, o, torch::kCPU).items, 0), (std::vector<int64_t>{5, 4}));
  // A subset, in the order asked for.
  o.split = Split::kTest;
  o.k = 3;
  const auto some = recommend(model, d, {1, 0}, o, torch::kCPU);
  EXPECT_EQ(some.users, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(row(some.items, 0), (std::vector<int64_t>{1, 3, 2}));

  o.k = 4;  // user 1 has only 6 - 3 items left
  EXPECT_EQ(test::error_text<Error>([&] { recommend(model, d, {}, o, torch::kCPU); }),
            "user 2: fewer than K = 4 items are left to recommend once the history is excluded");
  o.k = 2;
  EXPECT_EQ(test::error_text<Error>([&] { recommend(model, d, {7}, o, torch::kCPU); }),
            "user 8 is not in 1..2");
  FixedScores broken(table.clone().fill_(NAN));
  EXPECT_EQ(test::error_text<Error>([&] { recommend(broken, d, {}, o, torch::kCPU); }),
            "user 1: the scores are NaN (the checkpoint's weights are not finite)");
}

// A small dataset of 60 users over 40 items, written as the uniform format.
std::string write_dataset(const test::TempDir& d) {
  std::string items = "item_id\traw_id\ttitle\tbrand\tcategories\n";
  for (int i = 1; i <= 40; ++i)
    items += std::to_string(i) + "\tr" + std::to_string(i) + "\tItem\t\t\n";
  d.write("data/items.tsv", items);
  std::string seqs;
  for (int u = 1; u <= 60; ++u) {
    seqs += std::to_string(u);
    for (int k = 0; k < 3 + u % 7; ++k) seqs += " " + std::to_string((u * 7 + k * 13) % 40 + 1);
    seqs += "\n";
  }
  d.write("data/sequences.txt", seqs);
  return d.file("data");
}

double hit_rate(const Recommendations& r, const Interactions& d) {
  int64_t hits = 0;
  for (size_t i = 0; i < r.users.size(); ++i) {
    const int64_t u = r.users[i];
    const int64_t target = d.begin(u)[d.length(u) - 1];
    const auto items = row(r.items, static_cast<int64_t>(i));
    hits += std::count(items.begin(), items.end(), target);
  }
  return static_cast<double>(hits) / static_cast<double>(r.users.size());
}

// The lists from users · items^T + bias with the exported histories excluded.
torch::Tensor lists_from_export(const std::string& dir, int64_t k) {
  llm::SafetensorsFile f(dir + "/embeddings.safetensors");
  auto scores = f.load("users").matmul(f.load("items").t()) + f.load("item_bias");
  scores.select(1, 0).fill_(-INFINITY);
  const auto offsets = f.load("history_offsets"), history = f.load("history_items");
  for (int64_t u = 0; u + 1 < offsets.size(0); ++u) {
    for (int64_t j = offsets[u].item<int64_t>(); j < offsets[u + 1].item<int64_t>(); ++j)
      scores[u][history[j].item<int64_t>()] = -INFINITY;
  }
  return std::get<1>(scores.topk(k, 1));
}

class RecommendBackbone : public ::testing::TestWithParam<const char*> {};

TEST_P(RecommendBackbone, HitRateEqualsTheEvaluatorsAndTheExportReproducesTheLists) {
  test::TempDir d;
  const std::string config = std::string(COCO_SOURCE_DIR) + "/configs/" + GetParam();
  Experiment ex =
      Experiment::from_file(config, {"data.path=" + write_dataset(d), "output_dir=" + d.file("run"),
                                     "device=cpu", "eval.batch_size=16"});
  const Interactions& data = ex.dataset.interactions;
  RecommendOptions o;
  o.batch_size = ex.eval.batch_size;
  o.max_len = ex.eval.max_len;
  const auto report =
      ex.make_evaluator().evaluate(*ex.model, Split::kTest, Protocol::kFull, torch::kCPU);
  const auto r = recommend(*ex.model, data, {}, o, torch::kCPU);
  EXPECT_EQ(hit_rate(r, data), report.metrics.get("HR@10"));
  EXPECT_GT(report.metrics.get("HR@10"), 0.0);  // the test would pass trivially at 0

  export_embeddings(*ex.model, data, o, torch::kCPU, d.file("export"), {{"model", GetParam()}});
  EXPECT_TRUE(torch::equal(lists_from_export(d.file("export"), o.k), r.items));
  const Json meta = read_json_file(d.file("export/embeddings.json"));
  EXPECT_EQ(meta["users"], 60);
  EXPECT_EQ(meta["history"], "test");
  EXPECT_EQ(meta["model"], GetParam());
}

INSTANTIATE_TEST_SUITE_P(Backbones, RecommendBackbone,
                         ::testing::Values("amazon_beauty_sasrec.json",
                                           "amazon_beauty_bert4rec.json",
                                           "amazon_beauty_gru4rec.json"));

}  // namespace
}  // namespace coco
