//! The lectures' worked example: a 2-2-1 sigmoid network with no biases, inputs
//! (0.35, 0.9), hidden weights (0.1, 0.8) and (0.4, 0.6), output weights (0.3, 0.9),
//! target 0.5, η = 1, C = ½(y − t)². Prints the trace of one step (the lecture gets output
//! 0.69 and new output weights 0.272392, 0.87305 rounding along the way; exactly they are
//! 0.272326 and 0.872998) and checks the gradients against central differences.
//!
//! `cargo run --release --example worked_example`

use std::path::Path;

use backprop::autograd::GradcheckOptions;
use backprop::train::trace::{trace, TraceCost};
use backprop::train::ModelSpec;
use backprop::Var;

type Figures = Vec<(&'static str, f64)>;

pub fn run(_quick: bool, _out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    let spec = ModelSpec::from_toml(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/specs/worked_example.toml"
    ))?)?;
    let net = spec.build::<f64>(2, Some(1), 0)?.model;
    let t = trace(&net, &[0.35, 0.9], &TraceCost::Squared(vec![0.5]), 1.0)?;
    print!("{t}");
    // the same gradients by central differences
    let params: Vec<Var<f64>> = backprop::nn::Module::params(&net)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let x = Var::constant(backprop::Tensor::from_vec(vec![0.35, 0.9], &[1, 2]));
    let report = backprop::autograd::gradcheck_vars(
        || {
            let y = backprop::nn::Module::forward(&net, &x, backprop::nn::Mode::Eval);
            y.add_scalar(-0.5).powf(2.0).mul_scalar(0.5).sum()
        },
        &params,
        GradcheckOptions::default(),
    );
    println!("\n{report}");
    let w2 = &t.layers[1].new_weight[0];
    Ok(vec![
        ("output", t.layers[1].a[0]),
        ("w2_top", w2[0]),
        ("w2_bottom", w2[1]),
        ("gradcheck_rel", report.max_rel_err()),
    ])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("worked_example");
    run(quick, &out).map(|_| ())
}
