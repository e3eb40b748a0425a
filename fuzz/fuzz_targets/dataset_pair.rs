//! Two IDX files cut from one input (its first two bytes, little-endian, give the image file's
//! length) → `Dataset::from_idx` → every row and label read, pixel means, every row binarized
//! (see `rbm_fuzz::dataset_pair`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rbm_fuzz::dataset_pair(data);
});
