#!/usr/bin/env bash
# The README's main job: set up, build, train on Amazon Beauty and print the HR/NDCG table.
# A second run resumes the first (or, if it finished, prints its results again).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
./build/bin/coco-train --config configs/amazon_beauty.json --resume "$@"
