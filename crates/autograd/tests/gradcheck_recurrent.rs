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
    let (t, b, i, h) = (6, 2, 3, 4);
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
    let f = |v: &[Var<f64>]| {
        let c = usize::from(kind == CellKind::Lstm);
        let vars = RecurrentVars {
            h0: &v[1],
            c0: (c == 1).then(|| &v[2]),
            w_ih: &v[2 + c],
            w_hh: &v[3 + c],
            biases: bias.then(|| (&v[4 + c], &v[5 + c])),
        };
        let y = v[0].recurrent(kind, vars, reverse);
        // the input used twice: its gradient accumulates
        drive(&y).add(&v[0].mul(&v[0]).mean())
    };
    let r = gradcheck(f, &inputs, GradcheckOptions::default());
    assert!(r.passed(), "{kind:?} reverse={reverse} bias={bias}:\n{r}");
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
