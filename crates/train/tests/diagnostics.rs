//! Training diagnostics on small deep MLPs (synthetic 2-D data, so the test is quick): a
//! 10-layer sigmoid stack warns of vanishing gradients naming the early layers; the same
//! stack with ReLU and He initialisation does not warn; a learning rate of 10 with the
//! squared loss raises the exploding warning at a step before the divergence guard stops.

use std::sync::{Arc, Mutex};

use backprop_data::synthetic;
use backprop_nn::{Activation, Init, Linear, Sequential};
use backprop_tensor::Rng;
use backprop_train::diagnostics::{Diagnostics, DiagnosticsLog, WarningKind};
use backprop_train::{LossKind, Quiet, Stop, TrainConfig, Trainer};

fn deep(act: Activation, init: Init, seed: u64) -> Sequential<f32> {
    let mut rng = Rng::seed(seed);
    let mut net = Sequential::<f32>::new();
    let mut inputs = 2;
    for l in 1..=9 {
        net = net
            .add(
                &format!("fc{l}"),
                Linear::with_init(inputs, 32, init, true, &mut rng),
            )
            .add(&format!("act{l}"), act);
        inputs = 32;
    }
    net.add("fc10", Linear::with_init(32, 2, init, true, &mut rng))
}

fn train(net: &Sequential<f32>, lr: f64, loss: LossKind) -> (Stop, DiagnosticsLog) {
    let data = synthetic("circle", 256, 0.1, 1).unwrap();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 32,
        lr,
        loss,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(net, config).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let d = Diagnostics::new(
        4,
        data.x.narrow(0, 0, 64),
        lr,
        Box::new(move |w| s.lock().unwrap().push(w.kind)),
    );
    let log = d.log();
    t.set_probe(Some(Box::new(d)));
    let stop = t.fit(&data, None, &mut Quiet, |_| Ok(())).unwrap();
    let log = log.lock().unwrap().clone();
    // the callback saw every warning the log holds, in order
    assert_eq!(
        *seen.lock().unwrap(),
        log.warnings.iter().map(|w| w.kind).collect::<Vec<_>>()
    );
    (stop, log)
}

#[test]
fn a_deep_sigmoid_stack_warns_of_vanishing_gradients_and_names_the_layers() {
    let (_, log) = train(
        &deep(Activation::Sigmoid, Init::XavierUniform, 3),
        0.05,
        LossKind::CrossEntropy,
    );
    let w = log
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::Vanishing)
        .expect("a vanishing warning");
    assert!(
        w.message.contains("fc1 (") && w.message.contains("fc2 ("),
        "{}",
        w.message
    );
    assert!(!w.message.contains("fc9 ("), "{}", w.message);
    // the records: ten linear layers with their norms, nine sigmoid layers with saturation
    let first = log
        .records
        .iter()
        .filter(|r| r.step == log.records[0].step)
        .count();
    assert_eq!(first, 19);
    let g = |name: &str| {
        log.records
            .iter()
            .find(|r| r.layer == name)
            .unwrap()
            .grad_norm
    };
    assert!(g("fc1") < 1e-2 * g("fc10"));
    let csv = log.to_csv();
    assert!(csv.starts_with("step,epoch,layer,grad_norm") && csv.contains(",fc1,"));
}

#[test]
fn relu_with_he_initialisation_does_not_warn() {
    let (stop, log) = train(
        &deep(Activation::Relu, Init::HeUniform, 3),
        0.05,
        LossKind::CrossEntropy,
    );
    assert_eq!(stop, Stop::Completed);
    assert!(log.warnings.is_empty(), "{:?}", log.warnings);
    assert!(!log.records.is_empty());
}

#[test]
fn a_learning_rate_of_10_warns_of_exploding_before_the_divergence_guard() {
    let (stop, log) = train(
        &deep(Activation::Relu, Init::HeUniform, 3),
        10.0,
        LossKind::Squared,
    );
    let w = log
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::Exploding)
        .expect("an exploding warning");
    match stop {
        Stop::Diverged { epoch, step, .. } => {
            let diverged_at = (epoch - 1) * 8 + step;
            assert!(
                w.step < diverged_at,
                "warned at {}, diverged at {diverged_at}",
                w.step
            );
        }
        other => panic!("expected the run to diverge, got {other:?}"),
    }
}
