//! Knowledge distillation for data-free mapping (LLM-QAT; the paper's reference code's `teacher` / `dist_lambda`):
//! the model being trained on the chip (the student) learns from a fixed teacher's next-token distribution as well
//! as from the data's next tokens.
//!
//! A run's `[distill]` section ([`DistillSpec`]) names the teacher, the weight `w` and the temperature `T`; each
//! micro-batch's loss is then
//!
//! ```text
//! (1 − w) · CE(student, targets) + w · T² · KL( softmax(teacher / T) ‖ softmax(student / T) )
//! ```
//!
//! averaged over the batch's positions. The teacher runs once per batch, without gradients: its logits are plain
//! `f32` data ([`teacher_logits`]), never part of a candle graph, and are dropped with the step. The KL term is one
//! fused op ([`distillation_loss`]) with its own backward, `T · (q_s − p_t)` per row (p_t = softmax(teacher/T),
//! q_s = softmax(student/T)): the T² in front keeps the gradient's scale independent of T (Hinton et al.).
//! Everything here is deterministic (rows in parallel, each row summed in order), so `--resume` stays bit for bit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use gaincell_model::ops::f32_slice;
use gaincell_model::{checkpoint, Model, ModelConfig};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::trainer::chip_from_value;

/// A training run's `[distill]` section:
///
/// ```toml
/// [distill]
/// teacher = "runs/software/checkpoint"  # any model `checkpoint::load` reads (relative to the config file)
/// weight = 0.5                          # w ∈ [0, 1]: 0 = plain cross-entropy, 1 = the teacher alone
/// temperature = 1.0                     # T > 0
/// # chip = "software"                   # the teacher's chip; default: the one its checkpoint records
/// ```
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DistillSpec {
    /// The teacher: our checkpoint, an HF folder or a llama2.c `.bin` (relative paths are relative to the config
    /// file). Its vocabulary must be the student's.
    pub teacher: PathBuf,
    /// w ∈ [0, 1], the share of the distillation term in the loss.
    #[serde(default = "d_weight")]
    pub weight: f64,
    /// T > 0: both distributions are softened by it before the KL is taken.
    #[serde(default = "d_temperature")]
    pub temperature: f64,
    /// The chip the teacher runs on (a preset, a chip file, or an inline table); default: the chip its checkpoint
    /// records (software for an HF or llama2.c model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip: Option<toml::Value>,
}

pub(crate) fn d_weight() -> f64 {
    0.5
}
pub(crate) fn d_temperature() -> f64 {
    1.0
}

/// Check a distillation weight and temperature: one clear error for each bad value.
pub fn check_weight_and_temperature(weight: f64, temperature: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&weight) {
        return Err(TrainError::Input(format!(
            "[distill] weight = {weight}: give a number in [0, 1] (0: cross-entropy only, 1: the teacher only)"
        )));
    }
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(TrainError::Input(format!(
            "[distill] temperature = {temperature}: give a positive, finite number (1.0: the plain distributions)"
        )));
    }
    Ok(())
}

impl DistillSpec {
    /// Weight in [0, 1], temperature positive and finite.
    pub fn validate(&self) -> Result<()> {
        check_weight_and_temperature(self.weight, self.temperature)
    }

    /// Resolve the relative paths of the section against the folder of the file it came from.
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.teacher.is_relative() {
            self.teacher = base.join(&self.teacher);
        }
        resolve_chip_path(&mut self.chip, base);
    }

    /// The same section as `other`, comparing teacher paths by what they point at (so the same config read from
    /// another working directory matches).
    pub fn same_as(&self, other: &DistillSpec) -> bool {
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canon(&self.teacher) == canon(&other.teacher)
            && self.weight == other.weight
            && self.temperature == other.temperature
            && self.chip == other.chip
    }

    /// Load the teacher for a student of shape `student` trained on `ctx`-token sequences: it must load, share
    /// the student's vocabulary, and have positions for the context.
    pub fn load_teacher(&self, student: &ModelConfig, ctx: usize) -> Result<Model> {
        let path = &self.teacher;
        let chip = self.chip.as_ref().map(chip_from_value).transpose()?;
        let teacher = checkpoint::resolve(&path.display().to_string())
            .and_then(|p| checkpoint::load(&p, chip))
            .map_err(|e| {
                TrainError::Input(format!(
                    "[distill] teacher {}: cannot be loaded: {e}",
                    path.display()
                ))
            })?;
        if teacher.config.vocab_size() != student.vocab_size() {
            return Err(TrainError::Input(format!(
                "[distill] teacher {}: its vocabulary has {} tokens, the student's {}: distil from a model with the \
                 student's tokenizer",
                path.display(),
                teacher.config.vocab_size(),
                student.vocab_size()
            )));
        }
        if teacher.config.n_positions() < ctx {
            return Err(TrainError::Input(format!(
                "[distill] teacher {}: {} positions, fewer than the training context {ctx}",
                path.display(),
                teacher.config.n_positions()
            )));
        }
        Ok(teacher)
    }
}

/// `[distill] chip = "file.toml"` relative to the config file, as the run's own `chip` is.
pub(crate) fn resolve_chip_path(chip: &mut Option<toml::Value>, base: &Path) {
    if let Some(toml::Value::String(s)) = chip {
        if s.ends_with(".toml") && Path::new(s.as_str()).is_relative() {
            *s = base.join(&*s).display().to_string();
        }
    }
}

/// The teacher's logits for token ids `[B, T]`, flattened row-major (`B·T × vocab`): plain data, no graph.
pub fn teacher_logits(teacher: &Model, ids: &Tensor) -> Result<Vec<f32>> {
    let logits = teacher.forward(ids)?.detach();
    Ok(logits.flatten_all()?.to_vec1::<f32>()?)
}

/// `log Σ e^(x·inv_t)` of one row, in f64.
fn scaled_log_sum_exp(row: &[f32], inv_t: f64) -> f64 {
    let max = row
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64 * inv_t));
    if !max.is_finite() {
        return max;
    }
    max + row
        .iter()
        .map(|&v| (v as f64 * inv_t - max).exp())
        .sum::<f64>()
        .ln()
}

/// The same with f32 exponentials (summed in f64): enough for gradients, which are differences of probabilities.
fn scaled_log_sum_exp_f32(row: &[f32], inv_t: f32) -> f32 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v * inv_t));
    if !max.is_finite() {
        return max;
    }
    max + (row
        .iter()
        .map(|&v| (v * inv_t - max).exp() as f64)
        .sum::<f64>()
        .ln() as f32)
}

/// `KL(softmax(t/T) ‖ softmax(s/T))` of one row, in f64, given log Σ e^(t/T) (terms where the teacher's
/// probability is 0 are 0).
fn kl_row(s: &[f32], t: &[f32], lt: f64, inv_t: f64) -> f64 {
    let ls = scaled_log_sum_exp(s, inv_t);
    s.iter()
        .zip(t)
        .map(|(&s, &t)| {
            let log_p = t as f64 * inv_t - lt;
            let p = log_p.exp();
            if p == 0.0 {
                0.0
            } else {
                p * (log_p - (s as f64 * inv_t - ls))
            }
        })
        .sum()
}

/// The teacher's logits and, per row, `log Σ e^(t/T)`: computed once, read by the forward and the backward.
struct TeacherRows {
    logits: Vec<f32>,
    log_sum_exp: Vec<f64>,
}

/// Per-row `T²·KL(softmax(teacher/T) ‖ softmax(student/T))` of student logits `[…, V]`, the teacher's logits held
/// by the op; backward `T·(q_s − p_t)` times the row's upstream gradient.
struct KlRows {
    teacher: Arc<TeacherRows>,
    temperature: f32,
}

fn check_sizes(what: &str, logits: usize, teacher: usize, vocab: usize) -> candle_core::Result<()> {
    if vocab == 0 || logits != teacher || !logits.is_multiple_of(vocab) {
        candle_core::bail!(
            "{what}: {logits} student logits, {teacher} teacher logits, vocabulary {vocab}"
        )
    }
    Ok(())
}

impl CustomOp1 for KlRows {
    fn name(&self) -> &'static str {
        "distillation-kl"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l)?;
        let dims = l.shape().dims();
        let vocab = *dims.last().unwrap_or(&0);
        let te = &self.teacher;
        check_sizes("distillation loss", x.len(), te.logits.len(), vocab)?;
        let t = self.temperature as f64;
        let inv_t = 1.0 / t;
        let out: Vec<f32> = x
            .par_chunks(vocab)
            .zip(te.logits.par_chunks(vocab).zip(te.log_sum_exp.par_iter()))
            .map(|(s, (tr, &lt))| (t * t * kl_row(s, tr, lt, inv_t)) as f32)
            .collect();
        Ok((CpuStorage::F32(out), Shape::from(&dims[..dims.len() - 1])))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let back = KlRowsBackward {
            teacher: self.teacher.clone(),
            temperature: self.temperature,
        };
        Ok(Some(arg.apply_op2_no_bwd(&grad.contiguous()?, &back)?))
    }
}

/// `g_r · T · (softmax(s_r/T) − softmax(t_r/T))` for every row r.
struct KlRowsBackward {
    teacher: Arc<TeacherRows>,
    temperature: f32,
}

impl CustomOp2 for KlRowsBackward {
    fn name(&self) -> &'static str {
        "distillation-kl-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let vocab = *l1.shape().dims().last().unwrap_or(&0);
        let te = &self.teacher;
        check_sizes("distillation backward", x.len(), te.logits.len(), vocab)?;
        if g.len() * vocab != x.len() {
            candle_core::bail!(
                "distillation backward: {} gradients for {} rows",
                g.len(),
                x.len() / vocab
            );
        }
        let t = self.temperature;
        let inv_t = 1.0 / t;
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(vocab)
            .zip(x.par_chunks(vocab).zip(te.logits.par_chunks(vocab)))
            .zip(g.par_iter().zip(te.log_sum_exp.par_iter()))
            .for_each(|((o, (s, tr)), (&gr, &lt))| {
                let ls = scaled_log_sum_exp_f32(s, inv_t);
                let lt = lt as f32;
                let scale = gr * t;
                for ((o, &s), &tv) in o.iter_mut().zip(s).zip(tr) {
                    let q = (s * inv_t - ls).exp();
                    let p = (tv * inv_t - lt).exp();
                    *o = scale * (q - p);
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

fn check_temperature(temperature: f32) -> Result<()> {
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(TrainError::Input(format!(
            "distillation temperature {temperature}: give a positive, finite number"
        )));
    }
    Ok(())
}

/// Mean over rows of `T²·KL(softmax(teacher/T) ‖ softmax(student/T))`, for student logits `[…, V]` (f32, any
/// leading shape; a row is one position) and the teacher's logits of the same shape, row-major. Fused, with
/// backward wrt the student logits; the teacher is data.
pub fn distillation_loss(
    student_logits: &Tensor,
    teacher_logits: &[f32],
    temperature: f32,
) -> Result<Tensor> {
    check_temperature(temperature)?;
    let n = student_logits.elem_count();
    let vocab = *student_logits.dims().last().unwrap_or(&0);
    if student_logits.rank() < 1 || vocab == 0 || teacher_logits.len() != n {
        return Err(TrainError::Input(format!(
            "distillation loss: student logits of shape {:?}, {} teacher logits",
            student_logits.dims(),
            teacher_logits.len()
        )));
    }
    let rows = n / vocab;
    let inv_t = 1.0 / temperature as f64;
    let log_sum_exp = teacher_logits
        .par_chunks(vocab)
        .map(|row| scaled_log_sum_exp(row, inv_t))
        .collect();
    let teacher = Arc::new(TeacherRows {
        logits: teacher_logits.to_vec(),
        log_sum_exp,
    });
    let kl = student_logits.contiguous()?.apply_op1(KlRows {
        teacher,
        temperature,
    })?;
    Ok((kl.sum_all()? / rows.max(1) as f64)?)
}

/// The loss of one distilled micro-batch and its two parts (scalars).
pub struct DistilledLoss {
    /// `(1 − w)·cross_entropy + w·distill`: what is differentiated.
    pub loss: Tensor,
    /// Mean cross-entropy against the targets.
    pub cross_entropy: Tensor,
    /// Mean `T²·KL(teacher ‖ student)` ([`distillation_loss`]).
    pub distill: Tensor,
}

/// `(1 − w)·cross_entropy(student, targets) + w·T²·KL(softmax(teacher/T) ‖ softmax(student/T))`, averaged over
/// rows, for student logits `[N, V]`, u32 targets `[N]` and the teacher's logits (`N·V`, row-major). At `w = 0`
/// the loss is the cross-entropy exactly, at `w = 1` the distillation term exactly.
pub fn distilled_loss(
    student_logits: &Tensor,
    targets: &Tensor,
    teacher_logits: &[f32],
    weight: f32,
    temperature: f32,
) -> Result<DistilledLoss> {
    check_weight_and_temperature(weight as f64, temperature as f64)?;
    let cross_entropy = gaincell_model::ops::cross_entropy(student_logits, targets)?;
    let distill = distillation_loss(student_logits, teacher_logits, temperature)?;
    let loss = ((&cross_entropy * (1.0 - weight as f64))? + (&distill * weight as f64)?)?;
    Ok(DistilledLoss {
        loss,
        cross_entropy,
        distill,
    })
}

/// A loaded teacher and the weight and temperature a run distils with.
pub struct Teacher {
    pub model: Model,
    pub weight: f32,
    pub temperature: f32,
}

impl Teacher {
    /// Check the section and load its teacher for a student of shape `student` trained on `ctx` tokens.
    pub fn load(spec: &DistillSpec, student: &ModelConfig, ctx: usize) -> Result<Self> {
        spec.validate()?;
        Ok(Teacher {
            model: spec.load_teacher(student, ctx)?,
            weight: spec.weight as f32,
            temperature: spec.temperature as f32,
        })
    }

    /// The distilled loss of student logits `[N, V]` for the batch `ids` `[B, T]` (`N = B·T`) against `targets`.
    pub fn loss(
        &self,
        student_logits: &Tensor,
        ids: &Tensor,
        targets: &Tensor,
    ) -> Result<DistilledLoss> {
        let t = teacher_logits(&self.model, ids)?;
        distilled_loss(student_logits, targets, &t, self.weight, self.temperature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn logits(rows: usize, vocab: usize, seed: usize, scale: f32) -> Vec<f32> {
        (0..rows * vocab)
            .map(|i| (((i * 7919 + seed * 104_729) % 1013) as f32 / 1013.0 - 0.5) * scale)
            .collect()
    }

    /// T²·KL per row, mean over rows, by hand in f64.
    fn reference(s: &[f64], t: &[f64], vocab: usize, temp: f64) -> f64 {
        let lsm = |row: &[f64]| -> Vec<f64> {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b / temp));
            let lse = m + row.iter().map(|&x| (x / temp - m).exp()).sum::<f64>().ln();
            row.iter().map(|&x| x / temp - lse).collect()
        };
        let rows = s.len() / vocab;
        let mut sum = 0.0;
        for r in 0..rows {
            let (ls, lt) = (
                lsm(&s[r * vocab..(r + 1) * vocab]),
                lsm(&t[r * vocab..(r + 1) * vocab]),
            );
            sum += ls
                .iter()
                .zip(&lt)
                .map(|(q, p)| p.exp() * (p - q))
                .sum::<f64>();
        }
        temp * temp * sum / rows as f64
    }

    #[test]
    fn forward_matches_an_f64_log_softmax_and_vanishes_on_equal_logits() {
        let (rows, vocab) = (6, 203);
        let s = logits(rows, vocab, 1, 12.0);
        let t = logits(rows, vocab, 2, 9.0);
        for temp in [1.0f32, 2.0, 0.5] {
            let st = Tensor::from_slice(&s, (rows, vocab), &Device::Cpu).unwrap();
            let got = distillation_loss(&st, &t, temp)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64;
            let f = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
            let want = reference(&f(&s), &f(&t), vocab, temp as f64);
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                "T = {temp}: {got} vs {want}"
            );
            let same = distillation_loss(&st, &s, temp)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(same.abs() < 1e-6, "KL(p‖p) = {same}");
        }
    }

    #[test]
    fn backward_matches_central_differences_of_the_f64_loss() {
        let (rows, vocab) = (3, 37);
        let s = logits(rows, vocab, 3, 8.0);
        let t = logits(rows, vocab, 4, 8.0);
        let t64: Vec<f64> = t.iter().map(|&x| x as f64).collect();
        for temp in [1.0f32, 2.0] {
            let v = Var::from_tensor(&Tensor::from_slice(&s, (rows, vocab), &Device::Cpu).unwrap())
                .unwrap();
            let loss = distillation_loss(v.as_tensor(), &t, temp).unwrap();
            let g: Vec<f32> = loss
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
                let mut p: Vec<f64> = s.iter().map(|&x| x as f64).collect();
                p[i] += h;
                let up = reference(&p, &t64, vocab, temp as f64);
                p[i] -= 2.0 * h;
                let down = reference(&p, &t64, vocab, temp as f64);
                let fd = (up - down) / (2.0 * h);
                assert!(
                    (g[i] as f64 - fd).abs() <= 1e-6 + 1e-4 * fd.abs(),
                    "T = {temp}, logit {i}: {} vs {fd}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn bad_inputs_are_one_clear_error() {
        let s = Tensor::zeros((2, 5), candle_core::DType::F32, &Device::Cpu).unwrap();
        for temp in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
            let e = distillation_loss(&s, &[0.0; 10], temp)
                .unwrap_err()
                .to_string();
            assert!(e.contains("temperature"), "{e}");
        }
        let e = distillation_loss(&s, &[0.0; 9], 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("9 teacher logits"), "{e}");
        for w in [-0.1, 1.5, f64::NAN] {
            let e = check_weight_and_temperature(w, 1.0)
                .unwrap_err()
                .to_string();
            assert!(e.contains("[distill] weight"), "{e}");
        }
        assert!(check_weight_and_temperature(0.0, 1.0).is_ok());
        assert!(check_weight_and_temperature(1.0, 0.1).is_ok());
    }
}
