//! Writes the models that `benches/peers/onnx_runtime.py` runs in ONNX Runtime: an MLP,
//! LeNet-5, the `cnn` preset (batch norm) and a residual network with layer norm, each
//! trained for one epoch on 3,000 MNIST images (so batch norm's running statistics are real
//! ones), exported to ONNX, with 1,000 MNIST test inputs and our own logits and
//! probabilities for them.
//!
//! Run with `cargo bench --bench onnx_export -- DIR` (default `runs/onnx-peers`); it writes
//! `DIR/<model>.onnx`, `DIR/<model>.input.f32`, `DIR/<model>.logits.f32`,
//! `DIR/<model>.probabilities.f32` (little-endian `f32`, row-major) and `DIR/models.json`.

use std::path::PathBuf;

use backprop::autograd::{no_grad, Var};
use backprop::nn::{Activation, Dropout, LayerNorm, Linear, Mode, Module, Residual, Sequential};
use backprop::tensor::{Rng, Tensor};
use backprop::train::run::DataConfig;
use backprop::train::{ModelSpec, OptimizerKind, Quiet, TrainConfig, Trainer};
use serde_json::json;

const TEST: usize = 1000;

/// Two pre-norm residual blocks of width 128 between a 784 → 128 input layer and the
/// 10 outputs: `z + fc2(gelu(fc1(ln(z))))`.
fn residual_net(rng: &mut Rng) -> Sequential<f32> {
    let block = |rng: &mut Rng| {
        Residual::new(
            Sequential::<f32>::new()
                .add("ln", LayerNorm::new(128))
                .add("fc1", Linear::new(128, 128, rng))
                .add("gelu", Activation::Gelu)
                .add("drop", Dropout::new(0.1, 3))
                .add("fc2", Linear::new(128, 128, rng)),
        )
    };
    Sequential::<f32>::new()
        .add("fc_in", Linear::new(784, 128, rng))
        .add("res1", block(rng))
        .add("res2", block(rng))
        .add("ln", LayerNorm::new(128))
        .add("fc_out", Linear::new(128, 10, rng))
}

fn write_f32(path: &PathBuf, t: &Tensor<f32>) {
    let bytes: Vec<u8> = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn main() {
    let out = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(|| PathBuf::from("runs/onnx-peers"), PathBuf::from);
    std::fs::create_dir_all(&out).expect("the output directory");
    let data = DataConfig {
        limit: Some(3000),
        ..Default::default()
    }
    .load(0, None, true)
    .expect("the shipped MNIST");
    let test = data.test.as_ref().expect("MNIST has a test split");
    let x = Tensor::from_vec(test.x.data()[..TEST * 784].to_vec(), &[TEST, 784]);
    let img = Some([1, 28, 28]);
    let spec = |s: ModelSpec| s.build_shaped::<f32>(784, img, Some(10), 0).unwrap().model;
    let models: Vec<(&str, Sequential<f32>)> = vec![
        ("mlp", spec(ModelSpec::preset("mlp", 10).unwrap())),
        ("lenet5", spec(ModelSpec::lenet5(10))),
        ("cnn", spec(ModelSpec::cnn(10))),
        ("residual_layernorm", residual_net(&mut Rng::seed(0))),
    ];
    let mut manifest = Vec::new();
    for (name, model) in &models {
        let config = TrainConfig {
            epochs: 1,
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            ..Default::default()
        };
        let mut t = Trainer::new(model, config).unwrap();
        t.fit(&data.train, None, &mut Quiet, |_| Ok(())).unwrap();
        drop(t);
        let logits = no_grad(|| model.forward(&Var::constant(x.clone()), Mode::Eval).value());
        let probs = logits.softmax(1);
        let options = backprop::onnx::ExportOptions {
            probabilities: true,
            ..Default::default()
        };
        let onnx = backprop::onnx::export(model, &[784], &options).unwrap();
        std::fs::write(
            out.join(format!("{name}.onnx")),
            backprop::onnx::to_bytes(&onnx),
        )
        .unwrap();
        write_f32(&out.join(format!("{name}.input.f32")), &x);
        write_f32(&out.join(format!("{name}.logits.f32")), &logits);
        write_f32(&out.join(format!("{name}.probabilities.f32")), &probs);
        let nodes = onnx.graph.as_ref().map_or(0, |g| g.node.len());
        println!(
            "{name}: {} parameters, {nodes} ONNX nodes",
            model.num_params()
        );
        manifest.push(json!({"name": name, "inputs": 784, "outputs": 10, "samples": TEST}));
    }
    std::fs::write(out.join("models.json"), json!(manifest).to_string()).unwrap();
    println!("wrote {} models to {}", models.len(), out.display());
}
