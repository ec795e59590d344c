//! One AES encryption round in portable code: FIPS-197's ShiftRows, SubBytes, MixColumns and AddRoundKey,
//! exactly what the x86 `aesenc` instruction computes. The noise generator's block function is made of such
//! rounds; this is its path on CPUs without AES instructions, so a chip's draws are the same bits everywhere.
//!
//! A state is 16 bytes in FIPS-197's order (byte `4c + r` is row `r` of column `c`), which is also the byte
//! order of an `__m128i` holding little-endian words.

/// The S-box, built from its definition (the multiplicative inverse in GF(2⁸), then the affine map).
const SBOX: [u8; 256] = sbox();

const fn sbox() -> [u8; 256] {
    let mut s = [0u8; 256];
    // p runs over the powers of the generator 3 and q over those of its inverse, so q = p⁻¹ at every step.
    let (mut p, mut q) = (1u8, 1u8);
    loop {
        p = p ^ (p << 1) ^ if p & 0x80 != 0 { 0x1B } else { 0 };
        q ^= q << 1;
        q ^= q << 2;
        q ^= q << 4;
        if q & 0x80 != 0 {
            q ^= 0x09;
        }
        let x = q ^ q.rotate_left(1) ^ q.rotate_left(2) ^ q.rotate_left(3) ^ q.rotate_left(4);
        s[p as usize] = x ^ 0x63;
        if p == 1 {
            break;
        }
    }
    s[0] = 0x63;
    s
}

/// Multiplication by x (that is, 2) in GF(2⁸) modulo the AES polynomial.
#[inline(always)]
fn times2(v: u8) -> u8 {
    (v << 1) ^ if v & 0x80 != 0 { 0x1B } else { 0 }
}

/// ShiftRows then SubBytes (they commute).
#[inline(always)]
fn shift_sub(state: [u8; 16]) -> [u8; 16] {
    let mut s = [0u8; 16];
    for c in 0..4 {
        for r in 0..4 {
            s[4 * c + r] = SBOX[state[4 * ((c + r) % 4) + r] as usize];
        }
    }
    s
}

/// One middle round, `aesenc(state, key)`.
pub fn round(state: [u8; 16], key: [u8; 16]) -> [u8; 16] {
    let s = shift_sub(state);
    let mut out = [0u8; 16];
    for c in 0..4 {
        let [a0, a1, a2, a3] = [s[4 * c], s[4 * c + 1], s[4 * c + 2], s[4 * c + 3]];
        let [d0, d1, d2, d3] = [times2(a0), times2(a1), times2(a2), times2(a3)];
        out[4 * c] = d0 ^ d1 ^ a1 ^ a2 ^ a3;
        out[4 * c + 1] = a0 ^ d1 ^ d2 ^ a2 ^ a3;
        out[4 * c + 2] = a0 ^ a1 ^ d2 ^ d3 ^ a3;
        out[4 * c + 3] = d0 ^ a0 ^ a1 ^ a2 ^ d3;
    }
    for (o, k) in out.iter_mut().zip(key) {
        *o ^= k;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last round of AES, without MixColumns (only the known-answer test needs it).
    fn last_round(state: [u8; 16], key: [u8; 16]) -> [u8; 16] {
        let mut s = shift_sub(state);
        for (o, k) in s.iter_mut().zip(key) {
            *o ^= k;
        }
        s
    }

    /// FIPS-197's AES-128 key expansion.
    fn expand(key: [u8; 16]) -> [[u8; 16]; 11] {
        let mut w = [[0u8; 4]; 44];
        for (i, w) in w.iter_mut().take(4).enumerate() {
            w.copy_from_slice(&key[4 * i..4 * i + 4]);
        }
        let mut rcon = 1u8;
        for i in 4..44 {
            let mut t = w[i - 1];
            if i % 4 == 0 {
                t = [
                    SBOX[t[1] as usize] ^ rcon,
                    SBOX[t[2] as usize],
                    SBOX[t[3] as usize],
                    SBOX[t[0] as usize],
                ];
                rcon = times2(rcon);
            }
            for j in 0..4 {
                w[i][j] = w[i - 4][j] ^ t[j];
            }
        }
        let mut k = [[0u8; 16]; 11];
        for (r, k) in k.iter_mut().enumerate() {
            for c in 0..4 {
                k[4 * c..4 * c + 4].copy_from_slice(&w[4 * r + c]);
            }
        }
        k
    }

    fn hex(s: &str) -> [u8; 16] {
        let mut b = [0u8; 16];
        for (i, b) in b.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        b
    }

    #[test]
    fn the_sbox_has_its_published_entries() {
        assert_eq!(
            (SBOX[0x00], SBOX[0x01], SBOX[0x53], SBOX[0xFF]),
            (0x63, 0x7C, 0xED, 0x16)
        );
        let mut seen = [false; 256];
        for &v in &SBOX {
            assert!(!seen[v as usize], "the S-box is a permutation");
            seen[v as usize] = true;
        }
    }

    #[test]
    fn aes128_of_the_rounds_gives_the_fips197_example() {
        // FIPS-197 Appendix C.1.
        let k = expand(hex("000102030405060708090a0b0c0d0e0f"));
        let mut s = hex("00112233445566778899aabbccddeeff");
        for (i, b) in s.iter_mut().enumerate() {
            *b ^= k[0][i];
        }
        for k in &k[1..10] {
            s = round(s, *k);
        }
        s = last_round(s, k[10]);
        assert_eq!(s, hex("69c4e0d86a7b0430d8cdb78070b4c55a"));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_round_is_what_aesenc_computes() {
        use std::arch::x86_64::*;
        if !std::arch::is_x86_feature_detected!("aes") {
            eprintln!("skipped: this CPU has no AES instructions to compare with");
            return;
        }
        let mut x = 0x1234_5678_9ABC_DEF0u64;
        for _ in 0..1000 {
            let mut v = [0u8; 32];
            for b in v.iter_mut() {
                x = crate::draw::mix(x);
                *b = x as u8;
            }
            let (s, k): ([u8; 16], [u8; 16]) =
                (v[..16].try_into().unwrap(), v[16..].try_into().unwrap());
            // SAFETY: the CPU has AES (checked above); loads and stores are unaligned ones of 16 bytes.
            let hw = unsafe {
                let r = _mm_aesenc_si128(
                    _mm_loadu_si128(s.as_ptr().cast()),
                    _mm_loadu_si128(k.as_ptr().cast()),
                );
                let mut o = [0u8; 16];
                _mm_storeu_si128(o.as_mut_ptr().cast(), r);
                o
            };
            assert_eq!(round(s, k), hw);
        }
    }
}
