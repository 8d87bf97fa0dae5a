#!/usr/bin/env bash
# The README's test command: set up, build, check the include layers and the formatting,
# run the whole test suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/check_layers.sh   # no #include runs upward (docs/architecture.md)
bash scripts/check_format.sh   # every C++ file as .clang-format makes it
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900 "$@"
