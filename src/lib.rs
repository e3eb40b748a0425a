//! Restricted Boltzmann Machines on hand-optimized CPU kernels.
#![deny(missing_docs)]

pub mod data;
pub mod error;
pub mod model;
pub mod model_file;
mod pass;
pub mod rng;

pub use error::{DatasetError, Error, IdxError, ModelFileError, Result};
pub use model::Rbm;
pub use model_file::{ModelFile, load_model, save_model};
pub use rbm_kernels::StreamKey;
