#!/usr/bin/env bash
# Real-size LLM benchmark (random weights of the real shapes; BENCHMARKS.md "LLMs at their real
# size"): for Qwen2.5-0.5B and Llama-3.2-1B, a float16 GGUF written by gguf-py, its Q4_K_M copy
# made by llama.cpp's llama-quantize and its bfloat16 safetensors copy made by `coco-llm convert`;
# then coco-llm-bench --real (load time, peak RSS, forward tokens/s at CoCo's batch) on both,
# and llama.cpp's llama-bench prompt processing on the Q4_K_M GGUF, on the same cores, in one run.
#   bash bench/real_shapes.sh [WORK_DIR]      (needs ~8 GB of disk and the llama.cpp build of
#   tests/fixtures/llm/arch/make_arch_fixtures.sh in ../llama-build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$root/../bench-real}"
llama="${LLAMA_CPP_BUILD:-$root/../llama-build}/bin"
bin="$root/build/bin"
threads="$(nproc)"
[ -x "$llama/llama-bench" ] || { echo "llama.cpp tools not found in $llama" >&2; exit 1; }
mkdir -p "$work"
if [ ! -f "$work/llama3.2-1b-f16.gguf" ]; then
  PYTHONPATH="$root/../shared/ref/llama.cpp/gguf-py" /usr/bin/python3 "$root/bench/make_real_shapes.py" "$work"
fi
echo "date: $(date -u +%F) threads: $threads cpu: $(lscpu | sed -n 's/^Model name: *//p')"
for m in qwen2.5-0.5b llama3.2-1b; do
  [ -f "$work/$m-q4km.gguf" ] || "$llama/llama-quantize" "$work/$m-f16.gguf" "$work/$m-q4km.gguf" Q4_K_M > /dev/null 2>&1
  [ -f "$work/$m-bf16/model.safetensors" ] || \
    "$bin/coco-llm" convert --model "$work/$m-f16.gguf" --out "$work/$m-bf16" --dtype bfloat16 --log-level warn
  ls -l "$work/$m-q4km.gguf" "$work/$m-bf16/model.safetensors" | awk '{print $5, $9}'
  # bfloat16 matmuls are oneDNN's, which uses libtorch's intra-op threads (OpenBLAS, which
  # brings its own, is float32 only): both thread counts are timed.
  for t in 1 "$threads"; do
    "$bin/coco-llm-bench" --real --threads "$t" --model "$work/$m-bf16" --dtype bfloat16 --shapes 64x16 64x64
  done
  "$bin/coco-llm-bench" --real --threads "$threads" --model "$work/$m-q4km.gguf" --dtype bfloat16 --shapes 64x16 64x64
  "$llama/llama-bench" -m "$work/$m-q4km.gguf" -t "$threads" -p 16,64,1024 -n 0 -r 3 -o md
done
