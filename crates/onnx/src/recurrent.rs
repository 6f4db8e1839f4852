//! A [`Recurrent`] layer (Elman RNN with `tanh` or ReLU, LSTM, GRU; stacked,
//! bidirectional, time-major or batch-first) as ONNX's `RNN`, `LSTM` and `GRU` operators,
//! one per stacked layer, both directions in one operator (`direction = "bidirectional"`).
//!
//! # Mapping
//! - Weights: ONNX's `W` `[D, G·H, in]`, `R` `[D, G·H, H]` and `B` `[D, 2·G·H]` (`W`'s
//!   biases, then `R`'s) stack the directions of PyTorch's `weight_ih_l{k}`,
//!   `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` (and `…_reverse`), with the gate
//!   blocks reordered: PyTorch's LSTM rows are `i | f | g | o`, ONNX's `i | o | f | c`;
//!   PyTorch's GRU rows are `r | z | n`, ONNX's `z | r | h`. The initializers are named
//!   `{layer}.W_l{k}`, `{layer}.R_l{k}`, `{layer}.B_l{k}` (a layer without biases has no `B`).
//! - The GRU is PyTorch's (and ours): `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`, the
//!   reset gate applied after the recurrent product, which is ONNX's
//!   `linear_before_reset = 1`. The ReLU Elman network is `activations = ["Relu"]`.
//! - Layout: the operators run time-major (`layout = 0`, the one ONNX Runtime implements): a
//!   batch-first input is transposed to `[T, B, I]` first. Between stacked layers ONNX's
//!   `Y` `[T, D, B, H]` is transposed and reshaped to `[T, B, D·H]` (forward, then
//!   backward units, as ours). The layer's output is that sequence (transposed back for
//!   batch-first), or, with [`SequenceOutput::Last`], the top layer's `Y_h` `[D, B, H]`
//!   as `[B, D·H]`.
//! - Padding (`padding_value`): the lengths are computed in the graph, each sample's last
//!   step with a feature different from the padding value (`Equal`, `Not`, `ReduceMax`,
//!   `ArgMax` with `select_last_index`), and passed as `sequence_lens` to every layer, so
//!   outputs past a sample's end are zero, its final state is the one after its last real
//!   step and the backward direction starts there, as here.
//! - Dropout between layers is the identity in evaluation; truncated BPTT only shapes
//!   training gradients: neither appears in the graph.
//!
//! A `stateful` layer is refused: it starts each call from the state the previous call
//! ended in, which a stateless graph cannot hold.

use std::collections::HashMap;

use backprop_autograd::Var;
use backprop_nn::{CellKind, Module, Recurrent, SequenceOutput};
use backprop_tensor::Tensor;

use crate::export::{int_attr, ints_attr, layer_name, Builder, ExportError};
use crate::proto::{AttributeProto, AttributeType, DataType};

/// PyTorch's gate blocks in ONNX's order: `order[j]` is the PyTorch block that becomes
/// ONNX block `j`.
fn onnx_gate_order(kind: CellKind) -> &'static [usize] {
    match kind {
        CellKind::RnnTanh | CellKind::RnnRelu => &[0],
        // i | f | g | o  →  i | o | f | c(= g)
        CellKind::Lstm => &[0, 3, 1, 2],
        // r | z | n  →  z | r | h(= n)
        CellKind::Gru => &[1, 0, 2],
    }
}

/// `t` (`[G·H, ...]` or `[G·H]`) with its `G` row blocks in the order `order`.
fn reorder_gates(t: &Tensor<f32>, order: &[usize]) -> Vec<f32> {
    let block = t.numel() / order.len();
    order
        .iter()
        .flat_map(|&g| t.data()[g * block..(g + 1) * block].iter().copied())
        .collect()
}

/// The ONNX operator's name for a cell.
fn op_name(kind: CellKind) -> &'static str {
    match kind {
        CellKind::RnnTanh | CellKind::RnnRelu => "RNN",
        CellKind::Lstm => "LSTM",
        CellKind::Gru => "GRU",
    }
}

fn string_attr(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::String as i32,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn strings_attr(name: &str, strings: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Strings as i32,
        strings: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

/// Emits `r` applied to `x` (`[N, T, I]` batch-first, else `[T, N, I]`); `path` is its
/// parameter prefix (`lstm1.`). Returns the output's name.
///
/// # Errors
/// [`ExportError::Inexpressible`] for a stateful layer.
pub(crate) fn recurrent(
    g: &mut Builder,
    r: &Recurrent<f32>,
    path: &str,
    x: String,
) -> Result<String, ExportError> {
    let o = *r.options();
    if o.stateful {
        return Err(ExportError::Inexpressible {
            layer: layer_name(path),
            kind: r.kind(),
            reason: "a stateful layer starts each call from the state the previous call \
                     ended in, which a stateless ONNX graph cannot carry; set \"stateful\": \
                     false to export a model that starts every sequence from zeros"
                .into(),
        });
    }
    let params: HashMap<String, Var<f32>> = r.params().into_iter().collect();
    let tm = [1, 0, 2];
    let mut seq = if o.batch_first {
        g.op("Transpose", path, &[&x], vec![ints_attr("perm", &tm)])
    } else {
        x
    };
    let lens = o.padding_value.map(|v| sequence_lengths(g, path, &seq, v));
    let dd = o.directions();
    let width = (dd * o.hidden_size) as i64;
    for layer in 0..o.num_layers {
        let top = layer + 1 == o.num_layers;
        let last_state = top && o.output == SequenceOutput::Last;
        let (y, y_h) = layer_op(
            g,
            &o,
            &params,
            path,
            layer,
            &seq,
            lens.as_deref(),
            last_state,
        );
        if last_state {
            // Y_h [D, N, H] → [N, D, H] → [N, D·H]
            let t = g.op("Transpose", path, &[&y_h], vec![ints_attr("perm", &tm)]);
            let s = g.ints(&format!("{path}last_shape"), &[0, width]);
            return Ok(g.op("Reshape", path, &[&t, &s], vec![]));
        }
        // Y [T, D, N, H] → [T, N, D, H] → [T, N, D·H]
        let t = g.op(
            "Transpose",
            path,
            &[&y],
            vec![ints_attr("perm", &[0, 2, 1, 3])],
        );
        let s = g.ints(&format!("{path}l{layer}_shape"), &[0, 0, width]);
        seq = g.op("Reshape", path, &[&t, &s], vec![]);
    }
    Ok(if o.batch_first {
        g.op("Transpose", path, &[&seq], vec![ints_attr("perm", &tm)])
    } else {
        seq
    })
}

/// One stacked layer, both directions, as one ONNX operator on the time-major `seq`;
/// returns the names of its `Y` and `Y_h` (only the one asked for is produced: `Y_h` if
/// `last_state`, else `Y`; the other is `""`).
#[allow(clippy::too_many_arguments)]
fn layer_op(
    g: &mut Builder,
    o: &backprop_nn::RecurrentOptions,
    params: &HashMap<String, Var<f32>>,
    path: &str,
    layer: usize,
    seq: &str,
    lens: Option<&str>,
    last_state: bool,
) -> (String, String) {
    let order = onnx_gate_order(o.kind);
    let dd = o.directions();
    let suffixes: Vec<String> = (0..dd)
        .map(|d| format!("l{layer}{}", if d == 1 { "_reverse" } else { "" }))
        .collect();
    let param = |name: &str| -> Tensor<f32> {
        params
            .get(name)
            .unwrap_or_else(|| panic!("the recurrent layer has a parameter {name}"))
            .value()
    };
    // [D, G·H, cols] from each direction's `{what}_{suffix}`, gate blocks reordered
    let stacked = |what: &str| -> Tensor<f32> {
        let parts: Vec<Tensor<f32>> = suffixes
            .iter()
            .map(|s| param(&format!("{what}_{s}")))
            .collect();
        let mut shape = vec![dd];
        shape.extend(parts[0].shape());
        let data = parts.iter().flat_map(|t| reorder_gates(t, order)).collect();
        Tensor::from_vec(data, &shape)
    };
    let w = g.init(&format!("{path}W_l{layer}"), &stacked("weight_ih"));
    let r = g.init(&format!("{path}R_l{layer}"), &stacked("weight_hh"));
    let b = o.bias.then(|| {
        let (bi, bh) = (stacked("bias_ih"), stacked("bias_hh"));
        let gh = bi.shape()[1];
        let data = (0..dd)
            .flat_map(|d| {
                let ih = &bi.data()[d * gh..(d + 1) * gh];
                let hh = &bh.data()[d * gh..(d + 1) * gh];
                ih.iter().chain(hh).copied()
            })
            .collect();
        g.init(
            &format!("{path}B_l{layer}"),
            &Tensor::from_vec(data, &[dd, 2 * gh]),
        )
    });
    let mut inputs: Vec<&str> = vec![seq, &w, &r, b.as_deref().unwrap_or("")];
    if let Some(l) = lens {
        inputs.push(l);
    }
    while inputs.last() == Some(&"") {
        inputs.pop();
    }
    let direction = if dd == 2 { "bidirectional" } else { "forward" };
    let mut attrs = vec![
        int_attr("hidden_size", o.hidden_size as i64),
        string_attr("direction", direction),
    ];
    match o.kind {
        CellKind::RnnRelu => attrs.push(strings_attr("activations", &vec!["Relu"; dd])),
        CellKind::Gru => attrs.push(int_attr("linear_before_reset", 1)),
        CellKind::RnnTanh | CellKind::Lstm => {}
    }
    let op = op_name(o.kind);
    let node = format!("{path}l{layer}.");
    let out = g.fresh(op, &node);
    let outputs: Vec<&str> = if last_state {
        vec!["", &out]
    } else {
        vec![&out]
    };
    g.push_outputs(op, &node, &inputs, attrs, &outputs);
    if last_state {
        (String::new(), out)
    } else {
        (out, String::new())
    }
}

/// Each sample's length in the time-major `seq` `[T, N, F]`: one past its last step with a
/// feature different from `value`, 0 if there is none (as `padded_lengths` counts), as
/// `int32` `[N]` for the operators' `sequence_lens`.
fn sequence_lengths(g: &mut Builder, path: &str, seq: &str, value: f64) -> String {
    let cast = |to: DataType| vec![int_attr("to", to as i64)];
    let pad = g.scalar(path, "padding_value", value as f32);
    let same = g.op("Equal", path, &[seq, &pad], vec![]);
    let real = g.op("Not", path, &[&same], vec![]);
    let real = g.op("Cast", path, &[&real], cast(DataType::Float));
    let features = g.ints(&format!("{path}feature_axis"), &[2]);
    let keep = || vec![int_attr("keepdims", 0)];
    // [T, N]: 1 where a step holds a real feature
    let step = g.op("ReduceMax", path, &[&real, &features], keep());
    let last = g.op(
        "ArgMax",
        path,
        &[&step],
        vec![
            int_attr("axis", 0),
            int_attr("keepdims", 0),
            int_attr("select_last_index", 1),
        ],
    );
    let one = g.ints(&format!("{path}one"), &[1]);
    let len = g.op("Add", path, &[&last, &one], vec![]);
    // ArgMax of an all-padding sample is its last step: its length is 0 instead
    let time = g.ints(&format!("{path}time_axis"), &[0]);
    let any = g.op("ReduceMax", path, &[&step, &time], keep());
    let any = g.op("Cast", path, &[&any], cast(DataType::Int64));
    let len = g.op("Mul", path, &[&len, &any], vec![]);
    g.op("Cast", path, &[&len], cast(DataType::Int32))
}
