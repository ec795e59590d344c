//! The counter-based generator behind every noise and variation draw: a Gaussian is a pure function of where it
//! is drawn (chip seed, source, layer, head, position, dim, write count), never of how many draws came before.
//! So the parallel and incremental forms draw the same numbers, the result does not depend on the thread count,
//! and a chip instance is its seed.
//!
//! A [`Stream`] is a 64-bit key, descended one coordinate at a time with the SplitMix64 finaliser. Its draws
//! come from a block function in the manner of Random123's ARS-5 (Salmon et al., SC 2011): counter block `q`
//! (128 bits) is whitened with the stream's key and put through five AES rounds whose keys step by Weyl
//! constants, giving four 32-bit words. The Box–Muller transform (f32, polynomial ln, sin and cos in fused
//! multiply-adds, the angle's quarter turn from two bits) turns two words into two independent standard normals.
//!
//! Draws come in groups of 32 that fill two 16-lane vectors: group `g` hashes blocks `8g … 8g + 7`; pair
//! `16g + l` takes word `l` of the first four blocks as its radius and word `l` of the last four as its angle,
//! and draws `32g + l` and `32g + 16 + l` are that pair's two normals. So one AVX-512 register of each is a
//! whole half-group, written to memory as it is. Scalar and vector paths run the same operations (a fused
//! multiply-add rounds once wherever it runs; AES rounds are exact), so they give the same bits.

use crate::aes;

/// What a draw perturbs: part of the key, so two sources never share numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Source {
    /// Gain (first of a pair) and offset (second) of each stored cell.
    Cell = 1,
    /// Gain and threshold of each key column's charge-to-pulse converter.
    Converter = 2,
    /// Gain and threshold of each sub-tile output line's converter and counter.
    Counter = 3,
    /// The voltage of each DAC write (key first, value second).
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

/// AES rounds of the block function: five, as Random123's ARS-5 and oneMKL's ARS5 have (they drop the last
/// round's MixColumns, a linear map; we keep it, so every round is one `aesenc`).
const ROUNDS: usize = 5;
/// What each round key adds to the one before, per 64-bit half (ARS's Weyl increments).
const WEYL: [u64; 2] = [0x9E37_79B9_7F4A_7C15, 0xBB67_AE85_84CA_A73B];

/// A stream's whitening key and round keys, each as its low and high 64 bits.
type Keys = [[u64; 2]; ROUNDS + 1];

#[inline(always)]
fn to_bytes(k: [u64; 2]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&k[0].to_le_bytes());
    b[8..].copy_from_slice(&k[1].to_le_bytes());
    b
}

/// Block `q` in portable code: `(q, 0) ⊕ K₀`, then the rounds.
fn block_portable(k: &Keys, q: u64) -> [u32; 4] {
    let mut s = to_bytes([q ^ k[0][0], k[0][1]]);
    for k in &k[1..] {
        s = aes::round(s, to_bytes(*k));
    }
    let w = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    [w(0), w(1), w(2), w(3)]
}

/// Block `q` with AES-NI (inlined into callers compiled with `aes`).
///
/// # Safety
/// The CPU must have AES-NI.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn block_aesni(k: &Keys, q: u64) -> [u32; 4] {
    use std::arch::x86_64::*;
    let key = |k: [u64; 2]| _mm_set_epi64x(k[1] as i64, k[0] as i64);
    let mut s = _mm_xor_si128(_mm_set_epi64x(0, q as i64), key(k[0]));
    for k in &k[1..] {
        s = _mm_aesenc_si128(s, key(*k));
    }
    std::mem::transmute::<__m128i, [u32; 4]>(s)
}

/// Block `q` by whichever path this CPU has (the same bits on each).
fn block(k: &Keys, q: u64) -> [u32; 4] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("aes") {
        // SAFETY: the CPU has AES-NI (checked).
        return unsafe { block_aesni_call(k, q) };
    }
    block_portable(k, q)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "aes")]
unsafe fn block_aesni_call(k: &Keys, q: u64) -> [u32; 4] {
    block_aesni(k, q)
}

/// Horner's rule in fused multiply-adds, coefficients highest degree first.
#[inline(always)]
fn horner(x: f32, c: &[f32]) -> f32 {
    c[1..].iter().fold(c[0], |p, &c| p.mul_add(x, c))
}

// Coefficients from scripts/draw_polynomials.py (least squares on Chebyshev nodes; its printed worst errors are
// the fits' own, in f64; `the_approximations_are_close_to_libm` bounds them in f32).
/// −2 ln(1 + t) / t for the mantissa 1 + t ∈ [0.75, 1.5) (degree 7), so that −2 ln m = t·Q(t) keeps its
/// relative accuracy as m → 1 (u → 1, where the radius is small).
const NEG2_LN1P: [f32; 8] = [
    0.133_311_57,
    -0.282_980_6,
    0.347_477_73,
    -0.402_127_36,
    0.499_530_8,
    -0.666_596_2,
    1.000_004_4,
    -2.000_000_2,
];
/// sin φ / φ for φ ∈ [−π/4, π/4], in φ² (degree 3: sin of degree 7).
const SIN: [f32; 4] = [-0.000_195_039_63, 0.008_332_036, -0.166_666_51, 1.0];
/// cos φ for φ ∈ [−π/4, π/4], in φ² (degree 3: cos of degree 6).
const COS: [f32; 4] = [-0.001_358_584_4, 0.041_655_023, -0.499_998_57, 1.0];

/// 2⁻²⁴.
const SCALE: f32 = 1.0 / 16_777_216.0;
const NEG2_LN2: f32 = -2.0 * std::f32::consts::LN_2;

/// Box–Muller's radius √(−2 ln u) of a word: u = ((a >> 8) | 1) · 2⁻²⁴, the 2²³ odd multiples of 2⁻²⁴ in
/// (0, 1) (so the radius is below 5.8), and ln u = e ln 2 + ln m with u's exponent e and mantissa m ∈ [0.75, 1.5)
/// (the bit operations are what AVX-512's getexp and getmant, interval [0.75, 1.5), give for these normal floats).
#[inline(always)]
fn radius(a: u32) -> f32 {
    let u = ((a >> 8) | 1) as f32 * SCALE;
    let bits = u.to_bits();
    let frac = bits & 0x007F_FFFF;
    // A mantissa of 1.5 or more is halved, and the exponent takes the factor 2.
    let up = frac >> 22;
    let e = ((bits >> 23) as i32 - 127 + up as i32) as f32;
    let t = f32::from_bits(frac | (0x3F80_0000 - (up << 23))) - 1.0;
    e.mul_add(NEG2_LN2, t * horner(t, &NEG2_LN1P)).sqrt()
}

/// The unit vector of Box–Muller's angle from a word: φ ∈ [−π/4, π/4) from its top 23 bits, then bit 0
/// negates the cosine (adding the quarter around π) and bit 1 swaps the two (reflecting both quarters onto
/// those around ±π/2), so the angle is uniform on the whole circle.
#[inline(always)]
fn direction(b: u32) -> (f32, f32) {
    use std::f32::consts::FRAC_PI_2;
    let f = f32::from_bits((b >> 9) | 0x3F80_0000);
    let phi = f.mul_add(FRAC_PI_2, -1.5 * FRAC_PI_2);
    let p2 = phi * phi;
    let s = phi * horner(p2, &SIN);
    let c = f32::from_bits(horner(p2, &COS).to_bits() ^ (b << 31));
    if b & 2 != 0 {
        (s, c)
    } else {
        (c, s)
    }
}

/// Box–Muller: two independent standard normals from two 32-bit words.
#[inline(always)]
pub fn box_muller(a: u32, b: u32) -> (f32, f32) {
    let r = radius(a);
    let (x, y) = direction(b);
    (r * x, r * y)
}

/// Draws per group, and the pairs of a group.
const GROUP: usize = 32;
const HALF: usize = GROUP / 2;

/// `out[i] += σ · normal(from + i)`, given `add_group(g, σ, dst)` that does `dst += σ · draws of group g` for
/// one whole group: whole groups in place, the partial ones at either end through a buffer (0 + 1 · z = z, so
/// the same bits).
#[inline(always)]
fn add_impl(
    add_group: impl Fn(u64, f32, &mut [f32; GROUP]),
    from: u64,
    sigma: f32,
    out: &mut [f32],
) {
    let mut g = from / GROUP as u64;
    let skip = (from % GROUP as u64) as usize;
    let mut pos = 0;
    let partial = |g: u64, at: usize, out: &mut [f32]| {
        let mut z = [0.0f32; GROUP];
        add_group(g, 1.0, &mut z);
        for (x, z) in out.iter_mut().zip(&z[at..]) {
            *x += sigma * z;
        }
    };
    if skip != 0 && !out.is_empty() {
        pos = (GROUP - skip).min(out.len());
        partial(g, skip, &mut out[..pos]);
        g += 1;
    }
    for chunk in out[pos..].chunks_exact_mut(GROUP) {
        add_group(g, sigma, chunk.try_into().expect("a whole group"));
        g += 1;
    }
    let tail = pos + (out.len() - pos) / GROUP * GROUP;
    if tail < out.len() {
        partial(g, 0, &mut out[tail..]);
    }
}

/// `even[i]`, `odd[i]` = pair `from + i`, given `group(g)` (group `g`'s 32 draws).
#[inline(always)]
fn pairs_impl(group: impl Fn(u64) -> [f32; GROUP], from: u64, even: &mut [f32], odd: &mut [f32]) {
    let n = even.len().min(odd.len());
    let (mut m, mut pos) = (from, 0);
    while pos < n {
        let (g, l) = (m / HALF as u64, (m % HALF as u64) as usize);
        let take = (HALF - l).min(n - pos);
        let z = group(g);
        even[pos..pos + take].copy_from_slice(&z[l..l + take]);
        odd[pos..pos + take].copy_from_slice(&z[HALF + l..HALF + l + take]);
        (m, pos) = (m + take as u64, pos + take);
    }
}

/// Group `g`'s 32 draws lane by lane (`blocks` hashes a block).
#[inline(always)]
fn group_lanes(blocks: impl Fn(u64) -> [u32; 4], g: u64) -> [f32; GROUP] {
    let (mut a, mut b) = ([0u32; HALF], [0u32; HALF]);
    for j in 0..4 {
        a[4 * j..4 * j + 4].copy_from_slice(&blocks(8 * g + j as u64));
        b[4 * j..4 * j + 4].copy_from_slice(&blocks(8 * g + 4 + j as u64));
    }
    let mut z = [0.0f32; GROUP];
    for l in 0..HALF {
        (z[l], z[HALF + l]) = box_muller(a[l], b[l]);
    }
    z
}

/// Add σ · group `g` lane by lane.
#[inline(always)]
fn add_group_lanes(blocks: impl Fn(u64) -> [u32; 4], g: u64, sigma: f32, dst: &mut [f32; GROUP]) {
    let z = group_lanes(blocks, g);
    for (x, z) in dst.iter_mut().zip(&z) {
        *x += sigma * z;
    }
}

/// The generator in AVX-512 with VAES: a group is two registers of four blocks each, through five `vaesenc`
/// and the Box–Muller transform of [`box_muller`], operation for operation.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Keys, COS, GROUP, HALF, NEG2_LN1P, NEG2_LN2, ROUNDS, SCALE, SIN};
    use std::arch::x86_64::*;
    use std::f32::consts::FRAC_PI_2;

    pub type Keys512 = [__m512i; ROUNDS + 1];

    /// The keys, each broadcast to the four 128-bit lanes.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[inline(always)]
    pub unsafe fn keys(k: &Keys) -> Keys512 {
        k.map(|k| _mm512_broadcast_i32x4(_mm_set_epi64x(k[1] as i64, k[0] as i64)))
    }

    #[inline(always)]
    unsafe fn horner(x: __m512, c: &[f32]) -> __m512 {
        c[1..].iter().fold(_mm512_set1_ps(c[0]), |p, &c| {
            _mm512_fmadd_ps(p, x, _mm512_set1_ps(c))
        })
    }

    /// The counters of group `g`'s first four blocks: block `8g + j` in 128-bit lane `j` (low half).
    #[inline(always)]
    pub unsafe fn counters(g: u64) -> __m512i {
        let base = _mm512_maskz_mov_epi64(0x55, _mm512_set1_epi64((8 * g) as i64));
        _mm512_add_epi64(base, _mm512_set_epi64(0, 3, 0, 2, 0, 1, 0, 0))
    }

    /// `n` added to each counter.
    #[inline(always)]
    pub unsafe fn step(n: i64) -> __m512i {
        _mm512_maskz_mov_epi64(0x55, _mm512_set1_epi64(n))
    }

    /// The group whose first four blocks' counters are `ca` (from [`counters`]): its first normals (draws
    /// 32g … 32g + 15) and second ones.
    #[inline(always)]
    pub unsafe fn group(k: &Keys512, ca: __m512i) -> (__m512, __m512) {
        let mut a = _mm512_xor_si512(ca, k[0]);
        let mut b = _mm512_xor_si512(_mm512_add_epi64(ca, step(4)), k[0]);
        for k in &k[1..] {
            a = _mm512_aesenc_epi128(a, *k);
            b = _mm512_aesenc_epi128(b, *k);
        }
        let odd = _mm512_or_si512(_mm512_srli_epi32::<8>(a), _mm512_set1_epi32(1));
        let u = _mm512_mul_ps(_mm512_cvtepi32_ps(odd), _mm512_set1_ps(SCALE));
        let e = _mm512_getexp_ps(u);
        let m = _mm512_getmant_ps::<_MM_MANT_NORM_P75_1P5, _MM_MANT_SIGN_SRC>(u);
        let one = _mm512_set1_ps(1.0);
        let e = _mm512_mask_add_ps(e, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(m, one), e, one);
        let t = _mm512_sub_ps(m, one);
        let r2 = _mm512_fmadd_ps(
            e,
            _mm512_set1_ps(NEG2_LN2),
            _mm512_mul_ps(t, horner(t, &NEG2_LN1P)),
        );
        let r = _mm512_sqrt_ps(r2);
        let f = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_srli_epi32::<9>(b),
            _mm512_set1_epi32(0x3F80_0000),
        ));
        let phi = _mm512_fmadd_ps(
            f,
            _mm512_set1_ps(FRAC_PI_2),
            _mm512_set1_ps(-1.5 * FRAC_PI_2),
        );
        let p2 = _mm512_mul_ps(phi, phi);
        let s = _mm512_mul_ps(phi, horner(p2, &SIN));
        let c = _mm512_castsi512_ps(_mm512_xor_si512(
            _mm512_castps_si512(horner(p2, &COS)),
            _mm512_slli_epi32::<31>(b),
        ));
        let swap = _mm512_test_epi32_mask(b, _mm512_set1_epi32(2));
        let x = _mm512_mask_blend_ps(swap, c, s);
        let y = _mm512_mask_blend_ps(swap, s, c);
        (_mm512_mul_ps(r, x), _mm512_mul_ps(r, y))
    }

    /// `out[i] += σ · normal(from + i)`, or `=` with `SET`: whole groups in place, two registers each, the
    /// partial ones at either end through masks (expand-load and compress-store, so no address outside `out` is
    /// ever formed).
    #[target_feature(enable = "avx512f,vaes,aes,fma")]
    pub unsafe fn add<const SET: bool>(k: &Keys, from: u64, sigma: f32, out: &mut [f32]) {
        let k = keys(k);
        let (n, p, s) = (out.len(), out.as_mut_ptr(), _mm512_set1_ps(sigma));
        if n == 0 {
            return;
        }
        let mut g = from / GROUP as u64;
        let skip = (from % GROUP as u64) as usize;
        // The draws of group g land at out[pos..]; draws before `first` of it are not ours.
        let edge = |g: u64, pos: usize, first: usize| {
            let (x, y) = group(&k, counters(g));
            for (h, z) in [(0, x), (HALF, y)] {
                let (lo, hi) = (first.max(h), (first + n - pos).min(h + HALF));
                if lo < hi {
                    let m = (((1u32 << (hi - h)) - 1) & !((1u32 << (lo - h)) - 1)) as __mmask16;
                    let at = p.add(pos + lo - first);
                    let v = if SET {
                        _mm512_mul_ps(s, z)
                    } else {
                        _mm512_add_ps(_mm512_maskz_expandloadu_ps(m, at), _mm512_mul_ps(s, z))
                    };
                    _mm512_mask_compressstoreu_ps(at.cast(), m, v);
                }
            }
        };
        let mut pos = 0;
        if skip != 0 {
            edge(g, 0, skip);
            (g, pos) = (g + 1, (GROUP - skip).min(n));
        }
        let mut ca = counters(g);
        while pos + GROUP <= n {
            let (x, y) = group(&k, ca);
            ca = _mm512_add_epi64(ca, step(8));
            for (at, z) in [(p.add(pos), x), (p.add(pos + HALF), y)] {
                let v = if SET {
                    _mm512_mul_ps(s, z)
                } else {
                    _mm512_add_ps(_mm512_loadu_ps(at), _mm512_mul_ps(s, z))
                };
                _mm512_storeu_ps(at, v);
            }
            (g, pos) = (g + 1, pos + GROUP);
        }
        if pos < n {
            edge(g, pos, 0);
        }
    }

    #[inline(always)]
    pub unsafe fn draws(k: &Keys512, g: u64) -> [f32; GROUP] {
        let (x, y) = group(k, counters(g));
        let mut z = [0.0f32; GROUP];
        _mm512_storeu_ps(z.as_mut_ptr(), x);
        _mm512_storeu_ps(z.as_mut_ptr().add(HALF), y);
        z
    }
}

/// The CPU's widest vector unit that the generator has a build for (checked once).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Simd {
    /// AVX-512 with VAES and FMA.
    Avx512,
    /// AVX2 with AES-NI and FMA.
    Avx2,
    Scalar,
}

#[inline(always)]
fn simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("fma") && has!("aes")) {
            return Simd::Scalar;
        }
        if has!("avx512f") && has!("vaes") {
            return Simd::Avx512;
        }
        if has!("avx2") {
            return Simd::Avx2;
        }
    }
    Simd::Scalar
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,vaes,aes,fma")]
unsafe fn pairs_avx512(k: &Keys, from: u64, even: &mut [f32], odd: &mut [f32]) {
    let k = avx512::keys(k);
    pairs_impl(|g| avx512::draws(&k, g), from, even, odd)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,aes,fma")]
unsafe fn add_avx2(k: &Keys, from: u64, sigma: f32, out: &mut [f32]) {
    let blocks = |q| block_aesni(k, q);
    add_impl(|g, s, d| add_group_lanes(blocks, g, s, d), from, sigma, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,aes,fma")]
unsafe fn pairs_avx2(k: &Keys, from: u64, even: &mut [f32], odd: &mut [f32]) {
    let blocks = |q| block_aesni(k, q);
    pairs_impl(|g| group_lanes(blocks, g), from, even, odd)
}

fn add_scalar(k: &Keys, from: u64, sigma: f32, out: &mut [f32]) {
    let blocks = |q| block(k, q);
    add_impl(|g, s, d| add_group_lanes(blocks, g, s, d), from, sigma, out)
}

fn pairs_scalar(k: &Keys, from: u64, even: &mut [f32], odd: &mut [f32]) {
    pairs_impl(|g| group_lanes(|q| block(k, q), g), from, even, odd)
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

    /// The whitening key (the stream's key and a mix of it) and the round keys stepping from it.
    #[inline(always)]
    fn keys(self) -> Keys {
        let mut k = [[self.0, mix(self.0 ^ 0xD6E8_FEB8_6659_FD93)]; ROUNDS + 1];
        for i in 1..=ROUNDS {
            k[i] = [
                k[i - 1][0].wrapping_add(WEYL[0]),
                k[i - 1][1].wrapping_add(WEYL[1]),
            ];
        }
        k
    }

    /// Pair `m`: draws `32(m / 16) + m % 16` and that plus 16.
    #[inline]
    pub fn pair(self, m: u64) -> (f32, f32) {
        let k = self.keys();
        let (g, l) = (m / HALF as u64, (m % HALF as u64) as usize);
        let (j, w) = ((l / 4) as u64, l % 4);
        box_muller(block(&k, 8 * g + j)[w], block(&k, 8 * g + 4 + j)[w])
    }

    /// Draw `i`: a standard normal.
    #[inline]
    pub fn normal(self, i: u64) -> f32 {
        let (g, l) = (i / GROUP as u64, (i % GROUP as u64) as usize);
        let (x, y) = self.pair(HALF as u64 * g + (l % HALF) as u64);
        if l < HALF {
            x
        } else {
            y
        }
    }

    /// The pairs `m = from, from + 1, …`: `even[k]`, `odd[k]` are pair `from + k`'s two normals (vectorised,
    /// with AVX-512 and VAES or AVX2 and AES-NI, with FMA, where the CPU has them: the same bits as
    /// [`Stream::pair`]).
    pub fn pairs(self, from: u64, even: &mut [f32], odd: &mut [f32]) {
        self.pairs_on(simd(), from, even, odd)
    }

    /// `out[k] += σ · normal(from + k)` (vectorised like [`Stream::pairs`], the same bits as [`Stream::normal`]).
    pub fn add(self, from: u64, sigma: f32, out: &mut [f32]) {
        self.add_on(simd(), from, sigma, out)
    }

    /// `out[k] = σ · normal(from + k)`: the same bits as [`Stream::add`] into zeros (a draw is never ±0), without
    /// zeroing and reading `out` first.
    pub fn set(self, from: u64, sigma: f32, out: &mut [f32]) {
        match simd() {
            // SAFETY: the CPU has the features the function is compiled for (`simd` checked them).
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { avx512::add::<true>(&self.keys(), from, sigma, out) },
            simd => {
                out.fill(0.0);
                self.add_on(simd, from, sigma, out)
            }
        }
    }

    fn pairs_on(self, simd: Simd, from: u64, even: &mut [f32], odd: &mut [f32]) {
        let k = self.keys();
        match simd {
            // SAFETY (both): the CPU has the features the function is compiled for (`simd` checked them).
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { pairs_avx512(&k, from, even, odd) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { pairs_avx2(&k, from, even, odd) },
            _ => pairs_scalar(&k, from, even, odd),
        }
    }

    fn add_on(self, simd: Simd, from: u64, sigma: f32, out: &mut [f32]) {
        let k = self.keys();
        match simd {
            // SAFETY (both): the CPU has the features the function is compiled for (`simd` checked them).
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { avx512::add::<false>(&k, from, sigma, out) },
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { add_avx2(&k, from, sigma, out) },
            _ => add_scalar(&k, from, sigma, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_pairs_equal_single_draws_from_any_start() {
        let s = Stream::new(3, Source::ScoreRead).at(7);
        for from in [0u64, 1, 5, 15, 16, 17, 31, 32, 33, 47] {
            for len in [0, 1, 2, 5, 15, 16, 17, 31, 32, 33, 63, 64, 65, 130] {
                let mut a = vec![1.0f32; len];
                s.add(from, 2.0, &mut a);
                for (k, a) in a.iter().enumerate() {
                    assert_eq!(
                        *a,
                        1.0 + 2.0 * s.normal(from + k as u64),
                        "{from} {len} {k}"
                    );
                }
                let mut b = vec![f32::NAN; len];
                s.set(from, 2.0, &mut b);
                for (k, b) in b.iter().enumerate() {
                    assert_eq!(*b, 2.0 * s.normal(from + k as u64), "set {from} {len} {k}");
                }
                let (mut e, mut o) = (vec![0.0; len], vec![0.0; len]);
                s.pairs(from, &mut e, &mut o);
                for k in 0..len {
                    assert_eq!((e[k], o[k]), s.pair(from + k as u64), "{from} {len} {k}");
                }
            }
        }
    }

    #[test]
    fn every_vector_path_this_cpu_has_gives_the_scalar_bits() {
        #[cfg(target_arch = "x86_64")]
        let paths = {
            use std::arch::is_x86_feature_detected as has;
            let base = has!("fma") && has!("aes");
            let mut p = vec![];
            if base && has!("avx512f") && has!("vaes") {
                p.push(Simd::Avx512);
            }
            if base && has!("avx2") {
                p.push(Simd::Avx2);
            }
            p
        };
        #[cfg(not(target_arch = "x86_64"))]
        let paths: Vec<Simd> = vec![];
        if paths.is_empty() {
            eprintln!("skipped: this CPU has no vector build of the generator");
        }
        let s = Stream::new(11, Source::Write).at(2);
        for simd in paths {
            for (from, len) in [(0u64, 200usize), (7, 90), (33, 31), (1 << 40, 64)] {
                let (mut a, mut b) = (vec![0.5f32; len], vec![0.5f32; len]);
                s.add_on(simd, from, 0.3, &mut a);
                s.add_on(Simd::Scalar, from, 0.3, &mut b);
                assert_eq!(a, b, "{simd:?} add {from} {len}");
                let (mut e, mut o) = (vec![0.0; len], vec![0.0; len]);
                let (mut e2, mut o2) = (vec![0.0; len], vec![0.0; len]);
                s.pairs_on(simd, from, &mut e, &mut o);
                s.pairs_on(Simd::Scalar, from, &mut e2, &mut o2);
                assert_eq!((e, o), (e2, o2), "{simd:?} pairs {from} {len}");
            }
        }
    }

    #[test]
    fn the_portable_block_is_the_aesni_one() {
        let k = Stream::new(5, Source::Cell).at(1).keys();
        for q in [0u64, 1, 7, 1 << 33, u64::MAX] {
            assert_eq!(block(&k, q), block_portable(&k, q), "{q}");
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
        use std::f64::consts::FRAC_PI_2;
        let mut x = 0x0123_4567_89AB_CDEFu64;
        for i in 0..200_000u32 {
            x = mix(x);
            // The extremes of each word as well as random ones.
            let (a, b) = match i {
                0 => (0, 0),
                1 => (u32::MAX, u32::MAX),
                _ => (x as u32, (x >> 32) as u32),
            };
            let u = ((a >> 8) | 1) as f64 / 16_777_216.0;
            let r2 = radius(a) as f64 * radius(a) as f64;
            let want = -2.0 * u.ln();
            // Relative, down to the smallest radius (u next to 1).
            assert!(
                (r2 - want).abs() < 1e-6 * want,
                "radius of {a:#x}: {r2}, want {want}"
            );
            let f = f32::from_bits((b >> 9) | 0x3F80_0000) as f64;
            let phi = f * FRAC_PI_2 - 1.5 * FRAC_PI_2;
            let c = if b & 1 != 0 { -phi.cos() } else { phi.cos() };
            let want = if b & 2 != 0 {
                (phi.sin(), c)
            } else {
                (c, phi.sin())
            };
            let (dx, dy) = direction(b);
            assert!(
                (dx as f64 - want.0).abs() < 1e-6 && (dy as f64 - want.1).abs() < 1e-6,
                "direction of {b:#x}: {:?}, want {want:?}",
                (dx, dy)
            );
        }
    }

    #[test]
    fn the_two_normals_of_a_pair_are_uncorrelated() {
        let n = 1 << 18;
        let (mut x, mut y) = (vec![0.0f32; n], vec![0.0f32; n]);
        Stream::new(4, Source::Counter).pairs(3, &mut x, &mut y);
        let corr = |f: &dyn Fn(f32) -> f64, mean: f64, var: f64| {
            x.iter()
                .zip(&y)
                .map(|(&a, &b)| (f(a) - mean) * (f(b) - mean))
                .sum::<f64>()
                / (n as f64 * var)
        };
        let se = 5.0 / (n as f64).sqrt();
        assert!(corr(&|v| v as f64, 0.0, 1.0).abs() < se, "x, y");
        // E|z| = √(2/π), Var|z| = 1 − 2/π: the magnitudes are independent too, not only the signs.
        let m = (2.0 / std::f64::consts::PI).sqrt();
        assert!(
            corr(&|v| v.abs() as f64, m, 1.0 - m * m).abs() < se,
            "|x|, |y|"
        );
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
