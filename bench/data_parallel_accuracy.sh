#!/usr/bin/env bash
# Same numbers with one and two workers: SASRec on Amazon Beauty (configs/amazon_beauty_sasrec.json,
# train.epochs=10 as in the main job), seeds 42-44, one process (all cores) against two Gloo
# workers (coco-train --nproc 2, one thread each) at the same global batch. Prints the
# validation and test NDCG@10 / HR@10 of each, mean ± std over the seeds. Resumable.
#
#   bash bench/data_parallel_accuracy.sh [RUNS_DIR]     (default runs/data-parallel)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-runs/data-parallel}
for seed in 42 43 44; do
  for nproc in 1 2; do
    build/bin/coco-train --config configs/amazon_beauty_sasrec.json --nproc "$nproc" --resume \
      --set seed="$seed" --set train.epochs=10 --set device=cpu --set log_level=warn \
      --set output_dir="$runs/sasrec-w$nproc-s$seed" > /dev/null
  done
done
/usr/bin/python3 - "$runs" <<'PY'
import json, statistics, sys
runs = sys.argv[1]
def cell(values):
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"
print("| workers | valid NDCG@10 | test NDCG@10 | test HR@10 |")
print("|---|---:|---:|---:|")
for n in (1, 2):
    reports = [json.load(open(f"{runs}/sasrec-w{n}-s{s}/report.json")) for s in (42, 43, 44)]
    print(f"| {n} | {cell([r['valid_NDCG@10'] for r in reports])} | "
          f"{cell([r['metrics']['NDCG@10'] for r in reports])} | "
          f"{cell([r['metrics']['HR@10'] for r in reports])} |")
for s in (42, 43, 44):
    a, b = (json.load(open(f"{runs}/sasrec-w{n}-s{s}/report.json")) for n in (1, 2))
    print(f"seed {s}: test NDCG@10 {a['metrics']['NDCG@10']:.4f} (1) vs {b['metrics']['NDCG@10']:.4f} (2)")
PY
