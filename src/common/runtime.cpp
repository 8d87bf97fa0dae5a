// glibc allocator tuning for tensor-heavy workloads.
#include "coco/common/runtime.h"

#include <malloc.h>

namespace coco {

void tune_allocator() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace coco
