//! `Dataset`, `open_split`, `find_dataset_in` and `mean_pixels` on small synthetic files: every
//! dataset error names its file or folder.

mod common;

use std::path::{Path, PathBuf};

use common::{TempDir, gzip, images, labels};
use rbm::data::{
    CLASSES, Dataset, IdxFile, Split, find_dataset_in, find_file, mean_pixels, open_split,
    open_split_mapped,
};
use rbm::{DatasetError, Error};

/// The `DatasetError` of `res`, checking its path and that the message names it.
fn dataset_err<T: std::fmt::Debug>(res: rbm::Result<T>, expected_path: &Path) -> DatasetError {
    let err = res.expect_err("expected an error");
    let msg = err.to_string();
    assert!(
        msg.contains(&expected_path.display().to_string()),
        "{msg:?} does not name {}",
        expected_path.display()
    );
    match err {
        Error::Dataset { path, kind } => {
            assert_eq!(path, expected_path);
            kind
        }
        other => panic!("expected Error::Dataset, got {other:?}"),
    }
}

/// Writes a split (raw files) of `n` 2×3 images into `dir`.
fn write_split(dir: &TempDir, split: Split, n: u32) -> (PathBuf, PathBuf) {
    let labs: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    (
        dir.write(split.images_file(), &images(n, 2, 3)),
        dir.write(split.labels_file(), &labels(&labs)),
    )
}

#[test]
fn open_valid_dataset() {
    let dir = TempDir::new("ds-valid");
    let (img, lab) = write_split(&dir, Split::Train, 5);
    let ds = Dataset::open(&img, &lab).unwrap();
    assert_eq!(ds.len(), 5);
    assert!(!ds.is_empty());
    assert_eq!(ds.row_len(), 6);
    assert_eq!(ds.image_shape(), (2, 3));
    assert_eq!(ds.pixels().len(), 30);
    assert_eq!(ds.row(2), &[84, 91, 98, 105, 112, 119]);
    assert_eq!(ds.labels(), &[0, 1, 2, 3, 4]);
    assert_eq!(ds.label(4), 4);
    assert!(!ds.images_file().is_mapped());
    assert_eq!(ds.images_file().path(), img);
    // The row is a slice of the file's bytes, not a copy; mapped, the same.
    let file_data = ds.images_file().data().as_ptr_range();
    assert!(file_data.contains(&ds.row(1).as_ptr()));
    let mapped = Dataset::open_mapped(&img, &lab).unwrap();
    assert!(mapped.images_file().is_mapped() && mapped.labels_file().is_mapped());
    assert_eq!(mapped.pixels(), ds.pixels());
    assert!(
        mapped
            .images_file()
            .data()
            .as_ptr_range()
            .contains(&mapped.row(1).as_ptr())
    );
}

#[test]
fn empty_dataset_is_allowed() {
    let images = IdxFile::from_bytes(common::idx_bytes(0x08, &[0, 28, 28], &[])).unwrap();
    let labels = IdxFile::from_bytes(common::idx_bytes(0x08, &[0], &[])).unwrap();
    let ds = Dataset::from_idx(images, labels).unwrap();
    assert!(ds.is_empty());
    assert_eq!(ds.row_len(), 784);
    assert_eq!(mean_pixels(&ds), vec![0.0; 784]);
}

#[test]
fn count_mismatch() {
    let dir = TempDir::new("ds-count");
    let img = dir.write("img", &images(4, 2, 2));
    let lab = dir.write("lab", &labels(&[1, 2, 3]));
    let kind = dataset_err(Dataset::open(&img, &lab), &lab);
    assert_eq!(
        kind,
        DatasetError::CountMismatch {
            images: 4,
            labels: 3
        }
    );
}

#[test]
fn label_out_of_range() {
    let dir = TempDir::new("ds-label");
    let img = dir.write("img", &images(4, 2, 2));
    let lab = dir.write("lab.gz", &gzip(&labels(&[9, 0, 10, 255])));
    let kind = dataset_err(Dataset::open(&img, &lab), &lab);
    assert_eq!(
        kind,
        DatasetError::LabelOutOfRange {
            index: 2,
            label: 10,
            classes: CLASSES
        }
    );
}

#[test]
fn missing_file() {
    let dir = TempDir::new("ds-missing");
    let kind = dataset_err(open_split(dir.path(), Split::Test), dir.path());
    assert_eq!(
        kind,
        DatasetError::MissingFile {
            file: "t10k-images-idx3-ubyte"
        }
    );
    dir.write("t10k-images-idx3-ubyte.gz", &gzip(&images(1, 1, 1)));
    let kind = dataset_err(open_split(dir.path(), Split::Test), dir.path());
    assert_eq!(
        kind,
        DatasetError::MissingFile {
            file: "t10k-labels-idx1-ubyte"
        }
    );
    dir.write("t10k-labels-idx1-ubyte", &labels(&[3]));
    let ds = open_split(dir.path(), Split::Test).unwrap();
    assert_eq!((ds.len(), ds.label(0)), (1, 3));
}

#[test]
fn raw_preferred_over_gz() {
    let dir = TempDir::new("ds-prefer");
    write_split(&dir, Split::Train, 3);
    // A .gz beside each raw file, with different contents.
    dir.write("train-images-idx3-ubyte.gz", &gzip(&images(2, 1, 1)));
    dir.write("train-labels-idx1-ubyte.gz", &gzip(&labels(&[0, 0])));
    let ds = open_split(dir.path(), Split::Train).unwrap();
    assert_eq!(ds.len(), 3);
    assert!(!ds.images_file().is_mapped() && !ds.labels_file().is_mapped());
    let mapped = open_split_mapped(dir.path(), Split::Train).unwrap();
    assert!(mapped.images_file().is_mapped() && mapped.labels_file().is_mapped());
    let found = find_file(dir.path(), "train-images-idx3-ubyte").unwrap();
    assert_eq!(found, dir.path().join("train-images-idx3-ubyte"));
}

#[test]
fn not_found_lists_every_candidate() {
    let a = TempDir::new("ds-nf-a");
    let b = TempDir::new("ds-nf-b");
    // b/mnist exists but holds no training images: not a candidate.
    std::fs::create_dir(b.path().join("mnist")).unwrap();
    let roots = [a.path().to_path_buf(), b.path().to_path_buf()];
    let kind = dataset_err(find_dataset_in("mnist", &roots), Path::new("mnist"));
    let DatasetError::NotFound { looked_in } = kind else {
        panic!("{kind:?}");
    };
    let expected: Vec<String> = roots
        .iter()
        .map(|r| r.join("mnist").display().to_string())
        .collect();
    assert_eq!(looked_in, expected.join(", "));
}

#[test]
fn find_dataset_follows_root_order() {
    let roots: Vec<TempDir> = (0..3)
        .map(|i| TempDir::new(&format!("ds-find{i}")))
        .collect();
    let paths: Vec<PathBuf> = roots.iter().map(|r| r.path().to_path_buf()).collect();
    // Root 0: a file (not a folder) named like the dataset; roots 1 and 2: real datasets.
    std::fs::write(paths[0].join("fashion-mnist"), b"not a folder").unwrap();
    for (i, root) in paths.iter().enumerate().skip(1) {
        let dir = root.join("fashion-mnist");
        std::fs::create_dir(&dir).unwrap();
        let name = if i == 1 {
            "train-images-idx3-ubyte.gz"
        } else {
            "train-images-idx3-ubyte"
        };
        std::fs::write(dir.join(name), gzip(&images(1, 1, 1))).unwrap();
    }
    assert_eq!(
        find_dataset_in("fashion-mnist", &paths).unwrap(),
        paths[1].join("fashion-mnist")
    );
    assert_eq!(
        find_dataset_in("fashion-mnist", &paths[2..]).unwrap(),
        paths[2].join("fashion-mnist")
    );
    assert!(find_dataset_in("fashion-mnist", &[]).is_err());
}

#[test]
fn is_directory() {
    let dir = TempDir::new("ds-isdir");
    let sub = dir.path().join("train-images-idx3-ubyte");
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(
        dataset_err(IdxFile::open(&sub), &sub),
        DatasetError::IsDirectory
    );
    // Also through open_split: the raw name exists (as a folder) and is preferred.
    dir.write("train-labels-idx1-ubyte", &labels(&[1]));
    assert_eq!(
        dataset_err(open_split(dir.path(), Split::Train), &sub),
        DatasetError::IsDirectory
    );
}

#[test]
fn io_error_for_a_nonexistent_file() {
    let dir = TempDir::new("ds-io");
    let img = dir.path().join("no-such-file");
    let lab = dir.write("lab", &labels(&[1]));
    let err = Dataset::open(&img, &lab).unwrap_err();
    assert!(
        err.to_string().contains(&img.display().to_string()),
        "{err}"
    );
    match err {
        Error::Io { path, source } => {
            assert_eq!(path, img);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

#[test]
fn mean_pixels_of_known_images() {
    // Two 1×2 images: [0, 255] and [51, 255].
    let images = common::idx_bytes(0x08, &[2, 1, 2], &[0, 255, 51, 255]);
    let ds = Dataset::from_idx(
        IdxFile::from_bytes(images).unwrap(),
        IdxFile::from_bytes(labels(&[0, 1])).unwrap(),
    )
    .unwrap();
    assert_eq!(mean_pixels(&ds), vec![0.1, 1.0]);
}
