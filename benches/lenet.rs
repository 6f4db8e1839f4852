//! LeNet-5 benchmark: one forward+backward step at batch 64 through the library, against
//! the raw GEMM crate running the same matrix products (the im2col shapes of both conv
//! layers per image, spread over the thread pool by image as our kernel does, and the three
//! linear layers), measured in the same run. Run with `cargo bench --bench lenet`.

use std::time::Instant;

use backprop::autograd::Var;
use backprop::nn::{loss, Mode, Module};
use backprop::tensor::{profile, Rng, Tensor};
use backprop::train::ModelSpec;
use rayon::prelude::*;

mod common;
use common::{gemm_once, Shape};

fn main() {
    // the same allocator settings as the `backprop` binary (src/main.rs), so the step is
    // measured as `train` runs it, without page faults on every step's buffers
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    let batch = 64;
    let threads = rayon::current_num_threads();
    println!("backprop LeNet-5 benchmark ({threads} threads, batch {batch})");
    let model = ModelSpec::lenet5(10)
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
    for _ in 0..10 {
        step();
    }
    let reps = 100;
    profile::reset();
    profile::set_enabled(true);
    let t = Instant::now();
    for _ in 0..reps {
        step();
    }
    let ours = t.elapsed().as_secs_f64() / reps as f64;
    profile::set_enabled(false);
    let st = profile::gemm_stats();
    let flops = st.flops as f64 / reps as f64;

    // the same products through the raw crate
    let per_image: [Shape; 5] = [
        (6, 784, 25),   // conv1 forward: W[6×25]·col[25×784]
        (6, 25, 784),   // conv1 dW: dY·colᵀ
        (16, 100, 150), // conv2 forward
        (16, 150, 100), // conv2 dW
        (150, 100, 16), // conv2 dcol = Wᵀ·dY
    ];
    let per_batch: [Shape; 9] = [
        (batch, 120, 400),
        (120, 400, batch),
        (batch, 400, 120), // fc1 forward, dW, dx
        (batch, 84, 120),
        (84, 120, batch),
        (batch, 120, 84), // fc2
        (batch, 10, 84),
        (10, 84, batch),
        (batch, 84, 10), // fc3
    ];
    let buf = |s: Shape| {
        (
            vec![0.5f32; s.0 * s.2],
            vec![0.25f32; s.2 * s.1],
            vec![0f32; s.0 * s.1],
        )
    };
    let raw_step = || {
        (0..batch).into_par_iter().for_each(|_| {
            for &s in &per_image {
                let (a, b, mut c) = buf(s);
                gemm_once(s, &a, &b, &mut c, gemm::Parallelism::None);
            }
        });
        for &s in &per_batch {
            let (a, b, mut c) = buf(s);
            let par = if s.0 * s.1 * s.2 >= 48 * 48 * 48 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            };
            gemm_once(s, &a, &b, &mut c, par);
        }
    };
    for _ in 0..10 {
        raw_step();
    }
    let t = Instant::now();
    for _ in 0..reps {
        raw_step();
    }
    let raw = t.elapsed().as_secs_f64() / reps as f64;
    let raw_flops: f64 = (batch as f64
        * per_image
            .iter()
            .map(|s| 2.0 * (s.0 * s.1 * s.2) as f64)
            .sum::<f64>())
        + per_batch
            .iter()
            .map(|s| 2.0 * (s.0 * s.1 * s.2) as f64)
            .sum::<f64>();
    println!("library step        {:>9.1} µs   {:>8.0} samples/s   {:>6.2} GFLOP/s ({} GEMMs, {:.1}% of the step inside GEMM)", ours * 1e6, batch as f64 / ours, flops / ours * 1e-9, st.calls / reps as u64, 100.0 * st.seconds / (ours * reps as f64));
    println!(
        "raw gemm, same GEMMs {:>8.1} µs   {:>8.0} samples/s   {:>6.2} GFLOP/s",
        raw * 1e6,
        batch as f64 / raw,
        raw_flops / raw * 1e-9
    );
    println!("ratio library/raw (throughput): {:.3}", raw / ours);
    println!(
        "GEMM FLOPs per step: library {:.2} M, raw list {:.2} M",
        flops * 1e-6,
        raw_flops * 1e-6
    );
}
