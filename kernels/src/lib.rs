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
//! - [`binary`]: binary products — `W·v` for 0/1 `v` as a gather-add of the rows of `Wᵀ` (or
//!   `W`) where `v` is 1, for a block of rows ([`binary::gather_rows`]) or one row added to,
//!   subtracted from or written over an output ([`binary::gather_add`], which keeps Gibbs
//!   chains' pre-activations current from their flips), the index lists they gather over
//!   ([`binary::binary_indices`]), and a tiled transpose; bit-identical on every ISA.
//! - [`strided`]: [`strided::RowsMut`], a block of columns of a row-major matrix that can be
//!   split into narrower blocks for threads to write side by side
//!   ([`binary::gather_rows_into`] writes one).
//! - [`aligned`]: cache-line-aligned buffers ([`AlignedVec`]) and row strides
//!   ([`gather_stride`]) for the matrices the gathers read.
//! - [`gemm`](mod@gemm): safe strided views and `C ← αAB + βC` through `matrixmultiply`.
//! - [`api`] (re-exported here): the fast kernels, safe and slice-based, dispatched at run
//!   time — [`sigmoid_affine`], the fused Gibbs epilogue [`sigmoid_affine_sample`],
//!   [`bernoulli`], the free energy's [`softplus_sum_affine`], AIS's fused
//!   [`softplus_sum_affine_sample`] (both from one exponential per element), AIS's
//!   log-weight increments [`softplus_diff_affine`] and [`softplus_diff_affine_sample`] (a
//!   difference of two softplus sums computed as one, without a logarithm per element),
//!   [`nonzero_indices`] and the flips of a Gibbs step [`changed_indices`], and for
//!   categorical (Potts) units the per-group softmax [`softmax_groups`] and its `h → v`
//!   epilogue with one categorical draw per group [`softmax_groups_sample`] — each with a
//!   `*_with(isa, …)` twin that runs a chosen instruction set.
//! - [`kernel`]: their contract, the [`Kernel`] trait, implemented by one zero-sized token
//!   per instruction set ([`kernel::Scalar`], `kernel::Avx2Fma`, `kernel::Avx512`), and the
//!   dispatch from an [`Isa`] to its token.
//! - [`math`]: the exp/sigmoid/softplus approximations all instruction sets share, with
//!   their constants and error bounds.
//!
//! # Instruction sets and dispatch
//! [`dispatch`] picks the best of AVX-512 (F/DQ/BW/VL, 16 lanes), AVX2 + FMA (8 lanes) and
//! portable scalar code once per process ([`Isa::current`]). Every kernel — those of [`api`]
//! and the binary products of [`binary`] alike — is reached the same way:
//!
//! 1. **One dispatch.** Each public function is a line that hands a generic call to one
//!    macro of [`kernel`]. The macro maps the instruction set ([`Isa::current`] for the plain
//!    functions, the `isa` argument for the `*_with` twins) to its token ([`kernel::Scalar`],
//!    `kernel::Avx2Fma`, `kernel::Avx512`), records its use ([`dispatch::record_use`]) and
//!    instantiates the call for that token. A `*_with(isa, …)` whose `isa` this CPU lacks
//!    panics, for every kernel: tests and benchmarks loop over [`Isa::available`], and one that
//!    names an instruction set means that one, never a fallback (see [`api`]).
//! 2. **One body per kernel, one trampoline per instruction set.** The SIMD kernels are
//!    written once, generic over the lane operations of a token (the loop bodies of
//!    `src/simd.rs`, the approximations of [`math`]); the file of each instruction set
//!    (`src/portable.rs`, `src/x86/avx2.rs`, `src/x86/avx512.rs`) implements those lane
//!    operations and invokes one macro with its `#[target_feature]` string, which generates
//!    its whole [`Kernel`] implementation: length checks, then a `#[target_feature]` shim
//!    around the generic body. The binary products are methods of a crate-private trait that
//!    each token implements with its own kernels (hand-tiled for AVX2 and AVX-512, the scalar
//!    references for the portable token).
//! 3. **No import cycles.** From the bottom: `dispatch` (the [`Isa`]) and [`rng`]; [`kernel`]
//!    (contract, tokens, dispatch macro); `lanes` (the lane-operation trait); [`math`];
//!    `simd` (the bodies and the macro that instantiates them); then the files of the
//!    instruction sets (`x86/mod.rs` before `x86/avx2.rs` and `x86/avx512.rs`), [`api`] and
//!    [`binary`] (which also uses [`strided`], which imports nothing). Each file imports only
//!    files before it: the token types are declared in [`kernel`] and implemented in the files
//!    of their instruction sets, which [`kernel`] never imports.
//!
//! Because every instruction set executes the same IEEE operations in the same order (fused
//! multiply-adds included; the scalar code uses `f32::mul_add`), sigmoid and sampling are
//! **bit-identical** on every instruction set: the same seed gives the same samples on any
//! x86-64 machine, and on any other target whose f32 arithmetic is IEEE-754 with a correctly
//! rounded `mul_add` (all of Rust's 64-bit targets). Only NaN payloads may differ.
//! `softplus_sum_affine` and `softplus_diff_affine` sum in a different order per ISA and agree
//! to within their error bounds (the samples of their `_sample` forms are bit-identical like
//! the rest).
//!
//! The softmax kernels are bit-identical for the same reason, with one more rule: they are
//! vectorized *across* groups (one group of `q` states per lane, gathered with stride `q`),
//! so the sum over a group's states runs in the order `a = 0..q` on every instruction set.
//!
//! The libm-based functions of [`scalar`] are the accuracy oracle the tests compare with.
//!
//! # Performance of the softmax kernels
//! `softmax_groups_sample` on a batch of 64 rows, one call per row, q = 21, logits in
//! [−6, 6] (`benches/softmax.rs`; `cargo bench -p rbm-kernels --bench softmax -- --warm-up-time
//! 1 --measurement-time 3`), criterion's medians in million groups per second, measured
//! 2026-12-08 on this workspace's machine (Intel Xeon, Rocket Lake class, 2 cores shared with
//! other jobs), and the same for `softmax_groups` alone:
//!
//! | kernel, rows × groups × q                      | AVX-512 | AVX2 + FMA | portable | f64 oracle |
//! |------------------------------------------------|--------:|-----------:|---------:|-----------:|
//! | `softmax_groups_sample`, 64 × 31 × 21 (WW)     | 58.9 | 43.6 | 2.14 | 4.83 |
//! | `softmax_groups_sample`, 64 × 53 × 21 (Kunitz) | 57.9 | 44.4 | 2.15 | 4.31 |
//! | `softmax_groups`, 64 × 31 × 21                 | 84.2 | 56.5 | 2.29 |      |
//! | `softmax_groups`, 64 × 53 × 21                 | 77.1 | 57.8 | 2.34 |      |
//!
//! About 17 ns per group of 21 states (0.8 ns per state) with AVX-512, sampling included.
//!
//! The logits are gathered (one `vgatherdps` per state and block of groups); the
//! probabilities go back to group-major order by consecutive scalar stores from a lane-major
//! stack buffer, about 10% faster on AVX-512 than a scatter per state (14% in an earlier, noisier run) (a scalar transpose *into* the
//! buffer instead of the gathers measured 25% slower: store forwarding fails). The portable
//! instruction set computes its fused multiply-adds with libm's `fmaf` (no FMA in the baseline
//! target) and is kept for bit-identity, not speed.
//!
//! # Testing each instruction set
//! `cargo test -p rbm-kernels` runs every kernel on every instruction set this CPU has
//! (explicitly, through the `*_with` functions; a test prints "skipping" for an ISA the CPU
//! lacks) against the scalar oracle. To make the *dispatched* path run a given ISA, set
//! `RBM_FORCE_ISA`; the test `forced_isa_was_run` (in `tests/forced_isa.rs`) then fails
//! unless that ISA is the one that ran:
//!
//! ```sh
//! RBM_FORCE_ISA=scalar cargo test -p rbm-kernels
//! RBM_FORCE_ISA=avx2   cargo test -p rbm-kernels
//! RBM_FORCE_ISA=avx512 cargo test -p rbm-kernels
//! ```
//!
//! Forcing an ISA the CPU lacks falls back to the best available one; the guard test then
//! says so and checks that the fallback ran.
//!
//! # Threads
//! Nothing here spawns threads; every function is safe to call from many threads at once on
//! disjoint outputs.
//!
//! # MSRV
//! Rust 1.89.
#![deny(missing_docs)]

pub mod aligned;
pub mod api;
pub mod binary;
pub mod dispatch;
pub mod gemm;
pub mod kernel;
mod lanes;
pub mod math;
mod portable;
pub mod rng;
pub mod scalar;
mod simd;
pub mod strided;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use aligned::{AlignedVec, gather_stride};
pub use api::{
    bernoulli, bernoulli_with, changed_indices, changed_indices_with, nonzero_indices,
    nonzero_indices_with, sigmoid_affine, sigmoid_affine_sample, sigmoid_affine_sample_with,
    sigmoid_affine_with, softmax_groups, softmax_groups_sample, softmax_groups_sample_with,
    softmax_groups_with, softplus_diff_affine, softplus_diff_affine_sample,
    softplus_diff_affine_sample_with, softplus_diff_affine_with, softplus_sum_affine,
    softplus_sum_affine_sample, softplus_sum_affine_sample_with, softplus_sum_affine_with,
};
pub use dispatch::Isa;
pub use gemm::{Mat, MatMut, gemm};
pub use kernel::Kernel;
pub use rng::StreamKey;
