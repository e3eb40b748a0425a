#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod atomic;
mod awake;
pub mod checkpoint;
pub mod data;
mod delta;
pub mod error;
pub mod eval;
pub mod experiments;
pub mod gates;
pub mod gibbs;
mod incremental;
pub mod model;
pub mod model_file;
mod pass;
pub mod rng;
#[cfg(test)]
mod test_rows;
pub mod train;

pub use error::{DatasetError, Error, IdxError, ModelFileError, Result};
pub use model::Rbm;
pub use model_file::{ModelFile, load_model, save_model};
pub use rbm_kernels::StreamKey;
