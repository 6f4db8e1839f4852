//! Importing a state dict written elsewhere: the dtypes PyTorch writes are converted, its
//! batch-norm counter skipped, and each bad file (a missing tensor, an extra one, a wrong
//! shape, a wrong dtype, a spec that does not match) is refused with the tensor named.

use std::borrow::Cow;

use backprop_nn::{ModelSpec, Module, Sequential};
use backprop_train::import::import_bytes;
use safetensors::tensor::{Dtype, View};

/// One tensor as the test writes it: any dtype, raw little-endian bytes.
struct Raw(Dtype, Vec<usize>, Vec<u8>);

impl View for Raw {
    fn dtype(&self) -> Dtype {
        self.0
    }
    fn shape(&self) -> &[usize] {
        &self.1
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.2)
    }
    fn data_len(&self) -> usize {
        self.2.len()
    }
}

fn f64s(shape: &[usize], seed: f64) -> Raw {
    let n: usize = shape.iter().product();
    let vals = (0..n)
        .flat_map(|i| (seed + i as f64 * 0.01).to_le_bytes())
        .collect();
    Raw(Dtype::F64, shape.to_vec(), vals)
}

fn f16s(shape: &[usize], v: f32) -> Raw {
    let n: usize = shape.iter().product();
    let vals = (0..n)
        .flat_map(|_| half::f16::from_f32(v).to_le_bytes())
        .collect();
    Raw(Dtype::F16, shape.to_vec(), vals)
}

fn bf16s(shape: &[usize], v: f32) -> Raw {
    let n: usize = shape.iter().product();
    let vals = (0..n)
        .flat_map(|_| half::bf16::from_f32(v).to_le_bytes())
        .collect();
    Raw(Dtype::BF16, shape.to_vec(), vals)
}

/// 3 inputs → linear 4 → batch norm → relu → linear 2: `fc1.*`, `bn1.*`, `fc2.*`.
fn model(hidden: usize) -> Sequential<f32> {
    let spec = format!(
        r#"{{"layers": [{{"type": "linear", "out": {hidden}}}, {{"type": "batch_norm"}}, {{"type": "relu"}}, {{"type": "linear", "out": 2}}]}}"#
    );
    ModelSpec::from_json(&spec)
        .unwrap()
        .build::<f32>(3, Some(2), 0)
        .unwrap()
        .model
}

/// The state dict PyTorch writes for `model(4)`, in mixed dtypes, with the counter.
fn torch_like() -> Vec<(String, Raw)> {
    vec![
        ("fc1.weight".into(), f64s(&[4, 3], 0.1)),
        ("fc1.bias".into(), f16s(&[4], 0.5)),
        ("bn1.weight".into(), bf16s(&[4], 1.5)),
        ("bn1.bias".into(), f64s(&[4], -0.2)),
        ("bn1.running_mean".into(), f64s(&[4], 0.3)),
        ("bn1.running_var".into(), f64s(&[4], 1.1)),
        (
            "bn1.num_batches_tracked".into(),
            Raw(Dtype::I64, vec![], 7i64.to_le_bytes().to_vec()),
        ),
        ("fc2.weight".into(), f64s(&[2, 4], -0.4)),
        ("fc2.bias".into(), f64s(&[2], 0.0)),
    ]
}

fn bytes(tensors: Vec<(String, Raw)>) -> Vec<u8> {
    safetensors::serialize(tensors, None).unwrap()
}

fn import_err(m: &Sequential<f32>, tensors: Vec<(String, Raw)>) -> String {
    import_bytes(m, &bytes(tensors)).unwrap_err().to_string()
}

#[test]
fn a_pytorch_state_dict_imports_with_dtypes_converted_and_the_counter_skipped() {
    let m = model(4);
    let report = import_bytes(&m, &bytes(torch_like())).unwrap();
    assert_eq!(report.tensors, 8);
    assert_eq!(report.skipped, ["bn1.num_batches_tracked"]);
    let p: Vec<(String, Vec<f32>)> = m
        .params()
        .into_iter()
        .chain(m.buffers())
        .map(|(n, v)| (n, v.value().to_vec()))
        .collect();
    let get = |n: &str| p.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("fc1.weight")[5], (0.1 + 5.0 * 0.01) as f32);
    assert_eq!(get("fc1.bias"), vec![0.5; 4]);
    assert_eq!(get("bn1.weight"), vec![1.5; 4]);
    assert_eq!(get("bn1.running_var")[0], 1.1);
    assert_eq!(get("fc2.weight")[7], (-0.4 + 0.07) as f32);
}

#[test]
fn a_missing_tensor_is_named_and_nothing_is_copied() {
    let m = model(4);
    let before = m.params()[0].1.value().to_vec();
    let mut t = torch_like();
    t.retain(|(n, _)| n != "bn1.running_mean");
    let e = import_err(&m, t);
    assert!(e.contains("missing \"bn1.running_mean\""), "{e}");
    assert_eq!(
        m.params()[0].1.value().to_vec(),
        before,
        "a failed import changed weights"
    );
}

#[test]
fn an_extra_tensor_is_named() {
    let mut t = torch_like();
    t.push(("head.weight".into(), f64s(&[2, 2], 0.0)));
    let e = import_err(&model(4), t);
    assert!(e.contains("unexpected \"head.weight\""), "{e}");
}

#[test]
fn a_wrong_shape_is_named_with_both_shapes() {
    let mut t = torch_like();
    t[0] = ("fc1.weight".into(), f64s(&[3, 4], 0.1));
    let e = import_err(&model(4), t);
    assert!(
        e.contains("\"fc1.weight\" has shape [3, 4] in the file but [4, 3] in the model"),
        "{e}"
    );
}

#[test]
fn a_wrong_dtype_is_named() {
    let mut t = torch_like();
    t[1] = ("fc1.bias".into(), Raw(Dtype::I32, vec![4], vec![0; 16]));
    let e = import_err(&model(4), t);
    assert!(
        e.contains("\"fc1.bias\" (I32)") && e.contains("floating point"),
        "{e}"
    );
}

#[test]
fn a_spec_that_does_not_match_lists_every_difference() {
    // the file holds a 4-unit hidden layer; the spec asks for 6 units and no batch norm
    let spec = ModelSpec::from_json(
        r#"{"layers": [{"type": "linear", "out": 6}, {"type": "relu"}, {"type": "linear", "out": 2}]}"#,
    )
    .unwrap();
    let m = spec.build::<f32>(3, Some(2), 0).unwrap().model;
    let e = import_err(&m, torch_like());
    assert!(
        e.contains("\"fc1.weight\" has shape [4, 3] in the file but [6, 3] in the model"),
        "{e}"
    );
    assert!(
        e.contains("\"fc2.weight\" has shape [2, 4] in the file but [2, 6] in the model"),
        "{e}"
    );
    for n in [
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
    ] {
        assert!(e.contains(&format!("{n:?}")), "{n} not listed: {e}");
    }
    assert!(e.contains("unexpected"), "{e}");
}

#[test]
fn a_file_that_is_not_safetensors_is_refused() {
    let e = import_bytes(&model(4), b"PK\x03\x04 not a state dict").unwrap_err();
    assert!(e.to_string().contains("not a safetensors file"), "{e}");
}
