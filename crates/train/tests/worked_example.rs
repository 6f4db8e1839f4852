//! The lectures' worked example through `trace`: a 2-2-1 sigmoid network without biases,
//! x = (0.35, 0.9), hidden weights (0.1, 0.8) and (0.4, 0.6), output weights (0.3, 0.9),
//! target 0.5, η = 1, C = ½(y − t)².

use backprop_train::trace::{trace, TraceCost};
use backprop_train::ModelSpec;

fn worked_example() -> backprop_nn::Sequential<f64> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/specs/worked_example.toml"
    ))
    .unwrap();
    ModelSpec::from_toml(&text)
        .unwrap()
        .build::<f64>(2, Some(1), 0)
        .unwrap()
        .model
}

fn r4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

#[test]
fn forward_output_and_the_output_weight_updates() {
    let t = trace(
        &worked_example(),
        &[0.35, 0.9],
        &TraceCost::Squared(vec![0.5]),
        1.0,
    )
    .unwrap();
    // z¹ = (0.1·0.35 + 0.8·0.9, 0.4·0.35 + 0.6·0.9) = (0.755, 0.68)
    assert!((t.layers[0].z[0] - 0.755).abs() < 1e-12 && (t.layers[0].z[1] - 0.68).abs() < 1e-12);
    // a¹ = σ(z¹) = (0.680267, 0.663739); z² = 0.3·0.680267 + 0.9·0.663739 = 0.801445
    // output a² = σ(0.801445) = 0.690283: the lecture's 0.69
    let y = t.layers[1].a[0];
    assert_eq!(r4(y), 0.6903);
    assert!((y - 0.690283).abs() < 1e-6);
    // δ² = (a² − t)·σ'(z²) = 0.190283 · 0.690283·(1 − 0.690283) = 0.0406811
    assert!((t.layers[1].delta[0] - 0.0406811).abs() < 1e-7);
    // new output weights w ← w − η δ² a¹: 0.3 − 0.0406811·0.680267 = 0.272326,
    // 0.9 − 0.0406811·0.663739 = 0.872998 (the lecture, rounding on the way, gets 0.272392
    // and 0.87305)
    let w2 = &t.layers[1].new_weight[0];
    assert_eq!((r4(w2[0]), r4(w2[1])), (0.2723, 0.8730));
    assert!((w2[0] - 0.272326).abs() < 1e-6 && (w2[1] - 0.872998).abs() < 1e-6);
    assert!(t.bp1_error < 1e-15 && t.bp2_error < 1e-15);
}

#[test]
fn the_four_hidden_weight_updates_the_lecture_leaves_as_an_exercise() {
    let t = trace(
        &worked_example(),
        &[0.35, 0.9],
        &TraceCost::Squared(vec![0.5]),
        1.0,
    )
    .unwrap();
    // By hand (BP2): δ¹_j = w²_j · δ² · a¹_j(1 − a¹_j)
    //   δ¹_top    = 0.3 · 0.0406811 · 0.680267·0.319733 = 0.00265449
    //   δ¹_bottom = 0.9 · 0.0406811 · 0.663739·0.336261 = 0.00817165
    // BP4: ∂C/∂w¹_ji = δ¹_j x_i, and w ← w − η ∂C/∂w:
    //   top:    0.1 − 0.00265449·0.35 = 0.0990709,  0.8 − 0.00265449·0.9 = 0.7976110
    //   bottom: 0.4 − 0.00817165·0.35 = 0.3971399,  0.6 − 0.00817165·0.9 = 0.5926455
    let h = &t.layers[0];
    assert!((h.delta[0] - 0.00265449).abs() < 1e-8 && (h.delta[1] - 0.00817165).abs() < 1e-8);
    let want = [[0.0990709, 0.7976110], [0.3971399, 0.5926455]];
    for j in 0..2 {
        for i in 0..2 {
            assert!(
                (h.new_weight[j][i] - want[j][i]).abs() < 1e-7,
                "w¹[{j}][{i}] = {}",
                h.new_weight[j][i]
            );
        }
    }
    assert!(h.grad_bias.is_none(), "the network has no biases");
    // the cost before the step
    assert!((t.cost_value - 0.5 * 0.190283f64.powi(2)).abs() < 1e-7);
}
