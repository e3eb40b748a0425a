//! Batched conditional passes (one GEMM, then the bias + sigmoid [+ sample] epilogue), split
//! into fixed blocks of rows that run in parallel on the current rayon pool.
//!
//! The blocks have a fixed size ([`ROW_BLOCK`]) and row `r` of a batch always draws from
//! `key.derive(r)`, so the result is the same for any number of threads.

use rayon::prelude::*;
use rbm_kernels::{Mat, MatMut, StreamKey, gemm, scalar};

use crate::model::Rbm;

/// Rows per parallel block.
pub(crate) const ROW_BLOCK: usize = 16;

/// Below this many multiply-adds a pass runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// One row of a sampling pass: (row, ((prob, state), pre)).
type SampleRow<'a> = (usize, ((&'a mut [f32], &'a mut [f32]), &'a [f32]));

/// Which conditional a pass computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conditional {
    /// `p(h | v)`: input rows of `V`, output rows of `H`.
    Hidden,
    /// `p(v | h)`: input rows of `H`, output rows of `V`.
    Visible,
}

impl Conditional {
    /// `(input units, output units)` per row.
    pub(crate) fn sizes(self, m: &Rbm) -> (usize, usize) {
        match self {
            Conditional::Hidden => (m.n_visible(), m.n_hidden()),
            Conditional::Visible => (m.n_hidden(), m.n_visible()),
        }
    }

    fn bias(self, m: &Rbm) -> &[f32] {
        match self {
            Conditional::Hidden => m.h_bias(),
            Conditional::Visible => m.v_bias(),
        }
    }

    /// The `input × output` weight matrix of this pass, as a view of `W` (`H × V`).
    fn weights(self, m: &Rbm) -> Mat<'_> {
        let w = Mat::row_major(m.weights(), m.n_hidden(), m.n_visible());
        match self {
            Conditional::Hidden => w.t(),
            Conditional::Visible => w,
        }
    }
}

/// `pre = input · M` (no bias) for `rows` rows.
pub(crate) fn preactivation(
    m: &Rbm,
    dir: Conditional,
    input: &[f32],
    rows: usize,
    pre: &mut [f32],
) {
    let (n_in, n_out) = dir.sizes(m);
    debug_assert_eq!(input.len(), rows * n_in);
    debug_assert_eq!(pre.len(), rows * n_out);
    let w = dir.weights(m);
    let block = |(b, pre_b): (usize, &mut [f32])| {
        let r0 = b * ROW_BLOCK;
        let nr = pre_b.len() / n_out;
        let x = Mat::row_major(&input[r0 * n_in..(r0 + nr) * n_in], nr, n_in);
        gemm(1.0, x, w, 0.0, MatMut::row_major(pre_b, nr, n_out));
    };
    if parallel(rows, n_in, n_out) {
        pre.par_chunks_mut(ROW_BLOCK * n_out)
            .enumerate()
            .for_each(block);
    } else {
        pre.chunks_mut(ROW_BLOCK * n_out)
            .enumerate()
            .for_each(block);
    }
}

/// `pre = input · M`, `prob = σ(pre + bias)` and, when `sample` is given, `state ~ prob` with
/// row `r` drawing from `key.derive(r)`.
pub(crate) fn conditional(
    m: &Rbm,
    dir: Conditional,
    input: &[f32],
    rows: usize,
    pre: &mut [f32],
    prob: &mut [f32],
    sample: Option<(&mut [f32], StreamKey)>,
) {
    preactivation(m, dir, input, rows, pre);
    let (n_in, n_out) = dir.sizes(m);
    let bias = dir.bias(m);
    let par = parallel(rows, n_in, n_out);
    let pre = &*pre;
    match sample {
        None => {
            let row = |(p, x): (&mut [f32], &[f32])| scalar::bias_sigmoid(x, bias, p);
            if par {
                prob.par_chunks_mut(n_out)
                    .zip(pre.par_chunks(n_out))
                    .for_each(row);
            } else {
                prob.chunks_mut(n_out).zip(pre.chunks(n_out)).for_each(row);
            }
        }
        Some((state, key)) => {
            let row = |(r, ((p, s), x)): SampleRow<'_>| {
                scalar::bias_sigmoid_sample(x, bias, key.derive(r as u64), 0, p, s)
            };
            if par {
                prob.par_chunks_mut(n_out)
                    .zip(state.par_chunks_mut(n_out))
                    .zip(pre.par_chunks(n_out))
                    .enumerate()
                    .for_each(row);
            } else {
                prob.chunks_mut(n_out)
                    .zip(state.chunks_mut(n_out))
                    .zip(pre.chunks(n_out))
                    .enumerate()
                    .for_each(row);
            }
        }
    }
}

fn parallel(rows: usize, n_in: usize, n_out: usize) -> bool {
    rows > ROW_BLOCK && rows.saturating_mul(n_in).saturating_mul(n_out) >= PARALLEL_MIN_WORK
}
