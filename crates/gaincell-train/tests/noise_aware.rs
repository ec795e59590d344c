//! Hardware-aware training on a noisy chip: every micro-batch draws a fresh chip instance keyed by the run's seed
//! and the micro-batch's index, so an interrupted and resumed run is bit-identical to an unbroken one, and the
//! noise changes what is learnt (the same run on the noise-free chip ends elsewhere).

mod common;

use std::path::Path;

use common::tiny_data;
use gaincell_train::trainer::{self, instance_seed, Event, RunConfig};

fn run_config(dir: &Path, name: &str, steps: usize, noise: &str) -> RunConfig {
    let text = format!(
        "[chip]\nbase = \"paper-nonlinear\"\n[chip.geometry]\nhead_dim = 8\nwindow = 16\ntile_rows = 8\n{noise}\
         [model]\nn_layer = 1\nn_head = 2\nn_embd = 16\nn_positions = 16\n\
         [data]\ndir = \"data\"\n[train]\nout = \"{name}\"\nsteps = {steps}\nbatch = 2\nctx = 16\nseed = 3\n\
         eval_every = 4\neval_batches = 1\ncheckpoint_every = 1\ngrad_accum = 2\n\
         [optim]\nlr = 3e-3\nmin_lr = 3e-4\nwarmup_steps = 2\ndecay_steps = 8\n\
         beta1 = 0.9\nbeta2 = 0.95\neps = 1e-8\nweight_decay = 0.1\ngrad_clip = 1.0\n"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    RunConfig::load(&path).unwrap()
}

const NOISE: &str = "[chip.noise]\nscore_read_sigma_ua = 3.0\nwrite_sigma_v = 0.02\n\
                     [chip.variation]\ncell_gain_sigma = 0.1\n";

#[test]
fn noisy_training_draws_per_micro_batch_and_resumes_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_data(tmp.path());
    let quiet = &mut |_: &Event| {};
    trainer::train(&run_config(tmp.path(), "a", 8, NOISE), false, quiet).unwrap();
    trainer::train(&run_config(tmp.path(), "b", 3, NOISE), false, quiet).unwrap();
    trainer::train(&run_config(tmp.path(), "b", 8, NOISE), true, quiet).unwrap();
    trainer::train(&run_config(tmp.path(), "clean", 8, ""), false, quiet).unwrap();
    // The chip file's own instance seeds do not matter to training: every micro-batch replaces them.
    let seeded = NOISE.replace(
        "[chip.variation]\n",
        "seed = 7\n[chip.variation]\nseed = 7\n",
    );
    assert!(seeded.contains("seed = 7"));
    trainer::train(&run_config(tmp.path(), "seeded", 8, &seeded), false, quiet).unwrap();
    let weights = |run: &str| {
        std::fs::read(tmp.path().join(run).join("checkpoint/model.safetensors")).unwrap()
    };
    assert!(weights("a") == weights("b"), "resumed noisy run differs");
    assert!(
        weights("a") != weights("clean"),
        "the noise changed nothing"
    );
    assert!(
        weights("a") == weights("seeded"),
        "training used the configured instance instead of a fresh one per micro-batch"
    );
    // Distinct micro-batches draw distinct instances.
    let seeds: std::collections::BTreeSet<u64> = (0..1000).map(|i| instance_seed(3, i)).collect();
    assert_eq!(seeds.len(), 1000);
    assert_ne!(instance_seed(3, 0), instance_seed(4, 0));
}
