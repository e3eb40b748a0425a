//! The analytic CD gradient and the SGD update (PyTorch's `torch.optim.SGD` semantics).
//!
//! The weight gradient `V₀ᵀP₀ − V_kᵀP_k` is accumulated in the `Wᵀ` layout (`V × H`): row `i`
//! of `Wᵀ` changes by the sum of the rows of `P` whose visible unit `i` is 1. For 0/1 visible
//! states that is a gather-add over the rows listed in a column index (binary product); for
//! other values a GEMM. The binary product runs in one block of hidden units (columns of `Wᵀ`)
//! per thread, as the passes split them; the GEMM in blocks of visible units. Each element's
//! sum is the same whatever the blocks, so the result does not depend on the number of
//! threads.

use rayon::prelude::*;
use rbm_kernels::binary::{Accumulate, Lists, RowsMut, gather_rows, gather_rows_into, transpose};
use rbm_kernels::{AlignedVec, Mat, MatMut, gather_stride, gemm};

use crate::compute::pass::{RowIndex, for_column_blocks, task_min_len};
use crate::model::Rbm;
use crate::train::Offsets;

/// Visible units (rows of `Wᵀ`) per parallel block of the weight update.
const VISIBLE_BLOCK: usize = 32;

/// Below this many multiply-adds the update runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// SGD momentum buffers (`buf` of `torch.optim.SGD`), one per parameter; the weights' buffer
/// in the `Wᵀ` layout (`V × H`).
#[derive(Clone, Debug)]
pub(crate) struct Velocity {
    pub(crate) wt: Vec<f32>,
    pub(crate) v_bias: Vec<f32>,
    pub(crate) h_bias: Vec<f32>,
}

impl Velocity {
    pub(crate) fn new(nv: usize, nh: usize) -> Self {
        Velocity {
            wt: vec![0.0; nv * nh],
            v_bias: vec![0.0; nv],
            h_bias: vec![0.0; nh],
        }
    }
}

/// For each column `i` of a batch of 0/1 rows, the rows where it is 1, in increasing order:
/// `rows[i·B .. i·B + nnz[i]]` for a batch of `B` rows. Buffers grow to the largest batch seen,
/// then are reused.
#[derive(Clone, Debug, Default)]
pub(crate) struct ColIndex {
    rows: Vec<u32>,
    nnz: Vec<u32>,
    stride: usize,
    index: RowIndex,
}

impl ColIndex {
    /// Indexes the `rows × n` batch `v`; `false` (and an unusable index) if it is not 0/1 or
    /// too dense for the binary product.
    fn build(&mut self, v: &[f32], rows: usize, n: usize) -> bool {
        // Sized for the densest batch up front, so that later batches never reallocate.
        if self.rows.len() < rows * n {
            self.rows.resize(rows * n, 0);
        }
        self.nnz.resize(n, 0);
        let Some(ones) = self.index.build(v, rows, n, true) else {
            return false;
        };
        if (ones as f64) > crate::compute::pass::MAX_BINARY_DENSITY * (rows * n) as f64 {
            return false;
        }
        self.stride = rows;
        self.nnz.fill(0);
        for r in 0..rows {
            for &i in self.index.row(r) {
                let i = i as usize;
                self.rows[i * rows + self.nnz[i] as usize] = r as u32;
                self.nnz[i] += 1;
            }
        }
        true
    }

    /// The lists of columns `i0..i1`.
    fn lists(&self, i0: usize, i1: usize) -> Lists<'_> {
        Lists {
            idx: &self.rows[i0 * self.stride..],
            stride: self.stride,
            nnz: &self.nnz[i0..i1],
        }
    }

    #[cfg(test)]
    fn col(&self, i: usize) -> &[u32] {
        self.lists(i, i + 1).row(0)
    }
}

/// Reusable buffers of the update: scaled hidden probabilities, the column indexes, and the
/// update directions of the biases.
#[derive(Clone, Debug, Default)]
pub(crate) struct UpdateScratch {
    /// Scaled hidden probabilities, `B × H` and `C × H` at the gather-friendly row stride
    /// [`gather_stride`]`(H)`, aligned: the matrices the gradient gathers rows of.
    p0s: AlignedVec,
    pks: AlignedVec,
    cols0: ColIndex,
    colsk: ColIndex,
    /// Whether `cols0` / `colsk` index the phases (0/1 and sparse enough).
    binary0: bool,
    binaryk: bool,
    dv: Vec<f32>,
    dh: Vec<f32>,
    db: Vec<f32>,
    dc: Vec<f32>,
    /// FPCD: the weight direction, `V × H`.
    d: Vec<f32>,
}

/// The two phases of a CD step: the batch `v0` (`B × V`) with its hidden probabilities `p0`
/// (`B × H`), and the negative chains `vk` (`C × V`) with theirs, `pk` (`C × H`).
pub(crate) struct Phases<'a> {
    pub(crate) v0: &'a [f32],
    pub(crate) p0: &'a [f32],
    pub(crate) vk: &'a [f32],
    pub(crate) pk: &'a [f32],
}

/// The optimizer's settings for one step (from the schedules of [`TrainConfig`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepParams {
    pub(crate) lr: f32,
    pub(crate) momentum: f32,
    pub(crate) weight_decay: f32,
}

/// Applies one SGD step for the CD gradient of a batch; returns whether every weight is
/// finite afterwards.
///
/// In the `Wᵀ` layout `M` (`V × H`), the ascent direction of the log-likelihood estimate is
/// `D_M = V₀ᵀP₀/B − V_kᵀP_k/C`, `D_b = Δv`, `D_c = Δh` with `Δv`, `Δh` the differences of
/// the phases' column means. With centering offsets `μ`, `λ`, the centered model's direction
/// (Melchior et al. 2016, with the states minus the offsets) expressed for the ordinary
/// parameters `b' = b − Mλ`, `c' = c − Mᵀμ` is `D_M − μΔhᵀ − Δvλᵀ`, `D_b = Δv − D_M λ`,
/// `D_c = Δh − D_Mᵀ μ`: the model stays in the ordinary form, and moving the offsets needs
/// no reparametrisation.
pub(crate) fn apply(
    model: &mut Rbm,
    sp: &StepParams,
    ph: &Phases<'_>,
    scratch: &mut UpdateScratch,
    velocity: Option<&mut Velocity>,
    offsets: Option<&Offsets>,
    fast: Option<&mut Fast>,
) -> bool {
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    let (b, c) = (ph.v0.len() / nv, ph.vk.len() / nv);
    if let Some(fast) = fast {
        return apply_with_fast(model, sp, ph, scratch, velocity, offsets, fast);
    }
    // Plain SGD adds lr · D to θ; with momentum the buffer takes −D.
    let s = if velocity.is_some() { 1.0 } else { sp.lr };
    let (sb, sc) = (s / b as f32, s / c as f32);
    directions_prepare(ph, scratch, offsets, (sb, sc), (nv, nh));
    let sc_ = &*scratch;
    let (db, dc) = (&sc_.db, &sc_.dc);
    let ld_t = model.wt_stride();
    model.update_through_t(|wt, vb, hb| match velocity {
        None => {
            sc_.add_weight_direction(wt, ld_t, (ph, nh), offsets, false);
            vb.iter_mut().zip(db).for_each(|(x, d)| *x += d);
            hb.iter_mut().zip(dc).for_each(|(x, d)| *x += d);
        }
        Some(vel) => {
            let (mu, wd, lr) = (sp.momentum, sp.weight_decay, sp.lr);
            // buf ← μ·buf − D + λ·W, then W ← W − lr·buf.
            scale_in_place(&mut vel.wt, mu);
            sc_.add_weight_direction(&mut vel.wt, nh, (ph, nh), offsets, true);
            for_row_blocks(&mut vel.wt, nh, wt, ld_t, None, |b, x, _| {
                for (b, x) in b.iter_mut().zip(x.iter_mut()) {
                    *b += wd * *x;
                    *x -= lr * *b;
                }
            });
            for (buf, theta, d) in [(&mut vel.v_bias, vb, db), (&mut vel.h_bias, hb, dc)] {
                for ((b, x), d) in buf.iter_mut().zip(theta.iter_mut()).zip(d) {
                    *b = mu * *b - d;
                    *x -= lr * *b;
                }
            }
        }
    })
}

/// Indexes the phases' visible columns, scales the hidden probabilities (`p0` by `sb`, `pk`
/// by `sc`) and computes the bias
/// directions `db`, `dc` (centered with `offsets`) from the column-mean differences `dv`,
/// `dh`, all at the scale `sb = s/B`, `sc = s/C`.
fn directions_prepare(
    ph: &Phases<'_>,
    scratch: &mut UpdateScratch,
    offsets: Option<&Offsets>,
    (sb, sc): (f32, f32),
    (nv, nh): (usize, usize),
) {
    let (cols0, colsk) = (&mut scratch.cols0, &mut scratch.colsk);
    (scratch.binary0, scratch.binaryk) = rayon::join(
        || cols0.build(ph.v0, ph.v0.len() / nv, nv),
        || colsk.build(ph.vk, ph.vk.len() / nv, nv),
    );
    let ld_ps = gather_stride(nh);
    scale_into(&mut scratch.p0s, ld_ps, ph.p0, nh, sb);
    scale_into(&mut scratch.pks, ld_ps, ph.pk, nh, sc);
    mean_difference(&mut scratch.dv, ph.v0, ph.vk, nv, sb, sc);
    mean_difference(&mut scratch.dh, ph.p0, ph.pk, nh, sb, sc);
    // The bias directions, from the parameters before the step.
    scratch.db.clear();
    scratch.db.extend_from_slice(&scratch.dv);
    scratch.dc.clear();
    scratch.dc.extend_from_slice(&scratch.dh);
    if let Some(o) = offsets {
        let (dv, dh) = (&scratch.dv[..], &scratch.dh[..]);
        let (db, dc) = (&mut scratch.db[..], &mut scratch.dc[..]);
        centered_bias_directions(ph, (sb, sc), o, (dv, dh), (db, dc));
    }
}

impl UpdateScratch {
    /// The positive and negative phases of the weight direction, as prepared by
    /// [`directions_prepare`].
    fn phases<'a>(&'a self, ph: &Phases<'a>, nh: usize) -> [Phase<'a>; 2] {
        let ld_ps = gather_stride(nh);
        [
            Phase {
                v: ph.v0,
                ps: &self.p0s,
                ld_ps,
                cols: self.binary0.then_some(&self.cols0),
            },
            Phase {
                v: ph.vk,
                ps: &self.pks,
                ld_ps,
                cols: self.binaryk.then_some(&self.colsk),
            },
        ]
    }

    /// `m += D_M` (or `m −= D_M` with `negate`) for `m` = `V × H` at row stride `ld`: the
    /// weight direction at the scale of [`directions_prepare`], with the centering terms.
    fn add_weight_direction(
        &self,
        m: &mut [f32],
        ld: usize,
        (ph, nh): (&Phases<'_>, usize),
        offsets: Option<&Offsets>,
        negate: bool,
    ) {
        let [pos, neg] = self.phases(ph, nh);
        let (add, sub) = if negate {
            (Accumulate::Sub, Accumulate::Add)
        } else {
            (Accumulate::Add, Accumulate::Sub)
        };
        weight_phase(m, ld, nh, &pos, add);
        weight_phase(m, ld, nh, &neg, sub);
        if let Some(o) = offsets {
            rank_two(
                m,
                ld,
                if negate { 1.0 } else { -1.0 },
                o,
                &self.dv,
                &self.dh,
            );
        }
    }
}

/// The fast weights of FPCD (Tieleman & Hinton 2009), in the layouts of the update (`Wᵀ`,
/// `V × H`), with their learning rate and decay.
#[derive(Clone, Debug)]
pub(crate) struct Fast {
    pub(crate) wt: Vec<f32>,
    pub(crate) v_bias: Vec<f32>,
    pub(crate) h_bias: Vec<f32>,
    pub(crate) lr: f32,
    pub(crate) decay: f32,
}

impl Fast {
    pub(crate) fn new(nv: usize, nh: usize, lr: f32, decay: f32) -> Self {
        Fast {
            wt: vec![0.0; nv * nh],
            v_bias: vec![0.0; nv],
            h_bias: vec![0.0; nh],
            lr,
            decay,
        }
    }
}

/// [`apply`] with fast weights: the direction `D` is formed once (in a scratch `V × H`
/// buffer), the regular parameters step along it as in [`apply`], and the fast ones decay and
/// step: `F ← decay·F + lr_fast·D`.
fn apply_with_fast(
    model: &mut Rbm,
    sp: &StepParams,
    ph: &Phases<'_>,
    scratch: &mut UpdateScratch,
    velocity: Option<&mut Velocity>,
    offsets: Option<&Offsets>,
    fast: &mut Fast,
) -> bool {
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    let (b, c) = (ph.v0.len() / nv, ph.vk.len() / nv);
    let (sb, sc) = (1.0 / b as f32, 1.0 / c as f32);
    directions_prepare(ph, scratch, offsets, (sb, sc), (nv, nh));
    let mut d = std::mem::take(&mut scratch.d);
    d.clear();
    d.resize(nv * nh, 0.0);
    let sc_ = &*scratch;
    let (db, dc) = (&sc_.db, &sc_.dc);
    sc_.add_weight_direction(&mut d, nh, (ph, nh), offsets, false);
    let (mu, wd, lr) = (sp.momentum, sp.weight_decay, sp.lr);
    let ld_t = model.wt_stride();
    let finite = model.update_through_t(|wt, vb, hb| match velocity {
        None => {
            for_row_blocks(wt, ld_t, &mut [], 0, Some((&d, nh)), |x, _, d| {
                x.iter_mut().zip(d).for_each(|(x, d)| *x += lr * d);
            });
            vb.iter_mut().zip(db).for_each(|(x, d)| *x += lr * d);
            hb.iter_mut().zip(dc).for_each(|(x, d)| *x += lr * d);
        }
        Some(vel) => {
            for_row_blocks(&mut vel.wt, nh, wt, ld_t, Some((&d, nh)), |b, x, d| {
                for ((b, x), d) in b.iter_mut().zip(x.iter_mut()).zip(d) {
                    *b = mu * *b - d + wd * *x;
                    *x -= lr * *b;
                }
            });
            for (buf, theta, d) in [(&mut vel.v_bias, vb, db), (&mut vel.h_bias, hb, dc)] {
                for ((b, x), d) in buf.iter_mut().zip(theta.iter_mut()).zip(d) {
                    *b = mu * *b - d;
                    *x -= lr * *b;
                }
            }
        }
    });
    let (fl, decay) = (fast.lr, fast.decay);
    for_row_blocks(&mut fast.wt, nh, &mut [], 0, Some((&d, nh)), |f, _, d| {
        f.iter_mut()
            .zip(d)
            .for_each(|(f, d)| *f = decay * *f + fl * d);
    });
    for (f, d) in [(&mut fast.v_bias, db), (&mut fast.h_bias, dc)] {
        f.iter_mut()
            .zip(d)
            .for_each(|(f, d)| *f = decay * *f + fl * d);
    }
    scratch.d = d;
    finite
}

/// Rows per parallel block of the elementwise updates of `V × H` buffers.
const UPDATE_BLOCK_ROWS: usize = 16;

/// `f(a_row, b_row, d_row)` for each row of `a` (row stride `la`), with the same row of `b`
/// (stride `lb`; an empty row when `b` is empty) and of the read-only `d` (`(d, ld)`; an
/// empty row when `None`), in parallel blocks of rows once `a` is large. Each element's
/// arithmetic is the same whatever the blocks, so the split changes no result.
fn for_row_blocks(
    a: &mut [f32],
    la: usize,
    b: &mut [f32],
    lb: usize,
    d: Option<(&[f32], usize)>,
    f: impl Fn(&mut [f32], &mut [f32], &[f32]) + Sync,
) {
    let (la, lb) = (la.max(1), lb.max(1));
    let run = |(i, a_block): (usize, &mut [f32]), b_block: &mut [f32]| {
        let r0 = i * UPDATE_BLOCK_ROWS;
        let mut b_rows = b_block.chunks_mut(lb);
        for (k, a_row) in a_block.chunks_mut(la).enumerate() {
            let b_row = b_rows.next().unwrap_or_default();
            let d_row = d.map_or(&[][..], |(d, ld)| &d[(r0 + k) * ld..(r0 + k + 1) * ld]);
            f(a_row, b_row, d_row);
        }
    };
    let min_len = task_min_len(a.len(), PARALLEL_MIN_WORK, 1);
    let blocks = a
        .par_chunks_mut(UPDATE_BLOCK_ROWS * la)
        .enumerate()
        .with_min_len(min_len);
    if b.is_empty() {
        blocks.for_each(|x| run(x, &mut []));
    } else {
        blocks
            .zip(b.par_chunks_mut(UPDATE_BLOCK_ROWS * lb))
            .for_each(|(x, b_block)| run(x, b_block));
    }
}

/// `out[i] = sb · Σ_r pos[r, i] − sc · Σ_r neg[r, i]` for rows of `n` values. Each column's
/// sums add its rows in order (as `Iterator::sum` would), walking the batches row by row.
fn mean_difference(out: &mut Vec<f32>, pos: &[f32], neg: &[f32], n: usize, sb: f32, sc: f32) {
    let column_sums = |out: &mut [f32], m: &[f32]| {
        out.fill(-0.0);
        for row in m.chunks(n) {
            out.iter_mut().zip(row).for_each(|(o, &x)| *o += x);
        }
    };
    out.resize(2 * n, 0.0);
    let (p, q) = out.split_at_mut(n);
    column_sums(p, pos);
    column_sums(q, neg);
    for (p, &q) in p.iter_mut().zip(q.iter()) {
        *p = sb * *p - sc * q;
    }
    out.truncate(n);
}

/// With centering: `db ← Δv − D_M λ`, `dc ← Δh − D_Mᵀ μ` (see [`apply`]), computed from the
/// phases without forming `D_M`: `D_M λ = sb·Σ_r v0_r (p0_r·λ) − sc·Σ_r vk_r (pk_r·λ) −
/// μ(Δh·λ) − Δv(λ·λ)` and `D_Mᵀ μ = sb·Σ_r p0_r (v0_r·μ) − sc·Σ_r pk_r (vk_r·μ) − Δh(μ·μ) −
/// λ(Δv·μ)`. `dv`, `dh` are `Δv`, `Δh` (already scaled), `db`, `dc` hold them on entry.
fn centered_bias_directions(
    ph: &Phases<'_>,
    (sb, sc): (f32, f32),
    o: &Offsets,
    (dv, dh): (&[f32], &[f32]),
    (db, dc): (&mut [f32], &mut [f32]),
) {
    let (mu, lambda) = (&o.visible[..], &o.hidden[..]);
    let (nv, nh) = (mu.len(), lambda.len());
    let dot = |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
    let (dh_l, l_l, mu_mu, dv_mu) = (
        dot(dh, lambda),
        dot(lambda, lambda),
        dot(mu, mu),
        dot(dv, mu),
    );
    // db −= D_M λ.
    for (vs, ps, scale) in [(ph.v0, ph.p0, sb), (ph.vk, ph.pk, -sc)] {
        for (v, p) in vs.chunks(nv).zip(ps.chunks(nh)) {
            let w = scale * dot(p, lambda);
            db.iter_mut().zip(v).for_each(|(d, &x)| *d -= w * x);
            let w = scale * dot(v, mu);
            dc.iter_mut().zip(p).for_each(|(d, &x)| *d -= w * x);
        }
    }
    for i in 0..nv {
        db[i] += mu[i] * dh_l + dv[i] * l_l;
    }
    for j in 0..nh {
        dc[j] += dh[j] * mu_mu + lambda[j] * dv_mu;
    }
}

/// `m[i, j] += sign · (μ_i Δh_j + Δv_i λ_j)` over `m` = `V × H` row-major at row stride
/// `ld` (columns past `H` untouched): the centering terms of the weight direction (`sign` −1
/// for `D_M`, +1 for a buffer taking `−D_M`).
fn rank_two(m: &mut [f32], ld: usize, sign: f32, o: &Offsets, dv: &[f32], dh: &[f32]) {
    let (mu, lambda) = (&o.visible, &o.hidden);
    let rows = |(i, row): (usize, &mut [f32])| {
        let (a, b) = (sign * mu[i], sign * dv[i]);
        for ((x, &h), &l) in row.iter_mut().zip(dh).zip(lambda.iter()) {
            *x += a * h + b * l;
        }
    };
    m.par_chunks_mut(ld).enumerate().for_each(rows);
}

/// One phase of the weight gradient: visible rows `v` (`B × V`), scaled hidden probabilities
/// `ps` (`B × H` at row stride `ld_ps`), and the column index of `v` when it takes the binary
/// product.
struct Phase<'a> {
    v: &'a [f32],
    ps: &'a [f32],
    ld_ps: usize,
    cols: Option<&'a ColIndex>,
}

/// `C (+=, −=) vᵀ · ps` for `C` = `V × H` row-major at row stride `ld_c`, in blocks of hidden
/// units (binary) or visible units (GEMM); columns past `H` are left alone.
fn weight_phase(c: &mut [f32], ld_c: usize, nh: usize, ph: &Phase<'_>, mode: Accumulate) {
    let nv = c.len() / ld_c;
    let rows = ph.v.len() / nv;
    let par = rows.saturating_mul(nv).saturating_mul(nh) >= PARALLEL_MIN_WORK && nv > VISIBLE_BLOCK;
    if let (Some(cols), true) = (ph.cols, par && crate::compute::pass::by_columns(nh)) {
        // Blocks of hidden units, as the passes split them: each thread updates the columns of
        // `Wᵀ` its `v → h` passes read.
        let lists = cols.lists(0, nv);
        let out = RowsMut::new(c, nv, nh, ld_c);
        for_column_blocks(out, |mut o, j0| {
            gather_rows_into(&ph.ps[j0..], ph.ld_ps, lists, &mut o, mode)
        });
        return;
    }
    // From here: the GEMM, or the binary product of a layer of few hidden units, in blocks of
    // visible units; or the binary product on this thread.
    let vb = if ph.cols.is_some() {
        crate::compute::pass::block_rows(nv, par)
    } else {
        VISIBLE_BLOCK
    };
    let block = |(blk, c_b): (usize, &mut [f32])| {
        let i0 = blk * vb;
        let ni = c_b.len() / ld_c;
        match ph.cols {
            Some(cols) => {
                let lists = cols.lists(i0, i0 + ni);
                gather_rows(ph.ps, ph.ld_ps, nh, lists, c_b, ld_c, mode);
            }
            None => {
                // vᵀ restricted to visible units i0..i0+ni: element (i, r) is v[r·V + i0 + i].
                let vt = Mat::new(&ph.v[i0..], ni, rows, 1, nv);
                let sign = if mode == Accumulate::Sub { -1.0 } else { 1.0 };
                gemm(
                    sign,
                    vt,
                    Mat::new(ph.ps, rows, nh, ph.ld_ps, 1),
                    1.0,
                    MatMut::new(c_b, ni, nh, ld_c, 1),
                );
            }
        }
    };
    let chunk = vb * ld_c;
    if par {
        c.par_chunks_mut(chunk).enumerate().for_each(block);
    } else {
        c.chunks_mut(chunk).enumerate().for_each(block);
    }
}

/// `dst = a · src` for the rows of `n` values of `src`, written at row stride `ld` (the padding
/// zero); `dst` is reallocated only when the batch grows.
fn scale_into(dst: &mut AlignedVec, ld: usize, src: &[f32], n: usize, a: f32) {
    let rows = src.len() / n;
    if dst.len() != rows * ld {
        *dst = AlignedVec::zeros(rows * ld);
    }
    for (d, s) in dst.chunks_mut(ld).zip(src.chunks(n)) {
        d.iter_mut().zip(s).for_each(|(d, &s)| *d = a * s);
    }
}

fn scale_in_place(x: &mut [f32], a: f32) {
    if a == 0.0 {
        x.fill(0.0);
    } else {
        let min_len = task_min_len(x.len(), PARALLEL_MIN_WORK, 1);
        x.par_chunks_mut(PARALLEL_MIN_WORK / 4)
            .with_min_len(min_len)
            .for_each(|c| c.iter_mut().for_each(|v| *v *= a));
    }
}

/// For each column `i` of the `B × n` batches: `f(&mut out[i], a · Σ_r (pos[r, i] − neg[r, i]))`.
fn bias_step(out: &mut [f32], pos: &[f32], neg: &[f32], a: f32, f: impl Fn(&mut f32, f32)) {
    let n = out.len();
    for (i, o) in out.iter_mut().enumerate() {
        let mut s = 0.0f32;
        for (p, q) in pos[i..].iter().step_by(n).zip(neg[i..].iter().step_by(n)) {
            s += p - q;
        }
        f(o, a * s);
    }
}

/// The gradient of the CD loss `L = mean F(V₀) − mean F(V_k)` with respect to each parameter
/// (shapes as in [`Rbm`]: `w` is `H × V`, `v_bias` `V`, `h_bias` `H`).
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient {
    /// `∂L/∂W = −(P₀ᵀV₀ − P_kᵀV_k) / B`, `H × V` row-major.
    pub w: Vec<f32>,
    /// `∂L/∂b = −Σ_r (V₀ − V_k) / B`, length `V`.
    pub v_bias: Vec<f32>,
    /// `∂L/∂c = −Σ_r (P₀ − P_k) / B`, length `H`.
    pub h_bias: Vec<f32>,
}

/// The analytic gradient of the reference notebook's loss `mean F(v0) − mean F(vk)` with `v0`
/// and `vk` (both `B × V`) held fixed: positive minus negative phase, with hidden
/// probabilities in both. Allocates its result; the trainer uses the same products in place.
///
/// # Errors
/// [`crate::Error::Shape`] if `v0` and `vk` differ in length or are not whole rows of `V`.
pub fn cd_gradient(model: &Rbm, v0: &[f32], vk: &[f32]) -> crate::Result<Gradient> {
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    if v0.len() != vk.len() || v0.is_empty() || !v0.len().is_multiple_of(nv) {
        return Err(crate::Error::shape(
            "cd_gradient: v0 and vk",
            format!("the same whole, non-zero number of {nv}-unit rows"),
            format!("{} and {} values", v0.len(), vk.len()),
        ));
    }
    let rows = v0.len() / nv;
    let mut p0 = vec![0.0; rows * nh];
    let mut pk = vec![0.0; rows * nh];
    model.hidden_probs(v0, &mut p0)?;
    model.hidden_probs(vk, &mut pk)?;
    let a = -1.0 / rows as f32;
    let (mut p0s, mut pks) = (AlignedVec::default(), AlignedVec::default());
    scale_into(&mut p0s, nh, &p0, nh, a);
    scale_into(&mut pks, nh, &pk, nh, a);
    let (mut c0, mut ck) = (ColIndex::default(), ColIndex::default());
    let pos = Phase {
        v: v0,
        ps: &p0s,
        ld_ps: nh,
        cols: c0.build(v0, rows, nv).then_some(&c0),
    };
    let neg = Phase {
        v: vk,
        ps: &pks,
        ld_ps: nh,
        cols: ck.build(vk, rows, nv).then_some(&ck),
    };
    let mut gt = vec![0.0; nv * nh];
    weight_phase(&mut gt, nh, nh, &pos, Accumulate::Add);
    weight_phase(&mut gt, nh, nh, &neg, Accumulate::Sub);
    let mut g = Gradient {
        w: vec![0.0; nh * nv],
        v_bias: vec![0.0; nv],
        h_bias: vec![0.0; nh],
    };
    transpose(&gt, nh, nv, nh, &mut g.w, nv);
    bias_step(&mut g.v_bias, v0, vk, a, |x, d| *x = d);
    bias_step(&mut g.h_bias, &p0, &pk, a, |x, d| *x = d);
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_index_lists_rows_per_column() {
        // 3 rows × 4 columns.
        let v = [1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0];
        let mut c = ColIndex::default();
        assert!(c.build(&v, 3, 4));
        assert_eq!(c.col(0), &[0, 2]);
        assert_eq!(c.col(1), &[] as &[u32]);
        assert_eq!(c.col(2), &[0, 1]);
        assert_eq!(c.col(3), &[1, 2]);
        assert!(!c.build(&[0.5, 0.0], 1, 2), "non-binary");
        assert!(!c.build(&[1.0, 1.0, 1.0, 0.0], 1, 4), "too dense");
    }
}
