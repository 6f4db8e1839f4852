//! Every activation and its derivative, plotted over [−4, 4]; the derivatives come from the
//! autodiff engine, so the plot also shows the documented values at the kinks.
//!
//! `cargo run --release --example activations` → activations.svg, derivatives.svg

use std::path::Path;

use backprop::nn::{Activation, Mode, Module};
use backprop::train::plot::{write_svg, xy_chart_svg};
use backprop::{Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let n = if quick { 81 } else { 801 };
    let xs: Vec<f64> = (0..n)
        .map(|i| -4.0 + 8.0 * i as f64 / (n - 1) as f64)
        .collect();
    let acts = [
        ("step", Activation::Step),
        ("sign", Activation::Sign),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
        ("relu", Activation::Relu),
        ("leaky relu 0.1", Activation::LeakyRelu(0.1)),
        ("elu", Activation::Elu(1.0)),
        ("gelu", Activation::Gelu),
        ("silu", Activation::Silu),
    ];
    let mut values = Vec::new();
    let mut derivs = Vec::new();
    for (name, a) in acts {
        let x = Var::parameter(Tensor::<f64>::from_vec(xs.clone(), &[n]));
        let y = Module::<f64>::forward(&a, &x, Mode::Eval);
        let g = y.sum().backward(); // elementwise, so the gradient is f'(x)
        let d = g.get(&x).unwrap().to_vec();
        values.push((
            name,
            xs.iter()
                .copied()
                .zip(y.value().to_vec())
                .collect::<Vec<_>>(),
        ));
        derivs.push((name, xs.iter().copied().zip(d).collect::<Vec<_>>()));
    }
    write_svg(
        &out.join("activations.svg"),
        &xy_chart_svg("activations", "x", "f(x)", &values, false),
    )?;
    write_svg(
        &out.join("derivatives.svg"),
        &xy_chart_svg("derivatives (from autodiff)", "x", "f'(x)", &derivs, false),
    )?;
    let at0 = |name: &str| derivs.iter().find(|(n, _)| *n == name).unwrap().1[(n - 1) / 2].1;
    println!(
        "derivatives at 0: relu {}, leaky relu {}, sigmoid {}, tanh {}, step {}",
        at0("relu"),
        at0("leaky relu 0.1"),
        at0("sigmoid"),
        at0("tanh"),
        at0("step")
    );
    println!(
        "wrote {} and {}",
        out.join("activations.svg").display(),
        out.join("derivatives.svg").display()
    );
    Ok(vec![
        ("relu_prime_0", at0("relu")),
        ("sigmoid_prime_0", at0("sigmoid")),
    ])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("activations");
    run(quick, &out).map(|_| ())
}
