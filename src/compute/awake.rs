//! Keeping the pool's workers awake through a burst of short parallel passes.
//!
//! A training step is a dozen parallel passes of a few hundred microseconds each, with short
//! serial stretches between them. An idle rayon worker spins for a few tens of microseconds
//! and then sleeps; waking it again took long enough on the 2-core test machine (a VM) that
//! the thread forking a pass had often finished its own half and taken back the other half
//! before the sleeper was running: a step's update on two threads took as long as on one.
//! [`run_awake`] has every other worker of the pool poll for work ([`rayon::yield_now`],
//! yielding the core to the OS between polls) for as long as the closure runs (or until it
//! has found nothing to do for a millisecond), so each fork of the step finds a worker ready.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Runs `f` on a worker of the current pool while the pool's other workers poll for its
/// parallel work instead of sleeping; returns `f`'s result. A pool of one thread runs `f`
/// alone. The pollers stop when `f` returns or unwinds.
///
/// The pollers run whatever the pool has queued, another caller's jobs included, and `f` does
/// not return before they stop: on a pool shared with long-running work, a call can take as
/// long as the longest job a poller picked up.
pub(crate) fn run_awake<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    run_awake_counted(f, &AtomicU64::new(0))
}

/// [`run_awake`], marking in `polling` the workers that started polling (bit `i % 64` for
/// worker `i`).
///
/// The pollers are the second halves of nested `rayon::join`s around `f` (stack jobs: nothing
/// is allocated, so a training step still allocates nothing). They are pushed onto this
/// thread's queue before `f` starts, so idle workers, which steal the oldest job first, take
/// them before any job `f` forks; a poller forks nothing.
fn run_awake_counted<R: Send>(f: impl FnOnce() -> R + Send, polling: &AtomicU64) -> R {
    let done = AtomicBool::new(false);
    // `scope` to run on a worker of the current pool (inline when already on one).
    rayon::scope(|_| {
        let others = rayon::current_num_threads().saturating_sub(1);
        let ctx = Pollers {
            done: &done,
            owner: rayon::current_thread_index(),
            others,
            polling,
        };
        nest(others, f, &ctx)
    })
}

/// What the pollers of one [`run_awake`] share.
struct Pollers<'a> {
    /// Set when the closure has returned or unwound.
    done: &'a AtomicBool,
    /// The thread running the closure.
    owner: Option<usize>,
    /// The number of pollers.
    others: usize,
    /// The workers polling, one bit each (index mod 64).
    polling: &'a AtomicU64,
}

/// `k` pollers pushed, then `f` run (the flag set when it returns or unwinds).
fn nest<R: Send>(k: usize, f: impl FnOnce() -> R + Send, ctx: &Pollers<'_>) -> R {
    if k == 0 {
        let _stop = SetOnDrop(ctx.done);
        return f();
    }
    rayon::join(move || nest(k - 1, f, ctx), || poll_until(ctx)).0
}

/// Sets the flag when dropped, including on unwinding (the pollers would otherwise poll on).
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// How long a poller goes on polling without finding a job.
///
/// Longer than any serial stretch of a training step (the longest, the update's preparation,
/// takes about 0.1 ms on the 2-core machine), and the bound that keeps a poller from blocking
/// the closure: a worker waiting for a job inside one of the closure's own jobs may run a
/// poller it steals meanwhile, on top of that job, which cannot finish until the poller
/// returns — so a poller must return by itself once there is nothing left to run.
const MAX_IDLE: Duration = Duration::from_millis(1);

/// How long a poller waits for the other pollers to be taken by other workers before it
/// polls (and may take them itself).
const SPREAD: Duration = Duration::from_millis(1);

/// Executes the pool's pending jobs until the closure is done, or nothing was found for
/// [`MAX_IDLE`]. A poller that lands on the thread running the closure (it took a poller back
/// from its own queue while waiting for a job, or after the closure) returns at once.
fn poll_until(ctx: &Pollers<'_>) {
    let me = rayon::current_thread_index();
    if me == ctx.owner {
        return;
    }
    ctx.polling
        .fetch_or(1 << (me.unwrap_or(0) % 64), Ordering::Relaxed);
    // Polling through rayon steals the oldest job first, which would be the next poller, meant
    // for a worker still waking up: leave the pollers to their workers for a while first (not
    // past the closure's end: the pollers it took back itself never start).
    let want = ctx.others.min(64) as u32;
    let t0 = Instant::now();
    while ctx.polling.load(Ordering::Relaxed).count_ones() < want
        && !ctx.done.load(Ordering::Relaxed)
        && t0.elapsed() < SPREAD
    {
        std::thread::yield_now();
    }
    let mut idle_since: Option<Instant> = None;
    while !ctx.done.load(Ordering::Acquire) {
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            idle_since = None;
            continue;
        }
        if idle_since.get_or_insert_with(Instant::now).elapsed() > MAX_IDLE {
            return;
        }
        std::thread::yield_now();
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

    /// The distinct workers that polled during one call whose closure waits (up to 5 s) for
    /// `want` of them.
    fn distinct_pollers(threads: usize, want: usize) -> usize {
        let polling = AtomicU64::new(0);
        let count = || polling.load(Ordering::Relaxed).count_ones() as usize;
        pool(threads).install(|| {
            run_awake_counted(
                || {
                    let t0 = Instant::now();
                    while count() < want && t0.elapsed().as_secs() < 5 {
                        std::thread::yield_now();
                    }
                    count()
                },
                &polling,
            )
        })
    }

    #[test]
    fn other_workers_poll_while_the_closure_runs() {
        assert_eq!(distinct_pollers(2, 1), 1);
        // With more threads, the pollers go to several workers, not all to the first one
        // awake (which polling through rayon would steal them for). Spreading them is best
        // effort — a worker that takes more than `SPREAD` to wake loses its poller — so this
        // asks for two workers of three, in one of three calls.
        assert!(
            (0..3).any(|_| distinct_pollers(4, 3) >= 2),
            "every poller ran on one worker"
        );
    }

    /// An uneven tree of joins: workers waiting inside it steal whatever is queued, pollers
    /// included.
    fn tree(depth: u32, k: u64) -> u64 {
        if depth == 0 {
            return (0..(50 + k % 7 * 40)).fold(k, |x, _| x.wrapping_mul(6364136223846793005) + 1);
        }
        let (a, b) = rayon::join(
            || tree(depth - 1, k * 31 + 1),
            || tree(depth - 1, k * 17 + 3),
        );
        a ^ b
    }

    #[test]
    fn nested_joins_and_nested_calls_finish_with_the_same_result() {
        // More threads than cores, joins nested inside the closure and a `run_awake` inside
        // another (as `train_dataset_from` calls `Trainer::step`): every call must finish, with
        // the result of the plain computation. A hang aborts the test run after a minute.
        let finished = std::sync::Arc::new(AtomicBool::new(false));
        let watch = finished.clone();
        std::thread::spawn(move || {
            for _ in 0..600 {
                std::thread::sleep(Duration::from_millis(100));
                if watch.load(Ordering::Relaxed) {
                    return;
                }
            }
            eprintln!("run_awake: no progress in 60 s (a poller blocked the closure?)");
            std::process::abort();
        });
        let want: Vec<u64> = (0..300).map(|k| tree(6, k)).collect();
        for threads in [3, 6] {
            let got: Vec<u64> = pool(threads).install(|| {
                (0..300u64)
                    .map(|k| run_awake(|| run_awake(|| tree(6, k))))
                    .collect()
            });
            assert_eq!(got, want, "{threads} threads");
        }
        finished.store(true, Ordering::Relaxed);
    }

    /// The kind of stress run that found the hang of the first design (pollers forking pollers,
    /// in a review: 32 threads hung after 5k–450k calls): many
    /// more threads than cores, many calls. Minutes long, so not part of the suite:
    /// `cargo test --release --lib awake::tests::stress -- --ignored --nocapture`
    /// (`RBM_AWAKE_CALLS` sets the number of calls, 200,000 by default).
    #[test]
    #[ignore]
    fn stress_many_threads_many_calls() {
        let calls: u64 = std::env::var("RBM_AWAKE_CALLS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200_000);
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let watch = progress.clone();
        std::thread::spawn(move || {
            let mut last = u64::MAX;
            loop {
                std::thread::sleep(Duration::from_secs(20));
                let now = watch.load(Ordering::Relaxed);
                if now == last {
                    eprintln!("run_awake: no progress in 20 s after {now} calls");
                    std::process::abort();
                }
                last = now;
            }
        });
        let p = pool(32);
        for k in 0..calls {
            let got = p.install(|| run_awake(|| tree(3, k)));
            assert_eq!(got, tree(3, k));
            progress.store(k + 1, Ordering::Relaxed);
        }
        eprintln!("{calls} calls on 32 threads");
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
