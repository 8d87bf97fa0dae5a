#!/usr/bin/env python3
"""One table of the CoCo ablations written by scripts/ablations.sh: per backbone and variant,
test NDCG@10 and HR@10 (full ranking, history excluded) as mean ± std over seeds, and the
change against the same backbone trained alone.

usage: python3 scripts/summarize_ablations.py runs/ablations
"""
import collections
import glob
import json
import os
import re
import statistics
import sys

ORDER = ["backbone", "coco", "static", "lora_always", "lora_never", "random_prompt", "no_ortho",
         "method_sum", "coupled", "last_prefix", "adapt_lora", "adapt_full", "random_llm"]


def mean_std(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(folder):
    runs = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(folder, "*_seed*.json"))):
        m = re.match(r"(\w+?)_(\w+)_seed(\d+)\.json$", os.path.basename(path))
        if m:
            with open(path) as f:
                runs[(m.group(1), m.group(2))].append(json.load(f))
    print("| backbone | variant | seeds | best epochs | NDCG@10 | vs backbone | HR@10 | vs backbone |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for bb in sorted({b for b, _ in runs}):
        base = runs.get((bb, "backbone"))
        for variant in sorted({v for b, v in runs if b == bb}, key=lambda v: ORDER.index(v) if v in ORDER else 99):
            reports = runs[(bb, variant)]
            cells = []
            for metric in ("NDCG@10", "HR@10"):
                mean, std = mean_std([r["metrics"][metric] for r in reports])
                cells.append(f"{mean:.4f} ± {std:.4f}")
                if base and variant != "backbone" and statistics.mean(r["metrics"][metric] for r in base) > 0:
                    b = statistics.mean(r["metrics"][metric] for r in base)
                    cells.append(f"{100 * (mean - b) / b:+.2f}%")
                else:
                    cells.append("")
            epochs = ",".join(str(r["best_epoch"]) for r in reports)
            print(f"| {bb} | {variant} | {len(reports)} | {epochs} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/ablations")
