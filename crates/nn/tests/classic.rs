//! The classic neurons: threshold units, perceptron learning of AND, OR, NAND, and the
//! perceptron's failure on XOR.

use backprop_nn::classic::{hand_set_gate, Perceptron, ThresholdUnit, TRUTH_TABLE_INPUTS};

const AND: [f64; 4] = [0.0, 0.0, 0.0, 1.0];
const OR: [f64; 4] = [0.0, 1.0, 1.0, 1.0];
const NAND: [f64; 4] = [1.0, 1.0, 1.0, 0.0];
const XOR: [f64; 4] = [0.0, 1.0, 1.0, 0.0];

fn outputs(p: &Perceptron) -> Vec<f64> {
    TRUTH_TABLE_INPUTS.iter().map(|x| p.predict(x)).collect()
}

#[test]
fn mcculloch_pitts_units_compute_gates() {
    let and = ThresholdUnit::new(vec![1.0, 1.0], 2.0);
    let or = ThresholdUnit::new(vec![1.0, 1.0], 1.0);
    let not = ThresholdUnit::new(vec![-1.0], 0.0);
    let f = |u: &ThresholdUnit| {
        TRUTH_TABLE_INPUTS
            .iter()
            .map(|x| u.fire(x))
            .collect::<Vec<_>>()
    };
    assert_eq!(f(&and), AND);
    assert_eq!(f(&or), OR);
    assert_eq!((not.fire(&[0.0]), not.fire(&[1.0])), (1.0, 0.0));
}

#[test]
fn perceptrons_learn_and_or_nand_and_the_hand_set_weights_agree() {
    for (name, table) in [("and", AND), ("or", OR), ("nand", NAND)] {
        let mut p = Perceptron::zeros(2);
        let r = p.train(&TRUTH_TABLE_INPUTS, &table, 0.1, 100);
        assert!(r.converged, "{name}: {r}");
        assert_eq!(outputs(&p), table, "{name}");
        assert_eq!(
            outputs(&hand_set_gate(name).unwrap()),
            table,
            "hand-set {name}"
        );
    }
}

#[test]
fn the_rule_is_rosenblatts() {
    // one update by hand: w = 0, b = 0, x = (1, 1), y = 1: ŷ = 0, so w ← 0 + 0.5·1·(1, 1), b ← 0.5
    let mut p = Perceptron::zeros(2);
    assert_eq!(p.epoch(&[[1.0, 1.0]], &[1.0], 0.5), 1);
    assert_eq!((p.weights.clone(), p.bias), (vec![0.5, 0.5], 0.5));
    // a correct prediction changes nothing
    assert_eq!(p.epoch(&[[1.0, 1.0]], &[1.0], 0.5), 0);
    assert_eq!(p.bias, 0.5);
}

#[test]
fn a_perceptron_cannot_learn_xor() {
    let mut p = Perceptron::zeros(2);
    let r = p.train(&TRUTH_TABLE_INPUTS, &XOR, 0.1, 1000);
    assert!(!r.converged);
    assert_eq!(r.epochs, 1000, "stops at the epoch limit");
    assert!(
        r.errors_per_epoch.iter().all(|&e| e >= 1),
        "every epoch has an error"
    );
    assert!(outputs(&p).iter().zip(XOR).any(|(a, b)| *a != b));
    assert!(r.to_string().contains("did not converge"));
}

#[test]
fn logistic_regression_trains_with_gradient_yhat_minus_y_times_x() {
    use backprop_autograd::Var;
    use backprop_nn::loss::{bce_with_logits, Reduction};
    use backprop_nn::{Linear, Mode, Module};
    use backprop_tensor::{Rng, Tensor};
    // two gaussian blobs in 2-D, labels 0 and 1
    let mut rng = Rng::seed(4);
    let n = 200;
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 0..n {
        let c = if i % 2 == 0 { 1.0 } else { -1.0 };
        xs.extend([c + 0.6 * rng.normal(), c + 0.6 * rng.normal()]);
        ys.push(if c > 0.0 { 1.0 } else { 0.0 });
    }
    let x = Tensor::<f64>::from_vec(xs, &[n, 2]);
    let y = Tensor::<f64>::from_vec(ys, &[n, 1]);
    // a network with no hidden units: ŷ = σ(w·x + b)
    let model = Linear::<f64>::with_init(2, 1, backprop_nn::Init::Zeros, true, &mut rng);
    let eta = 0.5;
    for _ in 0..200 {
        let z = model.forward(&Var::constant(x.clone()), Mode::Train);
        let yhat = z.value().sigmoid();
        let g = bce_with_logits(&z, &y, Reduction::Mean).backward();
        // the gradient is the mean of (ŷ − y)x, and of (ŷ − y) for the bias
        let err = yhat.sub(&y);
        let want_w = err.matmul_tn(&x).mul_scalar(1.0 / n as f64);
        assert!(g
            .get(&model.weight)
            .unwrap()
            .allclose(&want_w, 1e-10, 1e-12));
        let gb = g.get(model.bias.as_ref().unwrap()).unwrap().clone();
        assert!((gb.item() - err.mean_all().item()).abs() < 1e-12);
        let gw = g.get(&model.weight).unwrap().clone();
        model
            .weight
            .update(|w| w.iter_mut().zip(gw.data()).for_each(|(w, g)| *w -= eta * g));
        model
            .bias
            .as_ref()
            .unwrap()
            .update(|b| b[0] -= eta * gb.item());
    }
    let pred = model
        .forward(&Var::constant(x.clone()), Mode::Eval)
        .value()
        .sigmoid();
    let right = pred
        .data()
        .iter()
        .zip(y.data())
        .filter(|(p, t)| (**p > 0.5) == (**t > 0.5))
        .count();
    assert!(right as f64 / n as f64 >= 0.95, "{right}/{n}");
}
