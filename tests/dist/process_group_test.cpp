// The c10d process group and the gradient buckets, with two ranks as two threads of this
// process (a FileStore rendezvous, Gloo over loopback): collectives give the reduced values,
// averaged gradients equal the full batch's, a rank that never arrives ends in an error.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <future>
#include <thread>

#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/dist/gradient_sync.h"
#include "coco/dist/launcher.h"
#include "coco/dist/process_group.h"
#include "test_util.h"

namespace coco::dist {
namespace {

// Runs body(group) on `n` ranks at once, one thread each; returns their errors ("" = none).
std::vector<std::string> on_ranks(int n, const std::function<void(const Group&)>& body,
                                  double timeout_seconds = 30) {
  test::TempDir d;
  DistOptions options;
  options.timeout_seconds = timeout_seconds;
  std::vector<std::future<std::string>> runs;
  for (int r = 0; r < n; ++r) {
    runs.push_back(std::async(std::launch::async, [&, r] {
      LaunchEnv env;
      env.rank = r;
      env.world_size = n;
      env.store_file = d.file("store");
      try {
        const Group g = Group::join(env, options, torch::kCPU);
        body(g);
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
      return std::string();
    }));
  }
  std::vector<std::string> errors;
  for (auto& f : runs) errors.push_back(f.get());
  return errors;
}

TEST(ProcessGroup, CollectivesReduceOverRanks) {
  const auto errors = on_ranks(2, [](const Group& g) {
    const double r = static_cast<double>(g.rank());
    auto a = torch::full({3}, r + 1, torch::kFloat64);
    auto b = torch::full({2, 2}, 10 * (r + 1), torch::kFloat64);
    g.all_reduce({a, b}, ReduceOp::kSum, "test");  // two shapes through one buffer
    EXPECT_TRUE(torch::equal(a, torch::full({3}, 3.0, torch::kFloat64)));
    EXPECT_TRUE(torch::equal(b, torch::full({2, 2}, 30.0, torch::kFloat64)));
    auto lo = torch::full({1}, static_cast<int64_t>(5 + g.rank()), torch::kInt64), hi = lo.clone();
    g.all_reduce({lo}, ReduceOp::kMin, "test");
    g.all_reduce({hi}, ReduceOp::kMax, "test");
    EXPECT_EQ(lo.item<int64_t>(), 5);
    EXPECT_EQ(hi.item<int64_t>(), 6);
    auto w = torch::full({4}, r, torch::kFloat32),
         i = torch::full({2}, g.rank() + 7, torch::kInt64);
    g.broadcast({w, i}, "test");
    EXPECT_TRUE(torch::equal(w, torch::zeros({4})));
    EXPECT_TRUE(torch::equal(i, torch::full({2}, 7, torch::kInt64)));
    g.barrier("test");
  });
  EXPECT_EQ(errors, std::vector<std::string>(2, ""));
}

// The gradient of a mean over a batch, split 3 + 5 between two ranks and weighted by share,
// equals the whole batch's; a parameter only one rank used still gets its gradient, and
// one nobody used keeps none.
TEST(ProcessGroup, BucketedGradientsEqualTheWholeBatch) {
  torch::manual_seed(1);
  const auto x = torch::randn({8, 6}), y = torch::randn({8, 2});
  const auto w0 = torch::randn({6, 4}), w1 = torch::randn({4, 2}), extra0 = torch::randn({3});
  auto loss_of = [&](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& xs,
                     const torch::Tensor& ys) {
    return (torch::tanh(xs.mm(a)).mm(b) - ys).pow(2).mean();
  };
  auto a = w0.clone().requires_grad_(), b = w1.clone().requires_grad_();
  loss_of(a, b, x, y).backward();
  const auto ga = a.grad().clone(), gb = b.grad().clone();

  const auto errors = on_ranks(2, [&](const Group& g) {
    auto pa = w0.clone().requires_grad_(), pb = w1.clone().requires_grad_();
    auto extra = extra0.clone().requires_grad_(), unused = torch::zeros({2}).requires_grad_();
    // A tiny bucket cap: several buckets, started while backward runs.
    GradientSync sync(g, {pa, pb, extra, unused}, /*bucket_mb=*/0.0001);
    const int64_t begin = g.rank() == 0 ? 0 : 3, n = g.rank() == 0 ? 3 : 5;
    auto loss = loss_of(pa, pb, x.narrow(0, begin, n), y.narrow(0, begin, n));
    if (g.rank() == 1) loss = loss + extra.sum();
    for (int step = 0; step < 2; ++step) {  // the buffers are reused
      pa.mutable_grad() = torch::Tensor();
      pb.mutable_grad() = torch::Tensor();
      extra.mutable_grad() = torch::Tensor();
      sync.prepare(static_cast<double>(n) / 8.0);
      loss.backward({}, /*retain_graph=*/true);
      sync.finish();
      EXPECT_TRUE(torch::allclose(pa.grad(), ga, 1e-5, 1e-6)) << g.rank();
      EXPECT_TRUE(torch::allclose(pb.grad(), gb, 1e-5, 1e-6)) << g.rank();
      EXPECT_TRUE(torch::allclose(extra.grad(), torch::full({3}, 5.0 / 8.0))) << g.rank();
      EXPECT_FALSE(unused.grad().defined());
    }
    EXPECT_GE(sync.wait_seconds(), 0.0);
  });
  EXPECT_EQ(errors, std::vector<std::string>(2, ""));
}

TEST(ProcessGroup, ARankThatNeverArrivesEndsInAnErrorNamingTheCollective) {
  const auto start = std::chrono::steady_clock::now();
  const auto errors = on_ranks(
      2,
      [](const Group& g) {
        auto t = torch::ones({4});
        if (g.rank() == 0) g.all_reduce({t}, ReduceOp::kSum, "all-reduce of gradients");
      },
      /*timeout_seconds=*/2);
  EXPECT_NE(errors[0].find("data-parallel rank 0 of 2: all-reduce of gradients failed"),
            std::string::npos)
      << errors[0];
  EXPECT_NE(errors[0].find("dist.timeout_seconds is 2"), std::string::npos) << errors[0];
  EXPECT_EQ(errors[1], "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(ProcessGroup, CheckIdenticalFindsADifferentRank) {
  const auto errors = on_ranks(2, [](const Group& g) {
    const auto same = torch::arange(10, torch::kFloat32);
    check_identical(g, {same}, "after step 1");
    check_identical(g, {same + static_cast<float>(g.rank())}, "after step 2");
  });
  for (const auto& e : errors) {
    EXPECT_NE(e.find("parameters differ between ranks after step 2"), std::string::npos) << e;
  }
}

TEST(ProcessGroup, AWorldOfOneNeedsNoRendezvous) {
  const Group g;
  auto t = torch::ones({2});
  g.all_reduce({t}, ReduceOp::kSum, "x");
  g.broadcast({t}, "x");
  g.barrier("x");
  EXPECT_TRUE(torch::equal(t, torch::ones({2})));
  EXPECT_EQ(g.size(), 1);
  EXPECT_EQ(world().size(), 1);
}

TEST(LaunchEnv, ReadsTorchrunsVariablesAndNamesABadOne) {
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "3", 1);
  ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("LOCAL_WORLD_SIZE", "2", 1);
  ::setenv("MASTER_ADDR", "node7", 1);
  ::setenv("MASTER_PORT", "29600", 1);
  ::setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);
  const LaunchEnv e = LaunchEnv::from_environment();
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "node7");
  EXPECT_EQ(e.master_port, 29600);
  EXPECT_TRUE(e.agent_store);
  ::setenv("RANK", "4", 1);
  EXPECT_EQ(test::error_text<Error>([] { LaunchEnv::from_environment(); }),
            "environment variable RANK=4: expected an integer in [0, 3]");
  ::setenv("RANK", "x", 1);
  EXPECT_EQ(test::error_text<Error>([] { LaunchEnv::from_environment(); }),
            "environment variable RANK=x: expected an integer in [0, 3]");
  for (const char* v : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                        "MASTER_PORT", "TORCHELASTIC_USE_AGENT_STORE"})
    ::unsetenv(v);
  EXPECT_EQ(LaunchEnv::from_environment().world_size, 1);
}

TEST(Launcher, WorkersRunWithoutTheNprocFlag) {
  const char* argv[] = {"coco-train", "--nproc",   "2",       "--config",
                        "c.json",     "--nproc=3", "--resume"};
  EXPECT_EQ(without_nproc(7, const_cast<char**>(argv)),
            (std::vector<std::string>{"--config", "c.json", "--resume"}));
}

}  // namespace
}  // namespace coco::dist
