#!/usr/bin/env bash
# The CoCo ablation study on Amazon Beauty (METHOD.md "Ablations"): per backbone, one
# coco-sweep over the variants below and the seeds, each variant compared seed by seed with
# the backbone trained alone. Tables in runs/ablations/<backbone>/summary.md; a second call
# resumes.
#   BACKBONES="sasrec" VARIANTS="backbone coco static" SEEDS=1,2,3 JOBS=2 bash scripts/ablations.sh
# Extra coco-sweep arguments for every run (e.g. --set device=cuda) go in EXTRA.
set -euo pipefail
cd "$(dirname "$0")/.."
backbones=${BACKBONES:-"sasrec bert4rec gru4rec"}
variants=${VARIANTS:-"backbone coco static lora_always lora_never random_prompt no_ortho"}

# variant → config overrides on top of the backbone's CoCo config, ';'-separated.
overrides() {
  case "$1" in
    backbone) echo "config=configs/amazon_beauty_$2.json" ;;  # the backbone alone
    coco) echo "" ;;
    static) echo "coco.vq.num_codes=1" ;;              # one shared prompt, no choice
    lora_always) echo "coco.decision.rule=always" ;;   # no contradiction elimination
    lora_never) echo "coco.decision.rule=never" ;;     # LoRA never trained
    random_prompt) echo "coco.vq.selection=random" ;;  # random instead of VQ choice
    no_ortho) echo "coco.loss.ortho=0" ;;
    method_sum) echo "coco.loss.rec_fused=0" ;;        # METHOD.md's loss sum alone
    coupled) echo "coco.fusion_grad_to_backbone=true" ;;  # fused losses train the backbone too
    last_prefix) echo "coco.prefix=last" ;;            # knowledge predicts only the last item
    adapt_lora) echo "coco.adapt.epochs=1" ;;          # catalogue adaptation first
    adapt_full) echo "coco.adapt.epochs=1;coco.adapt.mode=full" ;;
    random_llm) echo "coco.knowledge.llm.weights=random" ;;  # the LLM without pretraining
    *) echo "unknown variant $1" >&2; exit 2 ;;
  esac
}

for bb in $backbones; do
  config=configs/amazon_beauty_coco_$bb.json
  [ "$bb" = sasrec ] && config=configs/amazon_beauty.json
  args=()
  for variant in $variants; do args+=(--variant "$variant=$(overrides "$variant" "$bb")"); done
  baseline=()
  [[ " $variants " == *" backbone "* ]] && baseline=(--baseline variant=backbone)
  # shellcheck disable=SC2086  # word splitting of EXTRA is intended
  "${COCO_BIN:-build/bin}/coco-sweep" --config "$config" "${args[@]}" "${baseline[@]}" \
    --seeds "${SEEDS:-1,2,3}" --jobs "${JOBS:-$(nproc)}" --out "${OUT:-runs/ablations}/$bb" ${EXTRA:-}
done
