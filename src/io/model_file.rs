//! Model files: an [`Rbm`] and its training configuration in a [safetensors] file.
//!
//! # Format
//!
//! A model file is a safetensors file with exactly three tensors, all `F32` (little-endian,
//! C order), with the names and shapes of the reference notebook's PyTorch module, so that
//! `safetensors.torch.load_file` returns a state dict that module loads as it is:
//!
//! | tensor   | shape    | meaning                                  |
//! |----------|----------|------------------------------------------|
//! | `W`      | `[H, V]` | weights, row `j` for hidden unit `j`     |
//! | `v_bias` | `[V]`    | visible biases `b`                       |
//! | `h_bias` | `[H]`    | hidden biases `c`                        |
//!
//! The header's `__metadata__` (string → string) holds:
//! - `"format"`: `"rbm"`;
//! - `"rbm_version"`: the version of this crate that wrote the file (informational);
//! - `"config"` (optional): a JSON document given by the caller: the run's configuration for
//!   `rbm train`, the settings and training column means for [`crate::Estimator::save`].
//!
//! # Reading
//!
//! [`parse_model`] works on bytes alone and is the entry point fuzzed in `fuzz/`; it never
//! panics, whatever the input. It accepts any valid safetensors file with the three tensors
//! and consistent shapes (`H`, `V` ≥ 1), finite values, and metadata that is either absent or
//! agrees with the above (a `"format"` of `"rbm"`, or `"pt"` as Hugging Face's PyTorch tools
//! write it; a `"config"` that is valid JSON). Other metadata keys are kept and returned.
//! [`load_model`] reads a file and attaches its path to any error.
//!
//! # Writing
//!
//! [`save_model`] refuses a model holding NaN or an infinity, then writes the file
//! atomically: to a temporary file beside the target, synced to disk, then renamed over it,
//! so that a reader (or a crash) never sees half a file. [`serialize_model`] gives the bytes.
//!
//! # Example
//!
//! ```
//! use rbm::{Rbm, load_model, save_model};
//!
//! # fn main() -> rbm::Result<()> {
//! let dir = std::env::temp_dir().join(format!("rbm-doc-model-file-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).map_err(|e| rbm::Error::io(&dir, e))?;
//! let path = dir.join("gate.safetensors");
//!
//! let model = Rbm::new(3, 3, 42)?;
//! save_model(&path, &model, Some(r#"{"k": 4, "lr": 0.1}"#))?;
//!
//! let loaded = load_model(&path)?;
//! assert_eq!(loaded.model, model);
//! assert_eq!(loaded.config(), Some(r#"{"k": 4, "lr": 0.1}"#));
//! assert_eq!(loaded.metadata["format"], "rbm");
//! # std::fs::remove_dir_all(&dir).map_err(|e| rbm::Error::io(&dir, e))?;
//! # Ok(())
//! # }
//! ```
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors, View};

use crate::error::{Error, ModelFileError, Result};
use crate::io::atomic::write_atomic_with;
use crate::model::Rbm;

/// The metadata key naming the file's format.
pub const FORMAT_KEY: &str = "format";
/// The value of [`FORMAT_KEY`] that this crate writes.
pub const FORMAT: &str = "rbm";
/// The metadata key of the version of the crate that wrote the file.
pub const VERSION_KEY: &str = "rbm_version";
/// The metadata key of the training configuration (a JSON document).
pub const CONFIG_KEY: &str = "config";

/// The value of [`FORMAT_KEY`] that Hugging Face's PyTorch tools write; accepted on reading.
const FORMAT_PYTORCH: &str = "pt";

/// The tensor names, in the order they are checked.
const TENSOR_NAMES: [&str; 3] = ["W", "v_bias", "h_bias"];

/// The size of the safetensors length prefix.
const N_LEN: usize = 8;

/// safetensors' limit on the header size (`MAX_HEADER_SIZE` in its `tensor.rs`).
const MAX_HEADER_SIZE: usize = 100_000_000;

/// The largest safetensors header (the JSON after the 8-byte length) that a model file or a
/// checkpoint may have: 1 MiB. What this crate writes is a few KB (the tensor entries, the
/// configuration and a checkpoint's run record, whose `--eval-every` estimates add about
/// 150 bytes an epoch); safetensors itself accepts 100 MB. Checked against the length prefix
/// before the header is read, and the file's size against what the header describes before
/// the tensors are read, so a bogus file of any size costs at most this much memory.
pub const MAX_HEADER_BYTES: u64 = 1 << 20;

/// A model read from a model file, with the file's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFile {
    /// The model.
    pub model: Rbm,
    /// The header's `__metadata__`, all keys (empty when the file has none).
    pub metadata: BTreeMap<String, String>,
}

impl ModelFile {
    /// The training configuration (a JSON document), if the file records one.
    pub fn config(&self) -> Option<&str> {
        self.metadata.get(CONFIG_KEY).map(String::as_str)
    }

    /// The version of `rbm` that wrote the file, if recorded.
    pub fn rbm_version(&self) -> Option<&str> {
        self.metadata.get(VERSION_KEY).map(String::as_str)
    }
}

/// Writes `model` to `path` as a model file, with `config_json` (the training configuration,
/// a JSON document) in the metadata.
///
/// The write is atomic: the bytes go to a temporary file `.<name>.tmp-<pid>-<n>` in the
/// target's folder, which is synced to disk and then renamed over `path`. On any error the
/// temporary file is removed and an existing file at `path` is left as it was. (A symbolic
/// link at `path` is replaced by the file, not followed.) The new file gets the default
/// permissions, not those of the file it replaces.
///
/// # Errors
/// - [`Error::ModelFile`] with [`ModelFileError::NonFinite`] if a parameter is NaN or
///   infinite (nothing is written), or [`ModelFileError::Metadata`] if `config_json` is not
///   valid JSON;
/// - [`Error::Io`] if the temporary file cannot be created, written or synced (naming the
///   temporary file), or cannot be renamed over `path` (naming `path`).
pub fn save_model(path: impl AsRef<Path>, model: &Rbm, config_json: Option<&str>) -> Result<()> {
    let path = path.as_ref();
    let encoded = encode_model(model, config_json).map_err(|kind| Error::ModelFile {
        path: path.to_path_buf(),
        kind,
    })?;
    write_atomic_with(path, |w| encoded.write_to(w))
}

/// The bytes of the model file of `model` with `config_json` in its metadata: what
/// [`save_model`] writes.
///
/// # Errors
/// [`ModelFileError::NonFinite`] if a parameter is NaN or infinite;
/// [`ModelFileError::Metadata`] if `config_json` is not valid JSON;
/// [`ModelFileError::Format`] if the header would be over safetensors' 100 MB;
/// [`ModelFileError::TooLarge`] if the bytes cannot be held in memory ([`save_model`] writes
/// them without holding them).
pub fn serialize_model(model: &Rbm, config_json: Option<&str>) -> Result<Vec<u8>, ModelFileError> {
    encode_model(model, config_json)?.to_bytes()
}

/// The model file of `model`, ready to write.
fn encode_model<'a>(
    model: &'a Rbm,
    config_json: Option<&str>,
) -> Result<Encoded<'a>, ModelFileError> {
    let (v, h) = (model.n_visible(), model.n_hidden());
    let tensors = [
        ("W", vec![h, v], model.weights()),
        ("v_bias", vec![v], model.v_bias()),
        ("h_bias", vec![h], model.h_bias()),
    ];
    for (name, _, values) in &tensors {
        check_finite(name, values.iter().copied())?;
    }
    let mut metadata = HashMap::from([
        (FORMAT_KEY.to_owned(), FORMAT.to_owned()),
        (VERSION_KEY.to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
    ]);
    if let Some(config) = config_json {
        check_config(config)?;
        metadata.insert(CONFIG_KEY.to_owned(), config.to_owned());
    }
    let views = tensors
        .into_iter()
        .map(|(name, shape, values)| (name, LeF32 { shape, values }));
    encode_sorted(views, metadata)
}

/// A safetensors file ready to be written: its length prefix and header, then the tensors'
/// values, which are written from where they are (no copy of the file is made in memory).
pub(crate) struct Encoded<'a> {
    /// The 8-byte length, the JSON header with its keys in sorted order, and the spaces that
    /// pad it to a multiple of 8 bytes — as `safetensors::serialize` writes it, but sorted:
    /// the same tensors and metadata always give the same bytes (safetensors writes the
    /// metadata in the iteration order of a `HashMap`).
    header: Vec<u8>,
    /// The tensors in file order (by name, as safetensors orders tensors of one dtype).
    tensors: Vec<&'a [f32]>,
}

impl Encoded<'_> {
    /// The file's size in bytes.
    fn len(&self) -> usize {
        self.tensors
            .iter()
            .map(|t| size_of_val(*t))
            .fold(self.header.len(), usize::saturating_add)
    }

    /// Writes the file to `w`: the header, then each tensor little-endian.
    pub(crate) fn write_to(&self, w: &mut dyn Write) -> std::io::Result<()> {
        w.write_all(&self.header)?;
        for t in &self.tensors {
            if cfg!(target_endian = "little") {
                w.write_all(bytemuck::cast_slice(t))?;
            } else {
                for chunk in t.chunks(1 << 14) {
                    let le: Vec<u8> = chunk.iter().flat_map(|x| x.to_le_bytes()).collect();
                    w.write_all(&le)?;
                }
            }
        }
        Ok(())
    }

    /// The file's bytes in memory.
    ///
    /// # Errors
    /// [`ModelFileError::TooLarge`] if they cannot be allocated.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, ModelFileError> {
        let len = self.len();
        let mut bytes = Vec::new();
        bytes
            .try_reserve_exact(len)
            .map_err(|_| ModelFileError::TooLarge { bytes: len as u64 })?;
        self.write_to(&mut bytes)
            .map_err(|e| ModelFileError::Format(e.to_string()))?;
        Ok(bytes)
    }
}

/// The safetensors file of `views` (f32 tensors) and `metadata`, with its header sorted (see
/// [`Encoded`]).
///
/// # Errors
/// [`ModelFileError::Inconsistent`] if a tensor's values do not fill its shape;
/// [`ModelFileError::Format`] if the header would be over safetensors' 100 MB.
pub(crate) fn encode_sorted<'a>(
    views: impl IntoIterator<Item = (&'a str, LeF32<'a>)>,
    metadata: HashMap<String, String>,
) -> Result<Encoded<'a>, ModelFileError> {
    let mut views: Vec<(&str, LeF32<'a>)> = views.into_iter().collect();
    views.sort_by_key(|(name, _)| *name);
    let mut header = BTreeMap::new();
    let mut offset = 0usize;
    for (name, view) in &views {
        if view.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(view.values.len()) {
            return Err(ModelFileError::Inconsistent(format!(
                "{name} has {} values, not a whole {:?}",
                view.values.len(),
                view.shape
            )));
        }
        let end = offset.saturating_add(size_of_val(view.values));
        let info = serde_json::json!({
            "dtype": "F32", "shape": view.shape, "data_offsets": [offset, end],
        });
        header.insert((*name).to_owned(), info);
        offset = end;
    }
    let metadata: BTreeMap<String, String> = metadata.into_iter().collect();
    header.insert("__metadata__".to_owned(), serde_json::json!(metadata));
    let mut json = serde_json::to_string(&header)
        .map_err(|e| ModelFileError::Format(format!("cannot serialize: {e}")))?
        .into_bytes();
    json.resize(json.len().next_multiple_of(N_LEN), b' ');
    if json.len() > MAX_HEADER_SIZE {
        return Err(ModelFileError::Format(format!(
            "cannot serialize: a header of {} bytes is over safetensors' {MAX_HEADER_SIZE}",
            json.len()
        )));
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&json);
    Ok(Encoded {
        header: bytes,
        tensors: views.into_iter().map(|(_, v)| v.values).collect(),
    })
}

/// Reads the model file at `path`.
///
/// # Errors
/// - [`Error::Io`] if the file cannot be opened or read;
/// - [`Error::ModelFile`] with [`ModelFileError::IsDirectory`] if `path` is a folder, or with
///   the error of [`parse_model`] if the bytes are not a valid model file.
pub fn load_model(path: impl AsRef<Path>) -> Result<ModelFile> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    parse_model(&bytes).map_err(|kind| Error::ModelFile {
        path: path.to_path_buf(),
        kind,
    })
}

/// The bytes of the file at `path`, refusing a folder.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let io_err = |e| Error::io(path, e);
    // Checked before opening: opening a FIFO blocks until a writer appears.
    let kind = std::fs::metadata(path).map_err(io_err)?.file_type();
    if !kind.is_file() && !kind.is_dir() {
        return Err(Error::ModelFile {
            path: path.to_path_buf(),
            kind: ModelFileError::NotAFile,
        });
    }
    let mut file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_dir() {
        return Err(Error::ModelFile {
            path: path.to_path_buf(),
            kind: ModelFileError::IsDirectory,
        });
    }
    let len = meta.len();
    let format = |message: String| Error::ModelFile {
        path: path.to_path_buf(),
        kind: ModelFileError::Format(message),
    };
    let mut bytes = Vec::new();
    if len >= N_LEN as u64 {
        // The length prefix and the header first, checked against the cap and the file's
        // size; the tensors only if the header describes exactly the bytes that follow it.
        let mut prefix = [0u8; N_LEN];
        file.read_exact(&mut prefix).map_err(io_err)?;
        let header_len = u64::from_le_bytes(prefix);
        let in_file = |kind| Error::ModelFile {
            path: path.to_path_buf(),
            kind,
        };
        check_header_len(header_len, len).map_err(in_file)?;
        // At most `MAX_HEADER_BYTES` (checked above).
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(io_err)?;
        bytes.extend_from_slice(&prefix);
        bytes.extend_from_slice(&header);
        let Some(end) = check_described(header_len, &header, len).map_err(in_file)? else {
            // Not a header: the parser reports why from these bytes alone.
            return Ok(bytes);
        };
        let body = usize::try_from(end).map_err(|_| format(format!("{end} bytes of tensors")))?;
        bytes
            .try_reserve_exact(body)
            .map_err(|_| in_file(ModelFileError::TooLarge { bytes: end }))?;
    }
    file.read_to_end(&mut bytes).map_err(io_err)?;
    Ok(bytes)
}

/// [`ModelFileError::Format`] for a header longer than [`MAX_HEADER_BYTES`] or than the
/// `file_len - 8` bytes after the length prefix.
fn check_header_len(header_len: u64, file_len: u64) -> Result<(), ModelFileError> {
    if header_len > MAX_HEADER_BYTES {
        return Err(ModelFileError::Format(format!(
            "the header declares {header_len} bytes, over the limit of {MAX_HEADER_BYTES}"
        )));
    }
    if header_len > file_len.saturating_sub(N_LEN as u64) {
        return Err(ModelFileError::Format(format!(
            "the header declares {header_len} bytes, past the end of the {file_len}-byte file"
        )));
    }
    Ok(())
}

/// The bytes of tensors that `header` describes (the largest end offset), checked to be
/// exactly what a file of `file_len` bytes holds after it; `None` when `header` is not a
/// JSON map (left to safetensors to report).
fn check_described(
    header_len: u64,
    header: &[u8],
    file_len: u64,
) -> Result<Option<u64>, ModelFileError> {
    let Ok(MaxEnd(end)) = serde_json::from_slice::<MaxEnd>(header) else {
        return Ok(None);
    };
    let described = (N_LEN as u64)
        .checked_add(header_len)
        .and_then(|n| n.checked_add(end));
    if described != Some(file_len) {
        return Err(ModelFileError::Format(format!(
            "the file has {file_len} bytes, its header describes {}",
            described.map_or_else(|| "more than 2^64".to_string(), |d| d.to_string())
        )));
    }
    Ok(Some(end))
}

/// Parses the bytes of a model file (see the [module docs](self) for the format).
///
/// Never panics. Checks, in this order: the bytes are valid safetensors
/// ([`ModelFileError::Format`]); the tensors are exactly `W`, `v_bias`, `h_bias`
/// ([`MissingTensor`](ModelFileError::MissingTensor) for the first absent one, in that order,
/// then [`UnexpectedTensor`](ModelFileError::UnexpectedTensor) for the first other one in
/// name order); each is `F32` ([`WrongDtype`](ModelFileError::WrongDtype)); `W` is `[H, V]`
/// with `H, V ≥ 1`, `v_bias` is `[V]`, `h_bias` is `[H]`
/// ([`WrongShape`](ModelFileError::WrongShape)); every value is finite
/// ([`NonFinite`](ModelFileError::NonFinite), the first in the order `W`, `v_bias`,
/// `h_bias`); the metadata, if any, has a `"format"` of `"rbm"` or `"pt"` and a `"config"`
/// that is valid JSON ([`Metadata`](ModelFileError::Metadata)).
///
/// The tensor data need not be aligned: values are decoded from little-endian bytes.
///
/// # Errors
/// The [`ModelFileError`] of the first check that fails, as listed above.
pub fn parse_model(bytes: &[u8]) -> Result<ModelFile, ModelFileError> {
    let (header, data) = read_header(bytes)?;

    let tensors = header.tensors();
    let find = |name: &'static str| {
        tensors
            .get(name)
            .copied()
            .ok_or(ModelFileError::MissingTensor(name))
    };
    let (w, v_bias, h_bias) = (find("W")?, find("v_bias")?, find("h_bias")?);
    if let Some(extra) = tensors
        .keys()
        .filter(|name| !TENSOR_NAMES.contains(&name.as_str()))
        .min()
    {
        return Err(ModelFileError::UnexpectedTensor(extra.clone()));
    }
    for (name, info) in TENSOR_NAMES.iter().zip([w, v_bias, h_bias]) {
        if info.dtype != Dtype::F32 {
            return Err(ModelFileError::WrongDtype {
                name,
                dtype: info.dtype.to_string(),
            });
        }
    }

    let (n_hidden, n_visible) = match *w.shape.as_slice() {
        [h, v] if h >= 1 && v >= 1 => (h, v),
        _ => {
            return Err(ModelFileError::WrongShape {
                name: "W",
                found: w.shape.clone(),
                expected: "[H, V] with H ≥ 1 and V ≥ 1".into(),
            });
        }
    };
    for (name, info, len, letter) in [
        ("v_bias", v_bias, n_visible, 'V'),
        ("h_bias", h_bias, n_hidden, 'H'),
    ] {
        if info.shape != [len] {
            return Err(ModelFileError::WrongShape {
                name,
                found: info.shape.clone(),
                expected: format!("[{letter}] = [{len}] to match W"),
            });
        }
    }

    let w = read_f32("W", w, data)?;
    let v_bias = read_f32("v_bias", v_bias, data)?;
    let h_bias = read_f32("h_bias", h_bias, data)?;

    let metadata: BTreeMap<String, String> = header
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if let Some(format) = metadata.get(FORMAT_KEY)
        && format != FORMAT
        && format != FORMAT_PYTORCH
    {
        return Err(ModelFileError::Metadata(format!(
            "format is {format:?}, expected {FORMAT:?}"
        )));
    }
    if let Some(config) = metadata.get(CONFIG_KEY) {
        check_config(config)?;
    }

    let model = Rbm::from_parts(n_visible, n_hidden, w, v_bias, h_bias)
        // Unreachable after the checks above; reported rather than unwrapped all the same.
        .map_err(|e| ModelFileError::Format(e.to_string()))?;
    Ok(ModelFile { model, metadata })
}

/// Decodes the `F32` tensor `info` from `data` (the bytes after the header), checking that
/// every value is finite.
pub(crate) fn read_f32(
    name: &'static str,
    info: &TensorInfo,
    data: &[u8],
) -> Result<Vec<f32>, ModelFileError> {
    let (start, end) = info.data_offsets;
    let n = info.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let bytes = data
        .get(start..end)
        .filter(|b| n.and_then(|n| n.checked_mul(4)) == Some(b.len()))
        // `read_metadata` validated offsets against shape and dtype; kept as an error anyway.
        .ok_or_else(|| ModelFileError::Format(format!("tensor {name:?} has invalid offsets")))?;
    let (chunks, _) = bytes.as_chunks::<4>();
    let values: Vec<f32> = chunks.iter().map(|c| f32::from_le_bytes(*c)).collect();
    check_finite(name, values.iter().copied())?;
    Ok(values)
}

/// [`ModelFileError::NonFinite`] at the first non-finite value, if any.
pub(crate) fn check_finite(
    name: &'static str,
    values: impl IntoIterator<Item = f32>,
) -> Result<(), ModelFileError> {
    match values.into_iter().position(|x| !x.is_finite()) {
        Some(index) => Err(ModelFileError::NonFinite { name, index }),
        None => Ok(()),
    }
}

/// The safetensors header of `bytes` and the data after it, refusing offsets past the end.
pub(crate) fn read_header(bytes: &[u8]) -> Result<(Metadata, &[u8]), ModelFileError> {
    if let Some(prefix) = bytes.first_chunk::<N_LEN>() {
        // The same checks, in the same order, as `read_file` makes before reading the body.
        let header_len = u64::from_le_bytes(*prefix);
        let len = bytes.len() as u64;
        check_header_len(header_len, len)?;
        if let Some(header) = bytes.get(N_LEN..N_LEN + header_len as usize) {
            check_described(header_len, header, len)?;
        }
    }
    guard_offsets(bytes)?;
    let (header_len, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| ModelFileError::Format(e.to_string()))?;
    // `read_metadata` checked that the header's offsets cover the rest of the buffer exactly.
    let data = N_LEN
        .checked_add(header_len)
        .and_then(|start| bytes.get(start..))
        .ok_or_else(|| ModelFileError::Format("header length past the end".into()))?;
    Ok((header, data))
}

/// [`ModelFileError::Metadata`] unless `config` is a JSON document.
fn check_config(config: &str) -> Result<(), ModelFileError> {
    check_json(CONFIG_KEY, config)
}

/// [`ModelFileError::Metadata`] naming the metadata entry `key` unless `text` is a JSON
/// document.
pub(crate) fn check_json(key: &str, text: &str) -> Result<(), ModelFileError> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| ModelFileError::Metadata(format!("{key} is not valid JSON: {e}")))
}

/// Rejects headers whose tensor offsets reach past the end of `bytes`.
///
/// `SafeTensors::read_metadata` (0.8) checks `last_offset + 8 + header_len == bytes.len()`
/// with an unchecked addition, which overflows — a panic in builds with overflow checks, as
/// tests and fuzzing use — for offsets near `usize::MAX` (reachable with eight or more huge
/// tensors whose sizes sum to nearly 2⁶⁴). Any offset past the data is invalid anyway, so this
/// reports it first. Inputs that are not a readable header are left to safetensors.
fn guard_offsets(bytes: &[u8]) -> Result<(), ModelFileError> {
    let Some(prefix) = bytes.first_chunk::<N_LEN>() else {
        return Ok(());
    };
    let Ok(header_len) = usize::try_from(u64::from_le_bytes(*prefix)) else {
        return Ok(());
    };
    if header_len > MAX_HEADER_SIZE {
        return Ok(());
    }
    let Some(header) = bytes.get(N_LEN..).and_then(|rest| rest.get(..header_len)) else {
        return Ok(());
    };
    let data_len = bytes.len() - N_LEN - header_len;
    let Ok(MaxEnd(end)) = serde_json::from_slice::<MaxEnd>(header) else {
        return Ok(());
    };
    if end > data_len as u64 {
        return Err(ModelFileError::Format(format!(
            "a tensor ends at byte {end} of the data, past its {data_len} bytes"
        )));
    }
    Ok(())
}

/// The largest end offset (`data_offsets[1]`) that any entry of a safetensors header
/// declares; every entry is visited, duplicates included.
struct MaxEnd(u64);

impl<'de> serde::Deserialize<'de> for MaxEnd {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = MaxEnd;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a safetensors header")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<MaxEnd, A::Error> {
                let mut max = 0;
                while let Some((_, entry)) =
                    map.next_entry::<serde::de::IgnoredAny, serde_json::Value>()?
                {
                    let end = entry
                        .get("data_offsets")
                        .and_then(|offsets| offsets.get(1))
                        .and_then(serde_json::Value::as_u64);
                    max = max.max(end.unwrap_or(0));
                }
                Ok(MaxEnd(max))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// An f32 tensor for `safetensors::serialize`, stored little-endian whatever the host.
pub(crate) struct LeF32<'a> {
    pub(crate) shape: Vec<usize>,
    pub(crate) values: &'a [f32],
}

impl View for LeF32<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        if cfg!(target_endian = "little") {
            Cow::Borrowed(bytemuck::cast_slice(self.values))
        } else {
            Cow::Owned(self.values.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
    }

    fn data_len(&self) -> usize {
        std::mem::size_of_val(self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer before [`encode_sorted`]: `safetensors::serialize` with its header sorted
    /// afterwards, kept as the oracle of the bytes.
    fn safetensors_sorted<'a>(
        views: impl IntoIterator<Item = (&'a str, LeF32<'a>)>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<u8>, ModelFileError> {
        let views: Vec<(&str, LeF32<'a>)> = views.into_iter().collect();
        // safetensors builds the file in memory with infallible allocations: probe that the
        // file's size (plus room for the header) can be allocated, so that a model too large to
        // write is an error, not an abort (each tensor's little-endian copy comes on top only on
        // big-endian hosts).
        let size = views
            .iter()
            .map(|(_, v)| v.data_len())
            .chain(metadata.iter().map(|(k, v)| k.len() + v.len()))
            .try_fold(1usize << 16, usize::checked_add);
        let fits = size.is_some_and(|n| Vec::<u8>::new().try_reserve_exact(n).is_ok());
        if !fits {
            return Err(ModelFileError::TooLarge {
                bytes: size.map_or(u64::MAX, |n| n as u64),
            });
        }
        let mut bytes = safetensors::serialize(views, Some(metadata))
            .map_err(|e| ModelFileError::Format(format!("cannot serialize: {e}")))?;
        let header_len = bytes
            .first_chunk::<N_LEN>()
            .and_then(|n| usize::try_from(u64::from_le_bytes(*n)).ok())
            .filter(|&n| n <= bytes.len() - N_LEN)
            .ok_or_else(|| ModelFileError::Format("safetensors wrote no header".into()))?;
        let header = &mut bytes[N_LEN..N_LEN + header_len];
        // serde_json's maps are sorted (BTreeMap); the compact text is as long as the original,
        // whose trailing spaces pad the data to an 8-byte boundary.
        let sorted = serde_json::from_slice::<serde_json::Value>(header)
            .map(|v| v.to_string())
            .map_err(|e| ModelFileError::Format(format!("safetensors wrote a bad header: {e}")))?;
        if sorted.len() > header_len {
            return Err(ModelFileError::Format(
                "the sorted header is longer than safetensors' own".into(),
            ));
        }
        header.fill(b' ');
        header[..sorted.len()].copy_from_slice(sorted.as_bytes());
        Ok(bytes)
    }

    /// The streaming writer gives safetensors' bytes, sorted as before, for tensors of odd
    /// sizes, empty ones and metadata values that need escaping; and what it writes reads
    /// back.
    #[test]
    fn the_streamed_file_is_byte_identical_to_safetensors_sorted() {
        let values: Vec<f32> = (0..1000).map(|k| (k as f32 * 0.37).sin() * 1e3).collect();
        for (v, h) in [(1, 1), (3, 2), (7, 5), (28, 13), (0, 4), (31, 31)] {
            let names = ["W", "v_bias", "h_bias", "momentum.W", "chains"];
            let shapes = [vec![h, v], vec![v], vec![h], vec![h, v], vec![2, v]];
            let tensors: Vec<_> = names
                .iter()
                .zip(&shapes)
                .map(|(&n, s)| (n, s.clone(), &values[..s.iter().product::<usize>()]))
                .collect();
            let views = || {
                tensors.iter().map(|(n, shape, values)| {
                    (
                        *n,
                        LeF32 {
                            shape: shape.clone(),
                            values,
                        },
                    )
                })
            };
            let metadata = HashMap::from([
                ("format".to_owned(), "rbm".to_owned()),
                (
                    "config".to_owned(),
                    format!(r#"{{"a":"é\n\"{v}\"","b":[{h}]}}"#),
                ),
                ("z".to_owned(), "\u{1}\t".to_owned()),
            ]);
            let streamed = encode_sorted(views(), metadata.clone())
                .unwrap()
                .to_bytes()
                .unwrap();
            let oracle = safetensors_sorted(views(), metadata).unwrap();
            assert_eq!(streamed, oracle, "{v}–{h}");
        }
        // A tensor whose values do not fill its shape is refused.
        let bad = [(
            "W",
            LeF32 {
                shape: vec![2, 3],
                values: &values[..5],
            },
        )];
        assert!(matches!(
            encode_sorted(bad, HashMap::new()),
            Err(ModelFileError::Inconsistent(_))
        ));
    }

    /// A header with `entries` (JSON object members) and `data_len` zero bytes of data.
    fn raw_file(entries: &str, data_len: usize) -> Vec<u8> {
        let header = format!("{{{entries}}}");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.resize(bytes.len() + data_len, 0);
        bytes
    }

    /// Eight tensors of 2⁶¹ − 8 bytes each end at offset 2⁶⁴ − 64, and safetensors 0.8 adds
    /// 8 and the header length to that without a check (an overflow panic in debug builds).
    #[test]
    fn offsets_summing_near_usize_max_are_an_error_not_a_panic() {
        let size: u64 = (1 << 61) - 8;
        let entries: Vec<String> = (0..8u64)
            .map(|i| {
                format!(
                    r#""t{i}":{{"dtype":"F64","shape":[{}],"data_offsets":[{},{}]}}"#,
                    size / 8,
                    i * size,
                    (i + 1) * size
                )
            })
            .collect();
        let bytes = raw_file(&entries.join(","), 0);
        let err = parse_model(&bytes).unwrap_err();
        assert!(matches!(err, ModelFileError::Format(_)), "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_all_checked() {
        let entries = r#""W":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]},"W":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#;
        let err = parse_model(&raw_file(entries, 4)).unwrap_err();
        assert!(matches!(err, ModelFileError::Format(_)), "{err:?}");
    }

    #[test]
    fn unaligned_data_decodes() {
        // A header whose length is not a multiple of 4 puts the data at an odd address.
        let entries = r#""W":{"dtype":"F32","shape":[1,1],"data_offsets":[0,4]},"v_bias":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"h_bias":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}"#;
        let mut bytes = raw_file(entries, 0);
        assert_ne!(bytes.len() % 4, 0);
        for x in [1.5f32, -2.0, 0.25] {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let file = parse_model(&bytes).unwrap();
        assert_eq!(file.model.weights(), [1.5]);
        assert_eq!(file.model.v_bias(), [-2.0]);
        assert_eq!(file.model.h_bias(), [0.25]);
        assert!(file.metadata.is_empty());
    }

    #[test]
    fn pytorch_format_is_accepted() {
        let model = Rbm::new(2, 3, 1).unwrap();
        let views = [
            (
                "W",
                LeF32 {
                    shape: vec![3, 2],
                    values: model.weights(),
                },
            ),
            (
                "v_bias",
                LeF32 {
                    shape: vec![2],
                    values: model.v_bias(),
                },
            ),
            (
                "h_bias",
                LeF32 {
                    shape: vec![3],
                    values: model.h_bias(),
                },
            ),
        ];
        let meta = HashMap::from([("format".to_owned(), "pt".to_owned())]);
        let bytes = safetensors::serialize(views, Some(meta)).unwrap();
        assert_eq!(parse_model(&bytes).unwrap().model, model);
    }

    #[test]
    fn save_refuses_invalid_config_json() {
        let model = Rbm::new(2, 3, 1).unwrap();
        let err = serialize_model(&model, Some("{not json")).unwrap_err();
        assert!(matches!(err, ModelFileError::Metadata(_)), "{err:?}");
    }
}
