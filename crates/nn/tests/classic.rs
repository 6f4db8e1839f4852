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
