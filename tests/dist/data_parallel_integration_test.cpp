// Data-parallel training end to end, through the tools on a real Beauty slice: two Gloo
// workers on loopback (coco-train --nproc 2) train like one process, evaluate exactly like
// one, keep CoCo's state identical, and a worker killed mid-epoch ends the job with one line
// naming its rank while last.pt stays loadable and --resume (with one worker) finishes the
// run; Ctrl-C on the launcher stops them all with a checkpoint.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "coco/config/config.h"
#include "coco/train/checkpoint.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace coco {
namespace {

const std::string kTools = COCO_TOOLS_DIR;
const std::string kConfig = std::string(COCO_SOURCE_DIR) + "/configs/amazon_beauty_sasrec.json";

std::string train_cmd(const test::TempDir& d, const std::string& run, const std::string& extra) {
  return kTools + "/coco-train --config " + kConfig + " --set output_dir=" + d.file(run) +
         " --set data.max_users=3000 --set device=cpu --set threads=1 --set log_level=warn " +
         extra;
}

std::vector<Json> epochs_of(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::vector<Json> out;
  for (std::string line; std::getline(in, line);) out.push_back(Json::parse(line));
  return out;
}

TEST(DataParallelIntegration, TwoGlooWorkersTrainLikeOneAndEvaluateExactlyLikeOne) {
  if (test::shared_dataset("amazon-beauty").empty())
    GTEST_SKIP() << "../shared/data/amazon-beauty not present";
  test::TempDir d;
  std::string out;
  ASSERT_EQ(test::run_command(train_cmd(d, "one", "--set train.epochs=3"), out), 0) << out;
  // log_level=debug: every step also checks that both ranks hold identical parameters.
  ASSERT_EQ(test::run_command(
                train_cmd(d, "two", "--nproc 2 --set train.epochs=3 --set log_level=debug"), out),
            0)
      << out;
  const auto one = epochs_of(d.file("one")), two = epochs_of(d.file("two"));
  ASSERT_EQ(one.size(), 3u);
  ASSERT_EQ(two.size(), 3u);
  EXPECT_EQ(two[0]["world_size"], 2);
  EXPECT_EQ(one[0]["step"], two[0]["step"]);  // the same global batches
  for (size_t e = 0; e < 3; ++e) {
    // The same batches, other dropout masks: the epoch losses agree closely.
    const double l1 = one[e]["train"]["loss"], l2 = two[e]["train"]["loss"];
    EXPECT_NEAR(l2, l1, 0.02 * l1) << "epoch " << e + 1;
  }
  const double v1 = one[2]["valid"]["NDCG@10"], v2 = two[2]["valid"]["NDCG@10"];
  EXPECT_NEAR(v2, v1, 0.25 * v1);
  EXPECT_GT(v2, 0.004);  // random ranking of 12,101 items: 0.0004

  // One checkpoint evaluated by one worker and by two: the same metrics, bit for bit, and
  // the same as the test report the two-worker training wrote.
  const std::string eval = kTools + "/coco-eval " + d.file("two") + " --protocol both --report ";
  ASSERT_EQ(test::run_command(eval + d.file("e1.json"), out), 0) << out;
  ASSERT_EQ(test::run_command(eval + d.file("e2.json") + " --nproc 2", out), 0) << out;
  const Json e1 = read_json_file(d.file("e1.json")), e2 = read_json_file(d.file("e2.json"));
  EXPECT_EQ(e2["metrics"], e1["metrics"]);
  EXPECT_EQ(e2["groups"], e1["groups"]);
  EXPECT_EQ(e2["sampled"]["metrics"], e1["sampled"]["metrics"]);
  EXPECT_EQ(read_json_file(d.file("two/report.json"))["metrics"], e1["metrics"]);
}

// CoCo's extra state stays identical on both ranks: the VQ usage is summed before dead
// codes are restarted (every 3 idle calls here, so restarts happen), and log_level=debug
// compares every rank's weights after each step. The decision statistics count every
// rank's users.
TEST(DataParallelIntegration, CoCoOnTwoWorkersKeepsEveryRankIdentical) {
  if (test::shared_dataset("amazon-beauty").empty())
    GTEST_SKIP() << "../shared/data/amazon-beauty not present";
  test::TempDir d;
  std::string out;
  const std::string cmd =
      kTools + "/coco-train --config " + COCO_SOURCE_DIR + "/configs/amazon_beauty.json" +
      " --nproc 2 --set output_dir=" + d.file("run") +
      " --set data.max_users=1500 --set train.epochs=2 --set device=cpu --set threads=1" +
      " --set log_level=debug --set coco.vq.restart_after=3";
  ASSERT_EQ(test::run_command(cmd, out), 0)
      << out.substr(out.size() > 4000 ? out.size() - 4000 : 0);
  const auto epochs = epochs_of(d.file("run"));
  ASSERT_EQ(epochs.size(), 2u);
  int64_t restarted = 0;
  for (const auto& e : epochs) {
    EXPECT_EQ(e["diagnostics"]["examples"], 1500.0);
    restarted += e["diagnostics"]["restarted_codes"].get<int64_t>();
  }
  EXPECT_GT(restarted, 0);
}

// The pid of the launcher's worker with RANK=rank, or -1.
pid_t worker_pid(pid_t launcher, int rank) {
  std::ifstream children("/proc/" + std::to_string(launcher) + "/task/" + std::to_string(launcher) +
                         "/children");
  for (pid_t child; children >> child;) {
    std::ifstream env("/proc/" + std::to_string(child) + "/environ");
    const std::string vars = '\0' + std::string((std::istreambuf_iterator<char>(env)), {});
    if (vars.find(std::string("\0RANK=", 6) + std::to_string(rank) + '\0') != std::string::npos)
      return child;
  }
  return -1;
}

// Starts `cmd` (output to log.txt) and returns the launcher's pid once the first epoch is
// logged (last.pt written) and the second is under way.
pid_t start_and_wait_for_epoch_1(const test::TempDir& d, const std::string& cmd) {
  const pid_t launcher = fork();
  if (launcher == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > " + d.file("log.txt") + " 2>&1").c_str(),
          nullptr);
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (epochs_of(d.file("run")).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return launcher;
}

std::string read_text(const std::string& file) {
  std::ifstream in(file);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

TEST(DataParallelIntegration, AKilledWorkerEndsTheJobNamingItsRankAndResumeFinishes) {
  if (test::shared_dataset("amazon-beauty").empty())
    GTEST_SKIP() << "../shared/data/amazon-beauty not present";
  test::TempDir d;
  const std::string cmd =
      train_cmd(d, "run", "--nproc 2 --set train.epochs=4 --set dist.timeout_seconds=30");
  const pid_t launcher = start_and_wait_for_epoch_1(d, cmd);
  ASSERT_GT(launcher, 0);
  ASSERT_FALSE(epochs_of(d.file("run")).empty());
  const pid_t victim = worker_pid(launcher, 1);
  ASSERT_GT(victim, 0);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(launcher, &status, 0), launcher);
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(30));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGKILL);
  const std::string text = read_text(d.file("log.txt"));
  EXPECT_NE(
      text.find("[launch] rank 1 (pid " + std::to_string(victim) + ") was killed by signal 9"),
      std::string::npos)
      << text;
  // last.pt holds the first epoch, intact; --resume finishes the run from there, here with
  // one worker (batches are global, so the world size may change).
  const auto state = read_checkpoint_meta(d.file("run/last.pt")).state;
  EXPECT_EQ(state.epoch, 1);
  std::string out;
  ASSERT_EQ(test::run_command(train_cmd(d, "run", "--set train.epochs=4 --resume"), out), 0) << out;
  EXPECT_TRUE(read_checkpoint_meta(d.file("run/last.pt")).state.finished);
  const auto epochs = epochs_of(d.file("run"));
  ASSERT_EQ(epochs.size(), 4u);
  EXPECT_EQ(epochs[3]["step"], 4 * epochs[0]["step"].get<int64_t>());
  EXPECT_TRUE(fs::exists(d.file("run/report.json")));
}

// Ctrl-C on the launcher reaches every worker once: all stop after the same batch, rank 0
// saves last.pt, the job exits with 130, and --resume finishes it.
TEST(DataParallelIntegration, CtrlCOnTheLauncherStopsEveryWorkerAndKeepsTheCheckpoint) {
  if (test::shared_dataset("amazon-beauty").empty())
    GTEST_SKIP() << "../shared/data/amazon-beauty not present";
  test::TempDir d;
  const std::string cmd = train_cmd(d, "run", "--nproc 2 --set train.epochs=4");
  const pid_t launcher = start_and_wait_for_epoch_1(d, cmd);
  ASSERT_GT(launcher, 0);
  ASSERT_EQ(kill(launcher, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(waitpid(launcher, &status, 0), launcher);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const std::string text = read_text(d.file("log.txt"));
  EXPECT_NE(text.find("interrupted at epoch 2"), std::string::npos) << text;
  EXPECT_EQ(text.find("[launch]"), std::string::npos) << text;  // no worker failed
  const auto state = read_checkpoint_meta(d.file("run/last.pt")).state;
  EXPECT_EQ(state.epoch, 1);
  EXPECT_GT(state.batch, 0);
  std::string out;
  ASSERT_EQ(test::run_command(cmd + " --resume", out), 0) << out;
  EXPECT_EQ(epochs_of(d.file("run")).size(), 4u);
}

}  // namespace
}  // namespace coco
