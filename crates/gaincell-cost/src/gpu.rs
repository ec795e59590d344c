//! GPU baselines: the paper's RTX 4090 and Jetson Nano measurements, measurement files written by
//! `scripts/gpu_attention_baseline.py`, and the comparison of a chip with them.

use serde::{Deserialize, Serialize};

use crate::CostError;

/// The `format` tag of a measurement file this version reads.
pub const MEASUREMENT_FORMAT: &str = "gaincell-gpu-baseline/1";

/// What is compared with what, stated once for reports and `--explain`.
pub const COMPARISON_DEFINITION: &str = "Both sides are per token of one sequence through the attention of one \
layer (all its heads). GPU: decode-time attention with a full KV cache of `tokens` slots (batch 64, 12 heads × 64 \
dims, 1,024 tokens in the published runs): the wall time and the energy above static (idle) power of `tokens` \
decoding steps, divided by batch × steps. Chip: one layer's latency (all heads in parallel) and the energy of as \
many heads as the GPU workload has (12 × 6.15 nJ = 73.8 nJ for the paper presets). Published: 22.37 µs / 65 ns = \
344× and 488.9 µs / 65 ns = 7,521× faster; 7.18 mJ / 73.8 nJ ≈ 97,300× and 3.25 mJ / 73.8 nJ ≈ 44,000× less energy. \
The GPU figures are for a 1,024-token cache: they are not rescaled when the chip's window differs.";

/// The attention workload a GPU measurement ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuWorkload {
    /// Sequences decoded at once.
    pub batch: usize,
    /// Attention heads (one layer).
    pub heads: usize,
    pub head_dim: usize,
    /// KV-cache length: the window every step attends over.
    pub tokens: usize,
}

/// One GPU's per-token latency and energy for one layer's attention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuBaseline {
    pub name: String,
    /// Where the numbers come from.
    pub source: String,
    pub workload: GpuWorkload,
    pub latency_per_token_s: f64,
    /// Energy above static power.
    pub energy_per_token_j: f64,
}

/// The paper's two GPU measurements (docs/cost-model.md#gpu-baselines), at the unrounded values of the reference
/// implementation's measurement files (the paper rounds them to 22.4 µs / 7.18 mJ and 489 µs / 3.25 mJ).
pub fn published_baselines() -> Vec<GpuBaseline> {
    let workload = GpuWorkload {
        batch: 64,
        heads: 12,
        head_dim: 64,
        tokens: 1024,
    };
    vec![
        GpuBaseline {
            name: "RTX 4090".into(),
            source: "published: the paper (22.4 µs, 7.18 mJ); unrounded from the reference implementation's \
                     tests_divers/nvidia_4090_attention.json; NVML board power sampled after each 1,024-step pass, idle power subtracted, times the pass time"
                .into(),
            workload: workload.clone(),
            latency_per_token_s: 2.2371650629793294e-5,
            energy_per_token_j: 7.178261876106262e-3,
        },
        GpuBaseline {
            name: "Jetson Nano".into(),
            source: "published: the paper (489 µs, 3.25 mJ); unrounded from the reference implementation's \
                     tests_divers/nvidia_jetson_attention.json; total board power (jtop) sampled after each pass, idle power subtracted"
                .into(),
            workload,
            latency_per_token_s: 4.888500552624464e-4,
            energy_per_token_j: 3.2457683701068163e-3,
        },
    ]
}

/// The fields of a measurement file that the cost model uses (`format` is checked before); the script writes more
/// (provenance) and they are allowed.
#[derive(Deserialize)]
struct MeasurementFile {
    gpu: String,
    driver: String,
    date: String,
    workload: GpuWorkload,
    latency_per_token_s: f64,
    energy_per_token_j: f64,
}

impl GpuBaseline {
    /// Read a measurement file's JSON text; `origin` names it in errors.
    pub fn from_measurement_json(text: &str, origin: &str) -> Result<Self, CostError> {
        let err = |message: String| CostError::Measurement {
            origin: origin.to_string(),
            message,
        };
        // Check the tag first: another JSON file would otherwise fail with a confusing "missing field".
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(MEASUREMENT_FORMAT) => {}
            Some(other) => {
                return Err(err(format!(
                    "`format` is \"{other}\": this version reads \"{MEASUREMENT_FORMAT}\""
                )))
            }
            None => {
                return Err(err(format!(
                    "no `format` field: expected \"{MEASUREMENT_FORMAT}\" (write the file with scripts/gpu_attention_baseline.py)"
                )))
            }
        }
        let m: MeasurementFile = serde_path_to_error::deserialize(value).map_err(
            |e: serde_path_to_error::Error<serde_json::Error>| {
                let path = e.path().to_string();
                match path.as_str() {
                    "." => err(e.inner().to_string()),
                    _ => err(format!("field `{path}`: {}", e.inner())),
                }
            },
        )?;
        for (field, v, unit) in [
            ("latency_per_token_s", m.latency_per_token_s, "seconds"),
            ("energy_per_token_j", m.energy_per_token_j, "joules"),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(err(format!(
                    "`{field}` is {v}: it must be a positive number of {unit}"
                )));
            }
        }
        let w = &m.workload;
        for (field, v) in [
            ("batch", w.batch),
            ("heads", w.heads),
            ("head_dim", w.head_dim),
            ("tokens", w.tokens),
        ] {
            if v == 0 {
                return Err(err(format!("`workload.{field}` is 0: it must be positive")));
            }
        }
        for (field, v) in [("gpu", &m.gpu), ("driver", &m.driver), ("date", &m.date)] {
            if v.trim().is_empty() {
                return Err(err(format!(
                    "`{field}` is empty: the measurement needs its provenance"
                )));
            }
        }
        Ok(GpuBaseline {
            name: m.gpu.clone(),
            source: format!(
                "measured: {origin} ({}, driver {}, {})",
                m.gpu, m.driver, m.date
            ),
            workload: m.workload,
            latency_per_token_s: m.latency_per_token_s,
            energy_per_token_j: m.energy_per_token_j,
        })
    }
}

/// The chip against one GPU baseline (see [`COMPARISON_DEFINITION`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub source: String,
    pub gpu_latency_s: f64,
    pub gpu_energy_j: f64,
    /// One layer's latency.
    pub chip_latency_s: f64,
    /// Energy of the GPU workload's number of heads.
    pub chip_energy_j: f64,
    /// Heads in the GPU workload, and so in `chip_energy_j`.
    pub heads: usize,
    /// GPU latency / chip latency.
    pub speedup: f64,
    /// GPU energy / chip energy.
    pub energy_ratio: f64,
    /// Where the chip's workload differs from the GPU's (empty when they match).
    pub caveats: Vec<String>,
}

impl Comparison {
    /// `head_energy_pj` is one head's energy per token; `layer_latency_ns` one layer's latency.
    pub fn new(
        gpu: &GpuBaseline,
        layer_latency_ns: f64,
        head_energy_pj: f64,
        head_dim: usize,
        window: usize,
    ) -> Self {
        let chip_latency_s = layer_latency_ns * 1e-9;
        let chip_energy_j = head_energy_pj * 1e-12 * gpu.workload.heads as f64;
        let mut caveats = Vec::new();
        if window != gpu.workload.tokens {
            caveats.push(format!(
                "chip window {window} vs GPU KV cache {} tokens",
                gpu.workload.tokens
            ));
        }
        if head_dim != gpu.workload.head_dim {
            caveats.push(format!(
                "chip head dim {head_dim} vs GPU {}",
                gpu.workload.head_dim
            ));
        }
        Comparison {
            baseline: gpu.name.clone(),
            source: gpu.source.clone(),
            gpu_latency_s: gpu.latency_per_token_s,
            gpu_energy_j: gpu.energy_per_token_j,
            chip_latency_s,
            chip_energy_j,
            heads: gpu.workload.heads,
            speedup: gpu.latency_per_token_s / chip_latency_s,
            energy_ratio: gpu.energy_per_token_j / chip_energy_j,
            caveats,
        }
    }
}
