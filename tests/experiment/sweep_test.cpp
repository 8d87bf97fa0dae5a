// The sweep runner: the grid's cells and arguments, the summary's means, standard
// deviations and paired differences on reports written by hand, and the tool end to end
// on a tiny dataset (two runs at a time, resumed without retraining).
#include "coco/experiment/sweep.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "coco/common/error.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace coco {
namespace {

TEST(Sweep, CellsAreTheProductOfConfigsGridAndVariants) {
  SweepOptions o;
  o.configs = {"configs/a.json", "other/b.json"};
  o.grid = {parse_grid("train.lr=0.001,0.01"), parse_grid("eval.ks=[5,10],[20]")};
  o.variants = {parse_variant("plain="), parse_variant("alone=config=c/x.json;backbone.hidden=8")};
  const auto cells = sweep_cells(o);
  ASSERT_EQ(cells.size(), 16u);
  EXPECT_EQ(cells[0].name, "a+train.lr=0.001+eval.ks=[5,10]+plain");
  EXPECT_EQ(cells[0].config, "configs/a.json");
  EXPECT_EQ(cells[0].overrides, (std::vector<std::string>{"train.lr=0.001", "eval.ks=[5,10]"}));
  const auto& last = cells.back();
  EXPECT_EQ(last.name, "b+train.lr=0.01+eval.ks=[20]+alone");
  EXPECT_EQ(last.config, "c/x.json");
  EXPECT_EQ(last.overrides,
            (std::vector<std::string>{"train.lr=0.01", "eval.ks=[20]", "backbone.hidden=8"}));
  EXPECT_EQ(last.axes.back(), (std::pair<std::string, std::string>{"variant", "alone"}));

  EXPECT_EQ(test::error_text<ConfigError>([] { parse_grid("train.lr"); }),
            "--set-grid train.lr: expected KEY=A,B,...");
  EXPECT_EQ(test::error_text<ConfigError>([] { parse_grid("a=1,,2"); }),
            "--set-grid a=1,,2: an empty value");
  EXPECT_EQ(test::error_text<ConfigError>([] { parse_variant("x=lr"); }),
            "--variant x=lr: 'lr' is not KEY=VALUE");
  o.configs = {"a.json", "b/a.json"};
  o.grid.clear();
  o.variants.clear();
  EXPECT_EQ(test::error_text<ConfigError>([&] { sweep_cells(o); }),
            "coco-sweep: two cells are named a");
}

void write_report(const test::TempDir& d, const std::string& run, double ndcg, double hr) {
  d.write(run + "/report.json",
          Json({{"best_epoch", 3},
                {"metrics", {{"NDCG@10", ndcg}, {"HR@10", hr}, {"HR@5", hr / 2}, {"MRR", 0.1}}},
                {"sampled", {{"metrics", {{"HR@10", 0.5}}}}}})
              .dump());
}

TEST(Sweep, SummaryHasMeanStdAndPairedDifferences) {
  test::TempDir d;
  SweepOptions o;
  o.configs = {"c.json"};
  o.seeds = {1, 2};
  o.variants = {parse_variant("base="), parse_variant("new=x=1")};
  o.out_dir = d.path();
  o.baseline = "variant=base";
  write_report(d, "c+base/seed1", 0.10, 0.20);
  write_report(d, "c+base/seed2", 0.20, 0.30);
  write_report(d, "c+new/seed1", 0.15, 0.20);
  write_report(d, "c+new/seed2", 0.21, 0.40);
  const std::string md = summarize_sweep(o);
  // Means and sample standard deviations; HR@5 before HR@10 before NDCG@10, MRR last.
  EXPECT_NE(md.find("| cell | seeds | best epochs | HR@5 | HR@10 | NDCG@10 | MRR |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| c+base | 2 | 3,3 | 0.1250 ± 0.0354 | 0.2500 ± 0.0707 | 0.1500 ± 0.0707 | "
                    "0.1000 ± 0.0000 |"),
            std::string::npos)
      << md;
  // Paired: NDCG@10 differences 0.05 and 0.01; HR@10 0.00 and 0.10.
  EXPECT_NE(md.find("| c+new | 2 | +0.0300 ± 0.0283 | +20.00% | +0.0500 ± 0.0707 | +20.00% |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("**Test split, sampled negatives**"), std::string::npos) << md;
  EXPECT_TRUE(fs::exists(d.file("summary.md")));
  EXPECT_NEAR(read_json_file(d.file("summary.json"))["c+new"]["paired"]["NDCG@10"]["mean"], 0.03,
              1e-12);

  o.baseline = "variant=old";
  EXPECT_EQ(test::error_text<ConfigError>([&] { summarize_sweep(o); }),
            "--baseline variant=old: no cell has variant = old (axes: config, the --set-grid "
            "keys, variant)");
}

TEST(SweepIntegration, RunsTheGridTwoAtATimeAndResumes) {
  test::TempDir d;
  std::string items = "item_id\traw_id\ttitle\tbrand\tcategories\n";
  for (int i = 1; i <= 8; ++i) items += std::to_string(i) + "\tr" + std::to_string(i) + "\tI\t\t\n";
  d.write("data/items.tsv", items);
  std::string seqs;
  for (int u = 1; u <= 20; ++u)
    seqs += std::to_string(u) + " " + std::to_string(u % 8 + 1) + " 2 3 4 5\n";
  d.write("data/sequences.txt", seqs);
  const std::string tools = COCO_TOOLS_DIR;
  const std::string cmd =
      tools + "/coco-sweep --config " + COCO_SOURCE_DIR + "/configs/amazon_beauty_sasrec.json" +
      " --seeds 1,2 --set-grid train.lr=0.001,0.002 --jobs 2 --baseline train.lr=0.001" +
      " --set data.path=" + d.file("data") + " --set train.epochs=1 --set eval.num_negatives=2" +
      " --set log_level=error --out " + d.file("sweep");
  std::string out;
  ASSERT_EQ(test::run_command(cmd, out), 0) << out;
  EXPECT_NE(out.find("| amazon_beauty_sasrec+train.lr=0.002 | 2 |"), std::string::npos) << out;
  EXPECT_NE(out.find("**Paired difference against train.lr=0.001**"), std::string::npos) << out;
  const Json report =
      read_json_file(d.file("sweep/amazon_beauty_sasrec+train.lr=0.002/seed2/report.json"));
  const Json config =
      read_json_file(d.file("sweep/amazon_beauty_sasrec+train.lr=0.002/seed2/config.json"));
  EXPECT_EQ(config["seed"], 2);
  EXPECT_EQ(config["train"]["lr"], 0.002);
  EXPECT_TRUE(report["metrics"].contains("NDCG@10"));
  // Again: nothing is retrained, the summary is the same.
  std::string again;
  ASSERT_EQ(test::run_command(cmd, again), 0) << again;
  EXPECT_NE(again.find("seed 2: done before"), std::string::npos) << again;
  EXPECT_EQ(again.find("started"), std::string::npos) << again;
  // The same directory with other arguments is refused.
  std::string other;
  EXPECT_EQ(test::run_command(cmd + " --set train.patience=1", other), 3) << other;
  EXPECT_NE(other.find("this run was started with other arguments"), std::string::npos) << other;
}

}  // namespace
}  // namespace coco
