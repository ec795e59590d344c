//! Gradients through the model's attention op (candle autodiff + our backward): softmax against central
//! differences of the f64 reference, gain-cell against the kernel's surrogate, and training's plumbing (every
//! parameter of a tiny model, scalers included, receives a gradient).

use candle_core::{Device, Tensor, Var};
use gaincell_attn::{reference, Shape};
use gaincell_chip::ChipConfig;
use gaincell_model::{Attention, Gpt2Config, Model};
use rand::{Rng, SeedableRng};

fn rand_vec(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(lo..hi)).collect()
}

fn check_softmax(window: usize) {
    let (b, h, t, d) = (1, 2, 21, 8);
    let n = b * h * t * d;
    let shape = Shape::new(b * h, t, d);
    let ins = [
        rand_vec(n, -1.5, 1.5, 1),
        rand_vec(n, -1.5, 1.5, 2),
        rand_vec(n, -1.0, 1.0, 3),
    ];
    let w = rand_vec(n, -1.0, 1.0, 4);
    let att = Attention::Softmax { window };
    let vars: Vec<Var> = ins
        .iter()
        .map(|x| {
            Var::from_tensor(&Tensor::from_vec(x.clone(), (b, h, t, d), &Device::Cpu).unwrap())
                .unwrap()
        })
        .collect();
    let wt = Tensor::from_vec(w.clone(), (b, h, t, d), &Device::Cpu).unwrap();
    let out = att
        .forward(
            vars[0].as_tensor(),
            vars[1].as_tensor(),
            vars[2].as_tensor(),
        )
        .unwrap();
    let grads = (out * &wt).unwrap().sum_all().unwrap().backward().unwrap();
    let loss = |x: &[Vec<f32>; 3]| -> f64 {
        reference::softmax(shape, window, &x[0], &x[1], &x[2])
            .iter()
            .zip(&w)
            .map(|(o, w)| o * *w as f64)
            .sum()
    };
    let mut worst = 0.0f64;
    for (which, var) in vars.iter().enumerate() {
        let g: Vec<f32> = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let scale = g.iter().fold(0.0f32, |a, &x| a.max(x.abs())) as f64;
        for i in (0..n).step_by(7) {
            let mut x = ins.clone();
            let x0 = x[which][i];
            x[which][i] = x0 + 1e-3;
            let (up, hu) = (loss(&x), x[which][i] as f64 - x0 as f64);
            x[which][i] = x0 - 1e-3;
            let (down, hd) = (loss(&x), x0 as f64 - x[which][i] as f64);
            let fd = (up - down) / (hu + hd);
            let err = (g[i] as f64 - fd).abs() / fd.abs().max(1e-2 * scale);
            worst = worst.max(err);
            assert!(
                err < 1e-3,
                "input {which}[{i}]: analytic {} vs finite difference {fd}",
                g[i]
            );
        }
    }
    eprintln!("softmax (window {window}): worst relative error {worst:.1e}");
}

#[test]
fn softmax_attention_gradient_matches_finite_differences() {
    check_softmax(0);
    check_softmax(5);
}

#[test]
fn gain_cell_op_gradient_is_the_kernel_surrogate() {
    let chip = ChipConfig::from_toml_str(
        "base = \"paper-nonlinear\"\n[geometry]\nhead_dim = 16\nwindow = 64\ntile_rows = 32",
        "t",
    )
    .unwrap();
    let att = Attention::from_chip(&chip, 16).unwrap();
    let (b, h, t, d) = (2, 2, 100, 16);
    let n = b * h * t * d;
    let ins = [
        rand_vec(n, -0.05, 1.05, 5),
        rand_vec(n, 0.0, 0.9, 6),
        rand_vec(n, 0.0, 0.9, 7),
    ];
    let go = rand_vec(n, -1.0, 1.0, 8);
    let vars: Vec<Var> = ins
        .iter()
        .map(|x| {
            Var::from_tensor(&Tensor::from_vec(x.clone(), (b, h, t, d), &Device::Cpu).unwrap())
                .unwrap()
        })
        .collect();
    let out = att
        .forward(
            vars[0].as_tensor(),
            vars[1].as_tensor(),
            vars[2].as_tensor(),
        )
        .unwrap();
    let gt = Tensor::from_vec(go.clone(), (b, h, t, d), &Device::Cpu).unwrap();
    let grads = (out * gt).unwrap().sum_all().unwrap().backward().unwrap();
    let p = gaincell_attn::GainCellParams::new(&chip).unwrap();
    let want = gaincell_attn::gain_cell_backward(
        &p,
        Shape::new(b * h, t, d),
        &ins[0],
        &ins[1],
        &ins[2],
        &go,
    )
    .unwrap();
    for (var, want) in vars.iter().zip([&want.q, &want.k, &want.v]) {
        let got: Vec<f32> = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(&got, want);
    }
}

#[test]
fn every_parameter_of_a_chip_model_gets_a_gradient() {
    let config = Gpt2Config {
        vocab_size: 50,
        n_positions: 32,
        n_embd: 32,
        n_layer: 2,
        n_head: 2,
        ..Gpt2Config::named("gpt2").unwrap()
    };
    // Unquantised: a random model's tiny queries would otherwise all round to 0 and leave the attention output 0
    // (then the output projection rightly gets no gradient).
    let chip = ChipConfig::from_toml_str(
        "base = \"paper-linear\"\n[geometry]\nhead_dim = 16\nwindow = 16\ntile_rows = 8\n[query]\nquantize = false\n[key]\nquantize = false\n[value]\nquantize = false\n[output]\nquantize = false",
        "t",
    )
    .unwrap();
    let model = Model::random(config, chip, 3).unwrap();
    let (m, vars) = model.trainable().unwrap();
    let ids: Vec<u32> = (0..2 * 24).map(|i| (i * 7 % 50) as u32).collect();
    let ids = Tensor::from_vec(ids, (2, 24), &Device::Cpu).unwrap();
    let logits = m.forward(&ids).unwrap().flatten_to(1).unwrap();
    let targets = Tensor::from_vec(
        (0..48u32).map(|i| (i * 3) % 50).collect::<Vec<_>>(),
        48,
        &Device::Cpu,
    )
    .unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &targets).unwrap();
    let grads = loss.backward().unwrap();
    assert!(vars.iter().any(|(n, _)| n.contains("scaler.q.a")));
    for (name, var) in &vars {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            norm.is_finite() && norm > 0.0,
            "{name}: gradient norm {norm}"
        );
    }
}
