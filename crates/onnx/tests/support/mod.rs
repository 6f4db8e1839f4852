//! What the ONNX runtime tests share: running exported bytes in tract, and comparing outputs.

use backprop_autograd::{no_grad, Var};
use backprop_nn::{Mode, Module};
use backprop_onnx::{export, to_bytes, ExportOptions};
use backprop_tensor::{Rng, Tensor};
use tract_onnx::prelude::*;

/// Exports `model` (samples of `sample_shape`, with probabilities), runs it in tract at each
/// of the `batches` sizes through the one graph, and returns the largest difference from our
/// forward pass over the outputs and their softmax over the last axis.
pub fn export_and_compare(
    model: &dyn Module<f32>,
    sample_shape: &[usize],
    seed: u64,
    batches: &[usize],
) -> f32 {
    let options = ExportOptions {
        probabilities: true,
        ..Default::default()
    };
    let onnx = to_bytes(&export(model, sample_shape, &options).unwrap());
    let mut rng = Rng::seed(seed);
    let mut worst = 0.0f32;
    for &batch in batches {
        let mut shape = vec![batch];
        shape.extend(sample_shape);
        let x = Tensor::rand_normal(&shape, 0.0, 1.0, &mut rng);
        let y = no_grad(|| model.forward(&Var::constant(x.clone()), Mode::Eval).value());
        let probs = y.softmax(-1);
        let out = tract_run(&onnx, &x);
        assert_eq!(out.len(), 2, "outputs and probabilities");
        worst = worst
            .max(max_abs_diff(&out[0], y.data()))
            .max(max_abs_diff(&out[1], probs.data()));
    }
    worst
}

/// Runs the ONNX bytes in tract on `x`, the batch dimension fixed to `x`'s (tract's
/// recurrent operators need a concrete batch size when the graph gives no initial state);
/// returns every output, flattened.
pub fn tract_run(bytes: &[u8], x: &Tensor<f32>) -> Vec<Vec<f32>> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the model")
        .with_input_fact(0, f32::fact(x.shape()).into())
        .expect("tract takes the input shape")
        .into_optimized()
        .expect("tract optimizes the model")
        .into_runnable()
        .expect("tract plans the model");
    let input = tract_ndarray::ArrayD::from_shape_vec(x.shape().to_vec(), x.to_vec()).unwrap();
    let out = model
        .run(tvec!(TValue::from(input.into_tensor())))
        .expect("tract runs the model");
    out.iter()
        .map(|t| t.to_array_view::<f32>().unwrap().iter().copied().collect())
        .collect()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "output sizes differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
