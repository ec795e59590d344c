//! Class "no silent nonsense": a result that would be NaN or infinite is an error naming the stage, never a
//! number printed or a file written, and the inputs stay as they were.

mod common;

use std::path::Path;

use common::gaincell;
use ndarray::{ArrayD, IxDyn};

fn save(path: &Path, shape: &[usize], data: Vec<f32>) {
    ndarray_npy::write_npy(path, &ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()).unwrap();
}

#[test]
fn attention_whose_scores_overflow_writes_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    // A cell curve of 3·10³⁸·y: every current is finite, their sum over a column is not in f32.
    std::fs::write(
        dir.path().join("chip.toml"),
        "base = \"paper-nonlinear\"\n[geometry]\nhead_dim = 8\n[cell]\nkind = \"polynomial\"\ncoefficients = [0.0, 3e38]\n",
    )
    .unwrap();
    let (t, d) = (4, 8);
    for name in ["q", "k", "v"] {
        save(
            &dir.path().join(format!("{name}.npy")),
            &[t, d],
            vec![0.8; t * d],
        );
    }
    let inputs: Vec<Vec<u8>> = ["q", "k", "v"]
        .iter()
        .map(|n| std::fs::read(p(&format!("{n}.npy"))).unwrap())
        .collect();
    let out = gaincell(&[
        "attention",
        "--chip",
        &p("chip.toml"),
        "--q",
        &p("q.npy"),
        "--k",
        &p("k.npy"),
        "--v",
        &p("v.npy"),
        "--out-dir",
        &p("sim"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("scores.npy: the computed array holds inf")
            && err.contains("nothing was written"),
        "{err}"
    );
    for f in ["scores.npy", "phi.npy", "out.npy"] {
        assert!(!dir.path().join("sim").join(f).exists(), "{f} was written");
    }
    for (n, before) in ["q", "k", "v"].iter().zip(inputs) {
        assert_eq!(std::fs::read(p(&format!("{n}.npy"))).unwrap(), before);
    }
}

#[test]
fn a_checkpoint_with_a_nan_weight_is_refused_naming_the_tensor() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/stories260k/software");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    common::copy_dir(&shipped, &model);
    let weights = model.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).unwrap();
    let name = "model.layers.1.mlp.down_proj.weight";
    let t = &tensors[name];
    let mut v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v[5] = f32::NAN;
    let damaged = candle_core::Tensor::from_vec(v, t.dims(), &candle_core::Device::Cpu).unwrap();
    tensors.insert(name.to_string(), damaged);
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let before = std::fs::read(&weights).unwrap();
    let out = gaincell(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "Once upon a time",
        "-n",
        "3",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("tensor {name} holds NaN at element 5")),
        "{err}"
    );
    assert_eq!(std::fs::read(&weights).unwrap(), before);
}
