//! Epoch orders and minibatch filling: sequential and shuffled orders, the three binarizations,
//! reproducibility from keys, and shape errors.

mod common;

use common::idx_bytes;
use rbm::Error;
use rbm::data::{Batches, Binarize, Dataset, IdxFile, Order, fill_batch};
use rbm_kernels::rng::StreamKey;

/// A dataset of `n` images of `pixels.len()` pixels, every image equal to `pixels`.
fn constant_dataset(n: usize, pixels: &[u8]) -> Dataset {
    let data: Vec<u8> = (0..n).flat_map(|_| pixels.iter().copied()).collect();
    let images = idx_bytes(0x08, &[n as u32, 1, pixels.len() as u32], &data);
    let labels = idx_bytes(0x08, &[n as u32], &vec![0; n]);
    Dataset::from_idx(
        IdxFile::from_bytes(images).unwrap(),
        IdxFile::from_bytes(labels).unwrap(),
    )
    .unwrap()
}

/// A dataset of `n` 1×1 images whose pixel is the image's index.
fn indexed_dataset(n: u8) -> Dataset {
    let data: Vec<u8> = (0..n).collect();
    Dataset::from_idx(
        IdxFile::from_bytes(idx_bytes(0x08, &[u32::from(n), 1, 1], &data)).unwrap(),
        IdxFile::from_bytes(idx_bytes(0x08, &[u32::from(n)], &vec![0; n.into()])).unwrap(),
    )
    .unwrap()
}

fn is_permutation(p: &[u32]) -> bool {
    let mut seen = vec![false; p.len()];
    p.iter()
        .all(|&i| (i as usize) < p.len() && !std::mem::replace(&mut seen[i as usize], true))
}

#[test]
fn sequential_order_is_the_identity_every_epoch() {
    let mut b = Batches::new(10, 4, Order::Sequential, 1, false).unwrap();
    for e in [0, 1, 7] {
        b.epoch(e);
        assert_eq!(b.num_batches(), 3);
        assert_eq!(b.indices(0), &[0, 1, 2, 3]);
        assert_eq!(b.indices(1), &[4, 5, 6, 7]);
        assert_eq!(b.indices(2), &[8, 9]);
        let all: Vec<u32> = b.iter().flatten().copied().collect();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}

#[test]
fn drop_last_drops_the_partial_batch() {
    let b = Batches::new(10, 4, Order::Shuffled, 1, true).unwrap();
    assert_eq!(b.num_batches(), 2);
    assert_eq!(b.iter().map(<[u32]>::len).collect::<Vec<_>>(), [4, 4]);
    let exact = Batches::new(12, 4, Order::Sequential, 1, true).unwrap();
    assert_eq!(exact.num_batches(), 3);
    let empty = Batches::new(0, 4, Order::Shuffled, 1, false).unwrap();
    assert_eq!(empty.num_batches(), 0);
}

#[test]
#[should_panic(expected = "out of range")]
fn indices_past_the_last_batch_panic() {
    let b = Batches::new(10, 4, Order::Sequential, 1, true).unwrap();
    let _ = b.indices(2);
}

#[test]
fn shuffled_order_is_a_fresh_permutation_per_epoch() {
    let n = 1000;
    let mut b = Batches::new(n, 64, Order::Shuffled, 42, false).unwrap();
    let mut epochs = Vec::new();
    for e in 0..4 {
        b.epoch(e);
        assert_eq!(b.current_epoch(), e);
        let p = b.permutation().to_vec();
        assert!(is_permutation(&p), "epoch {e}");
        assert_ne!(
            p,
            (0..n as u32).collect::<Vec<_>>(),
            "epoch {e} not shuffled"
        );
        let batched: Vec<u32> = b.iter().flatten().copied().collect();
        assert_eq!(batched, p);
        epochs.push(p);
    }
    for i in 0..epochs.len() {
        for j in i + 1..epochs.len() {
            assert_ne!(epochs[i], epochs[j], "epochs {i} and {j}");
        }
    }
    // The same (seed, epoch) gives the same order, in any sequence of calls and instances.
    b.epoch(2);
    assert_eq!(b.permutation(), &epochs[2][..]);
    let mut other = Batches::new(n, 10, Order::Shuffled, 42, true).unwrap();
    assert_eq!(other.permutation(), &epochs[0][..]);
    other.epoch(3);
    assert_eq!(other.permutation(), &epochs[3][..]);
    // Another seed gives another order.
    let mut seed43 = Batches::new(n, 64, Order::Shuffled, 43, false).unwrap();
    seed43.epoch(2);
    assert_ne!(seed43.permutation(), &epochs[2][..]);
}

#[test]
fn shuffle_is_uniform_over_positions() {
    // Over many epochs, each value lands in each of 4 positions about equally often.
    let mut b = Batches::new(4, 4, Order::Shuffled, 7, false).unwrap();
    let mut counts = [[0u32; 4]; 4];
    let epochs = 24_000;
    for e in 0..epochs {
        b.epoch(e);
        for (pos, &v) in b.permutation().iter().enumerate() {
            counts[v as usize][pos] += 1;
        }
    }
    let expected = epochs as f64 / 4.0;
    let sd = (epochs as f64 * 0.25 * 0.75).sqrt();
    for row in counts {
        for c in row {
            assert!((f64::from(c) - expected).abs() < 5.0 * sd, "{counts:?}");
        }
    }
}

#[test]
fn batch_size_zero_is_a_config_error() {
    assert!(matches!(
        Batches::new(10, 0, Order::Sequential, 0, false),
        Err(Error::Config(_))
    ));
}

#[test]
fn threshold_and_grey_levels_of_known_pixels() {
    let pixels = [0u8, 1, 127, 128, 200, 255];
    let ds = constant_dataset(3, &pixels);
    let mut out = vec![f32::NAN; 2 * 6];
    let key = StreamKey::new(0);
    fill_batch(&ds, &[2, 0], Binarize::Threshold, key, &mut out).unwrap();
    assert_eq!(out, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0].repeat(2));
    fill_batch(&ds, &[1, 1], Binarize::None, key, &mut out).unwrap();
    let grey: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
    assert_eq!(out, grey.repeat(2));
    assert_eq!(out[5], 1.0);
}

#[test]
fn rows_come_from_the_given_indices() {
    let ds = indexed_dataset(50);
    let mut out = vec![0.0; 4];
    fill_batch(
        &ds,
        &[49, 0, 17, 17],
        Binarize::None,
        StreamKey::new(1),
        &mut out,
    )
    .unwrap();
    let expected: Vec<f32> = [49u8, 0, 17, 17]
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect();
    assert_eq!(out, expected);
}

#[test]
fn stochastic_binarization_has_the_pixel_mean_and_is_reproducible() {
    let pixels = [0u8, 13, 64, 128, 230, 255];
    let rows = 4000;
    let ds = constant_dataset(rows, &pixels);
    let indices: Vec<u32> = (0..rows as u32).collect();
    let key = StreamKey::new(5).derive(17);
    let mut out = vec![f32::NAN; rows * pixels.len()];
    fill_batch(&ds, &indices, Binarize::Stochastic, key, &mut out).unwrap();
    assert!(out.iter().all(|&v| v == 0.0 || v == 1.0));
    for (i, &px) in pixels.iter().enumerate() {
        let p = f64::from(px) / 255.0;
        let mean = out
            .iter()
            .skip(i)
            .step_by(pixels.len())
            .map(|&v| f64::from(v))
            .sum::<f64>()
            / rows as f64;
        let sd = (p * (1.0 - p) / rows as f64).sqrt();
        println!("pixel {px}: p {p:.4}, mean {mean:.4}, sd {sd:.4}");
        assert!(
            (mean - p).abs() <= 5.0 * sd + 1e-9,
            "pixel {px}: mean {mean}, p {p}"
        );
    }
    // Same key: same output. Another key: another output.
    let mut again = vec![f32::NAN; out.len()];
    fill_batch(&ds, &indices, Binarize::Stochastic, key, &mut again).unwrap();
    assert_eq!(again, out);
    fill_batch(
        &ds,
        &indices,
        Binarize::Stochastic,
        key.derive(1),
        &mut again,
    )
    .unwrap();
    assert_ne!(again, out);
}

#[test]
fn stochastic_rows_use_the_documented_streams() {
    // Row r of the batch is `scalar::bernoulli` of the grey levels with key.derive(r): for a
    // small batch (filled on the calling thread) and a large one (rows in parallel), with a
    // row length that leaves a partial chunk of the SIMD kernel.
    for (rows, n) in [(3usize, 256usize), (70, 300)] {
        let pixels: Vec<u8> = (0..n).map(|i| (i % 256) as u8).collect();
        let ds = constant_dataset(rows, &pixels);
        let key = StreamKey::new(99).derive(3);
        let indices: Vec<u32> = (0..rows as u32).rev().collect();
        let mut out = vec![f32::NAN; rows * n];
        fill_batch(&ds, &indices, Binarize::Stochastic, key, &mut out).unwrap();
        let grey: Vec<f32> = pixels.iter().map(|&p| f32::from(p) / 255.0).collect();
        for r in 0..rows {
            let mut expected = vec![0.0; n];
            rbm_kernels::scalar::bernoulli(&grey, key.derive(r as u64), 0, &mut expected);
            assert_eq!(
                &out[r * n..(r + 1) * n],
                &expected[..],
                "{rows} rows: row {r}"
            );
        }
        // Different rows of the same image get independent draws.
        assert_ne!(out[..n], out[n..2 * n]);
    }
}

#[test]
fn wrong_buffer_size_or_index_is_an_error() {
    let ds = constant_dataset(5, &[1, 2, 3]);
    let key = StreamKey::new(0);
    for len in [0, 5, 7] {
        let mut out = vec![-1.0; len];
        let err = fill_batch(&ds, &[0, 1], Binarize::None, key, &mut out).unwrap_err();
        assert!(matches!(err, Error::Shape(_)), "{err:?}");
        assert!(out.iter().all(|&v| v == -1.0));
    }
    let mut out = vec![-1.0; 6];
    let err = fill_batch(&ds, &[4, 5], Binarize::Threshold, key, &mut out).unwrap_err();
    assert!(
        matches!(&err, Error::Shape(e) if e.what == "row index" && e.found == "5"),
        "{err:?}"
    );
    assert!(out.iter().all(|&v| v == -1.0), "output touched on error");
    // An empty batch into an empty buffer is fine.
    fill_batch(&ds, &[], Binarize::Stochastic, key, &mut []).unwrap();
}
