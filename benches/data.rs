//! Data kernels: sequence weights of an alignment (all pairs' Hamming distances below 0.2·L,
//! by bit-sliced counts), on random alignments shaped like the WW domain (31 columns) and the
//! lattice proteins (27 columns), with a family structure so that neighbour counts vary.
//!
//! `cargo bench --bench data`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rbm::StreamKey;
use rbm::data::fasta::{Alphabet, Msa, parse_msa};

/// `n` sequences of `l` columns: mutants (one column in 8) of 50 random ancestors.
fn family(n: usize, l: usize) -> Msa {
    let key = StreamKey::new(1);
    let symbols = Alphabet::protein();
    let symbol = |d: u32| char::from(symbols.symbols()[d as usize % 21]);
    let mut text = String::with_capacity(n * (l + 8));
    for i in 0..n as u64 {
        let ancestor = u64::from(key.draw(i << 32) % 50);
        text.push_str(&format!(">s{i}\n"));
        for c in 0..l as u64 {
            let mutate = key.draw((i << 32) + 1 + c).is_multiple_of(8);
            let d = if mutate {
                key.draw((i << 32) + 1000 + c)
            } else {
                key.draw((ancestor << 40) + c)
            };
            text.push(symbol(d));
        }
        text.push('\n');
    }
    parse_msa(text.as_bytes(), Alphabet::protein()).expect("a valid alignment")
}

fn weights(c: &mut Criterion) {
    let mut group = c.benchmark_group("msa_weights");
    group.sample_size(10);
    for (n, l) in [(6_003, 31), (20_000, 27)] {
        let msa = family(n, l);
        group.throughput(Throughput::Elements((n * n) as u64));
        group.bench_with_input(BenchmarkId::new(format!("L{l}"), n), &msa, |b, msa| {
            b.iter(|| black_box(msa.weights(0.2)))
        });
    }
    group.finish();
}

criterion_group!(benches, weights);
criterion_main!(benches);
