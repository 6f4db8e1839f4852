//! The recurrent layers give PyTorch's numbers: outputs, final states and every gradient of
//! `nn.RNN` (tanh and ReLU), `nn.LSTM` and `nn.GRU` with 2 layers, both directions and a given
//! initial state, loaded by PyTorch's parameter names from a fixture that
//! `tests/fixtures/make_rnn_fixture.py` wrote; and `nn.Conv1d` (stride, padding, dilation) and
//! a Jordan network written step by step in PyTorch. Agreement to 1e-5 in f32.

use std::collections::BTreeSet;

use backprop_autograd::Var;
use backprop_nn::{
    Activation, CellKind, Conv1d, Jordan, Mode, Module, Recurrent, RecurrentOptions, RecurrentState,
};
use backprop_tensor::{Rng, Tensor};
use serde_json::Value;

#[path = "support/rnn_fixture.rs"]
mod rnn_fixture;
use rnn_fixture::{fixture, tensor};

#[track_caller]
fn close(what: &str, got: &Tensor<f32>, want: &Value) {
    let want = tensor(want);
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (k, (a, b)) in got.data().iter().zip(want.data()).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{what}[{k}]: ours {a}, PyTorch's {b}"
        );
    }
}

#[test]
fn rnn_lstm_and_gru_match_pytorch() {
    let fx = fixture();
    let meta = &fx["meta"];
    let dim = |k: &str| meta[k].as_u64().unwrap() as usize;
    let cases = fx["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for c in cases {
        let kind = match c["kind"].as_str().unwrap() {
            "rnn" => CellKind::RnnTanh,
            "rnn_relu" => CellKind::RnnRelu,
            "lstm" => CellKind::Lstm,
            "gru" => CellKind::Gru,
            other => panic!("unknown kind {other}"),
        };
        let opts = RecurrentOptions::new(kind, dim("I"), dim("H"))
            .with_layers(dim("num_layers"))
            .with_bidirectional(true);
        let layer = Recurrent::<f32>::new(opts, &mut Rng::seed(0));
        // the same parameter names and shapes as PyTorch's
        let ours: BTreeSet<String> = layer.params().into_iter().map(|(n, _)| n).collect();
        let theirs: BTreeSet<String> = c["params"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(ours, theirs, "{kind:?}: parameter names");
        for (name, p) in layer.params() {
            p.set_value(tensor(&c["params"][&name]));
        }
        let x = Var::parameter(tensor(&c["x"]));
        let h0 = Var::parameter(tensor(&c["h0"]));
        let c0 = kind.has_cell().then(|| Var::parameter(tensor(&c["c0"])));
        let state = RecurrentState {
            h: h0.clone(),
            c: c0.clone(),
        };
        let (y, s) = layer.forward_state(&x, Some(&state));
        close("output", &y.value(), &c["output"]);
        close("h_n", &s.h.value(), &c["h_n"]);
        let weigh = |v: &Var<f32>, w: &str| v.mul(&Var::constant(tensor(&c[w]))).sum();
        let mut loss = weigh(&y, "w_out").add(&weigh(&s.h, "w_h"));
        if let Some(cn) = &s.c {
            close("c_n", &cn.value(), &c["c_n"]);
            loss = loss.add(&weigh(cn, "w_c"));
        }
        let lw = c["loss"].as_f64().unwrap() as f32;
        assert!(
            (loss.item() - lw).abs() <= 1e-5 * lw.abs().max(1.0),
            "{kind:?} loss"
        );
        let g = loss.backward();
        close("grad x", g.get(&x).unwrap(), &c["grad_x"]);
        close("grad h0", g.get(&h0).unwrap(), &c["grad_h0"]);
        if let Some(c0) = &c0 {
            close("grad c0", g.get(c0).unwrap(), &c["grad_c0"]);
        }
        for (name, p) in layer.params() {
            close(
                &format!("{kind:?} grad {name}"),
                g.get(&p).unwrap(),
                &c["grads"][&name],
            );
        }
    }
}

fn load(params: &[(String, Var<f32>)], fx: &Value) {
    let ours: BTreeSet<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    let theirs: BTreeSet<&str> = fx.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(ours, theirs, "parameter names");
    for (name, p) in params {
        p.set_value(tensor(&fx[name]));
    }
}

#[test]
fn conv1d_matches_pytorch_with_stride_padding_and_dilation() {
    let fx = fixture();
    let c = &fx["conv1d"];
    let n = |k: &str| c[k].as_u64().unwrap() as usize;
    let conv = Conv1d::<f32>::new(n("in"), n("out"), n("kernel"), &mut Rng::seed(0))
        .stride(n("stride"))
        .padding(n("padding"))
        .dilation(n("dilation"));
    load(&conv.params(), &c["params"]);
    let x = Var::parameter(tensor(&c["x"]));
    let y = conv.forward(&x, Mode::Eval);
    close("conv1d output", &y.value(), &c["output"]);
    let loss = y.mul(&Var::constant(tensor(&c["w_out"]))).sum();
    let lw = c["loss"].as_f64().unwrap() as f32;
    assert!((loss.item() - lw).abs() <= 1e-5 * lw.abs().max(1.0));
    let g = loss.backward();
    close("conv1d grad x", g.get(&x).unwrap(), &c["grad_x"]);
    for (name, p) in conv.params() {
        close(
            &format!("conv1d grad {name}"),
            g.get(&p).unwrap(),
            &c["grads"][&name],
        );
    }
}

#[test]
fn jordan_matches_a_pytorch_step_by_step_reference() {
    let fx = fixture();
    let c = &fx["jordan"];
    let n = |k: &str| c[k].as_u64().unwrap() as usize;
    let act = Activation::from_name(c["activation"].as_str().unwrap()).unwrap();
    let mu = c["mu"].as_f64().unwrap();
    let net = Jordan::<f32>::new(n("I"), n("H"), n("O"), mu, act, &mut Rng::seed(0));
    load(&net.params(), &c["params"]);
    let x = Var::parameter(tensor(&c["x"]));
    let c0 = Var::parameter(tensor(&c["c0"]));
    let (y, cn) = net.forward_state(&x, Some(&c0));
    close("jordan output", &y.value(), &c["output"]);
    close("jordan c_n", &cn.value(), &c["c_n"]);
    let weigh = |v: &Var<f32>, w: &str| v.mul(&Var::constant(tensor(&c[w]))).sum();
    let loss = weigh(&y, "w_out").add(&weigh(&cn, "w_c"));
    let lw = c["loss"].as_f64().unwrap() as f32;
    assert!((loss.item() - lw).abs() <= 1e-5 * lw.abs().max(1.0));
    let g = loss.backward();
    close("jordan grad x", g.get(&x).unwrap(), &c["grad_x"]);
    close("jordan grad c0", g.get(&c0).unwrap(), &c["grad_c0"]);
    for (name, p) in net.params() {
        close(
            &format!("jordan grad {name}"),
            g.get(&p).unwrap(),
            &c["grads"][&name],
        );
    }
}
