//! Restricted Boltzmann Machines on hand-optimized CPU kernels.
#![deny(missing_docs)]

pub mod data;
pub mod error;

pub use error::{DatasetError, Error, IdxError, ModelFileError, Result};
