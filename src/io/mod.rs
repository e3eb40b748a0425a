//! Files: model files and checkpoints (safetensors), and the atomic writes behind them. (IDX
//! dataset files are read by [`crate::data`].)
//!
//! - [`model_file`]: a model as `W` `[H, V]`, `v_bias` `[V]`, `h_bias` `[H]` (f32, PyTorch's
//!   names), with its training configuration in the metadata.
//! - [`checkpoint`]: everything a run needs to continue bit-identically.
//! - [`atomic`]: write to a temporary name, sync, rename.

pub mod atomic;
pub mod checkpoint;
pub mod model_file;
