//! Counter-based random numbers for Bernoulli and categorical sampling.
//!
//! Every draw is a pure function of a 64-bit [`StreamKey`] and the draw's index `j`, so a draw
//! does not depend on which thread makes it, in which order, or how a row of units is split
//! between kernels. A key is derived from a seed and any number of integers
//! (`StreamKey::new(seed).derive(step).derive(row)`), each step a SplitMix64 finalizer.
//!
//! Draw `j` of a stream is one 32-bit half of the SplitMix64 output for the counter `j / 2`:
//!
//! ```text
//! word(c)  = mix64(key + (c + 1) · 0x9E3779B97F4A7C15)
//! draw(j)  = low 32 bits of word(j / 2)   if j is even
//!            high 32 bits of word(j / 2)  if j is odd
//! ```
//!
//! so that eight 64-bit words in a SIMD register, read as sixteen u32 lanes in little-endian
//! order, are exactly draws `2c, 2c+1, …` in order: SIMD kernels produce the same draws as
//! the scalar reference here, bit for bit.

/// The SplitMix64 increment (2⁶⁴ / φ, odd).
pub const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finalizer (Stafford's variant 13): a bijection of `u64` with full avalanche.
#[inline(always)]
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The identity of one random stream: a seed refined by any number of integers
/// (step, row, phase, …). Cheap to copy; derive a fresh key per row and pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamKey(pub u64);

impl StreamKey {
    /// The root key of a seed.
    #[inline]
    pub const fn new(seed: u64) -> Self {
        StreamKey(mix64(seed.wrapping_add(GOLDEN)))
    }

    /// A child key: the stream of `self` refined by `x` (e.g. a step, a row, a phase).
    /// Different `x` give unrelated streams.
    #[inline]
    pub const fn derive(self, x: u64) -> Self {
        StreamKey(mix64(
            self.0 ^ mix64(x.wrapping_add(GOLDEN).wrapping_mul(GOLDEN)),
        ))
    }

    /// The 64-bit word for counter `c` (draws `2c` and `2c + 1`).
    #[inline(always)]
    pub const fn word(self, c: u64) -> u64 {
        mix64(self.0.wrapping_add(c.wrapping_add(1).wrapping_mul(GOLDEN)))
    }

    /// Draw `j` of this stream: a uniform `u32`.
    #[inline(always)]
    pub const fn draw(self, j: u64) -> u32 {
        (self.word(j >> 1) >> (32 * (j & 1))) as u32
    }

    /// A uniform `f64` in `[0, 1)` with 53 random bits, from the whole word of counter `j`
    /// (so it shares randomness with draws `2j` and `2j + 1`: use a separate key). For model
    /// initialisation and shuffling, not for the hot kernels.
    #[inline]
    pub fn uniform_f64(self, j: u64) -> f64 {
        (self.word(j) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The Bernoulli threshold of a probability: `p · 2²⁴` truncated to an integer, as the SIMD
/// kernels compute it (`cvttps2dq`). A draw `u` gives a 1 when `u >> 8 < threshold(p)`, so
/// `P(1) = ⌊p · 2²⁴⌋ / 2²⁴`, within 2⁻²⁴ of `p`; `p ≤ 0` and NaN give 0, `p ≥ 1` gives 1.
#[inline(always)]
pub fn threshold(p: f32) -> i32 {
    // `as` saturates and maps NaN to 0, which agrees with the SIMD conversion's results for
    // every p the kernels see (NaN → i32::MIN and negatives both compare as "never").
    (p * 16_777_216.0) as i32
}

/// One Bernoulli sample: 1.0 with probability `p` (see [`threshold`]), else 0.0.
#[inline(always)]
pub fn bernoulli(p: f32, u: u32) -> f32 {
    if ((u >> 8) as i32) < threshold(p) {
        1.0
    } else {
        0.0
    }
}

/// 2⁻²⁴, the spacing of the uniforms [`unit()`] returns.
pub const UNIT_STEP: f32 = 1.0 / 16_777_216.0;

/// The uniform of a categorical draw: `(u >> 8) · 2⁻²⁴`, one of the 2²⁴ multiples of 2⁻²⁴ in
/// `[0, 1)`, exact in f32 (the same 24 bits [`bernoulli`] compares).
#[inline(always)]
pub fn unit(u: u32) -> f32 {
    (u >> 8) as f32 * UNIT_STEP
}

/// One categorical sample: the state of a group with probabilities `p` (one group, `p[a]` the
/// probability of state `a`) that the draw `u` selects, by the inverse CDF in the order
/// `a = 0, 1, …`:
///
/// - the first `a` whose cumulative probability `c_a = (…((0 + p_0) + p_1) + …) + p_a`
///   (f32 additions in that order) exceeds `unit(u)`, so `P(a) = c_a − c_{a−1}` up to the
///   2⁻²⁴ grid of [`unit()`];
/// - if rounding leaves `c_{q−1} ≤ unit(u)`, the last `a` with `p_a > 0` (a state of
///   probability 0 is never drawn);
/// - if there is none (a group of NaN probabilities, or all zero), state 0.
///
/// The kernels' `softmax_groups_sample` draws exactly this, bit for bit, from the
/// probabilities it writes. Defined for `p_a ≥ 0` or NaN (what a softmax gives).
#[inline]
pub fn categorical(p: &[f32], u: u32) -> usize {
    let uf = unit(u);
    let mut c = 0.0f32;
    let mut last = 0;
    for (a, &pa) in p.iter().enumerate() {
        c += pa;
        if uf < c {
            return a;
        }
        if pa > 0.0 {
            last = a;
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_pair_up_in_words() {
        let k = StreamKey::new(7).derive(3);
        for c in 0..10u64 {
            let w = k.word(c);
            assert_eq!(k.draw(2 * c), w as u32);
            assert_eq!(k.draw(2 * c + 1), (w >> 32) as u32);
        }
    }

    #[test]
    fn derived_keys_differ() {
        let root = StreamKey::new(1);
        let mut keys: Vec<u64> = (0..1000).map(|x| root.derive(x).0).collect();
        keys.push(StreamKey::new(2).0);
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 1001);
    }

    #[test]
    fn uniform_draw_mean_and_bernoulli_rate() {
        let k = StreamKey::new(42);
        let n = 200_000u64;
        let mean: f64 = (0..n).map(|j| k.draw(j) as f64 / 4294967296.0).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.003, "mean {mean}");
        for &p in &[0.01f32, 0.13, 0.5, 0.9] {
            let ones: f64 = (0..n).map(|j| bernoulli(p, k.draw(j)) as f64).sum();
            let rate = ones / n as f64;
            let sd = (p as f64 * (1.0 - p as f64) / n as f64).sqrt();
            assert!((rate - p as f64).abs() < 5.0 * sd, "p {p} rate {rate}");
        }
    }

    #[test]
    fn bernoulli_edges() {
        for u in [0u32, 1, 255, 256, u32::MAX / 2, u32::MAX] {
            assert_eq!(bernoulli(0.0, u), 0.0);
            assert_eq!(bernoulli(-0.0, u), 0.0);
            assert_eq!(bernoulli(f32::NAN, u), 0.0);
            assert_eq!(bernoulli(-1.0, u), 0.0);
            assert_eq!(bernoulli(1.0, u), 1.0);
            assert_eq!(bernoulli(f32::INFINITY, u), 1.0);
        }
        // p = 2^-24 is the smallest probability that can give a 1: only for u >> 8 == 0.
        let p = 1.0 / 16_777_216.0;
        assert_eq!(bernoulli(p, 255), 1.0);
        assert_eq!(bernoulli(p, 256), 0.0);
    }

    #[test]
    fn categorical_edges() {
        // u = 0 gives the first state of nonzero probability, u = max the last.
        let p = [0.0f32, 0.25, 0.5, 0.25, 0.0];
        assert_eq!(categorical(&p, 0), 1);
        assert_eq!(categorical(&p, u32::MAX), 3);
        // The boundary: unit(u) = 0.25 is not below c_1 = 0.25, so state 2.
        assert_eq!(categorical(&p, 1 << 30), 2);
        assert_eq!(categorical(&p, (1 << 30) - 256), 1);
        // A sum short of 1 by rounding falls back to the last nonzero state.
        let short = [0.5f32, 0.499_999_9, 0.0];
        assert_eq!(categorical(&short, u32::MAX), 1);
        // NaN groups and empty ones give state 0.
        assert_eq!(categorical(&[f32::NAN; 4], 12345), 0);
        assert_eq!(categorical(&[0.0; 3], 12345), 0);
        assert_eq!(unit(u32::MAX), 1.0 - UNIT_STEP);
        assert_eq!(unit(255), 0.0);
    }
}
