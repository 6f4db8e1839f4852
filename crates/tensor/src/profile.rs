//! Opt-in accounting of the time spent inside the GEMM crate, so benchmarks can report
//! what share of a training step is matrix multiplication. Off by default: when off, a GEMM
//! call costs one relaxed atomic load extra.

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
    /// Seconds spent inside GEMM calls.
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

/// Below this many multiply-adds a GEMM runs on the calling thread: handing small products
/// to the thread pool costs more than it saves.
const PARALLEL_THRESHOLD: usize = 48 * 48 * 48;

/// A GEMM splits over the thread pool only when it is large enough and its caller is not
/// already one of the pool's tasks. Inside a task (the trainer's half-batches, a conv's
/// per-image work) the other threads are busy with the other tasks, and the gemm crate's
/// nested split costs more in synchronisation than it saves: the 784-256-128-10 MLP at batch
/// 64 trained an epoch in 0.79 s with single-threaded products and 1.0 s with split ones.
pub(crate) fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m * n * k < PARALLEL_THRESHOLD
        || rayon::current_num_threads() <= 1
        || rayon::current_thread_index().is_some()
    {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    }
}

/// Elementwise work on at least this many elements is split over the thread pool.
const PARALLEL_ELEMENTS: usize = 1 << 17;

/// Whether an elementwise pass over `n` elements should split over the pool: only when it is
/// large (batched inference: a 1024×256 activation) and the caller is not already one of the
/// pool's tasks (training's half-batches keep both threads busy already).
pub(crate) fn split_elementwise(n: usize) -> bool {
    n >= PARALLEL_ELEMENTS
        && rayon::current_num_threads() > 1
        && rayon::current_thread_index().is_none()
}
