//! Universal approximation: one hidden layer of tanh units fits a 1-D function, and the
//! error falls as the layer gets wider.
//!
//! `cargo run --release --example universal_approximation` → fits.svg, error_vs_width.svg

use std::path::Path;

use backprop::nn::{loss, Mode, Module};
use backprop::optim::{Adam, Optimizer};
use backprop::train::plot::{write_svg, xy_chart_svg};
use backprop::train::ModelSpec;
use backprop::{no_grad, Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

fn target(x: f64) -> f64 {
    (3.0 * x).sin() + 0.5 * (7.0 * x).cos() * x
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let n = 200;
    let xs: Vec<f64> = (0..n)
        .map(|i| -1.5 + 3.0 * i as f64 / (n - 1) as f64)
        .collect();
    let x = Var::constant(Tensor::<f32>::from_vec(
        xs.iter().map(|&v| v as f32).collect(),
        &[n, 1],
    ));
    let y = Tensor::<f32>::from_vec(xs.iter().map(|&v| target(v) as f32).collect(), &[n, 1]);
    let widths: &[usize] = if quick {
        &[1, 4, 16]
    } else {
        &[1, 2, 4, 8, 16, 32, 64]
    };
    let steps = if quick { 300 } else { 8000 };
    let mut fits = vec![(
        "target",
        xs.iter().map(|&v| (v, target(v))).collect::<Vec<_>>(),
    )];
    let mut errors = Vec::new();
    for &w in widths {
        let net = ModelSpec::mlp(&[w], "tanh", 0.0, 1)?
            .build::<f32>(1, Some(1), 1)?
            .model;
        let mut opt = Adam::new(net.params(), 0.005);
        for _ in 0..steps {
            opt.step(&loss::mse(&net.forward(&x, Mode::Train), &y).backward());
        }
        let pred = no_grad(|| net.forward(&x, Mode::Eval)).value();
        let err = pred.sub(&y).abs().max_all() as f64;
        println!("{w:>3} hidden units: largest error {err:.4}");
        errors.push((w as f64, err));
        if [1, 4, 16, 64].contains(&w) {
            let name: &'static str = Box::leak(format!("{w} units").into_boxed_str());
            fits.push((
                name,
                xs.iter()
                    .copied()
                    .zip(pred.data().iter().map(|&v| v as f64))
                    .collect(),
            ));
        }
    }
    write_svg(
        &out.join("fits.svg"),
        &xy_chart_svg("one hidden layer fitting f(x)", "x", "f(x)", &fits, false),
    )?;
    write_svg(
        &out.join("error_vs_width.svg"),
        &xy_chart_svg(
            "largest error against width",
            "hidden units",
            "max |f − net| (log scale)",
            &[("error", errors.clone())],
            true,
        ),
    )?;
    Ok(vec![
        ("narrow_error", errors[0].1),
        ("wide_error", errors.last().unwrap().1),
    ])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("universal_approximation");
    run(quick, &out).map(|_| ())
}
