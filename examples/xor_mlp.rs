//! A 2-2-1 sigmoid network learns XOR by backpropagation, where a single perceptron cannot.
//!
//! `cargo run --release --example xor_mlp`

use std::path::Path;

use backprop::nn::{loss, Activation, Linear, Mode, Module, Sequential};
use backprop::optim::{Optimizer, Sgd};
use backprop::train::plot::{line_chart_svg, write_svg};
use backprop::{no_grad, Rng, Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let x = Var::constant(Tensor::<f32>::from_vec(
        vec![0., 0., 0., 1., 1., 0., 1., 1.],
        &[4, 2],
    ));
    let y = Tensor::from_vec(vec![0., 1., 1., 0.], &[4, 1]);
    // seed 7: a 2-2-1 sigmoid net has local minima on XOR; most seeds find a solution
    let mut rng = Rng::seed(7);
    let net = Sequential::<f32>::new()
        .add("hidden", Linear::new(2, 2, &mut rng))
        .add("sigma1", Activation::Sigmoid)
        .add("out", Linear::new(2, 1, &mut rng))
        .add("sigma2", Activation::Sigmoid);
    let mut opt = Sgd::new(net.params(), 2.0).momentum(0.9);
    let epochs = if quick { 2000 } else { 3000 };
    let mut costs = Vec::new();
    for _ in 0..epochs {
        // full-batch gradient descent on C = 1/(2n) Σ ‖y − a‖²
        let c = loss::half_squared_error(&net.forward(&x, Mode::Train), &y, loss::Reduction::Mean);
        costs.push(c.item() as f64);
        opt.step(&c.backward());
    }
    let a = no_grad(|| net.forward(&x, Mode::Eval)).value();
    for (i, p) in [[0, 0], [0, 1], [1, 0], [1, 1]].iter().enumerate() {
        println!("{p:?} → {:.4}  (want {})", a.data()[i], y.data()[i]);
    }
    let right = a
        .data()
        .iter()
        .zip(y.data())
        .filter(|(o, t)| (**o > 0.5) == (**t > 0.5))
        .count();
    println!(
        "{right}/4 on the right side of 0.5 after {epochs} epochs; final cost {:.5}",
        costs.last().unwrap()
    );
    write_svg(
        &out.join("xor_cost.svg"),
        &line_chart_svg(
            "XOR: cost per epoch",
            "C",
            &[("2-2-1 sigmoid", costs.clone())],
        ),
    )?;
    Ok(vec![
        ("right", right as f64),
        ("final_cost", *costs.last().unwrap()),
    ])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("xor_mlp");
    run(quick, &out).map(|_| ())
}
