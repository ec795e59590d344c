//! `gaincell cell array`: small gain-cell attention arrays simulated end to end in ngspice (sky130), against the
//! simulator's kernel (what `gaincell attention` runs) with the fitted cell on the same inputs.
//!
//! A trial is one head: R tokens × D dims in a key array and in a value array, every cell the characterised 2T
//! cell, written through its write transistor from the DAC level, then read by one query as PWM pulses on the key
//! array's read word lines into virtual-ground bitlines. Each key bitline's charge is integrated. The
//! charge-to-pulse stage is behavioural: φ = clamp(Q/(T_max·S_sat), 0, 1) becomes a pulse of width φ·T_max,
//! from the same slew-limited driver as the inputs, on the value array's word line; each value bitline's charge is
//! read out by an ideal counter, clamp(Q/(T_max·A_sat), −1, 1) at the output bits. Between the two arrays ngspice
//! stops (two decks per batch of trials), so the pulses are exact source breakpoints rather than a behavioural
//! source's edges. A third answer, the DC table (each level's DC read current, times the pulse width), separates
//! the curve fit's error from the transient's.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use gaincell_attn::{gain_cell_forward, GainCellParams, Probes, Shape};
use gaincell_chip::ChipConfig;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;

use super::cell_spice::{
    find_ngspice, mean_std, prepare_spice_dir, read_wrdata, run_deck, CellDesign, Deck,
};
use crate::paths;
use crate::plot::{self, Bars, Scatter, COLOURS};

/// Gate voltage of the write word line while writing: enough above 0.9 V + V_th to pass the top level.
const WRITE_GATE_V: f64 = 1.8;
/// The bitline integrators' capacitance (an ideal charge meter: the voltage across it is Q / C).
const INTEGRATOR_F: f64 = 1e-12;

#[derive(Args)]
pub struct ArrayArgs {
    /// The chip with the fitted cell, e.g. the chip.toml `cell characterize` wrote. Its quantizers, cell curve,
    /// weight offset and output bits are used; its geometry becomes the array's (head_dim = --dims, window =
    /// tile rows = --rows) and its leakage is off (a read lasts nanoseconds).
    #[arg(long)]
    chip: String,
    /// Folder for array.json, report.md, the plots, q/k/v.npy and chip.toml (for `gaincell attention`), and the
    /// ngspice decks and logs (spice/).
    #[arg(long, default_value = "sky130-array", value_name = "DIR")]
    out: PathBuf,
    /// Arrays simulated (random q, k, v levels each).
    #[arg(long, default_value_t = 32, value_name = "N")]
    trials: usize,
    /// Tokens per array (key/value bitlines of the first/second array).
    #[arg(long, default_value_t = 8, value_name = "R")]
    rows: usize,
    /// Dimensions per token (query word lines).
    #[arg(long, default_value_t = 8, value_name = "D")]
    dims: usize,
    /// S_sat in µA; default the chip's scaled by dims/64 (its 80 µA are for 64 dims).
    #[arg(long, value_name = "UA")]
    s_sat: Option<f64>,
    /// A_sat in µA; default the chip's scaled by rows/64 (its 40 µA are for 64-row sub-tiles).
    #[arg(long, value_name = "UA")]
    a_sat: Option<f64>,
    /// The pulse width of q = 1 (and of φ = 1), ns.
    #[arg(long, default_value_t = 15.0, value_name = "NS")]
    t_max_ns: f64,
    /// Amplitude of the read word-line pulses, V.
    #[arg(long, default_value_t = 0.9, value_name = "V")]
    v_read: f64,
    /// Rise and fall time of every pulse driver, ps; a pulse narrower than this never reaches full amplitude.
    #[arg(long, default_value_t = 100.0, value_name = "PS")]
    edge_ps: f64,
    /// Transient time step (and largest step), ps.
    #[arg(long, default_value_t = 20.0, value_name = "PS")]
    step_ps: f64,
    /// Trials per ngspice deck (decks run in parallel, one per core; each 8 × 8 trial holds about 0.8 GB in
    /// ngspice, the sky130 models' instances).
    #[arg(long, default_value_t = 1, value_name = "N")]
    per_deck: usize,
    /// Seed of the random levels.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    cell: CellDesign,
}

/// One array's inputs as level values: q as a fraction of T_max, k and v as stored volts.
struct Trial {
    q: Vec<f64>,
    /// [rows][dims]
    k: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

/// One model's answer for a trial: scores (µA), φ, the counter's input and its output.
#[derive(Serialize, Clone, Default)]
struct Answer {
    scores_ua: Vec<f64>,
    phi: Vec<f64>,
    out_pre: Vec<f64>,
    out: Vec<f64>,
}

#[derive(Serialize)]
struct TrialRecord {
    q: Vec<f64>,
    k: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    /// Storage-node voltages after the write, [rows][dims].
    written_k: Vec<Vec<f64>>,
    written_v: Vec<Vec<f64>>,
    spice: Answer,
    simulator: Answer,
    /// The simulator with the effective cell (chip-effective.toml).
    simulator_effective: Answer,
    dc_levels: Answer,
    dc_written: Answer,
}

/// One quantity of an answer (scores, φ, …).
type Pick = fn(&Answer) -> &[f64];
/// One model's answer in a trial's record.
type Model = fn(&TrialRecord) -> &Answer;

/// Error statistics of one quantity, model minus SPICE.
#[derive(Serialize)]
struct ErrorStats {
    n: usize,
    mean: f64,
    rms: f64,
    p50_abs: f64,
    p95_abs: f64,
    max_abs: f64,
}

impl ErrorStats {
    fn of(errors: &[f64]) -> Self {
        let n = errors.len();
        let mut abs: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
        abs.sort_by(f64::total_cmp);
        let pick = |p: f64| {
            if n == 0 {
                f64::NAN
            } else {
                abs[((p * (n - 1) as f64).round() as usize).min(n - 1)]
            }
        };
        let mean = errors.iter().sum::<f64>() / n.max(1) as f64;
        let rms = (errors.iter().map(|e| e * e).sum::<f64>() / n.max(1) as f64).sqrt();
        ErrorStats {
            n,
            mean,
            rms,
            p50_abs: pick(0.5),
            p95_abs: pick(0.95),
            max_abs: abs.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// A slew-limited pulse driver as an ngspice source: 50 % points at `start` and `start + width` when the pulse
/// is at least one edge wide; narrower, the driver turns round before it reaches `v` (a triangle).
fn pulse_source(v: f64, start: f64, width: f64, edge: f64) -> String {
    if width <= 0.0 {
        return "0".into();
    }
    let t0 = start - edge / 2.0;
    if width >= edge {
        format!("PULSE(0 {v} {t0:e} {edge:e} {edge:e} {:e} 1)", width - edge)
    } else {
        format!(
            "PWL(0 0 {t0:e} 0 {:e} {:e} {:e} 0)",
            t0 + width,
            v * width / edge,
            t0 + 2.0 * width
        )
    }
}

/// The deck's timing: the write phase, then one read.
struct Timing {
    write_end: f64,
    read_start: f64,
    end: f64,
    edge: f64,
    t_max: f64,
    step: f64,
}

impl Timing {
    fn new(a: &ArrayArgs) -> Self {
        let edge = a.edge_ps * 1e-12;
        let t_max = a.t_max_ns * 1e-9;
        let write_end = 4e-9;
        let read_start = write_end + 2.0 * edge + 1e-9;
        Timing {
            write_end,
            read_start,
            end: read_start + t_max + 2.0 * edge + 0.5e-9,
            edge,
            t_max,
            step: a.step_ps * 1e-12,
        }
    }

    /// The write phase: every cell's write transistor on, then off, while each write bitline holds its level.
    fn write_phase(&self) -> String {
        format!(
            "Vwwl wwl 0 PWL(0 0 {e:e} {WRITE_GATE_V} {w:e} {WRITE_GATE_V} {we:e} 0)\n",
            e = self.edge,
            w = self.write_end,
            we = self.write_end + self.edge
        )
    }

    fn control(&self, file: &str, columns: &[String]) -> String {
        format!(
            ".control\nset wr_singlescale\nset wr_vecnames\noption numdgt=9\nsave {}\ntran {s:e} {end:e} 0 {s:e}\n\
             wrdata {file} {}\n.endc\n.end\n",
            // Only what is read back is kept: ngspice otherwise holds every node of every cell at every step.
            columns.join(" "),
            columns.join(" "),
            s = self.step,
            end = self.end
        )
    }
}

/// One array of `lines × bitlines` cells: word line `wl{i}` drives row i; cell (i, b) stores `stored[i][b]` and
/// sources into bitline b, a virtual ground whose charge integrates on node `{tag}i{b}` (volts = Q / 1 pF).
fn array_elements(tag: &str, word_lines: &[String], stored: &[Vec<f64>], v_bl: f64) -> String {
    let bitlines = stored.first().map_or(0, Vec::len);
    let mut s = String::new();
    for (i, wl) in word_lines.iter().enumerate() {
        s.push_str(&format!("V{tag}wl{i} {tag}wl{i} 0 {wl}\n"));
    }
    for b in 0..bitlines {
        s.push_str(&format!(
            "V{tag}bl{b} {tag}bl{b} 0 {v_bl}\nF{tag}{b} 0 {tag}i{b} V{tag}bl{b} 1\nC{tag}{b} {tag}i{b} 0 {INTEGRATOR_F:e}\n\
             R{tag}{b} {tag}i{b} 0 1e15\n"
        ));
    }
    for (i, row) in stored.iter().enumerate() {
        for (b, level) in row.iter().enumerate() {
            s.push_str(&format!(
                "V{tag}w{i}_{b} {tag}w{i}_{b} 0 {level:.9}\nX{tag}{i}_{b} {tag}w{i}_{b} wwl {tag}wl{i} {tag}bl{b} \
                 {tag}s{i}_{b} gain_cell\n"
            ));
        }
    }
    s
}

/// A wrdata file's columns `names` at two moments: the last time point at or before `before`, and the end.
fn columns_before_and_end(
    path: &Path,
    before: f64,
    names: &[String],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (header, rows) = read_wrdata(path)?;
    let first = rows
        .iter()
        .rposition(|r| r[0] <= before)
        .with_context(|| format!("{}: no time point before the read", path.display()))?;
    let last = rows.last().context("no rows")?;
    let mut at_first = Vec::with_capacity(names.len());
    let mut at_end = Vec::with_capacity(names.len());
    for n in names {
        let c = header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(n))
            .with_context(|| format!("{}: no column {n}", path.display()))?;
        let (x, y) = (rows[first][c], last[c]);
        if !(x.is_finite() && y.is_finite()) {
            bail!("{}: {n} is not finite", path.display());
        }
        at_first.push(x);
        at_end.push(y);
    }
    Ok((at_first, at_end))
}

/// The bitline charges (C) of integrator nodes: the end minus just before the read (what the write phase coupled
/// in is not part of the read); and the storage nodes' voltages just before the read (what the write left).
fn read_out(
    path: &Path,
    before: f64,
    integrators: &[String],
    stores: &[String],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let names: Vec<String> = integrators.iter().chain(stores).cloned().collect();
    let (first, end) = columns_before_and_end(path, before, &names)?;
    let n = integrators.len();
    let charges = (0..n).map(|i| (end[i] - first[i]) * INTEGRATOR_F).collect();
    Ok((charges, first[n..].to_vec()))
}

/// What ngspice gives for one trial.
struct SpiceTrial {
    /// Scores, µA (key bitline charge / T_max).
    scores: Vec<f64>,
    /// The counter's input, Q / (T_max·A_sat) per output dim.
    pre: Vec<f64>,
    /// Storage-node voltages after the write, [rows][dims], for k and v.
    written_k: Vec<Vec<f64>>,
    written_v: Vec<Vec<f64>>,
}

/// A batch of trials through ngspice: the key arrays, the charge-to-pulse stage, the value arrays.
fn simulate_batch(
    ctx: &ArrayRun,
    batch: usize,
    trials: &[Trial],
    on_step: &(dyn Fn() + Sync),
) -> Result<Vec<SpiceTrial>> {
    let t = &ctx.timing;
    let v_bl = ctx.cell.v_bl;
    // The key arrays: word line d carries q_d, bitline j collects token j's score.
    let mut text = ctx.array_deck("key arrays read by one PWM query each");
    let mut columns = Vec::new();
    let mut stores = Vec::new();
    for (n, tr) in trials.iter().enumerate() {
        let wl: Vec<String> =
            tr.q.iter()
                .map(|&q| pulse_source(ctx.v_read, t.read_start, q * t.t_max, t.edge))
                .collect();
        // Cell (d, j) stores k[j][d]: rows are dims, bitlines tokens.
        let stored: Vec<Vec<f64>> = (0..ctx.dims)
            .map(|d| tr.k.iter().map(|row| row[d]).collect())
            .collect();
        text.push_str(&array_elements(&format!("k{n}"), &wl, &stored, v_bl));
        columns.extend((0..ctx.rows).map(|j| format!("v(k{n}i{j})")));
        stores.extend(
            (0..ctx.rows).flat_map(|j| (0..ctx.dims).map(move |d| format!("v(k{n}s{d}_{j})"))),
        );
    }
    let (q_keys, written_k) = ctx.run_and_read(&format!("k{batch}"), text, &columns, &stores)?;
    on_step();

    // The value arrays: word line j carries φ_j, bitline d collects output d.
    let mut text = ctx.array_deck("value arrays read by the charge-to-pulse outputs");
    let mut columns = Vec::new();
    let mut stores = Vec::new();
    let mut scores = Vec::new();
    for (n, tr) in trials.iter().enumerate() {
        let s: Vec<f64> = q_keys[n * ctx.rows..(n + 1) * ctx.rows]
            .iter()
            .map(|q| q / t.t_max * 1e6)
            .collect();
        let wl: Vec<String> = s
            .iter()
            .map(|&s| {
                let phi = (s / ctx.s_sat).clamp(0.0, 1.0);
                pulse_source(ctx.v_read, t.read_start, phi * t.t_max, t.edge)
            })
            .collect();
        text.push_str(&array_elements(&format!("v{n}"), &wl, &tr.v, v_bl));
        columns.extend((0..ctx.dims).map(|d| format!("v(v{n}i{d})")));
        stores.extend(
            (0..ctx.rows).flat_map(|j| (0..ctx.dims).map(move |d| format!("v(v{n}s{j}_{d})"))),
        );
        scores.push(s);
    }
    let (q_values, written_v) = ctx.run_and_read(&format!("v{batch}"), text, &columns, &stores)?;
    on_step();
    let per_trial = ctx.rows * ctx.dims;
    let grid = |w: &[f64], n: usize| -> Vec<Vec<f64>> {
        w[n * per_trial..(n + 1) * per_trial]
            .chunks(ctx.dims)
            .map(<[f64]>::to_vec)
            .collect()
    };
    Ok(scores
        .into_iter()
        .enumerate()
        .map(|(n, s)| SpiceTrial {
            scores: s,
            pre: q_values[n * ctx.dims..(n + 1) * ctx.dims]
                .iter()
                .map(|q| q / t.t_max * 1e6 / ctx.a_sat)
                .collect(),
            written_k: grid(&written_k, n),
            written_v: grid(&written_v, n),
        })
        .collect())
}

/// What every batch needs.
struct ArrayRun {
    ngspice: PathBuf,
    spice: PathBuf,
    cell: CellDesign,
    timing: Timing,
    rows: usize,
    dims: usize,
    s_sat: f64,
    a_sat: f64,
    v_read: f64,
}

impl ArrayRun {
    /// A deck's opening: the models, the cell, and the write phase every array deck starts with.
    fn array_deck(&self, title: &str) -> String {
        let deck = Deck {
            cell: &self.cell,
            seed: 1,
        };
        deck.head(title, false) + &self.timing.write_phase()
    }

    /// Finish `text` with a control block that keeps the integrator and storage nodes, run it as `name`, and read
    /// back the charges and the voltages the write left (see [`read_out`]).
    fn run_and_read(
        &self,
        name: &str,
        mut text: String,
        integrators: &[String],
        stores: &[String],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let t = &self.timing;
        let file = format!("{name}.txt");
        let all: Vec<String> = integrators.iter().chain(stores).cloned().collect();
        text.push_str(&t.control(&file, &all));
        run_deck(&self.ngspice, &self.spice, name, &text, &[&file])?;
        read_out(
            &self.spice.join(&file),
            t.read_start - t.edge,
            integrators,
            stores,
        )
    }
}

/// The cell's DC read current (µA) against the stored voltage, word line at `v_read`: a 1 mV sweep from 0 to
/// 0.9 V, read by linear interpolation (at 1 mV the subthreshold exponential's curvature is negligible).
struct DcCurve {
    currents_ua: Vec<f64>,
}

const DC_STEP_V: f64 = 1e-3;

impl DcCurve {
    fn simulate(ctx: &ArrayRun) -> Result<Self> {
        let deck = Deck {
            cell: &ctx.cell,
            seed: 1,
        };
        let mut text = deck.head("DC read current against the stored voltage", false);
        text.push_str(&format!(
            "Xc wbl wwl rwl rbl sn gain_cell\nVwbl wbl 0 0\nVwwl wwl 0 0\nVsn sn 0 0\nVrwl rwl 0 {}\n\
             Vrbl rbl 0 {}\n.control\nset wr_singlescale\nset wr_vecnames\noption numdgt=9\n\
             dc vsn 0 {} {DC_STEP_V}\nwrdata dc.txt i(vrbl)\n.endc\n.end\n",
            ctx.v_read,
            ctx.cell.v_bl,
            0.9 + DC_STEP_V / 4.0
        ));
        run_deck(&ctx.ngspice, &ctx.spice, "dc", &text, &["dc.txt"])?;
        let (_, rows) = read_wrdata(&ctx.spice.join("dc.txt"))?;
        let currents_ua: Vec<f64> = rows.iter().map(|r| r[1] * 1e6).collect();
        let expected = (0.9 / DC_STEP_V).round() as usize + 1;
        if currents_ua.len() < expected || currents_ua.iter().any(|c| !c.is_finite()) {
            bail!(
                "{}: ngspice's DC sweep has {} finite points, {expected} were asked for",
                ctx.spice.join("dc.txt").display(),
                currents_ua.len()
            );
        }
        Ok(DcCurve { currents_ua })
    }

    /// The current at `v` volts (clamped to the swept range).
    fn at(&self, v: f64) -> f64 {
        let x = (v / DC_STEP_V).clamp(0.0, (self.currents_ua.len() - 1) as f64);
        let i = (x.floor() as usize).min(self.currents_ua.len() - 2);
        let f = x - i as f64;
        self.currents_ua[i] * (1.0 - f) + self.currents_ua[i + 1] * f
    }
}

/// The simulator's kernel (what `gaincell attention` runs) on every trial: S, φ and the output of each row.
struct Kernel {
    rows: usize,
    dims: usize,
    scores: Vec<f32>,
    phi: Vec<f32>,
    out: Vec<f32>,
}

impl Kernel {
    fn run(chip: &ChipConfig, shape: Shape, q: &[f32], k: &[f32], v: &[f32]) -> Result<Self> {
        let params = GainCellParams::new(chip)?;
        let (heads, r) = (shape.heads, shape.t);
        let mut out = vec![0.0f32; shape.len()];
        let mut scores = vec![0.0f32; heads * r * r];
        let mut phi = vec![0.0f32; heads * r * r];
        gain_cell_forward(
            &params,
            shape,
            q,
            k,
            v,
            &mut out,
            Some(Probes {
                scores: &mut scores,
                phi: &mut phi,
            }),
        )?;
        Ok(Kernel {
            rows: r,
            dims: shape.d,
            scores,
            phi,
            out,
        })
    }

    /// Trial `n`'s answer on the row that reads every token (the last), with the counter's input computed from
    /// φ and the chip's curve (the kernel returns only the counter's output).
    fn answer(&self, n: usize, chip: &ChipConfig, tr: &Trial, a_sat: f64) -> Answer {
        let (r, d) = (self.rows, self.dims);
        let last = n * r * r + (r - 1) * r;
        let out_row = n * r * d + (r - 1) * d;
        let widen = |x: &[f32]| -> Vec<f64> { x.iter().map(|&x| f64::from(x)).collect() };
        let phi = widen(&self.phi[last..last + r]);
        let out_pre = (0..d)
            .map(|c| {
                (0..r)
                    .map(|j| phi[j] * chip.cell.eval(tr.v[j][c] - chip.weight_offset))
                    .sum::<f64>()
                    / a_sat
            })
            .collect();
        Answer {
            scores_ua: widen(&self.scores[last..last + r]),
            phi,
            out_pre,
            out: widen(&self.out[out_row..out_row + d]),
        }
    }
}

/// Each level's effective read current (µA): one cell per level written through its write transistor, then read
/// by one pulse of T_max; bitline charge / T_max. It carries what the DC curve misses: the write's charge
/// injection and the read pulse's coupling onto the storage node.
fn effective_currents(ctx: &ArrayRun, levels: &[f64]) -> Result<Vec<f64>> {
    let t = &ctx.timing;
    let mut text = ctx.array_deck("effective read current at each DAC level");
    let wl = vec![pulse_source(ctx.v_read, t.read_start, t.t_max, t.edge)];
    let stored = vec![levels.to_vec()];
    text.push_str(&array_elements("e", &wl, &stored, ctx.cell.v_bl));
    let columns: Vec<String> = (0..levels.len()).map(|b| format!("v(ei{b})")).collect();
    let (charges, _) = ctx.run_and_read("levels", text, &columns, &[])?;
    Ok(charges.iter().map(|q| q / t.t_max * 1e6).collect())
}

/// The levels a quantizer can produce.
fn levels(q: &gaincell_chip::QuantizerConfig, what: &str, chip: &str) -> Result<Vec<f64>> {
    if !q.quantize {
        bail!(
            "chip `{chip}` has [{what}] quantize = false: the array is driven by DAC levels, so give a chip whose \
             {what} converter quantizes"
        );
    }
    let n = q.levels();
    Ok((0..n)
        .map(|i| q.min + (q.max - q.min) * i as f64 / (n - 1) as f64)
        .collect())
}

fn row_of(s: &ErrorStats, unit: &str) -> String {
    format!(
        "| {} | {:+.4} | {:.4} | {:.4} | {:.4} | {:.4} | {unit} |",
        s.n, s.mean, s.rms, s.p50_abs, s.p95_abs, s.max_abs
    )
}

pub fn array(a: ArrayArgs) -> Result<()> {
    for (flag, x) in [
        ("--trials", a.trials),
        ("--rows", a.rows),
        ("--dims", a.dims),
        ("--per-deck", a.per_deck),
    ] {
        if x == 0 {
            bail!("{flag} is 0: give at least 1");
        }
    }
    if a.rows > 64 || a.dims > 64 {
        bail!(
            "--rows {} --dims {}: an array larger than one 64 × 64 sub-tile is not a small array; give at most 64 each",
            a.rows,
            a.dims
        );
    }
    for (flag, x) in [
        ("--t-max-ns", a.t_max_ns),
        ("--v-read", a.v_read),
        ("--edge-ps", a.edge_ps),
        ("--step-ps", a.step_ps),
    ] {
        if !(x.is_finite() && x > 0.0) {
            bail!("{flag} is {x}: give a positive number");
        }
    }
    if a.edge_ps * 1e-3 >= a.t_max_ns / 4.0 {
        bail!(
            "--edge-ps {} is not small against --t-max-ns {}: give edges below a quarter of T_max",
            a.edge_ps,
            a.t_max_ns
        );
    }
    a.cell.check()?;
    let mut chip = ChipConfig::load(&a.chip)?;
    if !chip.is_gain_cell() {
        bail!(
            "chip `{}` is a softmax chip: give a gain-cell chip (e.g. the chip.toml `gaincell cell characterize` \
             wrote)",
            chip.name
        );
    }
    let s_sat = a.s_sat.unwrap_or(chip.readout.s_sat * a.dims as f64 / 64.0);
    let a_sat = a.a_sat.unwrap_or(chip.readout.a_sat * a.rows as f64 / 64.0);
    for (flag, x) in [("--s-sat", s_sat), ("--a-sat", a_sat)] {
        if !(x.is_finite() && x > 0.0) {
            bail!("{flag} is {x}: give a positive current in µA");
        }
    }
    chip.geometry.head_dim = a.dims;
    chip.geometry.window = a.rows;
    chip.geometry.tile_rows = a.rows;
    chip.leakage.enabled = false;
    chip.readout.s_sat = s_sat;
    chip.readout.a_sat = a_sat;
    chip.validate()
        .context("the chip with the array's geometry does not validate")?;
    let q_levels = levels(&chip.query, "query", &chip.name)?;
    let k_levels = levels(&chip.key, "key", &chip.name)?;
    let v_levels = levels(&chip.value, "value", &chip.name)?;
    if q_levels.iter().any(|&q| !(0.0..=1.0).contains(&q)) {
        bail!(
            "chip `{}` has [query] levels outside [0, 1]: a query is a fraction of T_max",
            chip.name
        );
    }

    let (ngspice, version) = find_ngspice()?;
    let spice = a.out.join("spice");
    let pdk = prepare_spice_dir(&a.cell, &spice)?;
    let ctx = ArrayRun {
        ngspice,
        spice,
        cell: a.cell.clone(),
        timing: Timing::new(&a),
        rows: a.rows,
        dims: a.dims,
        s_sat,
        a_sat,
        v_read: a.v_read,
    };
    println!(
        "{} arrays of {} tokens × {} dims in sky130 with {version} (models from {}): T_max {} ns, edges {} ps, \
         S_sat {s_sat} µA, A_sat {a_sat} µA",
        a.trials,
        a.rows,
        a.dims,
        pdk.display(),
        a.t_max_ns,
        a.edge_ps
    );

    // Random levels, reproducible from the seed.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let mut draw_levels = |l: &[f64], n: usize| -> Vec<f64> {
        (0..n).map(|_| l[rng.gen_range(0..l.len())]).collect()
    };
    let mut trials: Vec<Trial> = Vec::with_capacity(a.trials);
    for _ in 0..a.trials {
        let q = draw_levels(&q_levels, a.dims);
        let k = (0..a.rows)
            .map(|_| draw_levels(&k_levels, a.dims))
            .collect();
        let v = (0..a.rows)
            .map(|_| draw_levels(&v_levels, a.dims))
            .collect();
        trials.push(Trial { q, k, v });
    }

    let started = Instant::now();
    let batches: Vec<&[Trial]> = trials.chunks(a.per_deck).collect();
    let bar = ProgressBar::new(1 + 2 * batches.len() as u64).with_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} ngspice decks  {elapsed} elapsed, {eta} left",
        )
        .expect("valid template"),
    );
    let dc = DcCurve::simulate(&ctx)?;
    let mut all_levels: Vec<f64> = k_levels.iter().chain(&v_levels).copied().collect();
    all_levels.sort_by(f64::total_cmp);
    all_levels.dedup();
    let effective = effective_currents(&ctx, &all_levels)?;
    bar.inc(1);
    let step = || bar.inc(1);
    let spice: Vec<SpiceTrial> = batches
        .par_iter()
        .enumerate()
        .map(|(b, batch)| simulate_batch(&ctx, b, batch, &step))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    bar.finish_and_clear();
    let spice_s = started.elapsed().as_secs_f64();

    // The effective cell: a polynomial through each level's effective current (exact at the levels).
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut csv = format!(
        "# effective read current of the sky130 cell at each DAC level: written through the write transistor, \
         read by one pulse of T_max = {} ns; written by gaincell cell array\nv_store_v,v_in_v,i_out_a\n",
        a.t_max_ns
    );
    for (l, i) in all_levels.iter().zip(&effective) {
        csv.push_str(&format!("{l:.9},{},{:e}\n", a.v_read, i * 1e-6));
    }
    let effective_csv = a.out.join("effective.csv");
    paths::write_file(&effective_csv, &csv)?;
    let effective_chip_path = a.out.join("chip-effective.toml");
    let degree = (all_levels.len() - 1).min(7);
    println!(
        "the effective cell, degree {degree} through the {} levels:",
        all_levels.len()
    );
    super::cell::fit_degree(
        &effective_csv,
        a.v_read,
        degree,
        &effective_chip_path,
        &a.out.join("fit-effective.json"),
    )?;
    let mut effective_chip = chip.clone();
    effective_chip.cell = ChipConfig::from_file(&effective_chip_path)?.cell;

    // The simulator on the same levels: each trial a head, the query on every row; the last row reads all keys.
    let (r, d) = (a.rows, a.dims);
    let shape = Shape::new(a.trials, r, d);
    let mut q = Vec::with_capacity(shape.len());
    let mut k = Vec::with_capacity(shape.len());
    let mut v = Vec::with_capacity(shape.len());
    for tr in &trials {
        for j in 0..r {
            q.extend(tr.q.iter().map(|&x| x as f32));
            k.extend(tr.k[j].iter().map(|&x| x as f32));
            v.extend(tr.v[j].iter().map(|&x| x as f32));
        }
    }
    let sim = Kernel::run(&chip, shape, &q, &k, &v)?;
    let sim_effective = Kernel::run(&effective_chip, shape, &q, &k, &v)?;
    let oq = chip.output.quantizer();
    let counter = |pre: f64| f64::from(oq.apply(pre.clamp(-1.0, 1.0) as f32));
    let phi_of =
        |s: &[f64]| -> Vec<f64> { s.iter().map(|x| (x / s_sat).clamp(0.0, 1.0)).collect() };
    // A model given each cell's current: the scores, φ, the counter's input and output.
    let model = |q: &[f64], ik: &dyn Fn(usize, usize) -> f64, iv: &dyn Fn(usize, usize) -> f64| {
        let scores: Vec<f64> = (0..r)
            .map(|j| (0..d).map(|c| q[c] * ik(j, c)).sum())
            .collect();
        let phi = phi_of(&scores);
        let pre: Vec<f64> = (0..d)
            .map(|c| (0..r).map(|j| phi[j] * iv(j, c)).sum::<f64>() / a_sat)
            .collect();
        Answer {
            scores_ua: scores,
            phi,
            out: pre.iter().map(|&p| counter(p)).collect(),
            out_pre: pre,
        }
    };

    let mut records = Vec::new();
    for (n, (tr, sp)) in trials.iter().zip(&spice).enumerate() {
        let simulator = sim.answer(n, &chip, tr, a_sat);
        let simulator_effective = sim_effective.answer(n, &effective_chip, tr, a_sat);
        records.push(TrialRecord {
            q: tr.q.clone(),
            k: tr.k.clone(),
            v: tr.v.clone(),
            written_k: sp.written_k.clone(),
            written_v: sp.written_v.clone(),
            spice: Answer {
                phi: phi_of(&sp.scores),
                scores_ua: sp.scores.clone(),
                out: sp.pre.iter().map(|&p| counter(p)).collect(),
                out_pre: sp.pre.clone(),
            },
            dc_levels: model(&tr.q, &|j, c| dc.at(tr.k[j][c]), &|j, c| dc.at(tr.v[j][c])),
            dc_written: model(&tr.q, &|j, c| dc.at(sp.written_k[j][c]), &|j, c| {
                dc.at(sp.written_v[j][c])
            }),
            simulator,
            simulator_effective,
        });
    }

    // What the write left on the storage nodes, per DAC level.
    let mut writes: Vec<(f64, Vec<f64>)> = Vec::new();
    for rec in &records {
        for (stored, written) in [(&rec.k, &rec.written_k), (&rec.v, &rec.written_v)] {
            for (row, wrow) in stored.iter().zip(written) {
                for (&l, &w) in row.iter().zip(wrow) {
                    match writes.iter_mut().find(|(x, _)| (x - l).abs() < 1e-12) {
                        Some((_, ws)) => ws.push(w),
                        None => writes.push((l, vec![w])),
                    }
                }
            }
        }
    }
    writes.sort_by(|x, y| x.0.total_cmp(&y.0));
    let write_rows: Vec<serde_json::Value> = writes
        .iter()
        .map(|(l, ws)| {
            let (m, sd) = mean_std(ws);
            serde_json::json!({
                "level_v": l, "cells": ws.len(), "written_mean_v": m, "written_std_v": sd,
                "shift_mv": (m - l) * 1e3, "dc_current_at_level_ua": dc.at(*l),
                "dc_current_written_ua": dc.at(m),
            })
        })
        .collect();

    // Errors against SPICE, for each model.
    let lsb = (chip.output.max - chip.output.min) / (chip.output.levels() - 1) as f64;
    let quantities: [(&str, &str, Pick, f64); 4] = [
        ("score S", "µA", |x| x.scores_ua.as_slice(), 1.0),
        ("φ = clamp(S/S_sat, 0, 1)", "", |x| x.phi.as_slice(), 1.0),
        (
            "counter input Q/(T_max·A_sat)",
            "",
            |x| x.out_pre.as_slice(),
            1.0,
        ),
        ("output", "LSB", |x| x.out.as_slice(), lsb),
    ];
    let models: [(&str, Model); 4] = [
        ("simulator (fitted cell)", |r| &r.simulator),
        ("simulator (effective cell)", |r| &r.simulator_effective),
        ("DC curve at the DAC levels", |r| &r.dc_levels),
        ("DC curve at the written voltages", |r| &r.dc_written),
    ];
    let errors_of = |m: Model, pick: Pick, scale: f64| -> Vec<f64> {
        records
            .iter()
            .flat_map(|rec| {
                pick(m(rec))
                    .iter()
                    .zip(pick(&rec.spice))
                    .map(|(x, s)| (x - s) / scale)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut stats = Vec::new();
    let mut table = String::from(
        "| quantity | model | n | mean error | RMS | median abs | p95 abs | max abs | unit |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, unit, pick, scale) in quantities {
        for (model_name, m) in models {
            let e = ErrorStats::of(&errors_of(m, pick, scale));
            table.push_str(&format!("| {name} | {model_name} {}\n", row_of(&e, unit)));
            stats.push(serde_json::json!({
                "quantity": name, "unit": unit, "model": model_name, "model_minus_spice": e,
            }));
        }
    }
    let out_errors: Vec<i64> = errors_of(models[0].1, quantities[3].2, lsb)
        .iter()
        .map(|e| e.round() as i64)
        .collect();
    let mut histogram: Vec<(i64, usize)> = Vec::new();
    for e in &out_errors {
        match histogram.iter_mut().find(|(k, _)| k == e) {
            Some(h) => h.1 += 1,
            None => histogram.push((*e, 1)),
        }
    }
    histogram.sort();
    let within_one_of = |m: Model| {
        let e = errors_of(m, quantities[3].2, lsb);
        e.iter().filter(|e| e.abs() <= 1.0 + 1e-9).count() as f64 / e.len() as f64
    };
    let within_one = within_one_of(models[0].1);
    let within_one_effective = within_one_of(models[1].1);
    let max_score = records
        .iter()
        .flat_map(|r| r.spice.scores_ua.iter())
        .fold(0.0f64, |m, &x| m.max(x.abs()));
    let clipped_phi = records
        .iter()
        .flat_map(|r| r.spice.phi.iter())
        .filter(|&&p| p >= 1.0)
        .count() as f64
        / (a.trials * r) as f64;
    let clipped_out = records
        .iter()
        .flat_map(|r| r.spice.out_pre.iter())
        .filter(|&&p| p.abs() >= 1.0)
        .count() as f64
        / (a.trials * d) as f64;

    // Inputs and chip for `gaincell attention`, the report, the plots.
    let dims3 = [a.trials, r, d];
    crate::npy::write_f32(&a.out.join("q.npy"), &dims3, q)?;
    crate::npy::write_f32(&a.out.join("k.npy"), &dims3, k)?;
    crate::npy::write_f32(&a.out.join("v.npy"), &dims3, v)?;
    chip.name = "array".into();
    chip.description = format!("{} at the array's geometry, leakage off", a.chip);
    paths::write_file(a.out.join("chip.toml"), chip.to_toml_string())?;
    let json = serde_json::json!({
        "ngspice": version,
        "models": pdk.display().to_string(),
        "chip": a.chip,
        "cell": {
            "w_read_um": a.cell.w_read, "l_read_um": a.cell.l_read, "w_write_um": a.cell.w_write,
            "l_write_um": a.cell.l_write, "c_store_ff": a.cell.c_store_ff, "v_bl_v": a.cell.v_bl,
            "write_gate_v": WRITE_GATE_V,
        },
        "trials": a.trials, "rows": r, "dims": d, "seed": a.seed,
        "t_max_s": ctx.timing.t_max, "edge_s": ctx.timing.edge, "step_s": ctx.timing.step,
        "v_read_v": a.v_read, "s_sat_ua": s_sat, "a_sat_ua": a_sat, "output_lsb": lsb,
        "writes": write_rows,
        "effective_currents_ua": all_levels.iter().zip(&effective).map(|(l, i)| serde_json::json!({"level_v": l, "current_ua": i, "dc_ua": dc.at(*l)})).collect::<Vec<_>>(),
        "effective_chip": effective_chip_path.display().to_string(),
        "errors": stats,
        "output_error_histogram_lsb": histogram.iter().map(|(k, n)| serde_json::json!({"lsb": k, "count": n})).collect::<Vec<_>>(),
        "output_within_one_lsb": within_one,
        "output_within_one_lsb_effective_cell": within_one_effective,
        "largest_spice_score_ua": max_score,
        "phi_clipped_fraction": clipped_phi,
        "counter_clipped_fraction": clipped_out,
        "spice_wall_s": spice_s,
        "trial_results": records,
        "note": "compared on the query row that reads every stored token (the last of T = rows); scores and the \
                 counter's input are before the counter, outputs after it; errors are model minus SPICE",
    });
    let out_json = a.out.join("array.json");
    paths::write_file(&out_json, serde_json::to_string_pretty(&json)? + "\n")?;
    let mut write_table = String::from(
        "| DAC level (V) | written (V, mean ± std) | shift (mV) | DC current at the level (µA) | at the written voltage (µA) |\n\
         |---|---|---|---|---|\n",
    );
    for w in &write_rows {
        write_table.push_str(&format!(
            "| {:.4} | {:.4} ± {:.4} | {:+.1} | {:.4} | {:.4} |\n",
            w["level_v"].as_f64().unwrap_or(f64::NAN),
            w["written_mean_v"].as_f64().unwrap_or(f64::NAN),
            w["written_std_v"].as_f64().unwrap_or(f64::NAN),
            w["shift_mv"].as_f64().unwrap_or(f64::NAN),
            w["dc_current_at_level_ua"].as_f64().unwrap_or(f64::NAN),
            w["dc_current_written_ua"].as_f64().unwrap_or(f64::NAN),
        ));
    }
    let report = format!(
        "# {} gain-cell arrays of {r} tokens × {d} dims: ngspice (sky130) against the simulator\n\n\
         Written by `gaincell cell array --chip {}` ({} trials, seed {}, S_sat {s_sat} µA, A_sat {a_sat} µA, \
         T_max {} ns, edges {} ps); ngspice {:.1} s wall. Errors are model minus SPICE. The simulator is \
         gaincell's kernel with the chip's fitted cell at the DAC levels; the DC curves are the cell's DC read \
         current (1 mV sweep) times the pulse width, at the DAC levels and at the voltages the write left.\n\n\
         {table}\n\
         Output errors of the simulator (fitted cell) in LSB of the counter: {}; {:.1} % within one LSB \
         ({:.1} % with the effective cell). φ clipped at 1 in \
         {:.1} % of the columns, the counter's input at ±1 in {:.1} % of the outputs (SPICE); largest score \
         {max_score:.2} µA.\n\n\
         What the write leaves on the storage node (write gate {WRITE_GATE_V} V, then off):\n\n{write_table}",
        a.trials,
        a.chip,
        a.trials,
        a.seed,
        a.t_max_ns,
        a.edge_ps,
        spice_s,
        histogram
            .iter()
            .map(|(k, n)| format!("{k:+}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        100.0 * within_one,
        100.0 * within_one_effective,
        100.0 * clipped_phi,
        100.0 * clipped_out,
    );
    paths::write_file(a.out.join("report.md"), &report)?;
    let written = draw(&a.out, &records, &histogram)?;

    println!("{report}");
    println!(
        "wrote {}, report.md, q/k/v.npy, chip.toml",
        out_json.display()
    );
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// Scores and counter inputs, each model against SPICE, and the histogram of output errors.
fn draw(out: &Path, records: &[TrialRecord], histogram: &[(i64, usize)]) -> Result<Vec<PathBuf>> {
    plot::font_ready()?;
    // (SPICE, model) pairs of one quantity over every trial.
    let pairs = |m: Model, pick: Pick| -> Vec<(f64, f64)> {
        records
            .iter()
            .flat_map(|r| {
                pick(&r.spice)
                    .iter()
                    .copied()
                    .zip(pick(m(r)).iter().copied())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let scores_of: Pick = |x| x.scores_ua.as_slice();
    let pre_of: Pick = |x| x.out_pre.as_slice();
    let simulator: Model = |r| &r.simulator;
    let effective: Model = |r| &r.simulator_effective;
    let dc_written: Model = |r| &r.dc_written;
    let scores = Scatter {
        title: "scores S: model against SPICE".into(),
        x_desc: "SPICE (µA)".into(),
        y_desc: "model (µA)".into(),
        series: vec![
            (
                "simulator (fitted cell)".into(),
                pairs(simulator, scores_of),
            ),
            (
                "simulator (effective cell)".into(),
                pairs(effective, scores_of),
            ),
            (
                "DC curve at the written voltages".into(),
                pairs(dc_written, scores_of),
            ),
        ],
    };
    let outputs = Scatter {
        title: "counter input: model against SPICE".into(),
        x_desc: "SPICE".into(),
        y_desc: "model".into(),
        series: vec![
            ("simulator (fitted cell)".into(), pairs(simulator, pre_of)),
            (
                "simulator (effective cell)".into(),
                pairs(effective, pre_of),
            ),
            (
                "DC curve at the written voltages".into(),
                pairs(dc_written, pre_of),
            ),
        ],
    };
    let bars = Bars {
        title: "output error, simulator − SPICE".into(),
        y_desc: "outputs".into(),
        y_fmt: |y| format!("{y:.0}"),
        bars: histogram
            .iter()
            .map(|&(k, n)| (format!("{k:+} LSB"), n as f64, COLOURS[0]))
            .collect(),
        log_y: false,
    };
    plot::save(out, "array-vs-simulator", |canvas| {
        let mut panels = canvas.columns(3);
        let right = panels.pop().expect("three panels");
        let middle = panels.pop().expect("three panels");
        let left = panels.pop().expect("three panels");
        plot::scatter_on(left, &scores)?;
        plot::scatter_on(middle, &outputs)?;
        plot::bars_on(right, std::slice::from_ref(&bars))
    })
}
