#!/usr/bin/env bash
# Trains every config given on the command line with several seeds, a few runs at a time,
# and prints the mean ± std table (coco-sweep; a second call resumes, finished runs are kept).
#   SEEDS=1,2,3 JOBS=2 bash scripts/accuracy_runs.sh configs/amazon_beauty_sasrec.json ...
# Extra coco-sweep arguments (e.g. --set threads=1 --set train.epochs=10) go in EXTRA.
set -euo pipefail
cd "$(dirname "$0")/.."
configs=()
for config in "$@"; do configs+=(--config "$config"); done
# shellcheck disable=SC2086  # word splitting of EXTRA is intended
"${COCO_BIN:-build/bin}/coco-sweep" "${configs[@]}" --seeds "${SEEDS:-1,2,3}" \
  --jobs "${JOBS:-$(nproc)}" --out "${OUT:-runs/accuracy}" ${EXTRA:-}
