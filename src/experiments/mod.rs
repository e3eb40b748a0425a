//! The figures and numbers of the reference notebook's experiments, and the ones it should
//! have made.
//!
//! Pure computations are always available: image grids as byte buffers laid out as
//! torchvision's `make_grid` does ([`grid`]), a digit font to label them ([`font`]), the
//! notebook's generation from noise ([`generation`]) and the logic-gate traces
//! ([`gates_analysis`]; its SVD-against-PCA cosines need the `linalg` feature). Files need the
//! `cli` feature: PNG encoding ([`png`]) and SVG plots ([`plots`]).

pub mod font;
pub mod gates_analysis;
pub mod generation;
pub mod grid;
#[cfg(feature = "cli")]
pub mod plots;
#[cfg(feature = "cli")]
pub mod png;
