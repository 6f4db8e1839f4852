//! Foundation benchmark: the Tensor API's matmul against the raw GEMM crate on the same
//! shapes, and one forward+backward step of a 784-256-128-10 ReLU MLP with the share of its
//! time spent inside GEMM. Run with `cargo bench --bench foundation`.
//!
//! Everything is measured in this one run, interleaved (raw, ours, raw, ours, ...) and the
//! best round of each kept, so the ratios hold even when absolute times drift.

use std::time::Instant;

use backprop::autograd::Var;
use backprop::tensor::{profile, Rng, Tensor};

mod common;
use common::{best_of, gemm_once};

fn raw_gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let par = if rayon::current_num_threads() > 1 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    gemm_once((m, n, k), a, b, c, par);
}

fn main() {
    println!(
        "backprop foundation benchmark ({} threads)",
        rayon::current_num_threads()
    );
    println!();
    println!("matmul, f32: Tensor API against the raw gemm crate, same shapes, same run");
    println!(
        "{:<22} {:>12} {:>12} {:>8}",
        "shape", "raw GFLOP/s", "API GFLOP/s", "ratio"
    );
    let mut rng = Rng::seed(0);
    let mut worst_ratio = f64::INFINITY;
    for &(m, k, n) in &[
        (64, 784, 256),
        (128, 784, 256),
        (256, 128, 784),
        (1024, 1024, 1024),
    ] {
        let a = Tensor::<f32>::rand_normal(&[m, k], 0.0, 1.0, &mut rng);
        let b = Tensor::<f32>::rand_normal(&[k, n], 0.0, 1.0, &mut rng);
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let reps = ((2e8 / flops) as usize).clamp(1, 2000);
        let (mut raw, mut api) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..9 {
            raw = raw.min(best_of(1, reps, || {
                raw_gemm(m, k, n, a.data(), b.data(), &mut c)
            }));
            api = api.min(best_of(1, reps, || {
                drop(std::hint::black_box(a.matmul(&b)))
            }));
        }
        let ratio = raw / api;
        worst_ratio = worst_ratio.min(ratio);
        println!(
            "{:<22} {:>12.1} {:>12.1} {:>8.3}",
            format!("[{m},{k}]x[{k},{n}]"),
            flops / raw * 1e-9,
            flops / api * 1e-9,
            ratio
        );
    }
    println!("worst API/raw ratio: {worst_ratio:.3} (target >= 0.9)");
    println!();

    // One training step of the 784-256-128-10 ReLU MLP at batch 64.
    let batch = 64;
    let sizes = [784, 256, 128, 10];
    let params: Vec<(Var, Var)> = sizes
        .windows(2)
        .map(|w| {
            let bound = (6.0 / w[0] as f64).sqrt();
            (
                Var::parameter(Tensor::rand_uniform(&[w[1], w[0]], -bound, bound, &mut rng)),
                Var::parameter(Tensor::zeros(&[w[1]])),
            )
        })
        .collect();
    let x = Tensor::<f32>::rand_uniform(&[batch, 784], 0.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..batch).map(|_| rng.below(10)).collect();
    let step = || {
        let mut h = Var::constant(x.clone());
        for (i, (w, b)) in params.iter().enumerate() {
            h = h.linear(w, Some(b));
            if i + 1 < params.len() {
                h = h.relu();
            }
        }
        let loss = h.log_softmax(1).gather(1, &labels).mean().neg();
        let grads = loss.backward();
        for (w, b) in &params {
            for p in [w, b] {
                let g = grads.get(p).unwrap();
                p.update(|d| d.iter_mut().zip(g.data()).for_each(|(v, g)| *v -= 0.01 * g));
            }
        }
    };
    for _ in 0..20 {
        step();
    }
    let reps = 300;
    profile::reset();
    profile::set_enabled(true);
    let t = Instant::now();
    for _ in 0..reps {
        step();
    }
    let total = t.elapsed().as_secs_f64();
    profile::set_enabled(false);
    let stats = profile::gemm_stats();
    let step_s = total / reps as f64;
    let flops_per_step = stats.flops as f64 / reps as f64;
    println!("MLP 784-256-128-10 ReLU, softmax cross-entropy, batch {batch}: forward + backward + SGD update");
    println!("  step time            {:>10.1} µs", step_s * 1e6);
    println!("  GEMM calls per step  {:>10}", stats.calls / reps as u64);
    println!("  GEMM GFLOP per step  {:>10.4}", flops_per_step * 1e-9);
    println!(
        "  throughput           {:>10.1} GFLOP/s",
        flops_per_step / step_s * 1e-9
    );
    println!(
        "  time inside GEMM     {:>10.1} %   (target >= 70%)",
        100.0 * stats.seconds / total
    );
}
