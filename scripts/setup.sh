#!/usr/bin/env bash
# Installs the Debian 12 packages CoCo needs (as root) and builds it in ./build.
# Idempotent: a second run installs nothing new and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config
  libtorch-dev libopenblas0-pthread        # libtorch; OpenBLAS makes its matmuls ~30x faster
  libgloo-dev                              # headers of c10d's Gloo process group (data-parallel)
  libsentencepiece-dev sentencepiece       # tokenizer (isolated from libtorch, see ENVIRONMENT)
  nlohmann-json3-dev libspdlog-dev libcli11-dev zlib1g-dev
  libpcre2-dev libicu-dev                  # byte-level BPE pre-tokenizer regexes (\p{L}, \p{N}), NFC
  libgtest-dev libgmock-dev
  clang-format                             # scripts/check_format.sh (the tests run it)
  python3-matplotlib python3-numpy         # scripts/plot_run.py (run diagnostics as PNG)
)
source scripts/install_packages.sh
install_packages setup "${packages[@]}"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${COCO_CMAKE_ARGS:-}
cmake --build build -j"$(nproc)"
