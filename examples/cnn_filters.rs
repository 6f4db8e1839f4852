//! Filters: the lecture's hand-made edge detectors (vertical and horizontal) applied to an
//! MNIST digit, and the first-layer filters LeNet-5 learns in one epoch, with their feature
//! maps for the same digit.
//!
//! `cargo run --release --example cnn_filters` → edges.png, learned_filters.png, learned_maps.png

use std::path::Path;

use backprop::data::{digit_names, load_idx_pair, Encoding};
use backprop::nn::{Mode, Module};
use backprop::tensor::{conv2d_forward, Conv2dParams};
use backprop::train::plot::{tile_grid, write_png};
use backprop::train::{evaluate, LossKind, ModelSpec, Quiet, TrainConfig, Trainer};
use backprop::{no_grad, Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let train =
        load_idx_pair(&dir, "train")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let test =
        load_idx_pair(&dir, "t10k")?.into_dataset("mnist", Encoding::Grey, digit_names(10))?;
    let digit = Tensor::from_vec(test.x.data()[..784].to_vec(), &[1, 1, 28, 28]);
    // hand-made 3×3 edge filters: a vertical edge (dark left, bright right) and a horizontal one
    let vertical = [-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0];
    let horizontal = [-1.0, -2.0, -1.0, 0.0, 0.0, 0.0, 1.0, 2.0, 1.0];
    let w = Tensor::from_vec([vertical, horizontal].concat(), &[2, 1, 3, 3]);
    let maps = conv2d_forward(
        &digit,
        &w,
        None,
        Conv2dParams {
            padding: (1, 1),
            ..Default::default()
        },
    );
    let tiles = vec![
        digit.to_vec(),
        maps.data()[..784].to_vec(),
        maps.data()[784..].to_vec(),
    ];
    let (rgb, gw, gh) = tile_grid(&tiles, 28, 28, 6, 3);
    write_png(&out.join("edges.png"), &rgb, gw, gh)?;
    println!("edges.png: the digit, its vertical-edge map and its horizontal-edge map");

    // LeNet-5, one epoch (a quick one on 2,000 images with --quick)
    let train = if quick {
        train.subset(&(0..2000).collect::<Vec<_>>())
    } else {
        train
    };
    let net = ModelSpec::lenet5(10)
        .build_shaped::<f32>(784, Some([1, 28, 28]), Some(10), 0)?
        .model;
    let config = TrainConfig {
        epochs: 1,
        batch_size: if quick { 16 } else { 64 },
        augment_shift: 0,
        ..TrainConfig::default()
    };
    Trainer::new(&net, config)?.fit(&train, None, &mut Quiet, |_| Ok(()))?;
    let acc = evaluate(&net, &test, LossKind::CrossEntropy).accuracy;
    println!("LeNet-5 after one epoch: {:.2}% test accuracy", 100.0 * acc);
    let k = net
        .params()
        .into_iter()
        .find(|(n, _)| n == "conv1.weight")
        .unwrap()
        .1
        .value();
    let filters: Vec<Vec<f32>> = k.data().chunks(25).map(<[f32]>::to_vec).collect();
    let (rgb, gw, gh) = tile_grid(&filters, 5, 5, 16, 6);
    write_png(&out.join("learned_filters.png"), &rgb, gw, gh)?;
    let layers: Vec<_> = net.layers().collect();
    let conv_maps = no_grad(|| {
        let mut h = Var::constant(Tensor::from_vec(digit.to_vec(), &[1, 784]));
        for (name, l) in &layers {
            h = l.forward(&h, Mode::Eval);
            if *name == "conv1" {
                break;
            }
        }
        h.value()
    });
    let maps: Vec<Vec<f32>> = conv_maps.data().chunks(784).map(<[f32]>::to_vec).collect();
    let (rgb, gw, gh) = tile_grid(&maps, 28, 28, 4, 6);
    write_png(&out.join("learned_maps.png"), &rgb, gw, gh)?;
    Ok(vec![("test_accuracy", acc)])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("cnn_filters");
    run(quick, &out).map(|_| ())
}
