//! Times the kernels of W6's training step (`backprop bench cnn-bn`) other than its GEMMs'
//! share, on W6's shapes at batch 64: batch norm + ReLU forward and backward, 2×2 max
//! pooling forward and backward, and each convolution's forward and backward pass. Each is
//! run `REPS` times; the minimum and the median are printed (the minimum is what a loaded
//! machine disturbs least).
//!
//! `cargo run --release -p backprop-tensor --example cnn_glue`

use std::time::Instant;

use backprop_tensor::{
    batch_norm_relu_backward, batch_norm_relu_forward, conv2d_backward, conv2d_forward,
    max_pool2d_backward, max_pool2d_forward, Conv2dParams, Pool2dParams, Rng, Tensor,
};

const REPS: usize = 60;

fn time(name: &str, mut f: impl FnMut()) {
    f();
    let mut t: Vec<f64> = (0..REPS)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    println!(
        "{name:<34} min {:>8.1} µs   median {:>8.1} µs",
        t[0],
        t[REPS / 2]
    );
}

fn main() {
    let mut rng = Rng::seed(1);
    let n = 64;
    for (c, hw) in [(16, 28), (32, 14), (64, 7)] {
        let x = Tensor::<f32>::rand_normal(&[n, c, hw, hw], 0.1, 1.0, &mut rng);
        let g = Tensor::<f32>::rand_normal(&[c], 1.0, 0.2, &mut rng);
        let b = Tensor::<f32>::rand_normal(&[c], 0.0, 0.2, &mut rng);
        let dy = Tensor::<f32>::rand_normal(&[n, c, hw, hw], 0.0, 1.0, &mut rng);
        let (_, m, v) = batch_norm_relu_forward(&x, &g, &b, 1e-5);
        time(&format!("bn+relu forward  [{n},{c},{hw},{hw}]"), || {
            std::hint::black_box(batch_norm_relu_forward(&x, &g, &b, 1e-5));
        });
        time(&format!("bn+relu backward [{n},{c},{hw},{hw}]"), || {
            std::hint::black_box(batch_norm_relu_backward(&x, &g, &b, &m, &v, 1e-5, &dy));
        });
        if hw > 7 {
            let p = Pool2dParams::square(2);
            let (y, idx) = max_pool2d_forward(&x, p).unwrap();
            let gy = Tensor::<f32>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
            time(&format!("max pool forward  [{n},{c},{hw},{hw}]"), || {
                std::hint::black_box(max_pool2d_forward(&x, p).unwrap());
            });
            time(&format!("max pool backward [{n},{c},{hw},{hw}]"), || {
                std::hint::black_box(max_pool2d_backward(x.shape(), &gy, &idx, p));
            });
        }
    }
    let p = Conv2dParams {
        padding: (1, 1),
        ..Default::default()
    };
    // (input channels, output channels, size, whether dx is wanted)
    for (ci, co, hw, want_dx) in [(1, 16, 28, false), (16, 32, 14, true), (32, 64, 7, true)] {
        let x = Tensor::<f32>::rand_normal(&[n, ci, hw, hw], 0.0, 1.0, &mut rng);
        let w = Tensor::<f32>::rand_normal(&[co, ci, 3, 3], 0.0, 0.1, &mut rng);
        let dy = Tensor::<f32>::rand_normal(&[n, co, hw, hw], 0.0, 1.0, &mut rng);
        time(&format!("conv forward  {ci}->{co} {hw}x{hw}"), || {
            std::hint::black_box(conv2d_forward(&x, &w, None, p));
        });
        time(&format!("conv backward {ci}->{co} {hw}x{hw}"), || {
            std::hint::black_box(conv2d_backward(&x, &w, &dy, p, (want_dx, true, false)));
        });
    }
}
