//! LeNet-5 benchmark: one forward+backward step at batch 64 through the library, against
//! the raw GEMM crate running the same matrix products (the im2col shapes of both conv
//! layers per image, spread over the thread pool by image as our kernel does, and the three
//! linear layers), measured in the same run. Run with `cargo bench --bench lenet`.

use std::time::Instant;

use backprop::train::ModelSpec;
use rayon::prelude::*;

mod common;
use common::{flops, gemm_once, report, time_library_step, tune_allocator, Shape};

fn main() {
    tune_allocator();
    let batch = 64;
    let threads = rayon::current_num_threads();
    println!("backprop LeNet-5 benchmark ({threads} threads, batch {batch})");
    let reps = 100;
    let (ours, st) = time_library_step(&ModelSpec::lenet5(10), batch, 10, reps);

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
    let raw_flops = batch as f64 * flops(&per_image) + flops(&per_batch);
    report(batch, reps, ours, &st, raw, raw_flops);
}
