#!/usr/bin/env bash
# Fails when an #include runs upward through the library's layers (docs/architecture.md).
# A file may include its own folder and the folders of lower layers; the folders that share a
# layer (ops and dist; backbones, llm and nn) do not include each other. Tools, benchmarks
# and tests may include anything.
set -euo pipefail
cd "$(dirname "$0")/.."

layer() {
  case $1 in
    common) echo 0 ;;
    config) echo 1 ;;
    data) echo 2 ;;
    ops | dist) echo 3 ;;
    recommender) echo 4 ;;
    backbones | llm | nn) echo 5 ;;
    model) echo 6 ;;
    eval) echo 7 ;;
    train) echo 8 ;;
    experiment) echo 9 ;;
    *) echo "" ;;
  esac
}

bad=0
while IFS=: read -r file line text; do
  from=$(echo "$file" | sed -E 's#^(include/coco|src)/([a-z_]+)/.*#\2#')
  to=$(echo "$text" | sed -E 's#.*"coco/([a-z_]+)/.*#\1#')
  [ "$from" = "$to" ] && continue
  lf=$(layer "$from")
  lt=$(layer "$to")
  if [ -z "$lf" ] || [ -z "$lt" ]; then
    echo "$file:$line: folder '$from' or '$to' has no layer in scripts/check_layers.sh" >&2
    bad=1
  elif [ "$lt" -ge "$lf" ]; then
    echo "$file:$line: $from (layer $lf) includes $to (layer $lt): includes must run downward" >&2
    bad=1
  fi
done < <(grep -rnE '^#include "coco/[a-z_]+/' include src)
if [ $bad -eq 0 ]; then echo "[layers] every #include in include/ and src/ runs downward"; fi
exit $bad
