//! Random 0/1 rows for the unit tests of the incremental and moved passes.

use rbm_kernels::StreamKey;

/// `rows × n` values, each 1 with probability `p`.
pub(crate) fn random_rows(key: StreamKey, rows: usize, n: usize, p: f64) -> Vec<f32> {
    (0..rows * n)
        .map(|i| (key.uniform_f64(i as u64) < p) as u8 as f32)
        .collect()
}

/// `x` with each value flipped (`1 − v`) with probability `p`.
pub(crate) fn flip_some(key: StreamKey, x: &[f32], p: f64) -> Vec<f32> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            if key.uniform_f64(i as u64) < p {
                1.0 - v
            } else {
                v
            }
        })
        .collect()
}
