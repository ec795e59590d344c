#!/usr/bin/env bash
# Copy the demo pipeline's software, linear and nonlinear checkpoints into models/demo as f16 (what `gaincell demo`
# loads), with the tokenizer, the pipeline config and the run's metrics, so the family can be regenerated and
# checked. Run from the repository root after `gaincell pipeline --config configs/demo-model.toml` (see that file
# for the commands that come before).
#
#   scripts/ship_demo_model.sh [RUN_DIR] [OUT_DIR]      # defaults: runs/demo-model models/demo
set -euo pipefail
run=${1:-runs/demo-model}
out=${2:-models/demo}
gaincell=${GAINCELL:-target/release/gaincell}
tokenizer=${TOKENIZER:-data/gutenberg-4k/tokenizer.json}

# Each variant folder is a complete model (weights, config, sidecar, tokenizer): any command takes it as --model.
for v in software linear nonlinear; do
    "$gaincell" export --from "$run/$v/checkpoint" --out "$out/$v" --dtype f16
    cp "$tokenizer" "$out/$v/tokenizer.json"
done
mkdir -p "$out/training"
cp configs/demo-model.toml "$out/training/pipeline.toml"
for v in software linear nonlinear direct scratch; do
    if [ -f "$run/$v/metrics.jsonl" ]; then cp "$run/$v/metrics.jsonl" "$out/training/$v.metrics.jsonl"; fi
done
cp "$run/adapted/adaptation.json" "$out/training/adaptation.json"
for f in results.json results.md curves.png curves.svg; do
    if [ -f "$run/$f" ]; then cp "$run/$f" "$out/training/$f"; fi
done
du -sh "$out"
