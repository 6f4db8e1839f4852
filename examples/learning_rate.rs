//! The learning rate: loss against updates for a rate that is too small, a good one and
//! one too large (which diverges), plus linear warm-up and the lectures' η/√(t+1) decay.
//! The model is a 2-16-2 tanh network on the 2-D circle set, trained full batch.
//!
//! `cargo run --release --example learning_rate` → learning_rate.svg

use std::path::Path;

use backprop::data::{synthetic, BatchTargets};
use backprop::nn::{loss, Mode, Module};
use backprop::optim::schedule::{Constant, InvSqrt, LrSchedule, Warmup};
use backprop::optim::{Optimizer, Sgd};
use backprop::train::plot::{write_svg, xy_chart_svg};
use backprop::train::ModelSpec;
use backprop::Var;

type Figures = Vec<(&'static str, f64)>;

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let data = synthetic("circle", 300, 0.1, 2)?;
    let b = data.batch(&(0..data.len()).collect::<Vec<_>>());
    let BatchTargets::Classes(labels) = &b.targets else {
        unreachable!()
    };
    let updates = if quick { 40 } else { 400 };
    let runs: Vec<(&str, Box<dyn LrSchedule>)> = vec![
        ("η = 0.01 (too small)", Box::new(Constant(0.01))),
        ("η = 0.5 (good)", Box::new(Constant(0.5))),
        ("η = 40 (too large)", Box::new(Constant(40.0))),
        (
            "warm-up 50, then η = 2",
            Box::new(Warmup::new(50, Constant(2.0))),
        ),
        ("η = 2/√(t+1)", Box::new(InvSqrt(2.0))),
    ];
    let mut series = Vec::new();
    let mut finals = Vec::new();
    for (name, sched) in runs {
        let net = ModelSpec::mlp(&[16], "tanh", 0.0, 2)?
            .build::<f32>(2, Some(2), 2)?
            .model;
        let mut opt = Sgd::new(net.params(), sched.lr(0));
        let mut curve = Vec::new();
        for t in 0..updates {
            opt.set_lr(sched.lr(t));
            let c = loss::cross_entropy(
                &net.forward(&Var::constant(b.x.clone()), Mode::Train),
                labels,
                loss::Reduction::Mean,
            );
            let v = c.item() as f64;
            curve.push(((t + 1) as f64, if v.is_finite() { v.min(1e3) } else { 1e3 }));
            if !v.is_finite() {
                break;
            }
            opt.step(&c.backward());
        }
        println!("{name:<26} final loss {:.4}", curve.last().unwrap().1);
        finals.push(curve.last().unwrap().1);
        series.push((name, curve));
    }
    write_svg(
        &out.join("learning_rate.svg"),
        &xy_chart_svg(
            "loss against updates (full batch)",
            "update",
            "loss (log scale)",
            &series,
            true,
        ),
    )?;
    Ok(vec![
        ("small", finals[0]),
        ("good", finals[1]),
        ("large", finals[2]),
    ])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("learning_rate");
    run(quick, &out).map(|_| ())
}
