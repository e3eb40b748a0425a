//! Shared helpers of the kernel tests: seeded inputs (no entropy), NaN-poisoned buffers,
//! f64 references and reports.
#![allow(dead_code)]

use rbm_kernels::{Isa, StreamKey};

/// Sizes straddling every vector boundary (8 and 16 lanes), plus a few large ones.
pub fn sizes() -> Vec<usize> {
    (0..=67).chain([127, 128, 129, 1000, 4099]).collect()
}

/// Elements of poison on each side of every buffer (odd, so that nothing stays aligned).
pub const PAD: usize = 19;

/// The poison: a NaN with a recognisable payload. An element still holding these exact bits
/// was not written.
pub const POISON: u32 = 0x7FC0_BEEF;

/// Runs `check` on `isa`, or says "skipping" if this CPU lacks it.
pub fn on_isa(isa: Isa, check: impl FnOnce(Isa)) {
    if isa.is_available() {
        check(isa);
    } else {
        eprintln!("skipping: this CPU lacks {}", isa.name());
    }
}

/// A buffer of `n` elements between `PAD` poisoned ones on each side.
pub struct Padded<T> {
    buf: Vec<T>,
    n: usize,
}

impl Padded<f32> {
    /// `n` poisoned elements (outputs must overwrite them).
    pub fn poisoned(n: usize) -> Self {
        Padded {
            buf: vec![f32::from_bits(POISON); n + 2 * PAD],
            n,
        }
    }

    /// `data` between poisoned padding (so an out-of-bounds read meets NaN).
    pub fn from_slice(data: &[f32]) -> Self {
        let mut p = Self::poisoned(data.len());
        p.get_mut().copy_from_slice(data);
        p
    }

    /// Panics if a padding element was written.
    #[track_caller]
    pub fn assert_padding(&self, what: &str) {
        let bad: Vec<usize> = (0..PAD)
            .chain(PAD + self.n..self.buf.len())
            .filter(|&i| self.buf[i].to_bits() != POISON)
            .collect();
        assert!(
            bad.is_empty(),
            "{what}: padding written at buffer positions {bad:?} (data at {PAD}..{})",
            PAD + self.n
        );
    }

    /// Panics if an element of the data was not written.
    #[track_caller]
    pub fn assert_written(&self, what: &str) {
        let bad: Vec<usize> = (0..self.n)
            .filter(|&j| self.get()[j].to_bits() == POISON)
            .collect();
        assert!(bad.is_empty(), "{what}: elements not written: {bad:?}");
    }
}

impl Padded<u32> {
    /// `n` elements of `u32::MAX` between padding of `u32::MAX`.
    pub fn poisoned_u32(n: usize) -> Self {
        Padded {
            buf: vec![u32::MAX; n + 2 * PAD],
            n,
        }
    }

    /// The whole buffer after the data's start (data and trailing padding).
    pub fn tail(&self) -> &[u32] {
        &self.buf[PAD..]
    }

    /// The same, mutably.
    pub fn tail_mut(&mut self) -> &mut [u32] {
        &mut self.buf[PAD..]
    }

    /// The leading padding.
    pub fn leading(&self) -> &[u32] {
        &self.buf[..PAD]
    }
}

impl<T> Padded<T> {
    /// The data.
    pub fn get(&self) -> &[T] {
        &self.buf[PAD..PAD + self.n]
    }

    /// The data, mutably.
    pub fn get_mut(&mut self) -> &mut [T] {
        &mut self.buf[PAD..PAD + self.n]
    }
}

/// A uniform number in `[0, 1)`, draw `j` of `key`.
pub fn unif(key: StreamKey, j: u64) -> f64 {
    key.uniform_f64(j)
}

/// Values at the edges of the approximations and of f32.
pub const EXTREMES: [f32; 22] = [
    0.0,
    -0.0,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    1e30,
    -1e30,
    f32::MAX,
    f32::MIN,
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE,
    1e-40,
    -1e-40,
    87.0,
    -87.0,
    -87.000_01,
    88.8,
    -88.8,
    17.0,
    -17.0,
    16.635_532,
    1e-8,
];

/// `n` inputs: mostly uniform in `[-width, width]`, a fraction `wild` of them drawn from
/// [`EXTREMES`] or random bit patterns.
pub fn inputs(key: StreamKey, n: usize, width: f64, wild: f64) -> Vec<f32> {
    (0..n as u64)
        .map(|j| {
            let u = unif(key, 3 * j);
            if u < wild {
                let v = unif(key, 3 * j + 1);
                if v < 0.7 {
                    EXTREMES[(v / 0.7 * EXTREMES.len() as f64) as usize % EXTREMES.len()]
                } else {
                    f32::from_bits(key.word(3 * j + 2) as u32)
                }
            } else {
                ((2.0 * unif(key, 3 * j + 1) - 1.0) * width) as f32
            }
        })
        .collect()
}

/// The logistic function in f64.
pub fn sigmoid_f64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// softplus in f64, stably.
pub fn softplus_f64(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Equal bits, or both NaN (NaN payloads may differ).
pub fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Panics listing the first mismatches if `got` and `want` are not [`same`] elementwise.
#[track_caller]
pub fn assert_same(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let bad: Vec<(usize, f32, f32)> = (0..got.len())
        .filter(|&j| !same(got[j], want[j]))
        .map(|j| (j, got[j], want[j]))
        .take(10)
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: not bit-identical at (index, got, want) {bad:?}"
    );
}
