//! `gaincell data prepare`, `train` (with a SIGKILL and `--resume`) and `adapt` from the outside, on a tiny model.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use gaincell_train::trainer::{read_metrics, Event};

mod common;
use common::{gaincell, snapshot};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gaincell"))
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small corpus with structure a model can learn, a 300-entry BPE, and its token shards.
fn tiny_data(dir: &Path) -> PathBuf {
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let words = [
        "the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "big", "red", "house",
    ];
    for f in 0..4 {
        let text: String = (0..3000)
            .map(|i| {
                let w = words[(i * 7 + f * 3 + i / 13) % words.len()];
                if i % 11 == 10 {
                    format!("{w}.\n")
                } else {
                    format!("{w} ")
                }
            })
            .collect();
        std::fs::write(corpus.join(format!("book{f}.txt")), text).unwrap();
    }
    let tok = dir.join("tokenizer.json");
    ok(gaincell(&[
        "tokenizer",
        "train",
        "--input",
        corpus.to_str().unwrap(),
        "--vocab",
        "300",
        "--out",
        tok.to_str().unwrap(),
    ]));
    let data = dir.join("data");
    ok(gaincell(&[
        "data",
        "prepare",
        "--tokenizer",
        tok.to_str().unwrap(),
        "--input",
        corpus.to_str().unwrap(),
        "--val-fraction",
        "0.25",
        "--out",
        data.to_str().unwrap(),
    ]));
    data
}

fn write_config(dir: &Path, name: &str, data: &Path, steps: usize, extra_model: &str) -> PathBuf {
    let out = dir.join(name);
    let cfg = format!(
        r#"chip = {{ base = "paper-linear", geometry = {{ head_dim = 16, window = 16, tile_rows = 8 }} }}
[model]
n_layer = 2
n_head = 2
n_embd = 32
n_positions = 32
{extra_model}
[data]
dir = "{}"
[train]
out = "{}"
steps = {steps}
batch = 4
ctx = 32
seed = 7
eval_every = 10
eval_batches = 2
checkpoint_every = 1
[optim]
lr = 3e-3
min_lr = 3e-4
warmup_steps = 5
decay_steps = {steps}
beta1 = 0.9
beta2 = 0.95
eps = 1e-8
weight_decay = 0.1
grad_clip = 1.0
"#,
        data.display(),
        out.display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, cfg).unwrap();
    path
}

/// Start `gaincell train --config config` and SIGKILL it once `metrics` has `lines` lines, while it still runs.
fn train_killed_after(config: &Path, metrics: &Path, lines: usize) {
    let mut child = bin()
        .args(["train", "--config", config.to_str().unwrap()])
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let logged = std::fs::read_to_string(metrics)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if logged >= lines {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run made no progress"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running when killed"
    );
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

/// The step events without their wall-clock rate.
fn curve(out: &Path) -> Vec<(usize, f64, f64, f64, u64)> {
    read_metrics(out)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Step {
                step,
                loss,
                lr,
                grad_norm,
                tokens,
                ..
            } => Some((step, loss, lr, grad_norm, tokens)),
            _ => None,
        })
        .collect()
}

#[test]
fn sigkill_then_resume_gives_the_uninterrupted_curve_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    let steps = 150;
    let a = write_config(tmp.path(), "a", &data, steps, "");
    let b = write_config(tmp.path(), "b", &data, steps, "");
    ok(gaincell(&["train", "--config", a.to_str().unwrap()]));

    // Run b, killed with SIGKILL once it is well under way.
    train_killed_after(&b, &tmp.path().join("b/metrics.jsonl"), 40);
    let before = curve(&tmp.path().join("b"));
    assert!(
        before.len() < steps,
        "killed mid-way ({} steps logged)",
        before.len()
    );

    ok(gaincell(&[
        "train",
        "--config",
        b.to_str().unwrap(),
        "--resume",
    ]));
    let (ca, cb) = (curve(&tmp.path().join("a")), curve(&tmp.path().join("b")));
    assert_eq!(ca.len(), steps);
    assert_eq!(
        ca, cb,
        "the resumed curve differs from the uninterrupted one"
    );
    let weights = |run: &str| {
        std::fs::read(tmp.path().join(run).join("checkpoint/model.safetensors")).unwrap()
    };
    assert!(weights("a") == weights("b"), "final weights differ");
    // It learnt something: the structured corpus is far below the uniform 300-way loss (ln 300 ≈ 5.7).
    assert!(
        ca.last().unwrap().1 < 3.0,
        "final training loss {}",
        ca.last().unwrap().1
    );

    // A second run into a folder with a checkpoint refuses rather than overwriting it.
    let again = gaincell(&["train", "--config", a.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));

    // The linear run recorded target statistics: adaptation onto the nonlinear cell runs from its checkpoint.
    let chip = tmp.path().join("nonlinear.toml");
    std::fs::write(
        &chip,
        "base = \"paper-nonlinear\"\n[geometry]\nhead_dim = 16\nwindow = 16\ntile_rows = 8\n",
    )
    .unwrap();
    let adapted = tmp.path().join("adapted");
    let text = ok(gaincell(&[
        "adapt",
        "--from",
        tmp.path().join("a/checkpoint").to_str().unwrap(),
        "--chip",
        chip.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        adapted.to_str().unwrap(),
        "--batch",
        "4",
        "--max-iterations",
        "15",
    ]));
    assert!(text.contains("loss"), "{text}");
    assert!(adapted.join("model.safetensors").is_file());
    // Checkpoints carry the tokenizer their data was prepared with.
    for dir in [tmp.path().join("a/checkpoint"), adapted.clone()] {
        assert_eq!(
            std::fs::read(dir.join("tokenizer.json")).unwrap(),
            std::fs::read(data.join("tokenizer.json")).unwrap()
        );
    }
}

#[test]
fn a_llama_trains_from_scratch_on_a_linear_chip_then_adapts_onto_the_nonlinear_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    // Grouped-query attention: 2 query heads share one key/value head (one pair of arrays).
    let cfg = write_config(
        tmp.path(),
        "llama",
        &data,
        30,
        "family = \"llama\"\nn_kv_head = 1\nintermediate = 64\n",
    );
    ok(gaincell(&["train", "--config", cfg.to_str().unwrap()]));
    let c = curve(&tmp.path().join("llama"));
    assert_eq!(c.len(), 30);
    let mean =
        |s: &[(usize, f64, f64, f64, u64)]| s.iter().map(|x| x.1).sum::<f64>() / s.len() as f64;
    assert!(
        mean(&c[25..]) < mean(&c[..5]) - 0.2,
        "the loss falls: {:?}",
        c.iter().map(|x| x.1).collect::<Vec<_>>()
    );
    let ckpt = tmp.path().join("llama/checkpoint");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ckpt.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["num_key_value_heads"], 1);
    let chip = tmp.path().join("nonlinear.toml");
    std::fs::write(
        &chip,
        "base = \"paper-nonlinear\"\n[geometry]\nhead_dim = 16\nwindow = 16\ntile_rows = 8\n",
    )
    .unwrap();
    let adapted = tmp.path().join("adapted");
    let text = ok(gaincell(&[
        "adapt",
        "--from",
        ckpt.to_str().unwrap(),
        "--chip",
        chip.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        adapted.to_str().unwrap(),
        "--batch",
        "4",
        "--max-iterations",
        "15",
    ]));
    assert!(text.contains("loss"), "{text}");
    let m = gaincell_model::checkpoint::load(&adapted, None).unwrap();
    assert_eq!(
        (m.config.family(), m.scalers[0].k.a.dims()),
        ("llama", &[1usize][..])
    );
}

/// A run config whose `[optim]` has the given `lr` and `beta2` lines (checked before the data is opened).
fn bad_optim(lr: &str, beta2: &str) -> String {
    format!(
        "chip = \"software\"\n[model]\n[data]\ndir = \"d\"\n[train]\nout = \"o\"\nsteps = 1\nbatch = 1\nctx = 8\n\
         [optim]\n{lr}\nmin_lr = 0.0\nwarmup_steps = 0\ndecay_steps = 1\nbeta1 = 0.9\n{beta2}\neps = 1e-8\n\
         weight_decay = 0.0\ngrad_clip = 1.0\n"
    )
}

#[test]
fn bad_configs_and_data_are_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.toml");
    for (text, says) in [
        ("chip = \"software\"\n[model]\n[data]\ndir = \"nowhere\"\n[train]\nout = \"o\"\nsteps = 1\nbatch = 1\nctx = 8\n", "not a prepared data folder"),
        ("chip = \"software\"\n[model]\nn_layers = 3\n", "n_layers"),
        ("chip = \"no-such-chip\"\n[model]\n[data]\ndir = \"d\"\n[train]\nout = \"o\"\nsteps = 1\nbatch = 1\nctx = 8\n", "no-such-chip"),
        (&bad_optim("lr = -1.0", "beta2 = 0.95"), "[optim]: lr must be a positive number (got -1)"),
        (&bad_optim("lr = 1e-3", "beta2 = 1.0"), "[optim]: beta2 must be in [0, 1) (got 1)"),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let out = gaincell(&["train", "--config", cfg.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
    let out = gaincell(&[
        "train",
        "--config",
        tmp.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn pipeline_runs_every_stage_writes_results_and_skips_finished_stages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    let optim = "lr = 3e-3\nmin_lr = 3e-4\nwarmup_steps = 3\ndecay_steps = 30\nbeta1 = 0.9\nbeta2 = 0.95\neps = 1e-8\nweight_decay = 0.1\ngrad_clip = 1.0\n";
    let chip = |base: &str| {
        format!(
            "{{ base = \"{base}\", geometry = {{ head_dim = 16, window = 16, tile_rows = 8 }} }}"
        )
    };
    let cfg = format!(
        "out = \"pipe\"\n[data]\ndir = \"{}\"\n[model]\nn_layer = 2\nn_head = 2\nn_embd = 32\nn_positions = 32\n\
         [chips]\nsoftware = \"software\"\nlinear = {}\nnonlinear = {}\n\
         [schedule]\nbatch = 4\nctx = 32\nseed = 3\neval_every = 5\neval_batches = 2\ncheckpoint_every = 5\n\
         pretrain_steps = 30\nlinear_steps = 10\nnonlinear_steps = 10\n[optim]\n{optim}[finetune]\n{optim}\
         [adapt]\nbatch = 4\nmax_iterations = 20\neps = 1e-4\n",
        data.display(),
        chip("paper-linear"),
        chip("paper-nonlinear")
    );
    let path = tmp.path().join("pipeline.toml");
    std::fs::write(&path, cfg).unwrap();
    let text = ok(gaincell(&["pipeline", "--config", path.to_str().unwrap()]));
    let out = tmp.path().join("pipe");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let stages: Vec<&str> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        ["software", "linear", "nonlinear", "direct", "scratch"]
    );
    let steps: Vec<u64> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["steps"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        [30, 10, 10, 20, 50],
        "equal budgets: direct = linear + nonlinear, scratch = all three"
    );
    let iters = r["adaptation"]["iterations"].as_array().unwrap().len();
    assert!((1..=20).contains(&iters));
    assert!(r["unadapted_val_loss"].as_f64().unwrap().is_finite());
    for f in [
        "results.md",
        "curves.png",
        "curves.svg",
        "adapted/model.safetensors",
        "adapted/adaptation.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(text.contains("| software | software |"), "{text}");
    // Run again: every stage is complete, so nothing trains and the results are the same.
    let again = ok(gaincell(&["pipeline", "--config", path.to_str().unwrap()]));
    assert_eq!(again.matches("done already, skipped").count(), 6, "{again}");
    let r2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["stages"], r2["stages"]);
    // A finished stage does not stand for a config it was not trained with: refused, files untouched, unless
    // --allow-config-change keeps it as it is.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("lr = 3e-3", "lr = 1e-3", 1)).unwrap();
    let before = snapshot(&out);
    let refused = gaincell(&["pipeline", "--config", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("stage software finished") && err.contains("[optim] lr: 0.003 → 0.001"),
        "{err}"
    );
    assert_eq!(snapshot(&out), before);
    let kept = ok(gaincell(&[
        "pipeline",
        "--config",
        path.to_str().unwrap(),
        "--allow-config-change",
    ]));
    assert_eq!(kept.matches("done already, skipped").count(), 6, "{kept}");
}

#[test]
fn sigkill_then_resume_of_a_distilled_run_gives_the_uninterrupted_curve_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    // The teacher: a GPT-2 trained first, on the linear chip (its checkpoint records that chip, which it runs on).
    let teacher = write_config(tmp.path(), "teacher", &data, 40, "");
    ok(gaincell(&["train", "--config", teacher.to_str().unwrap()]));
    // The students: a fresh Llama distilled from it (the teacher's path is relative to the config file).
    let steps = 150;
    let llama = "family = \"llama\"\nn_kv_head = 1\nintermediate = 64\n";
    let section =
        "\n[distill]\nteacher = \"teacher/checkpoint\"\nweight = 0.6\ntemperature = 2.0\n";
    let student = |name: &str, section: &str| {
        let path = write_config(tmp.path(), name, &data, steps, llama);
        let text = std::fs::read_to_string(&path).unwrap() + section;
        std::fs::write(&path, text).unwrap();
        path
    };
    let a = student("a", section);
    let b = student("b", section);
    ok(gaincell(&["train", "--config", a.to_str().unwrap()]));

    train_killed_after(&b, &tmp.path().join("b/metrics.jsonl"), 30);
    // Step events with the distillation loss, without the wall-clock rate.
    let distilled = |run: &str| -> Vec<(usize, f64, f64, f64, u64, Option<f64>)> {
        read_metrics(&tmp.path().join(run))
            .unwrap()
            .into_iter()
            .filter_map(|e| match e {
                Event::Step {
                    step,
                    loss,
                    lr,
                    grad_norm,
                    tokens,
                    distill_loss,
                    ..
                } => Some((step, loss, lr, grad_norm, tokens, distill_loss)),
                _ => None,
            })
            .collect()
    };
    let before = distilled("b");
    assert!(
        before.len() < steps,
        "killed mid-way ({} steps logged)",
        before.len()
    );
    ok(gaincell(&[
        "train",
        "--config",
        b.to_str().unwrap(),
        "--resume",
    ]));
    let (ca, cb) = (distilled("a"), distilled("b"));
    assert_eq!(ca.len(), steps);
    assert_eq!(
        ca, cb,
        "the resumed curve differs from the uninterrupted one"
    );
    let weights = |run: &str| {
        std::fs::read(tmp.path().join(run).join("checkpoint/model.safetensors")).unwrap()
    };
    assert!(weights("a") == weights("b"), "final weights differ");
    // Every step logged its distillation term, and the student moved towards the teacher.
    assert!(ca
        .iter()
        .all(|s| s.5.is_some_and(|d| d.is_finite() && d >= 0.0)));
    let kl: Vec<f64> = ca.iter().map(|x| x.5.unwrap()).collect();
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    assert!(
        mean(&kl[steps - 10..]) < 0.5 * mean(&kl[..10]),
        "the distillation loss falls: {kl:?}"
    );
    // The teacher's own run logged none.
    assert!(curve(&tmp.path().join("teacher")).len() == 40);
    assert!(
        !std::fs::read_to_string(tmp.path().join("teacher/metrics.jsonl"))
            .unwrap()
            .contains("distill_loss")
    );

    // A resume with another [distill] section is refused, and so are bad sections.
    let changed = student(
        "b",
        "\n[distill]\nteacher = \"teacher/checkpoint\"\nweight = 0.3\ntemperature = 2.0\n",
    );
    for (config, resume, says) in [
        (
            changed,
            true,
            "differs from the one the checkpoint was made with — [distill]:",
        ),
        (
            student(
                "c",
                "\n[distill]\nteacher = \"teacher/checkpoint\"\nweight = 1.5\n",
            ),
            false,
            "[distill] weight = 1.5",
        ),
        (
            student(
                "d",
                "\n[distill]\nteacher = \"teacher/checkpoint\"\ntemperature = 0\n",
            ),
            false,
            "[distill] temperature = 0",
        ),
        (
            student("e", "\n[distill]\nteacher = \"no-such-teacher\"\n"),
            false,
            "no-such-teacher: cannot be loaded",
        ),
    ] {
        let mut args = vec!["train", "--config", config.to_str().unwrap()];
        if resume {
            args.push("--resume");
        }
        let out = gaincell(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

/// `train --resume` with settings that differ from the checkpoint's is refused (one line, exit 2, nothing
/// touched) unless `--allow-config-change`, which logs the change; training longer needs no flag.
#[test]
fn resume_with_changed_settings_is_refused_unless_allowed_and_then_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    let config = write_config(tmp.path(), "run", &data, 3, "");
    ok(gaincell(&["train", "--config", config.to_str().unwrap()]));
    let out_dir = tmp.path().join("run");
    let original = std::fs::read_to_string(&config).unwrap();
    let changed = |from: &str, to: &str| {
        assert!(original.contains(from), "{from}");
        std::fs::write(&config, original.replace(from, to)).unwrap();
    };
    for (from, to, says) in [
        ("lr = 3e-3", "lr = 1e-3", "[optim] lr: 0.003 → 0.001"),
        ("window = 16", "window = 8", "chip.geometry.window: 16 → 8"),
        ("batch = 4", "batch = 2", "[train] batch: 4 → 2"),
        (
            "\nsteps = 3",
            "\nsteps = 2",
            "below the step the checkpoint",
        ),
    ] {
        changed(from, to);
        let before = snapshot(&out_dir);
        let out = gaincell(&["train", "--config", config.to_str().unwrap(), "--resume"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{from}: {err}");
        assert!(err.contains(says), "{from}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert_eq!(
            snapshot(&out_dir),
            before,
            "{from}: the refused resume changed files"
        );
    }
    // Training longer is not a change.
    changed("\nsteps = 3", "\nsteps = 4");
    ok(gaincell(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--resume",
    ]));
    assert!(!out_dir.join("config-changes.jsonl").exists());
    // Allowed explicitly: it continues, says so, and logs it.
    std::fs::write(
        &config,
        original
            .replace("\nsteps = 3", "\nsteps = 5")
            .replace("lr = 3e-3", "lr = 1e-3"),
    )
    .unwrap();
    let out = gaincell(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--resume",
        "--allow-config-change",
    ]);
    let said = format!(
        "{}{}",
        ok(out.clone()),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("with changed settings"), "{said}");
    let log = std::fs::read_to_string(out_dir.join("config-changes.jsonl")).unwrap();
    assert!(
        log.contains("\"step\":4") && log.contains("[optim] lr: 0.003 → 0.001"),
        "{log}"
    );
    let state = std::fs::read_to_string(out_dir.join("checkpoint/state.json")).unwrap();
    assert!(state.contains("\"step\": 5"), "{state}");
}

/// A checkpoint folder whose parts disagree (sidecar vs config.json, weights for more layers than the config
/// has) does not load: one clear line naming the disagreement, and the files stay as they were.
#[test]
fn checkpoint_parts_that_disagree_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    let config = write_config(tmp.path(), "run", &data, 1, "");
    ok(gaincell(&["train", "--config", config.to_str().unwrap()]));
    let ckpt = tmp.path().join("run/checkpoint");
    let generate = |model: &Path| {
        gaincell(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "the cat",
            "-n",
            "2",
        ])
    };
    ok(generate(&ckpt));

    // config.json edited to 3 layers beside a sidecar that says 2.
    let hf = ckpt.join("config.json");
    let text = std::fs::read_to_string(&hf).unwrap();
    let key = if text.contains("\"n_layer\"") {
        "n_layer"
    } else {
        "num_hidden_layers"
    };
    let edited = text.replace(&format!("\"{key}\": 2"), &format!("\"{key}\": 3"));
    assert_ne!(edited, text, "{text}");
    std::fs::write(&hf, &edited).unwrap();
    let before = snapshot(&ckpt);
    let out = generate(&ckpt);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the sidecar says layers 2") && err.contains("says 3"),
        "{err}"
    );
    assert_eq!(snapshot(&ckpt), before);

    // Without the sidecar, config.json (now 1 layer) rules, and the second layer's weights are left over.
    std::fs::write(
        &hf,
        text.replace(&format!("\"{key}\": 2"), &format!("\"{key}\": 1")),
    )
    .unwrap();
    std::fs::remove_file(ckpt.join("gaincell.json")).unwrap();
    let before = snapshot(&ckpt);
    let out = generate(&ckpt);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the model does not use") && err.contains(".1."),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(snapshot(&ckpt), before);
}

/// A checkpoint save that fails says whether an earlier checkpoint is intact and that `--resume` continues
/// from it; the earlier checkpoint is indeed untouched. (A file squatting on `checkpoint.tmp` makes the save fail
/// the way a full disk would, without needing one.)
#[test]
fn a_failed_save_says_the_previous_checkpoint_is_intact_and_resume_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_data(tmp.path());
    let config = write_config(tmp.path(), "run", &data, 1, "");
    let out_dir = tmp.path().join("run");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("checkpoint.tmp"), "in the way").unwrap();
    let out = gaincell(&["train", "--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("saving the checkpoint of step 1 failed")
            && err.contains("no earlier checkpoint"),
        "{err}"
    );

    std::fs::remove_file(out_dir.join("checkpoint.tmp")).unwrap();
    // Nothing was saved, so the run starts afresh.
    ok(gaincell(&["train", "--config", config.to_str().unwrap()]));
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\nsteps = 1\n", "\nsteps = 2\n");
    std::fs::write(&config, text).unwrap();
    let before = snapshot(&out_dir.join("checkpoint"));
    std::fs::write(out_dir.join("checkpoint.tmp"), "in the way").unwrap();
    let out = gaincell(&["train", "--config", config.to_str().unwrap(), "--resume"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("saving the checkpoint of step 2 failed")
            && err.contains("checkpoint is intact and --resume continues from it"),
        "{err}"
    );
    assert_eq!(snapshot(&out_dir.join("checkpoint")), before);
    std::fs::remove_file(out_dir.join("checkpoint.tmp")).unwrap();
    ok(gaincell(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--resume",
    ]));
}
