//! Long-range memory and vanishing gradients through time, on the adding problem
//! (Hochreiter & Schmidhuber 1997): T steps of (value, marker), the target is the sum of the
//! two marked values, one marked in each half of the sequence. Predicting the mean scores
//! MSE 1/6; a network must carry a value across up to T steps to do better.
//!
//! An Elman network, an LSTM and a GRU (same width, same optimizer, same number of updates)
//! are trained by BPTT; the test MSE of each is printed against the mean baseline, with
//! whether it is below 1% of it. With T = 100 the LSTM (and the GRU) get there, after a
//! plateau at the baseline while they find the markers; the Elman network stays at the
//! baseline. Then the lecture's picture: ‖∂L/∂h_t‖ against the lag T−1−t, relative to the
//! last step's, for each network at initialisation and after training. Through the Elman
//! recurrence δ is multiplied by W_hhᵀ·diag(1 − h²) at every step back and dies away; the
//! LSTM's cell path multiplies by the forget gate only, which training opens.
//!
//! `cargo run --release --example adding_problem` (T = 100, 10,000 updates for each network;
//! 12.5 minutes on a loaded 2-core machine) → gradient_through_time.svg (trained),
//! gradient_through_time_init.svg, loss.svg. `--quick` is the test suite's T = 20 in 32
//! updates, too short to learn anything.

use std::path::Path;

use backprop::autograd::ops::recurrent::RecurrentVars;
use backprop::data::{adding_problem, Dataset, Targets};
use backprop::nn::{CellKind, Module, Sequential};
use backprop::train::plot::{write_svg, xy_chart_svg};
use backprop::train::{
    evaluate, EpochRecord, LossKind, ModelSpec, Observer, OptimizerKind, ScheduleKind, TrainConfig,
    Trainer,
};
use backprop::{Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

/// Records the training loss after every step; with `verbose`, prints each epoch's mean
/// training MSE.
struct Losses {
    steps: Vec<f64>,
    verbose: bool,
}
impl Observer for Losses {
    fn step(&mut self, loss: f64, _accuracy: f64, _samples: usize) {
        self.steps.push(loss);
    }
    fn epoch_end(&mut self, r: &EpochRecord) {
        if self.verbose {
            println!(
                "    epoch {:>3}: training MSE {:.5}",
                r.epoch,
                2.0 * r.train_loss
            );
        }
    }
}

fn spec(kind: &str, hidden: usize) -> ModelSpec {
    ModelSpec::from_json(&format!(
        r#"{{"layers": [{{"type": "{kind}", "hidden": {hidden}}}, {{"type": "linear", "out": 1}}]}}"#
    ))
    .expect("a valid spec")
}

/// ‖∂L_i/∂h_t‖ for every t, averaged over the sequences i of `batch` (L_i = (y_i − target_i)²,
/// the sequence's own loss): the recurrent layer (`rnn1`, `lstm1` or `gru1`) run one step at
/// a time with the same weights, each h_t kept so backward reports its gradient.
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
    // the loss is the batch mean, so row i of ∂L/∂h_t is ∂L_i/∂h_t / b: the mean of the
    // sequences' norms is the sum of the rows' norms
    hs.iter()
        .map(|h| {
            g.get(h).map_or(0.0, |t| {
                t.data()
                    .chunks(hidden)
                    .map(|row| row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt())
                    .sum::<f64>()
            })
        })
        .collect()
}

fn mse(net: &Sequential<f32>, data: &Dataset) -> f64 {
    // the trainer's squared loss is ½·mean((y − t)²)
    2.0 * evaluate(net, data, LossKind::Squared).loss
}

/// The sizes of a run: the lecture's full run, or the test suite's quick one.
struct Sizes {
    steps: usize,
    hidden: usize,
    train: usize,
    epochs: usize,
    batch: usize,
    lr: f64,
}

/// The full run: 64 units, Adam (η = 0.001, constant), batches of 32, 25 epochs of 12,800
/// sequences (10,000 updates). The LSTM sits at the baseline for about 3,500 updates before
/// it finds the markers, and is below 1% of it some 2,000 updates later; the rest is margin.
fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            steps: 20,
            hidden: 16,
            train: 1024,
            epochs: 2,
            batch: 64,
            lr: 2e-3,
        }
    } else {
        Sizes {
            steps: 100,
            hidden: 64,
            train: 12_800,
            epochs: 25,
            batch: 32,
            lr: 1e-3,
        }
    }
}

/// Sets the LSTM's forget-gate bias (rows H..2H of `bias_ih_l0`, PyTorch's i|f|g|o order) to
/// `b`, so that at the start the cell keeps σ(b) of itself each step (Gers, Schmidhuber &
/// Cummins 2000): with PyTorch's initialisation (b ≈ 0, half forgotten every step) a value
/// written 50 steps back is scaled by 2⁻⁵⁰ before training has found the forget gate.
/// (Jozefowicz, Zaremba & Sutskever 2015 recommend the same for every LSTM.)
fn open_forget_gates(net: &Sequential<f32>, hidden: usize, b: f32) {
    for (name, p) in net.params() {
        if name.ends_with("bias_ih_l0") {
            let mut v = p.value();
            v.data_mut()[hidden..2 * hidden].fill(b);
            p.set_value(v);
        }
    }
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let z = sizes(quick);
    let steps = z.steps;
    let train = adding_problem(z.train, steps, 1)?;
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
    let updates = z.epochs * z.train.div_ceil(z.batch);
    println!(
        "adding problem, T = {steps}: {} training sequences, {} epochs of batch {} ({updates} updates), {} hidden units, Adam η = {}, gradient norm clipped to 1, for each network",
        z.train, z.epochs, z.batch, z.hidden, z.lr
    );
    println!(
        "predict-the-mean baseline: test MSE {baseline:.4} (1% of it: {:.5})",
        baseline / 100.0
    );
    let mut figures = vec![("baseline_mse", baseline)];
    let mut at_init_series: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    let mut trained_series: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    let mut curves: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    for (name, kind, cell) in [
        ("Elman", "rnn", CellKind::RnnTanh),
        ("LSTM", "lstm", CellKind::Lstm),
        ("GRU", "gru", CellKind::Gru),
    ] {
        let t0 = std::time::Instant::now();
        let net = spec(kind, z.hidden)
            .build_shaped::<f32>(steps * 2, Some([1, steps, 2]), Some(1), 3)?
            .model;
        if cell == CellKind::Lstm {
            open_forget_gates(&net, z.hidden, 1.0);
        }
        let at_init = gradient_through_time(&net, cell, &probe);
        let config = TrainConfig {
            epochs: z.epochs,
            batch_size: z.batch,
            optimizer: OptimizerKind::Adam,
            lr: z.lr,
            clip: Some(1.0),
            schedule: ScheduleKind::Constant,
            loss: LossKind::Squared,
            seed: 1,
            ..TrainConfig::default()
        };
        let mut losses = Losses {
            steps: Vec::new(),
            verbose: !quick,
        };
        Trainer::new(&net, config)?.fit(&train, None, &mut losses, |_| Ok(()))?;
        let trained = gradient_through_time(&net, cell, &probe);
        let m = mse(&net, &test);
        println!(
            "{name:<5}  test MSE {m:.5} = {:.2}% of the baseline ({}below 1%) in {:.0} s;  ‖∂L/∂h_0‖/‖∂L/∂h_T−1‖ = {:.1e} at init, {:.1e} trained",
            100.0 * m / baseline,
            if m < baseline / 100.0 { "" } else { "not " },
            t0.elapsed().as_secs_f64(),
            at_init[0] / at_init[steps - 1],
            trained[0] / trained[steps - 1]
        );
        let (mse_key, grad_key) = match kind {
            "rnn" => ("elman_mse_ratio", "elman_grad_ratio_init"),
            "lstm" => ("lstm_mse_ratio", "lstm_grad_ratio_init"),
            _ => ("gru_mse_ratio", "gru_grad_ratio_init"),
        };
        figures.push((mse_key, m / baseline));
        figures.push((grad_key, at_init[0] / at_init[steps - 1]));
        // relative to the last step's gradient, so that networks and stages compare; a
        // gradient that underflowed to 0 is left out rather than drawn at some floor
        let lag = |v: &[f64]| -> Vec<(f64, f64)> {
            v.iter()
                .enumerate()
                .map(|(t, &g)| ((steps - 1 - t) as f64, g / v[steps - 1]))
                .filter(|&(_, r)| r > 0.0 && r.is_finite())
                .collect()
        };
        at_init_series.push((name, lag(&at_init)));
        trained_series.push((name, lag(&trained)));
        // the trainer's loss is ½·MSE; means over 16 updates, placed at their last update
        let smooth: Vec<(f64, f64)> = losses
            .steps
            .chunks(16)
            .enumerate()
            .map(|(k, c)| {
                let x = (16 * k + c.len()) as f64;
                (x, 2.0 * c.iter().sum::<f64>() / c.len() as f64)
            })
            .collect();
        curves.push((name, smooth));
    }
    for (file, when, series) in [
        ("gradient_through_time.svg", "trained", &trained_series),
        (
            "gradient_through_time_init.svg",
            "at initialisation",
            &at_init_series,
        ),
    ] {
        write_svg(
            &out.join(file),
            &xy_chart_svg(
                &format!("‖∂L/∂hₜ‖ through time, {when} (adding problem, T = {steps})"),
                "lag T−1−t (steps back from the output)",
                "‖∂L/∂hₜ‖ / ‖∂L/∂h_T−1‖ (log scale)",
                series,
                true,
            ),
        )?;
    }
    let updates_done = curves[0].1.last().map_or(1.0, |p| p.0);
    curves.push((
        "predict the mean",
        vec![(0.0, baseline), (updates_done, baseline)],
    ));
    curves.push((
        "1% of that",
        vec![(0.0, baseline / 100.0), (updates_done, baseline / 100.0)],
    ));
    write_svg(
        &out.join("loss.svg"),
        &xy_chart_svg(
            &format!("adding problem, T = {steps}: training MSE (means over 16 updates)"),
            "update",
            "training MSE (log scale)",
            &curves,
            true,
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
