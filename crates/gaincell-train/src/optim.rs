//! AdamW with decoupled weight decay on matrices only, global-norm gradient clipping and a linear warm-up +
//! cosine learning-rate schedule (nanoGPT's recipe). Written here rather than taken from candle-nn because a
//! resumable run must save and restore the moment estimates, which candle-nn's `AdamW` keeps private.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{backprop::GradStore, CpuStorage, Storage, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    pub lr: f64,
    /// The learning rate the cosine decays to.
    pub min_lr: f64,
    pub warmup_steps: usize,
    /// Steps of the cosine (usually the run's length); after it the rate stays at `min_lr`.
    pub decay_steps: usize,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay, applied to tensors of rank ≥ 2 only (not to biases, norms or scalers).
    pub weight_decay: f64,
    /// Global gradient-norm clip (0: off).
    pub grad_clip: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 6e-4,
            min_lr: 6e-5,
            warmup_steps: 100,
            decay_steps: 1000,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
        }
    }
}

impl AdamWConfig {
    /// Refuse settings AdamW cannot run with; `section` names the TOML table in the message (`[optim]`).
    pub fn validate(&self, section: &str) -> Result<()> {
        let bad = |what: &str, v: f64| {
            Err(TrainError::Input(format!(
                "{section}: {what} (got {v}); fix it in the config"
            )))
        };
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr must be a positive number", self.lr);
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return bad("min_lr must be in [0, lr]", self.min_lr);
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(&format!("{name} must be in [0, 1)"), b);
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps must be a positive number", self.eps);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight_decay must be ≥ 0", self.weight_decay);
        }
        if !(self.grad_clip.is_finite() && self.grad_clip >= 0.0) {
            return bad(
                "grad_clip must be ≥ 0 (0 turns clipping off)",
                self.grad_clip,
            );
        }
        Ok(())
    }

    /// Learning rate at `step` (0-based): linear warm-up from lr/warmup to lr, then cosine to `min_lr`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        if step >= self.decay_steps {
            return self.min_lr;
        }
        let span = (self.decay_steps - self.warmup_steps).max(1) as f64;
        let progress = (step - self.warmup_steps) as f64 / span;
        self.min_lr
            + 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()) * (self.lr - self.min_lr)
    }
}

/// One parameter and its moments.
struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

pub struct AdamW {
    pub config: AdamWConfig,
    /// Optimiser steps taken.
    pub step: usize,
    slots: Vec<Slot>,
    /// Update f32 CPU tensors in one pass each ([`fused_slot_step`]); off, or on other tensors, the same
    /// arithmetic as candle ops (the tests check the two agree bit for bit).
    fused: bool,
}

impl AdamW {
    pub fn new(vars: &[(String, Var)], config: AdamWConfig) -> Result<Self> {
        let slots = vars
            .iter()
            .map(|(name, var)| {
                Ok(Slot {
                    name: name.clone(),
                    var: var.clone(),
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
                    decay: var.rank() >= 2,
                })
            })
            .collect::<Result<_>>()?;
        Ok(AdamW {
            config,
            step: 0,
            slots,
            fused: true,
        })
    }

    /// Global L2 norm of the gradients of our parameters.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut sq = 0.0f64;
        for s in &self.slots {
            if let Some(g) = grads.get(s.var.as_tensor()) {
                sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        Ok(sq.sqrt())
    }

    /// Clip, then take one step at the scheduled learning rate. Returns (learning rate, gradient norm before
    /// clipping). Parameters without a gradient keep their values and moments.
    pub fn step(&mut self, grads: &GradStore) -> Result<(f64, f64)> {
        let c = &self.config;
        let norm = self.grad_norm(grads)?;
        if !norm.is_finite() {
            return Err(TrainError::Input(format!(
                "gradient norm is {norm} at step {}: lower the learning rate or check the data",
                self.step
            )));
        }
        let clip = if c.grad_clip > 0.0 && norm > c.grad_clip {
            c.grad_clip / norm
        } else {
            1.0
        };
        let lr = c.lr_at(self.step);
        self.step += 1;
        let t = self.step as i32;
        let (bc1, bc2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        let k = StepConstants {
            clip,
            beta1: c.beta1,
            beta2: c.beta2,
            bc1,
            bc2,
            eps: c.eps,
            lr,
            weight_decay: c.weight_decay,
        };
        for s in &mut self.slots {
            let Some(g) = grads.get(s.var.as_tensor()) else {
                continue;
            };
            // Detached: a gradient computed from tracked tensors carries the backward graph, and moments built
            // from it would chain every step's graph to the next (a leak of ~1 GB per step, measured).
            let g = g.detach();
            if !(self.fused && fused_slot_step(s, &g, &k)?) {
                composed_slot_step(s, &g, &k)?;
            }
        }
        Ok((lr, norm))
    }

    /// The moments as named tensors (`m.NAME`, `v.NAME`), for a checkpoint.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for s in &self.slots {
            out.insert(format!("m.{}", s.name), s.m.clone());
            out.insert(format!("v.{}", s.name), s.v.clone());
        }
        out
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        candle_core::safetensors::save(&self.state_tensors(), path)?;
        Ok(())
    }

    /// Restore moments written by [`AdamW::save`] and the step count; every parameter must be there with its shape.
    pub fn load(&mut self, path: &Path, step: usize) -> Result<()> {
        let t = candle_core::safetensors::load(path, &candle_core::Device::Cpu).map_err(|e| {
            TrainError::Input(format!(
                "{}: unreadable optimiser state ({e}); the checkpoint is damaged",
                path.display()
            ))
        })?;
        for s in &mut self.slots {
            for (key, dst) in [
                (format!("m.{}", s.name), &mut s.m),
                (format!("v.{}", s.name), &mut s.v),
            ] {
                let x = t.get(&key).ok_or_else(|| {
                    TrainError::Input(format!(
                        "{}: no `{key}` (a checkpoint of another model?)",
                        path.display()
                    ))
                })?;
                if x.dims() != dst.dims() {
                    return Err(TrainError::Input(format!(
                        "{}: `{key}` has shape {:?}, the model needs {:?}",
                        path.display(),
                        x.dims(),
                        dst.dims()
                    )));
                }
                *dst = x.clone();
            }
        }
        self.step = step;
        Ok(())
    }
}

/// The scalars of one optimiser step.
struct StepConstants {
    clip: f64,
    beta1: f64,
    beta2: f64,
    /// Bias corrections 1 − β^t.
    bc1: f64,
    bc2: f64,
    eps: f64,
    lr: f64,
    weight_decay: f64,
}

/// One slot's step as candle ops: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ·(1 − lr·wd) − lr·m̂/(√v̂ + ε).
fn composed_slot_step(s: &mut Slot, g: &Tensor, k: &StepConstants) -> Result<()> {
    let g = (g * k.clip)?;
    s.m = ((&s.m * k.beta1)? + (&g * (1.0 - k.beta1))?)?;
    s.v = ((&s.v * k.beta2)? + (g.sqr()? * (1.0 - k.beta2))?)?;
    let update = ((&s.m / k.bc1)? / ((&s.v / k.bc2)?.sqrt()? + k.eps)?)?;
    let theta = s.var.as_tensor().detach();
    let decayed = if s.decay {
        (theta * (1.0 - k.lr * k.weight_decay))?
    } else {
        theta
    };
    s.var.set(&(decayed - (update * k.lr)?)?)?;
    Ok(())
}

/// The contiguous f32 CPU contents of a tensor, if it has them.
fn cpu_f32(t: &Tensor) -> Option<Vec<f32>> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
        return None;
    };
    let (a, b) = layout.contiguous_offsets()?;
    Some(data[a..b].to_vec())
}

/// [`composed_slot_step`] in one parallel pass over θ, g, m and v, with each operation in the same order and f32
/// constants as candle's (`x * c` is `x·c + 0`, `x / c` is `x·(1/c) + 0`, `x + c` is `x·1 + c`), so the two agree
/// bit for bit; the composed form makes twelve passes and as many allocations. `false`: not f32 CPU tensors.
fn fused_slot_step(s: &mut Slot, g: &Tensor, k: &StepConstants) -> Result<bool> {
    let (Some(mut theta), Some(g), Some(mut m), Some(mut v)) = (
        cpu_f32(s.var.as_tensor()),
        cpu_f32(g),
        cpu_f32(&s.m),
        cpu_f32(&s.v),
    ) else {
        return Ok(false);
    };
    if g.len() != theta.len() || m.len() != theta.len() || v.len() != theta.len() {
        return Ok(false);
    }
    let f = |x: f64| x as f32;
    let (clip, b1, nb1, b2, nb2) = (
        f(k.clip),
        f(k.beta1),
        f(1.0 - k.beta1),
        f(k.beta2),
        f(1.0 - k.beta2),
    );
    let (ibc1, ibc2, eps, lr) = (f(1.0 / k.bc1), f(1.0 / k.bc2), f(k.eps), f(k.lr));
    let decay = s.decay.then(|| f(1.0 - k.lr * k.weight_decay));
    const CHUNK: usize = 1 << 14;
    theta
        .par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .zip(g.par_chunks(CHUNK))
        .for_each(|((theta, (m, v)), g)| {
            for i in 0..theta.len() {
                let gi = g[i] * clip + 0.0;
                m[i] = (m[i] * b1 + 0.0) + (gi * nb1 + 0.0);
                v[i] = (v[i] * b2 + 0.0) + ((gi * gi) * nb2 + 0.0);
                let update = (m[i] * ibc1 + 0.0) / (((v[i] * ibc2 + 0.0).sqrt()) * 1.0 + eps);
                let decayed = match decay {
                    Some(d) => theta[i] * d + 0.0,
                    None => theta[i],
                };
                theta[i] = decayed - (update * lr + 0.0);
            }
        });
    let shape = s.var.shape().clone();
    let device = s.var.device().clone();
    s.m = Tensor::from_vec(m, &shape, &device)?;
    s.v = Tensor::from_vec(v, &shape, &device)?;
    s.var.set(&Tensor::from_vec(theta, &shape, &device)?)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_warms_up_linearly_then_follows_the_cosine() {
        let c = AdamWConfig {
            lr: 1.0,
            min_lr: 0.1,
            warmup_steps: 10,
            decay_steps: 110,
            ..Default::default()
        };
        assert!((c.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(9) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(10) - 1.0).abs() < 1e-12);
        assert!(
            (c.lr_at(60) - 0.55).abs() < 1e-12,
            "half way: the mean of lr and min_lr"
        );
        assert!((c.lr_at(110) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(500) - 0.1).abs() < 1e-12);
    }

    /// One step by hand: m = (1−β1)g, v = (1−β2)g², bias-corrected update = g/(|g| + ε) = sign(g) (for ε ≪ |g|),
    /// decay only on the matrix.
    #[test]
    fn one_step_matches_the_formula_with_decay_on_matrices_only() {
        let dev = Device::Cpu;
        let w = Var::new(&[[1.0f32, -2.0], [3.0, 0.5]], &dev).unwrap();
        let b = Var::new(&[1.0f32, 1.0], &dev).unwrap();
        let vars = vec![("w".to_string(), w.clone()), ("b".to_string(), b.clone())];
        let c = AdamWConfig {
            lr: 0.1,
            min_lr: 0.1,
            warmup_steps: 0,
            decay_steps: 0,
            weight_decay: 0.5,
            grad_clip: 0.0,
            ..Default::default()
        };
        let mut opt = AdamW::new(&vars, c).unwrap();
        // loss = Σ w·[1, −1; 2, 0] + Σ b·[−3, 4]: constant gradients.
        let gw = Tensor::new(&[[1.0f32, -1.0], [2.0, 0.0]], &dev).unwrap();
        let gb = Tensor::new(&[-3.0f32, 4.0], &dev).unwrap();
        let loss = ((w.as_tensor() * &gw).unwrap().sum_all().unwrap()
            + (b.as_tensor() * &gb).unwrap().sum_all().unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();
        opt.step(&grads).unwrap();
        let w1 = w.as_tensor().to_vec2::<f32>().unwrap();
        let want_w = [
            [1.0 * 0.95 - 0.1, -2.0 * 0.95 + 0.1],
            [3.0 * 0.95 - 0.1, 0.5 * 0.95],
        ];
        for i in 0..2 {
            for j in 0..2 {
                assert!(
                    (w1[i][j] - want_w[i][j]).abs() < 1e-5,
                    "{w1:?} vs {want_w:?}"
                );
            }
        }
        assert_eq!(b.as_tensor().to_vec1::<f32>().unwrap(), vec![1.1, 0.9]);
    }

    #[test]
    fn fused_step_equals_the_composed_candle_ops_bit_for_bit() {
        let dev = Device::Cpu;
        // Odd sizes (not a multiple of the chunk), a matrix (decayed) and a vector; clipping active; 5 steps so
        // the moments and bias corrections move.
        let init = |n: usize, k: usize| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * k) % 113) as f32 * 0.017 - 0.9)
                .collect()
        };
        let run = |fused: bool| {
            let w = Var::from_tensor(&Tensor::from_vec(init(37 * 29, 7), (37, 29), &dev).unwrap())
                .unwrap();
            let b = Var::from_tensor(&Tensor::from_vec(init(29, 3), 29, &dev).unwrap()).unwrap();
            let vars = vec![("w".to_string(), w.clone()), ("b".to_string(), b.clone())];
            let c = AdamWConfig {
                lr: 3e-2,
                warmup_steps: 2,
                grad_clip: 0.5,
                weight_decay: 0.1,
                ..Default::default()
            };
            let mut opt = AdamW::new(&vars, c).unwrap();
            opt.fused = fused;
            for step in 0..5 {
                let target = Tensor::from_vec(init(37 * 29, 11 + step), (37, 29), &dev).unwrap();
                let y = w.as_tensor().broadcast_add(b.as_tensor()).unwrap();
                let loss = (y - &target).unwrap().sqr().unwrap().sum_all().unwrap();
                opt.step(&loss.backward().unwrap()).unwrap();
            }
            let state: Vec<Vec<f32>> = [
                w.as_tensor(),
                b.as_tensor(),
                &opt.slots[0].m,
                &opt.slots[1].v,
            ]
            .iter()
            .map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect();
            state
        };
        let (fused, composed) = (run(true), run(false));
        for (f, c) in fused.iter().zip(&composed) {
            let (fb, cb): (Vec<u32>, Vec<u32>) = (
                f.iter().map(|x| x.to_bits()).collect(),
                c.iter().map(|x| x.to_bits()).collect(),
            );
            assert_eq!(fb, cb);
        }
        assert_ne!(fused[0], init(37 * 29, 7), "the weights moved");
    }

    #[test]
    fn clipping_scales_the_gradient_to_the_norm() {
        let dev = Device::Cpu;
        let x = Var::new(&[0.0f32, 0.0], &dev).unwrap();
        let vars = vec![("x".to_string(), x.clone())];
        let c = AdamWConfig {
            grad_clip: 1.0,
            ..Default::default()
        };
        let opt = AdamW::new(&vars, c).unwrap();
        let loss = (x.as_tensor() * Tensor::new(&[3.0f32, 4.0], &dev).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        assert!((opt.grad_norm(&grads).unwrap() - 5.0).abs() < 1e-6);
    }

    #[test]
    fn moments_keep_values_not_the_autodiff_graph() {
        let dev = Device::Cpu;
        let w = Var::new(&[1.0f32, 2.0], &dev).unwrap();
        let vars = vec![("w".to_string(), w.clone())];
        let mut opt = AdamW::new(&vars, AdamWConfig::default()).unwrap();
        for _ in 0..3 {
            // d(Σw²)/dw = 2w is computed from the tracked var: the gradient itself carries a graph.
            let grads = w
                .as_tensor()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            assert!(grads.get(w.as_tensor()).unwrap().track_op());
            opt.step(&grads).unwrap();
            assert!(
                opt.state_tensors().values().all(|t| !t.track_op()),
                "a moment holds a graph"
            );
        }
    }
}
