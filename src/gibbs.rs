//! Block Gibbs sampling: chains that alternate `h ~ p(h | v)` and `v ~ p(v | h)`, with an
//! optional clamp mask for conditional sampling.

use rayon::prelude::*;
use rbm_kernels::{StreamKey, sigmoid_affine_sample};

use crate::compute::incremental::Incremental;
use crate::compute::pass::Conditional;
use crate::error::{Error, Result};
use crate::model::Rbm;

/// A batch of Gibbs chains of one model.
///
/// Holds `B` chains: visible states and probabilities (`B × V`), hidden states and
/// probabilities (`B × H`). One [`step`](Gibbs::step) samples `h ~ p(h | v)` and then
/// `v ~ p(v | h)`; step `t` draws from `key.derive(2t)` (hidden) and `key.derive(2t + 1)`
/// (visible), each row `r` from that key's `.derive(r)`, so results do not depend on threads.
///
/// Each chain keeps its pre-activations current by its flips (`src/compute/incremental.rs`): a
/// chain that has mixed changes few units per step, and a step costs in proportion to the
/// changes. [`run`](Gibbs::run) advances the chains in parallel, each for all its steps.
///
/// The chains may be run with any model of their layer sizes — the one they were made with,
/// or the same model after training steps changed it: each call compares the model's
/// [`generation`](Rbm::generation) with the one the pre-activations were computed with, and
/// recomputes them in full when it differs (a model of other sizes is an [`Error::Shape`]).
/// So the chains always sample from the model passed to the call.
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
/// chains.run(&model, 10).unwrap();
/// assert_eq!(&chains.visible()[..2], &[1.0, 0.0]); // clamped units kept
/// ```
#[derive(Clone, Debug)]
pub struct Gibbs {
    rows: usize,
    v: Vec<f32>,
    v_prob: Vec<f32>,
    h: Vec<f32>,
    h_prob: Vec<f32>,
    tracks: Vec<Track>,
    clamp: Option<Clamp>,
    key: StreamKey,
    steps: u64,
    /// The layer sizes `(V, H)` and the [`Rbm::generation`] of the weights the tracks'
    /// pre-activations were computed with.
    sizes: (usize, usize),
    generation: u64,
}

/// One chain's pre-activations (`W v` and `Wᵀ h`, followed by the flips) and the states
/// being sampled.
#[derive(Clone, Debug)]
struct Track {
    hidden: Incremental,
    visible: Incremental,
    next_v: Vec<f32>,
    next_h: Vec<f32>,
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
            return Err(Error::shape(
                "chain states",
                format!("a whole, non-zero number of {nv}-unit rows"),
                format!("{} values", v0.len()),
            ));
        }
        let rows = v0.len() / nv;
        let tracks = v0
            .chunks(nv)
            .map(|v| {
                let mut hidden = Incremental::new(model, Conditional::Hidden, 1);
                hidden.reset(model, v);
                Track {
                    hidden,
                    visible: Incremental::new(model, Conditional::Visible, 1),
                    next_v: vec![0.0; nv],
                    next_h: vec![0.0; nh],
                }
            })
            .collect();
        Ok(Gibbs {
            rows,
            v: v0.to_vec(),
            v_prob: v0.to_vec(),
            h: vec![0.0; rows * nh],
            h_prob: vec![0.0; rows * nh],
            tracks,
            clamp: None,
            key,
            steps: 0,
            sizes: (nv, nh),
            generation: model.generation(),
        })
    }

    /// Clamps the visible units where `mask` (length `V`) is true to their current values.
    ///
    /// # Errors
    /// [`Error::Shape`] if `mask` does not have `V` entries.
    pub fn with_clamp(mut self, mask: &[bool]) -> Result<Self> {
        let nv = self.v.len() / self.rows;
        if mask.len() != nv {
            return Err(Error::shape(
                "clamp mask",
                format!("{nv} entries"),
                mask.len(),
            ));
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
    /// # Errors
    /// [`Error::Shape`] if `model` does not have the layer sizes the chains were made for.
    pub fn step(&mut self, model: &Rbm) -> Result<()> {
        self.run(model, 1)
    }

    /// `k` Gibbs steps of `model`. The chains run in parallel, each through all `k` steps
    /// (chain `r`'s draws depend only on `r` and the step, so the result does not depend on
    /// threads). If `model` is not the one of the last call (or of [`Gibbs::new`]), or has
    /// changed since, the chains' pre-activations are first recomputed from their states.
    ///
    /// # Errors
    /// [`Error::Shape`] if `model` does not have the layer sizes the chains were made for.
    pub fn run(&mut self, model: &Rbm, k: usize) -> Result<()> {
        let (nv, nh) = (model.n_visible(), model.n_hidden());
        if (nv, nh) != self.sizes {
            return Err(Error::shape(
                "model",
                format!("a {}–{} model (the chains')", self.sizes.0, self.sizes.1),
                format!("{nv}–{nh}"),
            ));
        }
        if model.generation() != self.generation {
            self.recompute(model);
        }
        if k == 0 {
            return Ok(());
        }
        let (key, t0, clamp) = (self.key, self.steps, self.clamp.as_ref());
        let chain = |(r, ((((v, vp), h), hp), track)): (usize, ChainParts<'_>)| {
            let clamp = clamp.map(|c| c.row(r));
            for t in t0..t0 + k as u64 {
                let keys = (
                    key.derive(2 * t).derive(r as u64),
                    key.derive(2 * t + 1).derive(r as u64),
                );
                track.step(model, (v, vp, h, hp), clamp, keys);
            }
        };
        if on_calling_thread() {
            let parts = self
                .v
                .chunks_mut(nv)
                .zip(self.v_prob.chunks_mut(nv))
                .zip(self.h.chunks_mut(nh))
                .zip(self.h_prob.chunks_mut(nh))
                .zip(self.tracks.iter_mut());
            parts.enumerate().for_each(chain);
        } else {
            let parts = self
                .v
                .par_chunks_mut(nv)
                .zip(self.v_prob.par_chunks_mut(nv))
                .zip(self.h.par_chunks_mut(nh))
                .zip(self.h_prob.par_chunks_mut(nh))
                .zip(self.tracks.par_iter_mut());
            // One chain per task: a task is `k` whole steps of a chain.
            parts.enumerate().with_max_len(1).for_each(chain);
        }
        self.steps += k as u64;
        Ok(())
    }

    /// Recomputes every chain's pre-activations (`W v`, `Wᵀ h`) with `model`'s weights.
    fn recompute(&mut self, model: &Rbm) {
        let (nv, nh) = self.sizes;
        let rows = self.v.chunks(nv).zip(self.h.chunks(nh));
        for (track, (v, h)) in self.tracks.iter_mut().zip(rows) {
            track.hidden.reset(model, v);
            track.visible.reset(model, h);
        }
        self.generation = model.generation();
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

/// Whether the chains run on the calling thread rather than on the pool: when the pool has
/// one thread, a caller outside it would otherwise hand them to that thread and wait (8 chains
/// of the notebook's model, one step per call from `main`, one thread: 43–49k chain-steps/s handed
/// over, 82–89k on the calling thread). With more threads the parallel steps win even for a few
/// chains, hand-over included.
fn on_calling_thread() -> bool {
    rayon::current_num_threads() == 1
}

/// One chain's slices of the state buffers: `(((v, v_prob), h), h_prob)` and its track.
type ChainParts<'a> = (
    (
        ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]),
        &'a mut [f32],
    ),
    &'a mut Track,
);

impl Clamp {
    /// Chain `r`'s clamped units and their values.
    fn row(&self, r: usize) -> (&[usize], &[f32]) {
        let n = self.units.len();
        (&self.units, &self.values[r * n..(r + 1) * n])
    }
}

impl Track {
    /// One step of one chain: `h ~ σ(c + Wᵀ…)` from the tracked `W v`, then `Wᵀh` by the
    /// hidden flips, `v ~ p(v | h)` (clamped units restored), and `W v` by the visible flips.
    fn step(
        &mut self,
        model: &Rbm,
        (v, vp, h, hp): (&mut [f32], &mut [f32], &mut [f32], &mut [f32]),
        clamp: Option<(&[usize], &[f32])>,
        (kh, kv): (StreamKey, StreamKey),
    ) {
        let pre_h = self.hidden.pre();
        sigmoid_affine_sample(pre_h, 1.0, model.h_bias(), kh, 0, hp, &mut self.next_h);
        self.visible.update(model, h, &self.next_h);
        h.copy_from_slice(&self.next_h);
        let pre_v = self.visible.pre();
        sigmoid_affine_sample(pre_v, 1.0, model.v_bias(), kv, 0, vp, &mut self.next_v);
        if let Some((units, values)) = clamp {
            for (&i, &x) in units.iter().zip(values) {
                self.next_v[i] = x;
                vp[i] = x;
            }
        }
        self.hidden.update(model, v, &self.next_v);
        v.copy_from_slice(&self.next_v);
    }
}
