//! A time-delay neural network (Waibel et al. 1989) built from `Conv1d`: each unit sees a
//! short window of frames with the same weights at every time step, a second layer sees a
//! window of the first's outputs, and the class scores are integrated (averaged) over time,
//! so where in the sequence a pattern occurs does not matter. Here the frames are the rows of
//! MNIST digits (28 frames of 28 features), as the recurrent presets read them.
//!
//! Layer 1: 16 units over 3 frames (tanh); layer 2: 10 units over 5 frames of layer 1,
//! dilation 2 (so each sees 3 + 2·4 = 11 input rows); output: the mean over time.
//!
//! `cargo run --release --example tdnn` → evidence.svg (each class's score along time for
//! one test digit)

use std::path::Path;

use backprop::data::{digit_names, load_idx_pair, Encoding};
use backprop::nn::{Conv1d, Conv1dLayout, Mode, Module};
use backprop::train::plot::{line_chart_svg, write_svg};
use backprop::train::{
    evaluate, LossKind, OptimizerKind, Quiet, ScheduleKind, TrainConfig, Trainer,
};
use backprop::{no_grad, Rng, Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

/// Two time-delay layers and integration over time.
struct Tdnn {
    layer1: Conv1d,
    layer2: Conv1d,
}

impl Tdnn {
    fn new(rng: &mut Rng) -> Self {
        Tdnn {
            layer1: Conv1d::new(28, 16, 3, rng).layout(Conv1dLayout::StepsFirst),
            layer2: Conv1d::new(16, 10, 5, rng)
                .dilation(2)
                .layout(Conv1dLayout::StepsFirst),
        }
    }

    /// The class scores at every output time step, `[N, T', 10]`.
    fn evidence(&self, x: &Var) -> Var {
        let n = x.shape()[0];
        let frames = x.reshape(&[n, 28, 28]); // [N, T, F]: one row per frame
        let h = self.layer1.forward(&frames, Mode::Eval).tanh();
        self.layer2.forward(&h, Mode::Eval)
    }
}

impl Module for Tdnn {
    fn forward(&self, x: &Var, _mode: Mode) -> Var {
        self.evidence(x).mean_axis(1, false)
    }
    fn params(&self) -> Vec<(String, Var)> {
        let mut p = backprop::nn::prefixed("layer1", self.layer1.params());
        p.extend(backprop::nn::prefixed("layer2", self.layer2.params()));
        p
    }
    fn kind(&self) -> String {
        "TDNN".into()
    }
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let mut train =
        load_idx_pair(&dir, "train")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let mut test =
        load_idx_pair(&dir, "t10k")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    if quick {
        train = train.subset(&(0..2000).collect::<Vec<_>>());
        test = test.subset(&(0..1000).collect::<Vec<_>>());
    }
    let net = Tdnn::new(&mut Rng::seed(1));
    println!(
        "TDNN: {} parameters (layer 1 sees 3 rows, layer 2 sees 11); the scores of 10 output steps are averaged",
        net.num_params()
    );
    let config = TrainConfig {
        epochs: if quick { 1 } else { 5 },
        batch_size: 64,
        optimizer: OptimizerKind::Adam,
        lr: 3e-3,
        schedule: ScheduleKind::Constant,
        loss: LossKind::CrossEntropy,
        seed: 1,
        ..TrainConfig::default()
    };
    Trainer::new(&net, config)?.fit(&train, None, &mut Quiet, |_| Ok(()))?;
    let acc = evaluate(&net, &test, LossKind::CrossEntropy).accuracy;
    println!(
        "test accuracy {:.2}% ({} test digits)",
        100.0 * acc,
        test.len()
    );
    // the evidence for each class along time, for the first test digit
    let x = Var::constant(Tensor::from_vec(test.x.data()[..784].to_vec(), &[1, 784]));
    let ev = no_grad(|| net.evidence(&x)).value(); // [1, T', 10]
    let steps = ev.shape()[1];
    let names: Vec<String> = (0..10).map(|c| format!("class {c}")).collect();
    let series: Vec<(&str, Vec<f64>)> = names
        .iter()
        .enumerate()
        .map(|(c, n)| {
            (
                n.as_str(),
                (0..steps).map(|t| ev.get(&[0, t, c]) as f64).collect(),
            )
        })
        .collect();
    write_svg(
        &out.join("evidence.svg"),
        &line_chart_svg(
            "TDNN: each class's score along time, one test digit",
            "score",
            &series,
        ),
    )?;
    Ok(vec![("test_accuracy", acc)])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("tdnn");
    run(quick, &out).map(|_| ())
}
