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

/// The allocator settings of the `backprop` binary (src/main.rs), so that a step is measured
/// as `train` runs it, without page faults on every step's buffers. Call before any thread.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// One training step of `spec` (forward in training mode, cross-entropy, backward) at
/// `batch` MNIST-shaped inputs through the library, timed over `reps` steps after `warmup`:
/// seconds per step and what the GEMM profile saw.
pub fn time_library_step(
    spec: &backprop::train::ModelSpec,
    batch: usize,
    warmup: usize,
    reps: usize,
) -> (f64, backprop::tensor::profile::GemmStats) {
    use backprop::autograd::Var;
    use backprop::nn::{loss, Mode, Module};
    use backprop::tensor::{profile, Rng, Tensor};
    let model = spec
        .build_shaped::<f32>(784, Some([1, 28, 28]), Some(10), 0)
        .unwrap()
        .model;
    let mut rng = Rng::seed(1);
    let x = Tensor::<f32>::rand_uniform(&[batch, 784], 0.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..batch).map(|_| rng.below(10)).collect();
    let step = || {
        let out = model.forward(&Var::constant(x.clone()), Mode::Train);
        let g = loss::cross_entropy(&out, &labels, loss::Reduction::Mean).backward();
        std::hint::black_box(g);
    };
    for _ in 0..warmup {
        step();
    }
    profile::reset();
    profile::set_enabled(true);
    let t = Instant::now();
    for _ in 0..reps {
        step();
    }
    let secs = t.elapsed().as_secs_f64() / reps as f64;
    profile::set_enabled(false);
    (secs, profile::gemm_stats())
}

/// FLOPs of a list of products.
pub fn flops(shapes: &[Shape]) -> f64 {
    shapes.iter().map(|s| 2.0 * (s.0 * s.1 * s.2) as f64).sum()
}

/// Prints the library step against the raw products and their ratio.
pub fn report(
    batch: usize,
    reps: usize,
    ours: f64,
    st: &backprop::tensor::profile::GemmStats,
    raw: f64,
    raw_flops: f64,
) {
    let lib_flops = st.flops as f64 / reps as f64;
    println!("library step         {:>9.1} µs   {:>8.0} samples/s   {:>6.2} GFLOP/s ({} GEMMs, {:.1}% of the step inside GEMM)", ours * 1e6, batch as f64 / ours, lib_flops / ours * 1e-9, st.calls / reps as u64, 100.0 * st.seconds / (ours * reps as f64));
    println!(
        "raw gemm, same GEMMs {:>9.1} µs   {:>8.0} samples/s   {:>6.2} GFLOP/s",
        raw * 1e6,
        batch as f64 / raw,
        raw_flops / raw * 1e-9
    );
    println!("ratio library/raw (throughput): {:.3}", raw / ours);
    println!(
        "GEMM FLOPs per step: library {:.2} M, raw list {:.2} M",
        lib_flops * 1e-6,
        raw_flops * 1e-6
    );
}
