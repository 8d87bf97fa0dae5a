#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS: bash scripts/fuzz.sh gguf 600 (bash scripts/fuzz.sh
# lists the targets). Builds its binary in build-asan/ (scripts/asan_build.sh: clang, ASan +
# UBSan, libFuzzer), seeds the corpus from the real files in ../shared, the test fixtures and CoCo's
# own writers, and keeps what it finds under build-asan/corpus/TARGET (inputs that reached new
# code) and build-asan/findings/TARGET (crashes, hangs, over-allocations). Each finding,
# once fixed, is copied to tests/fixtures/fuzz/TARGET/, which the normal test suite replays.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/asan_build.sh
target=${1:-}
if ! [[ " $(asan_fuzz_targets) " == *" $target "* ]] || [ -z "$target" ]; then
  echo "usage: scripts/fuzz.sh TARGET [SECONDS]; targets: $(asan_fuzz_targets)" >&2
  exit 2
fi
seconds=${2:-60}
cmake --build build-asan --target "fuzz_$target" -j"$(nproc)"
binary=build-asan/bin/fuzz_$target corpus=build-asan/corpus/$target
findings=build-asan/findings/$target
mkdir -p "$corpus" "$findings"
models=../shared/models data=../shared/data fixtures=tests/fixtures/llm
review() { printf '{"reviewerID": "%s", "asin": "%s", "overall": 5.0, "unixReviewTime": %s}\n' "$@"; }
case $target in
  gguf)  # stories260K, the vocabularies and the architecture fixtures (Q4_K_M among them)
    find "$models" "$fixtures" -name '*.gguf' -size -4M -exec cp -n {} "$corpus/" \; ;;
  tokenizer_gguf)  # SentencePiece and byte-level BPE vocabularies
    find "$models" "$fixtures/arch" -name '*.gguf' -size -4M -exec cp -n {} "$corpus/" \; ;;
  tokenizer_json)  # Qwen's tokenizer.json cut to its first 2,000 tokens and their merges
    if [ -f "$models/qwen-tokenizer/tokenizer.json" ]; then
      /usr/bin/python3 - "$models/qwen-tokenizer/tokenizer.json" "$corpus/qwen-2000.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1], encoding="utf-8"))
vocab = {k: v for k, v in t["model"]["vocab"].items() if v < 2000}
merges = [m for m in t["model"]["merges"]
          if all(p in vocab for p in (m.split(" ") if isinstance(m, str) else m))
          and "".join(m.split(" ") if isinstance(m, str) else m) in vocab]
t["model"]["vocab"], t["model"]["merges"] = vocab, merges
t["added_tokens"] = [a for a in t["added_tokens"] if a["id"] < 2000 or a["content"] == "<|endoftext|>"]
json.dump(t, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False)
PY
    fi ;;
  dequant)  # one block run of each type number, random bytes
    for i in $(seq 0 40); do
      { printf "\\x$(printf %02x "$i")"; head -c 4096 /dev/urandom; } > "$corpus/type-$i"
    done ;;
  safetensors | checkpoint | lora)  # made by CoCo's own writers
    COCO_FUZZ_SEEDS="$corpus" "$binary" ;;
  config)  # every shipped config behind an override
    for c in configs/*.json; do
      { echo "train.lr=0.002"; cat "$c"; } > "$corpus/$(basename "$c")"
    done ;;
  dataset)  # heads of the real datasets
    for d in "$data"/*/; do
      [ -f "$d/items.tsv" ] &&
        { head -50 "$d/items.tsv"; echo "----"; head -50 "$d/sequences.txt"; } \
          > "$corpus/$(basename "$d")"
    done ;;
  recbole)  # MovieLens-100K's atomic files
    ml=$data/movielens-100k/source
    [ -f "$ml/ml-100k.inter" ] &&
      { head -300 "$ml/ml-100k.inter"; echo "----"; head -100 "$ml/ml-100k.item"; } \
        > "$corpus/ml-100k" ;;
  amazon)  # 2023 and 2018 JSON and 2014 Python-literal dumps, plain and gzip
    reviews=$(for u in U1 U2 U3; do for i in A1 A2 A3; do review "$u" "$i" "1${u#U}${i#A}"; done; done)
    { echo "$reviews"; echo "----"
      echo '{"asin": "A1", "title": "Soap &amp; Co", "brand": "B", "category": ["Beauty", "Skin"]}'
      echo '{"asin": "A2", "title": "Caf\u00e9 Cream", "description": ["x"]}'; } > "$corpus/2018"
    { echo "$reviews"; echo "----"
      echo "{'asin': 'A1', 'title': 'Caf\\xc3\\xa9 \\'Noir\\'', 'categories': [['Beauty', 'Skin']]}"
      echo "{'asin': 'A3', 'title': u'Cr\\xe8me', 'imUrl': None, 'x': True}"; } > "$corpus/2014"
    { for u in U1 U2 U3; do for i in A1 A2 A3; do
        printf '{"rating": 5.0, "asin": "%sv", "parent_asin": "%s", "user_id": "%s", "timestamp": %s000}\n' \
          "$i" "$i" "$u" "1${u#U}${i#A}"; done; done; echo "----"
      echo '{"parent_asin": "A1", "title": "Soap", "store": "B", "features": ["Vegan", ""], "description": ["x", "y"], "categories": ["Beauty", "Skin"], "details": {"k": 1}}'
    } > "$corpus/2023"
    { echo "$reviews" | gzip -c; printf '\n----\n'; } > "$corpus/gzip" ;;
esac
[ -d "tests/fixtures/fuzz/$target" ] && cp -n tests/fixtures/fuzz/"$target"/* "$corpus/" || true
dict=()
[ -f "fuzz/$target.dict" ] && dict=(-dict="fuzz/$target.dict")
# malloc_limit_mb: an allocation far beyond what any seed needs is a finding ("over-allocation").
export ASAN_OPTIONS=$ASAN_OPTIONS:malloc_limit_mb=2048
# COCO_FUZZ_SEED fixes libFuzzer's random seed (the CI smoke sets it, so that a run repeats).
"$binary" "${dict[@]}" ${COCO_FUZZ_SEED:+-seed=$COCO_FUZZ_SEED} -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 \
  -max_len=4194304 -print_final_stats=1 -artifact_prefix="$findings/" "$corpus"
