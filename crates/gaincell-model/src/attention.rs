//! The attention of one layer as the chip computes it, plugged into candle: the kernels of gaincell-attn as
//! custom ops, and the per-head affine scalers (docs/chip-model.md#per-head-scalers).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Shape as CShape, Tensor};
use gaincell_attn::{
    gain_cell_backward_at, gain_cell_forward_at, softmax_backward, softmax_forward, GainCellParams,
    Shape, Site,
};
use gaincell_chip::ChipConfig;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::ops::f32_slice;

/// How every attention layer of a model computes.
#[derive(Debug, Clone)]
pub enum Attention {
    /// Softmax attention, causal, over the last `window` tokens (0: all of them).
    Softmax { window: usize },
    /// A gain-cell chip.
    GainCell { params: Arc<GainCellParams> },
}

impl Attention {
    /// The attention a chip describes, for a model of this shape: softmax over the chip's window (0: all) or the
    /// model's native sliding window, whichever is shorter; a gain-cell chip needs arrays of the model's head
    /// width.
    pub fn for_model(chip: &ChipConfig, model: &ModelConfig) -> Result<Self> {
        match Self::from_chip(chip, model.head_dim())? {
            Attention::Softmax { window } => Ok(Attention::Softmax {
                window: match (window, model.native_window()) {
                    (0, Some(w)) => w,
                    (c, Some(w)) => c.min(w),
                    (c, None) => c,
                },
            }),
            gain_cell => Ok(gain_cell),
        }
    }

    /// The attention a chip describes, for heads of `head_dim` values.
    pub fn from_chip(chip: &ChipConfig, head_dim: usize) -> Result<Self> {
        if !chip.is_gain_cell() {
            return Ok(Attention::Softmax {
                window: chip.geometry.window,
            });
        }
        if chip.geometry.head_dim != head_dim {
            return Err(ModelError::Mismatch(format!(
                "chip `{}` has arrays of geometry.head_dim = {} rows but the model's heads have {head_dim} dims: \
                 use a chip file with head_dim = {head_dim} (`gaincell chip show {} --model MODEL` prints one)",
                chip.name, chip.geometry.head_dim, chip.name
            )));
        }
        Ok(Attention::GainCell {
            params: Arc::new(GainCellParams::new(chip)?),
        })
    }

    pub fn is_gain_cell(&self) -> bool {
        matches!(self, Attention::GainCell { .. })
    }

    /// Attention of `[B, H, T, D]` q, k, v (physical units for a chip) → `[B, H, T, D]`. Differentiable: softmax
    /// by its exact gradient, a gain-cell chip by the linear surrogate (docs/surrogate-gradient.md).
    pub fn forward(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        self.forward_at(Site::default(), q, k, v)
    }

    /// [`Attention::forward`] of the heads at `site` (a layer; heads per sequence and per key/value head), which
    /// keys a noisy chip's draws.
    pub fn forward_at(&self, site: Site, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
        Ok(q.apply_op3(&k, &v, KernelOp(self.clone(), site))?)
    }
}

/// The kernels as a candle op, with their backward, for the heads at a site.
struct KernelOp(Attention, Site);

/// The whole f32 contents of a contiguous CPU tensor (copied: the backward's inputs are small next to its work).
fn values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.contiguous()?.flatten_all()?.to_vec1::<f32>()
}

impl CustomOp3 for KernelOp {
    fn name(&self) -> &'static str {
        match self.0 {
            Attention::Softmax { .. } => "softmax-attention",
            Attention::GainCell { .. } => "gain-cell-attention",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, CShape)> {
        let dims = l1.shape().dims();
        let [b, h, t, d] = dims else {
            candle_core::bail!("attention expects [B, H, T, D], got {dims:?}")
        };
        if l2.shape() != l1.shape() || l3.shape() != l1.shape() {
            candle_core::bail!(
                "q, k, v shapes differ: {:?} {:?} {:?}",
                l1.shape(),
                l2.shape(),
                l3.shape()
            );
        }
        let shape = Shape::new(b * h, *t, *d);
        let (q, k, v) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let mut out = vec![0.0f32; shape.len()];
        let done = match &self.0 {
            Attention::Softmax { window } => softmax_forward(shape, *window, q, k, v, &mut out),
            Attention::GainCell { params } => {
                gain_cell_forward_at(params, self.1, shape, q, k, v, &mut out, None)
            }
        };
        done.map_err(candle_core::Error::wrap)?;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = q.dims();
        let back = |x: Vec<f32>| Tensor::from_vec(x, dims, q.device()).map(Some);
        match &self.0 {
            Attention::Softmax { window } => {
                let (b, h, t, d) = q.dims4()?;
                let [dq, dk, dv] = softmax_backward(
                    Shape::new(b * h, t, d),
                    *window,
                    [
                        &values(q)?,
                        &values(k)?,
                        &values(v)?,
                        &values(res)?,
                        &values(grad)?,
                    ],
                )
                .map_err(candle_core::Error::wrap)?;
                Ok((back(dq)?, back(dk)?, back(dv)?))
            }
            Attention::GainCell { params } => {
                let (b, h, t, d) = q.dims4()?;
                let g = gain_cell_backward_at(
                    params,
                    self.1,
                    Shape::new(b * h, t, d),
                    &values(q)?,
                    &values(k)?,
                    &values(v)?,
                    &values(grad)?,
                )
                .map_err(candle_core::Error::wrap)?;
                Ok((back(g.q)?, back(g.k)?, back(g.v)?))
            }
        }
    }
}

/// One affine map x' = a·x + b per head.
#[derive(Debug, Clone)]
pub struct Affine {
    /// `[H]`.
    pub a: Tensor,
    /// `[H]`.
    pub b: Tensor,
}

impl Affine {
    fn new(a: f64, b: f64, heads: usize, device: &Device) -> Result<Self> {
        Ok(Affine {
            a: Tensor::full(a as f32, heads, device)?,
            b: Tensor::full(b as f32, heads, device)?,
        })
    }

    /// Apply to `[B, H, T, D]` (head on dim 1).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        crate::head_affine::head_affine(x, &self.a, &self.b)
    }

    /// The values of head `h`.
    pub fn head(&self, h: usize) -> Result<(f32, f32)> {
        Ok((
            self.a.get(h)?.to_scalar::<f32>()?,
            self.b.get(h)?.to_scalar::<f32>()?,
        ))
    }
}

/// The trainable per-head scalers of one layer (docs/chip-model.md#per-head-scalers).
#[derive(Debug, Clone)]
pub struct Scalers {
    pub q: Affine,
    pub k: Affine,
    pub v: Affine,
    pub o: Affine,
}

impl Scalers {
    /// The chip's initial values for `heads` query heads and `kv_heads` key/value heads (q and o have one scaler
    /// per query head, k and v one per key/value head: per pair of arrays).
    pub fn init(chip: &ChipConfig, heads: usize, kv_heads: usize, device: &Device) -> Result<Self> {
        let s = &chip.scalers;
        Ok(Scalers {
            q: Affine::new(s.q.a, s.q.b, heads, device)?,
            k: Affine::new(s.k.a, s.k.b, kv_heads, device)?,
            v: Affine::new(s.v.a, s.v.b, kv_heads, device)?,
            o: Affine::new(s.o.a, s.o.b, heads, device)?,
        })
    }

    /// The scalers of one site.
    pub fn site(&self, s: crate::Site) -> &Affine {
        match s {
            crate::Site::Q => &self.q,
            crate::Site::K => &self.k,
            crate::Site::V => &self.v,
            crate::Site::O => &self.o,
        }
    }

    /// The scalers of one site, mutable.
    pub fn site_mut(&mut self, s: crate::Site) -> &mut Affine {
        match s {
            crate::Site::Q => &mut self.q,
            crate::Site::K => &mut self.k,
            crate::Site::V => &mut self.v,
            crate::Site::O => &mut self.o,
        }
    }

    /// `(name, tensor)` pairs as stored in checkpoints, e.g. `q.a`.
    pub fn named(&self) -> [(&'static str, &Tensor); 8] {
        [
            ("q.a", &self.q.a),
            ("q.b", &self.q.b),
            ("k.a", &self.k.a),
            ("k.b", &self.k.b),
            ("v.a", &self.v.a),
            ("v.b", &self.v.b),
            ("o.a", &self.o.a),
            ("o.b", &self.o.b),
        ]
    }

    /// Rebuild from tensors named as in [`Scalers::named`], q and o `[heads]`, k and v `[kv_heads]`.
    pub fn from_named(
        get: impl Fn(&str) -> Option<Tensor>,
        heads: usize,
        kv_heads: usize,
    ) -> std::result::Result<Self, String> {
        let one = |name: &str| -> std::result::Result<Tensor, String> {
            let heads = if name.starts_with('k') || name.starts_with('v') {
                kv_heads
            } else {
                heads
            };
            let t = get(name).ok_or_else(|| format!("missing scaler `{name}`"))?;
            if t.dims() != [heads] {
                return Err(format!(
                    "scaler `{name}` has shape {:?}, expected [{heads}]",
                    t.dims()
                ));
            }
            t.to_dtype(DType::F32).map_err(|e| e.to_string())
        };
        let pair = |s: &str| -> std::result::Result<Affine, String> {
            Ok(Affine {
                a: one(&format!("{s}.a"))?,
                b: one(&format!("{s}.b"))?,
            })
        };
        Ok(Scalers {
            q: pair("q")?,
            k: pair("k")?,
            v: pair("v")?,
            o: pair("o")?,
        })
    }
}
