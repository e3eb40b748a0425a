//! Restricted Boltzmann Machines on hand-written CPU kernels.
//!
//! An RBM with `V` visible units `v ∈ {0,1}^V` and `H` hidden units `h ∈ {0,1}^H` has the energy
//! `E(v, h) = −bᵀv − cᵀh − hᵀWv`; this crate trains it by contrastive divergence (CD-k,
//! persistent CD, fast weights, parallel tempering, centering), samples it by block Gibbs
//! sampling, and measures it in nats (exact `log Z`, AIS, RAISE, pseudo-likelihood). Every hot
//! loop is a hand-written kernel of the `rbm-kernels` crate (AVX-512, AVX2 or scalar, chosen at
//! run time, bit-identical results).
//!
//! # Quick start
//!
//! [`Estimator`] speaks scikit-learn's vocabulary: `fit`, `partial_fit`, `transform`,
//! `reconstruct`, `sample`, `inpaint`, `score_samples`, `log_likelihood`, `save`, `load`.
//!
//! ```
//! use rbm::prelude::*;
//!
//! let data: Vec<f32> = rbm::datasets::bars_and_stripes(3); // 14 rows of 9 pixels, 0/1
//! let rows = Rows::new(&data, 9)?; // checked: a NaN or a value outside [0, 1] is an error
//! let mut model = Estimator::new(Config::default().hidden(16).epochs(500).batch_size(7).learning_rate(0.5).seed(1));
//! model.fit(&rows)?;
//! let features = model.transform(&rows)?; // p(h = 1 | v): 14 × 16
//! let chains = model.sample(8, 1000)?; // 8 chains from noise, 1000 Gibbs steps
//! let ll = model.log_likelihood(&rows, LogLikelihood::Exact)?; // nats per row
//! model.save(std::env::temp_dir().join("bars.safetensors"))?;
//! # assert_eq!(features.len(), 14 * 16);
//! # assert_eq!(chains.visible().len(), 8 * 9);
//! # assert!(ll.estimate < 0.0);
//! # Ok::<(), rbm::Error>(())
//! ```
//!
//! # Your data
//!
//! Anything that takes data takes a [`RowSource`](data::RowSource):
//! - [`Rows`](data::Rows): row-major rows in memory, `&[f32]` in `[0, 1]` (binary or grey) or
//!   `&[u8]` grey levels scaled by 1/255, no labels, no files, borrowed;
//! - [`Dataset`](data::Dataset): an MNIST-style pair of IDX files, read into memory (or
//!   inflated from `.gz`; memory-mapped with `Dataset::open_mapped`) and used in place.
//!
//! Training turns values into 0/1 states as [`Config::binarize`] says (a fresh Bernoulli draw
//! per value by default, as the reference notebook does). An epoch's last, shorter batch is
//! trained on too unless [`Config::drop_last`]. Values outside `[0, 1]` or NaN are an
//! [`Error::Value`] naming the row and the column, before any step.
//!
//! # Threads
//!
//! The crate runs its parallel loops on [rayon](https://docs.rs/rayon)'s global pool: as many
//! threads as cores, or `RAYON_NUM_THREADS`. To choose per call, run it inside a pool of your
//! own: `rayon::ThreadPoolBuilder::new().num_threads(2).build()?.install(|| model.fit(&rows))`.
//! A training step forks from a worker of the pool it runs on, with the other workers polling
//! for its work for its whole length: give training a pool of its own rather than one shared
//! with long unrelated jobs.
//!
//! # Determinism
//!
//! The same seed gives the same model and the same samples, bit for bit, whatever the number
//! of threads and whatever instruction set the kernels run on: every random draw is a function
//! of `(seed, purpose, step, row, unit)` through a counter-based [`StreamKey`], and no sum
//! depends on how the work is split. One seed ([`Config::seed`]) derives the initial weights,
//! the training draws and the sampling streams. The exception: products of rows that are not
//! sparse 0/1 states (over 60% ones, or grey values with [`Binarize::None`](data::Binarize))
//! go through `matrixmultiply`'s GEMM, whose kernel depends on the CPU, so they can round
//! differently on CPUs of different features (on one machine they are deterministic too).
//!
//! # The low-level API
//!
//! Under the estimator: [`Rbm`] (parameters in flat buffers, conditionals, free energy),
//! [`train::Trainer`] (one CD-k or PCD-k step on a batch, allocation-free after the first),
//! [`gibbs::Gibbs`] (chains, clamping), [`eval`] (exact `log Z`, AIS, RAISE, pseudo-likelihood,
//! reconstruction error), [`data`] (IDX files, batches), [`model_file`] and [`checkpoint`]
//! (safetensors files). Their random draws take a [`StreamKey`] and derive one key per step
//! and per row, so that any split of the work draws the same numbers:
//!
//! ```
//! use rbm::{Rbm, StreamKey};
//! let model = Rbm::new(6, 4, /* seed */ 1)?;
//! let key = StreamKey::new(42); // one key for the run…
//! let batch = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0];
//! let (mut prob, mut h) = (vec![0.0; 4], vec![0.0; 4]);
//! for step in 0..3 {
//!     // …one derived key per step; row r of the batch draws from key.derive(step).derive(r).
//!     model.sample_hidden(&batch, key.derive(step), &mut prob, &mut h)?;
//! }
//! # Ok::<(), rbm::Error>(())
//! ```
//!
//! # Features
//!
//! `cli` (default): the `rbm` command-line tool (with `figures` and `linalg`). `figures`: PNG
//! files and SVG plots ([`figures::png`], [`figures::plots`]) without the command line's
//! dependencies. `linalg`: the SVD of the logic-gate analysis (nalgebra). With
//! `default-features = false` the library depends on none of them.
//!
//! # Layers
//!
//! From the bottom: the `rbm-kernels` crate (SIMD kernels, the counter-based generator);
//! `compute` (private: passes over a view of the parameters, moved pre-activations, the pool);
//! [`model`] ([`Rbm`]) and [`gibbs`]; [`data`] (IDX files, rows in memory, batches); [`train`]
//! and [`eval`]; [`io`] (model files, checkpoints, atomic writes); [`estimator`] on top.
//! [`figures`] and [`experiments`] (the notebook's) serve the command line. No file imports
//! one that imports it back (`python3 ../shared/tools/modcycles.py src kernels/src` in CI).
#![deny(missing_docs)]

mod compute;
pub mod data;
pub mod datasets;
pub mod error;
pub mod estimator;
pub mod eval;
pub mod experiments;
pub mod figures;
pub mod gibbs;
pub mod io;
pub mod model;
pub mod rng;
#[cfg(test)]
mod test_rows;
pub mod train;

pub use io::{atomic, checkpoint, model_file};

pub use error::{
    ConfigError, DatasetError, Error, IdxError, ModelFileError, MsaError, Result, ShapeError,
};
pub use estimator::{Config, Estimator, Likelihood, LogLikelihood, Method};
pub use model::Rbm;
pub use model_file::{ModelFile, load_model, save_model};
pub use rbm_kernels::StreamKey;

/// The high-level API in one import: `use rbm::prelude::*;`.
pub mod prelude {
    pub use crate::data::{Binarize, Dataset, Order, RowSource, Rows};
    pub use crate::estimator::{Config, Estimator, Likelihood, LogLikelihood, Method};
    pub use crate::{Error, Rbm, Result, StreamKey};
}
