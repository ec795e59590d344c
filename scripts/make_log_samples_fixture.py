#!/usr/bin/env python3
"""Regenerate crates/gaincell/tests/fixtures/log-samples/: per-sample logs written by lm-evaluation-harness itself,
which `crates/gaincell/tests/cli_log_samples.rs` checks `gaincell eval tasks --log-samples` against field by field.

The model is the tiny random GPT-2 of crates/gaincell-model/tests/fixtures/tiny-gpt2 (scripts/make_gpt2_fixture.py;
vocab 512, 128 positions). Everything else is synthetic and written here:

  tokenizer/         a 300-entry byte-level BPE (GPT-2's scheme, `<|endoftext|>` = id 0) trained on a fixed toy
                     corpus with HF `tokenizers`: tokenizer.json (gaincell reads it) + tokenizer_config.json (so
                     `transformers.AutoTokenizer` loads the folder offline).
  data/arc-easy/arc_easy.jsonl      6 ARC-style questions in HF ai2_arc's JSON layout (our ARC reader takes it).
  data/lambada/lambada_test.jsonl   6 LAMBADA-style texts; the last one ends in the word the model predicts greedily,
                                    so `is_greedy`/`acc` is exercised both ways.
  samples_arc_easy.jsonl, samples_lambada_openai.jsonl
                     lm_eval's `samples_<task>_<date>.jsonl` (EvaluationTracker.save_results_samples, renamed
                     without the date), from `lm_eval.simple_evaluate(..., log_samples=True)` on two local tasks whose
                     YAML copies arc_easy.yaml and lambada_openai.yaml with `dataset_path: json` and the files above.
  results.json       lm_eval's aggregated results of that run (model paths replaced by their basenames).
  provenance.json    versions of lm_eval / torch / transformers / tokenizers used.

No network: the HuggingFace Hub is not needed (local model folder, local JSON data files).

    pip install lm_eval && python3 scripts/make_log_samples_fixture.py
"""
import json
import pathlib
import re
import shutil
import tempfile

import torch
import tokenizers
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, AutoTokenizer

import lm_eval
from lm_eval.loggers import EvaluationTracker
from lm_eval.tasks import TaskManager

REPO = pathlib.Path(__file__).resolve().parent.parent
MODEL = REPO / "crates/gaincell-model/tests/fixtures/tiny-gpt2"
OUT = REPO / "crates/gaincell/tests/fixtures/log-samples"

CORPUS = (
    "The cat sat on the mat. The dog ran to the park and back again. Pour water into the glass. "
    "Question: What do plants need to grow? Answer: sunlight and water. The sun is a star. "
    "Ice melts when it is warm. A magnet pulls iron. The café served tea and bread. "
    "She opened the door and walked into the garden, where the old tree stood. "
)

ARC = [
    ("gc-1", "What do plants need to grow?", ["sunlight and water", "only rocks", "a magnet", "cold ice"], "A"),
    ("gc-2", "Which object is a star?", ["the mat", "the sun", "the glass"], "B"),
    ("gc-3", "What happens to ice when it is warm?", ["It melts.", "It sings.", "It grows into a tree.",
                                                      "It pulls iron."], "A"),
    ("gc-4", "What does a magnet pull?", ["water", "bread", "iron", "tea"], "C"),
    ("gc-5", "Where did the dog run?", ["to the park", "into the glass", "onto the sun"], "1"),
    ("gc-6", "What did the café serve?", ["tea and bread", "rocks and ice", "a cat"], "1"),
]

LAMBADA = [
    "The cat sat on the mat and the dog ran to the park",
    "She opened the door and walked into the garden, where the old tree",
    "Pour water into the",
    "Ice melts when it is",
    "The café served tea and",
]


def train_tokenizer(d):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=300, min_frequency=2, show_progress=False,
                                  special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([CORPUS] * 20, trainer)
    d.mkdir(parents=True)
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
        "model_max_length": 128, "add_bos_token": False, "clean_up_tokenization_spaces": False,
    }, indent=2) + "\n")


def greedy_text(tok_dir):
    """A LAMBADA-style text whose last word is one token the model predicts greedily after the rest."""
    tok = AutoTokenizer.from_pretrained(tok_dir)
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    words = re.findall(r"[A-Za-z]+", CORPUS)
    for n in range(3, 12):
        for start in range(0, len(words) - n):
            context = " ".join(words[start:start + n])
            ids = tok(context)["input_ids"]
            with torch.no_grad():
                nxt = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            piece = tok.decode([nxt])
            if re.fullmatch(r" [A-Za-z]+", piece):
                text = context + piece
                if tok(text)["input_ids"] == ids + [nxt]:
                    return text
    raise SystemExit("no context found whose greedy next token is a word")


ARC_YAML = """task: arc_easy_local
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {data}
output_type: multiple_choice
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{choices.label.index(answerKey)}}}}"
doc_to_choice: "{{{{choices.text}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

LAMBADA_YAML = """task: lambada_openai_local
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {data}
output_type: loglikelihood
test_split: test
doc_to_text: "{{{{text.split(' ')[:-1]|join(' ')}}}}"
doc_to_target: "{{{{' '+text.split(' ')[-1]}}}}"
metric_list:
  - metric: perplexity
    aggregation: perplexity
    higher_is_better: false
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    tok_dir = OUT / "tokenizer"
    train_tokenizer(tok_dir)

    arc = OUT / "data/arc-easy/arc_easy.jsonl"
    arc.parent.mkdir(parents=True)
    labels = lambda key, n: [str(i + 1) for i in range(n)] if key.isdigit() else [chr(65 + i) for i in range(n)]
    arc.write_text("".join(json.dumps({"id": i, "question": q, "choices": {"text": c, "label": labels(k, len(c))},
                                       "answerKey": k}, ensure_ascii=False) + "\n" for i, q, c, k in ARC))
    lam = OUT / "data/lambada/lambada_test.jsonl"
    lam.parent.mkdir(parents=True)
    texts = LAMBADA + [greedy_text(tok_dir)]
    lam.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "tasks").mkdir()
        (tmp / "tasks/arc_easy_local.yaml").write_text(ARC_YAML.format(data=arc))
        (tmp / "tasks/lambada_openai_local.yaml").write_text(LAMBADA_YAML.format(data=lam))
        tracker = EvaluationTracker(output_path=str(tmp / "out"))
        res = lm_eval.simple_evaluate(
            model="hf",
            model_args=f"pretrained={MODEL},tokenizer={tok_dir},dtype=float32",
            tasks=["arc_easy_local", "lambada_openai_local"],
            task_manager=TaskManager(include_path=str(tmp / "tasks")),
            device="cpu", batch_size=1, num_fewshot=0, log_samples=True, bootstrap_iters=0,
            random_seed=0, numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0,
        )
        samples = res.pop("samples")
        tracker.save_results_aggregated(results=res, samples=samples)
        for task, rows in samples.items():
            tracker.save_results_samples(task_name=task, samples=rows)
        written = sorted((tmp / "out").rglob("samples_*.jsonl"))
        assert len(written) == 2, written
        for f in written:
            task = re.match(r"samples_(.*)_local_", f.name).group(1)
            shutil.copy(f, OUT / f"samples_{task}.jsonl")
        results = json.loads(next((tmp / "out").rglob("results_*.json")).read_text())
        for machine_specific in ("pretty_env_info", "git_hash", "upper_git_hash"):
            results.pop(machine_specific, None)
        text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
        for path, name in ((MODEL, MODEL.name), (tok_dir, tok_dir.name), (arc, arc.name), (lam, lam.name),
                           (tmp / "tasks", "tasks")):
            text = text.replace(str(path), name)
        (OUT / "results.json").write_text(text)
    (OUT / "provenance.json").write_text(json.dumps({
        "script": "scripts/make_log_samples_fixture.py", "model": "crates/gaincell-model/tests/fixtures/tiny-gpt2",
        "lm_eval": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "?",
        "torch": torch.__version__, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
        "batch_size": 1, "device": "cpu", "dtype": "float32",
    }, indent=2) + "\n")
    for f in sorted(OUT.rglob("*")):
        if f.is_file():
            print(f.relative_to(REPO), f.stat().st_size)


if __name__ == "__main__":
    main()
