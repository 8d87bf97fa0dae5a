#!/usr/bin/env bash
# Test of scripts/plot_run.py: a synthetic 3-epoch run (K=4) must give four PNGs,
# and a run folder without metrics.jsonl must give exit code 2 and one line on stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The first Python that has matplotlib and numpy (a pyenv python3 may lack the Debian packages).
PY=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c "import matplotlib, numpy" 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "FAIL: no python3 with matplotlib and numpy"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run=$tmp/run
mkdir -p "$run"

cat > "$run/metrics.jsonl" <<'JSON'
{"epoch": 1, "step": 88, "train_seconds": 40.1, "train": {"loss": 10.2, "rec": 9.9}, "lr": 0.001, "valid": {"HR@10": 0.03, "NDCG@10": 0.02}, "valid_seconds": 3.0, "peak_rss_mib": 790, "diagnostics": {"knowledge_active": false}}
{"epoch": 2, "step": 176, "train_seconds": 41.0, "train": {"loss": 9.6, "rec": 9.0, "nce": 2.3, "align": 3.2, "vq": 0.3, "ortho": 0.06}, "lr": 0.001, "peak_rss_mib": 800, "diagnostics": {"knowledge_active": true, "codebook_perplexity": 3.1, "code_usage": [0.4, 0.3, 0.2, 0.1], "restarted_codes": 1, "decision_rate": 0.35, "decision_rate_per_code": [0.2, 0.5, 0.3, 0.4], "mean_alignment_cos": 0.25, "mean_utility": -0.001, "examples": 1000}}
{"epoch": 3, "step": 264, "train_seconds": 41.2, "train": {"loss": 9.1, "rec": 8.7, "nce": 2.1, "align": 3.0, "vq": 0.2, "ortho": 0.05}, "lr": 0.001, "valid": {"HR@10": 0.05, "NDCG@10": 0.03}, "valid_backbone": {"HR@10": 0.045, "NDCG@10": 0.028}, "valid_seconds": 3.1, "peak_rss_mib": 800, "diagnostics": {"knowledge_active": true, "codebook_perplexity": 3.6, "code_usage": [0.3, 0.3, 0.2, 0.2], "restarted_codes": 0, "decision_rate": 0.42, "decision_rate_per_code": [0.3, 0.6, 0.4, 0.5], "mean_alignment_cos": 0.31, "mean_utility": 0.002, "examples": 1000}}
JSON

"$PY" - "$run" <<'PYEOF'
import json, sys, random
random.seed(0)
users = list(range(12))
for name, shift in (("before", 1.0), ("after", 0.2)):
    h_rs = [[random.gauss(0, 1) for _ in range(6)] for _ in users]
    h_al = [[x + random.gauss(0, shift) for x in v] for v in h_rs]
    with open(f"{sys.argv[1]}/knowledge_{name}.json", "w") as f:
        json.dump({"split": "valid", "users": users, "h_rs": h_rs, "h_aligned": h_al,
                   "codes": [u % 4 for u in users]}, f)
PYEOF

fail=0
"$PY" scripts/plot_run.py "$run" > "$tmp/stdout"
for png in training_curves code_usage decision_matrix projection; do
  f=$run/plots/$png.png
  if [ ! -f "$f" ]; then echo "FAIL: $f not written"; fail=1; continue; fi
  if [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" != "89504e470d0a1a0a" ]; then
    echo "FAIL: $f is not a PNG"; fail=1
  fi
  grep -qxF "$f" "$tmp/stdout" || { echo "FAIL: $f not printed"; fail=1; }
done

mkdir -p "$tmp/empty"
rc=0
"$PY" scripts/plot_run.py "$tmp/empty" > /dev/null 2> "$tmp/stderr" || rc=$?
[ "$rc" -eq 2 ] || { echo "FAIL: missing metrics.jsonl gave exit code $rc, not 2"; fail=1; }
[ "$(wc -l < "$tmp/stderr")" -eq 1 ] || { echo "FAIL: stderr is not one line:"; cat "$tmp/stderr"; fail=1; }
grep -q "metrics.jsonl: no such file" "$tmp/stderr" || { echo "FAIL: unexpected message"; fail=1; }

[ "$fail" -eq 0 ] && echo "plot_run_test: OK"
exit "$fail"
