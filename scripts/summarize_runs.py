#!/usr/bin/env python3
"""Mean ± standard deviation over seeds of the reports written by accuracy_runs.sh.

usage: python3 scripts/summarize_runs.py runs/accuracy
Prints a Markdown table per protocol (full ranking, sampled negatives).
"""
import collections
import glob
import json
import os
import re
import statistics
import sys

METRICS = ["HR@5", "NDCG@5", "HR@10", "NDCG@10", "HR@20", "NDCG@20", "MRR"]


def main(folder):
    groups = collections.defaultdict(list)
    for path in sorted(glob.glob(os.path.join(folder, "*_seed*.json"))):
        name = re.sub(r"_seed\d+\.json$", "", os.path.basename(path))
        with open(path) as f:
            groups[name].append(json.load(f))
    for protocol, pick in (("full ranking, history excluded", lambda r: r["metrics"]),
                           ("100 sampled negatives (uniform)", lambda r: r["sampled"]["metrics"])):
        print(f"\n**Test split, {protocol}** (mean ± std over seeds)\n")
        print("| config | seeds | best epochs | " + " | ".join(METRICS) + " |")
        print("|---|---:|---|" + "---:|" * len(METRICS))
        for name, reports in groups.items():
            cells = []
            for m in METRICS:
                values = [pick(r)[m] for r in reports]
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.4f} ± {std:.4f}")
            epochs = ",".join(str(r["best_epoch"]) for r in reports)
            print(f"| {name} | {len(reports)} | {epochs} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/accuracy")
