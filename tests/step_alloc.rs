//! After the first step, a training step on 0/1 data allocates nothing, on any thread
//! (counting global allocator), and holds no new memory.
//!
//! The step's own buffers are allocated once. The only allocations left are those of
//! `matrixmultiply::sgemm` (its packing buffer, on every call), which runs only when a pass
//! takes the dense product: inputs that are not 0/1 (e.g. `Binarize::None`) or denser than
//! half ones.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use rbm::train::{FastWeights, Method, Tempering, TrainConfig, Trainer};
use rbm::{Rbm, StreamKey};

/// `System`, counting allocation calls of every thread.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn record(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_add(size, Ordering::Relaxed);
    LARGEST.fetch_max(size, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter is an atomic that neither allocates nor touches the returned memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `dealloc` is passed through.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        record(new_size);
        // SAFETY: the caller's contract for `realloc` is passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn training_steps_after_the_first_do_not_allocate() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        for (cfg, sharp) in [
            TrainConfig {
                k: 3,
                batch_size: 64,
                ..TrainConfig::default()
            },
            TrainConfig {
                k: 1,
                batch_size: 64,
                method: Method::Pcd { chains: None },
                momentum: 0.5,
                weight_decay: 1e-4,
                ..TrainConfig::default()
            },
            TrainConfig {
                k: 1,
                batch_size: 64,
                method: Method::Pcd { chains: Some(100) },
                momentum: 0.9,
                momentum_start: Some(0.5),
                momentum_steps: 3,
                lr_end: Some(0.001),
                anneal_steps: 4,
                centering: Some(0.01),
                ..TrainConfig::default()
            },
            TrainConfig {
                k: 1,
                batch_size: 64,
                method: Method::Tempering {
                    chains: None,
                    ladder: Tempering {
                        temperatures: 4,
                        beta_min: 0.5,
                    },
                },
                ..TrainConfig::default()
            },
        ]
        .into_iter()
        .map(|c| (c, false))
        .chain(sharp_configs().into_iter().map(|c| (c, true)))
        {
            let mut model = Rbm::new(784, 500, 0).unwrap();
            if sharp {
                // Sharp conditionals: the chains flip few units and their passes move
                // (`src/compute/delta.rs`), with their own lists. The biases keep the states sparse
                // (about a third of the hidden units on, a fifth of the pixels), so every
                // product stays binary.
                model.weights_mut().iter_mut().for_each(|w| *w *= 100.0);
                model.h_bias_mut().fill(-5.0);
                model.v_bias_mut().fill(-10.0);
            }
            let mut trainer = Trainer::new(&model, cfg).unwrap();
            let key = StreamKey::new(1);
            let batch: Vec<f32> = (0..64 * 784)
                .map(|j| (key.draw(j) < u32::MAX / 8) as u8 as f32)
                .collect();
            trainer.step(&mut model, &batch).unwrap();
            let (count, live) = (
                ALLOCATIONS.load(Ordering::SeqCst),
                LIVE_BYTES.load(Ordering::SeqCst),
            );
            LARGEST.store(0, Ordering::SeqCst);
            for _ in 0..5 {
                trainer.step(&mut model, &batch).unwrap();
            }
            let grown = LIVE_BYTES.load(Ordering::SeqCst) as isize - live as isize;
            let largest = LARGEST.load(Ordering::SeqCst);
            let allocations = ALLOCATIONS.load(Ordering::SeqCst) - count;
            eprintln!("{allocations} allocations in 5 steps, largest {largest} bytes");
            // These batches are 0/1 and sparse, and the hidden states of this model stay below
            // the dense threshold: every product is binary, so nothing at all is allocated.
            assert_eq!(
                allocations,
                0,
                "{allocations} allocations in 5 steps of {:?}",
                trainer.config()
            );
            assert_eq!(
                grown,
                0,
                "live memory grew by {grown} bytes in 5 steps of {:?}",
                trainer.config()
            );
            // A packing buffer is at most KC × (MC + NC) floats of matrixmultiply's blocking
            // (256 × (64 + 1024) here), far below the step's own buffers.
            assert!(
                largest <= 2 << 20,
                "an allocation of {largest} bytes during a step"
            );
        }
    });
}

/// Configurations run on a sharp model, whose chains' passes move by their flips: CD-3, PCD-2
/// with more chains than rows and fast weights, and CD-70 (past a full pass at step 64).
fn sharp_configs() -> Vec<TrainConfig> {
    vec![
        TrainConfig {
            k: 3,
            lr: 0.001,
            batch_size: 64,
            ..TrainConfig::default()
        },
        TrainConfig {
            k: 2,
            lr: 0.001,
            batch_size: 64,
            method: Method::FastPcd {
                chains: Some(100),
                fast: FastWeights {
                    lr: 0.01,
                    decay: 0.95,
                },
            },
            ..TrainConfig::default()
        },
        TrainConfig {
            k: 70,
            lr: 0.001,
            batch_size: 64,
            ..TrainConfig::default()
        },
    ]
}
