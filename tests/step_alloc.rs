//! After the first step, a training step on 0/1 data allocates nothing, on any thread
//! (counting global allocator), and holds no new memory. And writing a model file or a
//! checkpoint holds no copy of it in memory.
//!
//! The step's own buffers are allocated once. The only allocations left are those of
//! `matrixmultiply::sgemm` (its packing buffer, on every call), which runs only when a pass
//! takes the dense product: inputs that are not 0/1 (e.g. `Binarize::None`) or denser than
//! half ones.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use rbm::train::{FastWeights, Method, Tempering, TrainConfig, Trainer};
use rbm::{Rbm, StreamKey};

/// `System`, counting allocation calls of every thread.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations count in [`LARGEST_HERE`].
    static TRACKED: Cell<bool> = const { Cell::new(false) };
}
/// The largest allocation of a thread while it was [`TRACKED`].
static LARGEST_HERE: AtomicUsize = AtomicUsize::new(0);

fn record(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_add(size, Ordering::Relaxed);
    LARGEST.fetch_max(size, Ordering::Relaxed);
    if TRACKED.with(Cell::get) {
        LARGEST_HERE.fetch_max(size, Ordering::Relaxed);
    }
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

/// Held by each test: the counts are of every thread, so the tests take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn training_steps_after_the_first_do_not_allocate() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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

/// The largest allocation `f` makes on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST_HERE.store(0, Ordering::Relaxed);
    TRACKED.with(|t| t.set(true));
    f();
    TRACKED.with(|t| t.set(false));
    LARGEST_HERE.load(Ordering::Relaxed)
}

/// Issue #17, class 6: a model that fits in memory for training also fits for writing. The
/// files are streamed from the parameters (header, then each tensor), so the largest
/// allocation of a save is the write buffer (64 KiB), not the 12.5 MB file.
#[test]
fn saving_a_model_or_checkpoint_holds_no_copy_of_it() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    use rbm::checkpoint::{Checkpoint, save_checkpoint};
    use rbm::train::{RunPosition, Schedule};
    let model = Rbm::new(784, 4000, 1).unwrap();
    let dir = std::env::temp_dir().join(format!("rbm-write-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let largest = largest_allocation(|| rbm::save_model(&path, &model, Some("{}")).unwrap());
    assert!(
        largest <= 1 << 17,
        "a save allocated {largest} bytes at once"
    );
    assert_eq!(rbm::load_model(&path).unwrap().model, model);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        rbm::model_file::serialize_model(&model, Some("{}")).unwrap()
    );
    let config = TrainConfig {
        momentum: 0.5,
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(&model, config).unwrap();
    let schedule = Schedule {
        epochs: 1,
        batches_per_epoch: None,
        order: rbm::data::Order::Sequential,
        binarize: rbm::data::Binarize::Stochastic,
        drop_last: true,
    };
    let c = Checkpoint::of(&model, &trainer, &schedule, &RunPosition::default());
    let path = dir.join("checkpoint.safetensors");
    let largest = largest_allocation(|| save_checkpoint(&path, &c).unwrap());
    assert!(
        largest <= 1 << 17,
        "a checkpoint save allocated {largest} bytes at once"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
