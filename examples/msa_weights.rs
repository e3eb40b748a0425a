//! Sequence weights of an aligned FASTA file: each sequence weighs 1 / (the sequences within
//! Hamming distance 0.2·L of it), the standard reweighting of protein families.
//!
//! `cargo run --release --example msa_weights [FASTA] [MAX_FRACTION]` (default: the lattice
//! proteins of `$RBM_DATA/proteins`, `../shared/data/proteins` otherwise; 0.2). Prints the
//! alignment's size, the effective number of sequences and the time the weights took.

use std::path::PathBuf;
use std::time::Instant;

use rbm::data::fasta::{Alphabet, Msa};

fn main() -> rbm::Result<()> {
    let data = std::env::var_os("RBM_DATA").map_or(PathBuf::from("../shared/data"), PathBuf::from);
    let path = std::env::args_os().nth(1).map_or(
        data.join("proteins/Lattice_Proteins_MSA.fasta.gz"),
        PathBuf::from,
    );
    let fraction = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.2);
    let t = Instant::now();
    let msa = Msa::open(&path, Alphabet::protein())?;
    let read = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let weights = msa.weights(fraction);
    let seconds = t.elapsed().as_secs_f64();
    let n_eff: f64 = weights.iter().sum();
    println!(
        "{}: {} sequences of {} columns (read in {read:.2} s); N_eff = {n_eff:.1} at distance < {fraction}·L; weights in {seconds:.2} s on {} threads",
        path.display(),
        msa.len(),
        msa.columns(),
        rayon::current_num_threads()
    );
    Ok(())
}
