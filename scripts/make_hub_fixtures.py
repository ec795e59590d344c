#!/usr/bin/env python3
"""Regenerate crates/gaincell/tests/fixtures/hub: tiny synthetic stand-ins for the HuggingFace Hub files that
`gaincell eval download` fetches (same repository paths, same columns, a handful of made-up rows), served by the
local stand-in of the Hub in crates/gaincell/tests/cli_eval_download.rs. Needs pyarrow (pip install pyarrow).
Nothing here is real task data.

    python3 scripts/make_hub_fixtures.py
"""
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "gaincell", "tests", "fixtures", "hub")


def out(repo, path):
    p = os.path.join(ROOT, repo, path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def parquet(repo, path, table):
    pq.write_table(table, out(repo, path), compression="snappy")


# lambada_openai: JSON lines {"text"}; the last word is the target.
with open(out("EleutherAI/lambada_openai", "data/lambada_test.jsonl"), "w") as f:
    for t in ["The cat sat on the mat", "The dog ran to the park", "Pour water into the glass"]:
        f.write(json.dumps({"text": t}) + "\n")

# wikitext: one row per line of wiki.test.raw, blank lines empty.
lines = ["", " = Cat = \n", "", " The cat sat on the mat . \n", "", " = Dog = \n", "", " The dog ran to the park . \n", ""]
parquet("Salesforce/wikitext", "wikitext-2-raw-v1/test-00000-of-00001.parquet", pa.table({"text": lines}))

# hellaswag: Rowan/hellaswag's columns.
hs = {
    "ind": [0, 1],
    "activity_label": ["Cats", "Dogs"],
    "ctx_a": ["The cat sat on the mat.", "The dog ran to the park."],
    "ctx_b": ["the cat", "then it"],
    "ctx": ["The cat sat on the mat. the cat", "The dog ran to the park. then it"],
    "endings": [["sat.", "ran.", "flew.", "swam."], ["ran back.", "sat.", "sang.", "read."]],
    "source_id": ["a", "b"],
    "split": ["val", "val"],
    "split_type": ["indomain", "indomain"],
    "label": ["0", "0"],
}
parquet("Rowan/hellaswag", "default/validation/0000.parquet", pa.table(hs))

# piqa: goal, sol1, sol2, label.
piqa = {
    "goal": ["How do I fill a glass?", "Clean a mat"],
    "sol1": ["Pour water into the glass.", "Shake the mat outside."],
    "sol2": ["Pour the glass into water.", "Eat the mat."],
    "label": [0, 0],
}
parquet("ybisk/piqa", "plain_text/validation/0000.parquet", pa.table(piqa))

# ai2_arc: id, question, choices {text, label}, answerKey.
choice = pa.struct([("text", pa.list_(pa.string())), ("label", pa.list_(pa.string()))])
for level in ["ARC-Easy", "ARC-Challenge"]:
    arc = pa.table(
        {
            "id": ["q1", "q2"],
            "question": ["Where does the cat sit?", "Where does the dog run?"],
            "choices": pa.array(
                [
                    {"text": ["on the mat", "in the sky"], "label": ["A", "B"]},
                    {"text": ["to the glass", "to the park", "to the moon"], "label": ["1", "2", "3"]},
                ],
                type=choice,
            ),
            "answerKey": ["A", "2"],
        }
    )
    parquet("allenai/ai2_arc", f"{level}/test-00000-of-00001.parquet", arc)
