//! Raw bytes → `rbm::checkpoint::parse_checkpoint` → every value read, a trainer made from it
//! → serialize → parse again (see `rbm_fuzz::checkpoint`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rbm_fuzz::checkpoint(data);
});
