// End to end on real data: training SASRec briefly on Amazon Beauty lifts validation
// NDCG@10 far above an untrained model; the tools fail cleanly on bad input.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "coco/eval/report.h"
#include "coco/experiment/experiment.h"
#include "coco/train/trainer.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace coco {
namespace {

const std::string kTools = COCO_TOOLS_DIR;
const std::string kConfig = std::string(COCO_SOURCE_DIR) + "/configs/amazon_beauty_sasrec.json";
const std::string kCoCoConfig = std::string(COCO_SOURCE_DIR) + "/configs/amazon_beauty.json";

TEST(BeautyIntegration, TwoEpochsOfSASRecLiftValidationNdcg) {
  const std::string dir = test::shared_dataset("amazon-beauty");
  if (dir.empty()) GTEST_SKIP() << "../shared/data/amazon-beauty not present";
  test::TempDir out;
  Experiment ex = Experiment::from_file(
      kConfig, {"data.path=" + dir, "output_dir=" + out.path(), "train.epochs=2", "device=cpu"});
  Evaluator ev = ex.make_evaluator();
  const double untrained =
      ev.evaluate(*ex.model, Split::kValid, Protocol::kFull, ex.run.device).metrics.get("NDCG@10");
  Trainer trainer(ex.model, ex.dataset.interactions, ex.train, ev,
                  {ex.config, out.path(), ex.run.seed, ex.run.device});
  const auto& state = trainer.fit();
  // Random ranking of 12,101 items gives NDCG@10 ≈ 0.0004; two epochs reach ~0.015.
  EXPECT_LT(untrained, 0.002);
  EXPECT_GT(state.best_metric, 0.008);
  EXPECT_GT(state.best_metric, 5 * untrained);
}

struct ToolRun {
  int code;
  std::string output;
};

ToolRun tool(const std::string& args) {
  ToolRun r;
  r.code = test::run_command(args, r.output);
  return r;
}

// A small valid dataset in a temp dir, to be broken in different ways.
void write_dataset(const test::TempDir& d) {
  std::string items = "item_id\traw_id\ttitle\tbrand\tcategories\n";
  for (int i = 1; i <= 8; ++i)
    items += std::to_string(i) + "\tr" + std::to_string(i) + "\tItem\t\t\n";
  d.write("data/items.tsv", items);
  std::string seqs;
  for (int u = 1; u <= 20; ++u)
    seqs += std::to_string(u) + " " + std::to_string(u % 8 + 1) + " 2 3 4 5\n";
  d.write("data/sequences.txt", seqs);
}

std::string train_cmd(const test::TempDir& d, const std::string& extra = "") {
  return kTools + "/coco-train --config " + kConfig + " --set data.path=" + d.file("data") +
         " --set output_dir=" + d.file("run") +
         " --set train.epochs=2 --set eval.num_negatives=2 " + "--set log_level=error " + extra;
}

void expect_one_line_error(const ToolRun& r, int code, const std::string& fragment) {
  EXPECT_EQ(r.code, code) << r.output;
  EXPECT_NE(r.output.find(fragment), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(ToolsIntegration, BadInputEndsWithOneClearLine) {
  test::TempDir d;
  write_dataset(d);
  const std::string seq_file = d.file("data/sequences.txt");
  const std::string good = [&] {
    std::ifstream in(seq_file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();

  d.write("data/sequences.txt", good.substr(0, good.size() - 3));
  expect_one_line_error(tool(train_cmd(d)), 4,
                        seq_file + ":20: file ends in the middle of a line (truncated?)");

  d.write("data/sequences.txt", "1 1 2 3\n2 4 x 1\n");
  expect_one_line_error(tool(train_cmd(d)), 4,
                        seq_file + ":2: item id 'x' (token 3) is not a positive integer");

  d.write("data/sequences.txt", "1 1 2 3\n2 4 12 1\n");
  expect_one_line_error(tool(train_cmd(d)), 4, seq_file + ":2: item id 12 is out of range 1..8");

  d.write("data/sequences.txt", good);
  expect_one_line_error(tool(train_cmd(d, "--set train.lrr=1")), 3,
                        "config error at /train/lrr: unknown key");
  expect_one_line_error(tool(train_cmd(d, "--set backbone.num_heads=5 --set backbone.hidden=64")),
                        3, "config error at /backbone/num_heads: must divide hidden (64), got 5");
}

TEST(ToolsIntegration, TrainEvalResumeAndACheckpointCutInHalf) {
  test::TempDir d;
  write_dataset(d);
  const ToolRun trained = tool(train_cmd(d, "--report " + d.file("report.json")));
  ASSERT_EQ(trained.code, 0) << trained.output;
  EXPECT_NE(trained.output.find("| sasrec | test | full ranking, history excluded | 20 |"),
            std::string::npos)
      << trained.output;
  const Json report = read_json_file(d.file("report.json"));
  EXPECT_TRUE(report["metrics"].contains("NDCG@10"));
  EXPECT_TRUE(report["groups"].contains("history_length"));

  // Running again without --resume must not touch the finished run.
  expect_one_line_error(tool(train_cmd(d)), 7, "already holds a run");
  // --resume on a finished run reports again.
  EXPECT_EQ(tool(train_cmd(d, "--resume")).code, 0);

  const ToolRun eval = tool(kTools + "/coco-eval " + d.file("run") + " --protocol both --report " +
                            d.file("eval.json") + " --set data.path=" + d.file("data"));
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_EQ(read_json_file(d.file("eval.json"))["metrics"], report["metrics"]);
  expect_one_line_error(tool(kTools + "/coco-eval " + d.file("run") + " --backbone-only"), 3,
                        "--backbone-only needs a CoCo checkpoint, this is sasrec");
  expect_one_line_error(tool(kTools + "/coco-eval " + d.file("run") + " --knowledge-scale 0.5"), 3,
                        "--knowledge-scale needs a CoCo checkpoint, this is sasrec");
  const ToolRun both =
      tool(kTools + "/coco-eval " + d.file("run") + " --knowledge-scale 0.5 --backbone-only");
  EXPECT_EQ(both.code, 2);
  EXPECT_NE(both.output.find("--backbone-only excludes --knowledge-scale"), std::string::npos)
      << both.output;

  // A checkpoint cut in half: clear error, and the good best.pt stays as it was.
  const std::string last = d.file("run/last.pt"), best = d.file("run/best.pt");
  const auto best_size = fs::file_size(best);
  fs::resize_file(last, fs::file_size(last) / 2);
  expect_one_line_error(tool(train_cmd(d, "--resume")), 5, last + ": cannot read checkpoint");
  EXPECT_EQ(fs::file_size(best), best_size);
  fs::resize_file(best, best_size / 2);
  expect_one_line_error(tool(kTools + "/coco-eval " + best), 5, best + ": cannot read checkpoint");
}

TEST(ToolsIntegration, CtrlCSavesACheckpointAndResumeFinishesTheRun) {
  test::TempDir d;
  write_dataset(d);
  const std::string cmd = train_cmd(d, "--set train.epochs=3000 --set train.patience=3000");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > " + d.file("log.txt") + " 2>&1").c_str(),
          nullptr);
    _exit(127);
  }
  // Wait (bounded) until training is under way, then press Ctrl-C.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(d.file("run/metrics.jsonl")) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  std::ifstream log(d.file("log.txt"));
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("interrupted at epoch"), std::string::npos) << text;
  const auto state = read_checkpoint_meta(d.file("run/last.pt")).state;
  EXPECT_FALSE(state.finished);

  // A resumed run may change its epoch budget: ending it now finishes the run.
  const ToolRun resumed =
      tool(cmd + " --resume --set train.epochs=" + std::to_string(state.epoch + 1));
  EXPECT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_TRUE(read_checkpoint_meta(d.file("run/last.pt")).state.finished);
}

// The Python snippet of the README (NumPy only) that recommends from an export, reading
// `dir` and printing its top-10 lists, one user per line.
std::string readme_snippet(const std::string& dir) {
  std::ifstream in(std::string(COCO_SOURCE_DIR) + "/README.md");
  const std::string readme((std::istreambuf_iterator<char>(in)), {});
  const auto begin = readme.find("```python\n", readme.find("<!-- serving-snippet -->"));
  if (begin == std::string::npos) return "";
  std::string code = readme.substr(begin + 10, readme.find("```", begin + 10) - begin - 10);
  const std::string path = "runs/amazon_beauty/export";
  code.replace(code.find(path), path.size(), dir);
  return code + "np.savetxt(__import__('sys').stdout, top10, fmt='%d')\n";
}

// coco-recommend's lists hit the test items exactly as often as coco-eval's HR@10 says, the
// exported vectors give the same lists through the README's NumPy snippet, and bad input
// ends with one line.
TEST(ToolsIntegration, RecommendHitsEqualEvalAndTheExportServesTheSameLists) {
  test::TempDir d;
  std::string items = "item_id\traw_id\ttitle\tbrand\tcategories\n";
  for (int i = 1; i <= 40; ++i)
    items +=
        std::to_string(i) + "\tr" + std::to_string(i) + "\tItem " + std::to_string(i) + "\t\t\n";
  d.write("data/items.tsv", items);
  std::vector<std::vector<int>> seqs;
  std::string text;
  for (int u = 1; u <= 60; ++u) {
    seqs.emplace_back();
    text += std::to_string(u);
    for (int k = 0; k < 3 + u % 7; ++k) {
      seqs.back().push_back((u * 7 + k * 13) % 40 + 1);
      text += " " + std::to_string(seqs.back().back());
    }
    text += "\n";
  }
  d.write("data/sequences.txt", text);
  ASSERT_EQ(tool(train_cmd(d)).code, 0);
  const std::string data = " --set data.path=" + d.file("data");
  ASSERT_EQ(
      tool(kTools + "/coco-eval " + d.file("run") + data + " --report " + d.file("eval.json")).code,
      0);
  const ToolRun rec = tool(kTools + "/coco-recommend " + d.file("run") + data + " --titles -o " +
                           d.file("recs.tsv") + " --export " + d.file("export"));
  ASSERT_EQ(rec.code, 0) << rec.output;

  std::ifstream tsv(d.file("recs.tsv"));
  std::string line;
  std::getline(tsv, line);
  EXPECT_EQ(line, "user\trank\titem\tscore\ttitle");
  std::vector<std::vector<int>> lists(60);
  int64_t hits = 0;
  while (std::getline(tsv, line)) {
    std::istringstream f(line);
    int user = 0, rank = 0, item = 0;
    f >> user >> rank >> item;
    ASSERT_EQ(rank, static_cast<int>(lists[user - 1].size()) + 1) << line;
    EXPECT_NE(line.find("\tItem " + std::to_string(item)), std::string::npos) << line;
    lists[user - 1].push_back(item);
    hits += item == seqs[user - 1].back();
  }
  const double hr = read_json_file(d.file("eval.json"))["metrics"]["HR@10"];
  EXPECT_EQ(static_cast<double>(hits) / 60, hr);
  EXPECT_GT(hits, 0);

  if (test::run_command("/usr/bin/python3 -c 'import numpy'", line) == 0) {
    const std::string snippet = readme_snippet(d.file("export"));
    ASSERT_FALSE(snippet.empty()) << "README.md has no serving snippet";
    const ToolRun py = tool("/usr/bin/python3 " + d.write("serve.py", snippet));
    ASSERT_EQ(py.code, 0) << py.output;
    std::istringstream rows(py.output);
    for (const auto& expected : lists) {
      std::vector<int> got(10);
      for (int& i : got) rows >> i;
      EXPECT_EQ(got, expected);
    }
  }

  const ToolRun jsonl = tool(kTools + "/coco-recommend " + d.file("run") + data +
                             " --format jsonl -k 10 --users " + d.write("users.txt", "3\n1\n"));
  ASSERT_EQ(jsonl.code, 0) << jsonl.output;
  const Json first = Json::parse(jsonl.output.substr(0, jsonl.output.find('\n')));
  EXPECT_EQ(first["user"], 3);
  EXPECT_EQ(first["items"], Json(lists[2]));
  expect_one_line_error(tool(kTools + "/coco-recommend " + d.file("run") + data + " --users " +
                             d.write("bad.txt", "1\n61\n")),
                        4, d.file("bad.txt") + ":2: expected a user id in 1..60, got '61'");
  expect_one_line_error(tool(kTools + "/coco-recommend " + d.file("run") + data + " -k 40"), 7,
                        "items are left to recommend once the history is excluded");
}

}  // namespace
}  // namespace coco

namespace coco {
namespace {

// Full CoCo on a real Beauty slice with the real stories260K LLM, through the tool: it
// learns, and every diagnostic of the issue lands in the run directory.
TEST(CoCoIntegration, TrainingOnABeautySliceLiftsValidationNdcgAndLogsDiagnostics) {
  if (test::shared_dataset("amazon-beauty").empty())
    GTEST_SKIP() << "../shared/data/amazon-beauty not present";
  test::TempDir d;
  const ToolRun r =
      tool(kTools + "/coco-train --config " + kCoCoConfig + " --set output_dir=" + d.file("run") +
           " --set data.max_users=6000 --set train.epochs=3 --set device=cpu --set log_level=warn");
  ASSERT_EQ(r.code, 0) << r.output;
  std::ifstream log(d.file("run/metrics.jsonl"));
  std::vector<Json> epochs;
  for (std::string line; std::getline(log, line);) epochs.push_back(Json::parse(line));
  ASSERT_EQ(epochs.size(), 3u);
  for (const auto& e : epochs) {
    for (const char* part : {"rec", "rec_fused", "nce", "align", "vq", "ortho"}) {
      EXPECT_TRUE(e["train"].contains(part)) << part;
    }
    const Json& diag = e["diagnostics"];
    for (const char* key :
         {"codebook_perplexity", "code_usage", "decision_rate", "decision_rate_per_code",
          "mean_alignment_cos", "mean_utility", "restarted_codes"}) {
      EXPECT_TRUE(diag.contains(key)) << key;
    }
    EXPECT_EQ(diag["code_usage"].size(), 64u);
    EXPECT_GT(diag["codebook_perplexity"].get<double>(), 1.0);
    EXPECT_TRUE(e["lr_groups"].contains("lora"));
  }
  // Random ranking of 12,101 items gives NDCG@10 ≈ 0.0004.
  const double first = epochs.front()["valid"]["NDCG@10"], last = epochs.back()["valid"]["NDCG@10"];
  EXPECT_GT(last, first);
  EXPECT_GT(last, 0.004);
  for (const char* f : {"knowledge_before.json", "knowledge_after.json"}) {
    const Json k = read_json_file(d.file("run/" + std::string(f)));
    EXPECT_EQ(k["h_rs"].size(), 512u) << f;
    EXPECT_EQ(k["h_aligned"].size(), 512u) << f;
    EXPECT_EQ(k["h_aligned"][0].size(), 64u) << f;
  }
  EXPECT_NE(r.output.find("| coco-sasrec | test | full ranking"), std::string::npos) << r.output;
  // The same checkpoint ranked by its backbone alone, without the knowledge.
  const std::string eval =
      kTools + "/coco-eval " + d.file("run") +
      " --split valid --set data.path=" + test::shared_dataset("amazon-beauty") +
      " --set coco.knowledge.llm.path=" + COCO_SHARED_DIR +
      "/models/stories260K/stories260K.gguf --report ";
  const ToolRun alone = tool(eval + d.file("alone.json") + " --backbone-only");
  ASSERT_EQ(alone.code, 0) << alone.output;
  EXPECT_NE(alone.output.find("| coco-sasrec (backbone only) | valid | full ranking"),
            std::string::npos)
      << alone.output;
  // Knowledge scale 0 is the backbone alone.
  ASSERT_EQ(tool(eval + d.file("scale0.json") + " --knowledge-scale 0").code, 0);
  EXPECT_EQ(read_json_file(d.file("scale0.json"))["metrics"],
            read_json_file(d.file("alone.json"))["metrics"]);
  // The saved config names the data and the LLM as they were found: no --set is needed.
  const ToolRun plain = tool(kTools + "/coco-eval " + d.file("run") +
                             " --split valid --backbone-only --report " + d.file("plain.json"));
  ASSERT_EQ(plain.code, 0) << plain.output;
  EXPECT_EQ(read_json_file(d.file("plain.json"))["metrics"],
            read_json_file(d.file("alone.json"))["metrics"]);

  // coco-recommend with the knowledge: the validation lists hit the validation items
  // exactly as often as coco-eval's HR@10 says.
  ASSERT_EQ(tool(kTools + "/coco-eval " + d.file("run") + " --split valid --report " +
                 d.file("full.json"))
                .code,
            0);
  const ToolRun rec =
      tool(kTools + "/coco-recommend " + d.file("run") + " --split valid -o " + d.file("recs.tsv"));
  ASSERT_EQ(rec.code, 0) << rec.output;
  std::ifstream seqs(test::shared_dataset("amazon-beauty") + "/sequences.txt");
  std::vector<int> valid;
  for (std::string line; valid.size() < 6000 && std::getline(seqs, line);) {
    std::istringstream f(line);
    std::vector<int> items;
    for (int v = 0; f >> v;) items.push_back(v);
    valid.push_back(items[items.size() - 2]);  // items[0] is the user id
  }
  std::ifstream tsv(d.file("recs.tsv"));
  std::string line;
  std::getline(tsv, line);
  int64_t hits = 0, rows = 0;
  for (int user = 0, rank = 0, item = 0; std::getline(tsv, line); ++rows) {
    std::istringstream(line) >> user >> rank >> item;
    hits += item == valid[static_cast<size_t>(user - 1)];
  }
  EXPECT_EQ(rows, 60000);
  EXPECT_EQ(static_cast<double>(hits) / 6000,
            read_json_file(d.file("full.json"))["metrics"]["HR@10"].get<double>());
}

// CoCo with the checkpoints researchers have: a Hugging Face folder (random weights of a
// Qwen3 and of a Llama-3 shape, written by `coco-llm init`, beside the real Qwen
// tokenizer.json) and a Q4_K_M GGUF made by llama.cpp's llama-quantize. Two epochs on a
// few hundred Beauty users run, and coco-eval rebuilds the same model from the checkpoint.
void expect_coco_trains_and_evaluates(const test::TempDir& d, const std::string& llm) {
  const std::string data = test::shared_dataset("amazon-beauty");
  const std::string set = " --set data.path=" + data + " --set coco.knowledge.llm.path=" + llm;
  const ToolRun train = tool(
      kTools + "/coco-train --config " + kCoCoConfig + set + " --set output_dir=" + d.file("run") +
      " --set data.max_users=300 --set train.epochs=2 --set device=cpu --set log_level=warn");
  ASSERT_EQ(train.code, 0) << train.output;
  const ToolRun eval = tool(kTools + "/coco-eval " + d.file("run") + " --split test" + set +
                            " --report " + d.file("eval.json"));
  ASSERT_EQ(eval.code, 0) << eval.output;
  // The checkpoint's own test report (written by coco-train) and coco-eval's agree exactly.
  const Json trained = read_json_file(d.file("run/report.json"));
  EXPECT_EQ(read_json_file(d.file("eval.json"))["metrics"], trained["metrics"]) << eval.output;
}

std::string write_hf_folder(const test::TempDir& d, const Json& config) {
  const std::string qwen = std::string(COCO_SHARED_DIR) + "/models/qwen-tokenizer";
  const std::string dir = d.file("model");
  const std::string cfg = d.write("config.json", config.dump());
  const ToolRun init = tool(kTools + "/coco-llm init --config " + cfg + " --out " + dir);
  EXPECT_EQ(init.code, 0) << init.output;
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(qwen + "/" + f, dir + "/" + f);
  return dir;
}

TEST(CoCoIntegration, ResearcherCheckpointsQwen3AndLlama3FoldersAndQ4KM) {
  if (test::shared_dataset("amazon-beauty").empty())
    GTEST_SKIP() << "../shared/data/amazon-beauty not present";
  if (!fs::exists(std::string(COCO_SHARED_DIR) + "/models/qwen-tokenizer/tokenizer.json"))
    GTEST_SKIP() << "../shared/models/qwen-tokenizer not present";
  const Json common = {{"hidden_size", 64},
                       {"intermediate_size", 128},
                       {"num_hidden_layers", 2},
                       {"num_attention_heads", 4},
                       {"num_key_value_heads", 2},
                       {"vocab_size", 151936},
                       {"max_position_embeddings", 4096},
                       {"rms_norm_eps", 1e-6}};
  {
    SCOPED_TRACE("Qwen3");
    test::TempDir d;
    Json c = common;
    c.update({{"architectures", {"Qwen3ForCausalLM"}},
              {"model_type", "qwen3"},
              {"head_dim", 32},
              {"rope_theta", 1000000.0},
              {"tie_word_embeddings", true}});
    expect_coco_trains_and_evaluates(d, write_hf_folder(d, c));
  }
  {
    SCOPED_TRACE("Llama-3");
    test::TempDir d;
    Json c = common;
    c.update({{"architectures", {"LlamaForCausalLM"}},
              {"model_type", "llama"},
              {"rope_theta", 500000.0},
              {"tie_word_embeddings", false},
              {"rope_scaling",
               {{"rope_type", "llama3"},
                {"factor", 32.0},
                {"low_freq_factor", 1.0},
                {"high_freq_factor", 4.0},
                {"original_max_position_embeddings", 8192}}}});
    expect_coco_trains_and_evaluates(d, write_hf_folder(d, c));
  }
  {
    SCOPED_TRACE("Q4_K_M GGUF");
    test::TempDir d;
    expect_coco_trains_and_evaluates(d, std::string(COCO_FIXTURES_DIR) + "/llm/arch/q4km.gguf");
  }
}

TEST(CoCoIntegration, BadCoCoInputEndsWithOneClearLine) {
  test::TempDir d;
  write_dataset(d);
  const std::string cmd =
      kTools + "/coco-train --config " + kCoCoConfig + " --set data.path=" + d.file("data") +
      " --set output_dir=" + d.file("run") + " --set train.epochs=1 --set log_level=error ";
  expect_one_line_error(tool(cmd + "--set coco.vq.num_codes=0"), 3,
                        "config error at /coco/vq/num_codes: must be >= 1, got 0");
  expect_one_line_error(tool(cmd + "--set coco.decision.theta=1.5"), 3,
                        "config error at /coco/decision/theta");
  expect_one_line_error(
      tool(cmd + "--set coco.knowledge.llm.path=missing/model.gguf"), 3,
      "config error at /coco/knowledge/llm/path: no such file: looked for missing/model.gguf");
  // items.tsv that does not match the sequences: a row missing, then a row out of order.
  const std::string items = d.file("data/items.tsv");
  std::string rows = "item_id\traw_id\ttitle\tbrand\tcategories\n";
  for (int i = 1; i <= 7; ++i) rows += std::to_string(i) + "\tr\tItem\t\t\n";
  d.write("data/items.tsv", rows);
  expect_one_line_error(tool(cmd), 4, "is out of range 1..7");
  d.write("data/items.tsv", rows + "9\tr\tItem\t\t\n");
  expect_one_line_error(tool(cmd), 4, items + ":9:");
}

}  // namespace
}  // namespace coco
