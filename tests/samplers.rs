//! Every negative-phase sampler leaves the model's distribution invariant: on a 4–3 RBM, the
//! states of many independent chains after a burn-in follow the exact `p(v)` from enumeration
//! (Pearson's chi-square over the 16 visible states, below its 0.1% critical value), and
//! parallel tempering's exchanges are accepted with the Metropolis probability.

use rbm::gibbs::Gibbs;
use rbm::train::tempering::{ParallelTempering, swap_log_acceptance};
use rbm::{Rbm, StreamKey};

const NV: usize = 4;
const NH: usize = 3;
/// The 0.1% critical value of chi-square with 15 degrees of freedom.
const CHI2_15_999: f64 = 37.70;

/// A 4–3 model with weights large enough for a multimodal `p(v)`.
fn model() -> Rbm {
    let w = vec![
        2.0, -1.5, 1.0, 0.5, //
        -2.0, 1.0, 1.5, -1.0, //
        0.5, 2.0, -1.5, 1.5,
    ];
    Rbm::from_parts(NV, NH, w, vec![-0.5, 0.3, 0.0, -1.0], vec![0.2, -0.4, 0.1]).unwrap()
}

/// `model` with every parameter multiplied by `beta`: its `p` is the tempered `p_β ∝ p^β`.
fn scaled(m: &Rbm, beta: f32) -> Rbm {
    let s = |x: &[f32]| x.iter().map(|v| v * beta).collect::<Vec<_>>();
    Rbm::from_parts(NV, NH, s(m.weights()), s(m.v_bias()), s(m.h_bias())).unwrap()
}

/// The exact `p(v)` of the 16 states (state `s` has bit `i` as unit `i`).
fn exact(m: &Rbm) -> Vec<f64> {
    let states: Vec<f32> = (0..16)
        .flat_map(|s| (0..NV).map(move |i| ((s >> i) & 1) as f32))
        .collect();
    let mut f = vec![0.0; 16];
    m.free_energy(&states, &mut f).unwrap();
    let z: f64 = f.iter().map(|x| (-x).exp()).sum();
    f.iter().map(|x| (-x).exp() / z).collect()
}

/// Pearson's chi-square of the rows of `v` against `p`.
fn chi_square(v: &[f32], p: &[f64]) -> f64 {
    let mut counts = [0usize; 16];
    for row in v.chunks(NV) {
        let s: usize = row
            .iter()
            .enumerate()
            .map(|(i, &x)| (x as usize) << i)
            .sum();
        counts[s] += 1;
    }
    let n = (v.len() / NV) as f64;
    counts
        .iter()
        .zip(p)
        .map(|(&c, &p)| (c as f64 - n * p).powi(2) / (n * p))
        .sum()
}

const CHAINS: usize = 4000;

#[test]
fn gibbs_chains_reach_the_model_distribution() {
    let m = model();
    let mut g = Gibbs::new(&m, &vec![0.0; CHAINS * NV], StreamKey::new(3)).unwrap();
    g.run(&m, 200).unwrap();
    let chi2 = chi_square(g.visible(), &exact(&m));
    assert!(chi2 < CHI2_15_999, "chi-square {chi2:.1}");
}

#[test]
fn parallel_tempering_leaves_every_temperature_at_its_distribution() {
    let m = model();
    let betas = ParallelTempering::ladder(4, 0.25);
    let mut pt = ParallelTempering::new(NV, NH, betas.clone(), CHAINS).unwrap();
    // All chains start in the same state, far from equilibrium.
    pt.start(&[1.0, 1.0, 1.0, 1.0]);
    let key = StreamKey::new(9);
    for s in 0..200u64 {
        pt.sweep(&m, 1, key.derive(s), (s % 2) as usize);
    }
    for (t, &beta) in betas.iter().enumerate() {
        let chi2 = chi_square(pt.visible(t), &exact(&scaled(&m, beta)));
        assert!(chi2 < CHI2_15_999, "β = {beta}: chi-square {chi2:.1}");
    }
    let acc = pt.acceptance();
    assert!(
        acc.iter().all(|&a| a > 0.05 && a <= 1.0),
        "acceptance {acc:?}"
    );
    // The β = 1 hidden probabilities are p(h | v) of the β = 1 states.
    let mut p = vec![0.0; CHAINS * NH];
    m.hidden_probs(pt.visible(0), &mut p).unwrap();
    let err = p
        .iter()
        .zip(pt.hidden_prob())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(err < 1e-6, "{err}");
}

#[test]
fn the_chi_square_test_rejects_a_wrong_distribution() {
    // A control for the test above: the chi-square test does reject a wrong distribution
    // (chains at β = 1 compared with the β = 0.25 distribution).
    let m = model();
    let mut pt =
        ParallelTempering::new(NV, NH, ParallelTempering::ladder(2, 0.25), CHAINS).unwrap();
    pt.start(&[0.0; NV]);
    for s in 0..100u64 {
        pt.sweep(&m, 1, StreamKey::new(1).derive(s), (s % 2) as usize);
    }
    assert!(chi_square(pt.visible(0), &exact(&scaled(&m, 0.25))) > 10.0 * CHI2_15_999);
}

#[test]
fn exchange_acceptance_is_the_metropolis_ratio() {
    let m = model();
    let (ba, bb) = (1.0f32, 0.4f32);
    let (fa, fb) = (scaled(&m, ba), scaled(&m, bb));
    let va = [1.0, 0.0, 1.0, 1.0];
    let vb = [0.0, 1.0, 1.0, 0.0];
    let f = |m: &Rbm, v: &[f32]| {
        let mut out = [0.0];
        m.free_energy(v, &mut out).unwrap();
        out[0]
    };
    // ln of p_a(v_b) p_b(v_a) / (p_a(v_a) p_b(v_b)), from the tempered models' free energies.
    let want = f(&fa, &va) + f(&fb, &vb) - f(&fa, &vb) - f(&fb, &va);
    let pre = |v: &[f32]| -> Vec<f32> {
        (0..NH)
            .map(|j| (0..NV).map(|i| m.weights()[j * NV + i] * v[i]).sum())
            .collect()
    };
    let bv = |v: &[f32]| -> f64 {
        v.iter()
            .zip(m.v_bias())
            .map(|(x, b)| f64::from(x * b))
            .sum()
    };
    let got = swap_log_acceptance(
        (ba, bv(&va), &pre(&va)),
        (bb, bv(&vb), &pre(&vb)),
        m.h_bias(),
    );
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    assert!(want.abs() > 0.1, "a test case where the ratio is not 1");
    // Equal temperatures always exchange.
    let same = swap_log_acceptance(
        (0.7, bv(&va), &pre(&va)),
        (0.7, bv(&vb), &pre(&vb)),
        m.h_bias(),
    );
    assert!(same.abs() < 1e-6);
}
