//! Greedy layer-wise pre-training: each hidden layer of a 784-256-128-64-32-10 sigmoid network is
//! first trained as the encoder of an autoencoder (reconstructing its input, no labels),
//! layer by layer; then the whole network is fine-tuned on a small labelled set. The same
//! network trained from random weights on the same labels is the comparison.
//!
//! `cargo run --release --example pretraining` → pretraining.svg

use std::path::Path;

use backprop::data::{digit_names, load_idx_pair, BatchTargets, Dataset, Encoding};
use backprop::nn::{loss, Activation, Linear, Mode, Module, Sequential};
use backprop::optim::{Adam, Optimizer, Sgd};
use backprop::train::plot::{line_chart_svg, write_svg};
use backprop::train::{evaluate, LossKind};
use backprop::{no_grad, Rng, Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

/// Trains `enc` (in → out, sigmoid) as the encoder of an autoencoder on `x`, with a
/// decoder out → in; returns the encoded features.
fn pretrain_layer(enc: &Linear, x: &Tensor, epochs: usize, rng: &mut Rng) -> Tensor {
    let (n, d) = (x.shape()[0], x.shape()[1]);
    let dec = Linear::<f32>::new(enc.out_features(), d, rng);
    let mut params = enc.params();
    params.extend(dec.params());
    let mut opt = Adam::new(params, 0.003);
    let mut order: Vec<usize> = (0..n).collect();
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(64) {
            let xb = Var::constant(x.index_select(0, chunk));
            let h = enc.forward(&xb, Mode::Train).sigmoid();
            let r = dec.forward(&h, Mode::Train).sigmoid();
            opt.step(&loss::mse(&r, &xb.value()).backward());
        }
    }
    no_grad(|| {
        enc.forward(&Var::constant(x.clone()), Mode::Eval)
            .sigmoid()
            .value()
    })
}

const WIDTHS: [usize; 5] = [784, 256, 128, 64, 32];

fn classifier(hidden: Vec<Linear>, rng: &mut Rng) -> Sequential<f32> {
    let mut net = Sequential::<f32>::new();
    for (i, l) in hidden.into_iter().enumerate() {
        net = net
            .add(&format!("fc{}", i + 1), l)
            .add(&format!("s{}", i + 1), Activation::Sigmoid);
    }
    net.add("out", Linear::new(*WIDTHS.last().unwrap(), 10, rng))
}

/// Fine-tunes on the labelled set; returns the test accuracy after each epoch.
fn fine_tune(
    net: &Sequential<f32>,
    labelled: &Dataset,
    test: &Dataset,
    epochs: usize,
    seed: u64,
) -> Vec<f64> {
    // plain SGD with momentum: the setting where deep sigmoid networks train poorly from
    // random weights
    let mut opt = Sgd::new(net.params(), 0.1).momentum(0.9);
    let mut rng = Rng::seed(seed);
    let mut acc = Vec::new();
    for _ in 0..epochs {
        for b in labelled.batches(32, Some(&mut rng)) {
            let BatchTargets::Classes(labels) = &b.targets else {
                unreachable!()
            };
            opt.step(
                &loss::cross_entropy(
                    &net.forward(&Var::constant(b.x), Mode::Train),
                    labels,
                    loss::Reduction::Mean,
                )
                .backward(),
            );
        }
        acc.push(evaluate(net, test, LossKind::CrossEntropy).accuracy);
    }
    acc
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let train =
        load_idx_pair(&dir, "train")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let test_all =
        load_idx_pair(&dir, "t10k")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let (unlabelled_n, labelled_n, ae_epochs, ft_epochs) = if quick {
        (1000, 200, 1, 3)
    } else {
        (20000, 500, 5, 30)
    };
    let unlabelled = train.x.narrow(0, 10000, unlabelled_n);
    let labelled = train.subset(&(0..labelled_n).collect::<Vec<_>>());
    let test = test_all.subset(&(0..if quick { 1000 } else { 10000 }).collect::<Vec<_>>());

    // greedy layer-wise pre-training on unlabelled images: layer k learns to encode the
    // previous layer's codes
    let mut rng = Rng::seed(11);
    let mut hidden = Vec::new();
    let mut codes = unlabelled;
    for w in WIDTHS.windows(2) {
        let l = Linear::<f32>::new(w[0], w[1], &mut rng);
        codes = pretrain_layer(&l, &codes, ae_epochs, &mut rng);
        hidden.push(l);
    }
    let pre = classifier(hidden, &mut rng);
    let pre_acc = fine_tune(&pre, &labelled, &test, ft_epochs, 1);

    // the same network from random weights
    let mut rng = Rng::seed(11);
    let scratch = classifier(
        WIDTHS
            .windows(2)
            .map(|w| Linear::new(w[0], w[1], &mut rng))
            .collect(),
        &mut rng,
    );
    let scratch_acc = fine_tune(&scratch, &labelled, &test, ft_epochs, 1);

    println!("{labelled_n} labelled images ({unlabelled_n} unlabelled for pre-training)");
    println!(
        "pre-trained then fine-tuned: {:.2}% test accuracy",
        100.0 * pre_acc.last().unwrap()
    );
    println!(
        "from scratch:                {:.2}% test accuracy",
        100.0 * scratch_acc.last().unwrap()
    );
    write_svg(
        &out.join("pretraining.svg"),
        &line_chart_svg(
            "784-256-128-64-32-10 sigmoid, fine-tuning on few labels",
            "test accuracy",
            &[
                ("pre-trained", pre_acc.clone()),
                ("from scratch", scratch_acc.clone()),
            ],
        ),
    )?;
    Ok(vec![
        ("pretrained", *pre_acc.last().unwrap()),
        ("scratch", *scratch_acc.last().unwrap()),
    ])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("pretraining");
    run(quick, &out).map(|_| ())
}
