//! Two threads on one small piece of work: the calling thread and a partner thread that
//! stays awake, spinning, for a moment after each job.
//!
//! A one-image forward pass is a chain of products of 5–25 µs each. Handing half of one to
//! the thread pool means waking a sleeping worker, which costs tens of µs on some hosts: more
//! than the half it would take over (a one-image pass of the `cnn` preset went from 120 to
//! 178 µs when its largest product was split that way). [`join`] instead hands the half to a
//! partner that, once woken, spins between jobs for [`SPIN`], so the products of one pass —
//! and of the passes that follow it — are split at the cost of a few atomic operations.
//!
//! The partner is one thread, started on first use. [`join`] uses it only inside [`scope`]
//! (inference of one sample), from a thread outside the pool (a caller inside the pool shares
//! the cores with the pool's other tasks already) and only when the pool has at least two
//! threads, so `--threads 1` stays on one thread. If the partner is busy with another
//! caller's job, or has not taken the half by the time the caller is done with its own, the
//! caller runs it itself: a late partner never makes the caller wait, except for a half it
//! has already started.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Work of fewer multiply-adds than this is not worth splitting even with the partner awake.
pub const MIN_WORK: usize = 1 << 16;

/// How long the partner spins for a next job before it parks.
pub const SPIN: Duration = Duration::from_micros(500);

/// A half handed to the partner: the closure to run, and whether (and how) it finished.
struct Job {
    /// The caller's closure, its lifetime erased: it lives on the caller's stack, and the
    /// caller does not return before `done` is set or it has taken the job back.
    call: *mut (dyn FnMut() + 'static),
    done: AtomicBool,
    panic: UnsafeCell<Option<Box<dyn Any + Send>>>,
}

/// The job on offer to the partner, or null.
static SLOT: AtomicPtr<Job> = AtomicPtr::new(null_mut());
/// Set while the partner is parked (or about to park).
static SLEEPING: AtomicBool = AtomicBool::new(false);
/// The partner's handle, once started (`None` if it could not be).
static PARTNER: OnceLock<Option<Thread>> = OnceLock::new();

thread_local! {
    /// Set on the partner thread itself, whose own joins run sequentially.
    static IS_PARTNER: Cell<bool> = const { Cell::new(false) };
    /// Set inside [`scope`].
    static IN_SCOPE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with [`join`] allowed to use the partner on this thread: the inference entry
/// points (a one-sample forward pass that should finish fast) run their pass inside it.
/// Elsewhere (training) joins run one after the other, and the partner never spins against
/// the pool's workers.
pub fn scope<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the flag as it was, also when `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            IN_SCOPE.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(IN_SCOPE.with(|s| s.replace(true)));
    f()
}

/// Whether a [`join`] from this thread may use the partner: inside [`scope`], on a thread
/// outside the pool, with a pool of at least two threads, and not the partner itself.
fn usable() -> bool {
    IN_SCOPE.with(Cell::get)
        && rayon::current_thread_index().is_none()
        && rayon::current_num_threads() >= 2
        && !IS_PARTNER.with(Cell::get)
}

/// The partner thread, started on the first call.
fn partner() -> Option<&'static Thread> {
    PARTNER
        .get_or_init(|| {
            std::thread::Builder::new()
                .name("backprop-partner".into())
                .spawn(partner_loop)
                .ok()
                .map(|h| h.thread().clone())
        })
        .as_ref()
}

/// Whether a [`join`] from this thread may run its halves side by side: callers that would
/// otherwise do extra work to split (each half unfolding an image again) split only then.
pub fn splits() -> bool {
    usable() && partner().is_some()
}

/// Wakes the partner ahead of a [`join`] soon to come (the start of a one-image pass), so the
/// wake-up overlaps the work before it. Does nothing where [`join`] would not use it.
pub fn wake() {
    if usable() {
        if let Some(t) = partner() {
            if SLEEPING.load(Ordering::SeqCst) {
                t.unpark();
            }
        }
    }
}

/// Runs `a` on this thread and `b` on the partner if it is free and awake in time, else on
/// this thread after `a`; returns both results. A panic in either is resumed here once both
/// are finished.
pub fn join<RA, RB: Send>(a: impl FnOnce() -> RA, b: impl FnOnce() -> RB + Send) -> (RA, RB) {
    let thread = match usable().then(partner).flatten() {
        Some(t) => t,
        None => return one_after_the_other(a, b),
    };
    let mut b = Some(b);
    let mut rb: Option<RB> = None;
    let mut call = || rb = Some((b.take().expect("a half runs once"))());
    let erased: *mut (dyn FnMut() + '_) = &mut call;
    let job = Job {
        // SAFETY: only the lifetime changes. The partner calls the closure only between taking
        // the job out of `SLOT` and setting `done`, and this function returns only after
        // taking the job back itself or seeing `done` (even when `a` panics), so the closure
        // and what it borrows outlive every use.
        call: unsafe {
            std::mem::transmute::<*mut (dyn FnMut() + '_), *mut (dyn FnMut() + 'static)>(erased)
        },
        done: AtomicBool::new(false),
        panic: UnsafeCell::new(None),
    };
    let jp = &job as *const Job as *mut Job;
    if SLOT
        .compare_exchange(null_mut(), jp, Ordering::SeqCst, Ordering::Relaxed)
        .is_err()
    {
        // the partner is serving another caller
        drop(job);
        return one_after_the_other(a, b.take().expect("not run yet"));
    }
    if SLEEPING.load(Ordering::SeqCst) {
        thread.unpark();
    }
    let ra = catch_unwind(AssertUnwindSafe(a));
    if SLOT
        .compare_exchange(jp, null_mut(), Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
    {
        // not taken: run it here
        call();
    } else {
        // the partner is running it: wait, spinning briefly, then yielding the core (the
        // partner may have been preempted and need it)
        let mut spins = 0u32;
        while !job.done.load(Ordering::Acquire) {
            if spins < 1000 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // SAFETY: the partner wrote `panic` before setting `done` (Release, read with
        // Acquire above) and touches the job no more.
        if let Some(p) = unsafe { (*job.panic.get()).take() } {
            resume_unwind(p);
        }
    }
    match ra {
        Ok(ra) => (ra, rb.expect("the half ran")),
        Err(p) => resume_unwind(p),
    }
}

/// `a` then `b` on this thread; a panic in `a` still lets `b` run before it goes on.
fn one_after_the_other<RA, RB>(a: impl FnOnce() -> RA, b: impl FnOnce() -> RB) -> (RA, RB) {
    let ra = catch_unwind(AssertUnwindSafe(a));
    let rb = b();
    match ra {
        Ok(ra) => (ra, rb),
        Err(p) => resume_unwind(p),
    }
}

/// The partner: takes jobs from [`SLOT`], spinning for [`SPIN`] after the last one, then
/// parks until [`join`] or [`wake`] unparks it.
fn partner_loop() {
    IS_PARTNER.with(|p| p.set(true));
    let mut last = Instant::now();
    let mut idle = 0u32;
    loop {
        let jp = SLOT.load(Ordering::Acquire);
        if !jp.is_null()
            && SLOT
                .compare_exchange(jp, null_mut(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            // SAFETY: the job was in `SLOT` and this thread took it out, so its caller is
            // waiting for `done` and the job and its closure are alive (see `join`); nothing
            // else calls the closure.
            unsafe {
                let job = &*jp;
                let r = catch_unwind(AssertUnwindSafe(|| (*job.call)()));
                if let Err(p) = r {
                    *job.panic.get() = Some(p);
                }
                job.done.store(true, Ordering::Release);
            }
            last = Instant::now();
            idle = 0;
            continue;
        }
        idle = idle.wrapping_add(1);
        if idle % 64 != 0 || last.elapsed() < SPIN {
            std::hint::spin_loop();
            continue;
        }
        SLEEPING.store(true, Ordering::SeqCst);
        if SLOT.load(Ordering::SeqCst).is_null() {
            std::thread::park();
        }
        SLEEPING.store(false, Ordering::SeqCst);
        last = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_halves_run_once_and_return_their_results() {
        for n in 0..200u64 {
            let (a, b) = scope(|| join(|| n * 2, || n * 3));
            assert_eq!((a, b), (n * 2, n * 3));
            // outside a scope: one after the other, the same results
            assert_eq!(join(|| n * 2, || n * 3), (n * 2, n * 3));
        }
        assert!(!splits(), "outside a scope");
    }

    #[test]
    fn the_halves_can_write_disjoint_parts_of_one_buffer() {
        let mut v = vec![0u32; 1000];
        for round in 1..50 {
            let (lo, hi) = v.split_at_mut(500);
            scope(|| {
                join(
                    || lo.iter_mut().for_each(|x| *x += round),
                    || hi.iter_mut().for_each(|x| *x += 2 * round),
                )
            });
        }
        let s: u32 = (1..50).sum();
        assert!(v[..500].iter().all(|&x| x == s));
        assert!(v[500..].iter().all(|&x| x == 2 * s));
    }

    #[test]
    fn a_panic_on_the_partner_or_while_it_works_reaches_the_caller() {
        if !scope(splits) {
            return;
        }
        let nap = || std::thread::sleep(Duration::from_millis(5));
        let on_partner = || std::thread::current().name() == Some("backprop-partner");
        // `a` naps so the partner takes `b`, which panics there
        for _ in 0..5 {
            let took = AtomicBool::new(false);
            let r = catch_unwind(AssertUnwindSafe(|| {
                scope(|| {
                    join(nap, || {
                        took.store(on_partner(), Ordering::SeqCst);
                        panic!("half b")
                    })
                })
            }));
            assert!(r.is_err());
            if took.load(Ordering::SeqCst) {
                // `a` panics while the partner runs `b`: `b` finishes first
                let done = AtomicBool::new(false);
                let r = catch_unwind(AssertUnwindSafe(|| {
                    scope(|| {
                        join(
                            || {
                                nap();
                                panic!("half a")
                            },
                            || {
                                nap();
                                nap();
                                done.store(true, Ordering::SeqCst)
                            },
                        )
                    })
                }));
                assert!(r.is_err() && done.load(Ordering::SeqCst));
                // and the partner serves the next join
                assert_eq!(scope(|| join(|| 1, || 2)), (1, 2));
                return;
            }
        }
        panic!("the partner never took a half");
    }

    #[test]
    fn a_panic_in_either_half_reaches_the_caller_after_both_finish() {
        let other = AtomicBool::new(false);
        let r = catch_unwind(AssertUnwindSafe(|| {
            join(|| panic!("half a"), || other.store(true, Ordering::SeqCst))
        }));
        assert!(r.is_err());
        assert!(
            other.load(Ordering::SeqCst),
            "b ran before the panic went on"
        );
        let r = catch_unwind(AssertUnwindSafe(|| {
            join(|| 1, || -> u32 { panic!("half b") })
        }));
        assert!(r.is_err());
        // the partner survives a panic and serves the next join
        assert_eq!(join(|| 5, || 6), (5, 6));
    }

    #[test]
    fn an_awake_partner_takes_the_second_half() {
        if !scope(splits) {
            // a one-thread pool (`RAYON_NUM_THREADS=1`, one core): no partner to take it
            return;
        }
        // `a` takes long enough for the partner to wake and take `b`, a few times over
        let name = || std::thread::current().name().map(str::to_owned);
        let on_partner = (0..20).any(|_| {
            let (_, b) = scope(|| join(|| std::thread::sleep(Duration::from_millis(5)), name));
            b.as_deref() == Some("backprop-partner")
        });
        assert!(on_partner, "the partner never took a half");
    }

    #[test]
    fn without_the_partner_a_panic_in_a_still_lets_b_run() {
        // inside a pool, `join` runs the halves one after the other
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let other = AtomicBool::new(false);
        let r = pool.install(|| {
            catch_unwind(AssertUnwindSafe(|| {
                scope(|| join(|| panic!("half a"), || other.store(true, Ordering::SeqCst)))
            }))
        });
        assert!(r.is_err());
        assert!(other.load(Ordering::SeqCst), "b ran");
        assert!(!pool.install(|| scope(splits)));
    }

    #[test]
    fn callers_on_several_threads_share_the_partner() {
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    (0..500u64)
                        .map(|i| {
                            let (a, b) = scope(|| join(|| i + t, || i * t));
                            a + b
                        })
                        .sum::<u64>()
                })
            })
            .collect();
        for (t, h) in threads.into_iter().enumerate() {
            let t = t as u64;
            let want: u64 = (0..500u64).map(|i| i + t + i * t).sum();
            assert_eq!(h.join().unwrap(), want);
        }
    }
}
