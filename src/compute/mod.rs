//! The compute layer, below the model: passes over a view of the parameters
//! ([`params::Params`]), pre-activations moved by flips, and keeping the pool awake.
//!
//! - [`pass`]: one conditional pass `x → σ(xM + bias)` (and its sample) over a batch: a binary
//!   gather-add when the input is sparse 0/1, else a GEMM; split by rows or by output columns.
//! - [`delta`]: a training chain's passes moved by the flips since its previous state.
//! - [`incremental`]: Gibbs chains' and AIS's pre-activations kept current by their flips.
//! - [`awake`]: a step's parallel passes with the pool's other workers polling for them.

pub(crate) mod awake;
pub(crate) mod delta;
pub(crate) mod incremental;
pub(crate) mod params;
pub(crate) mod pass;
