//! Raw bytes → `rbm::data::fasta::parse_msa` → every code, deduplication, a split and the
//! sequence weights checked (see `rbm_fuzz::fasta`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rbm_fuzz::fasta(data);
});
