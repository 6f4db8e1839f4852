//! Opt-in accounting of the time spent inside the GEMM crate, so benchmarks can report
//! what share of a training step is matrix multiplication. Off by default: when off, a GEMM
//! call costs one relaxed atomic load extra. Also the rule for when a kernel splits its work
//! over the thread pool ([`may_split`], [`alone_on_the_pool`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);
static GEMM_NANOS: AtomicU64 = AtomicU64::new(0);
static GEMM_CALLS: AtomicU64 = AtomicU64::new(0);
static GEMM_FLOPS: AtomicU64 = AtomicU64::new(0);

/// Turns GEMM time accounting on or off.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Clears the counters.
pub fn reset() {
    GEMM_NANOS.store(0, Ordering::Relaxed);
    GEMM_CALLS.store(0, Ordering::Relaxed);
    GEMM_FLOPS.store(0, Ordering::Relaxed);
}

/// What has been counted since the last [`reset`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GemmStats {
    /// Seconds spent inside GEMM calls, summed over the threads that made them: calls that
    /// run at the same time on two threads count twice, a call that splits itself over the
    /// pool counts its own duration once. Against a step's wall time it can exceed 100%.
    pub seconds: f64,
    /// Number of GEMM calls.
    pub calls: u64,
    /// Floating-point operations (2·m·n·k per call).
    pub flops: u64,
}

/// Reads the counters.
pub fn gemm_stats() -> GemmStats {
    GemmStats {
        seconds: GEMM_NANOS.load(Ordering::Relaxed) as f64 * 1e-9,
        calls: GEMM_CALLS.load(Ordering::Relaxed),
        flops: GEMM_FLOPS.load(Ordering::Relaxed),
    }
}

pub(crate) fn timed_gemm(f: impl FnOnce()) {
    if ENABLED.load(Ordering::Relaxed) {
        let t = Instant::now();
        f();
        GEMM_NANOS.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        GEMM_CALLS.fetch_add(1, Ordering::Relaxed);
    } else {
        f()
    }
}

pub(crate) fn count_flops(m: usize, n: usize, k: usize) {
    if ENABLED.load(Ordering::Relaxed) {
        GEMM_FLOPS.fetch_add((2 * m * n * k) as u64, Ordering::Relaxed);
    }
}

thread_local! {
    /// Set while this pool worker runs work that nothing else on the pool runs beside (a
    /// training step handed to the pool): its kernels may split over the pool as a thread
    /// outside it would.
    static ALONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A thread's mark ([`ALONE`] or [`AWAKE`]) and the value it had before [`set`], put back
/// when dropped (also when unwinding).
struct Mark(&'static std::thread::LocalKey<std::cell::Cell<bool>>, bool);

impl Drop for Mark {
    fn drop(&mut self) {
        self.0.with(|a| a.set(self.1));
    }
}

/// Sets this thread's `mark` to `on` until the returned guard is dropped.
fn set(mark: &'static std::thread::LocalKey<std::cell::Cell<bool>>, on: bool) -> Mark {
    Mark(mark, mark.with(|a| a.replace(on)))
}

fn marked<R>(alone: bool, f: impl FnOnce() -> R) -> R {
    let _restore = set(&ALONE, alone);
    f()
}

/// Runs `f` on this thread with it marked as having the pool to itself: called on a pool
/// worker with nothing else running beside it (a training step), `f`'s kernels split over
/// the pool as they would from a thread outside it.
///
/// While `f` runs, the pool's other workers stay awake ([`keep_awake`]): a step is a chain
/// of parallel kernels with short serial stretches between them, long enough for an idle
/// worker to go to sleep, and waking it again for the next kernel is a system call on each
/// side (about 7% of the `cnn` preset's epoch and 10% of the MLP's went to those).
pub fn alone_on_the_pool<R>(f: impl FnOnce() -> R) -> R {
    marked(true, || keep_awake(f))
}

/// How long a [`keep_awake`] spinning job goes on at most: the idle clock restarts with every
/// job the spinner runs, another session's steps too, so a copy stuck on top of a job its
/// step waits for (see [`keep_awake`]) could otherwise be kept spinning by that other work.
/// Longer than the trainer's runs of steps (about 20 ms, see `Trainer::train_epoch`); a
/// longer `f` runs its remainder with the pool's usual sleeping workers.
pub const MAX_SPIN: std::time::Duration = std::time::Duration::from_millis(50);

/// How long a [`keep_awake`] spinning job goes on without finding work before it returns:
/// longer than the serial stretches of a training step (tens of µs), short enough that a
/// copy stuck on top of a job its step waits for (see there) costs little.
pub const MAX_IDLE_SPIN: std::time::Duration = std::time::Duration::from_millis(1);

thread_local! {
    /// Set while this worker runs the `f` of a [`keep_awake`] or spins for another's: it
    /// then neither spins for anyone else nor starts spinners of its own.
    static AWAKE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on this pool worker while every other worker of the pool looks for work
/// without sleeping: each runs one job spread to every worker (`spawn_broadcast`) that takes
/// the pool's pending work ([`rayon::yield_now`]) and spins between jobs until `f` returns
/// (or unwinds). So the other workers cost a core each while `f` runs, as an OpenMP runtime's
/// spinning threads do. Outside the pool, or on a pool of one thread, it just runs `f`.
///
/// Calls at the same time on one pool (two playground sessions training) keep apart: a
/// worker inside a `keep_awake`'s `f`, or already spinning for one, runs another's spinning
/// job as a no-op, and a `keep_awake` started there (a step run nested while waiting) starts
/// no spinners. Without that, the worker running step A could take step B's spinning job
/// while it waited inside A, and B's worker A's: each would spin until the other finished.
///
/// A spinning job also stops after [`MAX_IDLE_SPIN`] without finding work. A worker can take
/// its copy while it waits inside a job of `f` (it took the half-batch before the copy, and
/// picks the copy up waiting in one of the half's joins); `f` then waits for that job, and
/// the job for the copy on top of it. The LeNet-5 benchmark hung that way once in about
/// 40,000 steps; now such a step loses a millisecond (at most [`MAX_SPIN`] when other work
/// keeps the copy busy).
pub fn keep_awake<R>(f: impl FnOnce() -> R) -> R {
    if rayon::current_thread_index().is_none()
        || rayon::current_num_threads() < 2
        || AWAKE.with(std::cell::Cell::get)
    {
        return f();
    }
    /// Sets the flag when dropped, also when `f` unwinds, so the spinners always stop.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let done = AtomicBool::new(false);
    rayon::in_place_scope(|s| {
        s.spawn_broadcast(|_, _| {
            // this worker's own copy (run when it next looks for work, maybe after `f`),
            // and any worker inside another `f` or spinner, do nothing
            let restore = set(&AWAKE, true);
            if restore.1 {
                return;
            }
            let mut idle_since: Option<std::time::Instant> = None;
            let start = std::time::Instant::now();
            while !done.load(Ordering::Acquire) && start.elapsed() < MAX_SPIN {
                if rayon::yield_now() == Some(rayon::Yield::Executed) {
                    idle_since = None;
                    continue;
                }
                let since = *idle_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= MAX_IDLE_SPIN {
                    // this copy may sit on top of a job `f` waits for (see above)
                    break;
                }
                for _ in 0..32 {
                    std::hint::spin_loop();
                }
            }
        });
        let _awake = set(&AWAKE, true);
        let _done = Done(&done);
        f()
    })
}

/// Runs `f` on this thread without that mark: for work split into tasks that run side by
/// side (the two halves of a batch), inside which the kernels should not split again.
pub fn sharing_the_pool<R>(f: impl FnOnce() -> R) -> R {
    marked(false, f)
}

/// Whether a kernel may split its work over the pool: there is more than one thread, and
/// the caller is outside the pool or has it to itself ([`alone_on_the_pool`]). Inside a
/// task, the other threads are busy with the other tasks.
///
/// The mark belongs to the thread: while the marked worker waits inside a split of its own,
/// the pieces it runs meanwhile see it too. So the task bodies of parallel kernels must not
/// call code gated by this rule (today none does: their GEMMs run with `Threads::Caller`,
/// the rest are plain loops), or must wrap it in [`sharing_the_pool`].
pub(crate) fn may_split() -> bool {
    rayon::current_num_threads() > 1
        && (rayon::current_thread_index().is_none() || ALONE.with(std::cell::Cell::get))
}

/// Below this many multiply-adds a GEMM runs on the calling thread: handing small products
/// to the thread pool costs more than it saves.
const PARALLEL_THRESHOLD: usize = 48 * 48 * 48;

/// A GEMM splits over the thread pool only when it is large enough and its caller may split
/// ([`may_split`]: outside the pool, or a worker that has the pool to itself). Inside a task (the trainer's half-batches, a conv's
/// per-image work) the other threads are busy with the other tasks, and the gemm crate's
/// nested split costs more in synchronisation than it saves: the 784-256-128-10 MLP at batch
/// 64 trained an epoch in 0.79 s with single-threaded products and 1.0 s with split ones.
pub(crate) fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m * n * k < PARALLEL_THRESHOLD || !may_split() {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    }
}

/// Elementwise work on at least this many elements is split over the thread pool.
const PARALLEL_ELEMENTS: usize = 1 << 17;

/// Whether an elementwise pass over `n` elements should split over the pool: only when it is
/// large (batched inference: a 1024×256 activation) and the caller may split ([`may_split`]) (training's half-batches keep both threads busy already).
pub(crate) fn split_elementwise(n: usize) -> bool {
    n >= PARALLEL_ELEMENTS && may_split()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_split_outside_the_pool_and_on_a_worker_that_has_it_to_itself() {
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        two.install(|| {
            // a task of the pool, beside others
            assert!(!may_split());
            alone_on_the_pool(|| {
                assert!(may_split());
                assert!(matches!(
                    parallelism(64, 64, 64),
                    gemm::Parallelism::Rayon(2)
                ));
                // the halves of a split share the pool again, and the mark comes back
                let (a, b) = rayon::join(
                    || sharing_the_pool(may_split),
                    || sharing_the_pool(may_split),
                );
                assert!(!a && !b);
                assert!(may_split());
                // also after a panic inside
                let caught = std::panic::catch_unwind(|| sharing_the_pool(|| panic!("inside")));
                assert!(caught.is_err());
                assert!(may_split());
            });
            assert!(!may_split());
            assert!(matches!(parallelism(64, 64, 64), gemm::Parallelism::None));
        });
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        // one thread has nothing to split over
        one.install(|| alone_on_the_pool(|| assert!(!may_split())));
    }

    #[test]
    fn a_worker_kept_awake_takes_the_work_and_stops_when_the_caller_returns_or_panics() {
        use std::sync::atomic::AtomicUsize;
        use std::time::{Duration, Instant};
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            let me = rayon::current_thread_index();
            for _ in 0..50 {
                let r = keep_awake(|| {
                    // the other half runs on another worker while this one waits for it
                    let started = AtomicUsize::new(usize::MAX);
                    let ((), ()) = rayon::join(
                        || {
                            let t = Instant::now();
                            while started.load(Ordering::Acquire) == usize::MAX {
                                assert!(t.elapsed() < Duration::from_secs(10), "never taken");
                                std::hint::spin_loop();
                            }
                        },
                        || {
                            started
                                .store(rayon::current_thread_index().unwrap(), Ordering::Release);
                        },
                    );
                    assert_ne!(Some(started.load(Ordering::Acquire)), me);
                    7
                });
                assert_eq!(r, 7);
            }
            // a panic inside stops the spinners too, and the pool still works
            let caught = std::panic::catch_unwind(|| keep_awake(|| panic!("inside")));
            assert!(caught.is_err());
            let (a, b) = rayon::join(|| 1, || 2);
            assert_eq!(a + b, 3);
        });
        // outside the pool it just runs `f`
        assert_eq!(keep_awake(|| 5), 5);
    }

    #[test]
    fn a_worker_spinning_on_top_of_a_job_the_caller_waits_for_lets_it_finish() {
        use rayon::prelude::*;
        use std::sync::mpsc;
        use std::time::Duration;
        // as the trainer's half-batches: the other worker may take the second half before
        // its spinning job, then pick that job up while it waits inside the half's own
        // split. Without MAX_IDLE_SPIN this hung in the runs tried (it is a race: the other
        // worker must look at its broadcast queue just before the copy arrives).
        let work = |n: u64| (0..n).fold(0u64, |a, i| std::hint::black_box(a ^ i));
        // a half-batch: its own split over the pool
        let half = move || {
            (0..8u64)
                .into_par_iter()
                .map(|i| work(200 + i))
                .sum::<u64>()
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            for _ in 0..50_000 {
                pool.scope(|_| keep_awake(|| rayon::join(half, half)));
            }
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(120))
            .expect("a step waiting on a job under a spinning job did not finish");
    }

    #[test]
    fn steps_kept_awake_at_the_same_time_on_one_pool_all_finish() {
        use std::sync::{mpsc, Arc};
        use std::time::Duration;
        // two callers (two playground sessions) each hand steps to the pool, as
        // `Trainer::step` does; each step waits inside joins whose other half another
        // worker takes, which is where a worker could pick up the other step's spinner.
        // (Before the AWAKE mark, this ran 10 times slower, each step spinning through the
        // other's, but did not hang in the runs tried: the hang needs both steps' workers
        // to take each other's spinner while waiting.)
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(3)
                .build()
                .unwrap(),
        );
        let work = |n: u64| (0..n).fold(0u64, |a, i| std::hint::black_box(a ^ i));
        let (tx, rx) = mpsc::channel();
        for caller in 0..2 {
            let (pool, tx) = (pool.clone(), tx.clone());
            std::thread::spawn(move || {
                for _ in 0..300 {
                    pool.scope(|_| {
                        keep_awake(|| {
                            for _ in 0..4 {
                                rayon::join(|| work(200), || work(20_000));
                            }
                            // a keep_awake inside one (on the same worker) runs `f` alone
                            rayon::join(|| keep_awake(|| work(100)), || work(100));
                        })
                    });
                }
                tx.send(caller).unwrap();
            });
        }
        for _ in 0..2 {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("two callers' steps kept awake at once did not finish");
        }
    }
}
