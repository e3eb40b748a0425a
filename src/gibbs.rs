//! Block Gibbs sampling: chains that alternate `h ~ p(h | v)` and `v ~ p(v | h)`, with an
//! optional clamp mask for conditional sampling.

use rbm_kernels::StreamKey;

use crate::error::{Error, Result};
use crate::model::Rbm;
use crate::pass::{self, Conditional, PassBuffers, RowIndex};

/// A batch of Gibbs chains of one model.
///
/// Holds `B` chains: visible states and probabilities (`B × V`), hidden states and
/// probabilities (`B × H`). One [`step`](Gibbs::step) samples `h ~ p(h | v)` and then
/// `v ~ p(v | h)`; step `t` draws from `key.derive(2t)` (hidden) and `key.derive(2t + 1)`
/// (visible), each row `r` from that key's `.derive(r)`, so results do not depend on threads.
///
/// With a clamp mask, clamped visible units keep their starting values at every step (and
/// their probabilities read 0 or 1): sampling the other units given them.
///
/// ```
/// use rbm::{Rbm, StreamKey, gibbs::Gibbs};
/// let model = Rbm::new(6, 4, 1).unwrap();
/// let start = vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]; // one chain
/// let mut chains = Gibbs::new(&model, &start, StreamKey::new(7)).unwrap()
///     .with_clamp(&[true, true, false, false, false, false]).unwrap();
/// chains.run(&model, 10);
/// assert_eq!(&chains.visible()[..2], &[1.0, 0.0]); // clamped units kept
/// ```
#[derive(Clone, Debug)]
pub struct Gibbs {
    rows: usize,
    v: Vec<f32>,
    v_prob: Vec<f32>,
    v_pre: Vec<f32>,
    h: Vec<f32>,
    h_prob: Vec<f32>,
    h_pre: Vec<f32>,
    clamp: Option<Clamp>,
    index: RowIndex,
    key: StreamKey,
    steps: u64,
}

#[derive(Clone, Debug)]
struct Clamp {
    /// Indices of the clamped visible units.
    units: Vec<usize>,
    /// Their values per chain, `B × units.len()`.
    values: Vec<f32>,
}

impl Gibbs {
    /// Chains started from visible states `v0` (`B × V`, usually 0/1: data rows or any given
    /// states), drawing from `key`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `v0` is empty or not a whole number of rows of `V` values.
    pub fn new(model: &Rbm, v0: &[f32], key: StreamKey) -> Result<Self> {
        let (nv, nh) = (model.n_visible(), model.n_hidden());
        if v0.is_empty() || !v0.len().is_multiple_of(nv) {
            return Err(Error::Shape(format!(
                "chain states: {} values is not a whole number of {nv}-unit rows",
                v0.len()
            )));
        }
        let rows = v0.len() / nv;
        Ok(Gibbs {
            rows,
            v: v0.to_vec(),
            v_prob: v0.to_vec(),
            v_pre: vec![0.0; rows * nv],
            h: vec![0.0; rows * nh],
            h_prob: vec![0.0; rows * nh],
            h_pre: vec![0.0; rows * nh],
            clamp: None,
            index: RowIndex::default(),
            key,
            steps: 0,
        })
    }

    /// Clamps the visible units where `mask` (length `V`) is true to their current values.
    ///
    /// # Errors
    /// [`Error::Shape`] if `mask` does not have `V` entries.
    pub fn with_clamp(mut self, mask: &[bool]) -> Result<Self> {
        let nv = self.v.len() / self.rows;
        if mask.len() != nv {
            return Err(Error::Shape(format!(
                "clamp mask: expected {nv} entries, got {}",
                mask.len()
            )));
        }
        let units: Vec<usize> = (0..nv).filter(|&i| mask[i]).collect();
        let values = (0..self.rows)
            .flat_map(|r| units.iter().map(move |&i| (r, i)))
            .map(|(r, i)| self.v[r * nv + i])
            .collect();
        self.clamp = Some(Clamp { units, values });
        Ok(self)
    }

    /// One Gibbs step: `h ~ p(h | v)`, then `v ~ p(v | h)` (clamped units restored).
    ///
    /// # Panics
    /// If `model` does not have the layer sizes the chains were made for.
    pub fn step(&mut self, model: &Rbm) {
        let (nv, nh) = (model.n_visible(), model.n_hidden());
        assert!(
            self.v.len() == self.rows * nv && self.h.len() == self.rows * nh,
            "Gibbs::step: chains were made for another model size"
        );
        let t = self.steps;
        let kh = self.key.derive(2 * t);
        let kv = self.key.derive(2 * t + 1);
        pass::conditional(
            model,
            Conditional::Hidden,
            &self.v,
            self.rows,
            PassBuffers {
                pre: &mut self.h_pre,
                prob: &mut self.h_prob,
                index: &mut self.index,
            },
            Some((&mut self.h, kh)),
        );
        pass::conditional(
            model,
            Conditional::Visible,
            &self.h,
            self.rows,
            PassBuffers {
                pre: &mut self.v_pre,
                prob: &mut self.v_prob,
                index: &mut self.index,
            },
            Some((&mut self.v, kv)),
        );
        if let Some(c) = &self.clamp {
            restore(c, nv, &mut self.v, &mut self.v_prob);
        }
        self.steps += 1;
    }

    /// `k` Gibbs steps.
    pub fn run(&mut self, model: &Rbm, k: usize) {
        for _ in 0..k {
            self.step(model);
        }
    }

    /// Number of chains `B`.
    pub fn chains(&self) -> usize {
        self.rows
    }

    /// Steps run so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Visible states, `B × V`.
    pub fn visible(&self) -> &[f32] {
        &self.v
    }

    /// `p(v | h)` of the last step, `B × V` (the starting states before any step).
    pub fn visible_probs(&self) -> &[f32] {
        &self.v_prob
    }

    /// Hidden states of the last step, `B × H` (zeros before any step).
    pub fn hidden(&self) -> &[f32] {
        &self.h
    }

    /// `p(h | v)` of the last step, `B × H`.
    pub fn hidden_probs(&self) -> &[f32] {
        &self.h_prob
    }
}

fn restore(c: &Clamp, nv: usize, v: &mut [f32], v_prob: &mut [f32]) {
    let n = c.units.len();
    for (r, vals) in c.values.chunks(n.max(1)).enumerate().take(v.len() / nv) {
        for (&i, &x) in c.units.iter().zip(vals) {
            v[r * nv + i] = x;
            v_prob[r * nv + i] = x;
        }
    }
}
