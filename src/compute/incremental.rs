//! Pre-activations of Gibbs chains kept current by their flips.
//!
//! A chain that has mixed changes few units per step: at the end of an AIS schedule a
//! 784–500 MNIST model (centered PCD-1, 300 epochs) flips about 12 of its ~236 active hidden
//! units and 44 of its ~85 active pixels per step. So rather than recompute `x·M` from
//! the new state, [`Incremental`] adds the weight rows of the units that turned on and
//! subtracts those of the units that turned off: work in proportion to the flips, not to the
//! ones. A row whose flips are at least its ones is recomputed in full (the same gather over
//! its ones that [`crate::compute::pass`] does), and every row is recomputed every [`REFRESH_EVERY`]
//! updates so that rounding cannot drift. Each row's arithmetic depends only on its own states
//! and the update count, never on the block it sits in or the thread that runs it, and the
//! gather kernels add in list order on every ISA, so results are the same everywhere.

use rbm_kernels::binary::{Accumulate, binary_indices, gather_add};
use rbm_kernels::{Mat, MatMut, changed_indices, gemm};

use crate::compute::params::Params;
use crate::compute::pass::Conditional;

/// Updates between two full recomputations of every row.
pub(crate) const REFRESH_EVERY: u32 = 64;

/// `pre = x·M` (without bias) for a block of rows `x` (`rows × n_in`) of one conditional,
/// with `M` the pass's weights (`Wᵀ` for `v → h`, `W` for `h → v`); and, when asked for,
/// `linear = x·coef` in f64 (AIS's `(b − b_A)ᵀv`), kept current the same way.
#[derive(Clone, Debug)]
pub(crate) struct Incremental {
    dir: Conditional,
    rows: usize,
    /// `rows × n_out`.
    pre: Vec<f32>,
    /// `x·coef` per row, when `coef` is set.
    linear: Vec<f64>,
    coef: Vec<f64>,
    /// Ones per row of the current `x` (meaningful while `binary`).
    ones: Vec<u32>,
    /// Whether the current `x` is all 0/1 (else the next update recomputes in full).
    binary: bool,
    /// Updates since the last full recomputation.
    updates: u32,
    /// Scratch index lists (`n_in` each): the flips or the ones of a row, the units turned
    /// on, turned off.
    flips: Vec<u32>,
    on: Vec<u32>,
    off: Vec<u32>,
}

impl Incremental {
    /// Tracks `rows` rows of the all-zero input (whose `pre` is 0 exactly).
    pub(crate) fn new(m: &impl Params, dir: Conditional, rows: usize) -> Self {
        let (n_in, n_out) = dir.sizes(m);
        Incremental {
            dir,
            rows,
            pre: vec![0.0; rows * n_out],
            linear: vec![0.0; rows],
            coef: Vec::new(),
            ones: vec![0; rows],
            binary: true,
            updates: 0,
            flips: vec![0; n_in],
            on: vec![0; n_in],
            off: vec![0; n_in],
        }
    }

    /// Also keeps `x·coef` (`n_in` values) per row, from the next [`reset`](Self::reset) on.
    pub(crate) fn with_linear(mut self, coef: Vec<f64>) -> Self {
        self.coef = coef;
        self
    }

    /// `pre`, `rows × n_out`.
    pub(crate) fn pre(&self) -> &[f32] {
        &self.pre
    }

    /// `x·coef` of each row (zeros without `coef`).
    pub(crate) fn linear(&self) -> &[f64] {
        &self.linear
    }

    /// Recomputes every row from `x` (`rows × n_in`, any values).
    pub(crate) fn reset(&mut self, m: &impl Params, x: &[f32]) {
        let (n_in, n_out) = self.dir.sizes(m);
        self.binary = true;
        for r in 0..self.rows {
            let row = &x[r * n_in..(r + 1) * n_in];
            self.binary &= self.recompute_row(m, r, row);
        }
        debug_assert_eq!(self.pre.len(), self.rows * n_out);
        self.updates = 0;
    }

    /// The input changes from `old` (the last input) to `new` (both `rows × n_in`; `new` is
    /// usually 0/1, as sampled states are: a row with other values is recomputed in full).
    pub(crate) fn update(&mut self, m: &impl Params, old: &[f32], new: &[f32]) {
        if !self.binary || self.updates + 1 >= REFRESH_EVERY {
            self.reset(m, new);
            return;
        }
        self.updates += 1;
        let n_in = self.dir.sizes(m).0;
        for r in 0..self.rows {
            let span = r * n_in..(r + 1) * n_in;
            self.update_row(m, r, &old[span.clone()], &new[span]);
        }
    }

    /// Moves row `r` from `old` to `new`.
    fn update_row(&mut self, m: &impl Params, r: usize, old: &[f32], new: &[f32]) {
        let n_flips = changed_indices(old, new, &mut self.flips);
        // Split the flips by direction without a branch: each index is written to both
        // lists, and only the list it belongs to moves on.
        let (mut n_on, mut n_off) = (0, 0);
        for &i in &self.flips[..n_flips] {
            let up = (new[i as usize] == 1.0) as usize;
            self.on[n_on] = i;
            self.off[n_off] = i;
            n_on += up;
            n_off += 1 - up;
        }
        // A changed unit that is neither 1 nor 0 now (a clamped grey pixel, say): the row is
        // recomputed by GEMM, and the next update recomputes everything.
        let grey = self.off[..n_off].iter().any(|&i| new[i as usize] != 0.0);
        if grey {
            self.binary &= self.recompute_row(m, r, new);
            return;
        }
        let ones = self.ones[r] as usize + n_on - n_off;
        if n_flips == 0 {
            return;
        }
        if n_flips >= ones {
            self.recompute_row(m, r, new);
            return;
        }
        let (on, off) = (&self.on[..n_on], &self.off[..n_off]);
        let (w, ld) = self.dir.weights(m);
        let n_out = self.dir.sizes(m).1;
        let out = &mut self.pre[r * n_out..(r + 1) * n_out];
        gather_add(w, ld, on, out, Accumulate::Add);
        gather_add(w, ld, off, out, Accumulate::Sub);
        if !self.coef.is_empty() {
            let coef = &self.coef;
            let lin = &mut self.linear[r];
            *lin += on.iter().map(|&i| coef[i as usize]).sum::<f64>();
            *lin -= off.iter().map(|&i| coef[i as usize]).sum::<f64>();
        }
        self.ones[r] = ones as u32;
    }

    /// [`full_row`](Self::full_row) and `linear` of row `r` from `x`.
    fn recompute_row(&mut self, m: &impl Params, r: usize, x: &[f32]) -> bool {
        let binary = self.full_row(m, r, x);
        self.linear[r] = if self.coef.is_empty() {
            0.0
        } else if binary {
            // The terms of the ones, in order: the same sum as `dot`, which adds only zeros
            // besides them.
            let ones = &self.flips[..self.ones[r] as usize];
            ones.iter().map(|&i| self.coef[i as usize]).sum()
        } else {
            dot(&self.coef, x)
        };
        binary
    }

    /// Recomputes row `r` from `x`: the gather over its ones when it is 0/1 (returns true),
    /// else a GEMM (returns false).
    fn full_row(&mut self, m: &impl Params, r: usize, x: &[f32]) -> bool {
        let (n_in, n_out) = self.dir.sizes(m);
        let (w, ld) = self.dir.weights(m);
        let out = &mut self.pre[r * n_out..(r + 1) * n_out];
        match binary_indices(x, &mut self.flips) {
            Some(ones) => {
                gather_add(w, ld, &self.flips[..ones], out, Accumulate::Set);
                self.ones[r] = ones as u32;
                true
            }
            None => {
                let a = Mat::row_major(x, 1, n_in);
                gemm(
                    1.0,
                    a,
                    Mat::new(w, n_in, n_out, ld, 1),
                    0.0,
                    MatMut::row_major(out, 1, n_out),
                );
                false
            }
        }
    }
}

/// `coef · x` in f64 (0 when `coef` is empty).
fn dot(coef: &[f64], x: &[f32]) -> f64 {
    coef.iter().zip(x).map(|(&c, &v)| c * v as f64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::pass::{self, RowIndex};
    use crate::model::Rbm;
    use crate::test_rows::{flip_some, random_rows};
    use rbm_kernels::StreamKey;

    #[test]
    fn tracks_the_full_product_through_many_updates() {
        let m = Rbm::new(37, 21, 5).unwrap();
        let root = StreamKey::new(9);
        for dir in [Conditional::Hidden, Conditional::Visible] {
            let (n_in, n_out) = dir.sizes(&m);
            let rows = 5;
            let coef: Vec<f64> = (0..n_in).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut inc = Incremental::new(&m, dir, rows).with_linear(coef.clone());
            let mut x = vec![0.0; rows * n_in];
            let mut index = RowIndex::default();
            let mut want = vec![0.0; rows * n_out];
            // Flip rates from none to every unit, so both the delta and the full path run,
            // across several refreshes.
            for step in 0..3 * REFRESH_EVERY as usize {
                let p = [0.0, 0.02, 0.1, 0.5, 1.0][step % 5];
                let next = if step == 0 {
                    random_rows(root.derive(step as u64), rows, n_in, 0.3)
                } else {
                    flip_some(root.derive(step as u64), &x, p)
                };
                inc.update(&m, &x, &next);
                x = next;
                pass::preactivation(&m, dir, &x, rows, &mut want, &mut index);
                for (j, (&g, &w)) in inc.pre().iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-5,
                        "{dir:?} step {step} [{j}]: {g} vs {w}"
                    );
                }
                for (r, &lin) in inc.linear().iter().enumerate() {
                    let exact = dot(&coef, &x[r * n_in..(r + 1) * n_in]);
                    assert!(
                        (lin - exact).abs() < 1e-12,
                        "{dir:?} step {step}: {lin} vs {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn grey_inputs_are_recomputed_by_gemm_and_then_tracked_again() {
        let m = Rbm::new(9, 6, 1).unwrap();
        let mut inc = Incremental::new(&m, Conditional::Hidden, 2);
        let grey: Vec<f32> = (0..18).map(|i| (i % 7) as f32 / 7.0).collect();
        inc.reset(&m, &grey);
        let mut want = vec![0.0; 12];
        let mut index = RowIndex::default();
        pass::preactivation(&m, Conditional::Hidden, &grey, 2, &mut want, &mut index);
        for (&g, &w) in inc.pre().iter().zip(&want) {
            assert!((g - w).abs() < 1e-6);
        }
        let binary: Vec<f32> = grey.iter().map(|&x| (x > 0.5) as u8 as f32).collect();
        // After a grey input, the next update recomputes from the new input.
        inc.update(&m, &grey, &binary);
        pass::preactivation(&m, Conditional::Hidden, &binary, 2, &mut want, &mut index);
        assert_eq!(
            inc.pre(),
            &want[..],
            "a full recomputation after a grey input"
        );
    }
}
