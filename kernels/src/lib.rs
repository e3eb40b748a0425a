//! Kernels for Restricted Boltzmann Machines.
//!
//! # Layout
//! Matrices are flat `f32` slices, row-major unless a [`gemm::Mat`] view says otherwise
//! (`rs`/`cs` are the row and column strides in elements). A batch of `B` rows of `n` units
//! is a `B × n` row-major buffer.
//!
//! # What is here
//! - [`rng`]: a counter-based random stream ([`rng::StreamKey`]): each draw is a function of
//!   (key, index), so results do not depend on threads or on how work is split.
//! - [`scalar`]: the reference implementation of every kernel — sigmoid, softplus, Bernoulli
//!   sampling, and the bias + sigmoid + sample epilogue that follows each GEMM of a Gibbs
//!   step. They define what faster versions must compute.
//! - [`gemm`]: safe strided views and `C ← αAB + βC` through `matrixmultiply`.
//!
//! # Threads
//! Nothing here spawns threads; every function is safe to call from many threads at once on
//! disjoint outputs.
//!
//! # MSRV
//! Rust 1.89.
#![deny(missing_docs)]

pub mod binary;
pub mod dispatch;
pub mod gemm;
pub mod rng;
pub mod scalar;

pub use dispatch::Isa;
pub use gemm::{Mat, MatMut, gemm};
pub use rng::StreamKey;
