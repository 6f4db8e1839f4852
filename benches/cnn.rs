//! W6 benchmark: one forward+backward step of the `cnn` preset (conv-BN-ReLU blocks of 16, 32
//! and 64 channels, batch norm in training mode) at batch 64 through the library, against
//! the raw GEMM crate running the same matrix products (the im2col shapes of the three conv
//! layers per image, spread over the thread pool by image as our kernel does, and the two
//! linear layers), measured in the same run. The ratio is how close the whole step (batch
//! norm, pooling, ReLU, im2col, the graph) comes to the bare products. Run with
//! `cargo bench --bench cnn`.

use std::time::Instant;

use backprop::autograd::Var;
use backprop::nn::{loss, Mode, Module};
use backprop::tensor::{profile, Rng, Tensor};
use backprop::train::ModelSpec;
use rayon::prelude::*;

mod common;
use common::{gemm_once, Shape};

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

fn flops(shapes: &[Shape]) -> f64 {
    shapes.iter().map(|s| 2.0 * (s.0 * s.1 * s.2) as f64).sum()
}

fn main() {
    // the same allocator settings as the `backprop` binary (src/main.rs)
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    let batch = 64;
    let threads = rayon::current_num_threads();
    println!("backprop cnn (W6) benchmark ({threads} threads, batch {batch})");
    let model = ModelSpec::cnn(10)
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
    for _ in 0..5 {
        step();
    }
    let reps = 40;
    profile::reset();
    profile::set_enabled(true);
    let t = Instant::now();
    for _ in 0..reps {
        step();
    }
    let ours = t.elapsed().as_secs_f64() / reps as f64;
    profile::set_enabled(false);
    let st = profile::gemm_stats();
    let lib_flops = st.flops as f64 / reps as f64;

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
