//! Long-range memory and vanishing gradients through time, on the adding problem
//! (Hochreiter & Schmidhuber 1997): T steps of (value, marker), the target is the sum of the
//! two marked values, one marked in each half of the sequence. Predicting the mean scores
//! MSE 1/6; a network must carry a value across up to T steps to do better.
//!
//! An Elman network, an LSTM and a GRU (same width, same optimizer, same number of updates)
//! are trained by BPTT; the test MSE of each is printed against the mean baseline. Then the
//! lecture's picture: ‖∂L/∂h_t‖ against the lag T−1−t, for each network at initialisation and
//! after training. Through the Elman recurrence δ is multiplied by W_hhᵀ·diag(1 − h²) at every
//! step back and dies away; the LSTM's cell path multiplies by the forget gate only, which
//! training opens.
//!
//! `cargo run --release --example adding_problem` → gradient_through_time.svg, loss.svg

use std::path::Path;

use backprop::autograd::ops::recurrent::RecurrentVars;
use backprop::data::{adding_problem, Dataset, Targets};
use backprop::nn::{CellKind, Module, Sequential};
use backprop::train::plot::{line_chart_svg, write_svg, xy_chart_svg};
use backprop::train::{
    evaluate, LossKind, ModelSpec, Observer, OptimizerKind, ScheduleKind, TrainConfig, Trainer,
};
use backprop::{Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

/// Records the training loss after every step.
struct Losses(Vec<f64>);
impl Observer for Losses {
    fn step(&mut self, loss: f64, _accuracy: f64, _samples: usize) {
        self.0.push(loss);
    }
}

fn spec(kind: &str, hidden: usize) -> ModelSpec {
    ModelSpec::from_json(&format!(
        r#"{{"layers": [{{"type": "{kind}", "hidden": {hidden}}}, {{"type": "linear", "out": 1}}]}}"#
    ))
    .expect("a valid spec")
}

/// ‖∂L/∂h_t‖ for every t: the recurrent layer (`rnn1`, `lstm1` or `gru1`) run one step at a
/// time with the same weights, each h_t kept so backward reports its gradient.
fn gradient_through_time(net: &Sequential<f32>, kind: CellKind, batch: &Dataset) -> Vec<f64> {
    let [_, t_len, f] = batch.image_shape.expect("sequences");
    let b = batch.len();
    let params = net.params();
    let p = |suffix: &str| {
        params
            .iter()
            .find(|(n, _)| n.ends_with(suffix) && n.contains('1'))
            .map(|(_, v)| v.clone())
            .expect("the recurrent layer's parameters")
    };
    let (wi, wh, bi, bh) = (
        p("weight_ih_l0"),
        p("weight_hh_l0"),
        p("bias_ih_l0"),
        p("bias_hh_l0"),
    );
    let hidden = wh.shape()[1];
    let x = Var::constant(batch.x.reshape(&[b, t_len, f])).transpose(0, 1); // [T, B, F]
    let mut h = Var::constant(Tensor::zeros(&[b, hidden]));
    let mut c = kind
        .has_cell()
        .then(|| Var::constant(Tensor::zeros(&[b, hidden])));
    let mut hs = Vec::new();
    for t in 0..t_len {
        let vars = RecurrentVars {
            h0: &h,
            c0: c.as_ref(),
            w_ih: &wi,
            w_hh: &wh,
            biases: Some((&bi, &bh)),
            lengths: None,
        };
        let y = x.narrow(0, t, 1).recurrent(kind, vars, false);
        h = y.narrow(0, 1, 1).reshape(&[b, hidden]);
        c = kind
            .has_cell()
            .then(|| y.narrow(0, 2, 1).reshape(&[b, hidden]));
        h.retain_grad();
        hs.push(h.clone());
    }
    let (fw, fb) = (p("fc1.weight"), p("fc1.bias"));
    let out = h.linear(&fw, Some(&fb));
    let Targets::Values(y) = &batch.targets else {
        unreachable!("the adding problem is a regression")
    };
    let loss = out.sub(&Var::constant(y.clone())).powf(2.0).mean();
    let g = loss.backward();
    hs.iter()
        .map(|h| {
            let d = g.get(h).map_or(0.0, |t| {
                t.data()
                    .iter()
                    .map(|v| (*v as f64).powi(2))
                    .sum::<f64>()
                    .sqrt()
            });
            d / b as f64
        })
        .collect()
}

fn mse(net: &Sequential<f32>, data: &Dataset) -> f64 {
    // the trainer's squared loss is ½·mean((y − t)²)
    2.0 * evaluate(net, data, LossKind::Squared).loss
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let (steps, hidden, train_n, epochs) = if quick {
        (20, 16, 1024, 2)
    } else {
        (100, 64, 12_800, 30)
    };
    let train = adding_problem(train_n, steps, 1)?;
    let test = adding_problem(2000, steps, 2)?;
    let probe = test.subset(&(0..64).collect::<Vec<_>>());
    let Targets::Values(ty) = &test.targets else {
        unreachable!()
    };
    let mean = ty.data().iter().map(|&v| v as f64).sum::<f64>() / test.len() as f64;
    let baseline = ty
        .data()
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / test.len() as f64;
    println!(
        "adding problem, T = {steps}: {train_n} training sequences, {epochs} epochs of batch 64 ({} updates) for each network",
        epochs * train_n / 64
    );
    println!("predict-the-mean baseline: test MSE {baseline:.4}");
    let mut figures = vec![("baseline_mse", baseline)];
    let mut grads = Vec::new();
    let mut curves = Vec::new();
    for (name, kind, cell) in [
        ("Elman", "rnn", CellKind::RnnTanh),
        ("LSTM", "lstm", CellKind::Lstm),
        ("GRU", "gru", CellKind::Gru),
    ] {
        let net = spec(kind, hidden)
            .build_shaped::<f32>(steps * 2, Some([1, steps, 2]), Some(1), 3)?
            .model;
        let at_init = gradient_through_time(&net, cell, &probe);
        let config = TrainConfig {
            epochs,
            batch_size: 64,
            optimizer: OptimizerKind::Adam,
            lr: 2e-3,
            clip: Some(1.0),
            schedule: ScheduleKind::Constant,
            loss: LossKind::Squared,
            seed: 1,
            ..TrainConfig::default()
        };
        let mut losses = Losses(Vec::new());
        Trainer::new(&net, config)?.fit(&train, None, &mut losses, |_| Ok(()))?;
        let trained = gradient_through_time(&net, cell, &probe);
        let m = mse(&net, &test);
        println!(
            "{name:<5}  test MSE {m:.5} = {:.2}% of the baseline;  ‖∂L/∂h_0‖/‖∂L/∂h_T−1‖ = {:.1e} at init, {:.1e} trained",
            100.0 * m / baseline,
            at_init[0] / at_init[steps - 1],
            trained[0] / trained[steps - 1]
        );
        figures.push((
            match kind {
                "rnn" => "elman_mse_ratio",
                "lstm" => "lstm_mse_ratio",
                _ => "gru_mse_ratio",
            },
            m / baseline,
        ));
        let lag = |v: &[f64]| -> Vec<(f64, f64)> {
            v.iter()
                .enumerate()
                .map(|(t, &g)| ((steps - 1 - t) as f64, g.max(1e-30)))
                .collect()
        };
        grads.push((format!("{name}, initial"), lag(&at_init)));
        grads.push((format!("{name}, trained"), lag(&trained)));
        let smooth: Vec<f64> = losses
            .0
            .chunks(16)
            .map(|c| 2.0 * c.iter().sum::<f64>() / c.len() as f64)
            .collect();
        curves.push((name, smooth));
    }
    let series: Vec<(&str, Vec<(f64, f64)>)> =
        grads.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
    write_svg(
        &out.join("gradient_through_time.svg"),
        &xy_chart_svg(
            &format!("‖∂L/∂h_t‖ on the adding problem (T = {steps})"),
            "lag T−1−t (steps back from the output)",
            "‖∂L/∂h_t‖ per sequence (log scale)",
            &series,
            true,
        ),
    )?;
    let mut with_base = curves.clone();
    with_base.push(("mean baseline", vec![baseline; curves[0].1.len()]));
    write_svg(
        &out.join("loss.svg"),
        &line_chart_svg(
            &format!("adding problem, T = {steps}: training MSE (16-step means)"),
            "MSE",
            &with_base,
        ),
    )?;
    Ok(figures)
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("adding_problem");
    run(quick, &out).map(|_| ())
}
