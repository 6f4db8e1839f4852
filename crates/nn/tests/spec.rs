//! The model spec, the layer configurations beside their layers, the one activation list
//! and the typed capabilities of modules.

use backprop_autograd::Var;
use backprop_nn::spec::{activation_spec, hidden_activations, layer_types};
use backprop_nn::{
    Activation, BatchNorm, Dropout, LayerSpec, Linear, Mode, ModelSpec, Module, Residual,
    Sequential, SpecError,
};
use backprop_tensor::{Rng, Tensor};

#[test]
fn every_activation_round_trips_through_its_name_and_a_spec() {
    for &a in Activation::ALL {
        assert_eq!(Activation::from_name(a.name()), Some(a), "{a:?}");
        // through a spec, with its default parameter and with another one
        let variants = [a, a.with_param(0.37)];
        for a in variants {
            let mut layer = serde_json::json!({ "type": a.name() });
            if let Some((k, v)) = a.param() {
                layer[k] = v.into();
            }
            let text = serde_json::json!({ "layers": [layer] }).to_string();
            let spec = ModelSpec::from_json(&text).unwrap();
            assert_eq!(spec.layers, [LayerSpec::Activation(a)]);
            let net = spec.build::<f64>(3, Some(3), 0).unwrap().model;
            let (name, layer) = net.layers().next().unwrap();
            assert_eq!(name, format!("{}1", a.name()));
            assert_eq!(layer.activation(), Some(a));
            // and back to the same JSON
            let again: ModelSpec =
                serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
            assert_eq!(again, spec);
        }
        // every activation is a layer type, and the mlp preset takes every elementwise one
        assert!(layer_types().contains(&a.name()));
        let mlp = ModelSpec::mlp(&[4], a.name(), 0.0, 2);
        assert_eq!(mlp.is_ok(), a.is_elementwise(), "{a:?}");
    }
    // the aliases the CLI has always accepted, with the lecture's leaky slope
    assert_eq!(Activation::from_name("linear"), Some(Activation::Identity));
    assert_eq!(Activation::from_name("swish"), Some(Activation::Silu));
    assert_eq!(
        Activation::from_name("leaky-relu"),
        Some(Activation::LeakyRelu(0.1))
    );
    assert_eq!(Activation::from_name("swoosh"), None);
    // in a spec, "linear" is the linear layer, not the identity
    let spec = ModelSpec::from_json(r#"{"layers": [{"type": "linear", "out": 2}]}"#).unwrap();
    assert!(matches!(spec.layers[0], LayerSpec::Linear(_)));
}

#[test]
fn activation_facts_come_from_the_one_list() {
    let names: Vec<&str> = Activation::ALL.iter().map(Activation::name).collect();
    assert_eq!(
        names,
        [
            "relu",
            "sigmoid",
            "tanh",
            "identity",
            "step",
            "sign",
            "gelu",
            "silu",
            "softplus",
            "softmax",
            "leaky_relu",
            "elu"
        ]
    );
    let no_gradient: Vec<&str> = Activation::ALL
        .iter()
        .filter(|a| !a.has_gradient())
        .map(Activation::name)
        .collect();
    assert_eq!(no_gradient, ["step", "sign"]);
    assert!(!Activation::Softmax.is_elementwise() && Activation::Relu.is_elementwise());
    for a in Activation::ALL {
        assert!(a.formula().starts_with("a"), "{a:?}");
        assert!(
            a.formula().contains('′') || a.formula().contains('∂'),
            "{a:?}"
        );
    }
    // a gradient that is zero everywhere, as has_gradient says
    let z = Var::parameter(Tensor::<f64>::from_vec(vec![-1.5, 0.3, 2.0], &[1, 3]));
    for a in Activation::ALL.iter().filter(|a| a.is_elementwise()) {
        let g = a.forward(&z, Mode::Train).exp().mean().backward();
        let any = g.get(&z).unwrap().to_vec().iter().any(|&v| v != 0.0);
        assert_eq!(any, a.has_gradient(), "{a:?}");
    }
    // the layer types: each configuration once, then every activation
    let types = layer_types();
    let mut unique = types.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), types.len(), "{types:?}");
    for t in [
        "linear",
        "conv2d",
        "batch_norm",
        "prelu",
        "reshape",
        "global_avg_pool",
    ] {
        assert!(types.contains(&t), "{t}");
    }
    assert!(hidden_activations().contains(&"prelu"));
    assert!(!hidden_activations().contains(&"softmax"));
    assert!(matches!(activation_spec("prelu"), Ok(LayerSpec::Prelu(_))));
    let e = activation_spec("swoosh").unwrap_err().to_string();
    assert!(e.contains("swoosh") && e.contains("leaky_relu"), "{e}");
}

fn build_err(json: &str, inputs: usize) -> SpecError {
    ModelSpec::from_json(json)
        .unwrap()
        .build_shaped::<f32>(inputs, None, None, 0)
        .err()
        .unwrap()
}

#[test]
fn layer_configs_reject_bad_sizes_naming_the_layer() {
    let cases: &[(&str, usize, usize, &str, &str)] = &[
        (
            r#"{"type": "linear", "out": 0}"#,
            4,
            2,
            "linear",
            "out must be at least 1",
        ),
        (
            r#"{"type": "linear", "in": 3, "out": 2}"#,
            4,
            2,
            "linear",
            "expects 3 inputs but layer 1 gives 4",
        ),
        (
            r#"{"type": "linear", "out": 2, "init": "orthogonal"}"#,
            4,
            2,
            "linear",
            "unknown init \"orthogonal\"",
        ),
        (
            r#"{"type": "linear", "out": 2, "bias": false, "bias_values": [1, 2]}"#,
            4,
            2,
            "linear",
            "bias is false",
        ),
        (
            r#"{"type": "linear", "out": 2, "weight": [[1, 2, 3]]}"#,
            4,
            2,
            "linear",
            "weight is 1×3 but must be 2×4",
        ),
        (
            r#"{"type": "maxout", "out": 2, "pieces": 0}"#,
            4,
            2,
            "maxout",
            "pieces must be at least 1",
        ),
        (
            r#"{"type": "dropout", "p": 1.5}"#,
            4,
            2,
            "dropout",
            "p = 1.5 must be in [0, 1)",
        ),
        (
            r#"{"type": "reshape", "shape": [3, 3]}"#,
            4,
            2,
            "reshape",
            "into [3, 3] but layer 1 gives [4]",
        ),
        (
            r#"{"type": "reshape", "shape": [2, 2]}, {"type": "batch_norm"}"#,
            4,
            3,
            "batch_norm",
            "works on features [C] or images [C, H, W] but layer 2 gives [2, 2]",
        ),
        (
            r#"{"type": "reshape", "shape": [1, 2, 2]}, {"type": "conv2d", "out": 2, "kernel": 3}"#,
            4,
            3,
            "conv2d",
            "kernel",
        ),
        (
            r#"{"type": "reshape", "shape": [2, 2, 1]}, {"type": "conv2d", "out": 3, "kernel": 1, "groups": 2}"#,
            4,
            3,
            "conv2d",
            "2 groups must divide both 2 input and 3 output channels",
        ),
        (
            r#"{"type": "reshape", "shape": [1, 2, 2]}, {"type": "max_pool2d", "kernel": 3}"#,
            4,
            3,
            "max_pool2d",
            "",
        ),
        (
            r#"{"type": "global_avg_pool"}"#,
            4,
            2,
            "global_avg_pool",
            "needs images [channels, height, width] but layer 1 gives [4]",
        ),
    ];
    for &(layers, inputs, at, kind, msg) in cases {
        let json = format!(r#"{{"layers": [{{"type": "identity"}}, {layers}]}}"#);
        let e = build_err(&json, inputs);
        let text = e.to_string();
        match &e {
            SpecError::Layer {
                index,
                kind: k,
                message,
            } => {
                assert_eq!((*index, k.as_deref()), (at, Some(kind)), "{text}");
                assert!(message.contains(msg), "{text}");
                assert!(
                    text.starts_with(&format!("layer {at} ({kind}): ")),
                    "{text}"
                );
            }
            other => panic!("{json}: not a layer error: {other:?}"),
        }
    }
    // parse errors name the layer too
    let e = ModelSpec::from_json(
        r#"{"layers": [{"type": "relu"}, {"type": "leaky_relu", "alpha": 2}]}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("layer 2 (leaky_relu): unknown field `alpha`"),
        "{e}"
    );
    let e = ModelSpec::from_json(r#"{"layers": [{"type": "dense", "out": 2}]}"#).unwrap_err();
    assert!(
        e.to_string().contains("unknown layer type \"dense\"") && e.to_string().contains("conv2d"),
        "{e}"
    );
    let e = ModelSpec::from_json(r#"{"layers": [{"type": "linear", "out": 2, "widht": 3}]}"#)
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("layer 1 (linear): unknown field `widht`"),
        "{e}"
    );
    let e = ModelSpec::from_json(r#"{"layers": [{"out": 2}]}"#).unwrap_err();
    assert_eq!(e.to_string(), "layer 1: missing \"type\"");
    // the output width is checked against the data
    let e = ModelSpec::mlp(&[3], "relu", 0.0, 4)
        .unwrap()
        .build::<f32>(2, Some(10), 0);
    assert!(
        matches!(e, Err(SpecError::Invalid(m)) if m.contains("gives 4 outputs but the data needs 10"))
    );
}

#[test]
fn sample_independence_is_asked_not_read_from_names() {
    let mut rng = Rng::seed(0);
    let plain = Sequential::<f32>::new()
        .add("fc1", Linear::new(3, 3, &mut rng))
        .add(
            "res",
            Residual::new(Sequential::new().add("fc", Linear::new(3, 3, &mut rng))),
        );
    assert!(plain.sample_independent());
    let with_dropout = Sequential::<f32>::new().add(
        "res",
        Residual::new(Sequential::new().add("drop", Dropout::new(0.5, 1))),
    );
    assert!(!with_dropout.sample_independent());
    let with_bn = Sequential::<f32>::new()
        .add("fc1", Linear::new(3, 3, &mut rng))
        .add(
            "res",
            Residual::new(Sequential::new().add("bn", BatchNorm::new(3))),
        );
    assert!(!with_bn.sample_independent());
    // built from specs
    let spec = |json: &str| {
        ModelSpec::from_json(json)
            .unwrap()
            .build::<f32>(4, None, 0)
            .unwrap()
            .model
    };
    assert!(
        spec(r#"{"layers": [{"type": "linear", "out": 2}, {"type": "relu"}]}"#)
            .sample_independent()
    );
    assert!(
        !spec(r#"{"layers": [{"type": "linear", "out": 2}, {"type": "batch_norm"}]}"#)
            .sample_independent()
    );
}

#[test]
fn modules_say_what_they_are() {
    let json = r#"{"layers": [
        {"type": "reshape", "shape": [1, 4, 4]},
        {"type": "conv2d", "out": 2, "kernel": 3},
        {"type": "flatten"}, {"type": "dropout", "p": 0.1},
        {"type": "linear", "out": 3}, {"type": "tanh"}, {"type": "prelu"}
    ]}"#;
    let net = ModelSpec::from_json(json)
        .unwrap()
        .build::<f64>(16, None, 0)
        .unwrap()
        .model;
    let facts: Vec<(&str, bool, bool, Option<Activation>, bool)> = net
        .layers()
        .map(|(n, l)| {
            (
                n,
                l.as_linear().is_some(),
                l.as_conv2d().is_some(),
                l.activation(),
                l.is_shape_only(),
            )
        })
        .collect();
    assert_eq!(
        facts,
        [
            ("reshape1", false, false, None, true),
            ("conv1", false, true, None, false),
            ("flatten1", false, false, None, true),
            ("dropout1", false, false, None, true),
            ("fc1", true, false, None, false),
            ("tanh1", false, false, Some(Activation::Tanh), false),
            ("prelu1", false, false, None, false),
        ]
    );
    let conv = net.layers().nth(1).unwrap().1.as_conv2d().unwrap();
    assert_eq!(conv.weight.shape(), vec![2, 1, 3, 3]);
    assert_eq!(
        net.layers()
            .nth(4)
            .unwrap()
            .1
            .as_linear()
            .unwrap()
            .in_features(),
        8
    );
}

#[test]
fn one_batch_norm_for_features_and_images() {
    // the same type, per feature on [N, C] and per channel on [N, C, H, W]; PyTorch's names
    let bn = BatchNorm::<f64>::new(2);
    let names: Vec<String> = bn
        .params()
        .into_iter()
        .chain(bn.buffers())
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["weight", "bias", "running_mean", "running_var"]);
    let flat = Var::constant(Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2]));
    let y = bn.forward(&flat, Mode::Train).value();
    assert!((y.get(&[0, 1]) + 1.0).abs() < 1e-4);
    let img = Var::constant(Tensor::rand_normal(
        &[3, 2, 4, 4],
        5.0,
        2.0,
        &mut Rng::seed(1),
    ));
    let y = bn.forward(&img, Mode::Train).value();
    for c in 0..2 {
        let mut vals = Vec::new();
        for n in 0..3 {
            for i in 0..16 {
                vals.push(y.get(&[n, c, i / 4, i % 4]));
            }
        }
        let mean = vals.iter().sum::<f64>() / 48.0;
        assert!(mean.abs() < 1e-9, "channel {c}: mean {mean}");
    }
    assert_eq!(Module::<f64>::kind(&bn), "BatchNorm(2)");
    assert_eq!(
        Module::<f64>::kind(&BatchNorm::<f64>::for_features(2)),
        "BatchNorm1d(2)"
    );
}

#[test]
#[should_panic(expected = "BatchNorm2d(2): expected")]
fn batch_norm_for_images_rejects_flat_inputs() {
    let bn = BatchNorm::<f64>::for_images(2);
    bn.forward(&Var::constant(Tensor::zeros(&[3, 2])), Mode::Train);
}

#[test]
fn explicit_values_of_the_wrong_shape_are_refused_by_the_plan() {
    // found by fuzzing: the plan passed a spec that building then refused
    for (json, says) in [
        (
            r#"{"layers": [{"type": "linear", "in": 2, "out": 1, "weight": [[1, 2], [3, 4]]}]}"#,
            "weight is 2×2 but must be 1×2",
        ),
        (
            r#"{"layers": [{"type": "linear", "out": 2, "bias_values": [1]}]}"#,
            "bias_values has 1 entries",
        ),
        (
            r#"{"layers": [{"type": "linear", "out": 2, "bias": false, "bias_values": [1, 2]}]}"#,
            "bias is false",
        ),
        (
            r#"{"layers": [{"type": "linear", "out": 2, "init": "bogus"}]}"#,
            "unknown init",
        ),
    ] {
        let spec = ModelSpec::from_json(json).unwrap();
        let e = spec.plan(2, None, None).err().expect("refused").to_string();
        assert!(e.contains(says) && e.contains("layer 1"), "{e}");
    }
}

#[test]
fn a_model_larger_than_the_machine_is_refused_before_anything_is_allocated() {
    // 10^12 outputs: 3.1 PB of weights, far beyond any machine; refused with the sizes
    let spec =
        ModelSpec::from_json(r#"{"layers": [{"type": "linear", "out": 1000000000000}]}"#).unwrap();
    let e = spec
        .build::<f32>(784, None, 0)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("too large for this machine"), "{e}");
    assert!(e.contains("layer 1 (linear fc1"), "{e}");
    assert!(e.contains("785000000000000 parameters"), "{e}"); // 784·10^12 weights + 10^12 biases
                                                              // sizes whose product overflows are refused by the plan, naming the layer
    let spec = ModelSpec::from_json(
        r#"{"layers": [{"type": "reshape", "shape": [4294967296, 4294967296, 2]}, {"type": "flatten"}, {"type": "linear", "out": 2}]}"#,
    )
    .unwrap();
    let e = spec
        .build::<f32>(8, None, 0)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("layer 1") && e.contains("2^64"), "{e}");
    // what fits is planned exactly as it is built
    let spec = ModelSpec::cnn(10);
    let plan = spec.plan(784, Some([1, 28, 28]), Some(10)).unwrap();
    let built = spec
        .build_shaped::<f32>(784, Some([1, 28, 28]), Some(10), 0)
        .unwrap();
    let counted: usize = built
        .model
        .params()
        .iter()
        .map(|(_, p)| p.value().numel())
        .sum();
    assert_eq!(plan.params() as usize, counted);
    assert_eq!(plan.layers.len(), built.model.len());
}
