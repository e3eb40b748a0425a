//! Raw bytes → `rbm::model_file::parse_model` → every value read → serialize → parse again.

#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use rbm::model_file::{parse_model, serialize_model};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = parse_model(data) else {
        return;
    };
    let model = &file.model;
    let (v, h) = (model.n_visible(), model.n_hidden());
    assert!(v >= 1 && h >= 1);
    assert_eq!(model.weights().len(), v * h);
    assert_eq!(model.v_bias().len(), v);
    assert_eq!(model.h_bias().len(), h);
    let mut sum = 0.0f64;
    for &x in model
        .weights()
        .iter()
        .chain(model.v_bias())
        .chain(model.h_bias())
    {
        assert!(x.is_finite(), "parse_model returned a non-finite value");
        sum += f64::from(x);
    }
    black_box(sum);
    for (key, value) in &file.metadata {
        black_box((key.len(), value.len()));
    }

    // What was accepted is written back and read again unchanged, bit for bit.
    let bytes = serialize_model(model, file.config()).expect("an accepted model serializes");
    let again = parse_model(&bytes).expect("a serialized model parses");
    let bits = |m: &rbm::Rbm| -> Vec<u32> {
        let all = m.weights().iter().chain(m.v_bias()).chain(m.h_bias());
        all.map(|x| x.to_bits()).collect()
    };
    assert_eq!((again.model.n_visible(), again.model.n_hidden()), (v, h));
    assert_eq!(bits(&again.model), bits(model));
    assert_eq!(again.config(), file.config());
});
