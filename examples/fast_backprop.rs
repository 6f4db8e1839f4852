//! "In what sense is backpropagation a fast algorithm?" (the lectures' question, after
//! Nielsen ch. 2): one gradient of the cost with respect to all N parameters by
//! backpropagation costs about as much as two or three forward passes, whatever N; by finite
//! differences, `∂C/∂w_j ≈ (C(w + εe_j) − C(w − εe_j)) / 2ε`, it costs 2N forward passes.
//!
//! For MLPs of growing width this example times one forward pass, one backprop gradient
//! (forward + backward) and the finite-difference gradient, checks the two gradients agree
//! (f64, central differences), and plots the times against N, and the ratio of each to
//! one forward pass.
//!
//! `cargo run --release --example fast_backprop` → fast_backprop.svg, fast_backprop_ratio.svg

use std::path::Path;
use std::time::Instant;

use backprop::nn::{loss, Activation, Linear, Mode, Module, Sequential};
use backprop::train::plot::{write_svg, xy_chart_svg};
use backprop::{no_grad, Rng, Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

fn mlp(inputs: usize, width: usize, seed: u64) -> Sequential<f64> {
    let mut rng = Rng::seed(seed);
    Sequential::<f64>::new()
        .add("fc1", Linear::new(inputs, width, &mut rng))
        .add("tanh1", Activation::Tanh)
        .add("fc2", Linear::new(width, width, &mut rng))
        .add("tanh2", Activation::Tanh)
        .add("fc3", Linear::new(width, 10, &mut rng))
}

/// The cost C(w): mean cross-entropy of a fixed batch.
fn cost(net: &Sequential<f64>, x: &Var<f64>, labels: &[usize]) -> Var<f64> {
    loss::cross_entropy(&net.forward(x, Mode::Eval), labels, loss::Reduction::Mean)
}

/// Seconds per call of `f`, repeated until at least `budget` seconds have passed.
fn time_per_call(budget: f64, mut f: impl FnMut()) -> f64 {
    let t0 = Instant::now();
    let mut n = 0u32;
    while n == 0 || t0.elapsed().as_secs_f64() < budget {
        f();
        n += 1;
    }
    t0.elapsed().as_secs_f64() / f64::from(n)
}

struct Row {
    n: usize,
    forward: f64,
    backprop: f64,
    finite: f64,
    max_diff: f64,
}

fn measure(width: usize, budget: f64) -> Row {
    let (inputs, batch) = (20, 32);
    let net = mlp(inputs, width, 1);
    let mut rng = Rng::seed(2);
    let x = Var::constant(Tensor::<f64>::rand_normal(
        &[batch, inputs],
        0.0,
        1.0,
        &mut rng,
    ));
    let labels: Vec<usize> = (0..batch).map(|_| rng.below(10)).collect();
    let params: Vec<Var<f64>> = net.params().into_iter().map(|(_, p)| p).collect();
    let n: usize = params.iter().map(|p| p.with_value(|t| t.numel())).sum();
    let forward = time_per_call(budget, || {
        no_grad(|| cost(&net, &x, &labels).item());
    });
    let mut grads = None;
    let backprop = time_per_call(budget, || grads = Some(cost(&net, &x, &labels).backward()));
    let grads = grads.expect("ran at least once");
    // finite differences: 2 forward passes per parameter
    let eps = 1e-6;
    let mut fd = Vec::with_capacity(n);
    let t0 = Instant::now();
    no_grad(|| {
        for p in &params {
            for j in 0..p.with_value(|t| t.numel()) {
                let w = p.with_value(|t| t.data()[j]);
                p.update(|d| d[j] = w + eps);
                let up = cost(&net, &x, &labels).item();
                p.update(|d| d[j] = w - eps);
                let down = cost(&net, &x, &labels).item();
                p.update(|d| d[j] = w);
                fd.push((up - down) / (2.0 * eps));
            }
        }
    });
    let finite = t0.elapsed().as_secs_f64();
    let bp: Vec<f64> = params
        .iter()
        .flat_map(|p| {
            grads
                .get(p)
                .expect("every parameter has a gradient")
                .to_vec()
        })
        .collect();
    let max_diff = bp
        .iter()
        .zip(&fd)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    Row {
        n,
        forward,
        backprop,
        finite,
        max_diff,
    }
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let (widths, budget): (&[usize], f64) = if quick {
        (&[4, 8, 16], 0.02)
    } else {
        (&[4, 8, 16, 32, 64, 128], 0.3)
    };
    println!(
        "{:>7} {:>12} {:>12} {:>12} {:>10} {:>12} {:>10}",
        "N", "forward", "backprop", "finite diff", "bp/fwd", "fd/fwd", "max |Δ|"
    );
    let rows: Vec<Row> = widths.iter().map(|&w| measure(w, budget)).collect();
    for r in &rows {
        println!(
            "{:>7} {:>10.1}µs {:>10.1}µs {:>10.1}ms {:>10.2} {:>12.0} {:>10.1e}",
            r.n,
            r.forward * 1e6,
            r.backprop * 1e6,
            r.finite * 1e3,
            r.backprop / r.forward,
            r.finite / r.forward,
            r.max_diff
        );
    }
    let pts = |f: &dyn Fn(&Row) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| ((r.n as f64).log10(), f(r))).collect()
    };
    write_svg(
        &out.join("fast_backprop.svg"),
        &xy_chart_svg(
            "one gradient: backpropagation vs finite differences",
            "log10 N (parameters)",
            "seconds (log scale)",
            &[
                ("one forward pass", pts(&|r| r.forward)),
                ("backprop (forward + backward)", pts(&|r| r.backprop)),
                ("finite differences (2N forward passes)", pts(&|r| r.finite)),
            ],
            true,
        ),
    )?;
    write_svg(
        &out.join("fast_backprop_ratio.svg"),
        &xy_chart_svg(
            "cost of one gradient in forward passes",
            "log10 N (parameters)",
            "time / one forward pass (log scale)",
            &[
                ("backprop", pts(&|r| r.backprop / r.forward)),
                ("finite differences", pts(&|r| r.finite / r.forward)),
                ("2N", pts(&|r| 2.0 * r.n as f64)),
            ],
            true,
        ),
    )?;
    let (first, last) = (&rows[0], rows.last().expect("at least one width"));
    Ok(vec![
        ("largest_n", last.n as f64),
        ("bp_over_forward_largest", last.backprop / last.forward),
        ("fd_over_forward_largest", last.finite / last.forward),
        ("fd_over_forward_smallest", first.finite / first.forward),
        (
            "max_diff",
            rows.iter().map(|r| r.max_diff).fold(0.0, f64::max),
        ),
    ])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("fast_backprop");
    run(quick, &out).map(|_| ())
}
