// Data-parallel jobs: one process per device, joined in a c10d process group (Gloo on the
// CPU, NCCL on CUDA when the libtorch has it), launched with torchrun's environment
// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or by `--nproc N`. A process
// that was not launched that way is a world of one, where every collective returns at once.
//
// Every collective waits at most dist.timeout_seconds; a peer that died or hangs turns into
// an Error naming this rank and the collective, never a silent hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "coco/config/config.h"

namespace coco::dist {

enum class Backend { kAuto, kGloo, kNccl };  // auto: NCCL on CUDA when built in, else Gloo
const char* backend_name(Backend b);

/// The config's "dist" object.
struct DistOptions {
  Backend backend = Backend::kAuto;
  double timeout_seconds = 300;  // longest wait in one collective (rendezvous included)
  double bucket_mb = 25;         // gradient all-reduce buckets (PyTorch DDP's default)

  static DistOptions from_config(ConfigNode& node);
};

/// Where this process sits in the job, from torchrun's variables (absent: a world of one).
struct LaunchEnv {
  int64_t rank = 0, world_size = 1;
  int64_t local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  bool agent_store = false;   // TORCHELASTIC_USE_AGENT_STORE=True: the launcher hosts the store
  int64_t restart_count = 0;  // TORCHELASTIC_RESTART_COUNT
  std::string store_file;     // a FileStore instead of TCP (tests)

  /// Throws Error naming the variable when one is malformed or inconsistent.
  static LaunchEnv from_environment();
};

enum class ReduceOp { kSum, kMin, kMax };

/// An in-flight collective.
class Pending {
 public:
  struct Impl;
  explicit Pending(std::shared_ptr<Impl> impl = nullptr) : impl_(std::move(impl)) {}
  void wait();  // throws Error as the collective would

 private:
  std::shared_ptr<Impl> impl_;
};

/// A process group; default-constructed it is a world of one.
class Group {
 public:
  Group() = default;
  /// Joins the job `env` describes (blocks until every rank has joined, or the timeout).
  static Group join(const LaunchEnv& env, const DistOptions& options, torch::Device device);

  int64_t rank() const { return rank_; }
  int64_t size() const { return size_; }
  bool is_main() const { return rank_ == 0; }
  int64_t local_rank() const { return local_rank_; }  // on this machine: the device index
  int64_t local_size() const { return local_size_; }
  Backend backend() const { return backend_; }
  double timeout_seconds() const { return timeout_.count() / 1000.0; }

  /// In place over ranks. The tensors must share dtype and device (any shapes); `what`
  /// names the collective in errors ("gradients", "validation ranks", ...).
  void all_reduce(const std::vector<torch::Tensor>& tensors, ReduceOp op,
                  const std::string& what) const;
  /// Sum of one contiguous tensor, started now and finished by Pending::wait().
  Pending all_reduce_async(const torch::Tensor& flat, const std::string& what) const;
  /// Rank 0's values, in place on every rank.
  void broadcast(const std::vector<torch::Tensor>& tensors, const std::string& what) const;
  void barrier(const std::string& what) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  int64_t rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  Backend backend_ = Backend::kGloo;
  std::chrono::milliseconds timeout_{300000};
};

/// The job of this process, set once by init(); a world of one until then.
const Group& world();
/// Joins the job of LaunchEnv::from_environment() when WORLD_SIZE > 1 (once per process;
/// later calls return the group already joined).
const Group& init(const DistOptions& options, torch::Device device);

/// Parameters and buffers are bit-identical on every rank (a hash, compared by min/max);
/// throws Error naming `when` otherwise.
void check_identical(const Group& group, const std::vector<torch::Tensor>& tensors,
                     const std::string& when);

}  // namespace coco::dist
