//! Gain-cell attention, incremental form: the two arrays of one head as a ring buffer of W columns, written one
//! token at a time, leaking by age, answering one query per step (generation, as the chip runs).
//!
//! Memory follows the work, not the chip: the columns, φ, the leakage tables and the sub-tile accumulators grow
//! as tokens arrive, up to the window, so a window longer than the sequence costs nothing (a 10⁶-token chip
//! reading 100 tokens holds room for at most 216 columns). Once W tokens are written the ring wraps exactly as a
//! full-size one, and every value read is bit for bit what the full-size arrays gave.

use crate::noise::{Cells, HeadNoise, HeadSite};
use crate::params::{Evaluation, GainCellParams};
use crate::AttnError;

/// The key and value arrays of one head. Column `t mod W` receives token t; a query reads every live column.
#[derive(Debug, Clone)]
pub struct KvArray {
    p: GainCellParams,
    d: usize,
    /// Values per stored column: terms·D basis values, or D weights on the per-element path.
    width: usize,
    /// `[columns, width]`, columns = min(tokens written, W): grown on write, never beyond the window.
    keys: Vec<f32>,
    values: Vec<f32>,
    /// Tokens written so far.
    written: usize,
    /// r_i^age for age 0..columns, one table per term (extended as the columns grow).
    decay: Vec<Vec<f32>>,
    /// Per live column (its length follows the columns).
    phi: Vec<f32>,
    /// Per sub-tile holding a live column: `width + 1` sums (its length follows the columns).
    acc: Vec<f32>,
    /// Where the arrays sit on the chip (keys the noise and variation draws).
    site: HeadSite,
    /// With noise: the converter tables (grown with the columns) and the read streams of the last reader.
    noise: Option<HeadNoise>,
    /// Slots the converter tables cover.
    noise_slots: usize,
    /// The cells' variation, for slots `0..noise_slots`.
    cells: Cells,
    /// Refresh with write noise: each column's weights before noise (`[columns, D]`), to rewrite it.
    raw: (Vec<f32>, Vec<f32>),
}

/// Columns the arrays reserve room for at first: a short sequence allocates no more than this.
const FIRST_COLUMNS: usize = 16;

impl KvArray {
    /// Empty arrays for a chip (which must be a gain-cell chip: see [`GainCellParams::new`]).
    pub fn new(p: &GainCellParams) -> Self {
        Self::at(p, HeadSite::default())
    }

    /// Empty arrays of the key/value head `site` (its layer, sequence and `kv_head`; `head` is the default reader).
    pub fn at(p: &GainCellParams, site: HeadSite) -> Self {
        let d = p.head_dim;
        let (width, decay) = match &p.eval {
            Evaluation::Terms { terms, .. } => (terms.len() * d, vec![Vec::new(); terms.len()]),
            Evaluation::PerElement => (d, Vec::new()),
        };
        KvArray {
            p: p.clone(),
            d,
            width,
            keys: Vec::new(),
            values: Vec::new(),
            written: 0,
            decay,
            phi: Vec::new(),
            acc: Vec::new(),
            site,
            noise: p.noise.as_ref().map(|_| HeadNoise::default()),
            noise_slots: 0,
            cells: Cells::Off,
            raw: Default::default(),
        }
    }

    /// Whether rewrites need each column's noiseless weights (refresh with write noise).
    fn keeps_raw(&self) -> bool {
        self.p.refresh.is_some() && self.p.noise.as_ref().is_some_and(|n| n.has_write_noise())
    }

    /// Ring-buffer columns allocated now: at most min(W, 2·n + 16) for n the most tokens held since creation,
    /// whatever the window.
    pub fn allocated_columns(&self) -> usize {
        self.keys.capacity().max(self.values.capacity()) / self.width
    }

    /// Columns holding a token: min(tokens written, W).
    fn columns(&self) -> usize {
        self.keys.len() / self.width
    }

    /// Add column `slot` (the next one, before the ring is full), its leakage entries and, when it opens a new
    /// sub-tile, that tile's accumulator. Room doubles up to the window, so the copies are amortised and the
    /// allocation never exceeds the window. Every entry is computed as the full-size arrays computed it.
    fn grow_to(&mut self, slot: usize) {
        let (w, width) = (self.p.window, self.width);
        debug_assert_eq!(slot, self.columns());
        let room = (2 * slot).max(FIRST_COLUMNS).min(w);
        for (b, per) in [
            (&mut self.keys, width),
            (&mut self.values, width),
            (&mut self.phi, 1),
        ] {
            if b.capacity() < (slot + 1) * per {
                b.reserve_exact(room * per - b.len());
            }
            b.resize((slot + 1) * per, 0.0);
        }
        if let Evaluation::Terms { terms, .. } = &self.p.eval {
            for (table, t) in self.decay.iter_mut().zip(terms) {
                // The table covers ages 0..=slot; extend it in the same doubling steps as the columns.
                if table.len() <= slot {
                    let to = room.max(slot + 1);
                    table.extend(self.p.decay_table(t.power, table.len() as i64, to as i64));
                }
            }
        }
        let tiles = self.p.tile_of_slot(slot) + 1;
        if self.acc.len() < tiles * (width + 1) {
            self.acc.resize(tiles * (width + 1), 0.0);
        }
        if let (Some(nz), Some(hn)) = (&self.p.noise, &mut self.noise) {
            // Converter tables for every slot of the room just reserved (doubling: amortised over the writes).
            if self.noise_slots <= slot {
                let to = room.max(slot + 1);
                *hn = nz.head(self.site, to, self.p.tile_of_slot(to - 1) + 1, self.d);
                self.cells = nz.cells(self.site, to, self.d);
                self.noise_slots = to;
            }
        }
        if self.keeps_raw() {
            self.raw.0.resize((slot + 1) * self.d, 0.0);
            self.raw.1.resize((slot + 1) * self.d, 0.0);
        }
    }

    /// Sub-tiles of a full-size array that hold no live column yet: each still reads out (clamp and quantise
    /// of zero) and adds `out.apply(0)` to every output, as the full-size array's idle tiles did.
    fn idle_tiles(&self) -> usize {
        self.p.tiles() - self.acc.len() / (self.width + 1)
    }

    /// Tokens written since the last reset.
    pub fn len(&self) -> usize {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Forget everything (a new sequence).
    pub fn reset(&mut self) {
        self.written = 0;
    }

    fn check(&self, name: &str, x: &[f32]) -> Result<(), AttnError> {
        if x.len() != self.d {
            return Err(AttnError::Shape(format!(
                "{name} has {} values, the arrays have D = {} rows",
                x.len(),
                self.d
            )));
        }
        if let Some(bad) = x.iter().find(|x| !x.is_finite()) {
            return Err(AttnError::Shape(format!(
                "{name} holds {bad}: inputs must be finite"
            )));
        }
        Ok(())
    }

    /// Write the next token's key and value (physical volts) into column `t mod W`, overwriting the oldest; under
    /// a refresh policy, rewrite the columns that are due.
    pub fn write(&mut self, k: &[f32], v: &[f32]) -> Result<(), AttnError> {
        self.check("k", k)?;
        self.check("v", v)?;
        let t = self.written;
        let slot = t % self.p.window;
        if slot == self.columns() {
            self.grow_to(slot);
        }
        if self.p.noise.is_none() {
            self.store_plain(slot, k, v);
        } else {
            let kw: Vec<f32> = k.iter().map(|&x| self.p.key_weight(x)).collect();
            let vw: Vec<f32> = v.iter().map(|&x| self.p.value_weight(x)).collect();
            if self.keeps_raw() {
                let d = self.d;
                self.raw.0[slot * d..(slot + 1) * d].copy_from_slice(&kw);
                self.raw.1[slot * d..(slot + 1) * d].copy_from_slice(&vw);
            }
            self.store_noisy(slot, t, 0, kw, vw);
        }
        self.written += 1;
        self.refresh(t);
        Ok(())
    }

    /// Store the weights of column `slot` as the noiseless chip does.
    fn store_plain(&mut self, slot: usize, k: &[f32], v: &[f32]) {
        let (d, width) = (self.d, self.width);
        let p = &self.p;
        let kcol = &mut self.keys[slot * width..(slot + 1) * width];
        let vcol = &mut self.values[slot * width..(slot + 1) * width];
        match &p.eval {
            Evaluation::Terms { terms, .. } => {
                for (i, term) in terms.iter().enumerate() {
                    for c in 0..d {
                        kcol[i * d + c] = p.basis(term.basis, p.key_weight(k[c]));
                        vcol[i * d + c] = p.basis(term.basis, p.value_weight(v[c]));
                    }
                }
            }
            Evaluation::PerElement => {
                for c in 0..d {
                    kcol[c] = p.key_weight(k[c]);
                    vcol[c] = p.value_weight(v[c]);
                }
            }
        }
    }

    /// Store weights `kw`, `vw` (`Q(x) − offset`) of position `pos`, its `writes`-th write, perturbed by the
    /// chip's variation and write noise.
    fn store_noisy(
        &mut self,
        slot: usize,
        pos: usize,
        writes: usize,
        mut kw: Vec<f32>,
        mut vw: Vec<f32>,
    ) {
        let (d, width) = (self.d, self.width);
        let p = &self.p;
        if let Some(nz) = &p.noise {
            nz.store(
                self.site,
                &self.cells,
                slot,
                pos,
                writes,
                &mut kw,
                &mut vw,
                None,
            );
        }
        let kcol = &mut self.keys[slot * width..(slot + 1) * width];
        let vcol = &mut self.values[slot * width..(slot + 1) * width];
        match &p.eval {
            Evaluation::Terms { terms, .. } => {
                for (i, term) in terms.iter().enumerate() {
                    for c in 0..d {
                        kcol[i * d + c] = p.basis(term.basis, kw[c]);
                        vcol[i * d + c] = p.basis(term.basis, vw[c]);
                    }
                }
            }
            Evaluation::PerElement => {
                kcol.copy_from_slice(&kw);
                vcol.copy_from_slice(&vw);
            }
        }
    }

    /// At time `t`, rewrite every older live column whose refresh is due (every N tokens since its own write).
    /// Without write noise a rewrite restores the same weights, so only the age resets (read computes it).
    fn refresh(&mut self, t: usize) {
        let Some(n) = self.p.refresh else { return };
        if !self.keeps_raw() {
            return;
        }
        let (w, d) = (self.p.window, self.d);
        let oldest = (t + 1).saturating_sub(w);
        let mut j = t;
        while j >= oldest + n {
            j -= n;
            let slot = j % w;
            let kw = self.raw.0[slot * d..(slot + 1) * d].to_vec();
            let vw = self.raw.1[slot * d..(slot + 1) * d].to_vec();
            self.store_noisy(slot, j, (t - j) / n, kw, vw);
        }
    }

    /// Answer a query (fraction of T_max) at the time of the last written token; `out` receives D values.
    pub fn read(&mut self, q: &[f32], out: &mut [f32]) -> Result<(), AttnError> {
        self.read_as(self.site.head, q, out)
    }

    /// [`KvArray::read`] by query head `head` (one of the group sharing these arrays: keys its read noise).
    pub fn read_as(&mut self, head: usize, q: &[f32], out: &mut [f32]) -> Result<(), AttnError> {
        self.check("q", q)?;
        if out.len() != self.d {
            return Err(AttnError::Shape(format!(
                "out has {} values, needs D = {}",
                out.len(),
                self.d
            )));
        }
        if self.written == 0 {
            return Err(AttnError::Shape("read before any token was written".into()));
        }
        if let (Some(nz), Some(hn)) = (&self.p.noise, &mut self.noise) {
            nz.set_reads(HeadSite { head, ..self.site }, hn);
        }
        let (d, width, w) = (self.d, self.width, self.p.window);
        let p = &self.p;
        let hn = self.noise.as_ref();
        let t = self.written - 1;
        let live = self.written.min(w);
        // Position held by a slot, and its age and write count.
        let pos = |slot: usize| t - (t + w - slot) % w;
        let age = |slot: usize| p.age_and_writes(t, pos(slot)).0;
        let qh: Vec<f32> = q.iter().map(|&x| p.q.apply(x)).collect();
        let q_sum: f32 = qh.iter().sum();
        let phi_of = |slot: usize, mut s: f32| match hn {
            None => (s * p.inv_s_sat).clamp(0.0, 1.0),
            Some(hn) => {
                hn.add_score_read(t, pos(slot), std::slice::from_mut(&mut s));
                hn.phi(s, slot, p.inv_s_sat)
            }
        };
        let mut ybuf = vec![0.0f32; d];
        // The readout of tile m's lines `y` added to `out`.
        let read_out = |m: usize, y: &mut [f32], out: &mut [f32]| match hn {
            None => {
                for (o, &y) in out.iter_mut().zip(y.iter()) {
                    *o += p.out.apply(y * p.inv_a_sat);
                }
            }
            Some(hn) => {
                hn.add_value_read(t, m, y);
                for (c, (o, &y)) in out.iter_mut().zip(y.iter()).enumerate() {
                    *o += p.out.apply(hn.counted(y, m, c, d) * p.inv_a_sat);
                }
            }
        };
        self.acc.fill(0.0);
        match &p.eval {
            Evaluation::Terms { terms, constant } => {
                for slot in 0..live {
                    let a = age(slot);
                    let kcol = &self.keys[slot * width..(slot + 1) * width];
                    let mut s = constant * q_sum;
                    for (i, term) in terms.iter().enumerate() {
                        let dot: f32 = qh
                            .iter()
                            .zip(&kcol[i * d..(i + 1) * d])
                            .map(|(x, y)| x * y)
                            .sum();
                        s += term.coeff * self.decay[i][a] * dot;
                    }
                    self.phi[slot] = phi_of(slot, s);
                }
                for slot in 0..live {
                    let (a, phi) = (age(slot), self.phi[slot]);
                    let m = p.tile_of_slot(slot);
                    let acc = &mut self.acc[m * (width + 1)..(m + 1) * (width + 1)];
                    let vcol = &self.values[slot * width..(slot + 1) * width];
                    for i in 0..terms.len() {
                        let f = phi * self.decay[i][a];
                        for (x, y) in acc[i * d..(i + 1) * d]
                            .iter_mut()
                            .zip(&vcol[i * d..(i + 1) * d])
                        {
                            *x += f * y;
                        }
                    }
                    acc[width] += phi;
                }
                out.fill(0.0);
                for (m, acc) in self.acc.chunks_exact(width + 1).enumerate() {
                    for (c, y) in ybuf.iter_mut().enumerate() {
                        *y = constant * acc[width];
                        for (i, term) in terms.iter().enumerate() {
                            *y += term.coeff * acc[i * d + c];
                        }
                    }
                    read_out(m, &mut ybuf, out);
                }
                add_idle_tiles(p, self.idle_tiles(), out);
            }
            Evaluation::PerElement => {
                for slot in 0..live {
                    let a = age(slot);
                    let kcol = &self.keys[slot * d..(slot + 1) * d];
                    let s: f32 = qh
                        .iter()
                        .zip(kcol)
                        .map(|(&x, &y)| x * p.cell_current(y, a))
                        .sum();
                    let phi = phi_of(slot, s);
                    let m = p.tile_of_slot(slot);
                    let vcol = &self.values[slot * d..(slot + 1) * d];
                    for (x, &y) in self.acc[m * (width + 1)..m * (width + 1) + d]
                        .iter_mut()
                        .zip(vcol)
                    {
                        *x += phi * p.cell_current(y, a);
                    }
                }
                out.fill(0.0);
                for (m, acc) in self.acc.chunks_exact(width + 1).enumerate() {
                    ybuf.copy_from_slice(&acc[..d]);
                    read_out(m, &mut ybuf, out);
                }
                add_idle_tiles(p, self.idle_tiles(), out);
            }
        }
        Ok(())
    }

    /// Write token t's key and value, then answer its query: one step of generation.
    pub fn step(
        &mut self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &mut [f32],
    ) -> Result<(), AttnError> {
        self.write(k, v)?;
        self.read(q, out)
    }
}

/// The readout of `idle` empty sub-tiles, in the order the full-size array summed them (after the live ones):
/// `out.apply(0)` each. It is ±0 whenever the output range holds 0, and adding ±0 to a sum that started at +0
/// changes nothing, so the loop only runs for an output range that excludes 0.
pub(crate) fn add_idle_tiles(p: &GainCellParams, idle: usize, out: &mut [f32]) {
    let empty = p.out.apply(0.0);
    if empty == 0.0 {
        return;
    }
    for o in out.iter_mut() {
        for _ in 0..idle {
            *o += empty;
        }
    }
}
