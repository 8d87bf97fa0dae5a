// Process-wide settings every tool applies before doing work (run_tool calls them).
#pragma once

namespace coco {

/// Keeps freed memory of a few MB in the heap. With glibc's defaults each activation
/// tensor of that size is a fresh mmap whose pages the kernel faults in and zeroes again,
/// which cost a quarter of the time of LLM inference and of a SASRec training step.
void tune_allocator();

/// Gives libtorch `threads` intra-op threads (0 = every core) and OpenBLAS one, unless
/// OPENBLAS_NUM_THREADS is set. Two thread pools on the same cores spin against each other;
/// the large products split their rows over libtorch's threads instead.
void set_compute_threads(int threads);

}  // namespace coco
