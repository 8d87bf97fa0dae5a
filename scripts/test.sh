#!/usr/bin/env bash
# The README's test command: set up, build, check that no #include runs upward,
# run the whole test suite with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/check_layers.sh   # no #include runs upward (docs/architecture.md)
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900 "$@"
