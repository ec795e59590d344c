//! The adaptation algorithm (docs/mapping.md#adaptation): a linear model's weights loaded into the nonlinear
//! model, then, on one fixed batch and without gradients, every per-head scaler (a, b) of q, k, v and the head
//! output is moved so that the statistics of the scaled values match the targets recorded while the linear model
//! trained:
//!
//! a ← α·a·σ_target/σ_current + (1 − α)·a (skipped when σ_current = 0),
//! b ← α·(b + μ_target − μ_current) + (1 − α)·b,
//!
//! each only while its error exceeds ε; α falls linearly from 1.0 to 0.1 over 50 iterations; the loop stops when
//! every error is within ε or after 100 iterations.

use candle_core::{Device, Tensor};
use gaincell_model::{Model, Site};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::stats::{HeadStats, Recorder};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdaptOptions {
    pub max_iterations: usize,
    pub alpha_start: f64,
    pub alpha_end: f64,
    /// Iterations over which α falls from `alpha_start` to `alpha_end`.
    pub alpha_iterations: usize,
    pub eps: f64,
}

impl Default for AdaptOptions {
    fn default() -> Self {
        AdaptOptions {
            max_iterations: 100,
            alpha_start: 1.0,
            alpha_end: 0.1,
            alpha_iterations: 50,
            eps: 1e-4,
        }
    }
}

impl AdaptOptions {
    /// α at iteration `i` (0-based).
    pub fn alpha(&self, i: usize) -> f64 {
        let f = (i as f64 / self.alpha_iterations.max(1) as f64).min(1.0);
        self.alpha_start + (self.alpha_end - self.alpha_start) * f
    }
}

/// One iteration: the loss and worst errors measured by its forward pass (before its update).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Iteration {
    pub iteration: usize,
    pub loss: f64,
    pub alpha: f64,
    pub worst_mean_error: f64,
    pub worst_std_error: f64,
    /// Scalers (a or b) changed by this iteration.
    pub updated: usize,
}

/// The outcome of [`adapt`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Adaptation {
    pub iterations: Vec<Iteration>,
    pub loss_before: f64,
    pub loss_after: f64,
    pub converged: bool,
}

/// Loss and statistics of one forward pass on the fixed batch.
fn measure(model: &Model, x: &Tensor, y: &Tensor) -> Result<(f64, HeadStats)> {
    let mut rec = Recorder::new(model.config.n_layer());
    let hidden = model.hidden_probed(x, &mut |l, s, t| rec.record(l, s, t))?;
    let (rows, ctx) = x.dims2()?;
    let logits = model
        .head(&hidden)?
        .reshape((rows * ctx, model.config.vocab_size()))?;
    let loss = gaincell_model::ops::cross_entropy(&logits, y)?.to_scalar::<f32>()? as f64;
    if !loss.is_finite() {
        return Err(TrainError::Input(format!(
            "adaptation: the loss on the calibration batch is {loss} (the chip's outputs or the scalers overflowed): check that the checkpoint trained on the linear chip evaluates finitely"
        )));
    }
    if let Some(bad) = non_finite(&rec.stats) {
        return Err(TrainError::Input(format!(
            "adaptation: the measured statistics are not finite at {bad}: the attention inputs overflowed; check the checkpoint and the chip"
        )));
    }
    Ok((loss, rec.stats))
}

/// The first head whose statistics are NaN or infinite, as `site q, layer 0, head 1`.
pub fn non_finite(stats: &HeadStats) -> Option<String> {
    for s in Site::ALL {
        let m = stats.site(s);
        for (what, table) in [("mean", &m.mean), ("std", &m.std)] {
            for (l, heads) in table.iter().enumerate() {
                if let Some(h) = heads.iter().position(|x| !x.is_finite()) {
                    return Some(format!("site {}, layer {l}, head {h} ({what})", s.name()));
                }
            }
        }
    }
    None
}

/// Loss and per-head statistics of `model` on the batch `x → y` (`rows × ctx` token ids): what each adaptation
/// iteration measures, for a caller that needs a reference (e.g. the linear model on the same batch).
pub fn measure_batch(model: &Model, x: &[u32], y: &[u32], rows: usize) -> Result<(f64, HeadStats)> {
    let (xs, ys) = batch_tensors(x, y, rows)?;
    measure(model, &xs, &ys)
}

/// Inputs `[rows, ctx]` and flat targets of a batch.
fn batch_tensors(x: &[u32], y: &[u32], rows: usize) -> Result<(Tensor, Tensor)> {
    let ctx = x.len() / rows.max(1);
    Ok((
        Tensor::from_slice(x, (rows, ctx), &Device::Cpu)?,
        Tensor::from_slice(y, rows * ctx, &Device::Cpu)?,
    ))
}

/// Adapt `model` (a gain-cell model carrying the linear model's weights and scalers) to `targets` on the batch
/// `x → y` (`rows × ctx` token ids). `on_iteration` sees each iteration as it ends.
pub fn adapt(
    model: &mut Model,
    targets: &HeadStats,
    x: &[u32],
    y: &[u32],
    rows: usize,
    opts: &AdaptOptions,
    on_iteration: &mut dyn FnMut(&Iteration),
) -> Result<Adaptation> {
    if !model.attention.is_gain_cell() {
        return Err(TrainError::Input(
            "adaptation needs a gain-cell chip (its scalers are what it adapts)".into(),
        ));
    }
    let layers = model.config.n_layer();
    // q and o have a scaler per query head, k and v one per key/value head (grouped-query attention).
    let heads_of = |s: Site| match s {
        Site::Q | Site::O => model.config.n_head(),
        Site::K | Site::V => model.config.n_kv_head(),
    };
    if let Some(bad) = non_finite(targets) {
        return Err(TrainError::Input(format!(
            "the target statistics are not finite at {bad}: the linear run that recorded them diverged; train it again with a lower learning rate"
        )));
    }
    for s in Site::ALL {
        let m = targets.site(s);
        let heads = heads_of(s);
        if m.mean.len() != layers || m.mean.iter().chain(&m.std).any(|h| h.len() != heads) {
            return Err(TrainError::Input(format!(
                "the target statistics do not fit the model ({layers} layers × {heads} heads at `{}`): were they \
                 recorded by training this model on a linear chip?",
                s.name()
            )));
        }
    }
    let (xs, ys) = batch_tensors(x, y, rows)?;
    let mut iterations = Vec::new();
    let mut converged = false;
    let mut loss_before = f64::NAN;
    for i in 0..opts.max_iterations {
        let (loss, current) = measure(model, &xs, &ys)?;
        if i == 0 {
            loss_before = loss;
        }
        let alpha = opts.alpha(i);
        let (mut worst_mean, mut worst_std, mut updated) = (0.0f64, 0.0f64, 0usize);
        let head_counts = Site::ALL.map(heads_of);
        for (l, sc) in model.scalers.iter_mut().enumerate() {
            for (s, heads) in Site::ALL.into_iter().zip(head_counts) {
                let aff = sc.site_mut(s);
                let mut a: Vec<f32> = aff.a.to_vec1()?;
                let mut b: Vec<f32> = aff.b.to_vec1()?;
                let (t, c) = (targets.site(s), current.site(s));
                for h in 0..heads {
                    let (mt, mc) = (t.mean[l][h], c.mean[l][h]);
                    let (st, scur) = (t.std[l][h], c.std[l][h]);
                    let (em, es) = ((mt - mc).abs(), (st - scur).abs());
                    worst_mean = worst_mean.max(em);
                    worst_std = worst_std.max(es);
                    if es > opts.eps && scur != 0.0 {
                        let a0 = a[h] as f64;
                        a[h] = (alpha * a0 * st / scur + (1.0 - alpha) * a0) as f32;
                        updated += 1;
                    }
                    if em > opts.eps {
                        let b0 = b[h] as f64;
                        b[h] = (alpha * (b0 + mt - mc) + (1.0 - alpha) * b0) as f32;
                        updated += 1;
                    }
                }
                aff.a = Tensor::from_vec(a, heads, &Device::Cpu)?;
                aff.b = Tensor::from_vec(b, heads, &Device::Cpu)?;
            }
        }
        let it = Iteration {
            iteration: i + 1,
            loss,
            alpha,
            worst_mean_error: worst_mean,
            worst_std_error: worst_std,
            updated,
        };
        on_iteration(&it);
        iterations.push(it);
        if worst_mean <= opts.eps && worst_std <= opts.eps {
            converged = true;
            break;
        }
    }
    let (loss_after, _) = measure(model, &xs, &ys)?;
    Ok(Adaptation {
        iterations,
        loss_before,
        loss_after,
        converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_falls_linearly_from_one_to_a_tenth_over_fifty_iterations() {
        let o = AdaptOptions::default();
        assert_eq!(o.alpha(0), 1.0);
        assert!((o.alpha(25) - 0.55).abs() < 1e-12);
        assert!((o.alpha(50) - 0.1).abs() < 1e-12);
        assert!((o.alpha(99) - 0.1).abs() < 1e-12);
    }
}
