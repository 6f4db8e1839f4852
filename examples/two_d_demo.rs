//! The lectures' "classification problem, 500 epochs" figure: a small tanh network learns
//! the two-spirals problem, and the decision boundary is drawn with the points.
//!
//! `cargo run --release --example two_d_demo` → decision_boundary.png, loss.svg

use std::path::Path;

use backprop::data::synthetic;
use backprop::train::plot::{decision_boundary, line_chart_svg, write_png, write_svg};
use backprop::train::{
    evaluate, predict_proba, LossKind, ModelSpec, OptimizerKind, Quiet, ScheduleKind, TrainConfig,
    Trainer,
};
use backprop::Tensor;

type Figures = Vec<(&'static str, f64)>;

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let data = synthetic("spiral", 400, 0.1, 5)?;
    let net = ModelSpec::mlp(&[16, 16], "tanh", 0.0, 2)?
        .build::<f32>(2, Some(2), 5)?
        .model;
    let config = TrainConfig {
        epochs: if quick { 30 } else { 500 },
        batch_size: 20,
        optimizer: OptimizerKind::Adam,
        lr: 0.01,
        momentum: 0.0,
        schedule: ScheduleKind::Constant,
        seed: 5,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(&net, config)?;
    t.fit(&data, None, &mut Quiet, |_| Ok(()))?;
    let acc = evaluate(&net, &data, LossKind::CrossEntropy).accuracy;
    println!(
        "{} epochs: training accuracy {:.1}%",
        t.history.epochs.len(),
        100.0 * acc
    );
    let pts: Vec<[f32; 2]> = data.x.data().chunks(2).map(|c| [c[0], c[1]]).collect();
    let labels = match &data.targets {
        backprop::data::Targets::Classes { labels, .. } => labels.clone(),
        _ => unreachable!(),
    };
    let size = if quick { 100 } else { 400 };
    let img = decision_boundary(&pts, &labels, size, |g| {
        predict_proba(&net, &Tensor::from_vec(g.to_vec(), &[g.len() / 2, 2]))
            .data()
            .chunks(2)
            .map(<[f32]>::to_vec)
            .collect()
    });
    write_png(&out.join("decision_boundary.png"), &img, size, size)?;
    write_svg(
        &out.join("loss.svg"),
        &line_chart_svg(
            "two spirals: training loss",
            "loss",
            &[(
                "train",
                t.history.epochs.iter().map(|r| r.train_loss).collect(),
            )],
        ),
    )?;
    Ok(vec![("train_accuracy", acc)])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("two_d_demo");
    run(quick, &out).map(|_| ())
}
