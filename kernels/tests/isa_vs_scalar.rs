//! Every instruction set against the scalar references: bit-identity with the portable
//! (`Scalar`) ISA, accuracy against f64 and the libm oracle, tails over sizes 0..=67 and a
//! few large ones, NaN-poisoned padding around every buffer, and the statistics of the draws.
//!
//! Each check runs once per ISA (`<check>::scalar`, `<check>::avx2`, `<check>::avx512`);
//! an ISA the CPU lacks prints "skipping".

mod common;

use common::*;
use rbm_kernels::rng::{self, StreamKey};
use rbm_kernels::{Isa, api, scalar};

/// One `#[test]` per ISA for a check `fn(Isa)`.
macro_rules! per_isa {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            use rbm_kernels::Isa;
            #[test]
            fn scalar() {
                crate::common::on_isa(Isa::Scalar, super::$check);
            }
            #[test]
            fn avx2() {
                crate::common::on_isa(Isa::Avx2Fma, super::$check);
            }
            #[test]
            fn avx512() {
                crate::common::on_isa(Isa::Avx512, super::$check);
            }
        }
    )*};
}

per_isa!(
    sigmoid_affine_accurate_and_identical,
    sigmoid_dense_sweep_and_edges,
    sample_identical_and_near_oracle,
    bernoulli_matches_rng_for_every_p,
    draw_statistics,
    softplus_sum_accurate,
    softplus_terms_accurate,
    nonzero_indices_exact,
    no_subnormal_intermediates,
    softplus_sample_is_both_kernels,
    softplus_diff_is_the_difference,
    changed_indices_exact,
    softmax_identical_and_near_oracle,
    softmax_extremes,
    softmax_draws_follow_the_probabilities,
);

const SCALES: [f32; 3] = [1.0, 0.37, -2.5];

fn sigmoid_affine_accurate_and_identical(isa: Isa) {
    let root = StreamKey::new(11).derive(isa as u64);
    let mut worst = (0.0f64, 0.0f32);
    for n in sizes() {
        for (si, &scale) in SCALES.iter().enumerate() {
            let key = root.derive(n as u64).derive(si as u64);
            let pre = Padded::from_slice(&inputs(key.derive(0), n, 30.0, 0.1));
            let bias = Padded::from_slice(&inputs(key.derive(1), n, 3.0, 0.1));
            let mut prob = Padded::poisoned(n);
            api::sigmoid_affine_with(isa, pre.get(), scale, bias.get(), prob.get_mut());
            let what = format!("{} n={n} scale={scale}", isa.name());
            prob.assert_padding(&what);
            prob.assert_written(&what);
            let mut want = vec![0.0; n];
            api::sigmoid_affine_with(Isa::Scalar, pre.get(), scale, bias.get(), &mut want);
            assert_same(&what, prob.get(), &want);
            for j in 0..n {
                let x = scale.mul_add(pre.get()[j], bias.get()[j]);
                let got = prob.get()[j];
                if x.is_nan() {
                    assert!(got.is_nan(), "{what}: σ({x}) = {got}");
                    continue;
                }
                let err = (got as f64 - sigmoid_f64(x as f64)).abs();
                if err > worst.0 {
                    worst = (err, x);
                }
                assert!(err <= 2e-7, "{what}: σ({x}) = {got}, error {err:e}");
            }
        }
    }
    eprintln!(
        "{}: sigmoid_affine max abs error {:e} (at x = {})",
        isa.name(),
        worst.0,
        worst.1
    );
}

fn sigmoid_dense_sweep_and_edges(isa: Isa) {
    // [-100, 100] in steps of 1e-4, then 2^20 random bit patterns, then the edges.
    let mut x: Vec<f32> = (0..=2_000_000)
        .map(|i| (i as f64 * 1e-4 - 100.0) as f32)
        .collect();
    let key = StreamKey::new(5);
    x.extend((0..1u64 << 20).map(|j| f32::from_bits(key.draw(j))));
    x.extend(EXTREMES);
    let zero = vec![0.0f32; x.len()];
    let mut got = vec![0.0f32; x.len()];
    api::sigmoid_affine_with(isa, &x, 1.0, &zero, &mut got);
    let (mut worst, mut at) = (0.0f64, 0.0f32);
    for (&xi, &g) in x.iter().zip(&got) {
        if xi.is_nan() {
            assert!(g.is_nan(), "{}: σ(NaN) = {g}", isa.name());
            continue;
        }
        let err = (g as f64 - sigmoid_f64(xi as f64)).abs();
        if err > worst {
            (worst, at) = (err, xi);
        }
    }
    eprintln!(
        "{}: sigmoid max abs error {worst:e} at x = {at} over {} inputs",
        isa.name(),
        x.len()
    );
    assert!(
        worst <= 2e-7,
        "{}: max abs error {worst:e} at {at}",
        isa.name()
    );
    if isa != Isa::Scalar {
        let mut want = vec![0.0f32; x.len()];
        api::sigmoid_affine_with(Isa::Scalar, &x, 1.0, &zero, &mut want);
        assert_same(&format!("{} sweep", isa.name()), &got, &want);
    }
    // Exact values.
    let sig = |v: f32| {
        let mut o = [0.0f32];
        api::sigmoid_affine_with(isa, &[v], 1.0, &[0.0], &mut o);
        o[0]
    };
    assert_eq!(sig(0.0), 0.5);
    assert_eq!(sig(-0.0), 0.5);
    assert_eq!(sig(f32::INFINITY), 1.0);
    assert_eq!(sig(f32::NEG_INFINITY), 0.0);
    assert_eq!(sig(f32::MAX), 1.0);
    assert_eq!(sig(f32::MIN), 0.0);
    assert_eq!(sig(1e30), 1.0);
    assert_eq!(sig(-1e30), 0.0);
    assert_eq!(sig(17.0), 1.0);
    assert_eq!(sig(-88.0), 0.0);
    assert!(sig(f32::NAN).is_nan());
    assert!(sig(-f32::NAN).is_nan());
    // Monotone over the sweep.
    assert!(
        got[..=2_000_000].windows(2).all(|w| w[0] <= w[1]),
        "not monotone"
    );
}

fn sample_identical_and_near_oracle(isa: Isa) {
    let root = StreamKey::new(21);
    let (mut flips, mut close, mut total) = (0usize, 0usize, 0usize);
    for n in sizes() {
        for first in [0u64, 1, 7, (1 << 40) + 3] {
            for &scale in &SCALES[..2] {
                let key = root.derive(n as u64).derive(first);
                let pre = Padded::from_slice(&inputs(key.derive(0), n, 8.0, 0.05));
                let bias = Padded::from_slice(&inputs(key.derive(1), n, 2.0, 0.05));
                let mut prob = Padded::poisoned(n);
                let mut state = Padded::poisoned(n);
                api::sigmoid_affine_sample_with(
                    isa,
                    pre.get(),
                    scale,
                    bias.get(),
                    key,
                    first,
                    prob.get_mut(),
                    state.get_mut(),
                );
                let what = format!("{} n={n} first={first} scale={scale}", isa.name());
                for (b, name) in [(&prob, "prob"), (&state, "state")] {
                    b.assert_padding(&format!("{what} {name}"));
                    b.assert_written(&format!("{what} {name}"));
                }
                // Bit-identical to the portable ISA, and to sigmoid_affine + rng::bernoulli.
                let (mut p2, mut s2) = (vec![0.0; n], vec![0.0; n]);
                api::sigmoid_affine_sample_with(
                    Isa::Scalar,
                    pre.get(),
                    scale,
                    bias.get(),
                    key,
                    first,
                    &mut p2,
                    &mut s2,
                );
                assert_same(&format!("{what} prob"), prob.get(), &p2);
                assert_same(&format!("{what} state"), state.get(), &s2);
                let mut p3 = vec![0.0; n];
                api::sigmoid_affine_with(isa, pre.get(), scale, bias.get(), &mut p3);
                assert_same(&format!("{what} prob vs sigmoid_affine"), prob.get(), &p3);
                for j in 0..n {
                    let want = rng::bernoulli(prob.get()[j], key.draw(first + j as u64));
                    assert_eq!(state.get()[j].to_bits(), want.to_bits(), "{what} j={j}");
                }
                // Against the libm oracle: equal samples except where the draw is within
                // 1e-6 of the probability.
                let (mut po, mut so) = (vec![0.0; n], vec![0.0; n]);
                scalar::sigmoid_affine_sample(
                    pre.get(),
                    scale,
                    bias.get(),
                    key,
                    first,
                    &mut po,
                    &mut so,
                );
                for j in 0..n {
                    let (p, o) = (prob.get()[j], po[j]);
                    assert!(
                        same(p, o) || (p - o).abs() <= 4e-7,
                        "{what} j={j}: prob {p} vs oracle {o}"
                    );
                    let u = key.draw(first + j as u64) as f64 / 4_294_967_296.0;
                    let near = (u - o as f64).abs() < 1e-6;
                    close += near as usize;
                    total += 1;
                    if state.get()[j] != so[j] {
                        assert!(near, "{what} j={j}: sample flipped with u={u}, p={o}");
                        flips += 1;
                    }
                }
            }
        }
    }
    eprintln!(
        "{}: {flips} samples differ from the libm oracle, of {close} draws within 1e-6 of p ({total} samples)",
        isa.name()
    );
}

fn bernoulli_matches_rng_for_every_p(isa: Isa) {
    let root = StreamKey::new(31);
    // Probabilities at the thresholds: k / 2^24 and its neighbours.
    let edges: Vec<f32> = [1u32, 2, 255, 1 << 23, (1 << 24) - 1]
        .iter()
        .flat_map(|&k| {
            let p = k as f32 / 16_777_216.0;
            [
                p,
                f32::from_bits(p.to_bits() - 1),
                f32::from_bits(p.to_bits() + 1),
            ]
        })
        .chain([1.0, 0.999_999_94, 1.000_000_1, 2.0, 128.0, 1e30, -1e-30])
        .collect();
    for n in sizes() {
        for first in [0u64, 1, 2, 15, 16, 17, u64::MAX - 5000] {
            let key = root.derive(n as u64).derive(first);
            let mut p = inputs(key.derive(0), n, 1.0, 0.2);
            for (j, v) in p.iter_mut().enumerate() {
                if j % 7 == 3 {
                    *v = v.abs(); // more probabilities inside [0, 1]
                } else if j % 11 == 5 {
                    *v = edges[j % edges.len()];
                }
            }
            let p = Padded::from_slice(&p);
            let mut state = Padded::poisoned(n);
            api::bernoulli_with(isa, p.get(), key, first, state.get_mut());
            let what = format!("{} n={n} first={first}", isa.name());
            state.assert_padding(&what);
            for j in 0..n {
                let want = rng::bernoulli(p.get()[j], key.draw(first + j as u64));
                assert_eq!(
                    state.get()[j].to_bits(),
                    want.to_bits(),
                    "{what} j={j} p={}",
                    p.get()[j]
                );
            }
        }
    }
}

#[test]
fn same_draws_on_every_isa_and_for_split_rows() {
    let key = StreamKey::new(2024).derive(7);
    let n = 100;
    let pre = inputs(key.derive(0), n, 4.0, 0.0);
    let bias = inputs(key.derive(1), n, 1.0, 0.0);
    for first in [0u64, 1, 2, 3, 15, 16, 17, 31, 1001] {
        let mut runs = Vec::new();
        for isa in Isa::available() {
            let (mut prob, mut state) = (vec![0.0; n], vec![0.0; n]);
            api::sigmoid_affine_sample_with(
                isa, &pre, 1.0, &bias, key, first, &mut prob, &mut state,
            );
            for j in 0..n {
                let want = rng::bernoulli(prob[j], key.draw(first + j as u64));
                assert_eq!(state[j], want, "{} first={first} j={j}", isa.name());
            }
            let mut again = vec![0.0; n];
            api::bernoulli_with(isa, &prob, key, first, &mut again);
            assert_same(&format!("{} bernoulli", isa.name()), &again, &state);
            // A row split anywhere draws the same numbers as the whole row.
            for cut in [1, 7, 8, 9, 16, 33, 99] {
                let mut split = vec![0.0; n];
                api::bernoulli_with(isa, &prob[..cut], key, first, &mut split[..cut]);
                api::bernoulli_with(
                    isa,
                    &prob[cut..],
                    key,
                    first + cut as u64,
                    &mut split[cut..],
                );
                assert_same(&format!("{} cut={cut}", isa.name()), &split, &state);
            }
            runs.push((isa, prob, state));
        }
        for (isa, prob, state) in &runs[1..] {
            assert_same(
                &format!("{} prob first={first}", isa.name()),
                prob,
                &runs[0].1,
            );
            assert_same(
                &format!("{} state first={first}", isa.name()),
                state,
                &runs[0].2,
            );
        }
    }
}

/// Pearson correlation of paired samples.
fn correlation(pairs: impl Iterator<Item = (f32, f32)>) -> (f64, usize) {
    let (mut n, mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0usize, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (x, y) in pairs {
        let (x, y) = (x as f64, y as f64);
        n += 1;
        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
    }
    let nf = n as f64;
    let cov = sxy / nf - sx / nf * sy / nf;
    let vx = sxx / nf - (sx / nf).powi(2);
    let vy = syy / nf - (sy / nf).powi(2);
    (cov / (vx * vy).sqrt(), n)
}

fn draw_statistics(isa: Isa) {
    let p = 0.13f32;
    let (rows, cols) = (1000usize, 1000usize);
    let parent = StreamKey::new(99).derive(1);
    for first in [0u64, 1] {
        let probs = vec![p; cols];
        let mut s = vec![0.0f32; rows * cols];
        for (r, row) in s.chunks_mut(cols).enumerate() {
            api::bernoulli_with(isa, &probs, parent.derive(r as u64), first, row);
        }
        let n = s.len() as f64;
        let mean = s.iter().map(|&v| v as f64).sum::<f64>() / n;
        let sd = (p as f64 * (1.0 - p as f64) / n).sqrt();
        let lanes = correlation(
            s.chunks(cols)
                .flat_map(|row| row.windows(2).map(|w| (w[0], w[1]))),
        );
        let across = correlation(
            s.chunks(cols)
                .zip(s.chunks(cols).skip(1))
                .flat_map(|(a, b)| a.iter().copied().zip(b.iter().copied())),
        );
        // Lanes 16 apart (one AVX-512 vector) and 8 apart (one AVX2 vector).
        let lag16 = correlation(
            s.chunks(cols)
                .flat_map(|row| row.iter().copied().zip(row[16..].iter().copied())),
        );
        let lag8 = correlation(
            s.chunks(cols)
                .flat_map(|row| row.iter().copied().zip(row[8..].iter().copied())),
        );
        eprintln!(
            "{} first={first}: mean {mean:.5} (p {p}, σ {sd:.1e}); lag-1 correlation across lanes {:.1e}, across rows {:.1e}, lag 8 {:.1e}, lag 16 {:.1e}",
            isa.name(),
            lanes.0,
            across.0,
            lag8.0,
            lag16.0
        );
        assert!((mean - p as f64).abs() < 5.0 * sd, "mean {mean}");
        for (what, (c, m)) in [
            ("lanes", lanes),
            ("rows", across),
            ("lag 8", lag8),
            ("lag 16", lag16),
        ] {
            let bound = 3.0 / (m as f64).sqrt();
            assert!(
                c.abs() < bound,
                "{} {what}: correlation {c} ≥ {bound}",
                isa.name()
            );
        }
    }
}

fn softplus_sum_accurate(isa: Isa) {
    let root = StreamKey::new(41);
    let mut worst = 0.0f64;
    let mut check = |n: usize, width: f64, scale: f32, k: u64| {
        let key = root.derive(n as u64).derive(k);
        let pre = Padded::from_slice(&inputs(key.derive(0), n, width, 0.0));
        let bias = Padded::from_slice(&inputs(key.derive(1), n, 2.0, 0.0));
        let got = api::softplus_sum_affine_with(isa, pre.get(), scale, bias.get());
        let want: f64 = (0..n)
            .map(|j| softplus_f64(scale.mul_add(pre.get()[j], bias.get()[j]) as f64))
            .sum();
        let rel = if want == 0.0 {
            got.abs()
        } else {
            (got - want).abs() / want
        };
        worst = worst.max(rel);
        assert!(
            rel <= 1e-6,
            "{} n={n} width={width} scale={scale}: {got} vs {want}, relative error {rel:e}",
            isa.name()
        );
        let portable = api::softplus_sum_affine_with(Isa::Scalar, pre.get(), scale, bias.get());
        assert!(
            (got - portable).abs() <= 2e-6 * want,
            "{}: {got} vs portable {portable}",
            isa.name()
        );
    };
    for n in sizes().into_iter().chain([10_000]) {
        for (k, (width, scale)) in [(5.0, 1.0f32), (40.0, 1.0), (80.0, 0.5), (20.0, -1.3)]
            .into_iter()
            .enumerate()
        {
            check(n, width, scale, k as u64);
        }
    }
    // Mostly tiny terms: the sum is dominated by e^x for x far below 0.
    check(10_000, 10.0, 1.0, 99);
    eprintln!(
        "{}: softplus_sum_affine max relative error {worst:e}",
        isa.name()
    );
    let sum = |x: &[f32]| api::softplus_sum_affine_with(isa, x, 1.0, &vec![0.0; x.len()]);
    assert_eq!(sum(&[]), 0.0);
    assert!(sum(&[1.0, f32::NAN, 2.0]).is_nan());
    assert_eq!(sum(&[1.0, f32::INFINITY]), f64::INFINITY);
    assert_eq!(sum(&[f32::NEG_INFINITY; 20]), 0.0);
    assert_eq!(sum(&[1e30; 3]), 3.0 * (1e30f32 as f64));
    assert!((sum(&[0.0; 17]) - 17.0 * std::f64::consts::LN_2).abs() < 1e-5);
}

fn softplus_terms_accurate(isa: Isa) {
    // One term at a time (each call is a 1-element tail): x in [-87, 100] in steps of 1e-3.
    let (mut worst, mut at) = (0.0f64, 0.0f32);
    for i in 0..=187_000 {
        let x = (i as f64 * 1e-3 - 87.0) as f32;
        let got = api::softplus_sum_affine_with(isa, &[x], 1.0, &[0.0]);
        let want = softplus_f64(x as f64);
        let rel = (got - want).abs() / want;
        if rel > worst {
            (worst, at) = (rel, x);
        }
    }
    eprintln!(
        "{}: softplus max relative error {worst:e} at x = {at}",
        isa.name()
    );
    assert!(
        worst <= 1e-6,
        "{}: softplus relative error {worst:e} at {at}",
        isa.name()
    );
}

/// The x86 MXCSR underflow (UE) and denormal-operand (DE) flags, cleared beforehand.
#[cfg(target_arch = "x86_64")]
#[allow(deprecated)] // _mm_getcsr / _mm_setcsr: the only stable way to read the flags.
fn float_flags_after(f: impl FnOnce()) -> (bool, bool) {
    use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
    const FLAGS: u32 = 0x3f;
    // SAFETY: SSE is part of x86_64; only the sticky exception flags are changed.
    unsafe { _mm_setcsr(_mm_getcsr() & !FLAGS) };
    f();
    // SAFETY: as above.
    let csr = unsafe { _mm_getcsr() };
    (csr & 0x10 != 0, csr & 0x2 != 0)
}

/// Subnormal intermediates cost a microcode assist per operation (30× slower: softplus took
/// 21 ns per element instead of 0.7 for |x| ≈ 43…51 before its series was floored). For
/// |x| ≤ 86, where every result is normal, no intermediate may underflow either.
fn no_subnormal_intermediates(isa: Isa) {
    #[cfg(target_arch = "x86_64")]
    {
        let xs: Vec<f32> = (0..=172_000)
            .map(|i| (i as f64 * 1e-3 - 86.0) as f32)
            .collect();
        let zeros = vec![0.0f32; xs.len()];
        let (ue, de) = float_flags_after(|| {
            std::hint::black_box(api::softplus_sum_affine_with(isa, &xs, 1.0, &zeros));
        });
        assert!(
            !ue && !de,
            "{}: softplus underflow {ue}, denormal {de}",
            isa.name()
        );
        let (mut p, mut st) = (zeros.clone(), zeros.clone());
        let (ue, de) = float_flags_after(|| {
            api::sigmoid_affine_sample_with(
                isa,
                &xs,
                1.0,
                &zeros,
                StreamKey::new(3),
                0,
                &mut p,
                &mut st,
            );
            std::hint::black_box(&p);
        });
        assert!(
            !ue && !de,
            "{}: sigmoid underflow {ue}, denormal {de}",
            isa.name()
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = isa;
}

/// The fused AIS kernel writes what `sigmoid_affine_sample` writes and returns what
/// `softplus_sum_affine` returns on the same ISA, bit for bit; and the sum is near the oracle.
fn softplus_sample_is_both_kernels(isa: Isa) {
    let root = StreamKey::new(61);
    for n in sizes().into_iter().chain([10_000]) {
        for (first, &scale) in [0u64, 5, (1 << 33) + 1].into_iter().zip(&SCALES) {
            let key = root.derive(n as u64).derive(first);
            let mut x = inputs(key.derive(0), n, 60.0, 0.05);
            // Extremes in the middle of a vector and in a tail.
            for (j, v) in [
                (3, f32::INFINITY),
                (5, f32::NEG_INFINITY),
                (9, 1e30),
                (n / 2, -1e30),
            ] {
                if j < n {
                    x[j] = v;
                }
            }
            let pre = Padded::from_slice(&x);
            let bias = Padded::from_slice(&inputs(key.derive(1), n, 2.0, 0.0));
            let (mut prob, mut state) = (Padded::poisoned(n), Padded::poisoned(n));
            let sum = api::softplus_sum_affine_sample_with(
                isa,
                pre.get(),
                scale,
                bias.get(),
                key,
                first,
                prob.get_mut(),
                state.get_mut(),
            );
            let what = format!("{} n={n} first={first} scale={scale}", isa.name());
            for (b, name) in [(&prob, "prob"), (&state, "state")] {
                b.assert_padding(&format!("{what} {name}"));
                b.assert_written(&format!("{what} {name}"));
            }
            let (mut p2, mut s2) = (vec![0.0; n], vec![0.0; n]);
            api::sigmoid_affine_sample_with(
                isa,
                pre.get(),
                scale,
                bias.get(),
                key,
                first,
                &mut p2,
                &mut s2,
            );
            assert_same(&format!("{what} prob"), prob.get(), &p2);
            assert_same(&format!("{what} state"), state.get(), &s2);
            let alone = api::softplus_sum_affine_with(isa, pre.get(), scale, bias.get());
            assert!(
                sum.to_bits() == alone.to_bits() || (sum.is_nan() && alone.is_nan()),
                "{what}: fused sum {sum} vs softplus_sum_affine {alone}"
            );
            let (mut po, mut so) = (vec![0.0; n], vec![0.0; n]);
            let oracle = scalar::softplus_sum_affine_sample(
                pre.get(),
                scale,
                bias.get(),
                key,
                first,
                &mut po,
                &mut so,
            );
            let rel = (sum - oracle).abs() / oracle.abs().max(1e-30);
            let both_nan = sum.is_nan() && oracle.is_nan();
            assert!(
                sum == oracle || both_nan || rel <= 1e-6,
                "{what}: {sum} vs oracle {oracle}"
            );
        }
    }
    // NaN in, NaN out, in the sum and the probability.
    let (mut p, mut st) = (vec![0.0; 3], vec![0.0; 3]);
    let nan = api::softplus_sum_affine_sample_with(
        isa,
        &[1.0, f32::NAN, 2.0],
        1.0,
        &[0.0; 3],
        StreamKey::new(1),
        0,
        &mut p,
        &mut st,
    );
    assert!(nan.is_nan() && p[1].is_nan(), "{}", isa.name());
}

/// The AIS increment kernel: within rounding of the f64 oracle (the difference of the two
/// softplus sums of the same f32 arguments), its sample bit for bit `sigmoid_affine_sample`
/// at `to`, the sampling and plain versions the same sum, and exactly 0 between equal
/// temperatures. Sizes up to 10,000 cross several of its folds (one per 32 vectors).
fn softplus_diff_is_the_difference(isa: Isa) {
    let root = StreamKey::new(71);
    let temperatures = [
        (0.0, 1e-4),
        (0.5, 0.500_1),
        (0.999_9, 1.0),
        (0.3, 0.9),
        (0.8, 0.2),
    ];
    for n in sizes().into_iter().chain([2000, 10_000]) {
        for (t, &(from, to)) in temperatures.iter().enumerate() {
            let key = root.derive(n as u64).derive(t as u64);
            let pre = Padded::from_slice(&inputs(key.derive(0), n, 60.0, 0.0));
            let c = inputs(key.derive(1), n, 2.0, 0.0);
            let scaled =
                |beta: f32| Padded::from_slice(&c.iter().map(|&x| beta * x).collect::<Vec<_>>());
            let (bf, bt) = (scaled(from), scaled(to));
            let (mut prob, mut state) = (Padded::poisoned(n), Padded::poisoned(n));
            let what = format!("{} n={n} from={from} to={to}", isa.name());
            let sum = api::softplus_diff_affine_sample_with(
                isa,
                pre.get(),
                (from, bf.get()),
                (to, bt.get()),
                key,
                7,
                prob.get_mut(),
                state.get_mut(),
            );
            for (b, name) in [(&prob, "prob"), (&state, "state")] {
                b.assert_padding(&format!("{what} {name}"));
                b.assert_written(&format!("{what} {name}"));
            }
            let (mut p2, mut s2) = (vec![0.0; n], vec![0.0; n]);
            api::sigmoid_affine_sample_with(isa, pre.get(), to, bt.get(), key, 7, &mut p2, &mut s2);
            assert_same(&format!("{what} prob"), prob.get(), &p2);
            assert_same(&format!("{what} state"), state.get(), &s2);
            let plain =
                api::softplus_diff_affine_with(isa, pre.get(), (from, bf.get()), (to, bt.get()));
            assert!(
                sum.to_bits() == plain.to_bits() || (sum.is_nan() && plain.is_nan()),
                "{what}: sampling version {sum} vs plain {plain}"
            );
            let oracle = scalar::softplus_diff_affine(pre.get(), (from, bf.get()), (to, bt.get()));
            // Per element: the max parts' f32 subtraction (half an ulp of the larger
            // argument), the exponentials (2 ulp) and the products' roundings.
            let scale: f64 = pre
                .get()
                .iter()
                .zip(c.iter())
                .map(|(&x, &cj)| {
                    let (a, b) = (to.mul_add(x, to * cj), from.mul_add(x, from * cj));
                    6e-8 * (a.abs() as f64 + b.abs() as f64) + 4e-7
                })
                .sum();
            assert!(oracle.is_finite(), "{what}: oracle {oracle}");
            assert!(
                (sum - oracle).abs() <= scale,
                "{what}: {sum} vs oracle {oracle} (tolerance {scale})"
            );
            let zero =
                api::softplus_diff_affine_with(isa, pre.get(), (to, bt.get()), (to, bt.get()));
            assert_eq!(zero, 0.0, "{what}: equal temperatures");
        }
    }
    softplus_diff_extremes(isa);
}

/// The increment kernel's special values, each in a row of its own: a NaN in a full vector,
/// in a partial tail vector and in the second fold (NaN out); ±∞ inputs and infinite or zero
/// temperatures (tails included) against the oracle; extremes at equal temperatures.
fn softplus_diff_extremes(isa: Isa) {
    let what = isa.name();
    for n in [5, 16, 17, 40, 600, 1100] {
        for j in [0, n - 1, n / 2, 520.min(n - 1)] {
            let mut x = vec![0.5f32; n];
            x[j] = f32::NAN;
            let b = vec![0.1f32; n];
            let d = api::softplus_diff_affine_with(isa, &x, (0.3, &b), (0.4, &b));
            assert!(d.is_nan(), "{what} n={n}: NaN at {j} gave {d}");
        }
    }
    let cases: [(&[f32], f32, f32); 7] = [
        (&[f32::NEG_INFINITY, 1.0, -2.0], 0.5, 0.6),
        (&[1.0; 9], 0.5, f32::INFINITY),
        (&[-1.0; 9], 0.5, f32::INFINITY),
        (&[1.0; 21], 0.0, 1.0),
        (&[f32::INFINITY, 1.0], 0.5, 0.6),
        (&[f32::INFINITY, 1.0], 0.0, 0.6),
        (&[1e30, -1e30, f32::MAX, f32::MIN], 0.5, 0.6),
    ];
    for (x, from, to) in cases {
        let zeros = vec![0.0f32; x.len()];
        let got = api::softplus_diff_affine_with(isa, x, (from, &zeros), (to, &zeros));
        let want = scalar::softplus_diff_affine(x, (from, &zeros), (to, &zeros));
        let ok = got == want
            || (got.is_nan() && want.is_nan())
            || (got - want).abs() <= 1e-6 * want.abs().max(1.0);
        assert!(ok, "{what} {x:?} {from}→{to}: {got} vs oracle {want}");
    }
    let x = [f32::MAX, f32::MIN, 1e30, -87.0, 88.8, 0.0, -0.0];
    let b = [0.0f32; 7];
    let d = api::softplus_diff_affine_with(isa, &x, (0.7, &b), (0.7, &b));
    assert_eq!(d, 0.0, "{what}: equal temperatures with extremes");
}

fn nonzero_indices_exact(isa: Isa) {
    let root = StreamKey::new(51);
    for n in sizes() {
        for (k, density) in [0.0, 0.01, 0.13, 0.5, 0.97, 1.0].into_iter().enumerate() {
            let key = root.derive(n as u64).derive(k as u64);
            let x: Vec<f32> = (0..n as u64)
                .map(|j| {
                    if unif(key, 2 * j) < density {
                        // Ones mostly, and every other kind of nonzero.
                        [1.0, 1.0, 1.0, f32::NAN, -3.5, 1e-40, f32::INFINITY][j as usize % 7]
                    } else if j % 3 == 0 {
                        -0.0
                    } else {
                        0.0
                    }
                })
                .collect();
            let x = Padded::from_slice(&x);
            let mut want = vec![0u32; n];
            let count_want = scalar::nonzero_indices(x.get(), &mut want);
            let mut out = Padded::poisoned_u32(n);
            let what = format!("{} n={n} density={density}", isa.name());
            // Give the kernel the data and the trailing padding: it may use `out.len() ≥ n`
            // but must write only `out[..count]`.
            let count = api::nonzero_indices_with(isa, x.get(), out.tail_mut());
            assert_eq!(count, count_want, "{what}");
            assert_eq!(&out.tail()[..count], &want[..count], "{what}");
            assert!(
                out.tail()[count..].iter().all(|&v| v == u32::MAX),
                "{what}: wrote past count"
            );
            assert!(
                out.leading().iter().all(|&v| v == u32::MAX),
                "{what}: wrote before out"
            );
        }
    }
}

fn changed_indices_exact(isa: Isa) {
    let root = StreamKey::new(53);
    for n in sizes().into_iter().chain([784, 10_000]) {
        for (k, rate) in [0.0, 0.01, 0.1, 0.5, 1.0].into_iter().enumerate() {
            let key = root.derive(n as u64).derive(k as u64);
            let old: Vec<f32> = (0..n as u64)
                .map(|j| (unif(key, 3 * j) < 0.3) as u8 as f32)
                .collect();
            // Flips mostly, and the special cases: NaN (always a change, even against NaN),
            // −0.0 against 0.0 (no change), tiny and infinite values.
            let new: Vec<f32> = old
                .iter()
                .enumerate()
                .map(|(j, &a)| {
                    if unif(key, 3 * j as u64 + 1) >= rate {
                        return if a == 0.0 && j % 5 == 0 { -0.0 } else { a };
                    }
                    [1.0 - a, 1.0 - a, 1.0 - a, f32::NAN, 1e-40, f32::INFINITY][j % 6]
                })
                .collect();
            let mut old = old;
            if n > 3 && k == 2 {
                (old[1], old[3]) = (f32::NAN, f32::NAN);
            }
            let (old, new) = (Padded::from_slice(&old), Padded::from_slice(&new));
            let mut want = vec![0u32; n];
            let count_want = scalar::changed_indices(old.get(), new.get(), &mut want);
            let mut out = Padded::poisoned_u32(n);
            let what = format!("{} n={n} rate={rate}", isa.name());
            let count = api::changed_indices_with(isa, old.get(), new.get(), out.tail_mut());
            assert_eq!(count, count_want, "{what}");
            assert_eq!(&out.tail()[..count], &want[..count], "{what}");
            assert!(
                out.tail()[count..].iter().all(|&v| v == u32::MAX),
                "{what}: wrote past count"
            );
            assert!(
                out.leading().iter().all(|&v| v == u32::MAX),
                "{what}: wrote before out"
            );
        }
    }
}

#[test]
fn dispatched_api_agrees_with_current_isa() {
    let isa = Isa::current();
    let key = StreamKey::new(8);
    let pre = inputs(key.derive(0), 333, 6.0, 0.05);
    let bias = inputs(key.derive(1), 333, 1.0, 0.05);
    let (mut a, mut b) = (vec![0.0; 333], vec![0.0; 333]);
    api::sigmoid_affine(&pre, 0.8, &bias, &mut a);
    api::sigmoid_affine_with(isa, &pre, 0.8, &bias, &mut b);
    assert_same("sigmoid_affine", &a, &b);
    let (mut sa, mut sb) = (vec![0.0; 333], vec![0.0; 333]);
    api::sigmoid_affine_sample(&pre, 0.8, &bias, key, 5, &mut a, &mut sa);
    api::sigmoid_affine_sample_with(isa, &pre, 0.8, &bias, key, 5, &mut b, &mut sb);
    assert_same("sample", &sa, &sb);
    api::bernoulli(&a, key, 9, &mut sa);
    api::bernoulli_with(isa, &a, key, 9, &mut sb);
    assert_same("bernoulli", &sa, &sb);
    assert_eq!(
        api::softplus_sum_affine(&pre, 0.8, &bias).to_bits(),
        api::softplus_sum_affine_with(isa, &pre, 0.8, &bias).to_bits()
    );
    let (mut ia, mut ib) = (vec![0u32; 333], vec![0u32; 333]);
    let c = api::nonzero_indices(&sa, &mut ia);
    assert_eq!(c, api::nonzero_indices_with(isa, &sa, &mut ib));
    assert_eq!(ia, ib);
    assert!(rbm_kernels::dispatch::used().contains(&isa));
}

#[test]
#[should_panic(expected = "bias has length 3, expected 4")]
fn sigmoid_length_mismatch_panics() {
    api::sigmoid_affine(&[0.0; 4], 1.0, &[0.0; 3], &mut [0.0; 4]);
}

#[test]
#[should_panic(expected = "state has length 5, expected 4")]
fn sample_length_mismatch_panics() {
    let key = StreamKey::new(1);
    api::sigmoid_affine_sample(
        &[0.0; 4],
        1.0,
        &[0.0; 4],
        key,
        0,
        &mut [0.0; 4],
        &mut [0.0; 5],
    );
}

#[test]
#[should_panic(expected = "overflow u64")]
fn draw_index_overflow_panics() {
    api::bernoulli(&[0.5; 4], StreamKey::new(1), u64::MAX - 2, &mut [0.0; 4]);
}

#[test]
#[should_panic(expected = "out.len() ≥ x.len()")]
fn short_index_output_panics() {
    api::nonzero_indices(&[1.0; 4], &mut [0; 3]);
}

#[test]
fn kernels_are_usable_generically() {
    use rbm_kernels::Kernel;
    fn half_step<K: Kernel>(k: K, pre: &[f32], bias: &[f32], key: StreamKey) -> Vec<f32> {
        let (mut p, mut s) = (vec![0.0; pre.len()], vec![0.0; pre.len()]);
        k.sigmoid_affine_sample(pre, 1.0, bias, key, 0, &mut p, &mut s);
        s
    }
    let key = StreamKey::new(3);
    let pre = inputs(key, 77, 3.0, 0.0);
    let bias = vec![0.1; 77];
    let want = half_step(rbm_kernels::kernel::Scalar, &pre, &bias, key);
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(k) = rbm_kernels::kernel::Avx2Fma::try_new() {
            assert_eq!(half_step(k, &pre, &bias, key), want);
        }
        if let Some(k) = rbm_kernels::kernel::Avx512::try_new() {
            assert_eq!(half_step(k, &pre, &bias, key), want);
        }
    }
    assert_eq!(want.len(), 77);
}

/// Group sizes of the softmax tests: binary, DNA (4, 5), around the 16 lanes, proteins (21),
/// and past the 32 states whose exponentials the kernels keep (33, 40).
const QS: [usize; 10] = [1, 2, 3, 4, 5, 16, 17, 21, 33, 40];

/// The lowest |unit(u) − c_a| over the cumulative probabilities of a group.
fn boundary_distance(p: &[f32], u: u32) -> f64 {
    let uf = rng::unit(u) as f64;
    let mut c = 0.0f32;
    let mut best = f64::INFINITY;
    for &pa in p {
        c += pa;
        best = best.min((uf - c as f64).abs());
    }
    best
}

/// Checks `probs`, `states` and `ones` of one `softmax_groups_sample` call against their
/// definition: the state of each group is `rng::categorical` of its probabilities, one-hot.
#[track_caller]
fn assert_categorical(
    what: &str,
    q: usize,
    key: StreamKey,
    first: u64,
    probs: &[f32],
    states: &[f32],
    ones: &[u32],
) {
    for (g, pg) in probs.chunks_exact(q).enumerate() {
        let a = rng::categorical(pg, key.draw(first + g as u64));
        let row = &states[g * q..(g + 1) * q];
        for (b, &v) in row.iter().enumerate() {
            let want = if b == a { 1.0f32 } else { 0.0 };
            assert_eq!(
                v.to_bits(),
                want.to_bits(),
                "{what} g={g} state {b} (chose {a})"
            );
        }
        assert_eq!(ones[g] as usize, g * q + a, "{what} g={g} ones");
    }
}

fn softmax_identical_and_near_oracle(isa: Isa) {
    let root = StreamKey::new(41);
    let (mut worst_abs, mut worst_rel) = (0.0f64, 0.0f64);
    let (mut flips, mut close, mut total, mut nan_groups) = (0usize, 0usize, 0usize, 0usize);
    for q in QS {
        for groups in 0..=40usize {
            for first in [0u64, 1, 7, (1 << 40) + 3] {
                let n = groups * q;
                let key = root.derive(q as u64).derive(groups as u64).derive(first);
                // Mostly logits in [−12, 12], a few of them extreme (±∞, NaN, 1e30, …).
                let x = Padded::from_slice(&inputs(key.derive(0), n, 12.0, 0.01));
                let mut probs = Padded::poisoned(n);
                let mut states = Padded::poisoned(n);
                let mut ones = Padded::poisoned_u32(groups);
                api::softmax_groups_sample_with(
                    isa,
                    x.get(),
                    q,
                    key,
                    first,
                    probs.get_mut(),
                    states.get_mut(),
                    ones.get_mut(),
                );
                let what = format!("{} q={q} groups={groups} first={first}", isa.name());
                for (b, name) in [(&probs, "probs"), (&states, "states")] {
                    b.assert_padding(&format!("{what} {name}"));
                    b.assert_written(&format!("{what} {name}"));
                }
                assert!(
                    ones.leading().iter().all(|&v| v == u32::MAX)
                        && ones.tail()[groups..].iter().all(|&v| v == u32::MAX),
                    "{what}: ones padding written"
                );
                assert_categorical(&what, q, key, first, probs.get(), states.get(), ones.get());
                // Bit-identical to the portable ISA, and softmax_groups gives the same probs.
                let (mut p2, mut s2, mut o2) = (vec![0.0; n], vec![0.0; n], vec![0u32; groups]);
                api::softmax_groups_sample_with(
                    Isa::Scalar,
                    x.get(),
                    q,
                    key,
                    first,
                    &mut p2,
                    &mut s2,
                    &mut o2,
                );
                assert_same(&format!("{what} probs"), probs.get(), &p2);
                assert_same(&format!("{what} states"), states.get(), &s2);
                assert_eq!(ones.get(), &o2[..], "{what} ones");
                let mut p3 = Padded::poisoned(n);
                api::softmax_groups_with(isa, x.get(), q, p3.get_mut());
                p3.assert_padding(&what);
                assert_same(&format!("{what} softmax_groups"), p3.get(), probs.get());
                // Against the f64 oracle: close probabilities, and the same samples except
                // where the draw lies within 1e-5 of a cumulative probability.
                let (mut po, mut so, mut oo) = (vec![0.0; n], vec![0.0; n], vec![0u32; groups]);
                scalar::softmax_groups_sample(x.get(), q, key, first, &mut po, &mut so, &mut oo);
                for g in 0..groups {
                    let (got, want) = (&probs.get()[g * q..(g + 1) * q], &po[g * q..(g + 1) * q]);
                    if want[0].is_nan() {
                        assert!(
                            got.iter().all(|v| v.is_nan()),
                            "{what} g={g}: {got:?} not NaN"
                        );
                        assert_eq!(ones.get()[g] as usize, g * q, "{what} g={g}: NaN → state 0");
                        nan_groups += 1;
                        continue;
                    }
                    for (a, (&p, &o)) in got.iter().zip(want).enumerate() {
                        let err = (p as f64 - o as f64).abs();
                        worst_abs = worst_abs.max(err);
                        if o > 1e-30 {
                            worst_rel = worst_rel.max(err / o as f64);
                        }
                        assert!(
                            err <= 1e-6 && err <= 4e-6 * o as f64 + 2e-38,
                            "{what} g={g} a={a}: prob {p} vs oracle {o}"
                        );
                    }
                    let u = key.draw(first + g as u64);
                    let near = boundary_distance(want, u) < 1e-5;
                    close += near as usize;
                    total += 1;
                    if ones.get()[g] != oo[g] {
                        assert!(near, "{what} g={g}: sample differs far from a boundary");
                        flips += 1;
                    }
                }
            }
        }
    }
    eprintln!(
        "{}: softmax worst abs error {worst_abs:.2e}, worst rel error {worst_rel:.2e}; \
         {flips} samples differ from the f64 oracle, of {close} draws within 1e-5 of a \
         boundary ({total} groups, {nan_groups} NaN groups)",
        isa.name()
    );
}

fn softmax_extremes(isa: Isa) {
    let nan = f32::NAN;
    let (inf, ninf) = (f32::INFINITY, f32::NEG_INFINITY);
    let third = 1.0f32 / 3.0;
    // (logits of one group, exact expected probabilities; NaN: all NaN)
    let cases: Vec<(Vec<f32>, Vec<f32>)> = vec![
        (vec![80.0, -80.0, 80.0], vec![0.5, 0.0, 0.5]),
        (vec![1e30, -1e30], vec![1.0, 0.0]),
        (vec![1e30, 1e30, 1e30], vec![third; 3]),
        (vec![f32::MAX, f32::MIN, 0.0], vec![1.0, 0.0, 0.0]),
        (
            vec![1e-40, -1e-40, 0.0, f32::MIN_POSITIVE],
            vec![third * 1.0; 0],
        ),
        (vec![inf, 0.0, inf, ninf], vec![0.5, 0.0, 0.5, 0.0]),
        (vec![inf, 1e30, -1e30], vec![1.0, 0.0, 0.0]),
        (vec![ninf, 5.0], vec![0.0, 1.0]),
        (vec![ninf; 4], vec![0.25; 4]),
        (vec![ninf; 3], vec![third; 3]),
        (vec![0.0, -200.0], vec![1.0, 0.0]),
        (vec![nan, 0.0, 1.0], vec![nan; 3]),
        (vec![inf, nan], vec![nan; 2]),
        (vec![ninf, ninf, nan], vec![nan; 3]),
        (vec![0.0, -0.0], vec![0.5, 0.5]),
    ];
    for (ci, (logits, want)) in cases.iter().enumerate() {
        let q = logits.len();
        // The group repeated 37 times (full vectors and a tail of every ISA).
        let groups = 37;
        let x: Vec<f32> = logits.iter().copied().cycle().take(groups * q).collect();
        let key = StreamKey::new(51).derive(ci as u64);
        let (mut p, mut st, mut on) = (
            vec![0.0; groups * q],
            vec![0.0; groups * q],
            vec![0; groups],
        );
        api::softmax_groups_sample_with(isa, &x, q, key, 3, &mut p, &mut st, &mut on);
        let what = format!("{} case {ci} {logits:?}", isa.name());
        assert_categorical(&what, q, key, 3, &p, &st, &on);
        let (mut p2, mut s2, mut o2) = (
            vec![0.0; groups * q],
            vec![0.0; groups * q],
            vec![0; groups],
        );
        api::softmax_groups_sample_with(Isa::Scalar, &x, q, key, 3, &mut p2, &mut s2, &mut o2);
        assert_same(&what, &p, &p2);
        assert_eq!(on, o2, "{what}");
        let mut po = vec![0.0; groups * q];
        scalar::softmax_groups(&x, q, &mut po);
        for g in 0..groups {
            let got = &p[g * q..(g + 1) * q];
            if want.is_empty() {
                // Subnormal logits: t = x − max are subnormal, e ≈ 1, p ≈ 1/4.
                for (&a, &o) in got.iter().zip(&po[g * q..(g + 1) * q]) {
                    assert!(
                        (a - o).abs() <= 1e-7 && (a - 0.25).abs() <= 1e-7,
                        "{what}: {got:?}"
                    );
                }
            } else if want[0].is_nan() {
                assert!(got.iter().all(|v| v.is_nan()), "{what}: {got:?}");
                assert!(
                    po[g * q..(g + 1) * q].iter().all(|v| v.is_nan()),
                    "{what} oracle"
                );
                assert_eq!(on[g] as usize, g * q, "{what}: a NaN group samples state 0");
            } else {
                assert_same(&what, got, want);
                assert_same(&format!("{what} oracle"), &po[g * q..(g + 1) * q], want);
                // A state of probability 0 is never drawn.
                assert!(
                    want[on[g] as usize - g * q] > 0.0,
                    "{what}: drew a 0-probability state"
                );
            }
        }
    }
}

/// Pearson's chi-square statistic of `counts` against the probabilities `p` (cells of
/// expected count below 5 pooled into one), and its degrees of freedom.
fn chi_square(counts: &[u64], p: &[f64]) -> (f64, usize) {
    let total: u64 = counts.iter().sum();
    let (mut stat, mut cells) = (0.0, 0usize);
    let (mut pool_obs, mut pool_exp) = (0.0, 0.0);
    for (&c, &pa) in counts.iter().zip(p) {
        let e = pa * total as f64;
        if e < 5.0 {
            pool_obs += c as f64;
            pool_exp += e;
        } else {
            stat += (c as f64 - e).powi(2) / e;
            cells += 1;
        }
    }
    if pool_exp > 0.0 {
        stat += (pool_obs - pool_exp).powi(2) / pool_exp.max(1e-300);
        cells += 1;
    }
    (stat, cells - 1)
}

/// The chi-square quantile of upper tail 1e-6 by Wilson–Hilferty (accurate to a few percent
/// for ≥ 3 degrees of freedom): `k·(1 − 2/(9k) + z·√(2/(9k)))³` with z = 4.753.
fn chi_square_critical(k: usize) -> f64 {
    let k = k as f64;
    let h = 2.0 / (9.0 * k);
    k * (1.0 - h + 4.753 * h.sqrt()).powi(3)
}

fn softmax_draws_follow_the_probabilities(isa: Isa) {
    let key = StreamKey::new(61);
    // Each q: one group of random logits repeated `groups` times, so that the draws of one
    // call (one per group, consecutive indices of the stream) sample the same distribution.
    for (q, groups) in [
        (21usize, 200_003usize),
        (4, 100_001),
        (5, 50_000),
        (33, 100_000),
    ] {
        let logits = inputs(key.derive(q as u64), q, 3.0, 0.0);
        let x: Vec<f32> = logits.iter().copied().cycle().take(groups * q).collect();
        let (mut p, mut st, mut on) = (
            vec![0.0; groups * q],
            vec![0.0; groups * q],
            vec![0; groups],
        );
        api::softmax_groups_sample_with(isa, &x, q, key.derive(1), 11, &mut p, &mut st, &mut on);
        let mut counts = vec![0u64; q];
        for (g, &o) in on.iter().enumerate() {
            counts[o as usize - g * q] += 1;
        }
        // One-hot columns sum to the same counts.
        for (a, &c) in counts.iter().enumerate() {
            let col: f64 = (0..groups).map(|g| st[g * q + a] as f64).sum();
            assert_eq!(col, c as f64, "q={q} column {a}");
        }
        // The exact softmax in f64.
        let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let e: Vec<f64> = logits.iter().map(|&v| (v as f64 - m).exp()).collect();
        let z: f64 = e.iter().sum();
        let exact: Vec<f64> = e.iter().map(|v| v / z).collect();
        let (stat, df) = chi_square(&counts, &exact);
        let crit = chi_square_critical(df);
        // The power of the test: the same counts against a distribution with the logit of
        // the most likely state shifted by 0.1 must be rejected.
        let top = (0..q)
            .max_by(|&a, &b| exact[a].total_cmp(&exact[b]))
            .unwrap();
        let e2: Vec<f64> = (0..q)
            .map(|a| if a == top { e[a] * 0.1f64.exp() } else { e[a] })
            .collect();
        let z2: f64 = e2.iter().sum();
        let shifted: Vec<f64> = e2.iter().map(|v| v / z2).collect();
        let (stat_shifted, _) = chi_square(&counts, &shifted);
        eprintln!(
            "{} q={q}: {groups} draws, chi-square {stat:.1} on {df} df (critical {crit:.1} at \
             1e-6); against the shifted distribution {stat_shifted:.1}",
            isa.name()
        );
        assert!(
            stat < crit,
            "q={q}: chi-square {stat} ≥ {crit}: counts {counts:?}"
        );
        assert!(
            stat_shifted > crit,
            "q={q}: the test cannot tell a shift of 0.1 ({stat_shifted})"
        );
    }
}

#[test]
fn softmax_same_draws_on_every_isa_and_for_split_rows() {
    // A Kunitz row (53 columns of 21 states) and a WW row (31), split at every kind of cut.
    let key = StreamKey::new(2026).derive(20);
    for (groups, q) in [(53usize, 21usize), (31, 21), (45, 4)] {
        let n = groups * q;
        let x = inputs(key.derive(groups as u64), n, 6.0, 0.0);
        for first in [0u64, 1, 2, 15, 16, 17, 1001] {
            let mut runs = Vec::new();
            for isa in Isa::available() {
                let (mut p, mut st, mut on) = (vec![0.0; n], vec![0.0; n], vec![0u32; groups]);
                api::softmax_groups_sample_with(isa, &x, q, key, first, &mut p, &mut st, &mut on);
                for cut in [1usize, 7, 8, 9, 16, 17, 30] {
                    let (mut p2, mut s2, mut o2) = (vec![0.0; n], vec![0.0; n], vec![0u32; groups]);
                    let c = cut * q;
                    api::softmax_groups_sample_with(
                        isa,
                        &x[..c],
                        q,
                        key,
                        first,
                        &mut p2[..c],
                        &mut s2[..c],
                        &mut o2[..cut],
                    );
                    api::softmax_groups_sample_with(
                        isa,
                        &x[c..],
                        q,
                        key,
                        first + cut as u64,
                        &mut p2[c..],
                        &mut s2[c..],
                        &mut o2[cut..],
                    );
                    let what = format!("{} groups={groups} first={first} cut={cut}", isa.name());
                    assert_same(&format!("{what} probs"), &p2, &p);
                    assert_same(&format!("{what} states"), &s2, &st);
                    // The piece's indices count from its own start.
                    for g in cut..groups {
                        assert_eq!(o2[g] as usize + c, on[g] as usize, "{what} g={g}");
                    }
                    assert_eq!(o2[..cut], on[..cut], "{what}");
                }
                // `ones` is what nonzero_indices finds in the one-hot states.
                let mut idx = vec![0u32; n];
                let count = api::nonzero_indices_with(isa, &st, &mut idx);
                assert_eq!(
                    &idx[..count],
                    &on[..],
                    "{} ones vs nonzero_indices",
                    isa.name()
                );
                runs.push((isa, p, st, on));
            }
            for (isa, p, st, on) in &runs[1..] {
                let what = format!(
                    "{} vs {} groups={groups} first={first}",
                    isa.name(),
                    runs[0].0.name()
                );
                assert_same(&format!("{what} probs"), p, &runs[0].1);
                assert_same(&format!("{what} states"), st, &runs[0].2);
                assert_eq!(on, &runs[0].3, "{what}");
            }
        }
    }
}

#[test]
fn softmax_dispatched_agrees_with_current_isa() {
    let isa = Isa::current();
    let key = StreamKey::new(9);
    let (groups, q) = (31, 21);
    let x = inputs(key, groups * q, 5.0, 0.01);
    let (mut a, mut b) = (vec![0.0; groups * q], vec![0.0; groups * q]);
    api::softmax_groups(&x, q, &mut a);
    api::softmax_groups_with(isa, &x, q, &mut b);
    assert_same("softmax_groups", &a, &b);
    let (mut sa, mut sb) = (vec![0.0; groups * q], vec![0.0; groups * q]);
    let (mut oa, mut ob) = (vec![0u32; groups], vec![0u32; groups]);
    api::softmax_groups_sample(&x, q, key, 4, &mut a, &mut sa, &mut oa);
    api::softmax_groups_sample_with(isa, &x, q, key, 4, &mut b, &mut sb, &mut ob);
    assert_same("softmax_groups_sample", &sa, &sb);
    assert_eq!(oa, ob);
}

#[test]
#[should_panic(expected = "do not tile 10 logits")]
fn softmax_ragged_groups_panic() {
    api::softmax_groups(&[0.0; 10], 4, &mut [0.0; 10]);
}

#[test]
#[should_panic(expected = "do not tile 0 logits")]
fn softmax_zero_q_panics() {
    api::softmax_groups(&[], 0, &mut []);
}

#[test]
#[should_panic(expected = "ones has length 2, expected 3")]
fn softmax_short_ones_panics() {
    let key = StreamKey::new(1);
    api::softmax_groups_sample(
        &[0.0; 12],
        4,
        key,
        0,
        &mut [0.0; 12],
        &mut [0.0; 12],
        &mut [0; 2],
    );
}

#[test]
#[should_panic(expected = "states has length 11, expected 12")]
fn softmax_short_states_panics() {
    let key = StreamKey::new(1);
    api::softmax_groups_sample(
        &[0.0; 12],
        4,
        key,
        0,
        &mut [0.0; 12],
        &mut [0.0; 11],
        &mut [0; 3],
    );
}

#[test]
#[should_panic(expected = "overflow u64")]
fn softmax_draw_index_overflow_panics() {
    let key = StreamKey::new(1);
    api::softmax_groups_sample(
        &[0.0; 12],
        4,
        key,
        u64::MAX - 2,
        &mut [0.0; 12],
        &mut [0.0; 12],
        &mut [0; 3],
    );
}
