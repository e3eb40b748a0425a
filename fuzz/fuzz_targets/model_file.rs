//! Raw bytes → `rbm::model_file::parse_model` → every value read → serialize → parse again
//! (see `rbm_fuzz::model_file`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rbm_fuzz::model_file(data);
});
