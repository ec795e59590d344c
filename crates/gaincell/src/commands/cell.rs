//! `gaincell cell fit`: fit a polynomial cell curve f(y) to an I–V table (stored voltage, read voltage, current),
//! print the fit, and write a chip file whose `[cell]` is that polynomial (docs/cell-fit.md). `gaincell cell
//! characterize` (simulating the table in SPICE) lives in `cell_spice`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use gaincell_chip::{preset, ChipConfig, PRESET_NAMES};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::paths;
use crate::plot::{self, Canvas, FAMILY};

/// Read voltages closer than this to `--v-in` select a row.
const V_IN_TOLERANCE: f64 = 1e-9;
/// The chip's polynomial cell takes at most 8 coefficients.
const MAX_DEGREE: usize = 7;
/// The linear model's slope (µA/V), drawn beside the fit.
const LINEAR_SLOPE: f64 = 19.3;

#[derive(Subcommand)]
pub enum CellCommand {
    /// Fit a polynomial cell curve to an I–V table and write a chip file that uses it (docs/cell-fit.md).
    Fit(FitArgs),
    /// Simulate a 2T gain cell in the sky130 PDK with ngspice: I–V table, retention (τ, λ per token), Monte Carlo
    /// spread of the read current, and the fitted chip file (docs/cell-fit.md).
    Characterize(super::cell_spice::CharacterizeArgs),
    /// Simulate small attention arrays of the characterised cell end to end in ngspice and compare them with the
    /// simulator's kernel on the same inputs (docs/cell-fit.md).
    Array(super::cell_array::ArrayArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Form {
    /// f(y) at the read voltage --v-in, from the rows at that voltage.
    #[value(name = "1d")]
    OneD,
    /// Σ c_ij·y^i·V_in^j over every row; the chip file keeps its curve at --v-in.
    #[value(name = "2d")]
    TwoD,
}

#[derive(Args)]
pub struct FitArgs {
    /// The I–V table: CSV with a header naming each column with its unit (v_store_v or v_store_mv, v_in_v or
    /// v_in_mv, i_out_a / i_out_ma / i_out_ua / i_out_na, any order; one row per point; within each read voltage
    /// the stored voltages strictly increasing), a .npy N×3 float array (columns V_store [V], V_in [V], I [A]),
    /// or a .npz with arrays v_store, v_in, i_out (or v_store_v, v_in_v, i_out_a) in the same units.
    #[arg(long, value_name = "FILE")]
    iv: PathBuf,
    /// Read (word-line) voltage, V, of the curve: rows whose v_in is within 1e-9 V of it are fitted.
    #[arg(long, default_value_t = 0.9, value_name = "V")]
    v_in: f64,
    /// Polynomial degree in y, 1 to 7 (the chip's polynomial cell takes at most 8 coefficients).
    #[arg(long, default_value_t = 3)]
    degree: usize,
    /// y = V_store − offset (V): the chip's mid-rail voltage; written as the chip's weight_offset.
    #[arg(long, default_value_t = 0.45, value_name = "V")]
    offset: f64,
    /// Weight each point by its nearness to the base chip's key-DAC write levels (3 bits on [0, 0.9] V for the
    /// paper presets): w = exp(−(d/σ)²/2), d the distance from V_store to the nearest level, σ a quarter of the
    /// level spacing. Residuals and R² are reported unweighted.
    #[arg(long)]
    weighted: bool,
    /// 1d: f(y) at --v-in. 2d: c_ij of y^i·V_in^j (i ≤ --degree, j ≤ --degree-v-in) over every row; the chip
    /// file then holds the curve at --v-in, Σ_j c_ij·v_in^j for each i.
    #[arg(long, value_enum, default_value_t = Form::OneD)]
    form: Form,
    /// With --form 2d: the degree in V_in, 0 to 7.
    #[arg(long, default_value_t = 3)]
    degree_v_in: usize,
    /// The preset the chip file starts from (`base = "..."`): a gain-cell preset.
    #[arg(long, default_value = "paper-nonlinear", value_name = "PRESET")]
    base: String,
    /// The chip file to write (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Plot the data, the fit and the linear model 19.3·y to PREFIX.png and PREFIX.svg.
    #[arg(long, value_name = "PREFIX")]
    plot: Option<PathBuf>,
    /// Write the fit as JSON (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

pub fn run(cmd: CellCommand) -> Result<()> {
    match cmd {
        CellCommand::Fit(a) => fit(a),
        CellCommand::Characterize(a) => super::cell_spice::characterize(a),
        CellCommand::Array(a) => super::cell_array::array(a),
    }
}

/// `cell fit` with its defaults (a cubic at V_in = 0.9 V, y = V_store − 0.45 V, base paper-nonlinear) on `iv`,
/// writing the chip file `out` and the fit as JSON to `json`: what `cell characterize` runs on its table.
pub(crate) fn fit_with_defaults(iv: &Path, out: &Path, json: &Path) -> Result<()> {
    fit_degree(iv, 0.9, 3, out, json)
}

/// `cell fit --iv IV --v-in V_IN --degree DEGREE --out OUT --json JSON`, the other options at their defaults.
pub(crate) fn fit_degree(
    iv: &Path,
    v_in: f64,
    degree: usize,
    out: &Path,
    json: &Path,
) -> Result<()> {
    fit(FitArgs {
        iv: iv.to_path_buf(),
        v_in,
        degree,
        offset: 0.45,
        weighted: false,
        form: Form::OneD,
        degree_v_in: 3,
        base: "paper-nonlinear".into(),
        out: out.to_path_buf(),
        plot: None,
        json: Some(json.to_path_buf()),
    })
}

/// The table in the fitter's units: voltages in V, currents in µA; `place[k]` names row k in errors.
struct Table {
    v_store: Vec<f64>,
    v_in: Vec<f64>,
    i_ua: Vec<f64>,
    place: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Quantity {
    VStore,
    VIn,
    IOut,
}

impl Quantity {
    const ALL: [Quantity; 3] = [Quantity::VStore, Quantity::VIn, Quantity::IOut];
    fn stem(self) -> &'static str {
        match self {
            Quantity::VStore => "v_store",
            Quantity::VIn => "v_in",
            Quantity::IOut => "i_out",
        }
    }
}

/// What a CSV column name means: its quantity, the factor to V or µA, and the unit as written.
fn column(path: &Path, name: &str) -> Result<(Quantity, f64, String)> {
    let what = "name the columns v_store_v, v_in_v, i_out_a (units: _v or _mv for voltages; _a, _ma, _ua or _na \
                for currents)";
    // The longest stem first: none is a prefix of another, but keep it robust.
    let Some(q) = Quantity::ALL
        .into_iter()
        .find(|q| name == q.stem() || name.starts_with(&format!("{}_", q.stem())))
    else {
        bail!(
            "{}: unknown column `{name}` in the header: {what}",
            path.display()
        );
    };
    let Some(unit) = name
        .strip_prefix(q.stem())
        .and_then(|u| u.strip_prefix('_'))
    else {
        bail!("{}: column `{name}` has no unit: {what}", path.display());
    };
    let voltage = match unit {
        "v" | "V" => Some(1.0),
        "mv" | "mV" => Some(1e-3),
        _ => None,
    };
    let current = match unit {
        "a" | "A" => Some(1e6),
        "ma" | "mA" => Some(1e3),
        "ua" | "uA" | "µa" | "µA" => Some(1.0),
        "na" | "nA" => Some(1e-3),
        _ => None,
    };
    let factor = match q {
        Quantity::IOut => current.ok_or_else(|| {
            anyhow!(
                "{}: column `{name}`: `{unit}` is not a current unit: give i_out_a, i_out_ma, i_out_ua or i_out_na",
                path.display()
            )
        })?,
        _ => voltage.ok_or_else(|| {
            anyhow!(
                "{}: column `{name}`: `{unit}` is not a voltage unit: give {stem}_v or {stem}_mv",
                path.display(),
                stem = q.stem()
            )
        })?,
    };
    Ok((q, factor, unit.to_lowercase()))
}

fn read_csv(path: &Path) -> Result<Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((_, header)) = lines.next() else {
        bail!(
            "{}: the table is empty: give a header row (v_store_v,v_in_v,i_out_a) and one row per point",
            path.display()
        );
    };
    let header = header.trim_start_matches('\u{feff}');
    let names: Vec<&str> = header
        .split(',')
        .map(|s| s.trim().trim_matches('"'))
        .collect();
    if names.first().is_some_and(|n| n.parse::<f64>().is_ok()) {
        bail!(
            "{}: the first line is numbers, not a header: start the file with a header row naming each column \
             with its unit, e.g. v_store_v,v_in_v,i_out_a",
            path.display()
        );
    }
    let mut cols: Vec<(Quantity, f64, String)> = Vec::new();
    for name in &names {
        let c = column(path, name)?;
        if let Some(k) = cols.iter().position(|d| d.0 == c.0) {
            bail!(
                "{}: columns `{}` and `{name}` both give {}: keep one",
                path.display(),
                names[k],
                c.0.stem()
            );
        }
        cols.push(c);
    }
    for q in Quantity::ALL {
        if !cols.iter().any(|c| c.0 == q) {
            bail!(
                "{}: the header ({header}) has no {} column: the table needs v_store, v_in and i_out, each with its \
                 unit (e.g. v_store_v,v_in_v,i_out_a)",
                path.display(),
                q.stem()
            );
        }
    }
    // Both voltages in one unit: a header that mixes them was most likely edited by hand.
    let vs = cols.iter().position(|c| c.0 == Quantity::VStore).unwrap();
    let vi = cols.iter().position(|c| c.0 == Quantity::VIn).unwrap();
    if cols[vs].2 != cols[vi].2 {
        bail!(
            "{}: mixed voltage units in the header: column `{}` is in {} but `{}` in {}: give both voltage columns \
             the same unit",
            path.display(),
            names[vs],
            cols[vs].2,
            names[vi],
            cols[vi].2
        );
    }
    let mut t = Table {
        v_store: Vec::new(),
        v_in: Vec::new(),
        i_ua: Vec::new(),
        place: Vec::new(),
    };
    for (line, l) in lines {
        let fields: Vec<&str> = l.split(',').map(str::trim).collect();
        if fields.len() != cols.len() {
            bail!(
                "{}: line {line} has {} fields, the header {}: give one value per column",
                path.display(),
                fields.len(),
                cols.len()
            );
        }
        let mut row = [0.0f64; 3];
        for (k, (field, (q, factor, _))) in fields.iter().zip(&cols).enumerate() {
            let x: f64 = field.parse().map_err(|_| {
                anyhow!(
                    "{}: line {line}, column `{}`: `{field}` is not a number",
                    path.display(),
                    names[k]
                )
            })?;
            if !x.is_finite() {
                bail!(
                    "{}: line {line}, column `{}` is {x}: every value must be a finite number; remove or fix that \
                     row",
                    path.display(),
                    names[k]
                );
            }
            row[*q as usize] = x * factor;
        }
        t.v_store.push(row[0]);
        t.v_in.push(row[1]);
        t.i_ua.push(row[2]);
        t.place.push(format!("line {line}"));
    }
    Ok(t)
}

/// A .npy array as f64 (f64 or f32 on disk).
fn npy_f64(bytes: &[u8], what: &str) -> Result<ndarray::ArrayD<f64>> {
    use ndarray_npy::ReadNpyExt;
    match ndarray::ArrayD::<f64>::read_npy(bytes) {
        Ok(a) => Ok(a),
        Err(ndarray_npy::ReadNpyError::WrongDescriptor(_)) => {
            let a = ndarray::ArrayD::<f32>::read_npy(bytes)
                .map_err(|e| anyhow!("{what}: {e}: save it as float64 or float32"))?;
            Ok(a.mapv(f64::from))
        }
        Err(e) => Err(anyhow!("{what}: {e}")),
    }
}

fn from_columns(path: &Path, cols: [Vec<f64>; 3], names: [&str; 3]) -> Result<Table> {
    let [v_store, v_in, i_a] = cols;
    for (c, name) in [&v_store, &v_in, &i_a].into_iter().zip(names) {
        if let Some((r, x)) = c.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            bail!(
                "{}: row {r} (from 0), column {name} is {x}: every value must be a finite number; remove or fix \
                 that row",
                path.display()
            );
        }
    }
    let n = v_store.len();
    Ok(Table {
        place: (0..n).map(|r| format!("row {r} (from 0)")).collect(),
        i_ua: i_a.iter().map(|i| i * 1e6).collect(),
        v_store,
        v_in,
    })
}

fn read_npy(path: &Path) -> Result<Table> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let a = npy_f64(&bytes, &path.display().to_string())?;
    if a.ndim() != 2 || a.shape()[1] != 3 {
        bail!(
            "{}: the array has shape {:?}: give an N×3 array, columns V_store [V], V_in [V], I [A]",
            path.display(),
            a.shape()
        );
    }
    let col = |k: usize| a.index_axis(ndarray::Axis(1), k).iter().copied().collect();
    from_columns(
        path,
        [col(0), col(1), col(2)],
        ["0 (V_store)", "1 (V_in)", "2 (I)"],
    )
}

fn read_npz(path: &Path) -> Result<Table> {
    let arrays = candle_core::Tensor::read_npz(path)
        .map_err(|e| anyhow!("{}: not a readable .npz: {e}", path.display()))?;
    let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
    let mut cols: [Vec<f64>; 3] = Default::default();
    let mut used = ["", "", ""];
    for (k, options) in [
        ["v_store", "v_store_v"],
        ["v_in", "v_in_v"],
        ["i_out", "i_out_a"],
    ]
    .iter()
    .enumerate()
    {
        let found: Vec<&(String, candle_core::Tensor)> = arrays
            .iter()
            .filter(|(n, _)| options.contains(&n.as_str()))
            .collect();
        match found.as_slice() {
            [(name, t)] => {
                if t.dims().len() != 1 {
                    bail!(
                        "{}: array {name} has shape {:?}: give a 1-D array, one value per point",
                        path.display(),
                        t.dims()
                    );
                }
                cols[k] = t
                    .to_dtype(candle_core::DType::F64)
                    .and_then(|t| t.to_vec1::<f64>())
                    .map_err(|e| anyhow!("{}: array {name}: {e}", path.display()))?;
                used[k] = options[0];
            }
            [] => bail!(
                "{}: no array {} (or {}); it has {}: name the arrays v_store, v_in, i_out (V, V, A)",
                path.display(),
                options[0],
                options[1],
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ),
            _ => bail!(
                "{}: both {} and {} are present: keep one",
                path.display(),
                options[0],
                options[1]
            ),
        }
    }
    if let Some(extra) = names
        .iter()
        .find(|n| !["v_store", "v_store_v", "v_in", "v_in_v", "i_out", "i_out_a"].contains(n))
    {
        bail!(
            "{}: unknown array `{extra}`: the file holds only v_store, v_in, i_out (or v_store_v, v_in_v, i_out_a)",
            path.display()
        );
    }
    if cols[0].len() != cols[1].len() || cols[0].len() != cols[2].len() {
        bail!(
            "{}: the arrays have {}, {} and {} values: give one value per point in each",
            path.display(),
            cols[0].len(),
            cols[1].len(),
            cols[2].len()
        );
    }
    from_columns(path, cols, used)
}

fn read_table(path: &Path) -> Result<Table> {
    if path.is_dir() {
        bail!(
            "{} is a directory: give a .csv, .npy or .npz table",
            path.display()
        );
    }
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let t = match ext.as_str() {
        "npy" => read_npy(path)?,
        "npz" => read_npz(path)?,
        _ => read_csv(path)?,
    };
    if t.v_store.is_empty() {
        bail!("{}: the table has no rows", path.display());
    }
    Ok(t)
}

/// The distinct read voltages, ascending (values within the tolerance count once).
fn read_voltages(t: &Table) -> Vec<f64> {
    let mut v = t.v_in.clone();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| (*a - *b).abs() <= V_IN_TOLERANCE);
    v
}

/// Every read voltage's stored voltages must rise strictly in file order: a duplicate or an unsorted sweep is
/// refused (it is most likely two sweeps concatenated, or a column mix-up).
fn check_sweeps(path: &Path, t: &Table, groups: &[f64]) -> Result<()> {
    for &g in groups {
        let mut last: Option<(f64, usize)> = None;
        for k in (0..t.v_in.len()).filter(|&k| (t.v_in[k] - g).abs() <= V_IN_TOLERANCE) {
            if let Some((prev, pk)) = last {
                if t.v_store[k] <= prev {
                    bail!(
                        "{}: at v_in = {g} V the stored voltages do not strictly increase: {} has v_store = {} V \
                         after {} V ({}); sort each read voltage's sweep by v_store and remove duplicates",
                        path.display(),
                        t.place[k],
                        t.v_store[k],
                        prev,
                        t.place[pk]
                    );
                }
            }
            last = Some((t.v_store[k], k));
        }
    }
    Ok(())
}

/// Least squares `a·x ≈ b` (rows of `a`) by Householder QR; `None` when the columns are (numerically) dependent.
#[allow(clippy::needless_range_loop)] // index loops read as the algebra
fn lstsq(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let (m, n) = (a.len(), a.first().map_or(0, Vec::len));
    if m < n || n == 0 {
        return None;
    }
    let scale = a
        .iter()
        .flat_map(|r| r.iter())
        .fold(0.0f64, |s, x| s.max(x.abs()));
    for k in 0..n {
        let norm = (k..m).map(|i| a[i][k] * a[i][k]).sum::<f64>().sqrt();
        if norm <= 1e-12 * scale * (m as f64).sqrt() {
            return None;
        }
        let alpha = if a[k][k] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = (k..m).map(|i| a[i][k]).collect();
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|x| x * x).sum();
        for j in k..n {
            let s: f64 = (k..m).map(|i| v[i - k] * a[i][j]).sum();
            let f = 2.0 * s / vv;
            for i in k..m {
                a[i][j] -= f * v[i - k];
            }
        }
        let s: f64 = (k..m).map(|i| v[i - k] * b[i]).sum();
        let f = 2.0 * s / vv;
        for i in k..m {
            b[i] -= f * v[i - k];
        }
    }
    let mut x = vec![0.0; n];
    for k in (0..n).rev() {
        let s: f64 = (k + 1..n).map(|j| a[k][j] * x[j]).sum();
        x[k] = (b[k] - s) / a[k][k];
    }
    Some(x)
}

/// A variable mapped onto [−1, 1]: t = (x − centre) / half.
#[derive(Clone, Copy)]
struct Scale {
    centre: f64,
    half: f64,
}

impl Scale {
    fn of(xs: &[f64]) -> Scale {
        let (lo, hi) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
                (l.min(x), h.max(x))
            });
        let half = (hi - lo) / 2.0;
        Scale {
            centre: (hi + lo) / 2.0,
            half: if half > 0.0 { half } else { 1.0 },
        }
    }
    fn t(&self, x: f64) -> f64 {
        (x - self.centre) / self.half
    }
    /// `m[j][k]`: the coefficient of x^j in t^k, for k ≤ degree.
    fn to_monomials(self, degree: usize) -> Vec<Vec<f64>> {
        let mut m = vec![vec![0.0; degree + 1]; degree + 1];
        for k in 0..=degree {
            // t^k = Σ_j C(k, j) x^j (−c)^(k−j) / h^k
            let mut binom = 1.0;
            for (j, row) in m.iter_mut().enumerate().take(k + 1) {
                row[k] = binom * (-self.centre).powi((k - j) as i32) / self.half.powi(k as i32);
                binom = binom * (k - j) as f64 / (j + 1) as f64;
            }
        }
        m
    }
}

fn horner(c: &[f64], y: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, g| acc * y + g)
}

/// Weighted least-squares polynomial of `degree` in `y`, monomial coefficients (constant first).
fn polyfit(y: &[f64], f: &[f64], w: &[f64], degree: usize) -> Option<Vec<f64>> {
    let s = Scale::of(y);
    let rows = y
        .iter()
        .zip(w)
        .map(|(&y, &w)| {
            let (t, r) = (s.t(y), w.sqrt());
            (0..=degree).map(|k| r * t.powi(k as i32)).collect()
        })
        .collect();
    let rhs = f.iter().zip(w).map(|(f, w)| f * w.sqrt()).collect();
    let a = lstsq(rows, rhs)?;
    let m = s.to_monomials(degree);
    Some(
        (0..=degree)
            .map(|j| (0..=degree).map(|k| m[j][k] * a[k]).sum())
            .collect(),
    )
}

/// Weighted least squares of Σ c_ij·y^i·v^j (i ≤ dy, j ≤ dv); `c[i][j]` in monomials.
#[allow(clippy::needless_range_loop)] // index loops read as the algebra
fn polyfit_2d(
    y: &[f64],
    v: &[f64],
    f: &[f64],
    w: &[f64],
    dy: usize,
    dv: usize,
) -> Option<Vec<Vec<f64>>> {
    let (sy, sv) = (Scale::of(y), Scale::of(v));
    let rows = (0..y.len())
        .map(|k| {
            let (ty, tv, r) = (sy.t(y[k]), sv.t(v[k]), w[k].sqrt());
            let mut row = Vec::with_capacity((dy + 1) * (dv + 1));
            for i in 0..=dy {
                for j in 0..=dv {
                    row.push(r * ty.powi(i as i32) * tv.powi(j as i32));
                }
            }
            row
        })
        .collect();
    let rhs = f.iter().zip(w).map(|(f, w)| f * w.sqrt()).collect();
    let a = lstsq(rows, rhs)?;
    let (my, mv) = (sy.to_monomials(dy), sv.to_monomials(dv));
    let at = |i: usize, j: usize| a[i * (dv + 1) + j];
    Some(
        (0..=dy)
            .map(|p| {
                (0..=dv)
                    .map(|q| {
                        let mut s = 0.0;
                        for i in 0..=dy {
                            for j in 0..=dv {
                                s += my[p][i] * at(i, j) * mv[q][j];
                            }
                        }
                        s
                    })
                    .collect()
            })
            .collect(),
    )
}

/// Residual figures of a model's predictions against the data (unweighted).
#[derive(Clone, Copy)]
struct Quality {
    rms: f64,
    max_abs: f64,
    r_squared: f64,
}

fn quality(pred: &[f64], f: &[f64]) -> Quality {
    let n = f.len() as f64;
    let mean = f.iter().sum::<f64>() / n;
    let ss_res: f64 = pred.iter().zip(f).map(|(p, f)| (p - f).powi(2)).sum();
    let ss_tot: f64 = f.iter().map(|f| (f - mean).powi(2)).sum();
    Quality {
        rms: (ss_res / n).sqrt(),
        max_abs: pred
            .iter()
            .zip(f)
            .map(|(p, f)| (p - f).abs())
            .fold(0.0, f64::max),
        r_squared: if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            f64::NAN
        },
    }
}

impl Quality {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "residuals": { "rms_ua": self.rms, "max_abs_ua": self.max_abs },
            "r_squared": finite_or_null(self.r_squared),
        })
    }
}

fn finite_or_null(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!(x)
    } else {
        serde_json::Value::Null
    }
}

/// The key DAC's write levels (V) of `chip`: its grid, anchored at zero as the quantiser's.
fn write_levels(chip: &ChipConfig) -> (Vec<f64>, f64) {
    let k = &chip.key;
    let step = (k.max - k.min) / (k.levels().max(2) - 1) as f64;
    let (lo, hi) = ((k.min / step).round() as i64, (k.max / step).round() as i64);
    ((lo..=hi).map(|i| i as f64 * step).collect(), step)
}

/// `a + b·y − c·y² …` with 6 significant digits.
fn formula(c: &[f64]) -> String {
    let sup = ["", "", "²", "³", "⁴", "⁵", "⁶", "⁷"];
    let mut s = String::new();
    for (i, &g) in c.iter().enumerate() {
        let term = match i {
            0 => sig(g.abs()),
            1 => format!("{}·y", sig(g.abs())),
            _ => format!("{}·y{}", sig(g.abs()), sup[i]),
        };
        if i == 0 {
            s.push_str(&if g < 0.0 { format!("−{term}") } else { term });
        } else {
            s.push_str(if g < 0.0 { " − " } else { " + " });
            s.push_str(&term);
        }
    }
    s
}

pub(crate) fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (5 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

/// A path for a comment line: control characters shown as escapes.
fn comment_safe(p: &Path) -> String {
    p.display()
        .to_string()
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn fit(a: FitArgs) -> Result<()> {
    if a.degree == 0 || a.degree > MAX_DEGREE {
        bail!(
            "--degree {} is out of range: give 1 to {MAX_DEGREE} (the chip's polynomial cell takes at most {} \
             coefficients)",
            a.degree,
            MAX_DEGREE + 1
        );
    }
    if a.form == Form::TwoD && a.degree_v_in > MAX_DEGREE {
        bail!(
            "--degree-v-in {} is out of range: give 0 to {MAX_DEGREE}",
            a.degree_v_in
        );
    }
    for (flag, x) in [("--v-in", a.v_in), ("--offset", a.offset)] {
        if !x.is_finite() {
            bail!("{flag} is {x}: give a finite voltage");
        }
    }
    let base = preset(&a.base).ok_or_else(|| {
        anyhow!(
            "--base {} is not a preset: give one of {}",
            a.base,
            PRESET_NAMES.join(", ")
        )
    })?;
    if !base.is_gain_cell() {
        bail!(
            "--base {} is a softmax chip, which has no cell: give a gain-cell preset (paper-nonlinear, \
             paper-linear, …)",
            a.base
        );
    }
    let stdout_out = paths::is_stdout(&a.out);
    let stdout_json = a.json.as_deref().is_some_and(paths::is_stdout);
    if stdout_out && stdout_json {
        bail!("--out - and --json - both name standard output: send one of them to a file");
    }
    let mut outputs: Vec<(&str, PathBuf)> = Vec::new();
    if !stdout_out {
        outputs.push(("--out", a.out.clone()));
    }
    if let Some(j) = a.json.as_ref().filter(|_| !stdout_json) {
        outputs.push(("--json", j.clone()));
    }
    if let Some(p) = &a.plot {
        for ext in ["png", "svg"] {
            outputs.push(("--plot", PathBuf::from(format!("{}.{ext}", p.display()))));
        }
    }
    for (flag, o) in &outputs {
        paths::refuse_overlap(flag, o, &[("--iv", &a.iv)])?;
    }
    let quiet = stdout_out || stdout_json;

    let t = read_table(&a.iv)?;
    let groups = read_voltages(&t);
    check_sweeps(&a.iv, &t, &groups)?;
    let sel: Vec<usize> = (0..t.v_in.len())
        .filter(|&k| (t.v_in[k] - a.v_in).abs() <= V_IN_TOLERANCE)
        .collect();
    if sel.is_empty() {
        let shown: Vec<String> = groups.iter().take(6).map(|v| format!("{v}")).collect();
        bail!(
            "{}: no row has v_in = {} V (within 1e-9 V); the table's read voltages are {}{}: give one of them with \
             --v-in",
            a.iv.display(),
            a.v_in,
            shown.join(", "),
            if groups.len() > shown.len() {
                format!(", … ({} in all, up to {})", groups.len(), groups.last().unwrap())
            } else {
                String::new()
            }
        );
    }
    if sel.len() <= a.degree {
        bail!(
            "{}: only {} point(s) at v_in = {} V: a degree-{} fit needs at least {}; lower --degree or give more \
             stored voltages",
            a.iv.display(),
            sel.len(),
            a.v_in,
            a.degree,
            a.degree + 1
        );
    }
    let y_all: Vec<f64> = t.v_store.iter().map(|v| v - a.offset).collect();
    let (levels, step) = write_levels(&base);
    let sigma = step / 4.0;
    let weight = |v_store: f64| {
        if a.weighted {
            let d = levels
                .iter()
                .map(|l| (v_store - l).abs())
                .fold(f64::INFINITY, f64::min);
            (-0.5 * (d / sigma).powi(2)).exp()
        } else {
            1.0
        }
    };
    let w_all: Vec<f64> = t.v_store.iter().map(|&v| weight(v)).collect();
    let y: Vec<f64> = sel.iter().map(|&k| y_all[k]).collect();
    let f: Vec<f64> = sel.iter().map(|&k| t.i_ua[k]).collect();
    let w: Vec<f64> = sel.iter().map(|&k| w_all[k]).collect();
    let undetermined = |what: &str| {
        anyhow!(
            "{}: the points {what} do not determine a degree-{} fit (too few distinct stored voltages): lower \
             --degree or give more stored voltages",
            a.iv.display(),
            a.degree
        )
    };

    let mut two_d: Option<(Vec<Vec<f64>>, Quality)> = None;
    let coefficients = match a.form {
        Form::OneD => polyfit(&y, &f, &w, a.degree)
            .ok_or_else(|| undetermined(&format!("at v_in = {} V", a.v_in)))?,
        Form::TwoD => {
            if groups.len() <= a.degree_v_in {
                bail!(
                    "{}: {} read voltage(s) cannot determine a degree-{} fit in V_in: lower --degree-v-in or give \
                     more read voltages",
                    a.iv.display(),
                    groups.len(),
                    a.degree_v_in
                );
            }
            let c = polyfit_2d(&y_all, &t.v_in, &t.i_ua, &w_all, a.degree, a.degree_v_in)
                .ok_or_else(|| undetermined("of the table"))?;
            let pred: Vec<f64> = (0..y_all.len())
                .map(|k| {
                    let per_i: Vec<f64> = c.iter().map(|row| horner(row, t.v_in[k])).collect();
                    horner(&per_i, y_all[k])
                })
                .collect();
            let q = quality(&pred, &t.i_ua);
            let collapsed = c.iter().map(|row| horner(row, a.v_in)).collect();
            two_d = Some((c, q));
            collapsed
        }
    };
    let pred: Vec<f64> = y.iter().map(|&y| horner(&coefficients, y)).collect();
    let q = quality(&pred, &f);

    // The chip file: the base, the offset as its mid-rail voltage, the polynomial cell.
    let name = if stdout_out {
        "fitted-cell".to_string()
    } else {
        a.out
            .file_stem()
            .map_or("fitted-cell".into(), |s| s.to_string_lossy().into_owned())
    };
    let how = match a.form {
        Form::OneD => format!(
            "1-D least squares{}",
            if a.weighted { ", weighted to the key-DAC levels" } else { "" }
        ),
        Form::TwoD => format!(
            "the 2-D fit (degree {} in V_in, {} rows{}) evaluated at v_in: Σ_j c_ij·v_in^j for each i",
            a.degree_v_in,
            t.v_in.len(),
            if a.weighted { ", weighted to the key-DAC levels" } else { "" }
        ),
    };
    let mut table = toml::Table::new();
    table.insert("base".into(), a.base.clone().into());
    table.insert("name".into(), name.into());
    table.insert(
        "description".into(),
        format!(
            "{} with a degree-{} cell fitted to {} at v_in = {} V (R² {})",
            a.base,
            a.degree,
            a.iv.display(),
            a.v_in,
            sig(q.r_squared)
        )
        .into(),
    );
    table.insert("weight_offset".into(), a.offset.into());
    let mut cell = toml::Table::new();
    cell.insert("kind".into(), "polynomial".into());
    cell.insert(
        "coefficients".into(),
        toml::Value::Array(coefficients.iter().map(|&c| c.into()).collect()),
    );
    table.insert("cell".into(), cell.into());
    let body = toml::to_string(&table).context("internal: writing the chip TOML")?;
    let text = format!(
        "# Cell curve fitted by `gaincell cell fit` to {}\n# at v_in = {} V, y = v_store − {} V, degree {}: {}.\n\
         # {} points, R² = {}, residual RMS {} µA, max {} µA. Currents in µA, y in V.\n{body}",
        comment_safe(&a.iv),
        a.v_in,
        a.offset,
        a.degree,
        how,
        sel.len(),
        sig(q.r_squared),
        sig(q.rms),
        sig(q.max_abs)
    );
    ChipConfig::from_toml_str(&text, &a.out.display().to_string())
        .context("internal: the fitted chip file does not load")?;

    human!(
        quiet,
        "fit of {} at v_in = {} V, y = v_store − {} V: {} points, degree {}{}",
        a.iv.display(),
        a.v_in,
        a.offset,
        sel.len(),
        a.degree,
        if a.weighted {
            ", weighted to the key-DAC levels"
        } else {
            ""
        }
    );
    if let Some((c, q2)) = &two_d {
        human!(
            quiet,
            "2-D fit over all {} rows, c_ij of y^i·V_in^j (row i = power of y, j = 0..{}):",
            t.v_in.len(),
            a.degree_v_in
        );
        for (i, row) in c.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|x| format!("{x:>12.6}")).collect();
            human!(quiet, "  i = {i}: {}", cells.join(" "));
        }
        human!(
            quiet,
            "  residuals over all rows: RMS {} µA, max |r| {} µA; R² = {}",
            sig(q2.rms),
            sig(q2.max_abs),
            sig(q2.r_squared)
        );
        human!(quiet, "curve at v_in = {} V (Σ_j c_ij·v_in^j):", a.v_in);
    }
    let list: Vec<String> = coefficients.iter().map(|c| format!("{c:.6}")).collect();
    human!(
        quiet,
        "coefficients (µA, constant first): [{}]",
        list.join(", ")
    );
    human!(quiet, "f(y) = {} µA", formula(&coefficients));
    human!(
        quiet,
        "residuals: RMS {} µA, max |r| {} µA; R² = {}",
        sig(q.rms),
        sig(q.max_abs),
        sig(q.r_squared)
    );

    if let Some(prefix) = &a.plot {
        let pts: Vec<(f64, f64)> = y.iter().copied().zip(f.iter().copied()).collect();
        let written = draw_fit(prefix, &pts, &coefficients, a.v_in)?;
        for p in written {
            human!(quiet, "wrote {}", p.display());
        }
    }
    if let Some(j) = &a.json {
        let mut v = serde_json::json!({
            "iv": a.iv.display().to_string(),
            "form": match a.form { Form::OneD => "1d", Form::TwoD => "2d" },
            "v_in": a.v_in,
            "offset": a.offset,
            "degree": a.degree,
            "weighted": a.weighted,
            "n_points": sel.len(),
            "coefficients": coefficients,
            "base": a.base,
            "out": a.out.display().to_string(),
        });
        for (k, x) in q.json().as_object().unwrap() {
            v[k] = x.clone();
        }
        if a.weighted {
            v["weights"] = serde_json::json!({
                "levels_v": levels,
                "sigma_v": sigma,
                "formula": "exp(-(d/sigma)^2/2), d = distance from v_store to the nearest level",
            });
        }
        if let Some((c, q2)) = &two_d {
            let mut f2 = serde_json::json!({
                "degree_v_in": a.degree_v_in,
                "coefficients": c,
                "n_points": t.v_in.len(),
            });
            for (k, x) in q2.json().as_object().unwrap() {
                f2[k] = x.clone();
            }
            v["fit_2d"] = f2;
        }
        let text = serde_json::to_string_pretty(&v).context("internal: JSON")?;
        paths::write_output(j, text + "\n")?;
        if !stdout_json {
            human!(quiet, "wrote {}", j.display());
        }
    }
    paths::write_output(&a.out, &text)?;
    if !stdout_out {
        human!(
            quiet,
            "wrote {} (base {}): gaincell chip show {} prints it whole; every --chip takes it",
            a.out.display(),
            a.base,
            a.out.display()
        );
    }
    Ok(())
}

/// The data, the fitted curve and the linear model on one chart: PREFIX.png and PREFIX.svg.
fn draw_fit(prefix: &Path, pts: &[(f64, f64)], c: &[f64], v_in: f64) -> Result<Vec<PathBuf>> {
    plot::font_ready()?;
    let dir = prefix
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = prefix
        .file_name()
        .ok_or_else(|| {
            anyhow!(
                "--plot {}: give a file prefix, not a folder",
                prefix.display()
            )
        })?
        .to_string_lossy()
        .into_owned();
    let (x0, x1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.0), b.max(p.0))
        });
    let curve: Vec<(f64, f64)> = (0..=200)
        .map(|k| {
            let x = x0 + (x1 - x0) * k as f64 / 200.0;
            (x, horner(c, x))
        })
        .collect();
    let linear: Vec<(f64, f64)> = [x0, x1].iter().map(|&x| (x, LINEAR_SLOPE * x)).collect();
    let ys = pts.iter().chain(&curve).chain(&linear).map(|p| p.1);
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let (px, py) = ((x1 - x0).max(1e-9) * 0.04, (y1 - y0).max(1e-9) * 0.06);
    let range = ((x0 - px)..(x1 + px), (y0 - py)..(y1 + py));
    let title = format!("cell fit at V_in = {v_in} V");
    let draw = |canvas: Canvas| match canvas {
        Canvas::Png(a) => draw_on(a, &title, range.clone(), pts, &curve, &linear),
        Canvas::Svg(a) => draw_on(a, &title, range.clone(), pts, &curve, &linear),
    };
    plot::save(dir, &stem, draw)
}

type Range2 = (std::ops::Range<f64>, std::ops::Range<f64>);

fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    (xr, yr): Range2,
    pts: &[(f64, f64)],
    curve: &[(f64, f64)],
    linear: &[(f64, f64)],
) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing a plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(xr, yr)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("y = V_store − offset (V)")
        .y_desc("I (µA)")
        .x_label_formatter(&|x| format!("{x:.2}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let [data, fit, lin, ..] = plot::COLOURS;
    chart
        .draw_series(pts.iter().map(|&p| Circle::new(p, 4, data.filled())))
        .map_err(err)?
        .label("data")
        .legend(move |(x, y)| Circle::new((x + 12, y), 4, data.filled()));
    chart
        .draw_series(LineSeries::new(curve.iter().copied(), fit.stroke_width(2)))
        .map_err(err)?
        .label("fit")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], fit.stroke_width(2)));
    chart
        .draw_series(DashedLineSeries::new(
            linear.iter().copied(),
            10,
            6,
            lin.stroke_width(2),
        ))
        .map_err(err)?
        .label(format!("linear model {LINEAR_SLOPE}·y"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], lin.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
