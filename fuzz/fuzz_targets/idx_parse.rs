//! Raw bytes → `rbm::data::idx::{parse_header, parse}` → every element decoded; `IdxFile::from_bytes`
//! must agree (see `rbm_fuzz::idx_parse`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rbm_fuzz::idx_parse(data);
});
