//! f64 gradcheck of the recurrent op (backpropagation through time) for every cell, both
//! directions, over 6 time steps: the input, the initial state(s), both weights and both
//! biases. The input is also used a second time (added to the loss) so its gradient
//! accumulates, and backward starts from a random weighting of every output and of the final
//! state.

use backprop_autograd::ops::recurrent::RecurrentVars;
use backprop_autograd::{gradcheck, GradcheckOptions, Var};
use backprop_tensor::{CellKind, Rng, Tensor};

fn uniform(shape: &[usize], seed: u64, r: f64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, -r, r, &mut Rng::seed(seed))
}

fn drive(y: &Var<f64>) -> Var<f64> {
    let c = Tensor::rand_uniform(&y.shape(), 0.5, 1.5, &mut Rng::seed(99));
    y.mul(&Var::constant(c)).sum()
}

fn check_cell(kind: CellKind, reverse: bool, bias: bool) {
    check_padded(kind, reverse, bias, None);
}

/// With `lengths`, a padded batch: the gradient of the padding must be exactly 0 and the
/// rest must pass the gradcheck.
fn check_padded(kind: CellKind, reverse: bool, bias: bool, lengths: Option<&[usize]>) {
    let (t, i, h) = (6, 3, 4);
    let b = lengths.map_or(2, <[usize]>::len);
    let gh = kind.gates() * h;
    let mut inputs = vec![uniform(&[t, b, i], 1, 1.0), uniform(&[b, h], 2, 0.5)];
    if kind == CellKind::Lstm {
        inputs.push(uniform(&[b, h], 3, 0.5));
    }
    inputs.push(uniform(&[gh, i], 4, 0.6));
    inputs.push(uniform(&[gh, h], 5, 0.6));
    if bias {
        inputs.push(uniform(&[gh], 6, 0.5));
        inputs.push(uniform(&[gh], 7, 0.5));
    }
    let run = |v: &[Var<f64>]| {
        let c = usize::from(kind == CellKind::Lstm);
        let vars = RecurrentVars {
            h0: &v[1],
            c0: (c == 1).then(|| &v[2]),
            w_ih: &v[2 + c],
            w_hh: &v[3 + c],
            biases: bias.then(|| (&v[4 + c], &v[5 + c])),
            lengths,
        };
        v[0].recurrent(kind, vars, reverse)
    };
    // the input used twice: its gradient accumulates
    let f = |v: &[Var<f64>]| drive(&run(v)).add(&v[0].mul(&v[0]).mean());
    let r = gradcheck(f, &inputs, GradcheckOptions::default());
    assert!(
        r.passed(),
        "{kind:?} reverse={reverse} bias={bias} lengths={lengths:?}:\n{r}"
    );
    if let Some(lengths) = lengths {
        let vars: Vec<Var<f64>> = inputs.iter().cloned().map(Var::parameter).collect();
        let y = run(&vars);
        let g = drive(&y).backward();
        let (dx, y) = (g.get(&vars[0]).unwrap(), y.value());
        for (n, &len) in lengths.iter().enumerate() {
            for step in len..t {
                for k in 0..i {
                    assert_eq!(dx.get(&[step, n, k]), 0.0, "{kind:?}: δx of padding");
                }
                for j in 0..h {
                    assert_eq!(y.get(&[step, n, j]), 0.0, "{kind:?}: output on padding");
                }
            }
        }
    }
}

#[test]
fn padded_batches_pass_gradcheck_and_padding_gets_no_gradient() {
    for kind in [CellKind::RnnTanh, CellKind::Lstm, CellKind::Gru] {
        for reverse in [false, true] {
            check_padded(kind, reverse, true, Some(&[6, 0, 4]));
        }
    }
}

#[test]
fn elman_tanh_and_relu_pass_gradcheck() {
    for reverse in [false, true] {
        check_cell(CellKind::RnnTanh, reverse, true);
        check_cell(CellKind::RnnRelu, reverse, true);
    }
    check_cell(CellKind::RnnTanh, false, false);
}

#[test]
fn lstm_passes_gradcheck() {
    for reverse in [false, true] {
        check_cell(CellKind::Lstm, reverse, true);
    }
    check_cell(CellKind::Lstm, true, false);
}

#[test]
fn gru_passes_gradcheck() {
    for reverse in [false, true] {
        check_cell(CellKind::Gru, reverse, true);
    }
    check_cell(CellKind::Gru, false, false);
}
