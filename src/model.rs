//! The Bernoulli–Bernoulli RBM: parameters in flat buffers, conditionals, free energy.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use rbm_kernels::{AlignedVec, StreamKey, binary, gather_stride, scalar};

use crate::compute::params::Params;
use crate::compute::pass::{self, Conditional, PassBuffers, RowIndex};
use crate::error::{Error, Result};

/// A Bernoulli–Bernoulli Restricted Boltzmann Machine with `V` visible and `H` hidden units.
///
/// Parameters are f32 in flat buffers, in the reference notebook's PyTorch orientation:
/// - `W`: `H × V`, row-major (row `j` holds the weights of hidden unit `j`);
/// - `v_bias` (`b`): `V`; `h_bias` (`c`): `H`.
///
/// Energy `E(v, h) = −bᵀv − cᵀh − hᵀWv`; `p(h_j = 1 | v) = σ(c_j + W_j·v)`,
/// `p(v_i = 1 | h) = σ(b_i + W_{:,i}·h)`.
///
/// Batch methods take `B` rows as one flat row-major buffer (`B × V` for visible, `B × H` for
/// hidden values) and return [`Error::Shape`] when a buffer length is not a multiple of the
/// layer size or the buffers disagree.
#[derive(Clone, Debug)]
pub struct Rbm {
    n_visible: usize,
    n_hidden: usize,
    /// Cache-line aligned, so that the binary `h → v` product's loads of its rows do not
    /// straddle cache lines (when `V` is a multiple of 16, as for 784).
    w: AlignedVec,
    v_bias: Vec<f32>,
    h_bias: Vec<f32>,
    /// `Wᵀ` (`V × H` row-major at row stride [`Rbm::wt_stride`], cache-line aligned, the
    /// padding zero), made on first use and dropped whenever `W` is handed out mutably: the
    /// layout that the binary `v → h` product and the gradient gather rows of.
    wt: OnceLock<AlignedVec>,
    /// Names the current parameters: taken afresh from [`next_generation`] whenever they may
    /// change (every `&mut` access), copied by `clone` (a clone has the same parameters until
    /// one of the two changes). Chains that keep pre-activations ([`crate::gibbs::Gibbs`])
    /// compare it to know whether those were computed with these weights.
    generation: u64,
}

/// A number no model has had yet: the generation of a new or just changed model.
fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl PartialEq for Rbm {
    /// Equal layer sizes and bit-equal parameters (the cached `Wᵀ` does not count).
    fn eq(&self, other: &Self) -> bool {
        self.n_visible == other.n_visible
            && self.n_hidden == other.n_hidden
            && *self.w == *other.w
            && self.v_bias == other.v_bias
            && self.h_bias == other.h_bias
    }
}

/// The standard deviation of the initial weights (Hinton's guide and the reference notebook).
pub const INIT_WEIGHT_STD: f32 = 0.01;

impl Rbm {
    /// A model with weights drawn from N(0, 0.01²) (a pure function of `seed`) and zero
    /// biases: the reference notebook's initialization.
    ///
    /// # Errors
    /// [`Error::Config`] if a layer is empty, `V · H` overflows, or the weights (and their
    /// transpose, which every model carries) cannot be allocated.
    pub fn new(n_visible: usize, n_hidden: usize, seed: u64) -> Result<Self> {
        let mut rbm = Self::zeros(n_visible, n_hidden)?;
        let key = StreamKey::new(seed).derive(crate::rng::tags::INIT);
        crate::rng::fill_normal(key, INIT_WEIGHT_STD, rbm.weights_mut());
        rbm.wt = try_transpose(&rbm.w, n_visible, n_hidden)?;
        Ok(rbm)
    }

    /// A model with all parameters zero.
    ///
    /// # Errors
    /// [`Error::Config`] if a layer is empty, `V · H` overflows, or the weights (and their
    /// transpose, which every model carries) cannot be allocated.
    pub fn zeros(n_visible: usize, n_hidden: usize) -> Result<Self> {
        let n = check_sizes(n_visible, n_hidden)?;
        let w = AlignedVec::try_zeros(n).map_err(|_| too_large(n_visible, n_hidden))?;
        let wt = try_transpose(&w, n_visible, n_hidden)?;
        Ok(Rbm {
            n_visible,
            n_hidden,
            w,
            v_bias: try_zeros_vec(n_visible, n_hidden, n_visible)?,
            h_bias: try_zeros_vec(n_visible, n_hidden, n_hidden)?,
            wt,
            generation: next_generation(),
        })
    }

    /// A model from its parameters: `w` is `H × V` row-major, `v_bias` is `V`, `h_bias` is `H`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the lengths disagree with `n_visible`, `n_hidden`;
    /// [`Error::Config`] if a layer is empty or a parameter is not finite.
    pub fn from_parts(
        n_visible: usize,
        n_hidden: usize,
        w: Vec<f32>,
        v_bias: Vec<f32>,
        h_bias: Vec<f32>,
    ) -> Result<Self> {
        let n = check_sizes(n_visible, n_hidden)?;
        if w.len() != n || v_bias.len() != n_visible || h_bias.len() != n_hidden {
            return Err(Error::shape(
                "parameters (W, v_bias, h_bias)",
                format!("{n}, {n_visible}, {n_hidden} values (a {n_visible}–{n_hidden} RBM)"),
                format!("{}, {}, {}", w.len(), v_bias.len(), h_bias.len()),
            ));
        }
        let mut aligned = AlignedVec::try_zeros(n).map_err(|_| too_large(n_visible, n_hidden))?;
        aligned.copy_from_slice(&w);
        drop(w);
        let wt = try_transpose(&aligned, n_visible, n_hidden)?;
        let rbm = Rbm {
            n_visible,
            n_hidden,
            w: aligned,
            v_bias,
            h_bias,
            wt,
            generation: next_generation(),
        };
        if let Some(what) = rbm.first_non_finite() {
            return Err(Error::config(what, "finite values", "NaN or an infinity"));
        }
        Ok(rbm)
    }

    /// Sets the visible biases to `log(p / (1 − p))` of the data's pixel marginals `p`
    /// (length `V`, values in `[0, 1]`), clipped to `[ε, 1 − ε]` with `ε = 1e-3` so that
    /// always-off pixels get a large negative but finite bias (Hinton's guide, §8).
    ///
    /// # Errors
    /// [`Error::Shape`] if `p` does not have `V` values; [`Error::Config`] if one is outside
    /// `[0, 1]` or NaN.
    pub fn init_visible_bias_from_marginals(&mut self, p: &[f64]) -> Result<()> {
        self.check_len("marginals", p.len(), self.n_visible)?;
        if let Some(i) = p.iter().position(|x| !(0.0..=1.0).contains(x)) {
            return Err(Error::config(
                format!("pixel marginal {i}"),
                "a value in [0, 1]",
                p[i],
            ));
        }
        const EPS: f64 = 1e-3;
        for (b, &pi) in self.v_bias_mut().iter_mut().zip(p) {
            let q = pi.clamp(EPS, 1.0 - EPS);
            *b = (q / (1.0 - q)).ln() as f32;
        }
        Ok(())
    }

    /// Visible units `V`.
    pub fn n_visible(&self) -> usize {
        self.n_visible
    }

    /// Hidden units `H`.
    pub fn n_hidden(&self) -> usize {
        self.n_hidden
    }

    /// `W`, `H × V` row-major.
    pub fn weights(&self) -> &[f32] {
        &self.w
    }

    /// `W`, `H × V` row-major, mutable.
    pub fn weights_mut(&mut self) -> &mut [f32] {
        self.wt = OnceLock::new();
        self.generation = next_generation();
        &mut self.w
    }

    /// Visible biases `b`, length `V`.
    pub fn v_bias(&self) -> &[f32] {
        &self.v_bias
    }

    /// Visible biases, mutable.
    pub fn v_bias_mut(&mut self) -> &mut [f32] {
        self.generation = next_generation();
        &mut self.v_bias
    }

    /// Hidden biases `c`, length `H`.
    pub fn h_bias(&self) -> &[f32] {
        &self.h_bias
    }

    /// Hidden biases, mutable.
    pub fn h_bias_mut(&mut self) -> &mut [f32] {
        self.generation = next_generation();
        &mut self.h_bias
    }

    /// All three parameter buffers mutably at once: `(W, v_bias, h_bias)`.
    pub fn params_mut(&mut self) -> (&mut [f32], &mut [f32], &mut [f32]) {
        self.wt = OnceLock::new();
        self.generation = next_generation();
        (&mut self.w, &mut self.v_bias, &mut self.h_bias)
    }

    /// `Wᵀ`, `V × H` row-major at row stride [`Rbm::wt_stride`] (transposed on first use
    /// after a change of `W`; the padding columns are zero).
    pub(crate) fn weights_t(&self) -> &[f32] {
        self.wt.get_or_init(|| {
            let (nv, nh, ld) = (self.n_visible, self.n_hidden, self.wt_stride());
            let mut wt = AlignedVec::zeros(nv * ld);
            binary::transpose(&self.w, nv, nh, nv, &mut wt, ld);
            wt
        })
    }

    /// The row stride of [`Rbm::weights_t`]: `H` rounded up to a gather-friendly stride.
    pub(crate) fn wt_stride(&self) -> usize {
        gather_stride(self.n_hidden)
    }

    /// Updates the parameters through `Wᵀ`: `f(Wᵀ, v_bias, h_bias)` changes them in place
    /// (`Wᵀ` is `V × H` row-major at row stride [`Rbm::wt_stride`]; `f` must leave the padding
    /// zero), then `W` is rewritten from `Wᵀ`, in parallel blocks of hidden units. Returns
    /// whether every weight is within the safe range `±`[`MAX_PARAMETER`] afterwards (checked
    /// block by block while it is in cache).
    pub(crate) fn update_through_t(
        &mut self,
        f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]),
    ) -> bool {
        self.weights_t();
        self.generation = next_generation();
        let wt = self.wt.get_mut().expect("initialized just above");
        f(wt, &mut self.v_bias, &mut self.h_bias);
        let (nv, ld) = (self.n_visible, gather_stride(self.n_hidden));
        // One block of hidden units per thread, as the passes and the gradient split them.
        let block = pass::column_share(self.n_hidden, rayon::current_num_threads());
        let wt = &**wt;
        self.w
            .par_chunks_mut(block * nv)
            .enumerate()
            .map(|(b, w_block)| {
                let j0 = b * block;
                binary::transpose(&wt[j0..], ld, nv, w_block.len() / nv, w_block, nv);
                all_in_safe_range(w_block)
            })
            .reduce(|| true, |a, b| a && b)
    }

    /// A number that names the current parameters: equal for two models only if one is an
    /// unchanged clone of the other (or they are the same model), different after any change
    /// through a `&mut` accessor or a training step. State computed from the weights (the
    /// pre-activations of [`crate::gibbs::Gibbs`] chains) records it to know when to
    /// recompute.
    ///
    /// ```
    /// let mut model = rbm::Rbm::new(4, 3, 1).unwrap();
    /// let before = model.generation();
    /// assert_eq!(model.clone().generation(), before);
    /// model.weights_mut()[0] = 0.5;
    /// assert_ne!(model.generation(), before);
    /// ```
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The name of the first parameter buffer holding NaN or an infinity, if any.
    pub fn first_non_finite(&self) -> Option<&'static str> {
        [
            ("W", &*self.w),
            ("v_bias", &self.v_bias[..]),
            ("h_bias", &self.h_bias[..]),
        ]
        .into_iter()
        .find(|(_, buf)| !all_finite(buf))
        .map(|(name, _)| name)
    }

    /// `p(h = 1 | v)` for a batch: `v` is `B × V`, `out` is `B × H`.
    ///
    /// # Errors
    /// [`Error::Shape`] on inconsistent lengths.
    pub fn hidden_probs(&self, v: &[f32], out: &mut [f32]) -> Result<()> {
        self.batch_conditional(Conditional::Hidden, v, out, None)
    }

    /// `p(v = 1 | h)` for a batch: `h` is `B × H`, `out` is `B × V`.
    ///
    /// # Errors
    /// [`Error::Shape`] on inconsistent lengths.
    pub fn visible_probs(&self, h: &[f32], out: &mut [f32]) -> Result<()> {
        self.batch_conditional(Conditional::Visible, h, out, None)
    }

    /// Samples `h ~ p(h | v)` for a batch: `v` is `B × V`; `prob` and `state` are `B × H`.
    /// Row `r` draws from the stream `key.derive(r)`.
    ///
    /// # Errors
    /// [`Error::Shape`] on inconsistent lengths.
    pub fn sample_hidden(
        &self,
        v: &[f32],
        key: StreamKey,
        prob: &mut [f32],
        state: &mut [f32],
    ) -> Result<()> {
        self.batch_conditional(Conditional::Hidden, v, prob, Some((state, key)))
    }

    /// Samples `v ~ p(v | h)` for a batch: `h` is `B × H`; `prob` and `state` are `B × V`.
    /// Row `r` draws from the stream `key.derive(r)`.
    ///
    /// # Errors
    /// [`Error::Shape`] on inconsistent lengths.
    pub fn sample_visible(
        &self,
        h: &[f32],
        key: StreamKey,
        prob: &mut [f32],
        state: &mut [f32],
    ) -> Result<()> {
        self.batch_conditional(Conditional::Visible, h, prob, Some((state, key)))
    }

    /// One checked conditional pass over a batch, with its own scratch buffers.
    fn batch_conditional(
        &self,
        dir: Conditional,
        input: &[f32],
        prob: &mut [f32],
        sample: Option<(&mut [f32], StreamKey)>,
    ) -> Result<()> {
        let rows = self.batch_rows(input.len(), prob.len(), dir)?;
        if let Some((state, _)) = &sample {
            self.check_len("states", state.len(), prob.len())?;
        }
        let mut pre = vec![0.0; prob.len()];
        let bufs = PassBuffers {
            pre: &mut pre,
            prob,
            index: &mut RowIndex::default(),
        };
        pass::conditional(self, dir, input, rows, bufs, sample);
        Ok(())
    }

    /// The free energy `F(v) = −bᵀv − Σ_j softplus(c_j + W_j·v)` of each row of `v`
    /// (`B × V`, any real values), written to `out` (`B`), in nats.
    ///
    /// # Errors
    /// [`Error::Shape`] on inconsistent lengths.
    pub fn free_energy(&self, v: &[f32], out: &mut [f64]) -> Result<()> {
        let rows = self.batch_rows(v.len(), out.len() * self.n_hidden, Conditional::Hidden)?;
        let mut pre = vec![0.0; rows * self.n_hidden];
        pass::preactivation(
            self,
            Conditional::Hidden,
            v,
            rows,
            &mut pre,
            &mut RowIndex::default(),
        );
        for (r, f) in out.iter_mut().enumerate() {
            *f = self.free_energy_from_pre(
                &v[r * self.n_visible..][..self.n_visible],
                &pre[r * self.n_hidden..][..self.n_hidden],
            );
        }
        Ok(())
    }

    /// `F(v)` for one row given its hidden pre-activation `W·v` (without the bias).
    pub(crate) fn free_energy_from_pre(&self, v: &[f32], pre_h: &[f32]) -> f64 {
        -scalar::dot(&self.v_bias, v) - rbm_kernels::softplus_sum_affine(pre_h, 1.0, &self.h_bias)
    }

    /// Checks that `input_len` and `output_len` hold the same number of rows of the layers
    /// that `dir` maps between, and returns that number.
    fn batch_rows(&self, input_len: usize, output_len: usize, dir: Conditional) -> Result<usize> {
        let (n_in, n_out) = dir.sizes(self);
        let rows = input_len / n_in;
        if !input_len.is_multiple_of(n_in) || output_len != rows * n_out {
            let what = match dir {
                Conditional::Hidden => "hidden probabilities",
                Conditional::Visible => "visible probabilities",
            };
            return Err(if input_len.is_multiple_of(n_in) {
                Error::shape(
                    what,
                    format!("{} values ({rows} rows of {n_out})", rows * n_out),
                    output_len,
                )
            } else {
                Error::shape(
                    "input rows",
                    format!("a multiple of {n_in} values"),
                    input_len,
                )
            });
        }
        Ok(rows)
    }

    fn check_len(&self, what: &str, got: usize, want: usize) -> Result<()> {
        if got == want {
            Ok(())
        } else {
            Err(Error::shape(what, format!("{want} values"), got))
        }
    }
}

impl Params for Rbm {
    fn n_visible(&self) -> usize {
        self.n_visible
    }

    fn n_hidden(&self) -> usize {
        self.n_hidden
    }

    fn weights(&self) -> &[f32] {
        &self.w
    }

    fn weights_t(&self) -> &[f32] {
        Rbm::weights_t(self)
    }

    fn wt_stride(&self) -> usize {
        Rbm::wt_stride(self)
    }

    fn v_bias(&self) -> &[f32] {
        &self.v_bias
    }

    fn h_bias(&self) -> &[f32] {
        &self.h_bias
    }
}

fn check_sizes(n_visible: usize, n_hidden: usize) -> Result<usize> {
    if n_visible == 0 || n_hidden == 0 {
        return Err(Error::config(
            "layer sizes",
            "at least one visible and one hidden unit",
            format!("{n_visible}–{n_hidden}"),
        ));
    }
    n_visible
        .checked_mul(n_hidden)
        .filter(|&n| n <= isize::MAX as usize / 4)
        .ok_or_else(|| too_large(n_visible, n_hidden))
}

/// The error of a model whose weights do not fit in memory.
/// `Wᵀ` of a new model, allocated fallibly: every model is born with its transpose, so that
/// a model too large for memory is an error where it is made, not an abort at its first use
/// (the transpose is rebuilt, infallibly, only after a change of `W` through `&mut`, when
/// the old one has just been freed).
fn try_transpose(w: &[f32], n_visible: usize, n_hidden: usize) -> Result<OnceLock<AlignedVec>> {
    let ld = gather_stride(n_hidden);
    let mut wt = n_visible
        .checked_mul(ld)
        .and_then(|len| AlignedVec::try_zeros(len).ok())
        .ok_or_else(|| too_large(n_visible, n_hidden))?;
    binary::transpose(w, n_visible, n_hidden, n_visible, &mut wt, ld);
    let cell = OnceLock::new();
    let _ = cell.set(wt);
    Ok(cell)
}

/// `len` zeros, allocated fallibly (an error naming the layer sizes).
fn try_zeros_vec(n_visible: usize, n_hidden: usize, len: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| too_large(n_visible, n_hidden))?;
    v.resize(len, 0.0);
    Ok(v)
}

fn too_large(n_visible: usize, n_hidden: usize) -> Error {
    Error::config(
        "layer sizes",
        "a weight matrix that fits in memory",
        format!("{n_visible} × {n_hidden} weights"),
    )
}

/// The safe range of a trained model's parameters: training stops with [`Error::Diverged`]
/// when a weight or bias leaves `[−MAX_PARAMETER, MAX_PARAMETER]`. No useful RBM comes near it
/// (`σ(±100)` is already 0 or 1 in f32; trained MNIST models stay within ±20), while sums over
/// thousands of units of values in it stay far from f32's overflow: a run past it has
/// diverged, finite or not.
pub const MAX_PARAMETER: f32 = 1e4;

/// Whether every value of `x` is within `±MAX_PARAMETER` (NaN and infinities are not): for
/// non-negative floats the order of the bits is the order of the values, so an integer
/// maximum over the magnitudes' bits decides (and vectorizes).
pub(crate) fn all_in_safe_range(x: &[f32]) -> bool {
    x.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff)) <= MAX_PARAMETER.to_bits()
}

/// Whether no value of `x` is NaN or infinite: those are the values whose exponent bits are
/// all ones, so an integer maximum over the magnitudes' bits decides (and vectorizes).
pub(crate) fn all_finite(x: &[f32]) -> bool {
    x.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff)) < 0x7f80_0000
}
