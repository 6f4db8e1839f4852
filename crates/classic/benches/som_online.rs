//! Online SOM training speed: microseconds per iteration on a 15 × 15 map for 64- and
//! 784-feature data (the shapes of the MiniSom comparison in benches/peers/som_bench.py),
//! with the SIMD build the CPU selects.
//!
//! `cargo bench -p backprop-classic --bench som_online`

use std::time::Instant;

use backprop_classic::som::{Kernels, Som, SomConfig, TrainMode};
use backprop_tensor::Rng;

fn main() {
    let mut rng = Rng::seed(0);
    println!("kernels: {:?}", Kernels::detect());
    for d in [64usize, 784] {
        let n = 2000;
        let data: Vec<f32> = (0..n * d).map(|_| rng.uniform() as f32).collect();
        let cfg = SomConfig {
            rows: 15,
            cols: 15,
            sigma: 3.0,
            ..SomConfig::default()
        };
        let mut som = Som::new(&cfg, d).unwrap();
        let iters = if d == 64 { 50_000 } else { 5_000 };
        let t = Instant::now();
        som.train(&data, iters, TrainMode::Online, false).unwrap();
        let us = t.elapsed().as_secs_f64() * 1e6 / iters as f64;
        println!("RESULT som_online d={d} units=225: {us:.2} µs/iteration");
    }
}
