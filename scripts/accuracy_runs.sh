#!/usr/bin/env bash
# Trains every config given on the command line with several seeds, several runs at a
# time, and writes each run's test report to runs/accuracy/<config>_seed<S>.json.
# Summarise with: python3 scripts/summarize_runs.py runs/accuracy
#   SEEDS="1 2 3" JOBS=2 bash scripts/accuracy_runs.sh configs/amazon_beauty_sasrec.json ...
# Extra coco-train arguments (e.g. --set data.path=...) can be given in EXTRA.
set -uo pipefail
cd "$(dirname "$0")/.."
seeds=${SEEDS:-"1 2 3"}
jobs=${JOBS:-$(nproc)}
out=${OUT:-runs/accuracy}
bin=${COCO_BIN:-build/bin}
mkdir -p "$out"
for config in "$@"; do
  name=$(basename "$config" .json)
  for seed in $seeds; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    echo "[accuracy] $name seed $seed"
    "$bin/coco-train" --config "$config" --set seed="$seed" --set output_dir="$out/${name}_seed$seed" \
      --overwrite --report "$out/${name}_seed$seed.json" ${EXTRA:-} > "$out/${name}_seed$seed.log" 2>&1 &
  done
done
wait
