//! The PyTorch recurrent fixture, read the same way by the nn and train crates' tests.

use backprop_tensor::Tensor;
use serde_json::Value;

/// The committed fixture `tests/fixtures/rnn_torch.json`, which
/// `tests/fixtures/make_rnn_fixture.py` wrote from PyTorch.
pub fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/rnn_torch.json"
    );
    let text = std::fs::read_to_string(path).expect("the fixture tests/fixtures/rnn_torch.json");
    serde_json::from_str(&text).unwrap()
}

/// A fixture tensor (`{shape, values}`) as f32.
pub fn tensor(v: &Value) -> Tensor<f32> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let values = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    Tensor::from_vec(values, &shape)
}
