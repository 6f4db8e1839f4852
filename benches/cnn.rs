//! W6 benchmark: one forward+backward step of the `cnn` preset (conv-BN-ReLU blocks of 16, 32
//! and 64 channels, batch norm in training mode) at batch 64 through the library, against
//! the raw GEMM crate running the same matrix products (the im2col shapes of the three conv
//! layers per image, spread over the thread pool by image as our kernel does, and the two
//! linear layers), measured in the same run. The ratio is how close the whole step (batch
//! norm, pooling, ReLU, im2col, the graph) comes to the bare products. Run with
//! `cargo bench --bench cnn`.

use std::time::Instant;

use backprop::train::ModelSpec;
use rayon::prelude::*;

mod common;
use common::{flops, gemm_once, report, time_library_step, tune_allocator, Shape};

/// Per image, (m, n, k) as the library calls them: forward `W·col`, the transposed weight
/// gradient `col·dYᵀ`, and (but for the first layer, whose input needs no gradient)
/// `Wᵀ·dY`.
const PER_IMAGE: [Shape; 8] = [
    (16, 784, 9),   // conv1 forward: W[16×9]·col[9×784]
    (9, 16, 784),   // conv1 dWᵀ = col·dYᵀ
    (32, 196, 144), // conv2 forward
    (144, 32, 196), // conv2 dWᵀ
    (144, 196, 32), // conv2 dcol = Wᵀ·dY
    (64, 49, 288),  // conv3 forward
    (288, 64, 49),  // conv3 dWᵀ
    (288, 49, 64),  // conv3 dcol
];

fn per_batch(batch: usize) -> [Shape; 6] {
    [
        (batch, 128, 3136), // fc1 forward
        (128, 3136, batch), // fc1 dW
        (batch, 3136, 128), // fc1 dx
        (batch, 10, 128),   // fc2
        (10, 128, batch),
        (batch, 128, 10),
    ]
}

fn main() {
    tune_allocator();
    let batch = 64;
    let threads = rayon::current_num_threads();
    println!("backprop cnn (W6) benchmark ({threads} threads, batch {batch})");
    let reps = 40;
    let (ours, st) = time_library_step(&ModelSpec::cnn(10), batch, 5, reps);

    let batch_shapes = per_batch(batch);
    let buf = |s: Shape| {
        (
            vec![0.5f32; s.0 * s.2],
            vec![0.25f32; s.2 * s.1],
            vec![0f32; s.0 * s.1],
        )
    };
    let image_bufs: Vec<_> = PER_IMAGE.iter().map(|&s| buf(s)).collect();
    let mut batch_bufs: Vec<_> = batch_shapes.iter().map(|&s| buf(s)).collect();
    let mut raw_step = || {
        (0..batch).into_par_iter().for_each_init(
            || image_bufs.clone(),
            |bufs, _| {
                for (&s, (a, b, c)) in PER_IMAGE.iter().zip(bufs.iter_mut()) {
                    gemm_once(s, a, b, c, gemm::Parallelism::None);
                }
            },
        );
        for (&s, (a, b, c)) in batch_shapes.iter().zip(batch_bufs.iter_mut()) {
            let par = if s.0 * s.1 * s.2 >= 48 * 48 * 48 {
                gemm::Parallelism::Rayon(threads)
            } else {
                gemm::Parallelism::None
            };
            gemm_once(s, a, b, c, par);
        }
    };
    for _ in 0..5 {
        raw_step();
    }
    let t = Instant::now();
    for _ in 0..reps {
        raw_step();
    }
    let raw = t.elapsed().as_secs_f64() / reps as f64;
    let raw_flops = batch as f64 * flops(&PER_IMAGE) + flops(&batch_shapes);
    report(batch, reps, ours, &st, raw, raw_flops);
}
