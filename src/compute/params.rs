//! What the passes read of a model: its sizes and parameter buffers, as a trait, so that the
//! compute layer ([`crate::compute::pass`], `delta`, `incremental`) sits below the model
//! ([`crate::model::Rbm`] implements it) instead of importing it.

/// A read-only view of an RBM's parameters in the layouts the passes use.
pub(crate) trait Params: Sync {
    /// Visible units `V`.
    fn n_visible(&self) -> usize;
    /// Hidden units `H`.
    fn n_hidden(&self) -> usize;
    /// `W`, `H × V` row-major.
    fn weights(&self) -> &[f32];
    /// `Wᵀ`, `V × H` row-major at row stride [`Params::wt_stride`] (the padding zero).
    fn weights_t(&self) -> &[f32];
    /// The row stride of [`Params::weights_t`].
    fn wt_stride(&self) -> usize;
    /// Visible biases, length `V`.
    fn v_bias(&self) -> &[f32];
    /// Hidden biases, length `H`.
    fn h_bias(&self) -> &[f32];
}
