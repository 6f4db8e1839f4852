//! Recurrent models interoperate with PyTorch by their state dicts, checked without Python
//! from the committed fixture (`tests/fixtures/rnn_torch.json`, PyTorch's own names, shapes,
//! weights and outputs for 2-layer bidirectional nn.RNN, nn.LSTM and nn.GRU):
//!
//! - the model file of a spec model holds exactly PyTorch's keys and shapes under the layer's
//!   name (what `load_state_dict(strict=True)` checks; `benches/peers/rnn_interop.py` does
//!   the load in PyTorch itself and compares outputs);
//! - PyTorch's weights imported into our model give PyTorch's outputs, and survive a save
//!   and a load unchanged.

use std::collections::BTreeMap;

use backprop_autograd::Var;
use backprop_nn::{Mode, ModelSpec, Module};
use backprop_train::checkpoint::Checkpoint;
use backprop_train::import::import_bytes;

#[path = "../../nn/tests/support/rnn_fixture.rs"]
mod rnn_fixture;
use rnn_fixture::{fixture, tensor};

#[test]
fn saved_recurrent_models_have_pytorchs_state_dict_and_give_its_outputs() {
    let fx = fixture();
    let dim = |k: &str| fx["meta"][k].as_u64().unwrap() as usize;
    let (t, b, i, h) = (dim("T"), dim("B"), dim("I"), dim("H"));
    for case in fx["cases"].as_array().unwrap() {
        let kind = case["kind"].as_str().unwrap();
        // the fixture's module reads [T, B, I] from a given state; a spec layer reads
        // [B, T, I] from zeros and passes on every step: compare on that, batch first
        let spec = ModelSpec::from_json(&format!(
            r#"{{"layers": [{{"type": "{kind}", "hidden": {h}, "num_layers": 2, "bidirectional": true, "output": "sequence"}}, {{"type": "flatten"}}]}}"#
        ))
        .unwrap();
        let net = spec
            .build_shaped::<f32>(t * i, Some([1, t, i]), None, 0)
            .unwrap()
            .model;
        let prefix = format!("{}1.", if kind == "rnn_relu" { "rnn" } else { kind });
        // 1. our model file: PyTorch's keys and shapes, nothing more, nothing less
        let ours = Checkpoint::of_model(&net, BTreeMap::new()).split().0;
        let mut keys: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (n, tns) in &ours.tensors {
            let key = n
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{n}: not under {prefix}"));
            keys.insert(key.to_string(), tns.shape().to_vec());
        }
        let theirs: BTreeMap<String, Vec<usize>> = case["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), tensor(v).shape().to_vec()))
            .collect();
        assert_eq!(keys, theirs, "{kind}: state dict keys and shapes");
        // 2. PyTorch's weights in, PyTorch's outputs out
        let torch = Checkpoint {
            tensors: case["params"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(n, v)| (format!("{prefix}{n}"), tensor(v)))
                .collect(),
            metadata: BTreeMap::new(),
        };
        import_bytes(&net, &torch.to_bytes()).unwrap();
        let x = tensor(&case["x"]); // [T, B, I]
        let xb = Var::constant(x).transpose(0, 1).reshape(&[b, t * i]);
        let y = net.forward(&xb, Mode::Eval).value(); // [B, T·2H]
        let want = tensor(&case["output_zero_state"]); // [T, B, 2H]
        for bb in 0..b {
            for tt in 0..t {
                for j in 0..2 * h {
                    let (a, w) = (y.get(&[bb, tt * 2 * h + j]), want.get(&[tt, bb, j]));
                    assert!(
                        (a - w).abs() <= 1e-5,
                        "{kind}: output [{tt}, {bb}, {j}]: ours {a}, PyTorch's {w}"
                    );
                }
            }
        }
        // 3. saved and loaded: the same values, the same outputs
        let bytes = Checkpoint::of_model(&net, BTreeMap::new()).to_bytes();
        let loaded = Checkpoint::from_bytes(&bytes).unwrap();
        for (n, a) in &torch.tensors {
            assert_eq!(loaded.get(n), Some(a), "{n}: saved as imported");
        }
        let copy = spec
            .build_shaped::<f32>(t * i, Some([1, t, i]), None, 7)
            .unwrap()
            .model;
        import_bytes(&copy, &bytes).unwrap();
        assert_eq!(
            copy.forward(&xb, Mode::Eval).value(),
            y,
            "{kind}: after a round trip"
        );
    }
}
