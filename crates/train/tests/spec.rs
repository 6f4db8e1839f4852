//! Model specs: files and presets keep their layer names, parameter names, shapes and
//! seeded initial values (checkpoints depend on them), and every layer type round-trips.

use backprop_nn::Module;
use backprop_train::ModelSpec;

/// One spec using every layer type, with explicit values and non-default parameters.
const EVERY: &str = r#"{"layers": [
  {"type": "reshape", "shape": [2, 4, 4]},
  {"type": "conv2d", "in": 2, "out": 4, "kernel": [3, 3], "padding": 1, "groups": 2, "init": "xavier_normal"},
  {"type": "batch_norm"},
  {"type": "prelu", "per_channel": true, "init": 0.2},
  {"type": "avg_pool2d", "kernel": 2, "stride": [1, 1]},
  {"type": "max_pool2d", "kernel": [2, 2], "padding": 1},
  {"type": "global_avg_pool"},
  {"type": "linear", "in": 4, "out": 6, "init": "he_normal"},
  {"type": "leaky_relu", "slope": 0.2},
  {"type": "elu"},
  {"type": "layer_norm"},
  {"type": "dropout", "p": 0.3},
  {"type": "maxout", "out": 5, "pieces": 3},
  {"type": "batch_norm"},
  {"type": "gelu"}, {"type": "silu"}, {"type": "tanh"}, {"type": "identity"},
  {"type": "step"}, {"type": "sign"}, {"type": "softmax"}, {"type": "sigmoid"}, {"type": "relu"},
  {"type": "prelu"},
  {"type": "linear", "out": 3, "bias_values": [1, 2, 3]},
  {"type": "reshape", "shape": [3, 1, 1]},
  {"type": "flatten"}
]}"#;

/// `name:kind` of each layer, and `(name, shape, sum of values)` of each parameter and
/// buffer.
type Layout = (Vec<String>, Vec<(String, Vec<usize>, f64)>);

fn layout(
    spec: &ModelSpec,
    inputs: usize,
    image: Option<[usize; 3]>,
    outputs: usize,
    seed: u64,
) -> Layout {
    let net = spec
        .build_shaped::<f64>(inputs, image, Some(outputs), seed)
        .unwrap()
        .model;
    let layers = net
        .layers()
        .map(|(n, l)| format!("{n}:{}", l.kind()))
        .collect();
    let params = net
        .params()
        .into_iter()
        .chain(net.buffers())
        .map(|(n, v)| (n, v.shape(), v.value().to_vec().iter().sum()))
        .collect();
    (layers, params)
}

fn check_params(got: &[(String, Vec<usize>, f64)], want: &[(&str, &[usize], f64)]) {
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((n, s, sum), (wn, ws, wsum)) in got.iter().zip(want) {
        assert_eq!((n.as_str(), s.as_slice()), (*wn, *ws));
        // NaN: the values are not pinned
        assert!(
            wsum.is_nan() || (sum - wsum).abs() < 1e-9,
            "{n}: sum {sum} != {wsum}"
        );
    }
}

#[test]
fn every_layer_type_builds_as_before() {
    let spec = ModelSpec::from_json(EVERY).unwrap();
    let (layers, params) = layout(&spec, 32, None, 3, 11);
    assert_eq!(
        layers,
        [
            "reshape1:Reshape([2, 4, 4])",
            "conv1:Conv2d(2 → 4, 3×3, pad 1×1, groups 2)",
            "bn1:BatchNorm2d(4)",
            "prelu1:PReLU(4)",
            "avgpool1:AvgPool2d(2×2, stride 1×1)",
            "pool1:MaxPool2d(2×2, pad 1×1)",
            "gap1:GlobalAvgPool2d",
            "fc1:Linear(4 → 6)",
            "leaky_relu1:LeakyReLU(0.2)",
            "elu1:ELU(1)",
            "ln1:LayerNorm(6)",
            "dropout1:Dropout(p=0.3)",
            "maxout1:Maxout(6 → 5, k=3)",
            "bn2:BatchNorm1d(5)",
            "gelu1:Gelu",
            "silu1:Silu",
            "tanh1:Tanh",
            "identity1:Identity",
            "step1:Step",
            "sign1:Sign",
            "softmax1:Softmax",
            "sigmoid1:Sigmoid",
            "relu1:ReLU",
            "prelu2:PReLU(1)",
            "fc2:Linear(5 → 3)",
            "reshape2:Reshape([3, 1, 1])",
            "flatten1:Flatten"
        ]
    );
    // sums of the seeded initial values (seed 11): the same random draws in the same order
    check_params(
        &params,
        &[
            ("conv1.weight", &[4, 1, 3, 3], -1.7972577280206747),
            ("conv1.bias", &[4], -0.06526982114468921),
            ("bn1.weight", &[4], 4.0),
            ("bn1.bias", &[4], 0.0),
            ("prelu1.weight", &[4], 0.8),
            ("fc1.weight", &[6, 4], -0.1040578135620483),
            ("fc1.bias", &[6], 0.0),
            ("ln1.weight", &[6], 6.0),
            ("ln1.bias", &[6], 0.0),
            ("maxout1.weight", &[15, 6], -2.8472520595404784),
            ("maxout1.bias", &[15], -1.0729550582344645),
            ("bn2.weight", &[5], 5.0),
            ("bn2.bias", &[5], 0.0),
            ("prelu2.weight", &[1], 0.25),
            ("fc2.weight", &[3, 5], -0.28224991625251317),
            ("fc2.bias", &[3], 6.0),
            ("bn1.running_mean", &[4], 0.0),
            ("bn1.running_var", &[4], 4.0),
            ("bn2.running_mean", &[5], 0.0),
            ("bn2.running_var", &[5], 5.0),
        ],
    );
    // serialized with every default spelled out, and read back to the same spec
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(
        json,
        r#"{"layers":[{"type":"reshape","shape":[2,4,4]},{"type":"conv2d","in":2,"out":4,"kernel":[3,3],"stride":1,"padding":1,"dilation":1,"groups":2,"bias":true,"init":"xavier_normal"},{"type":"batch_norm"},{"type":"prelu","per_channel":true,"init":0.2},{"type":"avg_pool2d","kernel":2,"stride":[1,1],"padding":0},{"type":"max_pool2d","kernel":[2,2],"padding":1},{"type":"global_avg_pool"},{"type":"linear","in":4,"out":6,"bias":true,"init":"he_normal"},{"type":"leaky_relu","slope":0.2},{"type":"elu","alpha":1.0},{"type":"layer_norm"},{"type":"dropout","p":0.3},{"type":"maxout","out":5,"pieces":3},{"type":"batch_norm"},{"type":"gelu"},{"type":"silu"},{"type":"tanh"},{"type":"identity"},{"type":"step"},{"type":"sign"},{"type":"softmax"},{"type":"sigmoid"},{"type":"relu"},{"type":"prelu","per_channel":false,"init":0.25},{"type":"linear","out":3,"bias":true,"bias_values":[1.0,2.0,3.0]},{"type":"reshape","shape":[3,1,1]},{"type":"flatten"}]}"#
    );
    assert_eq!(serde_json::from_str::<ModelSpec>(&json).unwrap(), spec);
    assert_eq!(ModelSpec::from_json(&json).unwrap(), spec);
}

#[test]
fn example_spec_files_load_and_build_as_before() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/specs");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str());
        if !matches!(ext, Some("toml" | "json")) {
            continue;
        }
        let spec = ModelSpec::from_file(&path).unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap();
        // every file builds; the known ones keep their exact layout
        let built = spec.build_shaped::<f64>(2, None, None, 0);
        if name == "worked_example" {
            let (layers, params) = layout(&spec, 2, None, 1, 0);
            assert_eq!(
                layers,
                [
                    "fc1:Linear(2 → 2, no bias)",
                    "sigmoid1:Sigmoid",
                    "fc2:Linear(2 → 1, no bias)",
                    "sigmoid2:Sigmoid"
                ]
            );
            check_params(
                &params,
                &[("fc1.weight", &[2, 2], 1.9), ("fc2.weight", &[1, 2], 1.2)],
            );
            assert!(built.is_ok());
        }
        // a spec survives the checkpoint's round trip (without explicit values)
        let bare = spec.without_values();
        let json = serde_json::to_string(&bare).unwrap();
        assert_eq!(
            ModelSpec::from_json(&json).unwrap(),
            bare,
            "{}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 1);
}

#[test]
fn presets_keep_their_parameter_names() {
    let img = Some([1, 28, 28]);
    let (layers, params) = layout(&ModelSpec::lenet5(10), 784, img, 10, 3);
    assert_eq!(layers[0], "reshape1:Reshape([1, 28, 28])");
    assert_eq!(layers[7], "flatten1:Flatten");
    check_params(
        &params,
        &[
            ("conv1.weight", &[6, 1, 5, 5], -1.9402600184549608),
            ("conv1.bias", &[6], -0.5106908598075512),
            ("conv2.weight", &[16, 6, 5, 5], 2.6211599032330124),
            ("conv2.bias", &[16], 0.22886319656044285),
            ("fc1.weight", &[120, 400], -0.6707957387016634),
            ("fc1.bias", &[120], -0.05981003275339111),
            ("fc2.weight", &[84, 120], 9.253135487255099),
            ("fc2.bias", &[84], 0.31318313862124747),
            ("fc3.weight", &[10, 84], -1.2309061196218265),
            ("fc3.bias", &[10], -0.05912259661463081),
        ],
    );
    let (layers, params) = layout(&ModelSpec::cnn(10), 784, img, 10, 0);
    assert_eq!(layers[2], "bn1:BatchNorm2d(16)");
    let n = f64::NAN;
    check_params(
        &params,
        &[
            ("conv1.weight", &[16, 1, 3, 3], n),
            ("bn1.weight", &[16], 16.0),
            ("bn1.bias", &[16], 0.0),
            ("conv2.weight", &[32, 16, 3, 3], n),
            ("bn2.weight", &[32], 32.0),
            ("bn2.bias", &[32], 0.0),
            ("conv3.weight", &[64, 32, 3, 3], n),
            ("bn3.weight", &[64], 64.0),
            ("bn3.bias", &[64], 0.0),
            ("fc1.weight", &[128, 3136], n),
            ("fc1.bias", &[128], 0.0),
            ("fc2.weight", &[10, 128], n),
            ("fc2.bias", &[10], n),
            ("bn1.running_mean", &[16], 0.0),
            ("bn1.running_var", &[16], 16.0),
            ("bn2.running_mean", &[32], 0.0),
            ("bn2.running_var", &[32], 32.0),
            ("bn3.running_mean", &[64], 0.0),
            ("bn3.running_var", &[64], 64.0),
        ],
    );
    let (layers, params) = layout(&ModelSpec::preset("mlp", 10).unwrap(), 784, img, 10, 0);
    assert_eq!(
        layers,
        [
            "fc1:Linear(784 → 256)",
            "relu1:ReLU",
            "fc2:Linear(256 → 128)",
            "relu2:ReLU",
            "fc3:Linear(128 → 10)"
        ]
    );
    let names: Vec<&str> = params.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "fc3.weight",
            "fc3.bias"
        ]
    );
}

#[test]
fn trace_prints_the_models_own_activations() {
    use backprop_train::trace::{trace, TraceCost};
    let json = r#"{"layers": [
        {"type": "linear", "in": 2, "out": 3}, {"type": "relu"},
        {"type": "dropout", "p": 0.5},
        {"type": "linear", "out": 2}, {"type": "leaky_relu", "slope": 0.2},
        {"type": "linear", "out": 1}
    ]}"#;
    let net = ModelSpec::from_json(json)
        .unwrap()
        .build::<f64>(2, Some(1), 4)
        .unwrap()
        .model;
    let t = trace(&net, &[0.5, -1.0], &TraceCost::Squared(vec![0.25]), 0.1).unwrap();
    let acts: Vec<&str> = t.layers.iter().map(|l| l.activation.as_str()).collect();
    assert_eq!(acts, ["relu", "leaky_relu", "identity"]);
    assert!(t.bp1_error < 1e-12 && t.bp2_error < 1e-12);
    let text = t.to_string();
    for want in [
        "a^1 = relu(z^1)",
        "a^2 = leaky_relu(z^2)",
        "a^3 = identity(z^3)",
        "BP1  δ^3 = ∇_a C ⊙ identity′(z^3)",
        "BP2  δ^2 = ((W^3)ᵀ δ^3) ⊙ leaky_relu′(z^2)",
        "BP2  δ^1 = ((W^2)ᵀ δ^2) ⊙ relu′(z^1)",
    ] {
        assert!(text.contains(want), "the trace lacks {want}:\n{text}");
    }
    // not an MLP: softmax is no elementwise activation, a conv is not a linear layer
    let soft = r#"{"layers": [{"type": "linear", "out": 2}, {"type": "softmax"}]}"#;
    let net = ModelSpec::from_json(soft)
        .unwrap()
        .build::<f64>(2, None, 0)
        .unwrap()
        .model;
    let e = trace(&net, &[0.5, -1.0], &TraceCost::CrossEntropy(1), 0.1).unwrap_err();
    assert!(e.contains("softmax1 (Softmax)"), "{e}");
}
