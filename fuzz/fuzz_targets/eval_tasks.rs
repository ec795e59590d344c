//! Harness data files (`gaincell eval`): `Task::load` on a data folder holding the input as one task's file. The
//! first byte picks the task (and for HellaSwag the JSON-lines or six-line text form); PIQA's `valid.jsonl` and
//! `valid-labels.lst` are the rest split at its first NUL byte.

#![no_main]

use gaincell_eval::{Doc, Task};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let dir = gaincell_fuzz::fresh_dir("eval");
    let put = |rel: &str, bytes: &[u8]| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("has a folder")).expect("create the task folder");
        std::fs::write(p, bytes).expect("write the task file");
    };
    let task = match pick % 9 {
        0 => {
            put("wikitext-2-raw/wiki.test.raw", rest);
            Task::Wikitext
        }
        1 => {
            put("lambada/lambada_test.jsonl", rest);
            Task::LambadaOpenai
        }
        2 => {
            put("hellaswag/hellaswag_val.jsonl", rest);
            Task::Hellaswag
        }
        3 => {
            put("hellaswag/hellaswag_val_full.txt", rest);
            Task::Hellaswag
        }
        4 => {
            let (jsonl, labels) = gaincell_fuzz::split_nul(rest);
            put("piqa/valid.jsonl", jsonl);
            put("piqa/valid-labels.lst", labels);
            Task::Piqa
        }
        5 => {
            put("arc-easy/arc_easy.jsonl", rest);
            Task::ArcEasy
        }
        6 => {
            put("arc-challenge/ARC-Challenge-Test.jsonl", rest);
            Task::ArcChallenge
        }
        _ => {
            put("winogrande/dev.jsonl", rest);
            Task::Winogrande
        }
    };
    let Ok(docs) = task.load(&dir) else {
        return;
    };
    for d in &docs {
        if let Doc::Choice {
            requests,
            choices,
            gold,
        } = d
        {
            assert!(
                *gold < choices.len(),
                "gold {gold} of {} choices",
                choices.len()
            );
            assert_eq!(requests.len(), choices.len());
        }
    }
});
