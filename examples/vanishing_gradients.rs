//! Vanishing gradients: the norm of ∂C/∂W for each layer of a 10-layer network, with
//! sigmoid, with ReLU, and with residual connections around sigmoid layers. With sigmoid
//! the gradient shrinks by roughly σ'(z) ≤ 1/4 per layer toward the input; the residual
//! path `z + f(z)` carries it through.
//!
//! `cargo run --release --example vanishing_gradients` → gradient_norms.svg

use std::path::Path;

use backprop::nn::{loss, Activation, Linear, Mode, Module, Residual, Sequential};
use backprop::train::plot::{write_svg, xy_chart_svg};
use backprop::{Rng, Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

fn deep(act: Activation, residual: bool, depth: usize, width: usize, seed: u64) -> Sequential<f32> {
    let mut rng = Rng::seed(seed);
    let mut net = Sequential::<f32>::new();
    for l in 0..depth {
        let lin = Linear::<f32>::with_init(
            width,
            width,
            backprop::nn::Init::XavierNormal,
            true,
            &mut rng,
        );
        if residual {
            net = net.add(
                &format!("block{}", l + 1),
                Residual::new(Sequential::<f32>::new().add("fc", lin).add("act", act)),
            );
        } else {
            net = net
                .add(&format!("fc{}", l + 1), lin)
                .add(&format!("act{}", l + 1), act);
        }
    }
    net.add("out", Linear::new(width, 2, &mut rng))
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let (depth, width) = (10, if quick { 16 } else { 32 });
    let mut rng = Rng::seed(1);
    let x = Var::constant(Tensor::<f32>::rand_normal(&[64, width], 0.0, 1.0, &mut rng));
    let labels: Vec<usize> = (0..64).map(|_| rng.below(2)).collect();
    let mut series = Vec::new();
    let mut ratios = Vec::new();
    for (name, act, res) in [
        ("sigmoid", Activation::Sigmoid, false),
        ("relu", Activation::Relu, false),
        ("residual sigmoid", Activation::Sigmoid, true),
    ] {
        let net = deep(act, res, depth, width, 3);
        let g = loss::cross_entropy(
            &net.forward(&x, Mode::Train),
            &labels,
            loss::Reduction::Mean,
        )
        .backward();
        // the norm of each hidden layer's weight gradient, input side first
        let norms: Vec<(f64, f64)> = net
            .params()
            .iter()
            .filter(|(n, p)| {
                n.ends_with("weight") && !n.starts_with("out") && p.shape()[0] == width
            })
            .enumerate()
            .map(|(l, (_, p))| {
                (
                    (l + 1) as f64,
                    g.get(p)
                        .unwrap()
                        .data()
                        .iter()
                        .map(|v| (*v as f64).powi(2))
                        .sum::<f64>()
                        .sqrt(),
                )
            })
            .collect();
        let ratio = norms.first().unwrap().1 / norms.last().unwrap().1;
        println!(
            "{name:<17} ‖∂C/∂W‖ layer 1: {:.2e}, layer {depth}: {:.2e}  (first/last = {ratio:.2e})",
            norms[0].1,
            norms.last().unwrap().1
        );
        ratios.push(ratio);
        series.push((name, norms));
    }
    write_svg(
        &out.join("gradient_norms.svg"),
        &xy_chart_svg(
            "gradient norm per layer (10 layers)",
            "layer (1 = next to the input)",
            "‖∂C/∂W‖ (log scale)",
            &series,
            true,
        ),
    )?;
    Ok(vec![
        ("sigmoid_ratio", ratios[0]),
        ("relu_ratio", ratios[1]),
        ("residual_ratio", ratios[2]),
    ])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("vanishing_gradients");
    run(quick, &out).map(|_| ())
}
