//! Every lecture example runs here in a small configuration (`quick`), so none of them can
//! rot: the example files are included as modules and their `run` is called, and each
//! must write the pictures it promises and produce sensible figures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

#[path = "../examples/activations.rs"]
mod activations;
#[path = "../examples/adding_problem.rs"]
mod adding_problem;
#[path = "../examples/cnn_filters.rs"]
mod cnn_filters;
#[path = "../examples/fast_backprop.rs"]
mod fast_backprop;
#[path = "../examples/gradient_descent_2d.rs"]
mod gradient_descent_2d;
#[path = "../examples/jordan_network.rs"]
mod jordan_network;
#[path = "../examples/learning_rate.rs"]
mod learning_rate;
#[path = "../examples/linear_network.rs"]
mod linear_network;
#[path = "../examples/logic_gates.rs"]
mod logic_gates;
#[path = "../examples/mnist_784_15_10.rs"]
mod mnist_784_15_10;
#[path = "../examples/optimizers.rs"]
mod optimizers;
#[path = "../examples/pretraining.rs"]
mod pretraining;
#[path = "../examples/read_numbers.rs"]
mod read_numbers;
#[path = "../examples/regularization.rs"]
mod regularization;
#[path = "../examples/tdnn.rs"]
mod tdnn;
#[path = "../examples/two_d_demo.rs"]
mod two_d_demo;
#[path = "../examples/universal_approximation.rs"]
mod universal_approximation;
#[path = "../examples/vanishing_gradients.rs"]
mod vanishing_gradients;
#[path = "../examples/worked_example.rs"]
mod worked_example;
#[path = "../examples/xor_mlp.rs"]
mod xor_mlp;

fn out(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("backprop-example-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn fig(f: &[(&str, f64)], k: &str) -> f64 {
    f.iter()
        .find(|(n, _)| *n == k)
        .unwrap_or_else(|| panic!("no figure {k} in {f:?}"))
        .1
}

#[track_caller]
fn wrote(dir: &Path, files: &[&str]) {
    for f in files {
        let p = dir.join(f);
        let bytes =
            std::fs::read(&p).unwrap_or_else(|e| panic!("{} was not written: {e}", p.display()));
        assert!(bytes.len() > 100, "{} is nearly empty", p.display());
        if f.ends_with(".png") {
            assert!(bytes.starts_with(b"\x89PNG"));
        } else {
            assert!(bytes.starts_with(b"<svg"));
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn logic_gates() {
    let f = logic_gates::run(true, &out("gates")).unwrap();
    assert_eq!(
        (
            fig(&f, "and"),
            fig(&f, "or"),
            fig(&f, "nand"),
            fig(&f, "xor")
        ),
        (1.0, 1.0, 1.0, 0.0)
    );
}

#[test]
fn xor_mlp() {
    let d = out("xor");
    let f = xor_mlp::run(true, &d).unwrap();
    assert_eq!(fig(&f, "right"), 4.0);
    wrote(&d, &["xor_cost.svg"]);
}

#[test]
fn worked_example() {
    let f = worked_example::run(true, &out("worked")).unwrap();
    assert!((fig(&f, "output") - 0.690283).abs() < 1e-6);
    assert!(
        (fig(&f, "w2_top") - 0.272326).abs() < 1e-6
            && (fig(&f, "w2_bottom") - 0.872998).abs() < 1e-6
    );
    assert!(fig(&f, "gradcheck_rel") < 1e-6);
}

#[test]
fn mnist_784_15_10() {
    let d = out("mnist15");
    let f = mnist_784_15_10::run(true, &d).unwrap();
    // one epoch on 2,000 digits: well above chance (10%)
    assert!(fig(&f, "test_accuracy") > 0.2, "{f:?}");
    wrote(&d, &["accuracy.svg"]);
}

#[test]
fn two_d_demo() {
    let d = out("twod");
    let f = two_d_demo::run(true, &d).unwrap();
    assert!(fig(&f, "train_accuracy") > 0.6, "{f:?}");
    wrote(&d, &["decision_boundary.png", "loss.svg"]);
}

#[test]
fn activations() {
    let d = out("act");
    let f = activations::run(true, &d).unwrap();
    assert_eq!(fig(&f, "relu_prime_0"), 0.0);
    assert!((fig(&f, "sigmoid_prime_0") - 0.25).abs() < 1e-12);
    wrote(&d, &["activations.svg", "derivatives.svg"]);
}

#[test]
fn linear_network() {
    let f = linear_network::run(true, &out("linear")).unwrap();
    assert!(fig(&f, "max_difference") < 1e-12);
}

#[test]
fn learning_rate() {
    let d = out("lr");
    let f = learning_rate::run(true, &d).unwrap();
    assert!(fig(&f, "good") < fig(&f, "small"), "{f:?}");
    assert!(fig(&f, "large") > fig(&f, "good"), "{f:?}");
    wrote(&d, &["learning_rate.svg"]);
}

#[test]
fn gradient_descent_2d() {
    let d = out("gd2d");
    let f = gradient_descent_2d::run(true, &d).unwrap();
    assert!(fig(&f, "distinct_minima") >= 2.0, "{f:?}");
    wrote(&d, &["bowl.png", "rosenbrock.png", "minima.png"]);
}

#[test]
fn vanishing_gradients() {
    let d = out("vanish");
    let f = vanishing_gradients::run(true, &d).unwrap();
    // the sigmoid stack's first layer gets orders of magnitude less gradient than its last
    assert!(fig(&f, "sigmoid_ratio") < 1e-3, "{f:?}");
    assert!(
        fig(&f, "relu_ratio") > 1e-2 && fig(&f, "residual_ratio") > 1e-2,
        "{f:?}"
    );
    wrote(&d, &["gradient_norms.svg"]);
}

#[test]
fn fast_backprop() {
    let d = out("fast");
    let f = fast_backprop::run(true, &d).unwrap();
    // backprop and finite differences agree (timings are printed and plotted, not asserted)
    assert!(fig(&f, "max_diff") < 1e-6, "{f:?}");
    assert!(fig(&f, "largest_n") > 500.0, "{f:?}");
    wrote(&d, &["fast_backprop.svg", "fast_backprop_ratio.svg"]);
}

#[test]
fn universal_approximation() {
    let d = out("ua");
    let f = universal_approximation::run(true, &d).unwrap();
    assert!(fig(&f, "wide_error") < fig(&f, "narrow_error"), "{f:?}");
    wrote(&d, &["fits.svg", "error_vs_width.svg"]);
}

#[test]
fn optimizers() {
    let d = out("opt");
    let f = optimizers::run(true, &d).unwrap();
    assert!(fig(&f, "adam") < fig(&f, "full_batch"), "{f:?}");
    wrote(&d, &["optimizers.svg"]);
}

#[test]
fn regularization() {
    let d = out("reg");
    let f = regularization::run(true, &d).unwrap();
    assert_eq!(f.len(), 5);
    wrote(&d, &["regularization.svg"]);
}

#[test]
fn cnn_filters() {
    let d = out("filters");
    let f = cnn_filters::run(true, &d).unwrap();
    assert!(fig(&f, "test_accuracy") > 0.5, "{f:?}");
    wrote(
        &d,
        &["edges.png", "learned_filters.png", "learned_maps.png"],
    );
}

#[test]
fn pretraining() {
    let d = out("pre");
    let f = pretraining::run(true, &d).unwrap();
    assert!(fig(&f, "pretrained") > 0.0 && fig(&f, "scratch") > 0.0);
    wrote(&d, &["pretraining.svg"]);
}

#[test]
fn read_numbers_builds_numbers_that_split_into_six_digits() {
    let raw = backprop::data::load_idx_pair(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
        "t10k",
    )
    .unwrap();
    let numbers = read_numbers::make_numbers(&raw, 40, 2026);
    let again = read_numbers::make_numbers(&raw, 40, 2026);
    let mut six = 0;
    for (n, m) in numbers.iter().zip(&again) {
        assert_eq!((n.truth.len(), n.height), (6, 36));
        assert!((168..=168 + 70).contains(&n.width), "width {}", n.width);
        assert_eq!(n.pixels.len(), n.width * n.height);
        assert_eq!((&n.pixels, &n.truth), (&m.pixels, &m.truth), "seeded");
        six += usize::from(backprop::data::segment_digits(&n.pixels, n.width, n.height).len() == 6);
    }
    assert!(six >= 38, "only {six}/40 numbers split into six digits");
    // an untrained 10-class model still reads one class name per digit found
    let spec = backprop::train::ModelSpec::mlp(&[16], "relu", 0.0, 10).unwrap();
    let model = spec.build::<f32>(784, Some(10), 0).unwrap().model;
    let classes: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let got = read_numbers::read(
        &model,
        &classes,
        &backprop::data::Encoding::Grey,
        &numbers[0],
    );
    assert_eq!(got.len(), 6, "{got}");
    assert!(got.chars().all(|c| c.is_ascii_digit()));
}

#[test]
fn adding_problem() {
    let d = out("adding");
    let f = adding_problem::run(true, &d).unwrap();
    // T = 20, 32 updates: the mean predictor's MSE is about 1/6; the quick run is too short
    // to learn the task (the full run is), so only check that every network trained to a
    // finite error
    assert!((fig(&f, "baseline_mse") - 1.0 / 6.0).abs() < 0.02, "{f:?}");
    for k in ["elman_mse_ratio", "lstm_mse_ratio", "gru_mse_ratio"] {
        assert!(fig(&f, k).is_finite() && fig(&f, k) > 0.0, "{f:?}");
    }
    // at initialisation δ reaches the first step far better through the LSTM's cell (its
    // forget gates opened, σ(1) ≈ 0.73 kept a step) than through the Elman recurrence
    assert!(
        fig(&f, "lstm_grad_ratio_init") > 10.0 * fig(&f, "elman_grad_ratio_init"),
        "{f:?}"
    );
    wrote(
        &d,
        &[
            "gradient_through_time.svg",
            "gradient_through_time_init.svg",
            "loss.svg",
        ],
    );
}

#[test]
fn jordan_network() {
    let d = out("jordan");
    let f = jordan_network::run(true, &d).unwrap();
    assert!(fig(&f, "jordan_mse") < fig(&f, "persistence_mse"), "{f:?}");
    assert!(fig(&f, "elman_mse") < fig(&f, "persistence_mse"), "{f:?}");
    wrote(&d, &["prediction.svg"]);
}

#[test]
fn tdnn() {
    let d = out("tdnn");
    let f = tdnn::run(true, &d).unwrap();
    // one epoch on 2,000 digits: well above chance (10%)
    assert!(fig(&f, "test_accuracy") > 0.2, "{f:?}");
    wrote(&d, &["evidence.svg"]);
}
