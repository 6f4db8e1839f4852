//! The lectures' MNIST network: 784 inputs, 15 sigmoid hidden units, 10 sigmoid outputs,
//! the quadratic cost C = 1/(2n) Σ‖y − a‖² on one-hot targets, and mini-batch SGD
//! (batch 10, η = 3, no momentum), as in Nielsen's "Neural Networks and Deep Learning".
//!
//! `cargo run --release --example mnist_784_15_10` → accuracy.svg

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
    let mut train =
        load_idx_pair(&dir, "train")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let test =
        load_idx_pair(&dir, "t10k")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    if quick {
        train = train.subset(&(0..3000).collect::<Vec<_>>());
    }
    let spec = ModelSpec::from_json(
        r#"{"layers": [{"type": "linear", "out": 15}, {"type": "sigmoid"}, {"type": "linear", "out": 10}, {"type": "sigmoid"}]}"#,
    )?;
    let net = spec.build::<f32>(784, Some(10), 1)?.model;
    let config = TrainConfig {
        epochs: if quick { 2 } else { 10 },
        batch_size: 10,
        optimizer: OptimizerKind::Sgd,
        lr: 3.0,
        momentum: 0.0,
        schedule: ScheduleKind::Constant,
        loss: LossKind::Squared,
        seed: 1,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&net, config)?;
    let mut test_acc = Vec::new();
    // train epoch by epoch so the test accuracy can be printed as the lecture does
    let epochs = trainer.config.epochs;
    for epoch in 1..=epochs {
        trainer.config.epochs = epoch;
        trainer.fit(&train, None, &mut Quiet, |_| Ok(()))?;
        let e = evaluate(&net, &test, LossKind::Squared);
        println!(
            "Epoch {epoch}: {} / {}",
            (e.accuracy * test.len() as f64).round(),
            test.len()
        );
        test_acc.push(e.accuracy);
    }
    write_svg(
        &out.join("accuracy.svg"),
        &line_chart_svg(
            "784-15-10 sigmoid, quadratic cost, mini-batch SGD",
            "test accuracy",
            &[("test", test_acc.clone())],
        ),
    )?;
    Ok(vec![("test_accuracy", *test_acc.last().unwrap())])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("mnist_784_15_10");
    run(quick, &out).map(|_| ())
}
