//! The counter-based generator behind every noise and variation draw: a Gaussian is a pure function of where it
//! is drawn (chip seed, source, layer, head, position, dim, write count), never of how many draws came before.
//! So the parallel and incremental forms draw the same numbers, the result does not depend on the thread count,
//! and a chip instance is its seed.
//!
//! A [`Stream`] is a 64-bit key, descended one coordinate at a time with the SplitMix64 finaliser; draw `i` of a
//! stream hashes `(key, i / 2)` into two 32-bit words (two chained rounds of a 32-bit mixer, so the hot loops
//! vectorise), and the Box–Muller transform (f32, polynomial ln, sin and cos in fused multiply-adds) turns them
//! into two independent standard normals: draw `2m` is the cosine branch, draw `2m + 1` the sine one. Scalar and
//! vector paths run the same operations (a fused multiply-add rounds once wherever it runs), so they give the
//! same bits.

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

/// A 32-bit bijective mixer (Wellons' lowbias32): vectorises, unlike a 64-bit multiply on AVX2.
#[inline(always)]
fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// The two 32-bit words of pair `m` of a stream whose key words are `k`: a keyed mix of the counter, and a
/// second keyed mix of that (each round is a bijection with full avalanche; a third round cost a quarter of the
/// generator's time and changed no statistic the tests measure).
#[inline(always)]
fn words(k: [u32; 4], m: u32) -> (u32, u32) {
    let a = lowbias32(m ^ k[0]) ^ k[1];
    (a, lowbias32(a ^ k[2]))
}

/// ln x for x in (0, 1]: exponent plus 2·atanh((m − 1)/(m + 1)) of the mantissa m ∈ [1, 2) (error < 2e-6).
#[inline(always)]
fn ln(x: f32) -> f32 {
    let bits = x.to_bits() as i32;
    let e = ((bits >> 23) - 127) as f32;
    let m = f32::from_bits(((bits & 0x007F_FFFF) | 0x3F80_0000) as u32);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let p = (2.0f32 / 9.0)
        .mul_add(s2, 2.0 / 7.0)
        .mul_add(s2, 2.0 / 5.0)
        .mul_add(s2, 2.0 / 3.0)
        .mul_add(s2, 2.0);
    e.mul_add(std::f32::consts::LN_2, s * p)
}

/// (sin 2πu, cos 2πu) for u in [0, 1), from the Taylor series of the half angle π(u − ½) ∈ [−π/2, π/2).
#[inline(always)]
fn sin_cos_turns(u: f32) -> (f32, f32) {
    let h = std::f32::consts::PI * (u - 0.5);
    let h2 = h * h;
    let s = h
        * (-1.0f32 / 39_916_800.0)
            .mul_add(h2, 1.0 / 362_880.0)
            .mul_add(h2, -1.0 / 5040.0)
            .mul_add(h2, 1.0 / 120.0)
            .mul_add(h2, -1.0 / 6.0)
            .mul_add(h2, 1.0);
    let c = (-1.0f32 / 3_628_800.0)
        .mul_add(h2, 1.0 / 40_320.0)
        .mul_add(h2, -1.0 / 720.0)
        .mul_add(h2, 1.0 / 24.0)
        .mul_add(h2, -0.5)
        .mul_add(h2, 1.0);
    // 2πu = 2h + π.
    (-2.0 * s * c, s.mul_add(s, -(c * c)))
}

/// 24 bits of a word as a uniform scale.
const SCALE: f32 = 1.0 / 16_777_216.0;

/// Box–Muller's radius √(−2 ln u₁) of the first word (u₁ in (0, 1)).
#[inline(always)]
fn radius(a: u32) -> f32 {
    let u1 = ((a >> 8) as i32 as f32 + 0.5) * SCALE;
    (-2.0 * ln(u1)).sqrt()
}

/// Box–Muller's angle, in turns u₂ ∈ [0, 1), of the second word.
#[inline(always)]
fn turns(b: u32) -> f32 {
    (b >> 8) as i32 as f32 * SCALE
}

/// Box–Muller: two independent standard normals from two 32-bit words (24 bits of each: uniforms in (0, 1),
/// so |z| < 5.9).
#[inline(always)]
pub fn box_muller(a: u32, b: u32) -> (f32, f32) {
    let r = radius(a);
    let (s, c) = sin_cos_turns(turns(b));
    (r * c, r * s)
}

/// Lanes of one vector of the block loops (AVX-512's width; AVX2 takes two registers).
const LANES: usize = 16;
/// Pairs of one block.
const BLOCK: usize = 64;

/// Up to [`BLOCK`] pairs from `base`, computed stage by stage (hash, radius, angle) over whole vectors: each stage
/// is a short loop of independent vectors, so the long dependency chains of the polynomials overlap instead of
/// running one vector at a time (the latency, not the arithmetic, bounded the fused loop). The same operations
/// per lane as [`box_muller`], so the same bits.
#[inline(always)]
fn pairs_block(k: [u32; 4], base: u32, even: &mut [f32], odd: &mut [f32], st: &mut Stages) {
    let n = even.len().min(odd.len());
    debug_assert!(n <= BLOCK);
    let v = n.div_ceil(LANES);
    let Stages { a, b, r, sin, cos } = st;
    for (c, (a, b)) in a
        .chunks_exact_mut(LANES)
        .zip(b.chunks_exact_mut(LANES))
        .take(v)
        .enumerate()
    {
        let m0 = base.wrapping_add((c * LANES) as u32);
        for l in 0..LANES {
            (a[l], b[l]) = words(k, m0.wrapping_add(l as u32));
        }
    }
    for (r, a) in r.chunks_exact_mut(LANES).zip(a.chunks_exact(LANES)).take(v) {
        for l in 0..LANES {
            r[l] = radius(a[l]);
        }
    }
    let angles = sin.chunks_exact_mut(LANES).zip(cos.chunks_exact_mut(LANES));
    for ((s, c), b) in angles.zip(b.chunks_exact(LANES)).take(v) {
        for l in 0..LANES {
            (s[l], c[l]) = sin_cos_turns(turns(b[l]));
        }
    }
    for i in 0..n {
        even[i] = r[i] * cos[i];
        odd[i] = r[i] * sin[i];
    }
}

/// The intermediate values of one block's stages: kept by the caller across blocks (perf put 5 % of the
/// generator's samples on zeroing them per block; wall-clock A/B on this shared machine could not resolve it).
struct Stages {
    a: [u32; BLOCK],
    b: [u32; BLOCK],
    r: [f32; BLOCK],
    sin: [f32; BLOCK],
    cos: [f32; BLOCK],
}

impl Stages {
    #[inline(always)]
    fn new() -> Self {
        Stages {
            a: [0; BLOCK],
            b: [0; BLOCK],
            r: [0.0; BLOCK],
            sin: [0.0; BLOCK],
            cos: [0.0; BLOCK],
        }
    }
}

#[inline(always)]
fn pairs_impl(k: [u32; 4], base: u32, even: &mut [f32], odd: &mut [f32], st: &mut Stages) {
    for (c, (e, o)) in even
        .chunks_mut(BLOCK)
        .zip(odd.chunks_mut(BLOCK))
        .enumerate()
    {
        pairs_block(k, base.wrapping_add((c * BLOCK) as u32), e, o, st);
    }
}

/// Pairs computed per chunk by [`Stream::add`].
const CHUNK: usize = BLOCK;

/// `out[k] += σ · normal(from + k)` of the stream whose key words are `k`: every pair the range touches, the
/// lone draws at either end included, in chunks through [`pairs_impl`] (a lone draw through the scalar formula
/// cost as much as dozens of vector pairs), interleaved, then added.
#[inline(always)]
fn add_impl(k: [u32; 4], from: u64, sigma: f32, out: &mut [f32]) {
    if out.is_empty() {
        return;
    }
    let end = from + out.len() as u64;
    let (mut m, last) = (from >> 1, (end + 1) >> 1);
    // Draw `from` sits at `skip` in the first chunk's interleaved draws.
    let mut skip = (from & 1) as usize;
    let (mut even, mut odd) = ([0.0f32; CHUNK], [0.0f32; CHUNK]);
    let mut draws = [0.0f32; 2 * CHUNK];
    let mut st = Stages::new();
    let mut c = 0;
    while m < last {
        let n = ((last - m) as usize).min(CHUNK);
        pairs_impl(k, m as u32, &mut even[..n], &mut odd[..n], &mut st);
        for ((x, e), o) in draws[..2 * n]
            .chunks_exact_mut(2)
            .zip(&even[..n])
            .zip(&odd[..n])
        {
            (x[0], x[1]) = (*e, *o);
        }
        let take = (2 * n - skip).min(out.len() - c);
        for (x, z) in out[c..c + take].iter_mut().zip(&draws[skip..skip + take]) {
            *x += sigma * z;
        }
        (m, c, skip) = (m + n as u64, c + take, 0);
    }
}

/// The CPU's widest vector unit that the generator has a build for (checked once).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Simd {
    Avx512,
    Avx2,
    Scalar,
}

#[inline(always)]
fn simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("fma") {
            return Simd::Scalar;
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Simd::Avx2;
        }
    }
    Simd::Scalar
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn pairs_avx512(k: [u32; 4], base: u32, even: &mut [f32], odd: &mut [f32]) {
    pairs_impl(k, base, even, odd, &mut Stages::new())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pairs_avx2(k: [u32; 4], base: u32, even: &mut [f32], odd: &mut [f32]) {
    pairs_impl(k, base, even, odd, &mut Stages::new())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn add_avx512(k: [u32; 4], from: u64, sigma: f32, out: &mut [f32]) {
    add_impl(k, from, sigma, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_avx2(k: [u32; 4], from: u64, sigma: f32, out: &mut [f32]) {
    add_impl(k, from, sigma, out)
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

    /// The four 32-bit key words the draws of this stream hash with.
    #[inline(always)]
    fn keys(self) -> [u32; 4] {
        let b = mix(self.0 ^ 0xD6E8_FEB8_6659_FD93);
        [
            self.0 as u32,
            (self.0 >> 32) as u32,
            b as u32,
            (b >> 32) as u32,
        ]
    }

    /// Draws `2m` and `2m + 1` (the pair of index `m`, taken modulo 2³²).
    #[inline]
    pub fn pair(self, m: u64) -> (f32, f32) {
        let (a, b) = words(self.keys(), m as u32);
        box_muller(a, b)
    }

    /// Draw `i`: a standard normal.
    #[inline]
    pub fn normal(self, i: u64) -> f32 {
        let (a, b) = self.pair(i >> 1);
        if i & 1 == 0 {
            a
        } else {
            b
        }
    }

    /// The pairs `m = from, from + 1, …`: `even[k]`, `odd[k]` are draws `2m`, `2m + 1` (vectorised, with
    /// AVX-512 or AVX2, with FMA, where the CPU has them: the same operations lane by lane, so the same bits as
    /// [`Stream::pair`]; AVX-512's 16 lanes halve the time of AVX2's 8).
    pub fn pairs(self, from: u64, even: &mut [f32], odd: &mut [f32]) {
        let k = self.keys();
        match simd() {
            // SAFETY (both): the CPU has the feature the function is compiled for (`simd` checked it).
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { pairs_avx512(k, from as u32, even, odd) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { pairs_avx2(k, from as u32, even, odd) },
            _ => pairs_impl(k, from as u32, even, odd, &mut Stages::new()),
        }
    }

    /// `out[k] += σ · normal(from + k)` (vectorised like [`Stream::pairs`], the same bits as [`Stream::normal`]).
    pub fn add(self, from: u64, sigma: f32, out: &mut [f32]) {
        let k = self.keys();
        match simd() {
            // SAFETY (both): the CPU has the feature the function is compiled for (`simd` checked it).
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { add_avx512(k, from, sigma, out) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { add_avx2(k, from, sigma, out) },
            _ => add_impl(k, from, sigma, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_pairs_equal_single_draws_from_any_start() {
        let s = Stream::new(3, Source::ScoreRead).at(7);
        for from in 0..4u64 {
            for len in [0, 1, 2, 5, 6, 63, 64, 65, 130] {
                let mut a = vec![1.0f32; len];
                s.add(from, 2.0, &mut a);
                for (k, a) in a.iter().enumerate() {
                    assert_eq!(*a, 1.0 + 2.0 * s.normal(from + k as u64));
                }
                let (mut e, mut o) = (vec![0.0; len], vec![0.0; len]);
                s.pairs(from, &mut e, &mut o);
                for k in 0..len {
                    assert_eq!((e[k], o[k]), s.pair(from + k as u64));
                }
            }
        }
    }

    /// Mean, variance, tail masses and lag-1 correlation of `z` against the standard normal's, each within
    /// 5 standard errors of the sample size.
    fn looks_standard_normal(what: &str, z: &[f32]) {
        let n = z.len() as f64;
        let mean = z.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = z.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 5.0 / n.sqrt(), "{what}: mean {mean}");
        // Var of the sample variance of a normal: 2σ⁴/n.
        assert!(
            (var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(),
            "{what}: variance {var}"
        );
        // P(|z| > a) of the standard normal, a = 1, 2, 3.
        for (a, p) in [
            (1.0, 0.317_310_5),
            (2.0, 0.045_500_26),
            (3.0, 0.002_699_796),
        ] {
            let f = z.iter().filter(|x| x.abs() > a).count() as f64 / n;
            let se = (p * (1.0 - p) / n).sqrt();
            assert!(
                (f - p).abs() < 5.0 * se,
                "{what}: P(|z| > {a}) = {f}, normal {p}"
            );
        }
        let lag = z.windows(2).map(|w| w[0] as f64 * w[1] as f64).sum::<f64>() / (n - 1.0);
        assert!(
            lag.abs() < 5.0 / n.sqrt(),
            "{what}: lag-1 correlation {lag}"
        );
    }

    #[test]
    fn draws_are_standard_normal_along_and_across_streams() {
        // Along one stream (draws 2m and 2m + 1 alternate branches), from a start that is not a block edge.
        let mut z = vec![0.0f32; 1 << 21];
        Stream::new(9, Source::ValueRead).at(3).add(5, 1.0, &mut z);
        looks_standard_normal("one stream", &z);
        // Across streams at neighbouring coordinates (the same draw of each), as reads of consecutive queries are.
        let s = Stream::new(9, Source::ScoreRead).at(1);
        let across: Vec<f32> = (0..1u64 << 18).map(|t| s.at(t).normal(0)).collect();
        looks_standard_normal("across streams", &across);
        // Neighbouring seeds, the same coordinates.
        let seeds: Vec<f32> = (0..1u64 << 18)
            .map(|seed| Stream::new(seed, Source::Cell).at(0).normal(1))
            .collect();
        looks_standard_normal("across seeds", &seeds);
    }

    #[test]
    fn the_approximations_are_close_to_libm() {
        let mut u = 1e-7f32;
        while u < 1.0 {
            assert!((ln(u) - u.ln()).abs() < 2e-6, "ln {u}");
            let (s, c) = sin_cos_turns(u);
            let t = std::f64::consts::TAU * u as f64;
            assert!(
                (s as f64 - t.sin()).abs() < 2e-6 && (c as f64 - t.cos()).abs() < 2e-6,
                "{u}"
            );
            u += 1.3e-4;
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
