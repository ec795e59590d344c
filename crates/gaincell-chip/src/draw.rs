//! The counter-based generator behind every noise and variation draw: a Gaussian is a pure function of where it
//! is drawn (chip seed, source, layer, head, position, dim, write count), never of how many draws came before.
//! So the parallel and incremental forms draw the same numbers, the result does not depend on the thread count,
//! and a chip instance is its seed.
//!
//! A [`Stream`] is a 64-bit key, descended one coordinate at a time with the SplitMix64 finaliser; draw `i` of a
//! stream hashes `(key, i / 2)` to 64 bits, splits them into two 32-bit uniforms, and the Box–Muller transform
//! turns those into two independent standard normals: draw `2m` is the cosine branch, draw `2m + 1` the sine one.

/// What a draw perturbs: part of the key, so two sources never share numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Source {
    /// Gain (even draws) and offset (odd draws) of each stored cell.
    Cell = 1,
    /// Gain and threshold of each key column's charge-to-pulse converter.
    Converter = 2,
    /// Gain and threshold of each sub-tile output line's converter and counter.
    Counter = 3,
    /// The voltage of each DAC write (key even, value odd).
    Write = 4,
    /// Each read of a key column's summed current.
    ScoreRead = 5,
    /// Each read of a sub-tile output line.
    ValueRead = 6,
}

/// SplitMix64's finaliser: a bijection on 64 bits with full avalanche.
#[inline(always)]
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The two standard normals of one 64-bit hash (Box–Muller; uniforms in (0, 1), never 0).
#[inline(always)]
pub fn normal_pair(h: u64) -> (f32, f32) {
    const SCALE: f64 = 1.0 / 4_294_967_296.0;
    let u1 = ((h >> 32) as f64 + 0.5) * SCALE;
    let u2 = ((h & 0xFFFF_FFFF) as f64 + 0.5) * SCALE;
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
    ((r * c) as f32, (r * s) as f32)
}

/// A key into the generator: a seed, a source, and the coordinates descended so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream(u64);

impl Stream {
    pub fn new(seed: u64, source: Source) -> Self {
        Stream(mix(mix(seed) ^ source as u64))
    }

    /// The sub-stream at coordinate `x` (a layer, a head, a position…).
    #[inline(always)]
    pub fn at(self, x: u64) -> Self {
        Stream(mix(self.0.rotate_left(17) ^ x))
    }

    /// The 64-bit hash behind draws `2m` and `2m + 1`.
    #[inline(always)]
    pub fn hash(self, m: u64) -> u64 {
        mix(self.0 ^ m.wrapping_mul(0xD6E8_FEB8_6659_FD93))
    }

    /// Draw `i`: a standard normal.
    #[inline]
    pub fn normal(self, i: u64) -> f32 {
        let (a, b) = normal_pair(self.hash(i >> 1));
        if i & 1 == 0 {
            a
        } else {
            b
        }
    }

    /// `out[k] = σ · normal(from + k)`, two draws per hash.
    pub fn fill(self, from: u64, sigma: f32, out: &mut [f32]) {
        let mut i = from;
        let mut k = 0;
        if i & 1 == 1 && k < out.len() {
            out[k] = sigma * self.normal(i);
            (i, k) = (i + 1, k + 1);
        }
        while k + 1 < out.len() {
            let (a, b) = normal_pair(self.hash(i >> 1));
            out[k] = sigma * a;
            out[k + 1] = sigma * b;
            (i, k) = (i + 2, k + 2);
        }
        if k < out.len() {
            out[k] = sigma * self.normal(i);
        }
    }

    /// `out[k] += σ · normal(from + k)`.
    pub fn add(self, from: u64, sigma: f32, out: &mut [f32]) {
        let mut i = from;
        let mut k = 0;
        if i & 1 == 1 && k < out.len() {
            out[k] += sigma * self.normal(i);
            (i, k) = (i + 1, k + 1);
        }
        while k + 1 < out.len() {
            let (a, b) = normal_pair(self.hash(i >> 1));
            out[k] += sigma * a;
            out[k + 1] += sigma * b;
            (i, k) = (i + 2, k + 2);
        }
        if k < out.len() {
            out[k] += sigma * self.normal(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_add_equal_single_draws_from_any_start() {
        let s = Stream::new(3, Source::ScoreRead).at(7);
        for from in 0..4u64 {
            for len in 0..6 {
                let mut f = vec![0.0f32; len];
                s.fill(from, 2.0, &mut f);
                let mut a = vec![1.0f32; len];
                s.add(from, 2.0, &mut a);
                for k in 0..len {
                    let z = 2.0 * s.normal(from + k as u64);
                    assert_eq!(f[k], z);
                    assert_eq!(a[k], 1.0 + z);
                }
            }
        }
    }

    #[test]
    fn streams_differ_by_seed_source_and_coordinate() {
        let a = Stream::new(1, Source::Cell);
        assert_ne!(a.normal(0), Stream::new(2, Source::Cell).normal(0));
        assert_ne!(a.normal(0), Stream::new(1, Source::Write).normal(0));
        assert_ne!(a.at(0).normal(0), a.at(1).normal(0));
        assert_eq!(a.at(5).normal(9), a.at(5).normal(9));
    }
}
