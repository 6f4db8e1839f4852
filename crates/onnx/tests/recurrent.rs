//! Recurrent layers exported as ONNX's `RNN`, `LSTM` and `GRU` operators: the graph's
//! operators, attributes and repacked weights (gate blocks in ONNX's order), and the
//! exported Elman, LSTM and GRU networks — stacked, bidirectional, without biases,
//! time-major or batch-first, passing on the last state or the whole sequence — run in
//! tract (an independent ONNX runtime) as our forward pass computes them, to 1e-5. Layers
//! without an exact ONNX form are refused by name.
//!
//! tract implements neither the ReLU Elman network (it runs `RNN` with `tanh` whatever the
//! `activations`) nor per-sample `sequence_lens`; for those this file checks the graph, and
//! `benches/peers/onnx_recurrent.py` runs them in ONNX Runtime.

use std::collections::HashMap;

use backprop_autograd::{no_grad, Var};
use backprop_nn::{
    Activation, CellKind, Jordan, Mode, ModelSpec, Module, Recurrent, RecurrentOptions, Sequential,
};
use backprop_onnx::proto::{AttributeProto, GraphProto, ModelProto, TensorProto};
use backprop_onnx::{export, to_bytes, ExportError, ExportOptions};
use backprop_tensor::{Rng, Tensor};

const TOL: f32 = 1e-5;

mod support;
use support::{export_and_compare, max_abs_diff, tract_run};

/// Exports `model` (samples of `sample_shape`), runs it in tract at batch sizes 1 and 5,
/// and returns the largest difference from our forward pass over the outputs and their
/// softmax over the last axis.
fn compare(model: &dyn Module<f32>, sample_shape: &[usize], seed: u64) -> f32 {
    export_and_compare(model, sample_shape, seed, &[1, 5])
}

/// A spec network on sequences of 5 steps × 4 features (flat samples of 20, read row by
/// row as a `[1, 5, 4]` image).
fn seq_net(layer: &str) -> Sequential<f32> {
    let spec = format!(r#"{{"layers": [{layer}, {{"type": "linear", "out": 3}}]}}"#);
    ModelSpec::from_json(&spec)
        .unwrap()
        .build_shaped::<f32>(20, Some([1, 5, 4]), None, 11)
        .unwrap()
        .model
}

#[test]
fn each_cell_runs_in_tract_as_here() {
    for (n, kind) in ["rnn", "lstm", "gru"].iter().enumerate() {
        let m = seq_net(&format!(r#"{{"type": "{kind}", "hidden": 6}}"#));
        let d = compare(&m, &[20], n as u64);
        eprintln!("{kind}: max abs difference {d:e}");
        assert!(d < TOL, "{kind} differs by {d}");
    }
}

#[test]
fn stacked_bidirectional_layers_run_in_tract_as_here() {
    // two layers both ways; dropout between them and truncated BPTT are training-only
    for (n, kind) in ["rnn", "lstm", "gru"].iter().enumerate() {
        for output in ["last", "sequence"] {
            let layer = format!(
                r#"{{"type": "{kind}", "hidden": 5, "num_layers": 2, "bidirectional": true,
                    "output": "{output}", "dropout": 0.3, "truncate": 2}}"#
            );
            let d = compare(&seq_net(&layer), &[20], 10 + n as u64);
            eprintln!("{kind}, 2 layers, bidirectional, {output}: max abs difference {d:e}");
            assert!(d < TOL, "{kind} ({output}) differs by {d}");
        }
    }
}

#[test]
fn layers_without_biases_and_three_deep_run_in_tract_as_here() {
    for kind in ["lstm", "gru"] {
        let layer = format!(r#"{{"type": "{kind}", "hidden": 4, "num_layers": 3, "bias": false}}"#);
        let d = compare(&seq_net(&layer), &[20], 20);
        assert!(d < TOL, "{kind} without biases differs by {d}");
    }
}

#[test]
fn a_time_major_layer_built_in_code_runs_in_tract_as_here() {
    // [T, B, I] with the graph's first axis as time: the whole sequence out, [T, B, D·H]
    // (a time-major layer's last state, [B, D·H], has no batch axis of the graph's)
    let mut rng = Rng::seed(30);
    for kind in [CellKind::Lstm, CellKind::Gru, CellKind::RnnTanh] {
        let opts = RecurrentOptions::new(kind, 3, 4)
            .with_layers(2)
            .with_bidirectional(true);
        let r = Recurrent::<f32>::new(opts, &mut rng);
        // here the graph's first axis is time; tract 0.22 cannot plan the reshape between
        // the layers for a single step (a `todo!` in its axis analysis), hence 3 and 6 steps
        let d = export_and_compare(&r, &[2, 3], 31, &[3, 6]);
        assert!(d < TOL, "time-major {kind:?} differs by {d}");
    }
}

fn graph(m: &dyn Module<f32>, sample: &[usize]) -> GraphProto {
    let model: ModelProto = export(m, sample, &ExportOptions::default()).unwrap();
    model.graph.unwrap()
}

fn ops(g: &GraphProto) -> Vec<&str> {
    g.node.iter().map(|n| n.op_type.as_str()).collect()
}

fn attr<'a>(g: &'a GraphProto, op: &str, name: &str) -> Option<&'a AttributeProto> {
    let node = g.node.iter().find(|n| n.op_type == op).unwrap();
    node.attribute.iter().find(|a| a.name == name)
}

fn floats(t: &TensorProto) -> Vec<f32> {
    t.raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn init<'a>(g: &'a GraphProto, name: &str) -> &'a TensorProto {
    g.initializer
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"))
}

/// Rows `[from, to)` of a `[rows, cols]` parameter, flattened.
fn rows(t: &Tensor<f32>, from: usize, to: usize) -> Vec<f32> {
    let cols = t.numel() / t.shape()[0];
    t.data()[from * cols..to * cols].to_vec()
}

#[test]
fn lstm_weights_are_repacked_in_onnx_gate_order() {
    let m = seq_net(r#"{"type": "lstm", "hidden": 3, "num_layers": 2, "bidirectional": true}"#);
    let g = graph(&m, &[20]);
    assert_eq!(
        ops(&g),
        [
            "Reshape",
            "Transpose",
            "LSTM",
            "Transpose",
            "Reshape",
            "LSTM",
            "Transpose",
            "Reshape",
            "Gemm",
            "Identity"
        ]
    );
    let lstm: Vec<_> = g.node.iter().filter(|n| n.op_type == "LSTM").collect();
    assert_eq!(
        lstm[0].input[1..],
        ["lstm1.W_l0", "lstm1.R_l0", "lstm1.B_l0"]
    );
    // the lower layer passes on Y (the sequence), the top one only Y_h (the last state)
    assert_eq!(lstm[0].output.len(), 1);
    assert_eq!(lstm[1].output.len(), 2);
    assert!(lstm[1].output[0].is_empty() && !lstm[1].output[1].is_empty());
    let dir = attr(&g, "LSTM", "direction").unwrap();
    assert_eq!(dir.s, b"bidirectional");
    assert_eq!(attr(&g, "LSTM", "hidden_size").unwrap().i, 3);

    let p: HashMap<String, Tensor<f32>> = m
        .params()
        .into_iter()
        .map(|(n, v)| (n, v.value()))
        .collect();
    let h = 3;
    let (w, r, b) = (
        init(&g, "lstm1.W_l1"),
        init(&g, "lstm1.R_l1"),
        init(&g, "lstm1.B_l1"),
    );
    assert_eq!(w.dims, [2, 4 * 3, 2 * 3]);
    assert_eq!(r.dims, [2, 4 * 3, 3]);
    assert_eq!(b.dims, [2, 2 * 4 * 3]);
    let (w, r, b) = (floats(w), floats(r), floats(b));
    // ONNX block j holds PyTorch block pt[j]: i | o | f | c from i | f | g | o
    let pt = [0, 3, 1, 2];
    for (d, sfx) in ["", "_reverse"].iter().enumerate() {
        let w_ih = &p[&format!("lstm1.weight_ih_l1{sfx}")];
        let w_hh = &p[&format!("lstm1.weight_hh_l1{sfx}")];
        let b_ih = &p[&format!("lstm1.bias_ih_l1{sfx}")];
        let b_hh = &p[&format!("lstm1.bias_hh_l1{sfx}")];
        for (j, &k) in pt.iter().enumerate() {
            let (wn, rn) = (h * 2 * h, h * h);
            let at = |v: &[f32], per: usize| v[(d * 4 + j) * per..][..per].to_vec();
            assert_eq!(at(&w, wn), rows(w_ih, k * h, (k + 1) * h), "W block {j}");
            assert_eq!(at(&r, rn), rows(w_hh, k * h, (k + 1) * h), "R block {j}");
            let bd = &b[d * 8 * h..(d + 1) * 8 * h];
            assert_eq!(bd[j * h..][..h], b_ih.data()[k * h..][..h], "Wb block {j}");
            assert_eq!(
                bd[(4 + j) * h..][..h],
                b_hh.data()[k * h..][..h],
                "Rb block {j}"
            );
        }
    }
}

#[test]
fn gru_gates_are_z_r_h_with_the_reset_after_the_recurrent_product() {
    let m = seq_net(r#"{"type": "gru", "hidden": 2}"#);
    let g = graph(&m, &[20]);
    assert_eq!(attr(&g, "GRU", "linear_before_reset").unwrap().i, 1);
    assert_eq!(attr(&g, "GRU", "direction").unwrap().s, b"forward");
    let p: HashMap<String, Tensor<f32>> = m
        .params()
        .into_iter()
        .map(|(n, v)| (n, v.value()))
        .collect();
    let w = floats(init(&g, "gru1.W_l0"));
    let w_ih = &p["gru1.weight_ih_l0"];
    let (h, i) = (2, 4);
    // z | r | h from r | z | n
    for (j, k) in [1, 0, 2].into_iter().enumerate() {
        assert_eq!(
            w[j * h * i..(j + 1) * h * i],
            rows(w_ih, k * h, (k + 1) * h)[..]
        );
    }
}

#[test]
fn a_relu_elman_network_names_its_activation_per_direction() {
    let m = seq_net(r#"{"type": "rnn_relu", "hidden": 3, "bidirectional": true}"#);
    let g = graph(&m, &[20]);
    let a = attr(&g, "RNN", "activations").unwrap();
    assert_eq!(a.strings, [b"Relu".to_vec(), b"Relu".to_vec()]);
    let tanh = graph(&seq_net(r#"{"type": "rnn", "hidden": 3}"#), &[20]);
    assert!(
        attr(&tanh, "RNN", "activations").is_none(),
        "tanh is the default"
    );
}

#[test]
fn padding_becomes_sequence_lengths_for_every_layer() {
    let m = seq_net(r#"{"type": "gru", "hidden": 3, "num_layers": 2, "padding_value": 0.0}"#);
    let g = graph(&m, &[20]);
    let o = ops(&g);
    for op in ["Equal", "Not", "ArgMax", "ReduceMax"] {
        assert!(o.contains(&op), "{op} missing from {o:?}");
    }
    let grus: Vec<_> = g.node.iter().filter(|n| n.op_type == "GRU").collect();
    assert_eq!(grus.len(), 2);
    let lens = &grus[0].input[4];
    assert!(!lens.is_empty());
    assert!(
        grus.iter().all(|n| &n.input[4] == lens),
        "one sequence_lens for both layers"
    );
    let cast = g.node.iter().find(|n| &n.output[0] == lens).unwrap();
    assert_eq!(cast.op_type, "Cast");
    assert_eq!(cast.attribute[0].i, 6, "sequence_lens is int32");
    let argmax = g.node.iter().find(|n| n.op_type == "ArgMax").unwrap();
    let select_last = argmax
        .attribute
        .iter()
        .find(|a| a.name == "select_last_index");
    assert_eq!(select_last.unwrap().i, 1);
}

#[test]
fn a_jordan_layer_and_a_stateful_layer_are_refused_by_name() {
    let mut rng = Rng::seed(40);
    let m = Sequential::<f32>::new().add(
        "jordan1",
        Jordan::<f32>::new(4, 6, 3, 0.5, Activation::Identity, &mut rng),
    );
    let e = export(&m, &[2, 4], &ExportOptions::default()).unwrap_err();
    assert!(matches!(e, ExportError::Inexpressible { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("layer jordan1 (") && msg.contains("Jordan"),
        "{msg}"
    );
    let stateful = seq_net(r#"{"type": "lstm", "hidden": 3, "stateful": true}"#);
    let e = export(&stateful, &[20], &ExportOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("layer lstm1 (LSTM(4 → 3, stateful") && msg.contains("stateful"),
        "{msg}"
    );
}

mod reference;

/// Exports `model` and runs the graph in the reference interpreter on `x`; returns the
/// largest difference from our forward pass over the outputs and their softmax.
fn reference_diff(model: &dyn Module<f32>, x: &Tensor<f32>) -> f32 {
    let options = ExportOptions {
        probabilities: true,
        ..Default::default()
    };
    let g = export(model, &x.shape()[1..], &options)
        .unwrap()
        .graph
        .unwrap();
    let input = reference::Val {
        shape: x.shape().to_vec(),
        data: x.data().iter().map(|&v| v as f64).collect(),
    };
    let out = reference::run(&g, input);
    let y = no_grad(|| model.forward(&Var::constant(x.clone()), Mode::Eval).value());
    let probs = y.softmax(-1);
    let as_f32 = |v: &reference::Val| v.data.iter().map(|&e| e as f32).collect::<Vec<_>>();
    assert_eq!(out[0].shape, y.shape());
    max_abs_diff(&as_f32(&out[0]), y.data()).max(max_abs_diff(&as_f32(&out[1]), probs.data()))
}

/// Seven sequences of 5 steps × 4 features, flat: sample k ≤ 5 ends in k steps of zeros
/// (lengths 5, 4, 3, 2, 1, 0 under `padding_value` 0), the last has a zero step inside.
fn padded_batch(rng: &mut Rng) -> Tensor<f32> {
    let mut x = Tensor::<f32>::rand_normal(&[7, 20], 0.0, 1.0, rng).to_vec();
    for k in 0..6 {
        x[k * 20 + (5 - k) * 4..(k + 1) * 20].fill(0.0);
    }
    x[6 * 20 + 8..6 * 20 + 12].fill(0.0);
    Tensor::from_vec(x, &[7, 20])
}

#[test]
fn the_reference_interpreter_agrees_with_tract_and_with_us() {
    // so that it can vouch for what tract cannot run
    let mut rng = Rng::seed(50);
    for kind in ["rnn", "lstm", "gru"] {
        let layer =
            format!(r#"{{"type": "{kind}", "hidden": 4, "num_layers": 2, "bidirectional": true}}"#);
        let m = seq_net(&layer);
        let x = Tensor::rand_normal(&[3, 20], 0.0, 1.0, &mut rng);
        let options = ExportOptions::default();
        let onnx = export(&m, &[20], &options).unwrap();
        let theirs = tract_run(&to_bytes(&onnx), &x);
        let g = onnx.graph.unwrap();
        let input = reference::Val {
            shape: vec![3, 20],
            data: x.data().iter().map(|&v| v as f64).collect(),
        };
        let mine: Vec<f32> = reference::run(&g, input)[0]
            .data
            .iter()
            .map(|&v| v as f32)
            .collect();
        let d = max_abs_diff(&mine, &theirs[0]);
        assert!(d < TOL, "{kind}: the interpreter and tract differ by {d}");
        let d = reference_diff(&m, &x);
        assert!(
            d < TOL,
            "{kind}: the interpreter and our forward pass differ by {d}"
        );
    }
}

#[test]
fn a_relu_elman_network_runs_in_the_reference_as_here() {
    let m = seq_net(r#"{"type": "rnn_relu", "hidden": 5, "num_layers": 2, "bidirectional": true}"#);
    let x = Tensor::rand_normal(&[4, 20], 0.0, 1.0, &mut Rng::seed(51));
    let d = reference_diff(&m, &x);
    eprintln!("rnn_relu, 2 layers, bidirectional: max abs difference {d:e}");
    assert!(d < TOL, "rnn_relu differs by {d}");
}

#[test]
fn padded_sequences_run_in_the_reference_as_here() {
    // lengths 5 to 0 and a zero step inside a sequence; both directions, stacked, both
    // outputs (the sequence output is 0 past each sample's end)
    let mut rng = Rng::seed(52);
    for layer in [
        r#"{"type": "gru", "hidden": 4, "padding_value": 0.0}"#,
        r#"{"type": "lstm", "hidden": 3, "num_layers": 2, "bidirectional": true, "padding_value": 0.0}"#,
        r#"{"type": "lstm", "hidden": 3, "bidirectional": true, "output": "sequence", "padding_value": 0.0}"#,
        r#"{"type": "rnn_relu", "hidden": 4, "num_layers": 2, "bidirectional": true, "output": "sequence", "padding_value": 0.0}"#,
    ] {
        let m = seq_net(layer);
        let d = reference_diff(&m, &padded_batch(&mut rng));
        eprintln!("{layer}: max abs difference {d:e}");
        assert!(d < TOL, "{layer} differs by {d}");
    }
}
