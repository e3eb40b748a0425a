//! IDX datasets: parsing, memory-mapped and gzip'd files, MNIST-style datasets, minibatches.
//!
//! - [`idx`]: the IDX format parsed from `&[u8]` ([`parse`], [`parse_header`]), never
//!   panicking and never allocating from untrusted sizes.
//! - [`file`](mod@file): [`IdxFile`], a validated file, memory-mapped when raw and inflated (into a buffer
//!   sized by its header) when `.gz`.
//! - [`dataset`]: [`Dataset`], images `[n, rows, cols]` plus labels `[n]`; the standard MNIST
//!   file names ([`Split`], [`open_split`]) and folder discovery ([`find_dataset`]).
//! - [`fasta`]: aligned sequences ([`fasta::Msa`]) in FASTA, plain or `.gz`, as codes of an
//!   [`fasta::Alphabet`] (protein, DNA, RNA or one's own), with deduplication, seeded
//!   train/test splits and sequence weights ([`fasta::Msa::weights`]).
//! - [`rows`]: [`Rows`], rows of your own held in memory (`f32` in `[0, 1]` or `u8` grey
//!   levels), and [`RowSource`], what training and evaluation read from (a [`Dataset`] or
//!   [`Rows`]).
//! - [`batch`]: epoch orders ([`Batches`]) and binarized minibatches in caller-owned `f32`
//!   buffers ([`fill_batch`]).
//!
//! Errors are [`crate::Error`] values naming the file concerned.

pub mod batch;
pub mod dataset;
pub mod fasta;
pub mod file;
pub mod idx;
pub mod rows;

pub use batch::{Batches, Binarize, EPOCH_TAG, Order, fill_batch};
pub use dataset::{
    CLASSES, DATA_ENV, Dataset, Split, find_dataset, find_dataset_in, find_file, mean_pixels,
    open_split, open_split_mapped, search_roots,
};
pub use file::IdxFile;
pub use idx::{ElemType, IdxHeader, IdxView, MAX_DIMS, parse, parse_header};
pub use rows::{RowSource, Rows};
