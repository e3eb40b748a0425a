//! The real MNIST and Fashion-MNIST files in `$RBM_DATA` (default `../shared/data`): both splits
//! load through `.gz`, the inflated bytes have the published SHA-256, and a raw copy opens
//! memory-mapped with the same bytes. Without the folder the tests print "skipping: no data"
//! and pass, except under CI (env `CI` set), where they fail.

mod common;

use std::io::Read;
use std::path::PathBuf;

use common::{TempDir, data_dir};
use rbm::data::{
    CLASSES, Dataset, Split, find_dataset_in, mean_pixels, open_split, open_split_mapped,
};
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The expected SHA-256 of the four inflated files of a dataset (from `data/README.md`), in
/// the order train images, train labels, test images, test labels.
fn expected_hashes(name: &str) -> [&'static str; 4] {
    match name {
        "mnist" => [
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ],
        "fashion-mnist" => [
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ],
        _ => unreachable!("no hashes for {name}"),
    }
}

/// Checks one split of a real dataset: sizes, labels, hashes of the inflated files.
fn check_split(ds: &Dataset, split: Split, hashes: [&str; 2]) {
    let n = match split {
        Split::Train => 60_000,
        Split::Test => 10_000,
    };
    assert_eq!(ds.len(), n);
    assert_eq!(ds.row_len(), 784);
    assert_eq!(ds.image_shape(), (28, 28));
    assert_eq!(ds.pixels().len(), n * 784);
    assert!(ds.labels().iter().all(|&l| l < CLASSES));
    let mut per_class = [0usize; CLASSES as usize];
    ds.labels().iter().for_each(|&l| per_class[l as usize] += 1);
    assert!(per_class.iter().all(|&c| c > n / 20), "{per_class:?}");
    for (file, hash) in [ds.images_file(), ds.labels_file()].into_iter().zip(hashes) {
        assert!(
            !file.is_mapped(),
            "{} should be read through .gz",
            file.path().display()
        );
        assert_eq!(sha256_hex(file.bytes()), hash, "{}", file.path().display());
    }
}

/// Loads both splits of dataset `name` through `.gz` and checks them; returns the overall
/// mean grey level of the training images.
fn check_dataset(name: &str) -> Option<f64> {
    let dir = data_dir()?.join(name);
    let [train_img, train_lab, test_img, test_lab] = expected_hashes(name);
    let train = open_split(&dir, Split::Train).unwrap();
    check_split(&train, Split::Train, [train_img, train_lab]);
    let test = open_split(&dir, Split::Test).unwrap();
    check_split(&test, Split::Test, [test_img, test_lab]);
    let means = mean_pixels(&train);
    assert_eq!(means.len(), 784);
    assert!(means.iter().all(|m| (0.0..=1.0).contains(m)));
    Some(means.iter().sum::<f64>() / 784.0)
}

#[test]
fn mnist_loads_through_gz_with_published_hashes() {
    if let Some(mean) = check_dataset("mnist") {
        // The well-known MNIST training mean, 0.1307.
        assert!((mean - 0.1307).abs() < 1e-4, "mean {mean}");
    }
}

#[test]
fn fashion_mnist_loads_through_gz_with_published_hashes() {
    if let Some(mean) = check_dataset("fashion-mnist") {
        // The well-known Fashion-MNIST training mean, 0.2860.
        assert!((mean - 0.2860).abs() < 1e-4, "mean {mean}");
    }
}

#[test]
fn raw_copy_is_read_or_mapped_found_and_equal_to_gz() {
    let Some(data) = data_dir() else { return };
    let src = data.join("mnist");
    // A dataset folder `<tmp>/mnist` with the test split raw (inflated here by flate2
    // directly, not by the code under test) and the training images still gzip'd.
    let root = TempDir::new("real-raw");
    let dir = root.path().join("mnist");
    std::fs::create_dir(&dir).unwrap();
    for split_file in [Split::Test.images_file(), Split::Test.labels_file()] {
        let gz = std::fs::File::open(src.join(format!("{split_file}.gz"))).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut raw)
            .unwrap();
        std::fs::write(dir.join(split_file), raw).unwrap();
    }
    let train_gz = format!("{}.gz", Split::Train.images_file());
    std::fs::copy(src.join(&train_gz), dir.join(&train_gz)).unwrap();

    let found = find_dataset_in(
        "mnist",
        &[PathBuf::from("/nonexistent"), root.path().into()],
    );
    assert_eq!(found.unwrap(), dir);
    let raw = open_split(&dir, Split::Test).unwrap();
    assert!(!raw.images_file().is_mapped() && !raw.labels_file().is_mapped());
    let mapped = open_split_mapped(&dir, Split::Test).unwrap();
    assert!(mapped.images_file().is_mapped() && mapped.labels_file().is_mapped());
    assert_eq!(mapped.images_file().bytes(), raw.images_file().bytes());
    let gz = open_split(&src, Split::Test).unwrap();
    assert!(!gz.images_file().is_mapped());
    assert_eq!(raw.images_file().bytes(), gz.images_file().bytes());
    assert_eq!(raw.labels(), gz.labels());
    assert_eq!(raw.row(9999), gz.row(9999));
    let [.., test_img, test_lab] = expected_hashes("mnist");
    assert_eq!(sha256_hex(raw.images_file().bytes()), test_img);
    assert_eq!(sha256_hex(raw.labels_file().bytes()), test_lab);
    // The training split has no labels in this folder.
    assert!(open_split(&dir, Split::Train).is_err());
}
