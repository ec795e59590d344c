//! Knowledge distillation: the combined loss against independent f64 arithmetic, its gradient against central
//! differences (on logits and through a tiny model), the checks at the edge, and resume with a teacher.

mod common;

use std::path::{Path, PathBuf};

use common::tiny_data;

use candle_core::{Device, Tensor, Var};
use gaincell_chip::ChipConfig;
use gaincell_model::{checkpoint, ops, Gpt2Config, Model, ModelConfig};
use gaincell_train::distill::{distillation_loss, distilled_loss, DistillSpec, Teacher};
use gaincell_train::trainer::{self, read_metrics, Event, RunConfig};

fn pseudo(n: usize, seed: u64, scale: f64) -> Vec<f32> {
    // SplitMix64: reproducible logits without a dependency.
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 11) as f64 / (1u64 << 53) as f64 - 0.5) as f32 * scale as f32
        })
        .collect()
}

fn log_softmax(row: &[f64], temp: f64) -> Vec<f64> {
    let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b / temp));
    let lse = m + row.iter().map(|&x| (x / temp - m).exp()).sum::<f64>().ln();
    row.iter().map(|&x| x / temp - lse).collect()
}

/// Mean over rows of (1 − w)·CE + w·T²·KL(softmax(t/T) ‖ softmax(s/T)), all in f64 by hand.
fn reference(s: &[f64], t: &[f64], targets: &[u32], vocab: usize, w: f64, temp: f64) -> f64 {
    let rows = targets.len();
    let mut sum = 0.0;
    for r in 0..rows {
        let (sr, tr) = (
            &s[r * vocab..(r + 1) * vocab],
            &t[r * vocab..(r + 1) * vocab],
        );
        let ce = -log_softmax(sr, 1.0)[targets[r] as usize];
        let (lq, lp) = (log_softmax(sr, temp), log_softmax(tr, temp));
        let kl: f64 = lp.iter().zip(&lq).map(|(p, q)| p.exp() * (p - q)).sum();
        sum += (1.0 - w) * ce + w * temp * temp * kl;
    }
    sum / rows as f64
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[test]
fn the_loss_is_cross_entropy_at_w_0_exactly_and_the_kl_at_w_1() {
    let (rows, vocab) = (9, 301);
    let s = pseudo(rows * vocab, 1, 10.0);
    let t = pseudo(rows * vocab, 2, 14.0);
    let targets: Vec<u32> = (0..rows as u32).map(|r| (r * 37) % vocab as u32).collect();
    let ys = Tensor::new(targets.as_slice(), &Device::Cpu).unwrap();
    let v =
        Var::from_tensor(&Tensor::from_slice(&s, (rows, vocab), &Device::Cpu).unwrap()).unwrap();
    for temp in [1.0f32, 2.0] {
        // w = 0: the cross-entropy itself, value and gradient bit for bit.
        let l = distilled_loss(v.as_tensor(), &ys, &t, 0.0, temp).unwrap();
        let ce = ops::cross_entropy(v.as_tensor(), &ys).unwrap();
        let bits = |x: &Tensor| x.to_scalar::<f32>().unwrap().to_bits();
        assert_eq!(bits(&l.loss), bits(&ce));
        let grad = |x: &Tensor| -> Vec<u32> {
            x.backward()
                .unwrap()
                .get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .into_iter()
                .map(f32::to_bits)
                .collect()
        };
        assert!(
            grad(&l.loss) == grad(&ce),
            "w = 0: the gradient is the cross-entropy's"
        );

        // w = 1: T²·KL, against the f64 log-softmax by hand.
        let l = distilled_loss(v.as_tensor(), &ys, &t, 1.0, temp).unwrap();
        let got = l.loss.to_scalar::<f32>().unwrap() as f64;
        let want = reference(&f64s(&s), &f64s(&t), &targets, vocab, 1.0, temp as f64);
        assert!(
            (got - want).abs() <= 2e-6 * want.abs(),
            "T = {temp}: {got} vs {want}"
        );
        assert_eq!(
            bits(&l.loss),
            bits(&distillation_loss(v.as_tensor(), &t, temp).unwrap())
        );
        // In between: the mixture.
        let l = distilled_loss(v.as_tensor(), &ys, &t, 0.3, temp).unwrap();
        let want = reference(&f64s(&s), &f64s(&t), &targets, vocab, 0.3, temp as f64);
        let got = l.loss.to_scalar::<f32>().unwrap() as f64;
        assert!((got - want).abs() <= 2e-6 * want.abs(), "{got} vs {want}");
    }
}

#[test]
fn the_gradient_wrt_the_student_logits_matches_central_differences() {
    let (rows, vocab) = (4, 29);
    let s = pseudo(rows * vocab, 3, 8.0);
    let t = pseudo(rows * vocab, 4, 8.0);
    let targets = [0u32, 28, 5, 13];
    let ys = Tensor::new(&targets, &Device::Cpu).unwrap();
    let (s64, t64) = (f64s(&s), f64s(&t));
    for temp in [1.0f32, 2.0] {
        for w in [1.0f32, 0.5] {
            let v = Var::from_tensor(&Tensor::from_slice(&s, (rows, vocab), &Device::Cpu).unwrap())
                .unwrap();
            let l = distilled_loss(v.as_tensor(), &ys, &t, w, temp).unwrap();
            let g: Vec<f32> = l
                .loss
                .backward()
                .unwrap()
                .get(v.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let h = 1e-5;
            for i in 0..s.len() {
                let mut p = s64.clone();
                p[i] += h;
                let up = reference(&p, &t64, &targets, vocab, w as f64, temp as f64);
                p[i] -= 2.0 * h;
                let down = reference(&p, &t64, &targets, vocab, w as f64, temp as f64);
                let fd = (up - down) / (2.0 * h);
                assert!(
                    (g[i] as f64 - fd).abs() <= 1e-6 + 1e-4 * fd.abs(),
                    "T = {temp}, w = {w}, logit {i}: autodiff {} vs differences {fd}",
                    g[i]
                );
            }
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gaincell-model/tests/fixtures")
        .join(name)
}

fn software() -> ChipConfig {
    ChipConfig::load("software").unwrap()
}

#[test]
fn gradient_through_a_tiny_model_matches_perturbed_weights() {
    // A Llama student (stories260K's shape, random) distils from the tiny GPT-2 fixture: same 512-token
    // vocabulary, another family, loaded from its HF folder onto the software chip.
    let student = Model::random(ModelConfig::named("stories260K").unwrap(), software(), 5).unwrap();
    let (b, t) = (2, 16);
    let ids: Vec<u32> = (0..b * t).map(|i| ((i * 131 + 7) % 512) as u32).collect();
    let xs = Tensor::from_slice(&ids[..], (b, t), &Device::Cpu).unwrap();
    let ys: Vec<u32> = (0..b * t).map(|i| ((i * 97 + 3) % 512) as u32).collect();
    let ys = Tensor::from_slice(&ys[..], b * t, &Device::Cpu).unwrap();
    let (model, vars) = student.trainable().unwrap();
    // w = 1: the distillation term alone; w = 0.5: the mixture.
    for (weight, temperature) in [(1.0, 2.0), (0.5, 2.0), (1.0, 1.0)] {
        let spec = DistillSpec {
            teacher: fixture("tiny-gpt2"),
            weight,
            temperature,
            chip: None,
        };
        let teacher = Teacher::load(&spec, &student.config, t).unwrap();
        let loss = |m: &Model| -> Tensor {
            let logits = m.forward(&xs).unwrap().reshape((b * t, 512)).unwrap();
            teacher.loss(&logits, &xs, &ys).unwrap().loss
        };
        let l0 = loss(&model);
        // What f32 rounding of the loss leaves in a difference quotient, with room.
        let slack = 5e-6 * l0.to_scalar::<f32>().unwrap() as f64;
        let grads = l0.backward().unwrap();
        for name in [
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.2.mlp.down_proj.weight",
            "model.layers.4.post_attention_layernorm.weight",
            "model.norm.weight",
            "model.embed_tokens.weight",
        ] {
            let (_, var) = vars
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no tensor {name}"));
            let g: Vec<f32> = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            // The weight whose gradient is largest: the clearest signal above f32 rounding.
            let i = (0..g.len())
                .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()))
                .unwrap();
            let shape = var.as_tensor().shape().clone();
            let w0: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let h = 2e-2f32;
            let at = |delta: f32| -> f64 {
                let mut w = w0.clone();
                w[i] += delta;
                var.set(&Tensor::from_vec(w, &shape, &Device::Cpu).unwrap())
                    .unwrap();
                loss(&model).to_scalar::<f32>().unwrap() as f64
            };
            let fd = (at(h) - at(-h)) / (2.0 * h as f64);
            var.set(&Tensor::from_vec(w0, &shape, &Device::Cpu).unwrap())
                .unwrap();
            let ad = g[i] as f64;
            assert!(
                (fd - ad).abs() <= 0.02 * ad.abs() + slack,
                "w = {weight}, T = {temperature}, {name}[{i}]: autodiff {ad} vs differences {fd}"
            );
        }
    }
}

#[test]
fn teachers_that_do_not_fit_are_one_clear_error() {
    let student = ModelConfig::named("stories260K").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // Another vocabulary.
    let other = Gpt2Config {
        vocab_size: 300,
        n_positions: 32,
        n_embd: 16,
        n_layer: 1,
        n_head: 2,
        layer_norm_epsilon: 1e-5,
    };
    let dir = tmp.path().join("other-vocab");
    checkpoint::save(
        &Model::random(other, software(), 1).unwrap(),
        &dir,
        serde_json::json!({}),
    )
    .unwrap();
    let spec = |teacher: PathBuf| DistillSpec {
        teacher,
        weight: 0.5,
        temperature: 1.0,
        chip: None,
    };
    let err = |s: DistillSpec, ctx: usize| {
        Teacher::load(&s, &student, ctx)
            .err()
            .expect("refused")
            .to_string()
    };
    let e = err(spec(dir.clone()), 16);
    assert!(
        e.contains("vocabulary has 300 tokens, the student's 512"),
        "{e}"
    );
    // Nothing there: the message names the path.
    let missing = tmp.path().join("no-such-teacher");
    let e = err(spec(missing.clone()), 16);
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("cannot be loaded"),
        "{e}"
    );
    // Too few positions for the context.
    let e = err(spec(fixture("tiny-gpt2")), 256);
    assert!(e.contains("128 positions"), "{e}");
    // Bad weight and temperature.
    for (w, t, says) in [
        (1.5, 1.0, "weight = 1.5"),
        (-0.5, 1.0, "weight = -0.5"),
        (f64::NAN, 1.0, "weight = NaN"),
        (0.5, 0.0, "temperature = 0"),
        (0.5, -2.0, "temperature = -2"),
        (0.5, f64::NAN, "temperature = NaN"),
    ] {
        let mut s = spec(fixture("tiny-gpt2"));
        (s.weight, s.temperature) = (w, t);
        let e = err(s, 16);
        assert!(e.contains(says), "{e}");
    }
}

fn run_config(dir: &Path, name: &str, steps: usize, distill: &str) -> RunConfig {
    let text = format!(
        "chip = \"software\"\n[model]\nn_layer = 1\nn_head = 2\nn_embd = 16\nn_positions = 16\n\
         [data]\ndir = \"data\"\n[train]\nout = \"{name}\"\nsteps = {steps}\nbatch = 2\nctx = 16\nseed = 3\n\
         eval_every = 4\neval_batches = 1\ncheckpoint_every = 1\n\
         [optim]\nlr = 3e-3\nmin_lr = 3e-4\nwarmup_steps = 2\ndecay_steps = 12\n\
         beta1 = 0.9\nbeta2 = 0.95\neps = 1e-8\nweight_decay = 0.1\ngrad_clip = 1.0\n{distill}"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    RunConfig::load(&path).unwrap()
}

#[test]
fn distilled_runs_resume_bit_for_bit_and_refuse_another_distill_section() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_data(tmp.path());
    let quiet = &mut |_: &Event| {};
    // The teacher: a few plain steps of another seed's model.
    let teacher = run_config(tmp.path(), "teacher", 6, "");
    trainer::train(&teacher, false, quiet).unwrap();
    // Relative to the config file, like every other path.
    let section = "[distill]\nteacher = \"teacher/checkpoint\"\nweight = 0.7\ntemperature = 2.0\n";
    let a = run_config(tmp.path(), "a", 12, section);
    assert_eq!(
        a.distill.as_ref().unwrap().teacher,
        tmp.path().join("teacher/checkpoint")
    );
    trainer::train(&a, false, quiet).unwrap();
    // b: stopped after 5 steps, then resumed to 12 (the schedule spans 12 steps in both).
    let b5 = run_config(tmp.path(), "b", 5, section);
    trainer::train(&b5, false, quiet).unwrap();
    let b = run_config(tmp.path(), "b", 12, section);
    trainer::train(&b, true, quiet).unwrap();
    let lines =
        |run: &str| std::fs::read_to_string(tmp.path().join(run).join("metrics.jsonl")).unwrap();
    let strip = |text: String| -> Vec<String> {
        // The step events, everything but the wall-clock rate (the interrupted run also validated at its end).
        text.lines()
            .filter(|l| l.contains("\"kind\":\"step\""))
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("tokens_per_s");
                v.to_string()
            })
            .collect()
    };
    assert_eq!(strip(lines("a")), strip(lines("b")));
    let weights = |run: &str| {
        std::fs::read(tmp.path().join(run).join("checkpoint/model.safetensors")).unwrap()
    };
    assert!(weights("a") == weights("b"), "final weights differ");
    // The step events carry the distillation loss; validation is plain cross-entropy.
    let events = read_metrics(&tmp.path().join("a")).unwrap();
    let steps: Vec<(f64, f64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Step {
                loss, distill_loss, ..
            } => Some((*loss, distill_loss.expect("distill_loss logged"))),
            _ => None,
        })
        .collect();
    assert_eq!(steps.len(), 12);
    assert!(steps.iter().all(|(l, d)| l.is_finite() && *d > 0.0));
    assert!(lines("teacher")
        .lines()
        .all(|l| !l.contains("distill_loss")));
    // The state records the section; a resume with another one is refused.
    let state = std::fs::read_to_string(tmp.path().join("a/checkpoint/state.json")).unwrap();
    assert!(state.contains("\"distill\""), "{state}");
    for other in [
        "[distill]\nteacher = \"teacher/checkpoint\"\nweight = 0.5\ntemperature = 2.0\n",
        "[distill]\nteacher = \"teacher/checkpoint\"\nweight = 0.7\n",
        "",
    ] {
        let c = run_config(tmp.path(), "a", 12, other);
        let e = trainer::train(&c, true, quiet)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("differs from the one the checkpoint was made with — [distill]:")
                && e.contains("--allow-config-change"),
            "{e}"
        );
    }
    // The same section resumes (nothing left to do).
    let c = run_config(tmp.path(), "a", 12, section);
    assert_eq!(trainer::train(&c, true, quiet).unwrap().steps, 12);
    // A plain run's checkpoint cannot be resumed with a teacher either.
    let c = run_config(tmp.path(), "teacher", 6, section);
    let e = trainer::train(&c, true, quiet)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        e.contains("differs from the one the checkpoint was made with — [distill]:")
            && e.contains("--allow-config-change"),
        "{e}"
    );

    // Checks at the edge, from the config: bad values, and a teacher that is not there.
    for (section, says) in [
        (
            "[distill]\nteacher = \"teacher/checkpoint\"\nweight = 2.0\n",
            "weight = 2",
        ),
        (
            "[distill]\nteacher = \"teacher/checkpoint\"\ntemperature = 0.0\n",
            "temperature = 0",
        ),
        (
            "[distill]\nteacher = \"teacher/checkpoint\"\nweight = nan\n",
            "weight = NaN",
        ),
        (
            "[distill]\nteacher = \"nowhere\"\n",
            "nowhere: cannot be loaded",
        ),
    ] {
        let c = run_config(tmp.path(), "fresh", 2, section);
        let e = trainer::train(&c, false, quiet)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains(says), "{e}");
    }
    let e = RunConfig::from_toml_str(
        "chip = \"software\"\n[model]\n[data]\ndir = \"d\"\n[train]\nout = \"o\"\nsteps = 1\nbatch = 1\nctx = 8\n\
         [distill]\nweight = 0.5\n",
        "x.toml",
    )
    .expect_err("teacher is required")
    .to_string();
    assert!(e.contains("teacher"), "{e}");
}

#[test]
fn metrics_written_before_distillation_still_parse() {
    let old = r#"{"kind":"step","step":3,"loss":2.5,"lr":0.001,"grad_norm":0.7,"tokens":96,"tokens_per_s":1000.0}"#;
    let ev: Event = serde_json::from_str(old).unwrap();
    assert!(matches!(
        ev,
        Event::Step {
            step: 3,
            distill_loss: None,
            ..
        }
    ));
    // And a run without a teacher writes the same line as before (no distill_loss field).
    assert_eq!(serde_json::to_string(&ev).unwrap(), old);
}

fn pipeline_text(distill: &str) -> String {
    let chip = |base: &str| {
        format!(
            "{{ base = \"{base}\", geometry = {{ head_dim = 8, window = 16, tile_rows = 8 }} }}"
        )
    };
    let optim =
        "lr = 3e-3\nmin_lr = 3e-4\nwarmup_steps = 1\ndecay_steps = 6\nbeta1 = 0.9\nbeta2 = 0.95\n\
                 eps = 1e-8\nweight_decay = 0.1\ngrad_clip = 1.0\n";
    format!(
        "out = \"pipe\"\n[data]\ndir = \"data\"\n[model]\nn_layer = 1\nn_head = 2\nn_embd = 16\nn_positions = 16\n\
         [chips]\nsoftware = \"software\"\nlinear = {}\nnonlinear = {}\n\
         [schedule]\nbatch = 2\nctx = 16\nseed = 3\neval_every = 2\neval_batches = 1\ncheckpoint_every = 2\n\
         pretrain_steps = 6\nlinear_steps = 2\nnonlinear_steps = 2\nscratch_steps = 2\n\
         [optim]\n{optim}[finetune]\n{optim}[adapt]\nbatch = 2\nmax_iterations = 3\neps = 1e-4\n{distill}",
        chip("paper-linear"),
        chip("paper-nonlinear")
    )
}

#[test]
fn the_pipeline_distils_every_stage_after_pretraining_from_the_software_model() {
    use gaincell_train::pipeline::{self, PipelineConfig};
    let tmp = tempfile::tempdir().unwrap();
    tiny_data(tmp.path());
    let path = tmp.path().join("pipeline.toml");
    std::fs::write(
        &path,
        pipeline_text("[distill]\nweight = 0.4\ntemperature = 1.5\n"),
    )
    .unwrap();
    let c = PipelineConfig::load(&path).unwrap();
    let r = pipeline::run(&c, &mut |_| {}).unwrap();
    assert_eq!(r.stages.len(), 5);
    let out = tmp.path().join("pipe");
    let software = out.join("software/checkpoint");
    for stage in ["software", "linear", "nonlinear", "direct", "scratch"] {
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(stage).join("checkpoint/state.json")).unwrap(),
        )
        .unwrap();
        let d = &state["config"]["distill"];
        let steps: Vec<Event> = read_metrics(&out.join(stage)).unwrap();
        let logged = steps
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::Step {
                        distill_loss: Some(_),
                        ..
                    }
                )
            })
            .count();
        if stage == "software" {
            assert!(d.is_null(), "pre-training does not distil: {d}");
            assert_eq!(logged, 0);
        } else {
            assert_eq!(
                d["teacher"].as_str().unwrap(),
                software.display().to_string(),
                "{stage}: the teacher is the software model"
            );
            assert_eq!(
                (d["weight"].as_f64(), d["temperature"].as_f64()),
                (Some(0.4), Some(1.5))
            );
            assert_eq!(
                logged,
                r.stage(stage).unwrap().steps,
                "{stage}: every step logs its distillation loss"
            );
        }
    }

    // A named teacher is relative to the pipeline file; bad values are refused when the file is read.
    std::fs::write(
        &path,
        pipeline_text("[distill]\nteacher = \"elsewhere/teacher\"\nchip = \"chips/t.toml\"\n"),
    )
    .unwrap();
    let d = PipelineConfig::load(&path).unwrap().distill.unwrap();
    assert_eq!(d.teacher.unwrap(), tmp.path().join("elsewhere/teacher"));
    assert_eq!(
        d.chip.unwrap().as_str().unwrap(),
        tmp.path().join("chips/t.toml").display().to_string()
    );
    assert_eq!((d.weight, d.temperature), (0.5, 1.0), "the defaults");
    for (section, says) in [
        ("[distill]\nweight = 1.01\n", "[distill] weight = 1.01"),
        (
            "[distill]\ntemperature = -1.0\n",
            "[distill] temperature = -1",
        ),
        ("[distill]\ntemprature = 2.0\n", "temprature"),
    ] {
        std::fs::write(&path, pipeline_text(section)).unwrap();
        let e = PipelineConfig::load(&path)
            .expect_err("refused")
            .to_string();
        assert!(e.contains(says), "{e}");
    }
}
