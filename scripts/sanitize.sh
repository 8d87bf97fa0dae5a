#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer: builds build-asan/ with clang
# (-DCOCO_FUZZ=ON, which implies -DCOCO_SANITIZE=ON), runs `ctest -L unit` there (any report
# fails the test it came from), then runs every fuzz target for SMOKE_SECONDS (default 5) on
# its seeds. Installs clang and its sanitizer runtimes first (Debian 12, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(clang libclang-rt-14-dev)
source scripts/install_packages.sh
install_packages sanitize "${packages[@]}"
source scripts/asan_build.sh
start=$SECONDS
cmake --build build-asan -j"$(nproc)"
echo "[sanitize] build: $((SECONDS - start)) s"
start=$SECONDS
(cd build-asan && ctest -L unit --output-on-failure -j"$(nproc)" --timeout 1800)
echo "[sanitize] unit tests under ASan + UBSan: $((SECONDS - start)) s"
start=$SECONDS
for target in $(asan_fuzz_targets); do
  COCO_FUZZ_SEED=1 bash scripts/fuzz.sh "$target" "${SMOKE_SECONDS:-5}" > "build-asan/fuzz-smoke-$target.log" 2>&1 ||
    { tail -40 "build-asan/fuzz-smoke-$target.log"; echo "[sanitize] fuzz target $target failed"; exit 1; }
  grep -h "stat::number_of_executed_units" "build-asan/fuzz-smoke-$target.log" | sed "s/^/[sanitize] $target: /"
done
echo "[sanitize] fuzz smoke: $((SECONDS - start)) s"
