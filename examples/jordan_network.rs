//! Jordan and Elman networks side by side on one-step-ahead prediction of the Mackey-Glass
//! series (τ = 17, chaotic). A Jordan network (Jordan 1986) remembers its own past outputs
//! through a context layer c_t = μ·c_{t−1} + y_{t−1}; an Elman network (Elman 1990) remembers
//! its hidden layer. Each reads windows of 12 values and predicts the 13th; the baseline
//! predicts that the series stays where it is.
//!
//! `cargo run --release --example jordan_network` → prediction.svg

use std::path::Path;

use backprop::classic::esn::mackey_glass;
use backprop::data::{series_windows, Dataset, Targets};
use backprop::train::plot::{line_chart_svg, write_svg};
use backprop::train::{
    evaluate, LossKind, ModelSpec, OptimizerKind, Quiet, ScheduleKind, TrainConfig, Trainer,
};
use backprop::{nn::Mode, nn::Module, no_grad, Var};

type Figures = Vec<(&'static str, f64)>;

const STEPS: usize = 12;

fn values(d: &Dataset) -> &[f32] {
    match &d.targets {
        Targets::Values(v) => v.data(),
        Targets::Classes { .. } => unreachable!("a series is a regression"),
    }
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let n = if quick { 800 } else { 3000 };
    // the series, shifted and scaled to about [−1, 1]
    let series: Vec<f32> = mackey_glass(2 * n, 17.0, 1)
        .iter()
        .map(|&v| (2.0 * (v - 0.9)) as f32)
        .collect();
    let all = series_windows("mackey-glass", &series, STEPS)?;
    let split = all.len() * 3 / 4;
    let train = all.subset(&(0..split).collect::<Vec<_>>());
    let test = all.subset(&(split..all.len()).collect::<Vec<_>>());
    // baseline: the next value is the last one seen
    let (tx, ty) = (test.x.data(), values(&test));
    let persist = (0..test.len())
        .map(|i| (tx[i * STEPS + STEPS - 1] - ty[i]).powi(2) as f64)
        .sum::<f64>()
        / test.len() as f64;
    println!(
        "one step ahead on Mackey-Glass, windows of {STEPS}: {} train, {} test",
        train.len(),
        test.len()
    );
    println!("baseline (the last value again): test MSE {persist:.2e}");
    let mut figures = vec![("persistence_mse", persist)];
    let mut curves = vec![(
        "series",
        ty.iter().take(300).map(|&v| v as f64).collect::<Vec<_>>(),
    )];
    for (name, layers) in [
        (
            "Jordan",
            r#"[{"type": "jordan", "hidden": 16, "out": 1, "mu": 0.5}]"#,
        ),
        (
            "Elman",
            r#"[{"type": "rnn", "hidden": 16}, {"type": "linear", "out": 1}]"#,
        ),
    ] {
        let spec = ModelSpec::from_json(&format!(r#"{{"layers": {layers}}}"#))?;
        let net = spec
            .build_shaped::<f32>(STEPS, Some([1, STEPS, 1]), Some(1), 2)?
            .model;
        let config = TrainConfig {
            epochs: if quick { 5 } else { 60 },
            batch_size: 32,
            optimizer: OptimizerKind::Adam,
            lr: 3e-3,
            schedule: ScheduleKind::Constant,
            loss: LossKind::Squared,
            seed: 1,
            ..TrainConfig::default()
        };
        Trainer::new(&net, config)?.fit(&train, None, &mut Quiet, |_| Ok(()))?;
        let mse = 2.0 * evaluate(&net, &test, LossKind::Squared).loss;
        println!(
            "{name:<6} ({} parameters): test MSE {mse:.2e} ({:.1}× better than the baseline)",
            net.num_params(),
            persist / mse
        );
        figures.push((
            if name == "Jordan" {
                "jordan_mse"
            } else {
                "elman_mse"
            },
            mse,
        ));
        let pred = no_grad(|| net.forward(&Var::constant(test.x.clone()), Mode::Eval)).value();
        curves.push((
            name,
            pred.data().iter().take(300).map(|&v| v as f64).collect(),
        ));
    }
    write_svg(
        &out.join("prediction.svg"),
        &line_chart_svg(
            "Mackey-Glass, one step ahead (first 300 test points)",
            "value",
            &curves,
        ),
    )?;
    Ok(figures)
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("jordan_network");
    run(quick, &out).map(|_| ())
}
