// Trainer: schedules, early stopping, checkpoints that survive truncation, exact resume.
#include "coco/train/trainer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <torch/torch.h>

#include "coco/backbones/sasrec.h"
#include "coco/common/error.h"
#include "coco/ops/finite.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace coco {
namespace {

// 120 users walking a ring of 40 items: easy to learn, cheap to train.
Interactions ring_data() {
  Interactions d;
  d.num_items = 40;
  for (int u = 0; u < 120; ++u) {
    std::vector<int32_t> seq;
    for (int k = 0; k < 6 + u % 5; ++k) seq.push_back(static_cast<int32_t>((u * 7 + k) % 40 + 1));
    d.add_user(seq);
  }
  return d;
}

std::shared_ptr<SASRecImpl> make_model() {
  torch::manual_seed(3);
  SASRecOptions o;
  o.num_items = 40;
  o.max_len = 10;
  o.hidden = 16;
  o.dropout = 0.2;
  o.attn_dropout = 0.2;
  return std::make_shared<SASRecImpl>(o);
}

EvalOptions ring_eval() {
  EvalOptions e;
  e.max_len = 10;
  return e;
}

TrainOptions small_train(int64_t epochs) {
  TrainOptions t;
  t.epochs = epochs;
  t.batch_size = 32;
  t.lr = 0.01;
  t.schedule = Schedule::kLinear;
  t.warmup_steps = 3;
  t.max_len = 10;
  return t;
}

TEST(Schedule, WarmupThenDecay) {
  TrainOptions t;
  t.warmup_steps = 4;
  t.schedule = Schedule::kLinear;
  EXPECT_DOUBLE_EQ(lr_factor(t, 0, 104), 0.25);
  EXPECT_DOUBLE_EQ(lr_factor(t, 3, 104), 1.0);
  EXPECT_DOUBLE_EQ(lr_factor(t, 54, 104), 0.5);
  t.schedule = Schedule::kCosine;
  EXPECT_NEAR(lr_factor(t, 54, 104), 0.5, 1e-12);
  EXPECT_NEAR(lr_factor(t, 104, 104), 0.0, 1e-12);
  t.schedule = Schedule::kConstant;
  EXPECT_DOUBLE_EQ(lr_factor(t, 100, 104), 1.0);
}

TEST(Trainer, LearnsTheRingAndWritesLogs) {
  const auto data = ring_data();
  test::TempDir dir;
  const Evaluator ev(data, ring_eval());
  auto model = make_model();
  const double before =
      ev.evaluate(*model, Split::kValid, Protocol::kFull, torch::kCPU).metrics.get("NDCG@10");
  Trainer trainer(model, data, small_train(8), ev, {Json::object(), dir.path(), 1});
  const auto& state = trainer.fit();
  EXPECT_TRUE(state.finished);
  EXPECT_GT(state.best_metric, before + 0.2);
  EXPECT_TRUE(fs::exists(trainer.best_path()));
  std::ifstream log(trainer.log_path());
  int lines = 0;
  for (std::string line; std::getline(log, line); ++lines) {
    const Json j = Json::parse(line);
    EXPECT_EQ(j["epoch"], lines + 1);
    EXPECT_TRUE(j["valid"].contains("NDCG@10"));
    EXPECT_GT(j["peak_rss_mib"].get<double>(), 0);
  }
  EXPECT_EQ(lines, 8);
}

TEST(Trainer, InterruptedAndResumedRunEndsExactlyLikeAnUninterruptedOne) {
  const auto data = ring_data();
  const Evaluator ev(data, ring_eval());
  test::TempDir a, b;
  auto full = make_model();
  Trainer straight(full, data, small_train(3), ev, {Json::object(), a.path(), 1});
  const TrainState reference = straight.fit();

  auto first = make_model();
  Trainer interrupted(first, data, small_train(3), ev, {Json::object(), b.path(), 1});
  interrupted.on_step = [](int64_t step) {
    if (step == 6) request_interrupt();  // mid-way through epoch 2 (4 batches per epoch)
  };
  EXPECT_THROW(interrupted.fit(), Interrupted);
  request_interrupt(false);
  EXPECT_EQ(read_checkpoint_meta(interrupted.last_path()).state.batch, 2);
  EXPECT_EQ(read_checkpoint_meta(interrupted.last_path()).state.weights_epoch(), 1);  // 0-based

  auto second = make_model();
  Trainer resumed(second, data, small_train(3), ev, {Json::object(), b.path(), 1});
  resumed.resume(resumed.last_path());
  const TrainState& end = resumed.fit();
  EXPECT_EQ(end.step, reference.step);
  EXPECT_EQ(end.best_metric, reference.best_metric);
  for (const auto& p : full->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), second->named_parameters()[p.key()])) << p.key();
  }
}

// SASRec whose loss is NaN on the listed calls (0-based), as a numerical fault would be.
class FaultySASRec : public SASRecImpl {
 public:
  using SASRecImpl::SASRecImpl;
  std::set<int64_t> nan_calls;
  int64_t calls = 0;
  LossTerms loss(const TrainBatch& batch) override {
    LossTerms terms = SASRecImpl::loss(batch);
    if (nan_calls.count(calls++)) terms.total = terms.total * std::nan("");
    return terms;
  }
};

std::shared_ptr<FaultySASRec> make_faulty_model() {
  torch::manual_seed(3);
  SASRecOptions o;
  o.num_items = 40;
  o.max_len = 10;
  o.hidden = 16;
  return std::make_shared<FaultySASRec>(o);
}

// A NaN loss stops the run with one line naming the step and the loss terms, before it
// touches the weights; last.pt keeps the last finished epoch.
TEST(Trainer, ANaNLossStopsBeforeTheUpdateAndKeepsTheLastCheckpoint) {
  const auto data = ring_data();
  const Evaluator ev(data, ring_eval());
  test::TempDir dir;
  auto model = make_faulty_model();
  model->nan_calls = {5};  // epoch 2, batch 2 (4 batches per epoch)
  Trainer trainer(model, data, small_train(3), ev, {Json::object(), dir.path(), 1});
  std::vector<torch::Tensor> before;
  trainer.on_step = [&](int64_t step) {
    if (step == 5)
      for (const auto& p : model->parameters()) before.push_back(p.detach().clone());
  };
  const std::string error = test::error_text<Error>([&] { trainer.fit(); });
  EXPECT_EQ(error.rfind("training stopped at epoch 2, batch 2: the loss is not finite (loss nan, "
                        "rec ",
                        0),
            0u)
      << error;
  EXPECT_NE(error.find(trainer.last_path() + " keeps the last finished epoch"), std::string::npos)
      << error;
  const auto params = model->parameters();
  ASSERT_EQ(before.size(), params.size());
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], before[i]));
  EXPECT_EQ(read_checkpoint_meta(trainer.last_path()).state.epoch, 1);
}

// train.nonfinite=skip: the steps are skipped and counted in metrics.jsonl.
TEST(Trainer, SkippedNonFiniteStepsAreCounted) {
  const auto data = ring_data();
  const Evaluator ev(data, ring_eval());
  test::TempDir dir;
  auto model = make_faulty_model();
  model->nan_calls = {5, 6};
  auto options = small_train(3);
  options.nonfinite = NonFinite::kSkip;
  Trainer trainer(model, data, options, ev, {Json::object(), dir.path(), 1});
  EXPECT_EQ(trainer.fit().step, 3 * 4 - 2);
  std::ifstream log(trainer.log_path());
  std::vector<Json> epochs;
  for (std::string line; std::getline(log, line);) epochs.push_back(Json::parse(line));
  ASSERT_EQ(epochs.size(), 3u);
  EXPECT_FALSE(epochs[0].contains("skipped_steps"));
  EXPECT_EQ(epochs[1]["skipped_steps"], 2.0);
  EXPECT_TRUE(std::isfinite(epochs[1]["train"]["loss"].get<double>()));
  for (const auto& p : model->parameters()) EXPECT_EQ(describe_nonfinite(p), "");
}

// A checkpoint holding a NaN weight is refused, naming the tensor.
TEST(Checkpoint, ANaNWeightIsRefusedNamingTheTensor) {
  test::TempDir dir;
  auto model = make_model();
  {
    torch::NoGradGuard no_grad;
    model->named_parameters()["final_norm.weight"].view(-1)[2] = std::nan("");
  }
  save_checkpoint(dir.file("nan.pt"), {Json::object(), TrainState{}}, *model, nullptr, false);
  EXPECT_EQ(test::error_text<CheckpointError>(
                [&] { load_checkpoint(dir.file("nan.pt"), *make_model(), nullptr, false); }),
            dir.file("nan.pt") +
                ": tensor 'model/final_norm.weight' holds 1 NaN value (the first at flat index 2)");
}

TEST(Trainer, EarlyStoppingHonoursPatience) {
  const auto data = ring_data();
  const Evaluator ev(data, ring_eval());
  test::TempDir dir;
  auto t = small_train(50);
  t.lr = 1e-12;  // nothing improves after the first validation
  t.schedule = Schedule::kConstant;
  t.patience = 2;
  Trainer trainer(make_model(), data, t, ev, {Json::object(), dir.path(), 1});
  const auto& s = trainer.fit();
  EXPECT_EQ(s.best_epoch, 1);
  EXPECT_EQ(s.epoch, 3);
  EXPECT_EQ(read_checkpoint_meta(trainer.best_path()).state.weights_epoch(),
            0);  // best_epoch is 1-based
  EXPECT_EQ(read_checkpoint_meta(trainer.last_path()).state.weights_epoch(), 2);
}

TEST(Checkpoint, CutInHalfFailsInOneLineAndLeavesTheModelAlone) {
  auto model = make_model();
  test::TempDir dir;
  const auto path = dir.file("ck.pt");
  save_checkpoint(path, {Json{{"k", 1}}, {}}, *model, nullptr, true);
  const auto size = fs::file_size(path);
  fs::resize_file(path, size / 2);
  auto other = make_model();
  try {
    load_checkpoint(path, *other, nullptr, false);
    FAIL() << "loaded a truncated checkpoint";
  } catch (const CheckpointError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": cannot read checkpoint (truncated or not a CoCo checkpoint", 0),
              0u)
        << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos);
  }
}

// libtorch never sees a damaged archive: one flipped byte, or an archive without CoCo's
// trailer, is refused by the checksum before libtorch parses anything.
TEST(Checkpoint, ChecksumRefusesAFlippedByteAndAMissingTrailer) {
  auto model = make_model();
  test::TempDir dir;
  const auto path = dir.file("ck.pt");
  save_checkpoint(path, {Json{{"k", 1}}, {}}, *model, nullptr, true);
  const auto size = fs::file_size(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size / 2));
    const char c = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.put(static_cast<char>(c ^ 1));
  }
  EXPECT_EQ(test::error_text<CheckpointError>([&] { read_checkpoint_meta(path); }),
            path +
                ": cannot read checkpoint (truncated or not a CoCo checkpoint: checksum mismatch, "
                "the file is damaged)");
  fs::resize_file(path, size - 20);  // the bare libtorch archive
  EXPECT_EQ(test::error_text<CheckpointError>([&] { read_checkpoint_meta(path); }),
            path +
                ": cannot read checkpoint (truncated or not a CoCo checkpoint: no checksum "
                "trailer; written by an older CoCo, or cut short)");
}

TEST(Checkpoint, ShapeMismatchNamesTheTensor) {
  auto model = make_model();
  test::TempDir dir;
  const auto path = dir.file("ck.pt");
  save_checkpoint(path, {Json::object(), {}}, *model, nullptr, false);
  SASRecOptions o;
  o.num_items = 41;
  o.max_len = 10;
  o.hidden = 16;
  SASRecImpl bigger(o);
  try {
    load_checkpoint(path, bigger, nullptr, false);
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_STREQ(
        e.what(),
        (path + ": tensor 'model/item_emb.weight' has shape [41, 16], the model expects [42, 16]")
            .c_str());
  }
}

}  // namespace
}  // namespace coco
