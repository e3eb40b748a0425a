//! The analytic CD gradient and the SGD update (PyTorch's `torch.optim.SGD` semantics).
//!
//! The weight gradient `V₀ᵀP₀ − V_kᵀP_k` is accumulated in the `Wᵀ` layout (`V × H`): row `i`
//! of `Wᵀ` changes by the sum of the rows of `P` whose visible unit `i` is 1. For 0/1 visible
//! states that is a gather-add over the rows listed in a column index (binary product); for
//! other values a GEMM. Work is split over fixed blocks of visible units that run in parallel,
//! so the result does not depend on the number of threads.

use rayon::prelude::*;
use rbm_kernels::binary::{Accumulate, Lists, gather_rows, transpose};
use rbm_kernels::{AlignedVec, Mat, MatMut, gather_stride, gemm};

use crate::model::Rbm;
use crate::pass::RowIndex;
use crate::train::TrainConfig;

/// Visible units (rows of `Wᵀ`) per parallel block of the weight update.
const VISIBLE_BLOCK: usize = 32;

/// Below this many multiply-adds the update runs on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// SGD momentum buffers (`buf` of `torch.optim.SGD`), one per parameter; the weights' buffer
/// in the `Wᵀ` layout (`V × H`).
#[derive(Clone, Debug)]
pub(crate) struct Velocity {
    wt: Vec<f32>,
    v_bias: Vec<f32>,
    h_bias: Vec<f32>,
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
        let Some(ones) = self.index.build(v, rows, n) else {
            return false;
        };
        if (ones as f64) > crate::pass::MAX_BINARY_DENSITY * (rows * n) as f64 {
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

/// Reusable buffers of the update: scaled hidden probabilities (`B × H` at the gather-friendly
/// row stride [`gather_stride`]`(H)`, aligned: the matrices the gradient gathers rows of) and
/// the column indexes.
#[derive(Clone, Debug, Default)]
pub(crate) struct UpdateScratch {
    p0s: AlignedVec,
    pks: AlignedVec,
    cols0: ColIndex,
    colsk: ColIndex,
}

/// The two phases of a CD step: visible rows `v0`, `vk` (`B × V`) and hidden probabilities
/// `p0`, `pk` (`B × H`).
pub(crate) struct Phases<'a> {
    pub(crate) v0: &'a [f32],
    pub(crate) p0: &'a [f32],
    pub(crate) vk: &'a [f32],
    pub(crate) pk: &'a [f32],
}

/// Applies one SGD step for the CD gradient of a batch.
pub(crate) fn apply(
    model: &mut Rbm,
    cfg: &TrainConfig,
    ph: &Phases<'_>,
    scratch: &mut UpdateScratch,
    velocity: Option<&mut Velocity>,
) {
    let (nv, nh) = (model.n_visible(), model.n_hidden());
    let rows = ph.v0.len() / nv;
    let inv_b = 1.0 / rows as f32;
    // Plain SGD adds lr/B · (pos − neg) to θ; with momentum the buffer takes −(pos − neg)/B.
    let a = if velocity.is_some() {
        inv_b
    } else {
        cfg.lr * inv_b
    };
    let ld_ps = gather_stride(nh);
    scale_into(&mut scratch.p0s, ld_ps, ph.p0, nh, a);
    scale_into(&mut scratch.pks, ld_ps, ph.pk, nh, a);
    let sparse0 = scratch.cols0.build(ph.v0, rows, nv);
    let sparsek = scratch.colsk.build(ph.vk, rows, nv);
    let s = &*scratch;
    let pos = Phase {
        v: ph.v0,
        ps: &s.p0s,
        ld_ps,
        cols: sparse0.then_some(&s.cols0),
    };
    let neg = Phase {
        v: ph.vk,
        ps: &s.pks,
        ld_ps,
        cols: sparsek.then_some(&s.colsk),
    };
    let ld_t = model.wt_stride();
    model.update_through_t(|wt, vb, hb| match velocity {
        None => {
            weight_phase(wt, ld_t, nh, &pos, Accumulate::Add);
            weight_phase(wt, ld_t, nh, &neg, Accumulate::Sub);
            bias_step(vb, ph.v0, ph.vk, a, |x, d| *x += d);
            bias_step(hb, ph.p0, ph.pk, a, |x, d| *x += d);
        }
        Some(vel) => {
            let (mu, wd, lr) = (cfg.momentum, cfg.weight_decay, cfg.lr);
            // buf ← μ·buf − (pos − neg)/B + λ·W, then W ← W − lr·buf.
            scale_in_place(&mut vel.wt, mu);
            weight_phase(&mut vel.wt, nh, nh, &pos, Accumulate::Sub);
            weight_phase(&mut vel.wt, nh, nh, &neg, Accumulate::Add);
            for (b, x) in vel.wt.chunks_mut(nh).zip(wt.chunks_mut(ld_t)) {
                for (b, x) in b.iter_mut().zip(x.iter_mut()) {
                    *b += wd * *x;
                    *x -= lr * *b;
                }
            }
            for (buf, theta, pos, neg) in [
                (&mut vel.v_bias, vb, ph.v0, ph.vk),
                (&mut vel.h_bias, hb, ph.p0, ph.pk),
            ] {
                bias_step(buf, pos, neg, -inv_b, |b, d| *b = mu * *b + d);
                theta
                    .iter_mut()
                    .zip(buf.iter())
                    .for_each(|(x, b)| *x -= lr * b);
            }
        }
    });
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

/// `C (+=, −=) vᵀ · ps` for `C` = `V × H` row-major at row stride `ld_c`, in blocks of visible
/// units (columns past `H` are left alone).
fn weight_phase(c: &mut [f32], ld_c: usize, nh: usize, ph: &Phase<'_>, mode: Accumulate) {
    let nv = c.len() / ld_c;
    let rows = ph.v.len() / nv;
    let par = rows.saturating_mul(nv).saturating_mul(nh) >= PARALLEL_MIN_WORK && nv > VISIBLE_BLOCK;
    let vb = if ph.cols.is_some() {
        crate::pass::block_rows(nv, par)
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
        x.iter_mut().for_each(|v| *v *= a);
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
        return Err(crate::Error::Shape(format!(
            "cd_gradient: v0 has {} and vk {} values; both need the same whole number of {nv}-unit rows",
            v0.len(),
            vk.len()
        )));
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
