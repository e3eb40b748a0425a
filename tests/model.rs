//! Conditionals and free energy against brute-force enumeration on tiny RBMs; shapes; errors.

use rbm::{Error, Rbm, StreamKey};

fn model(nv: usize, nh: usize, seed: u64) -> Rbm {
    let key = StreamKey::new(seed);
    let u = |i: u64| key.uniform_f64(i) as f32 * 4.0 - 2.0;
    let w = (0..nv * nh).map(|i| u(i as u64)).collect();
    let b = (0..nv).map(|i| u(1000 + i as u64)).collect();
    let c = (0..nh).map(|i| u(2000 + i as u64)).collect();
    Rbm::from_parts(nv, nh, w, b, c).unwrap()
}

fn bits(x: usize, n: usize) -> Vec<f32> {
    (0..n).map(|i| ((x >> i) & 1) as f32).collect()
}

/// −E(v, h) = bᵀv + cᵀh + hᵀWv in f64.
fn neg_energy(m: &Rbm, v: &[f32], h: &[f32]) -> f64 {
    let (nv, nh) = (m.n_visible(), m.n_hidden());
    let mut e: f64 = (0..nv).map(|i| m.v_bias()[i] as f64 * v[i] as f64).sum();
    e += (0..nh)
        .map(|j| m.h_bias()[j] as f64 * h[j] as f64)
        .sum::<f64>();
    for (hj, row) in h.iter().zip(m.weights().chunks(nv)) {
        e += row
            .iter()
            .zip(v)
            .map(|(&w, &vi)| *hj as f64 * w as f64 * vi as f64)
            .sum::<f64>();
    }
    e
}

#[test]
fn conditionals_and_free_energy_match_enumeration() {
    let (nv, nh) = (4, 3);
    let m = model(nv, nh, 11);
    for x in 0..1 << nv {
        let v = bits(x, nv);
        // p(h_j = 1 | v) and F(v) = −log Σ_h exp(−E(v, h)) by enumerating h.
        let weights: Vec<(Vec<f32>, f64)> = (0..1 << nh)
            .map(|y| {
                let h = bits(y, nh);
                let w = neg_energy(&m, &v, &h).exp();
                (h, w)
            })
            .collect();
        let z: f64 = weights.iter().map(|(_, w)| w).sum();
        let mut probs = vec![0.0f32; nh];
        m.hidden_probs(&v, &mut probs).unwrap();
        for j in 0..nh {
            let want: f64 = weights
                .iter()
                .filter(|(h, _)| h[j] == 1.0)
                .map(|(_, w)| w)
                .sum::<f64>()
                / z;
            assert!(
                (probs[j] as f64 - want).abs() < 1e-6,
                "p(h{j}|v={x:b}) {} vs {want}",
                probs[j]
            );
        }
        let mut f = [0.0f64];
        m.free_energy(&v, &mut f).unwrap();
        assert!(
            (f[0] + z.ln()).abs() < 1e-5,
            "F(v={x:b}) {} vs {}",
            f[0],
            -z.ln()
        );
    }
    for y in 0..1 << nh {
        let h = bits(y, nh);
        let weights: Vec<(Vec<f32>, f64)> = (0..1 << nv)
            .map(|x| (bits(x, nv), neg_energy(&m, &bits(x, nv), &h).exp()))
            .collect();
        let z: f64 = weights.iter().map(|(_, w)| w).sum();
        let mut probs = vec![0.0f32; nv];
        m.visible_probs(&h, &mut probs).unwrap();
        for i in 0..nv {
            let want: f64 = weights
                .iter()
                .filter(|(v, _)| v[i] == 1.0)
                .map(|(_, w)| w)
                .sum::<f64>()
                / z;
            assert!((probs[i] as f64 - want).abs() < 1e-6, "p(v{i}|h={y:b})");
        }
    }
}

#[test]
fn batched_conditionals_equal_row_by_row_for_many_rows() {
    // More rows than one parallel block, odd sizes.
    let (nv, nh, rows) = (37, 19, 53);
    let m = model(nv, nh, 3);
    let key = StreamKey::new(1);
    let v: Vec<f32> = (0..rows * nv)
        .map(|j| (key.draw(j as u64) >> 31) as f32)
        .collect();
    let mut all = vec![0.0; rows * nh];
    m.hidden_probs(&v, &mut all).unwrap();
    let mut fe = vec![0.0; rows];
    m.free_energy(&v, &mut fe).unwrap();
    for r in 0..rows {
        let mut one = vec![0.0; nh];
        m.hidden_probs(&v[r * nv..(r + 1) * nv], &mut one).unwrap();
        assert_eq!(&all[r * nh..(r + 1) * nh], &one[..]);
        let mut f1 = [0.0];
        m.free_energy(&v[r * nv..(r + 1) * nv], &mut f1).unwrap();
        assert_eq!(fe[r], f1[0]);
    }
}

#[test]
fn sampling_uses_the_probabilities_and_is_reproducible() {
    let (nv, nh, rows) = (8, 300, 40);
    let m = model(nv, nh, 5);
    let v = vec![1.0f32; rows * nv];
    let (mut p, mut s) = (vec![0.0; rows * nh], vec![0.0; rows * nh]);
    m.sample_hidden(&v, StreamKey::new(2), &mut p, &mut s)
        .unwrap();
    assert!(s.iter().all(|&x| x == 0.0 || x == 1.0));
    let mean_p: f32 = p.iter().sum::<f32>() / p.len() as f32;
    let mean_s: f32 = s.iter().sum::<f32>() / s.len() as f32;
    assert!((mean_p - mean_s).abs() < 0.02, "{mean_p} vs {mean_s}");
    let (mut p2, mut s2) = (vec![0.0; rows * nh], vec![0.0; rows * nh]);
    m.sample_hidden(&v, StreamKey::new(2), &mut p2, &mut s2)
        .unwrap();
    assert_eq!(s, s2);
    m.sample_hidden(&v, StreamKey::new(3), &mut p2, &mut s2)
        .unwrap();
    assert_ne!(s, s2);
}

#[test]
fn init_and_marginal_biases() {
    let m = Rbm::new(784, 500, 0).unwrap();
    let n = m.weights().len() as f64;
    let mean = m.weights().iter().map(|&x| x as f64).sum::<f64>() / n;
    let std = (m
        .weights()
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    assert!(
        mean.abs() < 1e-4 && (std - 0.01).abs() < 1e-4,
        "mean {mean} std {std}"
    );
    assert!(m.v_bias().iter().chain(m.h_bias()).all(|&x| x == 0.0));
    assert_eq!(m, Rbm::new(784, 500, 0).unwrap());
    let mut m = Rbm::new(3, 2, 0).unwrap();
    m.init_visible_bias_from_marginals(&[0.5, 0.0, 0.9])
        .unwrap();
    assert_eq!(m.v_bias()[0], 0.0);
    assert!((m.v_bias()[1] - (1e-3f64 / (1.0 - 1e-3)).ln() as f32).abs() < 1e-6);
    assert!((m.v_bias()[2] - 9f32.ln()).abs() < 1e-5);
    assert!(matches!(
        m.init_visible_bias_from_marginals(&[0.5, 1.5, 0.1]),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        m.init_visible_bias_from_marginals(&[0.5]),
        Err(Error::Shape(_))
    ));
}

#[test]
fn bad_shapes_and_parameters_are_errors() {
    assert!(matches!(Rbm::new(0, 5, 0), Err(Error::Config(_))));
    assert!(matches!(Rbm::zeros(usize::MAX, 3), Err(Error::Config(_))));
    assert!(matches!(
        Rbm::from_parts(2, 2, vec![0.0; 3], vec![0.0; 2], vec![0.0; 2]),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        Rbm::from_parts(2, 1, vec![0.0, f32::NAN], vec![0.0; 2], vec![0.0]),
        Err(Error::Config(_))
    ));
    let m = Rbm::new(4, 3, 0).unwrap();
    let mut out = vec![0.0; 3];
    assert!(matches!(
        m.hidden_probs(&[0.0; 5], &mut out),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        m.hidden_probs(&[0.0; 8], &mut out),
        Err(Error::Shape(_))
    ));
    let mut f = [0.0; 3];
    assert!(matches!(
        m.free_energy(&[0.0; 8], &mut f),
        Err(Error::Shape(_))
    ));
}
