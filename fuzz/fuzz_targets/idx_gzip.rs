//! The `.gz` path, `IdxFile::from_gzip_bytes`: arbitrary bytes as the gzip stream (even first
//! byte), or arbitrary IDX bytes behind a valid gzip layer of one or two members, compared with
//! `idx::parse` (odd first byte); every element decoded (see `rbm_fuzz::idx_gzip`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rbm_fuzz::idx_gzip(data);
});
