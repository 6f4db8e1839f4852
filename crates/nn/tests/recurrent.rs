//! Recurrent layers: f64 gradcheck of stacked, bidirectional, batch-first setups with an
//! initial state over 5+ time steps (input, state and every parameter), the final state's
//! agreement with the output sequence, and the spec layers on row-by-row images.

use backprop_autograd::{gradcheck_vars, GradcheckOptions, Var};
use backprop_nn::{
    CellKind, LayerSpec, LstmConfig, Mode, ModelSpec, Module, Recurrent, RecurrentOptions,
    RecurrentState, SequenceOutput,
};
use backprop_tensor::{Rng, Tensor};

const KINDS: [CellKind; 4] = [
    CellKind::RnnTanh,
    CellKind::RnnRelu,
    CellKind::Lstm,
    CellKind::Gru,
];

fn drive(y: &Var<f64>, seed: u64) -> Var<f64> {
    let c = Tensor::rand_uniform(&y.shape(), 0.5, 1.5, &mut Rng::seed(seed));
    y.mul(&Var::constant(c)).sum()
}

fn uniform(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, -1.0, 1.0, &mut Rng::seed(seed))
}

/// Gradcheck of a layer's output sequence and final state with respect to the input, the
/// initial state and every parameter.
fn check(opts: RecurrentOptions, t: usize, b: usize) {
    let layer = Recurrent::<f64>::new(opts, &mut Rng::seed(3));
    let (i, h) = (opts.input_size, opts.hidden_size);
    let xs = if opts.batch_first {
        [b, t, i]
    } else {
        [t, b, i]
    };
    let x = Var::parameter(uniform(&xs, 1));
    let sd = [opts.num_layers * opts.directions(), b, h];
    let h0 = Var::parameter(uniform(&sd, 2).mul_scalar(0.5));
    let c0 = Var::parameter(uniform(&sd, 4).mul_scalar(0.5));
    let state = RecurrentState {
        h: h0.clone(),
        c: opts.kind.has_cell().then(|| c0.clone()),
    };
    let mut vars = vec![x.clone(), h0.clone()];
    if opts.kind.has_cell() {
        vars.push(c0.clone());
    }
    vars.extend(layer.params().into_iter().map(|(_, p)| p));
    let f = || {
        let (y, s) = layer.forward_state(&x, Some(&state));
        let mut loss = drive(&y, 7).add(&drive(&s.h, 8)).add(&x.mul(&x).mean());
        if let Some(c) = &s.c {
            loss = loss.add(&drive(c, 9));
        }
        loss
    };
    let r = gradcheck_vars(f, &vars, GradcheckOptions::default());
    assert!(r.passed(), "{opts:?}:\n{r}");
}

#[test]
fn stacked_bidirectional_layers_pass_gradcheck() {
    for kind in KINDS {
        let opts = RecurrentOptions::new(kind, 3, 4)
            .with_layers(2)
            .with_bidirectional(true);
        check(opts, 5, 2);
    }
}

#[test]
fn single_and_batch_first_layers_pass_gradcheck() {
    for kind in KINDS {
        check(
            RecurrentOptions::new(kind, 2, 3).with_batch_first(true),
            6,
            3,
        );
    }
    check(
        RecurrentOptions::new(CellKind::Lstm, 2, 3)
            .with_bias(false)
            .with_layers(2),
        5,
        2,
    );
}

#[test]
fn the_final_state_is_the_last_output_of_each_direction() {
    for kind in KINDS {
        let opts = RecurrentOptions::new(kind, 3, 4)
            .with_layers(2)
            .with_bidirectional(true);
        let layer = Recurrent::<f32>::new(opts, &mut Rng::seed(5));
        let x = Var::constant(Tensor::rand_uniform(
            &[6, 2, 3],
            -1.0,
            1.0,
            &mut Rng::seed(6),
        ));
        let (y, s) = layer.forward_state(&x, None);
        let (y, hn) = (y.value(), s.h.value());
        for bb in 0..2 {
            for j in 0..4 {
                // top layer: forward direction ends at t = T−1, backward at t = 0
                assert_eq!(hn.get(&[2, bb, j]), y.get(&[5, bb, j]));
                assert_eq!(hn.get(&[3, bb, j]), y.get(&[0, bb, 4 + j]));
            }
        }
    }
}

#[test]
fn an_empty_sequence_gives_an_empty_output_of_the_layers_width_and_the_initial_state() {
    for kind in KINDS {
        let opts = RecurrentOptions::new(kind, 3, 4)
            .with_layers(2)
            .with_bidirectional(true);
        let layer = Recurrent::<f32>::new(opts, &mut Rng::seed(1));
        let x = Var::constant(Tensor::zeros(&[0, 2, 3]));
        let (y, s) = layer.forward_state(&x, None);
        assert_eq!(y.shape(), [0, 2, 8], "{kind:?}");
        assert_eq!(s.h.shape(), [4, 2, 4]);
        assert!(s.h.value().data().iter().all(|&v| v == 0.0));
    }
}

#[test]
fn a_last_state_layer_gives_the_gradients_of_the_sequence_layers_final_state() {
    // the last-state layer skips building its top layer's outputs: what it returns, and the
    // gradients through it, must be those of the full layer's final state
    for kind in KINDS {
        let opts = RecurrentOptions::new(kind, 3, 4)
            .with_layers(2)
            .with_bidirectional(true)
            .with_batch_first(true);
        let seq = Recurrent::<f64>::new(opts, &mut Rng::seed(1));
        let last = Recurrent::<f64>::new(opts.with_output(SequenceOutput::Last), &mut Rng::seed(1));
        let x = uniform(&[2, 5, 3], 2);
        let (xa, xb) = (Var::parameter(x.clone()), Var::parameter(x));
        let (_, s) = seq.forward_state(&xa, None);
        let top = s.h.narrow(0, 2, 2).transpose(0, 1).reshape(&[2, 8]);
        let z = last.forward(&xb, Mode::Eval);
        assert_eq!(top.value().data(), z.value().data(), "{kind:?}");
        let (ga, gb) = (drive(&top, 5).backward(), drive(&z, 5).backward());
        let pairs = seq.params().into_iter().zip(last.params());
        for ((name, pa), (_, pb)) in pairs.chain([(("x".into(), xa), ("x".into(), xb))]) {
            let (a, b) = (ga.get(&pa).unwrap(), gb.get(&pb).unwrap());
            assert!(a.allclose(b, 1e-12, 1e-12), "{kind:?} {name}");
        }
    }
}

#[test]
fn last_output_is_the_top_layers_final_states_side_by_side() {
    let opts = RecurrentOptions::new(CellKind::Gru, 3, 4)
        .with_bidirectional(true)
        .with_batch_first(true);
    let seq = Recurrent::<f32>::new(opts, &mut Rng::seed(1));
    let last = Recurrent::<f32>::new(opts.with_output(SequenceOutput::Last), &mut Rng::seed(1));
    let x = Var::constant(Tensor::rand_uniform(
        &[2, 5, 3],
        -1.0,
        1.0,
        &mut Rng::seed(2),
    ));
    let y = seq.forward(&x, Mode::Eval).value(); // [B, T, 2H]
    let z = last.forward(&x, Mode::Eval).value(); // [B, 2H]
    assert_eq!(z.shape(), &[2, 8]);
    for b in 0..2 {
        for j in 0..4 {
            assert_eq!(z.get(&[b, j]), y.get(&[b, 4, j]));
            assert_eq!(z.get(&[b, 4 + j]), y.get(&[b, 0, 4 + j]));
        }
    }
}

#[test]
fn spec_layers_read_images_row_by_row() {
    let spec = ModelSpec::from_json(
        r#"{"layers": [{"type": "lstm", "hidden": 8, "bidirectional": true}, {"type": "linear", "out": 10}]}"#,
    )
    .unwrap();
    assert_eq!(
        spec.layers[0],
        LayerSpec::Lstm(LstmConfig {
            bidirectional: true,
            ..LstmConfig::new(8)
        })
    );
    let built = spec
        .build_shaped::<f32>(784, Some([1, 28, 28]), Some(10), 0)
        .unwrap();
    let names: Vec<&str> = built.model.layers().map(|(n, _)| n).collect();
    assert_eq!(names, ["reshape1", "lstm1", "fc1"]);
    let p: Vec<String> = built.model.params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(p[0], "lstm1.weight_ih_l0");
    assert_eq!(built.model.params()[0].1.shape(), vec![32, 28]);
    let y = built
        .model
        .forward(&Var::constant(Tensor::zeros(&[3, 784])), Mode::Eval);
    assert_eq!(y.shape(), vec![3, 10]);
    // round trip through JSON
    let back = ModelSpec::from_json(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn spec_errors_name_the_layer_and_the_problem() {
    let err = |json: &str, image| {
        ModelSpec::from_json(json)
            .and_then(|s| s.build_shaped::<f32>(12, image, None, 0).map(|_| ()))
            .unwrap_err()
            .to_string()
    };
    let e = err(r#"{"layers": [{"type": "gru", "hidden": 4}]}"#, None);
    assert!(e.contains("layer 1 (gru)") && e.contains("reshape"), "{e}");
    let e = err(
        r#"{"layers": [{"type": "reshape", "shape": [3, 4]}, {"type": "rnn", "hidden": 0}]}"#,
        None,
    );
    assert!(
        e.contains("layer 2 (rnn)") && e.contains("at least 1"),
        "{e}"
    );
    let e = err(
        r#"{"layers": [{"type": "lstm", "hidden": 4, "cells": 2}]}"#,
        None,
    );
    assert!(e.contains("unknown field `cells`"), "{e}");
    let e = err(
        r#"{"layers": [{"type": "reshape", "shape": [3, 4]}, {"type": "lstm", "hidden": 100000000}]}"#,
        None,
    );
    assert!(e.contains("too large"), "{e}");
    // sizes near 2^64 (found by the spec fuzz target: the size check itself overflowed)
    for (hidden, layers) in [
        ("15674407370955161687", "1"),
        ("18446744073709551615", "18446744073709551615"),
        ("3", "18446744073709551615"),
    ] {
        let e = err(
            &format!(
                r#"{{"layers": [{{"type": "reshape", "shape": [3, 4]}}, {{"type": "lstm", "hidden": {hidden}, "num_layers": {layers}}}]}}"#
            ),
            None,
        );
        assert!(e.contains("too large"), "{hidden} {layers}: {e}");
    }
}

#[test]
fn only_batch_first_stateless_sequence_layers_may_split_their_batch() {
    let base = RecurrentOptions::new(CellKind::Lstm, 3, 5);
    let layer = |o: RecurrentOptions| Recurrent::<f32>::new(o, &mut Rng::seed(1));
    // a time-major input's first axis is time: its halves are not samples
    let time_major = layer(base);
    assert!(!time_major.sample_independent() && !time_major.sample_independent_in_eval());
    let batch_first = layer(base.with_batch_first(true));
    assert!(batch_first.sample_independent() && batch_first.sample_independent_in_eval());
    let stateful = layer(base.with_batch_first(true).with_stateful(true));
    assert!(!stateful.sample_independent_in_eval());
    let mut jordan = backprop_nn::Jordan::<f32>::new(
        3,
        5,
        2,
        0.5,
        backprop_nn::Activation::Identity,
        &mut Rng::seed(2),
    );
    assert!(!jordan.sample_independent_in_eval());
    jordan.batch_first = true;
    assert!(jordan.sample_independent_in_eval());
}
