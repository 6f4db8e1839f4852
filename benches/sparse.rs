//! Sparse-input linear kernels against the dense GEMM path on the MLP's shapes, over input
//! densities, single-threaded as inside the trainer's half-batch tasks. Prints the ratio
//! sparse / dense measured in this run; it is how `sparse::MAX_DENSITY_FORWARD`,
//! `sparse::MAX_DENSITY_FORWARD_NARROW` and `sparse::MAX_DENSITY_WEIGHT_GRAD` were chosen.
//! Run with `cargo bench --bench sparse`.

use backprop::tensor::ops::sparse;
use backprop::tensor::{Rng, Tensor};

mod common;
use common::{best_of, tune_allocator};

fn with_density(rows: usize, cols: usize, density: f64, rng: &mut Rng) -> Tensor<f32> {
    let v = Tensor::<f32>::rand_uniform(&[rows, cols], 0.0, 1.0, rng);
    let keep = Tensor::<f32>::rand_uniform(&[rows, cols], 0.0, 1.0, rng);
    let data = v
        .to_vec()
        .into_iter()
        .zip(keep.to_vec())
        .map(|(v, k)| if (k as f64) < density { v } else { 0.0 })
        .collect();
    Tensor::from_vec(data, &[rows, cols])
}

fn main() {
    // as the CLI does, so fresh buffers do not page-fault on every call
    tune_allocator();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    pool.install(|| {
        println!("sparse-input linear kernels / dense GEMM, one thread (ratio < 1: sparse wins)");
        println!(
            "{:<16} {:>8} {:>11} {:>11} {:>7} {:>11} {:>11} {:>7}",
            "rows×in×out",
            "density",
            "fwd dense",
            "fwd sparse",
            "ratio",
            "dW dense",
            "dW sparse",
            "ratio"
        );
        let mut rng = Rng::seed(0);
        for &(rows, inf, outf) in &[
            (32, 784, 256),
            (32, 256, 128),
            (1024, 784, 256),
            // layers much wider at the input (`sparse::NARROW_RATIO`): the `cnn` preset's fc1
            (32, 1568, 128),
            (64, 3136, 128),
            (32, 3136, 64),
        ] {
            let w = Tensor::<f32>::rand_normal(&[outf, inf], 0.0, 0.05, &mut rng);
            let b = Tensor::<f32>::zeros(&[outf]);
            let g = Tensor::<f32>::rand_normal(&[rows, outf], 0.0, 1.0, &mut rng);
            for &d in &[0.1, 0.19, 0.3, 0.4, 0.5, 0.6] {
                let x = with_density(rows, inf, d, &mut rng);
                let reps = (2_000_000 / (rows * inf)).max(3);
                let fd = best_of(5, reps, || {
                    std::hint::black_box(x.matmul_nt(&w));
                });
                let fs = best_of(5, reps, || {
                    std::hint::black_box(sparse::linear_forward_sparse(
                        x.data(),
                        rows,
                        inf,
                        w.data(),
                        outf,
                        Some(b.data()),
                    ));
                });
                let gd = best_of(5, reps, || {
                    std::hint::black_box(g.matmul_tn(&x));
                });
                let gs = best_of(5, reps, || {
                    std::hint::black_box(sparse::linear_weight_grad_sparse(
                        g.data(),
                        x.data(),
                        rows,
                        inf,
                        outf,
                    ));
                });
                println!(
                    "{:<16} {:>8.2} {:>9.1}µs {:>9.1}µs {:>7.3} {:>9.1}µs {:>9.1}µs {:>7.3}",
                    format!("{rows}×{inf}×{outf}"),
                    d,
                    fd * 1e6,
                    fs * 1e6,
                    fs / fd,
                    gd * 1e6,
                    gs * 1e6,
                    gs / gd
                );
            }
        }
    });
}
