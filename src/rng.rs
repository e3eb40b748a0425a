//! Seeding policy: every random number in the crate comes from a counter-based stream
//! ([`StreamKey`]) derived from the user's seed and the position of the draw (purpose, step,
//! row, …), never from a thread-local generator, so that results do not depend on the number
//! of threads.

use rbm_kernels::StreamKey;

/// The purpose tags that separate the crate's streams of one seed.
pub mod tags {
    /// Model initialization.
    pub const INIT: u64 = 1;
    /// A training step (then derived by the global step number).
    pub const STEP: u64 = 2;
    /// Epoch shuffles (then derived by the epoch number).
    pub const SHUFFLE: u64 = 3;
    /// Logic-gate rows (then derived by the batch number).
    pub const GATE_ROWS: u64 = 4;
    /// Gibbs sampling outside training.
    pub const SAMPLE: u64 = 5;
    /// Persistent chains' initial states.
    pub const PERSISTENT: u64 = 6;
    /// Stochastic binarization of training batches (then derived by the global step).
    pub const BINARIZE: u64 = 7;
    /// Train/test splits of alignments (then derived by the record).
    pub const SPLIT: u64 = 8;
    /// Annealed importance sampling (then derived by the temperature index and the chain).
    pub const AIS: u64 = 20;
    /// Reverse annealing, RAISE (then derived by the temperature index and the chain).
    pub const RAISE: u64 = 21;
    /// Stochastic binarization of evaluation data (then derived by the row).
    pub const EVAL_BINARIZE: u64 = 22;
    /// The hidden samples of the reconstruction error (then derived by the block of rows).
    pub const EVAL_RECON: u64 = 23;
    /// The flipped bits of the one-flip pseudo-likelihood (then derived by the row).
    pub const EVAL_PSEUDO: u64 = 24;
}

/// Fills `out` with independent N(0, std²) values: value `i` is a Box–Muller transform of
/// the uniforms of counters `2⌊i/2⌋` and `2⌊i/2⌋ + 1` of `key` (cosine branch for even `i`,
/// sine for odd), computed in f64.
pub fn fill_normal(key: StreamKey, std: f32, out: &mut [f32]) {
    for (pair, chunk) in out.chunks_mut(2).enumerate() {
        let c = 2 * pair as u64;
        let u1 = 1.0 - key.uniform_f64(c); // (0, 1]: log is finite
        let u2 = key.uniform_f64(c + 1);
        let r = (-2.0 * u1.ln()).sqrt() * std as f64;
        let theta = std::f64::consts::TAU * u2;
        chunk[0] = (r * theta.cos()) as f32;
        if let Some(x) = chunk.get_mut(1) {
            *x = (r * theta.sin()) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_moments() {
        let mut x = vec![0.0f32; 100_001];
        fill_normal(StreamKey::new(5), 0.01, &mut x);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-4, "mean {mean}");
        assert!((var.sqrt() - 0.01).abs() < 1e-4, "std {}", var.sqrt());
        let mut y = vec![0.0f32; 100_001];
        fill_normal(StreamKey::new(5), 0.01, &mut y);
        assert_eq!(x, y);
    }
}
