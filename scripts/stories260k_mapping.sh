#!/usr/bin/env bash
# The stories260K mapping study (docs/results/stories260k): self-generated data, the paper's pipeline with and
# without distillation for three seeds, every checkpoint evaluated on held-out self-generated text and on the real
# TinyStories validation text, then the summary table, claims and plots.
#
#   scripts/stories260k_mapping.sh            # from the repository root, ../shared beside it; resumable
#   GAINCELL=target/release/gaincell SEEDS="1 2 3" scripts/stories260k_mapping.sh
#
# Every step skips what is done: kill it at any time and run it again.
set -euo pipefail
cd "$(dirname "$0")/.."
G=${GAINCELL:-target/release/gaincell}
SEEDS=${SEEDS:-"1 2 3"}
VARIANTS=${VARIANTS:-"distill nodistill"}
MODEL=../shared/models/stories260K/stories260K.bin
TINY=../shared/data/eval/tinystories/tinystories_val_head.txt
DATA=data/stories260k-gen
EVAL_TOKENS=${EVAL_TOKENS:-60000}
LIN=configs/chips/stories260k-linear.toml
NON=configs/chips/stories260k-nonlinear.toml

[ -f "$DATA/meta.json" ] || "$G" data generate --model "$MODEL" --tokens 3000000 --seed 0 --out "$DATA"

for v in $VARIANTS; do
  for s in $SEEDS; do
    cfg=configs/stories260k-mapping.toml
    [ "$v" = nodistill ] && cfg=configs/stories260k-mapping-nodistill.toml
    out=runs/stories260k/$v-seed$s
    [ -f "$out/results.json" ] || "$G" pipeline --config "$cfg" --seed "$s" --out "$out"
  done
done

# The S_sat ablation: the linear stage of seed 1 (distilled) on a chip with S_sat scaled with the head width.
ABL=runs/stories260k/ablation-linear-ssat10
grep -q '"step":300' "$ABL/metrics.jsonl" 2>/dev/null ||
  "$G" train --config configs/ablations/stories260k-linear-ssat10.toml

# ppl JSON of a model (and chip) on both texts: runs/stories260k/eval/NAME-{gen,tiny}.json.
ev() {
  local name=$1 model=$2 chip=${3:-}
  mkdir -p runs/stories260k/eval
  for d in gen tiny; do
    local f=runs/stories260k/eval/$name-$d.json src=$DATA
    [ "$d" = tiny ] && src=$TINY
    [ -f "$f" ] && continue
    "$G" eval ppl --model "$model" ${chip:+--chip "$chip"} --data "$src" --ctx 256 --stride 128 \
      --max-tokens "$EVAL_TOKENS" --json "$f" > /dev/null
  done
}
ev software "$MODEL"
ev software-on-linear "$MODEL" "$LIN"
ev software-on-nonlinear "$MODEL" "$NON"
ev ablation-linear-ssat10 "$ABL/checkpoint" configs/chips/stories260k-linear-ssat10.toml
for v in $VARIANTS; do
  for s in $SEEDS; do
    r=runs/stories260k/$v-seed$s
    ev "$v-seed$s-linear" "$r/linear/checkpoint"
    ev "$v-seed$s-unadapted" "$r/linear/checkpoint" "$NON"
    ev "$v-seed$s-adapted" "$r/adapted"
    ev "$v-seed$s-nonlinear" "$r/nonlinear/checkpoint"
    ev "$v-seed$s-direct" "$r/direct/checkpoint"
    ev "$v-seed$s-scratch" "$r/scratch/checkpoint"
  done
done
python3 scripts/summarize_stories260k.py --runs runs/stories260k --seeds $SEEDS --variants $VARIANTS \
  --out docs/results/stories260k
# The inputs of the summary, kept with it (runs/ is not in the repository).
mkdir -p docs/results/stories260k/raw
cp runs/stories260k/eval/*.json docs/results/stories260k/raw/
for v in $VARIANTS; do
  for s in $SEEDS; do
    cp runs/stories260k/$v-seed$s/results.json docs/results/stories260k/raw/pipeline-$v-seed$s.json
  done
done
cp data/stories260k-gen/generation.json docs/results/stories260k/raw/generation.json
