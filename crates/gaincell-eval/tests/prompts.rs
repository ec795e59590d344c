//! Prompt construction and request encoding as the harness does them: a few items per task, each written out
//! with the strings the harness's templates (`*.yaml`, `utils.py`, `preprocess_*.py`) produce for it.

mod common;

use common::{pairs, Bytes};
use gaincell_eval::request::{
    encode_pair, loglikelihood_tokens, make_disjoint_window, rolling_windows, truncate,
};
use gaincell_eval::tasks::{arc, hellaswag, lambada, piqa, wikitext, winogrande};
use gaincell_eval::{Doc, Request, Task, TokenSeq};
use gaincell_model::Tokenizer;

fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

// Every item below is made up for the test, in its dataset's shape; the expected strings are what the
// harness's templates and Python code give for it.

#[test]
fn hellaswag_query_capitalises_ctx_b_and_strips_wikihow_tags() {
    let an = hellaswag::Original {
        activity_label: "Fixing a bike".into(),
        ctx_a: "A woman turns a bike upside down.".into(),
        ctx_b: "she".into(),
        endings: vec![
            "spins the back wheel.".into(),
            "is pumping the tyre with a hand pump.".into(),
            "eats a sandwich on the grass.".into(),
            "removes the chain and oils it.".into(),
        ],
        label: serde_json::json!("3"),
    };
    let ctx = "Fixing a bike: A woman turns a bike upside down. She";
    let want = owned(&[
        (ctx, " spins the back wheel."),
        (ctx, " is pumping the tyre with a hand pump."),
        (ctx, " eats a sandwich on the grass."),
        (ctx, " removes the chain and oils it."),
    ]);
    assert_eq!(pairs(&hellaswag::doc_original(&an, 3)), (want.clone(), 3));
    // The shared data's six-line form of the same item: ctx_b arrives uncapitalised.
    let merged = hellaswag::doc_merged(
        "Fixing a bike: A woman turns a bike upside down. she",
        an.endings.clone(),
        3,
    );
    assert_eq!(pairs(&merged), (want, 3));

    // WikiHow: ` [title]` becomes `. `, tags vanish, double spaces collapse (and a leading space left by a
    // removed tag stays: the harness strips before it removes).
    let wh = hellaswag::Original {
        activity_label: "Home and Garden".into(),
        ctx_a: "[header] How to plant tulips [title] Choose a sunny spot. [step] Tulips need at least six hours of sun a day.".into(),
        ctx_b: "".into(),
        endings: vec![
            "[substeps] Dig holes  about eight inches deep. [title] Water the bulbs.".into(),
            " Plant them in autumn. ".into(),
        ],
        label: serde_json::json!(1),
    };
    let ctx = "Home and Garden: How to plant tulips. Choose a sunny spot. Tulips need at least six hours of sun a day.";
    assert_eq!(
        pairs(&hellaswag::doc_original(&wh, 1)),
        (
            owned(&[
                (
                    ctx,
                    "  Dig holes about eight inches deep.. Water the bulbs."
                ),
                (ctx, " Plant them in autumn."),
            ]),
            1
        )
    );
    // Python's capitalize lower-cases the rest of ctx_b.
    let caps = hellaswag::Original {
        activity_label: "Baton twirling".into(),
        ctx_a: "A girl in the USA twirls a baton.".into(),
        ctx_b: "the girl in the USA".into(),
        endings: vec!["spins.".into()],
        label: serde_json::json!(0),
    };
    assert_eq!(
        pairs(&hellaswag::doc_original(&caps, 0)).0[0].0,
        "Baton twirling: A girl in the USA twirls a baton. The girl in the usa"
    );
    // A context that ends with a whole sentence has no ctx_b to capitalise.
    let wh_merged = hellaswag::doc_merged(ctx, vec!["x".into()], 0);
    assert_eq!(pairs(&wh_merged).0[0].0, ctx);
}

#[test]
fn piqa_and_arc_ask_a_question_and_answer_after_a_space() {
    let d = piqa::doc(
        "How do I keep bread fresh longer?",
        "Store it in a paper bag in a cool, dry place.",
        "Store it in a bowl of water in the sun.",
        0,
    );
    let q = "Question: How do I keep bread fresh longer?\nAnswer:";
    assert_eq!(
        pairs(&d),
        (
            owned(&[
                (q, " Store it in a paper bag in a cool, dry place."),
                (q, " Store it in a bowl of water in the sun."),
            ]),
            0
        )
    );
    let d = arc::doc(
        "Which instrument measures air temperature?",
        vec![
            "thermometer".into(),
            "barometer".into(),
            "ruler".into(),
            "balance".into(),
        ],
        0,
    );
    let q = "Question: Which instrument measures air temperature?\nAnswer:";
    assert_eq!(
        pairs(&d),
        (
            owned(&[
                (q, " thermometer"),
                (q, " barometer"),
                (q, " ruler"),
                (q, " balance")
            ]),
            0
        )
    );
}

#[test]
fn arc_reads_the_three_line_formats_alike() {
    let dir = tempfile::tempdir().unwrap();
    let q = "Which gas do plants take in?";
    let lines = [
        // The shared data's form, AI2's release, HF datasets' JSON export: one item each.
        serde_json::json!({"query": format!("Question: {q}"), "choices": ["oxygen", "carbon dioxide"], "gold": 1}),
        serde_json::json!({"id": "x", "question": {"stem": q, "choices": [{"text": "oxygen", "label": "A"}, {"text": "carbon dioxide", "label": "B"}]}, "answerKey": "B"}),
        serde_json::json!({"id": "x", "question": q, "choices": {"text": ["oxygen", "carbon dioxide"], "label": ["1", "2"]}, "answerKey": "2"}),
    ];
    std::fs::create_dir(dir.path().join("arc-challenge")).unwrap();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(
        dir.path().join("arc-challenge/ARC-Challenge-Test.jsonl"),
        text,
    )
    .unwrap();
    let docs = Task::ArcChallenge.load(dir.path()).unwrap();
    let want = arc::doc(q, vec!["oxygen".into(), "carbon dioxide".into()], 1);
    assert_eq!(docs, vec![want.clone(), want.clone(), want]);
}

#[test]
fn lambada_scores_the_last_word_after_its_space() {
    let d = lambada::doc("She opened the old box and found, at the very bottom, a letter");
    assert_eq!(
        d,
        Doc::Continuation(Request::new(
            "She opened the old box and found, at the very bottom, a",
            " letter"
        ))
    );
    // `text.split(' ')`: a double space leaves the context ending in a space.
    assert_eq!(
        lambada::doc("he said  yes"),
        Doc::Continuation(Request::new("he said ", " yes"))
    );
}

#[test]
fn winogrande_fills_the_blank_in_the_context_and_scores_the_rest() {
    let d = winogrande::doc(
        "Tom lent his bike to Ben because _ needed it for work.",
        "Tom",
        "Ben",
        1,
    )
    .unwrap();
    let target = " needed it for work.";
    assert_eq!(
        pairs(&d),
        (
            owned(&[
                ("Tom lent his bike to Ben because Tom", target),
                ("Tom lent his bike to Ben because Ben", target),
            ]),
            1
        )
    );
    assert!(winogrande::doc("no blank", "a", "b", 0).is_none());
}

#[test]
fn wikitext_pages_detokenizer_and_counts() {
    // A made-up page in WikiText's raw form, through every rule of the detokenizer.
    let raw = " \n = Ada Lovelace = \n \n Ada Lovelace was an English mathematician , writer and translator . She had a life @-@ long interest in engines . In 1843 , she wrote \" the notes \" ( see below ) at 20 \u{b0} C . The engine 's cost was $ 1 @.@ 5 million , or 1 @,@ 500 @,@ 000 . \n \n = = Work = = \n \n The Babbages ' house ; N years [ 1 ] . \n = Second Page = \n Text .\n";
    let pages = wikitext::pages(raw);
    assert_eq!(
        pages,
        vec![
            " = Ada Lovelace = \n \n Ada Lovelace was an English mathematician , writer and translator . She had a life @-@ long interest in engines . In 1843 , she wrote \" the notes \" ( see below ) at 20 \u{b0} C . The engine 's cost was $ 1 @.@ 5 million , or 1 @,@ 500 @,@ 000 . \n \n = = Work = = \n \n The Babbages ' house ; N years [ 1 ] . ",
            " = Second Page = \n Text .\n",
        ]
    );
    assert_eq!(
        wikitext::detokenize(&pages[0]),
        " = Ada Lovelace =\n\nAda Lovelace was an English mathematician, writer and translator. She had a life-long interest in engines. In 1843, she wrote \"the notes\" (see below) at 20\u{b0}C. The engine's cost was $ 1.5 million, or 1,500,000.\n\n== Work ==\n\nThe Babbages' house; 1 years [1]. "
    );
    assert_eq!(
        wikitext::detokenize(&pages[1]),
        " = Second Page =\nText .\n"
    );
    // len(re.split(r"\s+", page)) counts the empty pieces at either end; bytes are UTF-8 bytes (° is two).
    assert_eq!(
        pages.iter().map(|p| wikitext::words(p)).collect::<Vec<_>>(),
        [79, 8]
    );
    assert_eq!(pages.iter().map(|p| p.len()).collect::<Vec<_>>(), [323, 26]);
}

#[test]
fn rolling_windows_match_the_harness_test_suite() {
    // lm-evaluation-harness tests/test_utils.py, test_get_rolling_token_windows_v1 (prefix −100 → 999).
    let x: Vec<u32> = (0..34).collect();
    let got = rolling_windows(&x, 999, 10, 1);
    let r = |a: std::ops::Range<u32>| a.collect::<Vec<u32>>();
    let mut first = vec![999];
    first.extend(0..9);
    assert_eq!(
        got,
        vec![
            (first, r(0..10)),
            (r(9..19), r(10..20)),
            (r(19..29), r(20..30)),
            (r(23..33), r(30..34)),
        ]
    );
    assert_eq!(
        make_disjoint_window((vec![1, 2, 3, 4, 5], vec![2, 3, 4, 5, 6])),
        (vec![1], vec![2, 3, 4, 5, 6])
    );
    assert_eq!(
        make_disjoint_window((vec![1, 2, 3, 4, 5], vec![4, 5, 6])),
        (vec![1, 2, 3], vec![4, 5, 6])
    );
    assert_eq!(
        make_disjoint_window((vec![1, 2, 3, 4, 5], vec![6])),
        (vec![1, 2, 3, 4, 5], vec![6])
    );
}

#[test]
fn pairs_are_encoded_whole_with_the_context_whitespace_moved_and_cut_on_the_left() {
    let gpt2 = Tokenizer::gpt2();
    let (ctx, cont) = encode_pair(&gpt2, "Question: Is it?\nAnswer: ", "yes").unwrap();
    assert_eq!(ctx, gpt2.encode("Question: Is it?\nAnswer:").unwrap());
    assert_eq!(cont, gpt2.encode(" yes").unwrap());
    assert_eq!(cont.len(), 1, "` yes` is one GPT-2 token");
    // An empty context is the prefix token.
    let seq = loglikelihood_tokens(&Bytes, &Request::new("", "ab"), 7, 16).unwrap();
    assert_eq!(
        seq,
        vec![TokenSeq {
            tokens: vec![7, 97, 98],
            first: 1
        }]
    );
    // (context + continuation)[-(max_length + 1):].
    let seq = truncate(b"abcdef".map(u32::from).to_vec(), vec![103], 4).unwrap();
    assert_eq!(
        seq,
        TokenSeq {
            tokens: b"cdefg".map(u32::from).to_vec(),
            first: 4
        }
    );
    assert!(
        truncate(vec![1], vec![2; 5], 4).is_err(),
        "a continuation longer than the model"
    );

    // A continuation longer than the model: pieces of max_length / 2 targets, each seeing max_length tokens.
    let b = |s: &str| s.bytes().map(u32::from).collect::<Vec<u32>>();
    let pieces = loglikelihood_tokens(&Bytes, &Request::new("ab", "cdefghijkl"), 0, 4).unwrap();
    assert_eq!(
        pieces,
        vec![
            TokenSeq {
                tokens: b("abcd"),
                first: 2
            },
            TokenSeq {
                tokens: b("bcdef"),
                first: 3
            },
            TokenSeq {
                tokens: b("defgh"),
                first: 3
            },
            TokenSeq {
                tokens: b("fghij"),
                first: 3
            },
            TokenSeq {
                tokens: b("hijkl"),
                first: 3
            },
        ]
    );
}
