#!/usr/bin/env python3
"""Known-answer logits (and greedy continuations) of a HuggingFace Llama-family folder, from transformers itself.

Loads MODEL_DIR (config.json + model.safetensors or sharded model-*.safetensors + index, e.g. what
`gaincell convert` writes from llama2.c's stories260K) with AutoModelForCausalLM.from_pretrained(MODEL_DIR,
dtype=float32), eager attention by default, eval mode, no grad, and runs one full forward of --ids (batch 1). No
tokenizer is needed or read: ids go in, ids come out.

Writes --out (safetensors):
  "input_ids"  int64 [1, T]      the given ids
  "logits"     f32   [1, T, V]   full forward of them
  "generated"  int64 [1, N]      with --generate N: HF generate(do_sample=False, max_new_tokens=N), the new ids only.
                                 Exactly N tokens unless --stop-at-eos (generation ignores eos_token_id by default
                                 so the count does not depend on the model's eos); checked against a plain argmax
                                 loop over full forwards.
and prints max |logit|, a checksum and the generated ids.

    pip install torch transformers safetensors
    python3 scripts/check_llama_hf.py MODEL_DIR --ids 1,2,3,4 --out ref.safetensors [--generate 20]
"""
import argparse
import pathlib

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, GenerationConfig

DTYPE = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"  # renamed in 4.56 / 5.0


def parse_ids(s):
    try:
        ids = [int(x) for x in s.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ids: expected comma-separated integers, got {s!r}")
    if not ids:
        raise argparse.ArgumentTypeError("--ids: no ids")
    return ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", type=pathlib.Path, metavar="MODEL_DIR")
    ap.add_argument("--ids", type=parse_ids, required=True, help="comma-separated token ids, e.g. 1,2,3")
    ap.add_argument("--out", type=pathlib.Path, required=True, help="safetensors file to write")
    ap.add_argument("--generate", type=int, default=0, metavar="N", help="also greedily generate N new ids")
    ap.add_argument("--stop-at-eos", action="store_true", help="let generate stop at the config's eos_token_id")
    ap.add_argument("--attn", default="eager", help="attn_implementation (default eager)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    assert args.generate >= 0
    torch.set_num_threads(args.threads)

    model = AutoModelForCausalLM.from_pretrained(args.model_dir, attn_implementation=args.attn,
                                                 **{DTYPE: torch.float32}).eval()
    cfg = model.config
    bad = [i for i in args.ids if not 0 <= i < cfg.vocab_size]
    if bad:
        ap.error(f"ids {bad} outside the vocabulary [0, {cfg.vocab_size})")
    ids = torch.tensor([args.ids], dtype=torch.int64)
    with torch.no_grad():
        logits = model(ids).logits.float().contiguous()
    tensors = {"input_ids": ids, "logits": logits}
    print(f"{type(model).__name__} from {args.model_dir}: {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, "
          f"{cfg.num_attention_heads} heads, {getattr(cfg, 'num_key_value_heads', None)} kv heads, "
          f"vocab {cfg.vocab_size}, tied {cfg.tie_word_embeddings}, sliding_window "
          f"{getattr(cfg, 'sliding_window', None)}, attention {cfg._attn_implementation}; "
          f"torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"logits {list(logits.shape)}: max |logit| = {logits.abs().max().item():.6f}, "
          f"sum = {logits.double().sum().item():.6f}, last-position argmax = {int(logits[0, -1].argmax())}")

    if args.generate:
        eos = cfg.eos_token_id if args.stop_at_eos else None
        pad = cfg.pad_token_id if cfg.pad_token_id is not None else (eos if eos is not None else 0)
        gen_cfg = GenerationConfig(max_new_tokens=args.generate, do_sample=False, num_beams=1, eos_token_id=eos,
                                   pad_token_id=pad, bos_token_id=cfg.bos_token_id)
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gen_cfg)
        new = out[:, ids.shape[1]:].contiguous()
        if not args.stop_at_eos:
            assert new.shape[1] == args.generate, new.shape
            # Cross-check HF's cached greedy decoding against argmax over full forwards (no cache).
            seq = ids
            with torch.no_grad():
                for _ in range(args.generate):
                    seq = torch.cat([seq, model(seq).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
            if not torch.equal(seq[:, ids.shape[1]:], new):
                print("warning: HF generate (KV cache) and argmax over full forwards disagree (near-tie logits?): "
                      f"{seq[0, ids.shape[1]:].tolist()}")
        tensors["generated"] = new.to(torch.int64)
        print(f"generated {new.shape[1]} ids: {','.join(str(i) for i in new[0].tolist())}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, args.out, metadata={"model_dir": str(args.model_dir), "torch": torch.__version__,
                                          "transformers": transformers.__version__})
    print(f"wrote {args.out}: " + ", ".join(f"{k}{list(v.shape)}" for k, v in tensors.items()))


if __name__ == "__main__":
    main()
