#!/usr/bin/env bash
# Fill fuzz/corpus/<target>/ with seed inputs from the repository's own fixtures (and, when present, small samples
# of ../shared data). The corpus is a working folder, not committed (fuzz/.gitignore).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=..
SHARED=${GAINCELL_SHARED:-$ROOT/../shared}
C=corpus
mkdir -p "$C"/{npy,chip_toml,model_config,checkpoint_sidecar,shard_meta,hf_tokenizer,llama2c_tokenizer,llama2c_checkpoint,eval_tasks,eval_parquet}

# Copy $1 into corpus/$2 under a name made of its path, when it exists and is at most 64 KiB (libFuzzer's -max_len).
seed() {
  [ -f "$1" ] || return 0
  [ "$(wc -c <"$1")" -le 65536 ] || return 0
  cp "$1" "$C/$2/$(echo "$1" | sed 's#^[./]*##; s#/#_#g')"
}

# .npy: small float32 arrays (the repo's fixtures are larger than -max_len), plus the first bytes of one fixture.
if python3 -c 'import numpy' 2>/dev/null; then
  python3 - "$C/npy" <<'PY'
import sys, numpy as np
d = sys.argv[1]
np.save(f"{d}/f32_2x3.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
np.save(f"{d}/f32_scalar.npy", np.float32(1.5))
np.save(f"{d}/f32_empty.npy", np.zeros((0, 4), dtype=np.float32))
np.save(f"{d}/f32_fortran.npy", np.asfortranarray(np.ones((3, 2), dtype=np.float32)))
np.save(f"{d}/f64_2.npy", np.ones(2))
np.save(f"{d}/f32_4d.npy", np.ones((1, 2, 3, 4), dtype=np.float32))
PY
fi
for f in "$ROOT"/crates/gaincell-attn/tests/fixtures/torch/*.npy; do
  [ -f "$f" ] && head -c 4096 "$f" >"$C/npy/head_$(basename "$f")"
done

# Chip TOML: the shipped chips (several use `base = ...`) and every preset as `gaincell chip show` prints it.
for f in "$ROOT"/configs/chips/*.toml "$ROOT"/configs/ablations/*.toml; do seed "$f" chip_toml; done
printf 'base = "paper-nonlinear"\n' >"$C/chip_toml/base_only.toml"
printf 'base = "paper-linear"\n[geometry]\nwindow = 64\ntile_rows = 16\n[leakage]\nenabled = true\nretention_s = 1e-3\ntoken_period_s = 1e-6\n' \
  >"$C/chip_toml/base_override.toml"

# config.json and sidecars: fixtures and the checkpoints under models/.
for f in "$ROOT"/crates/gaincell-model/tests/fixtures/*/config.json "$ROOT"/models/*/*/config.json; do
  seed "$f" model_config
done
for f in "$ROOT"/models/*/*/gaincell.json; do seed "$f" checkpoint_sidecar; done

# Token shards: meta.json NUL cut-byte train.bin+val.bin (see fuzz_targets/shard_meta.rs).
meta() { printf '{"format":"gaincell-tokens/1","vocab_size":512,"dtype":"%s","train_tokens":%d,"val_tokens":%d,"tokenizer":"tokenizer.bin","eot":1,"train_files":["a.txt"],"val_files":[]}' "$1" "$2" "$3"; }
{ meta u16 4 2; printf '\0\252'; printf '\001\000\002\000\003\000\004\000\005\000\006\000'; } >"$C/shard_meta/u16"
{ meta u32 2 1; printf '\0\252'; printf '\001\000\000\000\002\000\000\000\003\000\000\000'; } >"$C/shard_meta/u32"
{ meta u16 0 0; printf '\0\0'; } >"$C/shard_meta/empty"
seed "$ROOT"/data/stories260k-gen/meta.json shard_meta

# Tokenizers.
for f in "$ROOT"/crates/gaincell-model/tests/fixtures/gpt2_tokenizer.json \
  "$ROOT"/crates/gaincell/tests/fixtures/log-samples/tokenizer/tokenizer.json; do
  seed "$f" hf_tokenizer
done
for f in "$ROOT"/models/stories260k/software/tokenizer.bin "$SHARED"/models/stories260K/tok512.bin; do
  seed "$f" llama2c_tokenizer
done

# llama2.c checkpoints: the legacy, v1 and v2 fixtures (stories260K.bin is larger than -max_len).
for f in "$ROOT"/crates/gaincell-model/tests/fixtures/llama2c/*.bin; do seed "$f" llama2c_checkpoint; done

# Harness data: the first byte picks the task (fuzz_targets/eval_tasks.rs); small samples of the real files.
task() { # task BYTE NAME < data
  { printf "\\$(printf '%03o' "$1")"; cat; } >"$C/eval_tasks/$2"
}
E="$SHARED/data/eval"
[ -f "$E/wikitext-2-raw/wiki.test.raw" ] && head -n 120 "$E/wikitext-2-raw/wiki.test.raw" | task 0 wikitext
printf ' = Page =\n\n Text @-@ here , " quoted " .\n = = Sub = =\n more\n' | task 0 wikitext_small
for f in "$E/lambada/lambada_test.jsonl" "$ROOT"/crates/gaincell/tests/fixtures/log-samples/data/lambada/lambada_test.jsonl; do
  [ -f "$f" ] && head -n 8 "$f" | task 1 "lambada_$(echo "$f" | md5sum | cut -c1-8)"
done
printf '{"activity_label":"Cooking","ctx_a":"A man cuts.","ctx_b":"then he","endings":["a","b [title] c","d","e"],"label":"2"}\n' | task 2 hellaswag_jsonl
[ -f "$E/hellaswag/hellaswag_val_full.txt" ] && head -n 30 "$E/hellaswag/hellaswag_val_full.txt" | task 3 hellaswag_txt
if [ -f "$E/piqa/valid.jsonl" ]; then
  { head -n 6 "$E/piqa/valid.jsonl"; printf '\0'; head -n 6 "$E/piqa/valid-labels.lst"; } | task 4 piqa
fi
for f in "$E/arc-easy/arc_easy.jsonl" "$ROOT"/crates/gaincell/tests/fixtures/log-samples/data/arc-easy/arc_easy.jsonl; do
  [ -f "$f" ] && head -n 6 "$f" | task 5 "arc_easy_$(echo "$f" | md5sum | cut -c1-8)"
done
printf '{"question":{"stem":"Why?","choices":[{"text":"a","label":"A"},{"text":"b","label":"B"}]},"answerKey":"B"}\n{"question":"Q?","choices":{"text":["x","y"],"label":["1","2"]},"answerKey":"1"}\n' | task 6 arc_challenge
printf '{"sentence":"The cup fell off the table because _ was slippery.","option1":"cup","option2":"table","answer":"2"}\n{"sentence":"A _ b","option1":"x","option2":"y","answer":1}\n' | task 7 winogrande

# Hub parquet files `gaincell eval download` converts (the test fixtures).
for f in $(find "$ROOT"/crates/gaincell/tests/fixtures/hub -name '*.parquet'); do seed "$f" eval_parquet; done

for d in "$C"/*/; do echo "$(ls "$d" | wc -l) seeds in $d"; done
