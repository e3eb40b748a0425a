//! The forced-ISA guard, in a process of its own so that nothing else records a use:
//! with `RBM_FORCE_ISA=scalar|avx2|avx512` set, the dispatched API must run exactly that
//! instruction set (when the CPU has it), not silently fall back.
//!
//! ```sh
//! RBM_FORCE_ISA=avx2 cargo test -p rbm-kernels --test forced_isa
//! ```

use rbm_kernels::dispatch::{self, FORCE_ENV};
use rbm_kernels::{Isa, StreamKey, api};

#[test]
fn forced_isa_was_run() {
    // Every dispatched entry point once, with a tail.
    let n = 37;
    let pre: Vec<f32> = (0..n).map(|j| j as f32 * 0.25 - 4.0).collect();
    let bias = vec![0.5f32; n];
    let (mut prob, mut state) = (vec![0.0; n], vec![0.0; n]);
    let key = StreamKey::new(1);
    api::sigmoid_affine(&pre, 1.0, &bias, &mut prob);
    api::sigmoid_affine_sample(&pre, 1.0, &bias, key, 3, &mut prob, &mut state);
    api::bernoulli(&prob, key, 3, &mut state);
    let fe = api::softplus_sum_affine(&pre, 1.0, &bias);
    let mut idx = vec![0u32; n];
    let count = api::nonzero_indices(&state, &mut idx);
    assert!(fe > 0.0 && count <= n);
    let (q, groups) = (21, 3);
    let x: Vec<f32> = (0..q * groups).map(|j| j as f32 * 0.1 - 2.0).collect();
    let (mut probs, mut states, mut ones) = (vec![0.0; q * groups], vec![0.0; q * groups], [0; 3]);
    api::softmax_groups(&x, q, &mut probs);
    api::softmax_groups_sample(&x, q, key, 3, &mut probs, &mut states, &mut ones);
    assert_eq!(states.iter().sum::<f32>(), groups as f32);

    let current = Isa::current();
    let forced = std::env::var(FORCE_ENV).ok();
    match forced.as_deref() {
        None => {
            eprintln!(
                "{FORCE_ENV} not set: dispatched to the best ISA, {}",
                current.name()
            );
            assert_eq!(current, Isa::best());
        }
        Some(name) => {
            let isa = Isa::from_name(name)
                .unwrap_or_else(|| panic!("{FORCE_ENV}={name} names no instruction set"));
            if isa.is_available() {
                assert_eq!(
                    current, isa,
                    "{FORCE_ENV}={name} but dispatch chose {current:?}"
                );
                eprintln!("{FORCE_ENV}={name}: ran {}", current.name());
            } else {
                eprintln!(
                    "skipping: {FORCE_ENV}={name} but this CPU lacks it; fell back to {}",
                    current.name()
                );
                assert_eq!(current, Isa::best());
            }
        }
    }
    assert_eq!(
        dispatch::used(),
        vec![current],
        "the dispatched kernels did not run (only) {current:?}"
    );
}
