// Crash consistency through the tool on a real Beauty slice: coco-train killed with SIGKILL
// at 20 random moments (in a step, in validation, in a checkpoint write) and resumed each
// time ends with weights bit-identical to an uninterrupted run's; a checkpoint write that
// hits a file-size limit (as on a full disk) fails with one line and keeps the previous
// checkpoint.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "coco/experiment/experiment.h"
#include "coco/train/checkpoint.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace coco {
namespace {

const std::string kTools = COCO_TOOLS_DIR;
const std::string kConfig = std::string(COCO_SOURCE_DIR) + "/configs/amazon_beauty_sasrec.json";

std::string train_cmd(const std::string& dir, int epochs, const std::string& extra = "") {
  return kTools + "/coco-train --config " + kConfig + " --resume --set output_dir=" + dir +
         " --set data.max_users=1000 --set train.epochs=" + std::to_string(epochs) +
         " --set train.patience=1000 --set device=cpu --set threads=1 --set log_level=error " +
         extra;
}

// The weights of a run's last.pt, loaded into the model its config describes.
std::shared_ptr<RecommenderImpl> weights_of(const std::string& dir) {
  Experiment ex = Experiment::from_file(
      kConfig, {"data.max_users=1000", "device=cpu", "threads=1", "log_level=error"});
  load_checkpoint(dir + "/last.pt", *ex.model, nullptr, false);
  return ex.model;
}

TEST(CrashIntegration, TwentyKillsAtRandomMomentsResumeToBitIdenticalWeights) {
  if (test::shared_dataset("amazon-beauty").empty())
    GTEST_SKIP() << "../shared/data/amazon-beauty not present";
  test::TempDir d;
  const int epochs = 30;
  std::string out;
  ASSERT_EQ(test::run_command(train_cmd(d.file("straight"), epochs), out), 0) << out;

  std::mt19937 rng(7);
  std::uniform_int_distribution<int> after_ms(200, 2500);
  int kills = 0;
  for (bool finished = false; kills < 20 && !finished;) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c",
            ("exec " + train_cmd(d.file("killed"), epochs) + " > /dev/null 2>&1").c_str(), nullptr);
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(after_ms(rng)));
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
      ++kills;
    } else {
      ASSERT_EQ(WEXITSTATUS(status), 0);
      finished = true;
    }
  }
  EXPECT_EQ(kills, 20);
  ASSERT_EQ(test::run_command(train_cmd(d.file("killed"), epochs), out), 0) << out;

  const auto a = weights_of(d.file("straight")), b = weights_of(d.file("killed"));
  for (const auto& p : a->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()])) << p.key();
  EXPECT_EQ(read_json_file(d.file("killed/report.json"))["metrics"],
            read_json_file(d.file("straight/report.json"))["metrics"]);
  for (const auto& f : fs::directory_iterator(d.file("killed")))
    EXPECT_EQ(f.path().string().find(".tmp-"), std::string::npos) << f.path();
}

TEST(CrashIntegration, ACheckpointWriteOnAFullDiskFailsWithOneLineAndKeepsThePreviousOne) {
  if (test::shared_dataset("amazon-beauty").empty())
    GTEST_SKIP() << "../shared/data/amazon-beauty not present";
  test::TempDir d;
  const std::string dir = d.file("run"), last = dir + "/last.pt";
  std::string out;
  // One epoch of two (the time budget ends it), so that --resume trains on.
  ASSERT_EQ(test::run_command(train_cmd(dir, 2, "--set train.max_seconds=0.001"), out), 0) << out;
  std::ifstream in(last, std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(in)), {});
  in.close();
  // bash's ulimit -f counts KiB: half a checkpoint fits, a whole one does not.
  const auto limit_kib = before.size() / 2 / 1024;
  const std::string cmd =
      "bash -c 'ulimit -f " + std::to_string(limit_kib) + "; exec " + train_cmd(dir, 2) + "'";
  const int code = test::run_command(cmd, out);
  EXPECT_EQ(code, 5) << out;
  EXPECT_EQ(out.rfind("coco-train: error: " + last +
                          ": cannot write checkpoint (the previous one "
                          "is kept): ",
                      0),
            0u)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  std::ifstream after(last, std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(after)), {}), before);
  EXPECT_EQ(read_checkpoint_meta(last).state.epoch, 1);
  for (const auto& f : fs::directory_iterator(dir))
    EXPECT_EQ(f.path().string().find(".tmp-"), std::string::npos) << f.path();
}

}  // namespace
}  // namespace coco
