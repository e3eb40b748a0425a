//! Keeping the pool's workers awake through a burst of short parallel passes.
//!
//! A training step is a dozen parallel passes of a few hundred microseconds each, with short
//! serial stretches between them. An idle rayon worker spins for a few tens of microseconds
//! and then sleeps; waking it again took long enough on the 2-core test machine (a VM) that
//! the thread forking a pass had often finished its own half and taken back the other half
//! before the sleeper was running: a step's update on two threads took as long as on one.
//! [`run_awake`] has every other worker of the pool poll for work ([`rayon::yield_now`],
//! yielding the core to the OS between polls) for as long as the closure runs, so each fork
//! of the step finds a worker ready.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `f` on a worker of the current pool while the pool's other workers poll for its
/// parallel work instead of sleeping; returns `f`'s result. A pool of one thread runs `f`
/// alone. The pollers stop when `f` returns or unwinds.
pub(crate) fn run_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    run_awake_counted(f, &AtomicUsize::new(0))
}

/// [`run_awake`], counting in `polling` the workers that started polling.
///
/// The pollers are the second halves of nested `rayon::join`s (stack jobs: nothing is
/// allocated, so a training step still allocates nothing), which idle workers steal.
fn run_awake_counted<R: Send>(f: impl FnOnce() -> R + Send, polling: &AtomicUsize) -> R {
    let done = AtomicBool::new(false);
    let done = &done;
    // `scope` to run on a worker of the current pool (inline when already on one).
    rayon::scope(|_| {
        let owner = rayon::current_thread_index();
        let others = rayon::current_num_threads().saturating_sub(1);
        let run = || {
            let _stop = SetOnDrop(done);
            f()
        };
        rayon::join(run, || pollers(others, done, owner, polling)).0
    })
}

/// `n` pollers: this thread polls, and leaves the other `n − 1` to whichever workers steal them.
fn pollers(n: usize, done: &AtomicBool, owner: Option<usize>, polling: &AtomicUsize) {
    match n {
        0 => {}
        1 => poll_until(done, owner, polling),
        _ => {
            rayon::join(
                || poll_until(done, owner, polling),
                || pollers(n - 1, done, owner, polling),
            );
        }
    }
}

/// Sets the flag when dropped, including on unwinding (the scope would otherwise wait for the
/// pollers forever).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Executes the pool's pending jobs until `done`. A poller that lands on the thread running
/// the closure (`owner`: it took the pollers back from its own queue, while waiting for a job
/// or after the closure) returns at once, since the closure cannot finish beneath it.
fn poll_until(done: &AtomicBool, owner: Option<usize>, polling: &AtomicUsize) {
    if rayon::current_thread_index() == owner {
        return;
    }
    polling.fetch_add(1, Ordering::Relaxed);
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn runs_the_closure_and_its_parallel_work() {
        for threads in [1, 2, 3, 8] {
            let sum = pool(threads).install(|| {
                run_awake(|| {
                    (0..10u64)
                        .map(|k| (0..10_000u64).into_par_iter().map(|x| x * k).sum::<u64>())
                        .sum::<u64>()
                })
            });
            assert_eq!(sum, 45 * (9_999 * 10_000 / 2), "{threads} threads");
        }
    }

    #[test]
    fn every_other_worker_polls_while_the_closure_runs() {
        for threads in [2, 4] {
            let polling = AtomicUsize::new(0);
            let seen = pool(threads).install(|| {
                run_awake_counted(
                    || {
                        // Wait (up to 10 s) for the pollers to start.
                        let t0 = std::time::Instant::now();
                        while polling.load(Ordering::Relaxed) < threads - 1
                            && t0.elapsed().as_secs() < 10
                        {
                            std::thread::yield_now();
                        }
                        polling.load(Ordering::Relaxed)
                    },
                    &polling,
                )
            });
            assert_eq!(seen, threads - 1, "{threads} threads");
        }
    }

    #[test]
    fn a_panic_in_the_closure_stops_the_pollers() {
        let p = pool(3);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.install(|| run_awake(|| panic!("boom")))
        }));
        assert!(r.is_err());
        // The pool is free again.
        assert_eq!(p.install(|| run_awake(|| 7)), 7);
    }
}
