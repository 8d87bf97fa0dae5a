// The libFuzzer entry points of one target, chosen at compile time (COCO_FUZZ_TARGET). With
// COCO_FUZZ_SEEDS=DIR in the environment the binary writes the target's seeds and exits.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "targets.h"

namespace {

const coco::fuzz::Target& target() {
  static const coco::fuzz::Target* t = coco::fuzz::find_target(COCO_FUZZ_TARGET);
  if (!t) {
    std::fprintf(stderr, "no fuzz target '%s'\n", COCO_FUZZ_TARGET);
    std::abort();
  }
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("COCO_FUZZ_SEEDS")) {
    if (target().write_seeds) target().write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  target().run({reinterpret_cast<const char*>(data), size});
  return 0;
}
