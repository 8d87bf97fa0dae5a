#!/usr/bin/env bash
# The CoCo ablation study on Amazon Beauty: every (backbone, variant, seed) is one
# coco-train run; each writes its test report to runs/ablations/<backbone>_<variant>_seed<S>.json.
# One table: python3 scripts/summarize_ablations.py runs/ablations
#   BACKBONES="sasrec" VARIANTS="backbone coco static" SEEDS="1 2 3" JOBS=2 bash scripts/ablations.sh
# Extra coco-train arguments for every run (e.g. --set device=cuda) can be given in EXTRA, and
# for the CoCo variants only (e.g. --set coco.knowledge.llm.path=...) in COCO_EXTRA.
set -uo pipefail
cd "$(dirname "$0")/.."
backbones=${BACKBONES:-"sasrec bert4rec gru4rec"}
variants=${VARIANTS:-"backbone coco static lora_always lora_never random_prompt no_ortho"}
seeds=${SEEDS:-"1 2 3"}
jobs=${JOBS:-$(nproc)}
out=${OUT:-runs/ablations}
bin=${COCO_BIN:-build/bin}
mkdir -p "$out"

# variant → config overrides on top of the backbone's CoCo config (METHOD.md "Ablations").
overrides() {
  case "$1" in
    coco) echo "" ;;
    static) echo "--set coco.vq.num_codes=1" ;;              # one shared prompt, no choice
    lora_always) echo "--set coco.decision.rule=always" ;;   # no contradiction elimination
    lora_never) echo "--set coco.decision.rule=never" ;;     # LoRA never trained
    random_prompt) echo "--set coco.vq.selection=random" ;;  # random instead of VQ choice
    no_ortho) echo "--set coco.loss.ortho=0" ;;
    method_sum) echo "--set coco.loss.rec_fused=0" ;;        # METHOD.md's loss sum alone
    coupled) echo "--set coco.fusion_grad_to_backbone=true" ;;  # fused losses train the backbone too
    last_prefix) echo "--set coco.prefix=last" ;;            # knowledge predicts only the last item
    adapt_lora) echo "--set coco.adapt.epochs=1" ;;          # catalogue adaptation first
    adapt_full) echo "--set coco.adapt.epochs=1 --set coco.adapt.mode=full" ;;
    random_llm) echo "--set coco.knowledge.llm.weights=random" ;;  # the LLM without pretraining
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

for bb in $backbones; do
  for variant in $variants; do
    if [ "$variant" = backbone ]; then
      config=configs/amazon_beauty_$bb.json
    elif [ "$bb" = sasrec ]; then
      config=configs/amazon_beauty.json
    else
      config=configs/amazon_beauty_coco_$bb.json
    fi
    extra=$( [ "$variant" = backbone ] || echo "$(overrides "$variant") ${COCO_EXTRA:-}" ) || exit 2
    for seed in $seeds; do
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
      name=${bb}_${variant}_seed$seed
      echo "[ablations] $name"
      # shellcheck disable=SC2086  # word splitting of the override lists is intended
      "$bin/coco-train" --config "$config" --set seed="$seed" --set output_dir="$out/$name" --overwrite \
        --report "$out/$name.json" $extra ${EXTRA:-} > "$out/$name.log" 2>&1 &
    done
  done
done
wait
