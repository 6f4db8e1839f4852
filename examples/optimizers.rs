//! Optimizers compared on MNIST: full-batch gradient descent, SGD (batch 1), mini-batch SGD,
//! momentum, RMSprop and Adam, as training-loss curves against epochs in one plot (the
//! 784-64-10 ReLU network on a 5,000-image subset; each epoch sees every image once).
//!
//! `cargo run --release --example optimizers` → optimizers.svg

use std::path::Path;

use backprop::data::{digit_names, load_idx_pair, Encoding};
use backprop::train::plot::{line_chart_svg, write_svg};
use backprop::train::{ModelSpec, OptimizerKind, Quiet, ScheduleKind, TrainConfig, Trainer};

type Figures = Vec<(&'static str, f64)>;

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let all =
        load_idx_pair(&dir, "t10k")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let n = if quick { 500 } else { 5000 };
    let data = all.subset(&(0..n).collect::<Vec<_>>());
    let epochs = if quick { 2 } else { 15 };
    let runs: [(&str, OptimizerKind, f64, f64, usize); 6] = [
        ("full-batch GD (η = 0.5)", OptimizerKind::Sgd, 0.5, 0.0, n),
        ("SGD, batch 1 (η = 0.01)", OptimizerKind::Sgd, 0.01, 0.0, 1),
        ("mini-batch 32 (η = 0.1)", OptimizerKind::Sgd, 0.1, 0.0, 32),
        ("momentum 0.9 (η = 0.01)", OptimizerKind::Sgd, 0.01, 0.9, 32),
        (
            "RMSprop (η = 0.001)",
            OptimizerKind::Rmsprop,
            0.001,
            0.0,
            32,
        ),
        ("Adam (η = 0.001)", OptimizerKind::Adam, 0.001, 0.0, 32),
    ];
    let mut series = Vec::new();
    let mut finals = Vec::new();
    for (name, opt, lr, momentum, batch) in runs {
        let net = ModelSpec::mlp(&[64], "relu", 0.0, 10)?
            .build::<f32>(784, Some(10), 4)?
            .model;
        let config = TrainConfig {
            epochs,
            batch_size: batch,
            optimizer: opt,
            lr,
            momentum,
            schedule: ScheduleKind::Constant,
            seed: 4,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(&net, config)?;
        t.fit(&data, None, &mut Quiet, |_| Ok(()))?;
        let curve: Vec<f64> = t.history.epochs.iter().map(|r| r.train_loss).collect();
        println!(
            "{name:<26} loss after {epochs} epochs: {:.4}",
            curve.last().unwrap()
        );
        finals.push(*curve.last().unwrap());
        series.push((name, curve));
    }
    write_svg(
        &out.join("optimizers.svg"),
        &line_chart_svg("MNIST subset: training loss per epoch", "loss", &series),
    )?;
    Ok(vec![("full_batch", finals[0]), ("adam", finals[5])])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("optimizers");
    run(quick, &out).map(|_| ())
}
