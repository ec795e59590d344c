//! `gaincell sweep` with an accuracy column group, from the outside, on the shipped stories260K model: the group
//! equals `gaincell eval ppl` on the same chip and text, and `gaincell eval tasks` on the same task; `--shard 0/2` and `1/2` merged equal the unsharded run
//! file for file; bad shard syntax, mismatched, missing or repeated shards and chips that do not fit the model
//! are one-line errors.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, gaincell, stdout};

fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(p)
        .display()
        .to_string()
}

fn model() -> String {
    repo("models/stories260k/nonlinear")
}

fn chip() -> String {
    repo("configs/chips/stories260k-nonlinear.toml")
}

/// A short story text (the model's tokenizer falls back to bytes for anything it lacks).
fn story(dir: &Path) -> String {
    let text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. \
                One day, she saw a big red ball under a tree. She ran to the ball and kicked it high. \
                Her friend Tom came and they played together until the sun went down. They were very happy.\n\n"
        .repeat(6);
    let p = dir.join("story.txt");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `sweep` with the accuracy group on the story; `extra` appended.
fn sweep(text: &str, out: &Path, vary: &[&str], extra: &[&str]) -> String {
    let (m, c, o) = (model(), chip(), s(out));
    let mut args = vec![
        "sweep",
        "--chip",
        &c,
        "--accuracy-model",
        &m,
        "--accuracy-text",
        text,
        "--accuracy-tokens",
        "300",
        "--accuracy-ctx",
        "128",
        "--out",
        &o,
    ];
    for v in vary {
        args.extend(["--vary", v]);
    }
    args.extend(extra);
    stdout(&gaincell(&args))
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn the_accuracy_group_equals_eval_ppl_on_the_same_chip_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let text = story(dir.path());
    let out = dir.path().join("sweep");
    sweep(&text, &out, &["key_bits=4,5"], &["--no-plots"]);
    // The point key_bits=5 as a chip file of its own.
    let chip5 = dir.path().join("chip5.toml");
    let base = std::fs::read_to_string(chip()).unwrap();
    std::fs::write(&chip5, base + "\n[key]\nbits = 5\n").unwrap();
    let json = dir.path().join("ppl.json");
    stdout(&gaincell(&[
        "eval",
        "ppl",
        "--model",
        &model(),
        "--chip",
        &s(&chip5),
        "--data",
        &text,
        "--max-tokens",
        "300",
        "--ctx",
        "128",
        "--json",
        &s(&json),
    ]));
    let want = read_json(&json)["result"].clone();
    let want_loss = want["nll"].as_f64().unwrap() / want["tokens_scored"].as_f64().unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();

    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |n: &str| {
        header
            .iter()
            .position(|h| *h == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let row: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(row[col("key_bits")], "5");
    let num = |n: &str| row[col(n)].parse::<f64>().unwrap();
    assert!(
        close(num("loss"), want_loss),
        "{} vs {want_loss}",
        num("loss")
    );
    assert!(close(
        num("perplexity"),
        want["perplexity"].as_f64().unwrap()
    ));
    assert!(close(
        num("bits_per_byte"),
        want["bits_per_byte"].as_f64().unwrap()
    ));
    assert_eq!(
        num("tokens_scored"),
        want["tokens_scored"].as_f64().unwrap()
    );
    // The other point's chip gives another loss: the chip is really swapped.
    let other: Vec<&str> = lines[1].split(',').collect();
    assert_ne!(other[col("loss")], row[col("loss")]);

    let r = read_json(&out.join("results.json"));
    let p = &r["points"][1];
    assert_eq!(p["settings"]["key_bits"], "5");
    assert!(close(
        p["accuracy"]["text"]["loss"].as_f64().unwrap(),
        want_loss
    ));
    assert_eq!(r["definition"]["accuracy"]["text"]["tokens"], 300);
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("| point | key_bits | loss | perplexity |"),
        "{md}"
    );
    // The cost model follows the accuracy model when --model is not given.
    assert_eq!(r["definition"]["cost_model"]["head_dim"], 8);
}

/// A three-question ARC-Easy file in the layout `eval tasks` reads, about the story.
fn arc_easy(dir: &Path) -> String {
    let data = dir.join("tasks");
    std::fs::create_dir_all(data.join("arc-easy")).unwrap();
    let q = |query: &str, choices: [&str; 4], gold: usize| {
        serde_json::json!({"query": format!("Question: {query}"), "choices": choices, "gold": gold})
            .to_string()
    };
    let lines = [
        q(
            "What did Lily kick?",
            ["a red ball", "a blue sky", "a big dog", "a cat"],
            0,
        ),
        q(
            "How were they at the end?",
            ["sad", "happy", "angry", "tired"],
            1,
        ),
        q(
            "Where did Lily play?",
            ["at school", "in the sea", "in the park", "on the moon"],
            2,
        ),
    ];
    std::fs::write(
        data.join("arc-easy/arc_easy.jsonl"),
        lines.join("\n") + "\n",
    )
    .unwrap();
    s(&data)
}

#[test]
fn the_task_group_equals_eval_tasks_on_the_same_chip() {
    let dir = tempfile::tempdir().unwrap();
    let data = arc_easy(dir.path());
    let results = dir.path().join("tasks.json");
    stdout(&gaincell(&[
        "eval",
        "tasks",
        "--model",
        &model(),
        "--chip",
        &chip(),
        "--tasks",
        "arc_easy",
        "--data-dir",
        &data,
        "--out",
        &s(&results),
    ]));
    let want = read_json(&results)["results"]["arc_easy"].clone();
    let out = dir.path().join("sweep");
    stdout(&gaincell(&[
        "sweep",
        "--chip",
        &chip(),
        "--vary",
        "key_bits=3",
        "--accuracy-model",
        &model(),
        "--accuracy-task",
        "arc_easy",
        "--accuracy-data",
        &data,
        "--out",
        &s(&out),
        "--no-plots",
    ]));
    let r = read_json(&out.join("results.json"));
    let metrics = r["points"][0]["accuracy"]["task"]["metrics"]
        .as_array()
        .unwrap()
        .clone();
    for m in metrics {
        let name = m["name"].as_str().unwrap();
        assert_eq!(m["value"], want[name], "{name}");
        assert_eq!(m["stderr"], want[format!("{name}_stderr")], "{name}");
    }
    assert_eq!(r["definition"]["accuracy"]["task"]["docs"], 3);
}

/// Every file of a sweep folder, results.json without its timing fields.
fn outputs(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("seconds");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut files: Vec<(PathBuf, Vec<u8>)> = common::snapshot(dir)
        .into_iter()
        .filter(|(p, _)| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("shard-")
        })
        .map(|(p, bytes)| {
            let name = PathBuf::from(p.file_name().unwrap());
            if name == Path::new("results.json") {
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                strip(&mut v);
                (name, serde_json::to_vec_pretty(&v).unwrap())
            } else {
                (name, bytes)
            }
        })
        .collect();
    files.sort();
    files
}

#[test]
fn shards_merged_equal_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = story(dir.path());
    let vary = ["key_bits=3,4", "window=128,256"];
    let full = dir.path().join("full");
    sweep(&text, &full, &vary, &[]);
    let shards = dir.path().join("shards");
    for i in ["0/2", "1/2"] {
        let said = sweep(&text, &shards, &vary, &["--shard", i]);
        assert!(said.contains("2 of the sweep's 4 points"), "{said}");
    }
    let shard0 = read_json(&shards.join("shard-0-of-2.json"));
    assert_eq!(shard0["indices"], serde_json::json!([0, 2]));
    assert!(
        !shards.join("sweep.csv").exists(),
        "a shard writes only its shard file"
    );
    let merged = dir.path().join("merged");
    stdout(&gaincell(&[
        "sweep",
        "merge",
        &s(&shards),
        "--out",
        &s(&merged),
    ]));

    let (a, b) = (outputs(&full), outputs(&merged));
    let names: Vec<&PathBuf> = a.iter().map(|f| &f.0).collect();
    for stem in [
        "sweep.csv",
        "results.json",
        "results.md",
        "pareto_energy.svg",
        "pareto_latency.png",
    ] {
        assert!(names.contains(&&PathBuf::from(stem)), "{stem}: {names:?}");
    }
    assert_eq!(names, b.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(
            x == y,
            "{} differs between the unsharded run and the merge",
            name.display()
        );
    }
    // The front: at least one point on it, marked in the CSV.
    let csv = std::fs::read_to_string(full.join("sweep.csv")).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",pareto"));
    assert!(csv.lines().skip(1).any(|l| !l.ends_with(",no")), "{csv}");
}

/// A cost-only sweep's shard (quick): `vary` and `--shard`.
fn cost_shard(out: &Path, vary: &str, shard: &str) {
    stdout(&gaincell(&[
        "sweep",
        "--vary",
        vary,
        "--shard",
        shard,
        "--out",
        &s(out),
    ]));
}

#[test]
fn bad_shards_and_chips_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = s(&dir.path().join("x"));
    for (spec, needle) in [
        ("3", "--shard 3: write I/N"),
        ("1/x", "write I/N"),
        ("2/2", "--shard 2/2: the index must be below N"),
        ("0/0", "at least 1"),
    ] {
        fails_with(
            &[
                "sweep",
                "--vary",
                "window=256",
                "--shard",
                spec,
                "--out",
                &out,
            ],
            needle,
        );
    }
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    cost_shard(&a, "window=256,512", "0/2");
    cost_shard(&b, "window=256,1024", "1/2");
    let merged = s(&dir.path().join("m"));
    fails_with(
        &["sweep", "merge", &s(&a), &s(&b), "--out", &merged],
        "are shards of different sweeps (they differ in `vary`)",
    );
    fails_with(
        &["sweep", "merge", &s(&a), "--out", &merged],
        "1 of the sweep's 2 points are in no shard (1): add the shard 1/2",
    );
    let f = s(&a.join("shard-0-of-2.json"));
    fails_with(
        &["sweep", "merge", &f, &f, "--out", &merged],
        "point 0 is in both",
    );
    let not_shard = dir.path().join("other.json");
    std::fs::write(&not_shard, "{\"format\": \"something\"}").unwrap();
    fails_with(
        &["sweep", "merge", &s(&not_shard), "--out", &merged],
        "is not a sweep shard",
    );
    assert!(
        !Path::new(&merged).exists(),
        "a refused merge wrote nothing"
    );

    let text = story(dir.path());
    fails_with(
        &[
            "sweep",
            "--chip",
            &chip(),
            "--vary",
            "head_dim=8,16",
            "--accuracy-model",
            &model(),
            "--accuracy-text",
            &text,
            "--out",
            &out,
        ],
        "sweep point head_dim=16 does not fit the model: chip `stories260k-nonlinear` has arrays of \
         geometry.head_dim = 16",
    );
    fails_with(
        &[
            "sweep",
            "--vary",
            "window=256",
            "--accuracy-model",
            &model(),
            "--accuracy-text",
            &text,
            "--accuracy-ctx",
            "1000",
            "--out",
            &out,
        ],
        "--accuracy-ctx 1000: give 2 to 512",
    );
    fails_with(
        &[
            "sweep",
            "--vary",
            "window=256",
            "--accuracy-text",
            &text,
            "--out",
            &out,
        ],
        "need --accuracy-model",
    );
    fails_with(
        &[
            "sweep",
            "--vary",
            "window=256",
            "--accuracy-model",
            &model(),
            "--out",
            &out,
        ],
        "needs --accuracy-text FILE and/or --accuracy-task NAME",
    );
}
