//! Binary (gather-add) against dense (GEMM) products for a batch of 0/1 rows, at several
//! densities: where the binary path stops paying is where `pass::MAX_BINARY_DENSITY` belongs.
//!
//! `h → v` of a 784–500 RBM, batch 64, one thread; throughput in rows/s.
//! `cargo bench --bench products`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rbm_kernels::binary::{Accumulate, Lists, binary_indices, gather_rows};
use rbm_kernels::{AlignedVec, Mat, MatMut, StreamKey, gemm};

const V: usize = 784;
const H: usize = 500;
const B: usize = 64;

fn products(c: &mut Criterion) {
    let key = StreamKey::new(1);
    // Aligned like the model's weights (`Rbm` keeps W on a cache line).
    let w = AlignedVec::from_slice(
        &(0..H * V)
            .map(|j| key.uniform_f64(j as u64) as f32 - 0.5)
            .collect::<Vec<_>>(),
    );
    let mut group = c.benchmark_group("h_to_v_784x500_b64");
    group.throughput(Throughput::Elements(B as u64));
    for density in [0.05, 0.15, 0.3, 0.5, 0.7] {
        let k = key.derive((density * 100.0) as u64);
        let h: Vec<f32> = (0..B * H)
            .map(|j| (k.draw(j as u64) < (density * u32::MAX as f64) as u32) as u8 as f32)
            .collect();
        let mut idx = vec![0u32; B * H];
        let mut nnz = vec![0u32; B];
        let mut out = vec![0.0f32; B * V];
        group.bench_with_input(BenchmarkId::new("binary", density), &density, |b, _| {
            b.iter(|| {
                for (r, (row, list)) in h.chunks(H).zip(idx.chunks_mut(H)).enumerate() {
                    nnz[r] = binary_indices(row, list).unwrap() as u32;
                }
                let lists = Lists {
                    idx: &idx,
                    stride: H,
                    nnz: &nnz,
                };
                gather_rows(&w, V, V, lists, &mut out, V, Accumulate::Set);
                black_box(&out);
            })
        });
        group.bench_with_input(BenchmarkId::new("dense", density), &density, |b, _| {
            b.iter(|| {
                gemm(
                    1.0,
                    Mat::row_major(&h, B, H),
                    Mat::row_major(&w, H, V),
                    0.0,
                    MatMut::row_major(&mut out, B, V),
                );
                black_box(&out);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, products);
criterion_main!(benches);
