//! MNIST-style datasets: a `u8` image file `[n, rows, cols]` and a `u8` label file `[n]`.

use std::path::{Path, PathBuf};

use super::file::IdxFile;
use super::idx::ElemType;
use crate::error::{DatasetError, Error, IdxError, Result};

/// The number of classes; every label must be below it.
pub const CLASSES: u8 = 10;

/// Environment variable naming a folder that holds dataset folders (`$RBM_DATA/<name>`).
pub const DATA_ENV: &str = "RBM_DATA";

/// A labelled image dataset: `len()` images of `rows × cols` `u8` pixels and one label in
/// `0..CLASSES` per image, validated at open time. Pixels are read in place from the mapped
/// (or inflated) image file.
#[derive(Debug)]
pub struct Dataset {
    images: IdxFile,
    labels: IdxFile,
    len: usize,
    rows: usize,
    cols: usize,
}

impl Dataset {
    /// Opens an image file and a label file (raw or `.gz`, see [`IdxFile::open`]) and checks
    /// that they form a dataset (see [`from_idx`](Self::from_idx)).
    ///
    /// # Errors
    /// Those of [`IdxFile::open`] and [`from_idx`](Self::from_idx).
    pub fn open(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Dataset> {
        Self::from_idx(IdxFile::open(images)?, IdxFile::open(labels)?)
    }

    /// [`open`](Self::open) with raw files memory-mapped instead of read: zero-copy, on the
    /// condition that the files are not modified or truncated while the dataset lives (see
    /// [`IdxFile::open_mapped`]: a truncated mapped file ends the process with `SIGBUS`).
    ///
    /// # Errors
    /// Those of [`open`](Self::open).
    pub fn open_mapped(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Dataset> {
        Self::from_idx(IdxFile::open_mapped(images)?, IdxFile::open_mapped(labels)?)
    }

    /// Checks that `images` (u8, dims `[n, rows, cols]`, rows and cols ≥ 1) and `labels`
    /// (u8, dims `[n]`) form a dataset, scanning every label once.
    ///
    /// # Errors
    /// [`Error::Idx`] with [`IdxError::WrongType`] or [`IdxError::WrongShape`] for the file
    /// concerned; [`Error::Dataset`] with [`DatasetError::CountMismatch`] (reported on the
    /// label file) or [`DatasetError::LabelOutOfRange`].
    pub fn from_idx(images: IdxFile, labels: IdxFile) -> Result<Dataset> {
        const IMAGE_SHAPE: &str = "[n, rows, cols] with rows, cols >= 1";
        let [len, rows, cols] = check_dims(&images, IMAGE_SHAPE)?;
        // `rows · cols` is backed by the file's bytes only when `n ≥ 1`: an empty image file
        // may declare any row size, so the product is checked (it can overflow `usize` on
        // 32-bit targets).
        if rows == 0 || cols == 0 || rows.checked_mul(cols).is_none() {
            return Err(wrong_shape(&images, IMAGE_SHAPE));
        }
        let [n_labels] = check_dims(&labels, "[n]")?;
        if n_labels != len {
            return Err(dataset_error(
                &labels,
                DatasetError::CountMismatch {
                    images: len,
                    labels: n_labels,
                },
            ));
        }
        if let Some((index, &label)) = labels
            .data()
            .iter()
            .enumerate()
            .find(|(_, l)| **l >= CLASSES)
        {
            return Err(dataset_error(
                &labels,
                DatasetError::LabelOutOfRange {
                    index,
                    label,
                    classes: CLASSES,
                },
            ));
        }
        Ok(Dataset {
            images,
            labels,
            len,
            rows,
            cols,
        })
    }

    /// The number of images (and labels).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the dataset has no images.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pixels per image, `rows · cols` (784 for MNIST).
    ///
    /// For an empty dataset this is only what the header declares, backed by no bytes (a
    /// 16-byte file may declare 0 images of 65535 × 65535 pixels): a caller that allocates
    /// per pixel of a row (a model of `row_len()` visible units, [`mean_pixels`]) should
    /// refuse an empty dataset first, as `rbm train` does.
    pub fn row_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The image shape `(rows, cols)` (`(28, 28)` for MNIST); pixels are row-major.
    pub fn image_shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The pixels of image `i`: `row_len()` bytes, 0 (background) to 255, row-major.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn row(&self, i: usize) -> &[u8] {
        assert!(i < self.len, "row {i} out of range for {} rows", self.len);
        let n = self.row_len();
        &self.pixels()[i * n..(i + 1) * n]
    }

    /// All pixels: `len() × row_len()` bytes, image-major.
    pub fn pixels(&self) -> &[u8] {
        self.images.data()
    }

    /// The label of image `i`, in `0..CLASSES`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels()[i]
    }

    /// All labels: `len()` bytes, each in `0..CLASSES`.
    pub fn labels(&self) -> &[u8] {
        self.labels.data()
    }

    /// The image file.
    pub fn images_file(&self) -> &IdxFile {
        &self.images
    }

    /// The label file.
    pub fn labels_file(&self) -> &IdxFile {
        &self.labels
    }
}

/// Checks that `file` holds `u8` elements in `N` dimensions and returns them.
fn check_dims<const N: usize>(file: &IdxFile, expected: &'static str) -> Result<[usize; N]> {
    let header = file.header();
    if header.elem != ElemType::U8 {
        let kind = IdxError::WrongType {
            expected: ElemType::U8.name(),
            found: header.elem.name(),
        };
        return Err(idx_error(file, kind));
    }
    let dims: [u32; N] = header
        .dims
        .as_slice()
        .try_into()
        .map_err(|_| wrong_shape(file, expected))?;
    // u32 → usize is lossless on the 32- and 64-bit targets this crate supports.
    Ok(dims.map(|d| d as usize))
}

fn wrong_shape(file: &IdxFile, expected: &'static str) -> Error {
    let found = file.header().dims.clone();
    idx_error(file, IdxError::WrongShape { expected, found })
}

fn idx_error(file: &IdxFile, kind: IdxError) -> Error {
    Error::Idx {
        path: file.path().to_path_buf(),
        kind,
    }
}

fn dataset_error(file: &IdxFile, kind: DatasetError) -> Error {
    Error::Dataset {
        path: file.path().to_path_buf(),
        kind,
    }
}

/// One of the two standard splits of an MNIST-style dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (60,000 images for MNIST).
    Train,
    /// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (10,000 images for MNIST).
    Test,
}

impl Split {
    /// The standard image file name, without `.gz`.
    pub const fn images_file(self) -> &'static str {
        match self {
            Split::Train => "train-images-idx3-ubyte",
            Split::Test => "t10k-images-idx3-ubyte",
        }
    }

    /// The standard label file name, without `.gz`.
    pub const fn labels_file(self) -> &'static str {
        match self {
            Split::Train => "train-labels-idx1-ubyte",
            Split::Test => "t10k-labels-idx1-ubyte",
        }
    }
}

/// The path of the standard file `file` in `dir`: raw if present, else with `.gz` appended.
///
/// # Errors
/// [`DatasetError::MissingFile`] (with path `dir`) when neither exists.
pub fn find_file(dir: &Path, file: &'static str) -> Result<PathBuf> {
    let raw = dir.join(file);
    if raw.exists() {
        return Ok(raw);
    }
    let gz = dir.join(format!("{file}.gz"));
    if gz.exists() {
        return Ok(gz);
    }
    Err(Error::Dataset {
        path: dir.to_path_buf(),
        kind: DatasetError::MissingFile { file },
    })
}

/// Opens one split of the dataset in folder `dir`, each file raw or gzip'd (raw preferred),
/// read into memory ([`Dataset::open`]).
///
/// # Errors
/// [`DatasetError::MissingFile`] when a file is absent, then those of [`Dataset::open`].
pub fn open_split(dir: &Path, split: Split) -> Result<Dataset> {
    let images = find_file(dir, split.images_file())?;
    let labels = find_file(dir, split.labels_file())?;
    Dataset::open(images, labels)
}

/// [`open_split`] with raw files memory-mapped ([`Dataset::open_mapped`], and its condition:
/// the files must not change while the dataset lives).
///
/// # Errors
/// Those of [`open_split`].
pub fn open_split_mapped(dir: &Path, split: Split) -> Result<Dataset> {
    let images = find_file(dir, split.images_file())?;
    let labels = find_file(dir, split.labels_file())?;
    Dataset::open_mapped(images, labels)
}

/// The folders searched for datasets, in order: `$RBM_DATA` (if set and not empty), `./data`,
/// `/usr/share/datasets` (where Debian's `dataset-fashion-mnist` installs).
pub fn search_roots() -> Vec<PathBuf> {
    let mut roots = Vec::with_capacity(3);
    if let Some(dir) = std::env::var_os(DATA_ENV).filter(|d| !d.is_empty()) {
        roots.push(PathBuf::from(dir));
    }
    roots.push(PathBuf::from("data"));
    roots.push(PathBuf::from("/usr/share/datasets"));
    roots
}

/// Finds the folder of dataset `name` (e.g. `mnist`, `fashion-mnist`) in the default
/// [`search_roots`]; see [`find_dataset_in`].
///
/// # Errors
/// [`DatasetError::NotFound`] listing the folders tried.
pub fn find_dataset(name: &str) -> Result<PathBuf> {
    find_dataset_in(name, &search_roots())
}

/// The first `root/name` that is a folder holding the training images (raw or `.gz`).
///
/// # Errors
/// [`DatasetError::NotFound`] (with path `name`) listing every `root/name` tried.
pub fn find_dataset_in(name: &str, roots: &[PathBuf]) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = roots.iter().map(|r| r.join(name)).collect();
    let found = candidates
        .iter()
        .find(|dir| dir.is_dir() && find_file(dir, Split::Train.images_file()).is_ok());
    if let Some(dir) = found {
        return Ok(dir.clone());
    }
    let looked_in = candidates
        .iter()
        .map(|c| c.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::Dataset {
        path: PathBuf::from(name),
        kind: DatasetError::NotFound { looked_in },
    })
}

/// The mean of each pixel over all images, as a fraction of 255: `row_len()` values in
/// `[0, 1]` (all 0 for an empty dataset). The base-rate visible biases are their logits.
pub fn mean_pixels(ds: &Dataset) -> Vec<f64> {
    let n = ds.row_len();
    let mut sums = vec![0u64; n];
    for image in ds.pixels().chunks_exact(n) {
        for (s, &p) in sums.iter_mut().zip(image) {
            *s += u64::from(p);
        }
    }
    let scale = if ds.is_empty() {
        0.0
    } else {
        1.0 / (255.0 * ds.len() as f64)
    };
    sums.into_iter().map(|s| s as f64 * scale).collect()
}
