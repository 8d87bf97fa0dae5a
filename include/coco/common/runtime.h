// Process-wide settings every tool applies before doing work (run_tool calls them).
#pragma once

namespace coco {

/// Keeps freed memory of a few MB in the heap. With glibc's defaults each activation
/// tensor of that size is a fresh mmap whose pages the kernel faults in and zeroes again,
/// which cost a quarter of the time of LLM inference and of a SASRec training step.
void tune_allocator();

}  // namespace coco
