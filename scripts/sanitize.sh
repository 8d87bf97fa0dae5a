#!/usr/bin/env bash
# The unit tests under AddressSanitizer + UndefinedBehaviorSanitizer: builds build-asan/
# (-DCOCO_SANITIZE=ON) and runs `ctest -L unit` there; any report fails the test it came from.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOCO_SANITIZE=ON ${COCO_CMAKE_ARGS:-}
cmake --build build-asan -j"$(nproc)"
cd build-asan
# Leaks: libtorch keeps its operator registry and thread pools alive until exit.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest -L unit --output-on-failure -j"$(nproc)" --timeout 1800 "$@"
