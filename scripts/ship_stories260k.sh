#!/usr/bin/env bash
# Ship the stories260K family into models/stories260k (what `gaincell demo` loads by default): the software model
# converted from llama2.c's checkpoint (with its MIT licence and provenance), and the linear and nonlinear models
# the mapping produced (configs/stories260k-mapping.toml, seed 1), each a complete folder with tokenizer.bin, and
# the run's records. Run from the repository root after scripts/stories260k_mapping.sh.
#
#   scripts/ship_stories260k.sh [RUN_DIR] [OUT_DIR]      # defaults: runs/stories260k/distill-seed1 models/stories260k
set -euo pipefail
run=${1:-runs/stories260k/distill-seed1}
out=${2:-models/stories260k}
gaincell=${GAINCELL:-target/release/gaincell}
src=../shared/models/stories260K

"$gaincell" convert --from "$src/stories260K.bin" --out "$out/software"
cp "$src/LICENSE-llama2.zig" "$out/LICENSE-llama2.zig"
for v in linear nonlinear; do
    "$gaincell" export --from "$run/$v/checkpoint" --out "$out/$v" --dtype f32
done
mkdir -p "$out/training"
cp configs/stories260k-mapping.toml "$out/training/pipeline.toml"
cp configs/chips/stories260k-linear.toml configs/chips/stories260k-nonlinear.toml "$out/training/"
for v in linear nonlinear direct scratch; do
    cp "$run/$v/metrics.jsonl" "$out/training/$v.metrics.jsonl"
done
cp "$run/adapted/adaptation.json" "$run/results.json" "$run/results.md" "$out/training/"
for f in curves.png curves.svg; do
    if [ -f "$run/$f" ]; then cp "$run/$f" "$out/training/$f"; fi
done
du -sh "$out"
