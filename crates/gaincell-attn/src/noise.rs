//! Device variation and noise as the kernels apply them (docs/chip-model.md#noise-and-variation): one place that
//! says which draw perturbs which value, shared by the parallel form, the incremental form and the backward, so
//! that all three see the same numbers. Every draw is keyed by where it happens (gaincell_chip::draw):
//!
//! - a stored weight: `w = (1 + σ_g·z_g)·(Q(x) − offset + σ_w·z_w) + σ_o·z_o`, with the cell's gain and offset
//!   `z_g, z_o` static per (layer, key/value head, K or V, ring slot, dim) and the write's `z_w` per (layer,
//!   sequence, key/value head, position, write count, dim);
//! - a score: `S + σ_r·z_r` per (layer, sequence, query head, query position, key position), then the key
//!   column's converter `φ = clamp(((1 + σ_cg·z)·S − σ_ct·z) / S_sat, 0, 1)`, static per (layer, key/value head,
//!   slot);
//! - a sub-tile output line: `Σ + σ_r·z_r` per (layer, sequence, query head, query position, tile, dim), then its
//!   converter and counter `clamp(((1 + σ_kg·z)·Σ − σ_kt·z) / A_sat, −1, 1)`, static per (layer, key/value head,
//!   tile, dim). A sub-tile holding no live column is idle: it is not read, and reads out zero as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use gaincell_chip::draw::{Source, Stream};
use gaincell_chip::ChipConfig;

/// Where a kernel call sits on the chip: its layer, and how its `heads` map to physical heads. Kernel head `h` is
/// sequence `h / heads`, query head `h % heads`, reading the arrays of key/value head `(h % heads) / group`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Site {
    pub layer: usize,
    /// Query heads per sequence; 0: every kernel head is a head of one sequence.
    pub heads: usize,
    /// Query heads per key/value head (grouped-query attention); 0 or 1: one each.
    pub group: usize,
}

/// One head of one sequence on the chip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadSite {
    pub layer: usize,
    pub seq: usize,
    /// The query head that reads.
    pub head: usize,
    /// The key/value head whose arrays it reads.
    pub kv_head: usize,
}

impl Site {
    pub fn new(layer: usize, heads: usize, group: usize) -> Self {
        Site {
            layer,
            heads,
            group,
        }
    }

    /// Kernel head `h` of a call with `total` heads.
    pub fn head(&self, h: usize, total: usize) -> HeadSite {
        let heads = if self.heads == 0 { total } else { self.heads };
        let head = h % heads;
        HeadSite {
            layer: self.layer,
            seq: h / heads,
            head,
            kv_head: head / self.group.max(1),
        }
    }
}

/// The draws of one source: its stream and σ(s).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Src<const N: usize> {
    stream: Stream,
    sigma: [f32; N],
}

/// The chip's noise, resolved; `None` in [`crate::GainCellParams`] when every σ is 0.
#[derive(Debug, Clone)]
pub(crate) struct NoiseParams {
    cell: Option<Src<2>>,
    converter: Option<Src<2>>,
    counter: Option<Src<2>>,
    write: Option<Src<1>>,
    score_read: Option<Src<1>>,
    value_read: Option<Src<1>>,
    /// The cell-variation tables drawn so far, shared by clones (the same chip instance).
    cell_tables: Arc<Mutex<CellTables>>,
}

/// The static variation of one key/value head's cells, slots `0..len() / d`: per (ring slot, dim) the gain
/// `1 + σ_g·z_g` and offset `σ_o·z_o` of its K and V cells, exactly as [`NoiseParams::store`] would draw them.
#[derive(Debug)]
pub(crate) struct CellTable {
    k_gain: Vec<f32>,
    k_offset: Vec<f32>,
    v_gain: Vec<f32>,
    v_offset: Vec<f32>,
}

impl CellTable {
    fn bytes(&self) -> usize {
        4 * (self.k_gain.len() + self.k_offset.len() + self.v_gain.len() + self.v_offset.len())
    }
}

/// Tables by (layer, key/value head, dims), and the bytes they hold.
#[derive(Debug, Default)]
struct CellTables {
    tables: HashMap<(usize, usize, usize), Arc<CellTable>>,
    bytes: usize,
}

/// Beyond this many bytes of tables (a large model's every head), cell variation is drawn per store instead.
const CELL_TABLE_BYTES: usize = 256 << 20;

/// How a store finds its cells' gain and offset.
#[derive(Debug, Clone)]
pub(crate) enum Cells {
    /// No cell variation: gain 1, offset 0.
    Off,
    /// Looked up in the head's table (a chip's cells are fixed, so every call of a layer reads one table
    /// instead of drawing it again: training and evaluation call each layer thousands of times).
    Table(Arc<CellTable>),
    /// Drawn per store (the tables are over their memory bound): the streams of the K and V arrays.
    Draw(Stream, Stream, [f32; 2]),
}

/// The gains `1 + σ_g·z_g` and offsets `σ_o·z_o` of dims `c0, c0 + 1, …` of slot `slot`'s K and V cells, from
/// the arrays' streams `sk`, `sv`, into `[k gain, k offset, v gain, v offset]`: the one formula of a cell, for
/// its table and for a store drawn without one.
fn draw_cells(
    (sk, sv, [sg, so]): (Stream, Stream, [f32; 2]),
    slot: usize,
    c0: usize,
    [kg, ko, vg, vo]: [&mut [f32]; 4],
) {
    sk.at(slot as u64).pairs(c0 as u64, kg, ko);
    sv.at(slot as u64).pairs(c0 as u64, vg, vo);
    for (g, o) in kg.iter_mut().zip(ko).chain(vg.iter_mut().zip(vo)) {
        (*g, *o) = (1.0 + sg * *g, so * *o);
    }
}

fn src<const N: usize>(seed: u64, source: Source, sigma: [f64; N]) -> Option<Src<N>> {
    sigma.iter().any(|s| *s > 0.0).then(|| Src {
        stream: Stream::new(seed, source),
        sigma: sigma.map(|s| s as f32),
    })
}

/// `(1 + σ_g·z_g)·(w + σ_w·z_w) + σ_o·z_o`, the one formula of a stored weight (the forms must round alike).
#[inline(always)]
pub(crate) fn stored(w: f32, write: f32, gain: f32, offset: f32) -> f32 {
    gain * (w + write) + offset
}

/// Per-head tables of the static converter variation and the streams of the reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadNoise {
    /// Per key slot: converter gain (1 + σ·z) and threshold; empty without converter variation.
    pub conv_gain: Vec<f32>,
    pub conv_threshold: Vec<f32>,
    /// Per (tile, dim): counter gain and threshold; empty without counter variation.
    pub count_gain: Vec<f32>,
    pub count_threshold: Vec<f32>,
    pub score_read: Option<(Stream, f32)>,
    pub value_read: Option<(Stream, f32)>,
}

impl HeadNoise {
    /// φ of score `s` read at key slot `slot` (the read noise already added).
    #[inline(always)]
    pub fn phi(&self, s: f32, slot: usize, inv_s_sat: f32) -> f32 {
        (self.phi_arg(s, slot) * inv_s_sat).clamp(0.0, 1.0)
    }

    /// The charge the converter of key slot `slot` sees for score `s`: `gain·s − threshold`.
    #[inline(always)]
    pub fn phi_arg(&self, s: f32, slot: usize) -> f32 {
        if self.conv_gain.is_empty() {
            s
        } else {
            self.conv_gain[slot] * s - self.conv_threshold[slot]
        }
    }

    /// The gain of line `c` of tile `m`'s counter (1 without counter variation).
    #[inline(always)]
    pub fn counter_gain(&self, m: usize, c: usize, d: usize) -> f32 {
        if self.count_gain.is_empty() {
            1.0
        } else {
            self.count_gain[m * d + c]
        }
    }

    /// The charge counted for line `c` of tile `m` with `d` dims per line (read noise already added).
    #[inline(always)]
    pub fn counted(&self, y: f32, m: usize, c: usize, d: usize) -> f32 {
        if self.count_gain.is_empty() {
            y
        } else {
            self.count_gain[m * d + c] * y - self.count_threshold[m * d + c]
        }
    }

    /// Add the read noise of query `t`'s scores for key positions `from..from + row.len()`.
    #[inline]
    pub fn add_score_read(&self, t: usize, from: usize, row: &mut [f32]) {
        if let Some((s, sigma)) = self.score_read {
            s.at(t as u64).add(from as u64, sigma, row);
        }
    }

    /// Add the read noise of query `t`'s output lines of tile `m` (`y` holds its `d` lines).
    #[inline]
    pub fn add_value_read(&self, t: usize, m: usize, y: &mut [f32]) {
        if let Some((s, sigma)) = self.value_read {
            s.at(t as u64).add((m * y.len()) as u64, sigma, y);
        }
    }

    /// The read noise of query `t`'s output lines of tiles `0, 1, …`, written to `y` (`d` lines a tile, as
    /// many tiles as `y` holds; zeros without value-read noise): one call for a whole row, the same draws as
    /// [`HeadNoise::add_value_read`] per tile (a tile's 64 draws alone are too few to fill the generator's
    /// vectors).
    #[inline]
    pub fn set_value_reads(&self, t: usize, y: &mut [f32]) {
        match self.value_read {
            Some((s, sigma)) => s.at(t as u64).set(0, sigma, y),
            None => y.fill(0.0),
        }
    }
}

impl NoiseParams {
    /// The chip's noise, or `None` when every σ is 0 (the kernels then skip all of this).
    pub fn new(chip: &ChipConfig) -> Option<Self> {
        if chip.variation.is_off() && chip.noise.is_off() {
            return None;
        }
        let (v, n) = (&chip.variation, &chip.noise);
        Some(NoiseParams {
            cell: src(
                v.seed,
                Source::Cell,
                [v.cell_gain_sigma, v.cell_offset_sigma_v],
            ),
            converter: src(
                v.seed,
                Source::Converter,
                [v.c2p_gain_sigma, v.c2p_threshold_sigma_ua],
            ),
            counter: src(
                v.seed,
                Source::Counter,
                [v.counter_gain_sigma, v.counter_threshold_sigma_ua],
            ),
            write: src(n.seed, Source::Write, [n.write_sigma_v]),
            score_read: src(n.seed, Source::ScoreRead, [n.score_read_sigma_ua]),
            value_read: src(n.seed, Source::ValueRead, [n.value_read_sigma_ua]),
            cell_tables: Default::default(),
        })
    }

    /// The cells of head `at`'s arrays for slots `0..slots` of `d` dims: its table (drawn on first use, again
    /// when a call needs more slots), or their streams when the tables are over their memory bound.
    pub fn cells(&self, at: HeadSite, slots: usize, d: usize) -> Cells {
        let Some(s) = self.cell else {
            return Cells::Off;
        };
        let base = s.stream.at(at.layer as u64).at(at.kv_head as u64);
        let (sk, sv) = (base.at(0), base.at(1));
        let key = (at.layer, at.kv_head, d);
        let lock = || {
            self.cell_tables
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        let bytes = 16 * slots * d;
        {
            let tables = lock();
            let held = tables.tables.get(&key);
            if let Some(t) = held.filter(|t| t.k_gain.len() >= slots * d) {
                return Cells::Table(t.clone());
            }
            if tables.bytes - held.map_or(0, |t| t.bytes()) + bytes > CELL_TABLE_BYTES {
                return Cells::Draw(sk, sv, s.sigma);
            }
        }
        // Drawn outside the lock: the other heads of the call draw theirs meanwhile.
        let n = slots * d;
        let (mut kg, mut ko, mut vg, mut vo) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for slot in 0..slots {
            let r = slot * d..(slot + 1) * d;
            draw_cells(
                (sk, sv, s.sigma),
                slot,
                0,
                [
                    &mut kg[r.clone()],
                    &mut ko[r.clone()],
                    &mut vg[r.clone()],
                    &mut vo[r],
                ],
            );
        }
        let table = Arc::new(CellTable {
            k_gain: kg,
            k_offset: ko,
            v_gain: vg,
            v_offset: vo,
        });
        let mut tables = lock();
        if let Some(old) = tables.tables.insert(key, table.clone()) {
            tables.bytes -= old.bytes();
        }
        tables.bytes += table.bytes();
        Cells::Table(table)
    }

    /// True when stored weights are perturbed (cell variation or write noise).
    pub fn perturbs_weights(&self) -> bool {
        self.cell.is_some() || self.write.is_some()
    }

    pub fn has_write_noise(&self) -> bool {
        self.write.is_some()
    }

    /// Perturb the key and value weights `k`, `v` (`Q(x) − offset`, D values each) of position `pos`, written for
    /// the `writes`-th time (0: the token's own write), into slot `slot` of head `at`'s arrays, whose cells
    /// are `cells` ([`NoiseParams::cells`] of the same head). Returns the cell gains of the keys and values in
    /// `gains` when given (the backward's chain rule needs them).
    #[allow(clippy::too_many_arguments)]
    pub fn store(
        &self,
        at: HeadSite,
        cells: &Cells,
        slot: usize,
        pos: usize,
        writes: usize,
        k: &mut [f32],
        v: &mut [f32],
        gains: Option<(&mut [f32], &mut [f32])>,
    ) {
        let write = self.write.map(|s| {
            let st = s
                .stream
                .at(at.layer as u64)
                .at(at.seq as u64)
                .at(at.kv_head as u64)
                .at(pos as u64)
                .at(writes as u64);
            (st, s.sigma[0])
        });
        // Draws in chunks of dims (vectorised): write (key, value), then each array's cell (gain, offset).
        const C: usize = 64;
        let mut z = [[0.0f32; C]; 6];
        let mut gains = gains;
        let d = k.len();
        for c0 in (0..d).step_by(C) {
            let n = (d - c0).min(C);
            let [zk, zv, gk, ok, gv, ov] = &mut z;
            if let Some((st, _)) = write {
                st.pairs(c0 as u64, &mut zk[..n], &mut zv[..n]);
            }
            let sw = write.map_or(0.0, |w| w.1);
            match cells {
                Cells::Off => {
                    gk[..n].fill(1.0);
                    gv[..n].fill(1.0);
                    ok[..n].fill(0.0);
                    ov[..n].fill(0.0);
                }
                Cells::Table(t) => {
                    let r = slot * d + c0..slot * d + c0 + n;
                    gk[..n].copy_from_slice(&t.k_gain[r.clone()]);
                    ok[..n].copy_from_slice(&t.k_offset[r.clone()]);
                    gv[..n].copy_from_slice(&t.v_gain[r.clone()]);
                    ov[..n].copy_from_slice(&t.v_offset[r]);
                }
                Cells::Draw(sk, sv, sigma) => draw_cells(
                    (*sk, *sv, *sigma),
                    slot,
                    c0,
                    [&mut gk[..n], &mut ok[..n], &mut gv[..n], &mut ov[..n]],
                ),
            }
            for i in 0..n {
                let c = c0 + i;
                k[c] = stored(k[c], sw * zk[i], gk[i], ok[i]);
                v[c] = stored(v[c], sw * zv[i], gv[i], ov[i]);
                if let Some((gkd, gvd)) = gains.as_mut() {
                    gkd[c] = gk[i];
                    gvd[c] = gv[i];
                }
            }
        }
    }

    /// The converter and read tables of head `at`, for key slots `0..slots` and output tiles `0..tiles` of `d`
    /// lines.
    pub fn head(&self, at: HeadSite, slots: usize, tiles: usize, d: usize) -> HeadNoise {
        let mut h = HeadNoise::default();
        let table = |s: Src<2>, n: usize| -> (Vec<f32>, Vec<f32>) {
            let st = s.stream.at(at.layer as u64).at(at.kv_head as u64);
            let (mut g, mut t) = (vec![0.0f32; n], vec![0.0f32; n]);
            st.pairs(0, &mut g, &mut t);
            g.iter_mut().for_each(|x| *x = 1.0 + s.sigma[0] * *x);
            t.iter_mut().for_each(|x| *x *= s.sigma[1]);
            (g, t)
        };
        if let Some(s) = self.converter {
            (h.conv_gain, h.conv_threshold) = table(s, slots);
        }
        if let Some(s) = self.counter {
            (h.count_gain, h.count_threshold) = table(s, tiles * d);
        }
        self.set_reads(at, &mut h);
        h
    }

    /// Point `h`'s read streams at the reads of query head `at.head`.
    pub fn set_reads(&self, at: HeadSite, h: &mut HeadNoise) {
        let read = |s: Src<1>| {
            let st = s
                .stream
                .at(at.layer as u64)
                .at(at.seq as u64)
                .at(at.head as u64);
            (st, s.sigma[0])
        };
        h.score_read = self.score_read.map(read);
        h.value_read = self.value_read.map(read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_table_stores_what_the_per_store_draws_store() {
        let chip = ChipConfig::from_toml_str(
            "base = \"paper-linear\"\n[variation]\nseed = 4\ncell_gain_sigma = 0.1\n\
             cell_offset_sigma_v = 0.02\n[noise]\nwrite_sigma_v = 0.01",
            "test",
        )
        .unwrap();
        let nz = NoiseParams::new(&chip).unwrap();
        let at = HeadSite {
            layer: 2,
            seq: 1,
            head: 3,
            kv_head: 1,
        };
        let d = 70; // more than one chunk of dims
        let small = nz.cells(at, 5, d);
        let big = nz.cells(at, 40, d); // grows the table
        let s = nz.cell.unwrap();
        let base = s.stream.at(2).at(1);
        let drawn = Cells::Draw(base.at(0), base.at(1), s.sigma);
        for (cells, slots) in [(&small, 5), (&big, 40), (&nz.cells(at, 12, d), 12)] {
            assert!(
                matches!(cells, Cells::Table(_)),
                "cell variation on: a table"
            );
            for slot in [0, slots / 2, slots - 1] {
                let w: Vec<f32> = (0..d).map(|c| 0.3 - 0.01 * c as f32).collect();
                let (mut k1, mut v1, mut k2, mut v2) = (w.clone(), w.clone(), w.clone(), w);
                let mut g = vec![vec![0.0f32; d]; 4];
                let [g1, h1, g2, h2] = &mut g[..] else {
                    unreachable!()
                };
                nz.store(at, cells, slot, 9, 1, &mut k1, &mut v1, Some((g1, h1)));
                nz.store(at, &drawn, slot, 9, 1, &mut k2, &mut v2, Some((g2, h2)));
                assert_eq!((k1, v1), (k2, v2), "slot {slot}");
                assert_eq!((&g[0], &g[1]), (&g[2], &g[3]), "slot {slot}");
            }
        }
    }
}
