//! x86-64 instruction sets: [`Avx2Fma`](crate::kernel::Avx2Fma) (8 lanes) and
//! [`Avx512`](crate::kernel::Avx512) (16 lanes).
//!
//! Each file holds the code of one token of [`crate::kernel`]: its lane operations
//! ([`crate::lanes::Simd`], every one an `#[inline(always)]` wrapper of an intrinsic), its
//! index-list kernels, and one [`crate::simd::impl_kernel!`] with its `#[target_feature]`
//! string, which generates its [`crate::kernel::Kernel`] implementation.
//!
//! The random stream runs 64-bit SplitMix64 words in the vector's 64-bit lanes; read as u32
//! lanes (little-endian) a vector of words for counters `c, c+1, …` holds draws
//! `2c, 2c+1, …` in order. When `first` is odd, the draws a vector needs straddle two word
//! vectors; the generator keeps the previous one and shifts by one u32 lane:
//!
//! ```text
//!   cur  = [w(c)lo w(c)hi w(c+1)lo … w(c+7)hi]      nxt = [w(c+8)lo w(c+8)hi …]
//!   even first: draws = cur
//!   odd first:  draws = [w(c)hi w(c+1)lo … w(c+7)hi w(c+8)lo]   (cur:nxt shifted by one)
//! ```

mod avx2;
mod avx512;

/// The first multiplier of [`crate::rng::mix64`].
const MIX_M1: u64 = 0xBF58_476D_1CE4_E5B9;
/// The second multiplier of [`crate::rng::mix64`].
const MIX_M2: u64 = 0x94D0_49BB_1331_11EB;

/// The counter words of lanes `0..L` for a stream starting at draw `first`: lane `i` holds
/// `key + (first/2 + i + 1) · GOLDEN` (wrapping), the input of [`crate::rng::mix64`] for
/// counter `first/2 + i`.
#[inline(always)]
fn counters<const L: usize>(key: crate::rng::StreamKey, first: u64) -> [u64; L] {
    use crate::rng::GOLDEN;
    let base = key.0.wrapping_add(((first >> 1) + 1).wrapping_mul(GOLDEN));
    core::array::from_fn(|i| base.wrapping_add((i as u64).wrapping_mul(GOLDEN)))
}

/// For an 8-bit mask `m` of nonzero lanes: the source lanes of the nonzero elements in
/// order, one per 4-bit nibble (lane `k` of the compressed vector in bits `4k..4k+3`).
static COMPRESS8: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut m = 0;
    while m < 256 {
        let (mut code, mut k, mut b) = (0u32, 0, 0);
        while b < 8 {
            if (m >> b) & 1 == 1 {
                code |= (b as u32) << (4 * k);
                k += 1;
            }
            b += 1;
        }
        t[m] = code;
        m += 1;
    }
    t
};

/// The number of set bits of each byte (no `popcnt`: it is not part of the ISAs' checks).
static POPCOUNT8: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut m = 0;
    while m < 256 {
        t[m] = (m as u8).count_ones() as u8;
        m += 1;
    }
    t
};

/// Eight all-ones then eight zero lanes: the 8 `i32` starting at `8 - k` are a mask of the
/// first `k` lanes (`k ≤ 8`).
static LANE_MASK8: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
