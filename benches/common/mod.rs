//! Helpers the benchmarks share.
#![allow(dead_code)] // each bench uses part of this

use std::time::Instant;

/// Best seconds per call of `f` over `rounds` rounds of `reps` calls.
pub fn best_of(rounds: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// (m, n, k): dst[m×n] = a[m×k]·b[k×n].
pub type Shape = (usize, usize, usize);

/// One call of the raw GEMM crate: `c = a·b`, all row-major.
pub fn gemm_once(s: Shape, a: &[f32], b: &[f32], c: &mut [f32], par: gemm::Parallelism) {
    let (m, n, k) = s;
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the slices hold the three matrices (checked above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}
