//! What the ONNX runtime tests share: running exported bytes in tract, and comparing outputs.

use backprop_tensor::Tensor;
use tract_onnx::prelude::*;

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
