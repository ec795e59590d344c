//! The readers on the shared data (`../shared/data/eval` beside the workspace; skipped with a message when it
//! is absent): item counts of the published sets, and every prompt, continuation, page, word and byte count
//! checked against the harness's code run in Python on the same files (as fingerprints: no data is copied
//! here).

mod common;

use std::path::Path;

use gaincell_eval::{Doc, EvalError, Request, Task};

/// FNV-1a of every request of a task, `context \x01 continuation`, requests joined by NUL; the number of
/// requests and the sum of the gold indices.
fn fingerprint(docs: &[Doc]) -> (u64, usize, usize) {
    let mut text = Vec::new();
    let (mut n, mut golds) = (0, 0);
    for d in docs {
        let requests = match d {
            Doc::Choice { requests, gold, .. } => {
                golds += gold;
                requests.clone()
            }
            Doc::Continuation(r) => vec![r.clone()],
            Doc::Rolling { .. } => panic!("not a request task"),
        };
        for Request {
            context,
            continuation,
        } in requests
        {
            if n > 0 {
                text.push(0);
            }
            text.extend(context.bytes());
            text.push(1);
            text.extend(continuation.bytes());
            n += 1;
        }
    }
    (fnv(&text), n, golds)
}

#[test]
fn published_sets_have_their_item_counts_and_the_harness_prompts() {
    let Some(dir) = common::shared_eval() else {
        return;
    };
    // The harness's templates (lambada_openai.yaml, piqa.yaml, arc_easy.yaml on the `query` form, and
    // hellaswag's utils.preprocess with ctx_b capitalised) applied in Python to the same files.
    let load = |t: Task| t.load(&dir).unwrap();
    let lambada = load(Task::LambadaOpenai);
    assert_eq!(lambada.len(), 5153);
    assert_eq!(fingerprint(&lambada), (0xbaf30a128f4da6a9, 5153, 0));
    let piqa = load(Task::Piqa);
    assert_eq!(piqa.len(), 1838);
    assert_eq!(fingerprint(&piqa), (0x64d7e8f79db46ae8, 3676, 928));
    let arc = load(Task::ArcEasy);
    assert_eq!(arc.len(), 2376);
    assert_eq!(fingerprint(&arc), (0x0057263e8817d39a, 9504, 3615));
    let hs = load(Task::Hellaswag);
    assert_eq!(hs.len(), 10042);
    assert_eq!(fingerprint(&hs), (0xe7b82aaf0787bed8, 40168, 15027));

    // Every ActivityNet context gets its ctx_b capitalised: the contexts still ending in a lower-case fragment
    // after ". " are the 7 WikiHow ones whose last sentence contains an abbreviation (`u.s. nationals.`).
    let lower_tail: Vec<&String> = hs
        .iter()
        .filter_map(|d| match d {
            Doc::Choice { requests, .. } => {
                let c = &requests[0].context;
                let tail = c.rsplit(". ").next().unwrap_or(c);
                (tail != c && tail.starts_with(|ch: char| ch.is_ascii_lowercase())).then_some(c)
            }
            _ => None,
        })
        .collect();
    assert_eq!(lower_tail.len(), 7);
    assert!(
        lower_tail.iter().all(|c| c.ends_with('.')),
        "{lower_tail:?}"
    );
}

/// FNV-1a, 64 bits.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

#[test]
fn wikitext_test_set_pages_counts_and_text_equal_the_harness() {
    let Some(dir) = common::shared_eval() else {
        return;
    };
    // The harness's `wikitext_document_level` split, `wikitext_detokenizer` and `process_results` run in Python
    // on this file: 62 pages, 241,335 words, 1,290,527 bytes; the detokenized pages joined by NUL: 1,240,527
    // bytes with FNV-1a 0x62f6e7000e9833c5.
    let docs = Task::Wikitext.load(&dir).unwrap();
    assert_eq!(docs.len(), 62);
    let (mut words, mut bytes, mut texts) = (0, 0, Vec::new());
    for d in &docs {
        let Doc::Rolling {
            text,
            words: w,
            bytes: b,
        } = d
        else {
            panic!()
        };
        words += w;
        bytes += b;
        texts.push(text.as_str());
    }
    assert_eq!((words, bytes), (241_335, 1_290_527));
    let joined = texts.join("\0");
    assert_eq!(joined.len(), 1_240_527);
    assert_eq!(fnv(joined.as_bytes()), 0x62f6e7000e9833c5);
}

#[test]
fn missing_sets_say_where_to_put_them() {
    let empty = tempfile::tempdir().unwrap();
    for (task, path) in [
        (Task::ArcChallenge, "arc-challenge/arc_challenge.jsonl"),
        (Task::Winogrande, "winogrande/dev.jsonl"),
        (Task::Wikitext, "wikitext-2-raw/wiki.test.raw"),
    ] {
        let err = task.load(empty.path()).unwrap_err();
        let EvalError::MissingData { path: p, hint, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(p, &empty.path().join(path));
        assert!(hint.contains("http"), "{hint}");
        assert!(err.to_string().starts_with(task.name()), "{err}");
    }
    // The data folder or the shared data folder holding it both work.
    if let Some(dir) = common::shared_eval() {
        let parent = dir.parent().unwrap();
        assert_eq!(gaincell_eval::data_dir(Some(parent)), parent.join("eval"));
        assert_eq!(gaincell_eval::data_dir(Some(&dir)), dir);
    }
    assert_eq!(
        gaincell_eval::data_dir(Some(Path::new("/nowhere"))),
        Path::new("/nowhere")
    );
}
