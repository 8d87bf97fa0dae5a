#!/usr/bin/env bash
# The README's main job: set up, build, then train SASRec alone and full CoCo-SASRec on
# Amazon Beauty with the same epoch budget, and print CoCo's HR/NDCG table with the
# backbone's numbers beside it. A second run resumes both (finished runs only report).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
epochs=${EPOCHS:-10}
./build/bin/coco-train --config configs/amazon_beauty_sasrec.json --resume --set train.epochs="$epochs"
./build/bin/coco-train --config configs/amazon_beauty.json --resume --set train.epochs="$epochs" \
  --baseline runs/amazon_beauty_sasrec "$@"
