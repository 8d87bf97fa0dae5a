#!/usr/bin/env bash
# Data-parallel scaling on this machine: epoch time, throughput and the unhidden gradient
# all-reduce per step of coco-train with one and two Gloo workers (SASRec and CoCo-SASRec on
# Amazon Beauty), beside PyTorch DDP of the same SASRec under torchrun when python3-torch is
# installed (apt-get install python3-torch). Prints a Markdown table.
#
#   bash bench/data_parallel.sh [EPOCHS]     (after scripts/setup.sh; default 3 epochs)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bin=build/bin
common=(--set device=cpu --set log_level=warn --set train.epochs="$epochs" --set train.eval_every=1000)

# name, workers, threads per worker, config
run() {
  local name=$1 nproc=$2 threads=$3 config=$4
  local dir="$out/$name-$nproc-$threads"
  "$bin/coco-train" --config "$config" --nproc "$nproc" --set output_dir="$dir" \
    --set threads="$threads" "${common[@]}" > /dev/null
  /usr/bin/python3 - "$dir" "$name" "$nproc" "$threads" <<'PY'
import json, os, statistics, sys
epochs = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
data = json.load(open(sys.argv[1] + "/config.json"))["data"]["path"]
users = sum(1 for _ in open(os.path.join(data, "sequences.txt")))
t = statistics.median(e["train_seconds"] for e in epochs)
steps = epochs[0]["step"]
wait = statistics.median(e.get("gradient_wait_seconds", 0.0) for e in epochs)
print(f"| coco-train {sys.argv[2]} | {sys.argv[3]} × {sys.argv[4]} | {t:.2f} | {users / t:.0f} | "
      f"{1000 * wait / steps:.2f} |")
PY
}

echo "| run | workers × threads | epoch (s, median of $epochs) | users/s | gradient wait per step (ms) |"
echo "|---|---|---:|---:|---:|"
run sasrec 1 1 configs/amazon_beauty_sasrec.json
run sasrec 1 2 configs/amazon_beauty_sasrec.json
run sasrec 2 1 configs/amazon_beauty_sasrec.json
run coco-sasrec 1 2 configs/amazon_beauty.json
run coco-sasrec 2 1 configs/amazon_beauty.json

if /usr/bin/python3 -c "import torch.distributed" 2> /dev/null && command -v torchrun > /dev/null; then
  data=$(/usr/bin/python3 -c "import json;print(json.load(open('$out/sasrec-1-1/config.json'))['data']['path'])")
  for n in 1 2; do
    STEPS=10 OMP_NUM_THREADS=$((3 - n)) torchrun --standalone --nproc_per_node "$n" --redirects 1 --tee 1 \
      bench/ddp_sasrec.py "$data" 2> /dev/null | sed -n 's/^\[[^]]*\]:\({.*\)/\1/p' > "$out/ddp$n.json"
    /usr/bin/python3 - "$out/ddp$n.json" "$n" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
print(f"| PyTorch DDP sasrec (median step × {r['steps_per_epoch']}) | {n} × {3 - n} | "
      f"{r['epoch_seconds']:.1f} | {r['users'] / r['epoch_seconds']:.0f} | – |")
PY
  done
else
  echo "(PyTorch DDP skipped: install python3-torch for torchrun)"
fi
