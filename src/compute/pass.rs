//! Batched conditional passes: the product (`W·v` or `Wᵀ·h`), then the bias + sigmoid
//! [+ sample] epilogue, in parallel on the current rayon pool: the binary product in one
//! block of output columns per thread ([`for_column_blocks`]), the dense one in blocks of rows.
//!
//! Two products, chosen per call from the input itself:
//! - **binary**: when every input value is 0 or 1 and at most [`MAX_BINARY_DENSITY`] of them
//!   are 1, each output row is the sum of the weight rows where the input row is 1 (rows of
//!   `Wᵀ` for `v → h`, of `W` for `h → v`): a gather-add over index lists;
//! - **dense**: otherwise, a GEMM.
//!
//! The choice depends only on the input; each output element is computed on its own (the
//! gather sums its row's list in order, the GEMM's result for a row does not depend on the other
//! rows of the call), so the blocks can follow the pool's size ([`block_rows`],
//! [`column_share`]); and element `(r, j)` of a batch always draws `key.derive(r)`'s draw `j`.
//! Results therefore do not depend on the number of threads (`tests/determinism.rs`).
//!
//! Why columns for the binary product: every thread then does the same work (all rows, an
//! equal share of the columns, where blocks of rows differ by their rows' ones), and reads and
//! writes, mostly, the same columns of the weights from one pass, gradient and update to the
//! next (`weight_phase` and `Rbm::update_through_t` split the hidden units the same way), so
//! fewer of the lines it reads were just written by another core. Measured on `rbm bench
//! train`, 2 threads: 1.08× over blocks of rows.

use rayon::prelude::*;
use rbm_kernels::binary::{
    Accumulate, Lists, RowsMut, binary_indices, gather_rows, gather_rows_into,
};
use rbm_kernels::{Mat, MatMut, StreamKey, gemm, sigmoid_affine, sigmoid_affine_sample};

use crate::compute::params::Params;

/// Batches of at most this many rows run on the calling thread.
pub(crate) const ROW_BLOCK: usize = 8;

/// The largest fraction of ones for which a 0/1 input takes the binary product (passes and
/// gradient alike).
///
/// Measured on the 2-core AVX-512 machine, one thread, 784–500, aligned operands as the model
/// keeps them, µs for 32 rows (the share of one thread in a batch of 64) binary vs dense:
/// 45% ones `h → v` 191/254, `v → h` 192/241, gradient 169/208; 55%: 222/251, 233/244,
/// 192/209; 65%: 250/254, 273/241, 215/208. With 64 rows the crossover is a little lower
/// (55%: 375/409 `h → v`, 380/375 gradient). The cost of a dense product does not depend on
/// the density, the binary one grows with it, so one threshold near the crossover loses
/// little either side of it.
pub(crate) const MAX_BINARY_DENSITY: f64 = 0.6;

/// Below this many multiply-adds a pass runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// The same for a pass called from outside the pool, which is handed over to a worker and
/// back (two wake-ups, tens of µs on a VM): below it such a pass runs on the calling thread.
/// (784–500 `v → h` through `Rbm::sample_hidden`, 2 threads: parallel was slower than serial
/// up to 32 rows, 1.3× faster at 64 rows.)
const PARALLEL_MIN_WORK_OUTSIDE: usize = 1 << 24;

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
    pub(crate) fn sizes(self, m: &impl Params) -> (usize, usize) {
        match self {
            Conditional::Hidden => (m.n_visible(), m.n_hidden()),
            Conditional::Visible => (m.n_hidden(), m.n_visible()),
        }
    }

    pub(crate) fn bias(self, m: &impl Params) -> &[f32] {
        match self {
            Conditional::Hidden => m.h_bias(),
            Conditional::Visible => m.v_bias(),
        }
    }

    /// The `input × output` weight matrix of this pass, row-major (`Wᵀ` or `W`), and its
    /// row stride.
    pub(crate) fn weights(self, m: &impl Params) -> (&[f32], usize) {
        match self {
            Conditional::Hidden => (m.weights_t(), m.wt_stride()),
            Conditional::Visible => (m.weights(), m.n_visible()),
        }
    }
}

/// Index lists of the ones of a batch of 0/1 rows: row `r`'s column indices, increasing, at
/// `idx[r·n .. r·n + nnz[r]]`. Buffers grow to the largest batch seen and are then reused.
#[derive(Clone, Debug, Default)]
pub(crate) struct RowIndex {
    idx: Vec<u32>,
    nnz: Vec<u32>,
    n: usize,
}

impl RowIndex {
    /// Indexes `rows` rows of `n` values, over the pool's threads if `par` and the batch is
    /// large. Returns the number of ones, or `None` (leaving the index unusable) if a value is
    /// neither 0 nor 1.
    pub(crate) fn build(
        &mut self,
        input: &[f32],
        rows: usize,
        n: usize,
        par: bool,
    ) -> Option<usize> {
        debug_assert_eq!(input.len(), rows * n);
        self.buffers(rows, n);
        // Rows in parallel for large batches (each row's list is its own).
        let min_len = row_min_len(par, rows * n);
        input
            .par_chunks(n.max(1))
            .zip(self.idx.par_chunks_mut(n.max(1)))
            .zip(self.nnz.par_iter_mut())
            .with_min_len(min_len)
            .map(|((x, out), count)| {
                let c = binary_indices(x, out)?;
                *count = c as u32;
                Some(c)
            })
            .try_reduce(|| 0, |a, b| Some(a + b))
    }

    /// The buffers of `rows` lists of up to `n` entries, for a caller that fills them itself
    /// (row `r`'s list at `idx[r·n..]`, its length at `nnz[r]`).
    pub(crate) fn buffers(&mut self, rows: usize, n: usize) -> (&mut [u32], &mut [u32]) {
        if self.idx.len() < rows * n {
            self.idx.resize(rows * n, 0);
        }
        if self.nnz.len() < rows {
            self.nnz.resize(rows, 0);
        }
        self.n = n;
        (&mut self.idx[..rows * n], &mut self.nnz[..rows])
    }

    /// The lists of rows `r0..r1`.
    pub(crate) fn lists(&self, r0: usize, r1: usize) -> Lists<'_> {
        Lists {
            idx: &self.idx[r0 * self.n..],
            stride: self.n,
            nnz: &self.nnz[r0..r1],
        }
    }

    /// The indices of the ones of row `r`.
    pub(crate) fn row(&self, r: usize) -> &[u32] {
        &self.idx[r * self.n..r * self.n + self.nnz[r] as usize]
    }
}

/// The `with_min_len` of a parallel loop doing `work` (values, multiply-adds, …): one task, run
/// on the calling thread, when `work < threshold`; else tasks of at least `min` items.
pub(crate) fn task_min_len(work: usize, threshold: usize, min: usize) -> usize {
    if work < threshold { usize::MAX } else { min }
}

/// The `with_min_len` of a per-row loop over `values` values: tasks of at least 8 rows when
/// `par` and the batch is large ([`PARALLEL_MIN_VALUES`]), else one task on the calling thread.
pub(crate) fn row_min_len(par: bool, values: usize) -> usize {
    if par {
        task_min_len(values, PARALLEL_MIN_VALUES, 8)
    } else {
        usize::MAX
    }
}

/// Below this many values a per-row loop (a [`RowIndex`], a batch's binarization, the loss's
/// free energies) runs on the calling thread.
pub(crate) const PARALLEL_MIN_VALUES: usize = 1 << 14;

/// Whether `ones` ones in `rows × n` values are sparse enough for the binary product.
fn sparse_enough(ones: usize, rows: usize, n: usize) -> bool {
    (ones as f64) <= MAX_BINARY_DENSITY * (rows * n) as f64
}

/// `pre = input · M` (no bias) for `rows` rows, by the binary product when `input` is 0/1 and
/// sparse enough (indexed into `index`), else by GEMM.
pub(crate) fn preactivation(
    m: &impl Params,
    dir: Conditional,
    input: &[f32],
    rows: usize,
    pre: &mut [f32],
    index: &mut RowIndex,
) {
    let bufs = PassBuffers {
        pre,
        prob: &mut [],
        index,
    };
    pass(m, dir, input, rows, bufs, Epilogue::None, None, None);
}

/// `pre = input · M`, `prob = σ(pre + bias)` and, when `sample` is given, `state ~ prob` with
/// row `r` drawing from `key.derive(r)`.
pub(crate) fn conditional(
    m: &impl Params,
    dir: Conditional,
    input: &[f32],
    rows: usize,
    bufs: PassBuffers<'_>,
    sample: Option<(&mut [f32], StreamKey)>,
) {
    pass(
        m,
        dir,
        input,
        rows,
        bufs,
        sigmoid_or_sample(sample),
        None,
        None,
    );
}

/// The epilogue `σ` [+ the sample into `state`, from `key`].
fn sigmoid_or_sample(sample: Option<(&mut [f32], StreamKey)>) -> Epilogue<'_> {
    match sample {
        Some((state, key)) => Epilogue::Sample(state, key),
        None => Epilogue::Sigmoid,
    }
}

/// [`conditional`] with `bufs.index` already holding the lists of the ones of `input`
/// (`ones` in all, as [`RowIndex::build`] would have made them): the same results.
pub(crate) fn conditional_indexed(
    m: &impl Params,
    dir: Conditional,
    input: &[f32],
    rows: usize,
    bufs: PassBuffers<'_>,
    ones: usize,
    sample: Option<(&mut [f32], StreamKey)>,
) {
    pass(
        m,
        dir,
        input,
        rows,
        bufs,
        sigmoid_or_sample(sample),
        None,
        Some(ones),
    );
}

/// [`conditional`] at inverse temperature `beta`: `prob = σ(β·pre + bias)` with `bias`
/// (`n_out` values) the layer's bias already multiplied by `β`, the conditional of the
/// tempered model `p_β ∝ exp(−β·E)`.
pub(crate) fn conditional_tempered(
    m: &impl Params,
    dir: Conditional,
    input: &[f32],
    rows: usize,
    bufs: PassBuffers<'_>,
    sample: Option<(&mut [f32], StreamKey)>,
    (beta, bias): (f32, &[f32]),
) {
    let epilogue = sigmoid_or_sample(sample);
    pass(
        m,
        dir,
        input,
        rows,
        bufs,
        epilogue,
        Some((beta, bias)),
        None,
    );
}

/// What follows the product in each block, while the block's rows are in cache.
enum Epilogue<'a> {
    /// Nothing: pre-activations only.
    None,
    /// `prob = σ(pre + bias)`.
    Sigmoid,
    /// `prob = σ(pre + bias)` and `state ~ prob`, row `r` from `key.derive(r)`.
    Sample(&'a mut [f32], StreamKey),
}

/// The fused pass: per block (of columns for the binary product in parallel, else of rows),
/// the product into `pre`, then the epilogue on the block, `σ(scale·pre + bias)` with
/// `(scale, bias)` from `temper`, else `(1, the layer's bias)`.
/// `indexed`: the ones of `input` when `bufs.index` already lists them.
#[allow(clippy::too_many_arguments)]
fn pass(
    m: &impl Params,
    dir: Conditional,
    input: &[f32],
    rows: usize,
    bufs: PassBuffers<'_>,
    epilogue: Epilogue<'_>,
    temper: Option<(f32, &[f32])>,
    indexed: Option<usize>,
) {
    let PassBuffers { pre, prob, index } = bufs;
    let (n_in, n_out) = dir.sizes(m);
    debug_assert_eq!(input.len(), rows * n_in);
    debug_assert_eq!(pre.len(), rows * n_out);
    if rows == 0 || n_out == 0 {
        return;
    }
    let outside = rayon::current_thread_index().is_none();
    let par = parallel(rows, n_in, n_out)
        && (!outside
            || rows.saturating_mul(n_in).saturating_mul(n_out) >= PARALLEL_MIN_WORK_OUTSIDE);
    if par && outside {
        // Called from outside the pool: hand the whole pass to a worker once, so that its
        // parallel loops fork and join there instead of each handing over and back (a
        // wake-up of a worker and then of this thread per loop).
        let bufs = PassBuffers { pre, prob, index };
        return rayon::scope(|_| pass(m, dir, input, rows, bufs, epilogue, temper, indexed));
    }
    let ones = match indexed {
        Some(ones) => Some(ones),
        None => index.build(input, rows, n_in, par),
    };
    let binary = ones.is_some_and(|ones| sparse_enough(ones, rows, n_in));
    let rb = block_rows(rows, par);
    let (index, (w, ld)) = (&*index, dir.weights(m));
    let (scale, bias) = temper.unwrap_or((1.0, dir.bias(m)));
    let key = match &epilogue {
        Epilogue::Sample(_, key) => Some(*key),
        _ => None,
    };
    if binary && par && by_columns(n_out) {
        let outs = Outputs {
            pre: RowsMut::new(pre, rows, n_out, n_out),
            prob: (!matches!(epilogue, Epilogue::None))
                .then(|| RowsMut::new(prob, rows, n_out, n_out)),
            state: match epilogue {
                Epilogue::Sample(state, _) => Some(RowsMut::new(state, rows, n_out, n_out)),
                _ => None,
            },
        };
        let lists = index.lists(0, rows);
        let epi = (scale, bias, key);
        for_column_blocks(outs, |o, j0| {
            binary_columns(&w[j0..], ld, lists, o, j0, epi)
        });
        return;
    }
    let block =
        |b: usize, pre_b: &mut [f32], prob_b: Option<&mut [f32]>, state_b: Option<&mut [f32]>| {
            let r0 = b * rb;
            let nr = pre_b.len() / n_out;
            if binary {
                gather_rows(
                    w,
                    ld,
                    n_out,
                    index.lists(r0, r0 + nr),
                    pre_b,
                    n_out,
                    Accumulate::Set,
                );
            } else {
                let x = Mat::row_major(&input[r0 * n_in..(r0 + nr) * n_in], nr, n_in);
                gemm(
                    1.0,
                    x,
                    Mat::new(w, n_in, n_out, ld, 1),
                    0.0,
                    MatMut::row_major(pre_b, nr, n_out),
                );
            }
            let Some(prob_b) = prob_b else { return };
            let rows_b = pre_b.chunks(n_out).zip(prob_b.chunks_mut(n_out));
            match (state_b, key) {
                (Some(state_b), Some(key)) => {
                    for (i, ((x, p), s)) in rows_b.zip(state_b.chunks_mut(n_out)).enumerate() {
                        sigmoid_affine_sample(x, scale, bias, key.derive((r0 + i) as u64), 0, p, s);
                    }
                }
                _ => rows_b.for_each(|(x, p)| sigmoid_affine(x, scale, bias, p)),
            }
        };
    let c = rb * n_out;
    match epilogue {
        Epilogue::None if par => pre
            .par_chunks_mut(c)
            .enumerate()
            .for_each(|(b, x)| block(b, x, None, None)),
        Epilogue::None => pre
            .chunks_mut(c)
            .enumerate()
            .for_each(|(b, x)| block(b, x, None, None)),
        Epilogue::Sigmoid if par => pre
            .par_chunks_mut(c)
            .zip(prob.par_chunks_mut(c))
            .enumerate()
            .for_each(|(b, (x, p))| block(b, x, Some(p), None)),
        Epilogue::Sigmoid => pre
            .chunks_mut(c)
            .zip(prob.chunks_mut(c))
            .enumerate()
            .for_each(|(b, (x, p))| block(b, x, Some(p), None)),
        Epilogue::Sample(state, _) if par => pre
            .par_chunks_mut(c)
            .zip(prob.par_chunks_mut(c))
            .zip(state.par_chunks_mut(c))
            .enumerate()
            .for_each(|(b, ((x, p), s))| block(b, x, Some(p), Some(s))),
        Epilogue::Sample(state, _) => pre
            .chunks_mut(c)
            .zip(prob.chunks_mut(c))
            .zip(state.chunks_mut(c))
            .enumerate()
            .for_each(|(b, ((x, p), s))| block(b, x, Some(p), Some(s))),
    }
}

/// The outputs of a pass as column views, split together.
pub(crate) struct Outputs<'a> {
    pub(crate) pre: RowsMut<'a>,
    pub(crate) prob: Option<RowsMut<'a>>,
    pub(crate) state: Option<RowsMut<'a>>,
}

impl<'a> SplitColumns for Outputs<'a> {
    fn cols(&self) -> usize {
        self.pre.cols()
    }

    fn split_at_col(self, at: usize) -> (Self, Self) {
        let (pre_a, pre_b) = self.pre.split_at_col(at);
        let (prob_a, prob_b) = split_option(self.prob, at);
        let (state_a, state_b) = split_option(self.state, at);
        (
            Outputs {
                pre: pre_a,
                prob: prob_a,
                state: state_a,
            },
            Outputs {
                pre: pre_b,
                prob: prob_b,
                state: state_b,
            },
        )
    }
}

fn split_option(v: Option<RowsMut<'_>>, at: usize) -> (Option<RowsMut<'_>>, Option<RowsMut<'_>>) {
    match v.map(|v| v.split_at_col(at)) {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    }
}

/// Columns `j0 .. j0 + o.cols()` of a binary pass over all rows: the gather from `w` (viewed
/// from column `j0`), then the epilogue `σ(scale·pre + bias)` [+ sample, row `r` from
/// `key.derive(r)` at draw `j0 + j`] — the same values as a pass over all columns.
fn binary_columns(
    w: &[f32],
    ld: usize,
    lists: Lists<'_>,
    mut o: Outputs<'_>,
    j0: usize,
    (scale, bias, key): (f32, &[f32], Option<StreamKey>),
) {
    gather_rows_into(w, ld, lists, &mut o.pre, Accumulate::Set);
    epilogue_columns(o, j0, (scale, bias, key));
}

/// The epilogue of columns `j0 .. j0 + o.cols()` of a pass whose `o.pre` is computed:
/// `prob = σ(scale·pre + bias)` [+ sample, row `r` from `key.derive(r)` at draw `j0 + j`];
/// nothing without `o.prob`.
pub(crate) fn epilogue_columns(
    mut o: Outputs<'_>,
    j0: usize,
    (scale, bias, key): (f32, &[f32], Option<StreamKey>),
) {
    let Some(prob) = &mut o.prob else { return };
    let bias = &bias[j0..j0 + o.pre.cols()];
    for r in 0..o.pre.rows() {
        let (x, p) = (o.pre.row(r), prob.row(r));
        match (&mut o.state, key) {
            (Some(state), Some(key)) => sigmoid_affine_sample(
                x,
                scale,
                bias,
                key.derive(r as u64),
                j0 as u64,
                p,
                state.row(r),
            ),
            _ => sigmoid_affine(x, scale, bias, p),
        }
    }
}

/// Outputs that can be split into blocks of columns (see [`for_column_blocks`]).
pub(crate) trait SplitColumns: Send + Sized {
    /// The number of columns.
    fn cols(&self) -> usize;
    /// Columns `0..at` and `at..`.
    fn split_at_col(self, at: usize) -> (Self, Self);
}

impl SplitColumns for RowsMut<'_> {
    fn cols(&self) -> usize {
        RowsMut::cols(self)
    }

    fn split_at_col(self, at: usize) -> (Self, Self) {
        RowsMut::split_at_col(self, at)
    }
}

/// Runs `f(block, j0)` on one block of columns `j0..` of `out` per thread of the current pool,
/// in parallel: blocks of [`column_share`] columns, the last one narrower (empty blocks are
/// skipped). The work of a pass or an update split this way is the same on every thread
/// (every row, an equal share of the columns), and a thread tends to get the same block from
/// one call to the next (the forking thread runs the first, idle workers steal the others;
/// rayon does not pin them), so it mostly reads the columns of the weights it last wrote.
pub(crate) fn for_column_blocks<O: SplitColumns>(out: O, f: impl Fn(O, usize) + Sync) {
    let parts = rayon::current_num_threads().max(1);
    let per = column_share(out.cols(), parts);
    split_run(out, 0, parts, per, &f);
}

fn split_run<O: SplitColumns>(
    out: O,
    j0: usize,
    parts: usize,
    per: usize,
    f: &(impl Fn(O, usize) + Sync),
) {
    if out.cols() == 0 {
        return;
    }
    if parts <= 1 {
        return f(out, j0);
    }
    let left = parts / 2;
    let at = (left * per).min(out.cols());
    let (a, b) = out.split_at_col(at);
    rayon::join(
        || split_run(a, j0, left, per, f),
        || split_run(b, j0 + at, parts - left, per, f),
    );
}

/// Whether `n` output columns are enough for a block of whole vectors per thread (else a
/// parallel binary product is split by rows: a layer of a few units, say).
pub(crate) fn by_columns(n: usize) -> bool {
    n.div_ceil(16) >= rayon::current_num_threads()
}

/// Columns per block when `n` columns are split over `parts` threads: an equal share,
/// rounded up to whole 16-float vectors (so that blocks start on the weights' cache lines).
pub(crate) fn column_share(n: usize, parts: usize) -> usize {
    n.div_ceil(16).div_ceil(parts.max(1)).max(1) * 16
}

/// The output buffers of one pass: pre-activations (`W·v` without bias) and probabilities,
/// both `rows × n_out`, and the index of the input's ones.
pub(crate) struct PassBuffers<'a> {
    /// Pre-activations, written.
    pub(crate) pre: &'a mut [f32],
    /// Probabilities, written.
    pub(crate) prob: &'a mut [f32],
    /// Scratch for the input's index lists.
    pub(crate) index: &'a mut RowIndex,
}

/// Rows per parallel block of a pass: the batch split evenly over the pool's
/// threads (in multiples of 8), so that each task reuses every loaded tile of weights for as
/// many rows as it can. Each row's result is independent of the blocks, so this choice does
/// not change any result.
pub(crate) fn block_rows(rows: usize, par: bool) -> usize {
    if !par {
        return rows.max(1);
    }
    rows.div_ceil(rayon::current_num_threads().max(1))
        .next_multiple_of(8)
        .max(8)
}

/// Whether a pass of `rows × n_in → n_out` is split over the pool: big enough, and a pool of
/// more than one thread (splitting over one only adds, for a caller outside the pool, a
/// hand-over to its worker and back: ~2× the time of a 32-row pass).
pub(crate) fn parallel(rows: usize, n_in: usize, n_out: usize) -> bool {
    rows > ROW_BLOCK
        && rows.saturating_mul(n_in).saturating_mul(n_out) >= PARALLEL_MIN_WORK
        && rayon::current_num_threads() > 1
}
