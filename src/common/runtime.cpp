// glibc allocator tuning and thread pools for tensor-heavy workloads.
#include "coco/common/runtime.h"

#include <dlfcn.h>
#include <malloc.h>

#include <cstdlib>
#include <thread>

#include <ATen/Parallel.h>

namespace coco {

void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

void set_compute_threads(int threads) {
  at::set_num_threads(
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  const char* env = std::getenv("OPENBLAS_NUM_THREADS");
  if (env != nullptr && *env != '\0') return;  // the user's choice
  // OpenBLAS arrives through libtorch's BLAS; look its setter up rather than link it.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(1);
}

}  // namespace coco
