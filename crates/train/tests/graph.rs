//! The graph of one training step against `trace` on the lectures' worked 2-2-1 example,
//! the layer-level drawing of a step with 100,000 nodes, and the pictures' formats.

use std::time::Instant;

use backprop_autograd::Var;
use backprop_nn::{Activation, Linear, Mode, Module, Sequential};
use backprop_tensor::Rng;
use backprop_train::graph::{step_graph, Level, NodeKind};
use backprop_train::trace::{trace, TraceCost};
use backprop_train::ModelSpec;

fn worked_example() -> Sequential<f64> {
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

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
}

#[test]
fn the_worked_example_shows_the_values_and_gradients_trace_prints() {
    let model = worked_example();
    let cost = TraceCost::Squared(vec![0.5]);
    let t = trace(&model, &[0.35, 0.9], &cost, 1.0).unwrap();
    let g = step_graph(&model, &[0.35, 0.9], &cost).unwrap();
    assert_eq!(
        g.groups,
        ["input", "fc1", "sigmoid1", "fc2", "sigmoid2", "cost"]
    );
    let op = |name: &str, group: &str| {
        let gi = g.groups.iter().position(|n| n == group).unwrap();
        g.nodes
            .iter()
            .find(|n| n.op == Some(name) && n.group == gi)
            .unwrap_or_else(|| panic!("no {name} in {group}"))
    };
    // z¹, a¹, z², a² and δ = ∂C/∂z at each layer, as trace has them
    let (z1, a1, z2, a2) = (
        op("linear", "fc1"),
        op("sigmoid", "sigmoid1"),
        op("linear", "fc2"),
        op("sigmoid", "sigmoid2"),
    );
    assert!(close(&z1.value.values, &t.layers[0].z));
    assert!(close(&a1.value.values, &t.layers[0].a));
    assert!(close(&z2.value.values, &t.layers[1].z));
    assert!(close(&a2.value.values, &t.layers[1].a));
    assert!((a2.value.values[0] - 0.690283).abs() < 1e-6);
    assert!(close(&z1.grad.as_ref().unwrap().values, &t.layers[0].delta));
    assert!(close(&z2.grad.as_ref().unwrap().values, &t.layers[1].delta));
    assert!(close(&a2.grad.as_ref().unwrap().values, &t.grad_output));
    // the local gradient on the edge into a sigmoid is σ'(z), and upstream × local = δ
    assert!(close(
        a2.local[0].as_ref().unwrap(),
        &t.layers[1].sigma_prime
    ));
    assert!(close(
        a1.local[0].as_ref().unwrap(),
        &t.layers[0].sigma_prime
    ));
    // ∂C/∂W (BP4) on the weights
    let w = |name: &str| g.nodes.iter().find(|n| n.name == name).unwrap();
    let flat = |m: &Vec<Vec<f64>>| m.iter().flatten().copied().collect::<Vec<_>>();
    assert!(close(
        &w("fc1.weight").grad.as_ref().unwrap().values,
        &flat(&t.layers[0].grad_weight)
    ));
    assert!(close(
        &w("fc2.weight").grad.as_ref().unwrap().values,
        &flat(&t.layers[1].grad_weight)
    ));
    assert!((g.cost - t.cost_value).abs() < 1e-15);
    assert_eq!(g.nodes.last().unwrap().kind, NodeKind::Output);
    // the drawing: op level by default for so small a step, with the output's value in it
    let d = g.to_graph(Level::Auto, &[]).unwrap();
    assert!(d
        .nodes
        .iter()
        .any(|n| n.lines.iter().any(|l| l == "value [0.690283]")));
    assert!(d.edges.iter().any(|e| e.label.starts_with("local [0.2")));
    let svg = d.to_svg();
    assert!(svg.starts_with("<svg") && svg.contains("0.690283"));
    let png = d.to_png().unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // layer level: one box per layer, the sigmoid layer's box shows its output
    let l = g.to_graph(Level::Layer, &[]).unwrap();
    assert_eq!(l.nodes.len(), 6);
    assert!(l
        .nodes
        .iter()
        .any(|n| n.title == "sigmoid2 (Sigmoid)" && n.lines[0] == "out [0.690283]"));
    // expanding one layer shows its ops and keeps the rest collapsed
    let e = g.to_graph(Level::Layer, &["fc2".into()]).unwrap();
    assert!(e.nodes.len() > 6 && e.nodes.iter().any(|n| n.title == "fc2.weight"));
    assert!(g
        .to_graph(Level::Layer, &["fc9".into()])
        .unwrap_err()
        .contains("fc9"));
}

/// A layer made of many small engine ops (a chain of `tanh(x·w)` scalings), so that a step
/// has many nodes but few layers.
struct ManyOps {
    ops: usize,
    w: Var<f64>,
}

impl Module<f64> for ManyOps {
    fn forward(&self, x: &Var<f64>, _mode: Mode) -> Var<f64> {
        let mut a = x.clone();
        for _ in 0..self.ops {
            a = a.mul(&self.w).tanh();
        }
        a
    }
    fn params(&self) -> Vec<(String, Var<f64>)> {
        vec![("w".into(), self.w.clone())]
    }
    fn kind(&self) -> String {
        "many_ops".into()
    }
}

#[test]
fn a_step_of_100000_nodes_draws_at_layer_level() {
    let mut rng = Rng::seed(1);
    let mut model = Sequential::<f64>::new().add("fc1", Linear::new(4, 4, &mut rng));
    for k in 0..10 {
        let w = Var::parameter(backprop_tensor::Tensor::from_vec(vec![1.01; 4], &[4]));
        model = model.add(&format!("block{k}"), ManyOps { ops: 5_000, w });
    }
    let model = model
        .add("out", Linear::new(4, 2, &mut rng))
        .add("act", Activation::Sigmoid);
    let t0 = Instant::now();
    let g = step_graph(
        &model,
        &[0.1, -0.2, 0.3, 0.4],
        &TraceCost::Squared(vec![0.0, 1.0]),
    )
    .unwrap();
    assert!(g.nodes.len() > 100_000, "{} nodes", g.nodes.len());
    assert_eq!(g.resolve(Level::Auto), Level::Layer);
    let captured = t0.elapsed().as_secs_f64();
    let d = g.to_graph(Level::Auto, &[]).unwrap();
    assert_eq!(d.nodes.len(), g.groups.len());
    assert!(d.nodes.iter().any(|n| n
        .lines
        .iter()
        .any(|l| l == "10000 nodes" || l == "10001 nodes")));
    let png = d.to_png().unwrap();
    assert!(!png.is_empty() && !d.to_svg().is_empty());
    eprintln!(
        "100k-node step: forward, backward and capture {captured:.2} s, collapsed and drawn (SVG + PNG) {:.2} s",
        t0.elapsed().as_secs_f64() - captured
    );
}
