//! Exported models run in tract (a second, independent ONNX runtime) and agree with our own
//! forward pass to 1e-5 on every model kind: an MLP, LeNet-5, the `cnn` preset (batch
//! norm), a residual block with layer norm, and networks holding every activation and every
//! other layer type a spec can hold. Each model runs at two batch sizes through the one
//! graph (the batch dimension is symbolic).

use backprop_autograd::Var;
use backprop_nn::{
    Activation, BatchNorm, Dropout, LayerNorm, Linear, Mode, ModelSpec, Module, Residual,
    Sequential,
};
use backprop_onnx::{export, ExportOptions};
use backprop_tensor::{Rng, Tensor};

const TOL: f32 = 1e-5;

mod support;
use support::export_and_compare;

/// Exports `model` (samples of `sample_shape`), runs it in tract at batch sizes 1 and 13,
/// and returns the largest difference from our forward pass over logits and probabilities.
fn compare(model: &dyn Module<f32>, sample_shape: &[usize], seed: u64) -> f32 {
    export_and_compare(model, sample_shape, seed, &[1, 13])
}

fn built(spec: &str, inputs: usize, image: Option<[usize; 3]>) -> Sequential<f32> {
    let spec = ModelSpec::from_json(spec).unwrap();
    spec.build_shaped::<f32>(inputs, image, None, 7)
        .unwrap()
        .model
}

/// Gives batch norm running statistics and affine parameters away from the identity.
fn perturb_norms(m: &dyn Module<f32>, rng: &mut Rng) {
    for (name, v) in m.params().into_iter().chain(m.buffers()) {
        let shape = v.shape();
        let t = if name.ends_with("running_var") {
            Tensor::rand_uniform(&shape, 0.5, 1.5, rng)
        } else if name.starts_with("bn") || name.contains(".bn") || name.contains("ln") {
            Tensor::rand_normal(&shape, 0.3, 0.5, rng)
        } else {
            continue;
        };
        v.set_value(t);
    }
}

#[test]
fn an_mlp_runs_in_tract_as_here() {
    let m = ModelSpec::preset("mlp", 10)
        .unwrap()
        .build::<f32>(784, Some(10), 1)
        .unwrap()
        .model;
    let d = compare(&m, &[784], 1);
    eprintln!("mlp: max abs difference {d:e}");
    assert!(d < TOL, "mlp differs by {d}");
}

#[test]
fn lenet5_runs_in_tract_as_here() {
    let m = ModelSpec::lenet5(10)
        .build_shaped::<f32>(784, Some([1, 28, 28]), Some(10), 2)
        .unwrap()
        .model;
    let d = compare(&m, &[784], 2);
    eprintln!("lenet5: max abs difference {d:e}");
    assert!(d < TOL, "lenet5 differs by {d}");
}

#[test]
fn the_cnn_preset_with_batch_norm_runs_in_tract_as_here() {
    let m = ModelSpec::cnn(10)
        .build_shaped::<f32>(784, Some([1, 28, 28]), Some(10), 3)
        .unwrap()
        .model;
    perturb_norms(&m, &mut Rng::seed(3));
    let d = compare(&m, &[784], 3);
    eprintln!("cnn: max abs difference {d:e}");
    assert!(d < TOL, "cnn differs by {d}");
}

#[test]
fn a_residual_block_with_layer_norm_runs_in_tract_as_here() {
    let mut rng = Rng::seed(4);
    let block = |rng: &mut Rng| {
        Residual::new(
            Sequential::<f32>::new()
                .add("ln", LayerNorm::new(16))
                .add("fc1", Linear::new(16, 16, rng))
                .add("gelu", Activation::Gelu)
                .add("drop", Dropout::new(0.3, 1))
                .add("fc2", Linear::new(16, 16, rng)),
        )
    };
    let m = Sequential::<f32>::new()
        .add("fc_in", Linear::new(6, 16, &mut rng))
        .add("res1", block(&mut rng))
        .add("res2", block(&mut rng))
        .add("ln", LayerNorm::new(16))
        .add("bn", BatchNorm::for_features(16))
        .add("fc_out", Linear::new(16, 3, &mut rng));
    perturb_norms(&m, &mut rng);
    let d = compare(&m, &[6], 4);
    eprintln!("residual + layer norm: max abs difference {d:e}");
    assert!(d < TOL, "residual model differs by {d}");
}

#[test]
fn every_activation_runs_in_tract_as_here() {
    let mut layers = Vec::new();
    for a in Activation::ALL {
        layers.push(r#"{"type": "linear", "out": 12}"#.to_string());
        let mut act = serde_json::json!({"type": a.name()});
        if let Some((k, v)) = a.param() {
            act[k] = serde_json::json!(v);
        }
        layers.push(act.to_string());
    }
    layers.push(r#"{"type": "linear", "out": 4}"#.into());
    let spec = format!(r#"{{"layers": [{}]}}"#, layers.join(", "));
    let m = built(&spec, 5, None);
    let d = compare(&m, &[5], 5);
    eprintln!("every activation: max abs difference {d:e}");
    assert!(d < TOL, "activations differ by {d}");
}

#[test]
fn every_other_spec_layer_runs_in_tract_as_here() {
    // reshape (inserted), conv with stride/dilation/groups, PReLU per channel, both pools
    // with padding, batch norm on images, global average pooling, maxout, shared PReLU,
    // flatten, dropout, layer norm
    let spec = r#"{"layers": [
        {"type": "conv2d", "out": 4, "kernel": 3, "padding": 1},
        {"type": "prelu", "per_channel": true},
        {"type": "conv2d", "out": 4, "kernel": [3, 2], "stride": 2, "dilation": [1, 2], "groups": 2},
        {"type": "batch_norm"},
        {"type": "avg_pool2d", "kernel": 3, "stride": 1, "padding": 1},
        {"type": "max_pool2d", "kernel": 2, "stride": 1, "padding": 1},
        {"type": "reshape", "shape": [5, 4, 4]},
        {"type": "flatten"},
        {"type": "dropout", "p": 0.5},
        {"type": "maxout", "out": 6, "pieces": 3},
        {"type": "prelu"},
        {"type": "layer_norm"},
        {"type": "linear", "out": 3}
    ]}"#;
    let m = built(spec, 2 * 8 * 10, Some([2, 8, 10]));
    perturb_norms(&m, &mut Rng::seed(6));
    let d = compare(&m, &[160], 6);
    eprintln!("every other layer: max abs difference {d:e}");
    assert!(d < TOL, "layers differ by {d}");
    let gap = built(
        r#"{"layers": [{"type": "conv2d", "out": 5, "kernel": 3}, {"type": "global_avg_pool"}, {"type": "linear", "out": 2}]}"#,
        3 * 6 * 6,
        Some([3, 6, 6]),
    );
    let d = compare(&gap, &[108], 7);
    assert!(d < TOL, "global average pooling differs by {d}");
}

#[test]
fn a_layer_without_an_export_is_named() {
    struct Custom;
    impl Module<f32> for Custom {
        fn forward(&self, x: &Var<f32>, _: Mode) -> Var<f32> {
            x.clone()
        }
        fn kind(&self) -> String {
            "Custom".into()
        }
    }
    let m =
        Sequential::<f32>::new().add("block", Residual::new(Sequential::new().add("odd", Custom)));
    let e = export(&m, &[3], &ExportOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "layer block.f.odd (Custom) has no ONNX export"
    );
}
