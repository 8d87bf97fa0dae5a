#!/usr/bin/env bash
# Fails when a C++ file of the project differs from what clang-format makes of it under the
# repository's .clang-format (Debian's clang-format 14). `--fix` rewrites the files instead.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find include src tools tests bench fuzz -name '*.h' -o -name '*.cpp' | sort)
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
clang-format --dry-run --Werror "${files[@]}"
echo "[format] ${#files[@]} files match .clang-format"
