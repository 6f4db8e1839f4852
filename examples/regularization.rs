//! Regularization: a wide network overfits 500 MNIST images (training loss → 0, validation
//! loss rising), then the same with L2, L1, dropout and early stopping. Training and
//! validation curves for each are drawn in one plot.
//!
//! `cargo run --release --example regularization` → regularization.svg

use std::path::Path;

use backprop::data::{digit_names, load_idx_pair, Encoding};
use backprop::train::plot::{line_chart_svg, write_svg};
use backprop::train::{
    evaluate, LossKind, ModelSpec, OptimizerKind, Quiet, ScheduleKind, TrainConfig, Trainer,
};

type Figures = Vec<(&'static str, f64)>;

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let all =
        load_idx_pair(&dir, "t10k")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let train = all.subset(&(0..500).collect::<Vec<_>>());
    let val = all.subset(&(5000..if quick { 5500 } else { 7000 }).collect::<Vec<_>>());
    let epochs = if quick { 5 } else { 60 };
    let runs: [(&str, f64, f64, f64, Option<usize>); 5] = [
        ("none", 0.0, 0.0, 0.0, None),
        ("L2 λ = 1e-3", 0.0, 1e-3, 0.0, None),
        ("L1 λ = 1e-4", 1e-4, 0.0, 0.0, None),
        ("dropout 0.5", 0.0, 0.0, 0.5, None),
        ("early stopping (patience 5)", 0.0, 0.0, 0.0, Some(5)),
    ];
    let mut series = Vec::new();
    let mut figures = Vec::new();
    for (name, l1, l2, dropout, early) in runs {
        let net = ModelSpec::mlp(&[512], "relu", dropout, 10)?
            .build::<f32>(784, Some(10), 9)?
            .model;
        let config = TrainConfig {
            epochs,
            batch_size: 32,
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            momentum: 0.9,
            l1,
            l2,
            early_stopping: early,
            schedule: ScheduleKind::Constant,
            seed: 9,
            ..TrainConfig::default()
        };
        let mut t = Trainer::new(&net, config)?;
        t.fit(&train, Some(&val), &mut Quiet, |_| Ok(()))?;
        let e = evaluate(&net, &val, LossKind::CrossEntropy);
        let h = &t.history.epochs;
        println!(
            "{name:<28} {} epochs, train loss {:.4}, val loss {:.4}, val accuracy {:.1}%",
            h.len(),
            h.last().unwrap().train_loss,
            e.loss,
            100.0 * e.accuracy
        );
        let short: &'static str =
            Box::leak(name.split(' ').next().unwrap().to_string().into_boxed_str());
        let tr: &'static str = Box::leak(format!("{short} train").into_boxed_str());
        let va: &'static str = Box::leak(format!("{short} validation").into_boxed_str());
        series.push((tr, h.iter().map(|r| r.train_loss).collect::<Vec<_>>()));
        series.push((va, h.iter().map(|r| r.val_loss).collect::<Vec<_>>()));
        figures.push((short, e.loss));
    }
    write_svg(
        &out.join("regularization.svg"),
        &line_chart_svg(
            "500 MNIST images, 784-512-10: train and validation loss",
            "loss",
            &series,
        ),
    )?;
    Ok(figures)
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("regularization");
    run(quick, &out).map(|_| ())
}
