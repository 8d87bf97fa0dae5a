// The c10d process group behind a data-parallel job: rendezvous through torchrun's
// TCPStore conventions, Gloo (or NCCL) collectives with a deadline, errors as one line.
#include "coco/dist/process_group.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/torch.h>
#include <torch/version.h>

#include "coco/common/error.h"
#include "coco/common/log.h"

namespace coco::dist {

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::kAuto:
      return "auto";
    case Backend::kGloo:
      return "gloo";
    case Backend::kNccl:
      return "nccl";
  }
  return "?";
}

DistOptions DistOptions::from_config(ConfigNode& node) {
  DistOptions o;
  o.backend =
      node.get_enum("backend", o.backend,
                    {{"auto", Backend::kAuto}, {"gloo", Backend::kGloo}, {"nccl", Backend::kNccl}});
  o.timeout_seconds = node.get_double("timeout_seconds", o.timeout_seconds, 1, 86400);
  o.bucket_mb = node.get_double("bucket_mb", o.bucket_mb, 0.001, 4096);
  node.finish();
  return o;
}

namespace {

std::optional<int64_t> env_int(const char* name, int64_t lo, int64_t hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v, &end, 10);
  if (errno != 0 || *end != '\0' || x < lo || x > hi) {
    throw Error(fmt::format("environment variable {}={}: expected an integer in [{}, {}]", name, v,
                            lo, hi));
  }
  return x;
}

std::string env_string(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v == nullptr || *v == '\0' ? fallback : std::string(v);
}

// The message of a failed c10d call, without libtorch's backtrace.
std::string message_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  std::string m = e.what();
  return m.substr(0, m.find('\n'));
}

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return c10d::ReduceOp::SUM;
    case ReduceOp::kMin:
      return c10d::ReduceOp::MIN;
    case ReduceOp::kMax:
      return c10d::ReduceOp::MAX;
  }
  return c10d::ReduceOp::SUM;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

LaunchEnv LaunchEnv::from_environment() {
  LaunchEnv e;
  e.world_size = env_int("WORLD_SIZE", 1, 1 << 20).value_or(1);
  e.rank = env_int("RANK", 0, e.world_size - 1).value_or(0);
  e.local_world_size = env_int("LOCAL_WORLD_SIZE", 1, e.world_size).value_or(e.world_size);
  e.local_rank = env_int("LOCAL_RANK", 0, e.local_world_size - 1).value_or(e.rank);
  e.master_addr = env_string("MASTER_ADDR", e.master_addr);
  e.master_port = env_int("MASTER_PORT", 1, 65535).value_or(e.master_port);
  e.agent_store = env_string("TORCHELASTIC_USE_AGENT_STORE", "") == "True";
  e.restart_count = env_int("TORCHELASTIC_RESTART_COUNT", 0, 1 << 20).value_or(0);
  if (e.world_size > 1 && std::getenv("RANK") == nullptr) {
    throw Error("environment variable WORLD_SIZE=" + std::to_string(e.world_size) +
                " without RANK: launch with torchrun, coco-train --nproc N, or set both");
  }
  return e;
}

struct Pending::Impl {
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
  const Group::Impl* group;
};

// libtorch 2 moved the collectives of Gloo and NCCL to c10d::Backend.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

struct Group::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Collectives> pg;
  int64_t rank = 0, size = 1;
  std::chrono::milliseconds timeout{};

  [[noreturn]] void fail(const std::string& what, const std::exception& e) const {
    throw Error(fmt::format(
        "data-parallel rank {} of {}: {} failed: {} (a worker died or stopped responding; "
        "dist.timeout_seconds is {:g})",
        rank, size, what, message_of(e), timeout.count() / 1000.0));
  }
  // Starts a collective: `launch` returns its c10d::Work.
  template <typename Launch>
  c10::intrusive_ptr<c10d::Work> start(const std::string& what, Launch launch) const {
    try {
      return launch();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) const {
    try {
      work->wait(timeout);
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }
  template <typename Launch>
  void run(const std::string& what, Launch launch) const {
    wait(start(what, launch), what);
  }
};

void Pending::wait() {
  if (impl_ == nullptr) return;
  impl_->group->wait(impl_->work, impl_->what);
  impl_.reset();
}

namespace {

// torchrun's convention: its agent hosts the store (every worker is a client, under a
// per-attempt prefix); otherwise rank 0 hosts it. Tests rendezvous through a file.
c10::intrusive_ptr<c10d::Store> rendezvous_store(const LaunchEnv& env,
                                                 std::chrono::milliseconds timeout) {
  if (!env.store_file.empty())
    return c10::make_intrusive<c10d::FileStore>(env.store_file, env.world_size);
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = !env.agent_store && env.rank == 0;
  so.numWorkers = env.agent_store ? c10::nullopt : c10::optional<size_t>(env.world_size);
  so.waitWorkers = !env.agent_store;
  so.multiTenant = !env.agent_store;
  so.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  if (!env.agent_store) return tcp;
  return c10::make_intrusive<c10d::PrefixStore>(
      "/worker/attempt_" + std::to_string(env.restart_count), tcp);
}

c10::intrusive_ptr<Collectives> make_collectives(Backend backend,
                                                 const c10::intrusive_ptr<c10d::Store>& store,
                                                 const LaunchEnv& env,
                                                 std::chrono::milliseconds timeout) {
  const int rank = static_cast<int>(env.rank), size = static_cast<int>(env.world_size);
  if (backend == Backend::kNccl) {
#ifdef USE_C10D_NCCL
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, o);
#else
    throw ConfigError(
        "config error at /dist/backend: this libtorch has no NCCL (built without "
        "USE_C10D_NCCL); use \"gloo\"");
#endif
  }
  auto o = c10d::ProcessGroupGloo::Options::create(timeout);
  o->devices.push_back(is_loopback(env.master_addr) || !env.store_file.empty()
                           ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                           : c10d::ProcessGroupGloo::createDefaultDevice());
  o->threads = 1;  // one collective at a time per rank; compute keeps the cores
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, o);
}

}  // namespace

Group Group::join(const LaunchEnv& env, const DistOptions& options, torch::Device device) {
  Group g;
  g.rank_ = env.rank;
  g.size_ = env.world_size;
  g.local_rank_ = env.local_rank;
  g.local_size_ = env.local_world_size;
  g.timeout_ = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_seconds * 1000));
  g.backend_ = options.backend;
  if (g.backend_ == Backend::kAuto) {
#ifdef USE_C10D_NCCL
    g.backend_ = device.is_cuda() ? Backend::kNccl : Backend::kGloo;
#else
    g.backend_ = Backend::kGloo;
#endif
  }
  (void)device;  // chooses the backend (above) when NCCL is built in
  if (g.size_ == 1) return g;
  auto impl = std::make_shared<Impl>();
  impl->rank = g.rank_;
  impl->size = g.size_;
  impl->timeout = g.timeout_;
  try {
    impl->store = rendezvous_store(env, g.timeout_);
    impl->store->setTimeout(g.timeout_);
    impl->pg = make_collectives(g.backend_, impl->store, env, g.timeout_);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    const std::string where = env.store_file.empty()
                                  ? env.master_addr + ":" + std::to_string(env.master_port)
                                  : env.store_file;
    throw Error(fmt::format("data-parallel rank {} of {}: could not join the job at {}: {}",
                            g.rank_, g.size_, where, message_of(e)));
  }
  g.impl_ = std::move(impl);
  return g;
}

void Group::all_reduce(const std::vector<torch::Tensor>& tensors, ReduceOp op,
                       const std::string& what) const {
  if (impl_ == nullptr || tensors.empty()) return;
  const bool single = tensors.size() == 1 && tensors[0].is_contiguous();
  std::vector<torch::Tensor> flat;
  if (single) {
    flat = {tensors[0]};
  } else {
    std::vector<torch::Tensor> views;
    for (const auto& t : tensors) views.push_back(t.reshape(-1));
    flat = {torch::cat(views)};
  }
  c10d::AllreduceOptions o;
  o.reduceOp = to_c10d(op);
  o.timeout = timeout_;
  impl_->run(what, [&] { return impl_->pg->allreduce(flat, o); });
  if (single) return;
  int64_t offset = 0;
  for (const auto& t : tensors) {
    t.copy_(flat[0].narrow(0, offset, t.numel()).view_as(t));
    offset += t.numel();
  }
}

Pending Group::all_reduce_async(const torch::Tensor& flat, const std::string& what) const {
  if (impl_ == nullptr) return Pending();
  std::vector<torch::Tensor> v = {flat};
  c10d::AllreduceOptions o;
  o.timeout = timeout_;
  auto p = std::make_shared<Pending::Impl>();
  p->what = what;
  p->group = impl_.get();
  p->work = impl_->start(what, [&] { return impl_->pg->allreduce(v, o); });
  return Pending(std::move(p));
}

void Group::broadcast(const std::vector<torch::Tensor>& tensors, const std::string& what) const {
  if (impl_ == nullptr || tensors.empty()) return;
  torch::NoGradGuard no_grad;
  // One flat buffer per dtype: a few collectives however many tensors there are.
  std::map<torch::ScalarType, std::vector<torch::Tensor>> by_type;
  for (const auto& t : tensors) by_type[t.scalar_type()].push_back(t.detach());
  for (auto& entry : by_type) {
    auto& group = entry.second;
    std::vector<torch::Tensor> views;
    for (const auto& t : group) views.push_back(t.reshape(-1));
    std::vector<torch::Tensor> flat = {torch::cat(views)};
    c10d::BroadcastOptions o;
    o.timeout = timeout_;
    impl_->run(what, [&] { return impl_->pg->broadcast(flat, o); });
    int64_t offset = 0;
    for (auto& t : group) {
      t.copy_(flat[0].narrow(0, offset, t.numel()).view_as(t));
      offset += t.numel();
    }
  }
}

void Group::barrier(const std::string& what) const {
  if (impl_ == nullptr) return;
  c10d::BarrierOptions o;
  o.timeout = timeout_;
  impl_->run(what, [&] { return impl_->pg->barrier(o); });
}

namespace {
std::mutex g_world_mutex;
Group g_world;
bool g_joined = false;
}  // namespace

const Group& world() { return g_world; }

const Group& init(const DistOptions& options, torch::Device device) {
  std::lock_guard<std::mutex> lock(g_world_mutex);
  if (g_joined) return g_world;
  const LaunchEnv env = LaunchEnv::from_environment();
  g_world = Group::join(env, options, device);
  g_joined = true;
  if (g_world.size() > 1) {
    log().info("[dist] rank {} of {} joined ({}, {}:{})", g_world.rank(), g_world.size(),
               backend_name(g_world.backend()), env.master_addr, env.master_port);
  }
  return g_world;
}

void check_identical(const Group& group, const std::vector<torch::Tensor>& tensors,
                     const std::string& when) {
  if (group.size() == 1) return;
  // FNV-1a over the bytes of every tensor, folded to 62 bits (a non-negative int64).
  uint64_t h = 1469598103934665603ull;
  for (const auto& t : tensors) {
    const auto c = t.detach().to(torch::kCPU).contiguous();
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    const size_t n = static_cast<size_t>(c.numel()) * c.element_size();
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  }
  const auto mine = static_cast<int64_t>(h >> 2);
  auto lo = torch::full({1}, mine, torch::kInt64), hi = lo.clone();
  group.all_reduce({lo}, ReduceOp::kMin, "parameter hash");
  group.all_reduce({hi}, ReduceOp::kMax, "parameter hash");
  if (lo.item<int64_t>() != hi.item<int64_t>()) {
    throw Error(
        fmt::format("data-parallel rank {}: parameters differ between ranks {} "
                    "(hash {:x}, range {:x}..{:x})",
                    group.rank(), when, mine, lo.item<int64_t>(), hi.item<int64_t>()));
  }
}

}  // namespace coco::dist
