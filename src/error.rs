//! The crate's one error type.
//!
//! Every fallible operation of `rbm` returns [`Error`]. Variants that concern a file carry its
//! path and a kind enum that says what is wrong with it ([`IdxError`], [`DatasetError`],
//! [`ModelFileError`]), so that the one-line `Display` reads `PATH: what is wrong`.
//! Parsers that work on bytes ([`crate::data::idx::parse`]) return the kind alone; the
//! file-level functions attach the path.

use std::path::PathBuf;

/// Shorthand for `Result<T, rbm::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be opened, read, written or renamed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a valid IDX file.
    #[error("{}: {kind}", path.display())]
    Idx {
        /// The file concerned (`<bytes>` when parsed from memory).
        path: PathBuf,
        /// What is wrong with it.
        kind: IdxError,
    },
    /// Image and label files do not form a dataset, or a dataset cannot be found.
    #[error("{}: {kind}", path.display())]
    Dataset {
        /// The file or folder concerned.
        path: PathBuf,
        /// What is wrong with it.
        kind: DatasetError,
    },
    /// A file is not a valid aligned FASTA file (a multiple sequence alignment).
    #[error("{}: {kind}", path.display())]
    Msa {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        kind: MsaError,
    },
    /// A model file cannot be loaded, or a model cannot be saved to it.
    #[error("{}: {kind}", path.display())]
    ModelFile {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        kind: ModelFileError,
    },
    /// A configuration value (a hyper-parameter, a size) is out of its domain.
    #[error("invalid configuration: {0}")]
    Config(ConfigError),
    /// Buffers or data do not have the sizes the model needs.
    #[error("shape mismatch: {0}")]
    Shape(ShapeError),
    /// A data value is NaN, infinite or outside `[0, 1]` (the range of visible units).
    #[error("row {row}, column {column}: value {value} is not in [0, 1]")]
    Value {
        /// The row (0-based) of the first bad value.
        row: usize,
        /// Its column (0-based), the visible unit.
        column: usize,
        /// The value.
        value: f32,
    },
    /// A model is used before it has been fitted or loaded.
    #[error("the model is not fitted yet: call fit or partial_fit first (or load one)")]
    NotFitted,
    /// A figure (an image or a plot) could not be drawn or encoded.
    #[error("cannot make figure {what}: {reason}")]
    Figure {
        /// The figure, usually its file name.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// Training produced a non-finite parameter or loss.
    #[error("training diverged in epoch {} at batch {} (counting from 1): {what}", epoch + 1, step + 1)]
    Diverged {
        /// The epoch (0-based) in which the first non-finite value appeared.
        epoch: usize,
        /// The step (0-based, within the epoch) that produced it.
        step: usize,
        /// Which quantity became non-finite.
        what: String,
    },
}

/// Which argument, buffer or data has the wrong size, what it needed and what it had: as data,
/// so that a program can react (the message is `what: expected …, got …`).
///
/// ```
/// let model = rbm::Rbm::new(4, 3, 1)?;
/// let mut out = vec![0.0; 5];
/// match model.hidden_probs(&[0.0; 8], &mut out) {
///     Err(rbm::Error::Shape(e)) => {
///         assert_eq!(e.what, "hidden probabilities");
///         assert_eq!((e.expected.as_str(), e.found.as_str()), ("6 values (2 rows of 3)", "5"));
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), rbm::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: expected {expected}, got {found}")]
pub struct ShapeError {
    /// The argument, buffer or data concerned, e.g. `"batch"` or `"clamp mask"`.
    pub what: String,
    /// What it needed, e.g. `"1 to 64 rows of 784 values"`.
    pub expected: String,
    /// What it had, e.g. `"1000 values"`.
    pub found: String,
}

/// Which setting is out of its domain, what it must be and what it was: as data (the message
/// is `field: expected …, got …`).
///
/// ```
/// let err = rbm::Config::default().learning_rate(-1.0).validate().unwrap_err();
/// match err {
///     rbm::Error::Config(e) => {
///         assert_eq!((e.field.as_str(), e.found.as_str()), ("learning_rate", "-1"));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: expected {expected}, got {found}")]
pub struct ConfigError {
    /// The setting (a field of a configuration, a flag, a size), e.g. `"k"` or `"batch_size"`.
    pub field: String,
    /// Its domain, e.g. `"at least 1"`.
    pub expected: String,
    /// The value given.
    pub found: String,
}

/// What is wrong with an IDX file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdxError {
    /// The input is shorter than the 4-byte magic number.
    #[error("file too short for an IDX header: {len} bytes")]
    TooShort {
        /// Bytes present.
        len: u64,
    },
    /// The first two bytes of the magic number are not zero.
    #[error("bad magic number: first two bytes are {found:02x?}, expected [00, 00]")]
    BadMagic {
        /// The two bytes found.
        found: [u8; 2],
    },
    /// The element type code is none of u8, i8, i16, i32, f32, f64.
    #[error("unknown element type code 0x{code:02x}")]
    UnknownType {
        /// The code found (third byte).
        code: u8,
    },
    /// The number of dimensions is zero or above [`crate::data::idx::MAX_DIMS`].
    #[error("unsupported number of dimensions: {ndim} (expected 1 to {max})")]
    BadDimCount {
        /// The count found (fourth byte).
        ndim: u8,
        /// The largest count accepted.
        max: u8,
    },
    /// The input ends inside the dimension list.
    #[error("header truncated: {ndim} dimensions need {needed} header bytes, file has {len}")]
    HeaderTruncated {
        /// Declared number of dimensions.
        ndim: u8,
        /// Header bytes needed.
        needed: u64,
        /// Bytes present.
        len: u64,
    },
    /// The product of the dimensions times the element size overflows 64 bits.
    #[error("declared size overflows: dimensions {dims:?} of {elem_size}-byte elements")]
    SizeOverflow {
        /// The declared dimensions.
        dims: Vec<u32>,
        /// Bytes per element.
        elem_size: u8,
    },
    /// The header declares more data than the input holds.
    #[error("truncated: header declares {declared} data bytes, file holds {available}")]
    Truncated {
        /// Data bytes declared by the header.
        declared: u64,
        /// Data bytes present after the header.
        available: u64,
    },
    /// The input holds bytes after the declared data.
    #[error("{extra} trailing bytes after the {declared} declared data bytes")]
    TrailingBytes {
        /// Data bytes declared by the header.
        declared: u64,
        /// Bytes beyond them.
        extra: u64,
    },
    /// The gzip stream is corrupt or ends early, or bytes after a gzip member do not start
    /// another one.
    #[error("gzip stream is corrupt or truncated: {0}")]
    Gzip(String),
    /// The gzip stream inflates to more bytes than its IDX header declares.
    #[error("gzip stream inflates past the {declared} bytes its IDX header declares")]
    InflatesTooLong {
        /// Total bytes (header and data) declared.
        declared: u64,
    },
    /// The element type is not the one the caller needs.
    #[error("element type is {found}, expected {expected}")]
    WrongType {
        /// The type needed, e.g. `u8`.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// The number or sizes of dimensions are not the ones the caller needs.
    #[error("dimensions are {found:?}, expected {expected}")]
    WrongShape {
        /// A description of the shape needed, e.g. `[n, 28, 28]`.
        expected: &'static str,
        /// The dimensions found.
        found: Vec<u32>,
    },
}

/// What is wrong with a dataset (a pair of image and label files, or its folder).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// The image and label files hold different numbers of items.
    #[error("{images} images but {labels} labels")]
    CountMismatch {
        /// Images in the image file.
        images: usize,
        /// Labels in the label file.
        labels: usize,
    },
    /// A label is outside `0..classes`.
    #[error("label {label} at index {index} is out of range (expected 0..{classes})")]
    LabelOutOfRange {
        /// Position of the label in the file.
        index: usize,
        /// The label's value.
        label: u8,
        /// The number of classes.
        classes: u8,
    },
    /// None of the standard file names (raw or `.gz`) exists in the folder.
    #[error("no {file} (or {file}.gz) in this folder")]
    MissingFile {
        /// The standard file name looked for, e.g. `train-images-idx3-ubyte`.
        file: &'static str,
    },
    /// No folder holding the named dataset was found.
    #[error("dataset not found; looked in {looked_in}")]
    NotFound {
        /// The places searched, in order.
        looked_in: String,
    },
    /// Rows do not have the size the model needs.
    #[error("rows have {found} values, the model has {expected} visible units")]
    RowSize {
        /// Visible units of the model.
        expected: usize,
        /// Values per row in the data.
        found: usize,
    },
    /// A path that must be a regular file is a folder.
    #[error("is a directory, expected a file")]
    IsDirectory,
    /// A path that must be a regular file is something else (a FIFO, a socket, a device),
    /// which could block or never end when read.
    #[error("is not a regular file (a FIFO, socket or device?)")]
    NotAFile,
}

/// What is wrong with an alignment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MsaError {
    /// The input holds no record.
    #[error("no sequence record (a line starting with '>')")]
    Empty,
    /// Something other than whitespace comes before the first header.
    #[error("line {line}: sequence data before the first '>' header")]
    NoHeader {
        /// The line (1-based).
        line: usize,
    },
    /// A column holds a symbol that is not in the alphabet.
    #[error(
        "record {record} ({name}), column {column}: symbol {symbol:?} is not in the alphabet {alphabet}"
    )]
    UnknownSymbol {
        /// The record (1-based).
        record: usize,
        /// Its name.
        name: String,
        /// The alignment column (1-based, insertions not counted).
        column: usize,
        /// The symbol, as text.
        symbol: String,
        /// The alphabet's symbols.
        alphabet: String,
    },
    /// A record's number of columns differs from the first record's.
    #[error("record {record} ({name}) has {found} columns, the first record {expected}")]
    Length {
        /// The record (1-based).
        record: usize,
        /// Its name.
        name: String,
        /// The columns of the first record.
        expected: usize,
        /// The columns of this one.
        found: usize,
    },
    /// The records have no column at all.
    #[error("the records have no alignment column")]
    NoColumns,
    /// The gzip stream is corrupt, or the file is longer than [`crate::data::fasta::MAX_INFLATED`].
    #[error("cannot read the file: {0}")]
    Read(String),
    /// A line is longer than [`crate::data::fasta::MAX_LINE`].
    #[error("line {line} is longer than {max} bytes")]
    LineTooLong {
        /// The line (1-based).
        line: usize,
        /// [`crate::data::fasta::MAX_LINE`].
        max: usize,
    },
}

/// What is wrong with a model file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelFileError {
    /// The file is not valid safetensors.
    #[error("not a valid safetensors file: {0}")]
    Format(String),
    /// A required tensor is absent.
    #[error("missing tensor {0:?}")]
    MissingTensor(&'static str),
    /// A tensor other than `W`, `v_bias`, `h_bias` is present.
    #[error("unexpected tensor {0:?}")]
    UnexpectedTensor(String),
    /// A tensor is not f32.
    #[error("tensor {name:?} has dtype {dtype}, expected F32")]
    WrongDtype {
        /// The tensor's name.
        name: &'static str,
        /// Its dtype as safetensors spells it.
        dtype: String,
    },
    /// A tensor has the wrong shape, or the shapes disagree with each other.
    #[error("tensor {name:?} has shape {found:?}, expected {expected}")]
    WrongShape {
        /// The tensor's name.
        name: &'static str,
        /// The shape found.
        found: Vec<usize>,
        /// A description of the shape needed.
        expected: String,
    },
    /// A tensor holds NaN or an infinity.
    #[error("tensor {name:?} holds a non-finite value at index {index}")]
    NonFinite {
        /// The tensor's name.
        name: &'static str,
        /// The flat index of the first non-finite value.
        index: usize,
    },
    /// The metadata is not the JSON this crate writes.
    #[error("bad metadata: {0}")]
    Metadata(String),
    /// The path given is a folder (from `load_model` only; `parse_model` sees bytes).
    #[error("is a directory, expected a model file")]
    IsDirectory,
    /// The path given is not a regular file (a FIFO, a socket, a device).
    #[error("is not a regular file (a FIFO, socket or device?)")]
    NotAFile,
    /// The model (or checkpoint) is valid but too large for the memory available: its
    /// `bytes` could not be allocated to write or read it.
    #[error("the file's {bytes} bytes cannot be allocated (not enough memory)")]
    TooLarge {
        /// The bytes needed (`u64::MAX` when their count overflows).
        bytes: u64,
    },
    /// A checkpoint's parts disagree with each other (state that its configuration does not
    /// have, a position outside its schedule, …).
    #[error("inconsistent checkpoint: {0}")]
    Inconsistent(String),
}

impl Error {
    /// An [`Error::Shape`]: `what` needed `expected`, had `found`.
    pub fn shape(what: impl Into<String>, expected: impl ToString, found: impl ToString) -> Self {
        Error::Shape(ShapeError {
            what: what.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        })
    }

    /// An [`Error::Config`]: `field` must be `expected`, was `found`.
    pub fn config(field: impl Into<String>, expected: impl ToString, found: impl ToString) -> Self {
        Error::Config(ConfigError {
            field: field.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        })
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
