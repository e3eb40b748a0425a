//! Conditional passes of a Gibbs chain moved by the flips of its input.
//!
//! Within one training step the weights stay fixed, so the `k` steps of a CD-k chain can keep
//! their pre-activations and move them from one state to the next: `x_new·M = x_old·M + Σ
//! rows turned on − Σ rows turned off` (rows of `Wᵀ` for `v → h`, of `W` for `h → v`). Once a
//! model has learned something its chains change a fraction of their units per step — in a
//! CD-3 run on MNIST (784–500, batch 64) the flips were 0.63 of the hidden ones and 0.56 of the
//! visible ones after 8 epochs; centered CD-10, 0.44 and 0.37 after 5 — so those passes cost
//! that fraction of a full binary product. A young model's chains flip about as many units as
//! are on: a batch that flips at least two thirds of its ones takes the full pass
//! ([`pass::conditional`], bit for bit). Its first [`PROBE_ROWS`] rows are counted first, and
//! when they alone flip at least [`PROBE_FAR_PERCENT`] % of their ones the rest are not
//! counted; nothing is kept from one call to the next.
//!
//! A batch moves as a whole or not at all (rows gathered side by side wait for the longest
//! list, so lists of one kind go together). Which, depends only on the batch's states; each
//! row's sums run over its own lists in order on every ISA, whatever the block of columns or the
//! thread; so results do not depend on the number of threads. They differ from full passes by
//! rounding.

use rayon::prelude::*;
use rbm_kernels::binary::{Accumulate, Lists, RowsMut, binary_indices, gather_rows_into};
use rbm_kernels::{StreamKey, changed_indices};

use crate::compute::params::Params;
use crate::compute::pass::{self, Conditional, Outputs, PassBuffers, RowIndex};

/// Chain steps between two full passes: the flips of at most this many steps are added up
/// before a pre-activation is summed afresh, so rounding cannot drift.
pub(crate) const REFRESH_EVERY: usize = 64;

/// A batch moves when its flips are fewer than two thirds of its ones: each row addition of
/// a move costs more than one of a full pass (two gathers, add and subtract, over shorter
/// lists).
const MOVE_SAVING_DIV: usize = 3;

/// The lists of a batch's move: per row, `n` entries apart, the units to add (turned on) and
/// to subtract (turned off). The first are made in the buffers of a [`RowIndex`] of the new
/// input's ones, written first: a batch that does not move takes the full pass with them.
#[derive(Clone, Debug, Default)]
pub(crate) struct FlipIndex {
    on: RowIndex,
    off: Vec<u32>,
    n_off: Vec<u32>,
    n: usize,
}

/// The flips of a batch's first this many rows are counted first: when they are at least
/// [`PROBE_FAR_PERCENT`] % of their ones, the pass is a full one without counting the rest (a
/// young model's chains flip about as many units as are on; counting them all costs ~3% of a
/// step for nothing).
const PROBE_ROWS: usize = 8;
const PROBE_FAR_PERCENT: usize = 85;

/// How a batch goes from its old input to the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// `new` is not all 0/1: a full pass.
    NotBinary,
    /// Not worth moving (or a flip from a value other than 0 or 1): a full pass; with the
    /// count of ones when every row's ones are listed in `on`.
    Fresh(Option<usize>),
    /// Every row moved by its flips (the lists of `on` and `off`).
    Moved,
}

impl FlipIndex {
    /// Plans the move from `old` to `new` (`rows × n` each) of pre-activations computed from
    /// `old`. The batch as a whole either moves or is summed afresh, so that the rows of a
    /// gather have lists of about the same length (rows gathered side by side wait for the
    /// longest); it is summed afresh when it would not save enough, or when a flip of some
    /// row is not between 0 and 1 (an `old` with other values).
    fn build(&mut self, old: &[f32], new: &[f32], n: usize, par: bool) -> Plan {
        let rows = new.len() / n.max(1);
        self.on.buffers(rows, n);
        if self.off.len() < rows * n {
            self.off.resize(rows * n, 0);
        }
        if self.n_off.len() < rows {
            self.n_off.resize(rows, 0);
        }
        self.n = n;
        let min_len = pass::row_min_len(par, rows * n);
        // Per row: its ones into `on`, its flips into `off` (counts in n_on, n_off); the first
        // PROBE_ROWS rows first, and the rest only if they do not flip too much.
        let probe = rows.min(PROBE_ROWS);
        let Some((p_ones, p_flips, p_whole)) = self.count(old, new, 0..probe, usize::MAX) else {
            return Plan::NotBinary;
        };
        // (First rows without ones say nothing: the whole batch is counted.)
        if !p_whole || (p_ones > 0 && p_flips * 100 >= p_ones * PROBE_FAR_PERCENT) {
            return Plan::Fresh(None);
        }
        let Some((r_ones, r_flips, r_whole)) = self.count(old, new, probe..rows, min_len) else {
            return Plan::NotBinary;
        };
        let (ones, flips) = (p_ones + r_ones, p_flips + r_flips);
        if !r_whole || flips * MOVE_SAVING_DIV >= ones * (MOVE_SAVING_DIV - 1) {
            return Plan::Fresh(Some(ones));
        }
        let (on, n_on) = self.on.buffers(rows, n);
        let lists = on.par_chunks_mut(n).zip(self.off.par_chunks_mut(n));
        lists
            .zip(new.par_chunks(n))
            .zip(n_on.par_iter_mut().zip(self.n_off.par_iter_mut()))
            .with_min_len(min_len)
            .for_each(|(((on, off), new), (n_on, n_off))| {
                (*n_on, *n_off) = split_flips(new, on, off, *n_off as usize);
            });
        Plan::Moved
    }

    /// Rows `span` of the batch: each row's ones into `on` and its flips into `off` (counts in
    /// `n_on`, `n_off`); returns the total ones and flips and whether every flip went between
    /// 0 and 1, or `None` if `new` is not 0/1. Rows in parallel in tasks of at least
    /// `min_len`.
    fn count(
        &mut self,
        old: &[f32],
        new: &[f32],
        span: std::ops::Range<usize>,
        min_len: usize,
    ) -> Option<(usize, usize, bool)> {
        let n = self.n;
        let (rows, r) = (new.len() / n.max(1), span.clone());
        let values = r.start * n..r.end * n;
        let (on, n_on) = self.on.buffers(rows, n);
        old[values.clone()]
            .par_chunks(n)
            .zip(new[values.clone()].par_chunks(n))
            .zip(on[values.clone()].par_chunks_mut(n))
            .zip(self.off[values].par_chunks_mut(n))
            .zip(n_on[r.clone()].par_iter_mut())
            .zip(self.n_off[r].par_iter_mut())
            .with_min_len(min_len)
            .map(|(((((old, new), on), off), n_on), n_off)| {
                let ones = binary_indices(new, on)?;
                let flips = changed_indices(old, new, off);
                let whole = off[..flips]
                    .iter()
                    .all(|&i| old[i as usize] == 1.0 - new[i as usize]);
                (*n_on, *n_off) = (ones as u32, flips as u32);
                Some((ones, flips, whole))
            })
            .try_reduce(
                || (0, 0, true),
                |a, b| Some((a.0 + b.0, a.1 + b.1, a.2 && b.2)),
            )
    }

    /// The lists to add and to subtract, of the first `rows` rows.
    fn lists(&self, rows: usize) -> (Lists<'_>, Lists<'_>) {
        let off = Lists {
            idx: &self.off,
            stride: self.n,
            nnz: &self.n_off[..rows],
        };
        (self.on.lists(0, rows), off)
    }
}

/// Splits a row's `flips` (the first entries of `off`) by direction: those turned on to `on`,
/// those turned off compacted at the start of `off`; returns their counts. No branch per flip
/// (their directions are unpredictable): each index is written to both lists and only its own
/// list moves on (the write position in `off` never passes the read position).
fn split_flips(new: &[f32], on: &mut [u32], off: &mut [u32], flips: usize) -> (u32, u32) {
    let (mut a, mut b) = (0, 0);
    for k in 0..flips {
        let i = off[k];
        let up = (new[i as usize] == 1.0) as usize;
        on[a] = i;
        off[b] = i;
        a += up;
        b += 1 - up;
    }
    (a as u32, b as u32)
}

/// [`pass::conditional`] of `input` (`rows × n_in`) for `pre` that holds the product of
/// `old` (same shape) with the same weights: `pre` is moved by the flips from `old` to `input`
/// (or summed afresh when the batch flips too much), then `prob = σ(pre + bias)` and, with `sample`,
/// `state ~ prob` (row `r` from `key.derive(r)`, as in a full pass). Falls back to the full
/// pass when `input` is not 0/1, and takes it (bit for bit) when the batch flips too much.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conditional_moved(
    m: &impl Params,
    dir: Conditional,
    old: &[f32],
    input: &[f32],
    rows: usize,
    bufs: PassBuffers<'_>,
    flips: &mut FlipIndex,
    sample: Option<(&mut [f32], StreamKey)>,
) {
    let (n_in, n_out) = dir.sizes(m);
    debug_assert_eq!((old.len(), input.len()), (rows * n_in, rows * n_in));
    let PassBuffers { pre, prob, index } = bufs;
    if rows == 0 || n_out == 0 {
        return;
    }
    let par = pass::parallel(rows, n_in, n_out) && rayon::current_thread_index().is_some();
    let plan = flips.build(old, input, n_in, par);
    match plan {
        // The full pass, bit for bit (its binary or dense product, chosen as always).
        Plan::NotBinary | Plan::Fresh(None) => {
            let bufs = PassBuffers { pre, prob, index };
            return pass::conditional(m, dir, input, rows, bufs, sample);
        }
        Plan::Fresh(Some(ones)) => {
            let index = &mut flips.on;
            let bufs = PassBuffers { pre, prob, index };
            return pass::conditional_indexed(m, dir, input, rows, bufs, ones, sample);
        }
        Plan::Moved => {}
    }
    let (w, ld) = dir.weights(m);
    let key = sample.as_ref().map(|(_, key)| *key);
    let outs = Outputs {
        pre: RowsMut::new(pre, rows, n_out, n_out),
        prob: Some(RowsMut::new(prob, rows, n_out, n_out)),
        state: sample.map(|(state, _)| RowsMut::new(state, rows, n_out, n_out)),
    };
    let (on, off) = flips.lists(rows);
    let epi = (1.0, dir.bias(m), key);
    let columns = |mut o: Outputs<'_>, j0: usize| {
        gather_rows_into(&w[j0..], ld, on, &mut o.pre, Accumulate::Add);
        gather_rows_into(&w[j0..], ld, off, &mut o.pre, Accumulate::Sub);
        pass::epilogue_columns(o, j0, epi);
    };
    if par && pass::by_columns(n_out) {
        pass::for_column_blocks(outs, columns);
    } else {
        columns(outs, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Rbm;
    use crate::test_rows::{flip_some, random_rows};

    /// `(pre, prob, state)` of a full pass of `x`.
    fn full(m: &Rbm, dir: Conditional, x: &[f32], rows: usize) -> [Vec<f32>; 3] {
        let n_out = dir.sizes(m).1;
        let [mut pre, mut prob, mut state] = [0; 3].map(|_| vec![0.0; rows * n_out]);
        let bufs = PassBuffers {
            pre: &mut pre,
            prob: &mut prob,
            index: &mut RowIndex::default(),
        };
        pass::conditional(m, dir, x, rows, bufs, Some((&mut state, StreamKey::new(7))));
        [pre, prob, state]
    }

    /// Moves a full pass of `old` to `new`.
    fn moved(m: &Rbm, dir: Conditional, old: &[f32], new: &[f32], rows: usize) -> [Vec<f32>; 3] {
        let [mut pre, mut prob, mut state] = full(m, dir, old, rows);
        let bufs = PassBuffers {
            pre: &mut pre,
            prob: &mut prob,
            index: &mut RowIndex::default(),
        };
        let sample = Some((&mut state[..], StreamKey::new(7)));
        let flips = &mut FlipIndex::default();
        conditional_moved(m, dir, old, new, rows, bufs, flips, sample);
        [pre, prob, state]
    }

    #[test]
    fn a_moved_pass_matches_the_full_one() {
        let m = Rbm::new(67, 45, 3).unwrap();
        let root = StreamKey::new(11);
        for dir in [Conditional::Hidden, Conditional::Visible] {
            let n_in = dir.sizes(&m).0;
            // 0: nothing flips; 0.05–0.2: the batch moves; 0.45, 1: it takes the full pass.
            for (s, p) in [0.0, 0.05, 0.2, 0.45, 1.0].into_iter().enumerate() {
                for rows in [1, 9, 40] {
                    let key = root.derive((s * 100 + rows) as u64);
                    let old = random_rows(key.derive(0), rows, n_in, 0.4);
                    let new = flip_some(key.derive(1), &old, p);
                    let [pre, prob, state] = moved(&m, dir, &old, &new, rows);
                    let [want_pre, want_prob, want_state] = full(&m, dir, &new, rows);
                    let what = format!("{dir:?} p {p} rows {rows}");
                    for (g, w) in pre.iter().zip(&want_pre) {
                        assert!((g - w).abs() <= 1e-5, "{what}: pre {g} vs {w}");
                    }
                    for (g, w) in prob.iter().zip(&want_prob) {
                        assert!((g - w).abs() <= 1e-6, "{what}: prob {g} vs {w}");
                    }
                    // The same draws: states differ only where a probability moved across
                    // its uniform by rounding (none expected at this size).
                    assert_eq!(state, want_state, "{what}");
                    // Too many flips (in the first rows alone, or in all): the full pass, bit
                    // for bit. A move changes the rounding of some element.
                    assert_eq!(pre == want_pre, p >= 0.45 || p == 0.0, "{what}");
                }
            }
        }
    }

    #[test]
    fn grey_inputs_take_the_full_pass() {
        let m = Rbm::new(10, 6, 1).unwrap();
        let rows = 3;
        let grey: Vec<f32> = (0..rows * 10).map(|i| (i % 5) as f32 / 5.0).collect();
        let binary: Vec<f32> = grey.iter().map(|&x| (x > 0.5) as u8 as f32).collect();
        for (old, new) in [(&grey, &binary), (&binary, &grey)] {
            let [pre, prob, _] = moved(&m, Conditional::Hidden, old, new, rows);
            let [want_pre, want_prob, _] = full(&m, Conditional::Hidden, new, rows);
            assert_eq!((pre, prob), (want_pre, want_prob));
        }
    }

    #[test]
    fn split_flips_keeps_each_direction_in_order() {
        let new = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let (mut on, mut off) = ([0u32; 6], [0u32, 1, 3, 4, 5, 0]);
        assert_eq!(split_flips(&new, &mut on, &mut off, 5), (2, 3));
        assert_eq!((&on[..2], &off[..3]), (&[0, 3][..], &[1, 4, 5][..]));
    }
}
