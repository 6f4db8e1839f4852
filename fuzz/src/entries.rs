//! What each fuzz target does with its input: the code paths a user's file or a playground
//! request takes, from bytes to the values the program then uses. Every entry returns
//! normally for any input; a panic, an abort or a hang is a finding.
//!
//! Sizes come from the input, so an entry builds a model only after planning it and
//! checking the plan against [`BUDGET`] (as the CLI checks it against the machine's
//! memory): the fuzzer's memory limit stands for a small machine, and a file that asks for
//! more must be refused by the code under test before it allocates, which the CLI's own
//! checks do against the memory available.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use backprop::data::{
    decode_idx, load_table_split, normalize_digit, segment_digits, table_dataset, CsvOptions,
    LabelColumn, Missing, Scaling, Table, TableOptions, Task,
};
use backprop::nn::{Mode, Module};
use backprop::train::{Checkpoint, History, ModelSpec, SavedModel, TrainConfig, Trainer};
use backprop::{Tensor, Var};
use serde_json::{json, Value};

/// The most bytes an entry lets a model it builds take (parameters, and activations of a
/// batch of 2).
pub const BUDGET: u128 = 64 << 20;

/// The most work an entry lets one run of a model it builds take, as parameters × values
/// per sample (a rough bound on a step's multiply-adds). The GEMM crate's packing loops run
/// 10–50× slower under the fuzzer's comparison tracing: a one-step LSTM of 634 units on two
/// features (about 10⁹) took 2.7 s, so the budget is 2²⁸ (under a second). What is fuzzed is
/// parsing, planning and building; a large but valid model is only slow, and small models
/// run the same code.
pub const WORK_BUDGET: u128 = 1 << 28;

/// An IDX file, gzipped or raw, as `--dataset idx` reads it.
pub fn idx(data: &[u8]) {
    if let Ok(a) = decode_idx(data) {
        let n: usize = a.dims.iter().product();
        assert_eq!(a.data.len(), n, "the data is what the header promises");
    }
}

/// A CSV file, as `train --dataset file.csv` reads it (the first byte picks the options),
/// and as the playground's upload reads it.
pub fn csv(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let opts = TableOptions {
        label: match pick % 3 {
            0 => LabelColumn::Last,
            1 => LabelColumn::Index(0),
            _ => LabelColumn::Name("label".into()),
        },
        header: [None, Some(true), Some(false)][(pick / 3 % 3) as usize],
        task: [None, Some(Task::Classification), Some(Task::Regression)][(pick / 9 % 3) as usize],
        scale: Scaling::ALL[(pick / 27 % 3) as usize],
        missing: Missing::ALL[(pick / 81 % 3) as usize],
        split_seed: u64::from(pick),
    };
    // parsed once (building the CSV reader's automaton is most of a run's time), then
    // read both ways: as the CLI does with its options, and as the upload does
    let Ok(table) = Table::parse(Path::new("fuzz.csv"), bytes) else {
        return;
    };
    if let Ok(split) = load_table_split(table.clone(), &opts) {
        for d in [&split.train, &split.test] {
            assert_eq!(d.x.shape()[0], d.len());
            assert_eq!(d.x.shape()[1], split.schema.inputs());
        }
    }
    if std::str::from_utf8(bytes).is_ok() {
        let task = if pick & 1 == 0 {
            Task::Classification
        } else {
            Task::Regression
        };
        let opts = CsvOptions {
            task,
            ..CsvOptions::default()
        };
        if let Ok(d) = table_dataset(table, &opts) {
            assert_eq!(d.x.shape()[0], d.len());
        }
    }
}

/// A model spec file (the first byte: JSON or TOML), parsed, planned and built for a few
/// input shapes, then run forward and backward on a batch of two.
pub fn spec(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let parsed = if pick & 1 == 0 {
        ModelSpec::from_json(text)
    } else {
        ModelSpec::from_toml(text)
    };
    if let Ok(spec) = parsed {
        build_and_run(&spec);
    }
}

/// Whether a planned model is within [`BUDGET`] and [`WORK_BUDGET`].
fn plan_fits(plan: &backprop::nn::ModelPlan) -> bool {
    plan.training_bytes(4, 2, 2) <= BUDGET
        && u128::from(plan.params()) * plan.values_per_sample() <= WORK_BUDGET
}

/// Builds `spec` for an MNIST image, a flat pair of features and a small colour image,
/// where its plan fits [`BUDGET`], and runs a batch through it.
fn build_and_run(spec: &ModelSpec) {
    for (inputs, image) in [(784, Some([1, 28, 28])), (2, None), (48, Some([3, 4, 4]))] {
        let Ok(plan) = spec.plan(inputs, image, None) else {
            continue;
        };
        if !plan_fits(&plan) {
            continue;
        }
        let built = spec
            .build_shaped::<f32>(inputs, image, None, 1)
            .unwrap_or_else(|e| panic!("a spec that plans must build: {e}"));
        assert_eq!(built.outputs, plan.outputs(), "the plan's output width");
        forward_backward(&built.model, inputs);
    }
}

fn forward_backward(model: &dyn Module<f32>, inputs: usize) {
    let x = Var::constant(Tensor::<f32>::zeros(&[2, inputs]));
    let out = model.forward(&x, Mode::Train);
    assert_eq!(out.shape()[0], 2, "one output row per sample");
    let _ = out.mean().backward();
    let _ = model.forward(&x, Mode::Eval).value();
}

/// A size as the fuzzer picks it: boundary values more often than chance would.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Size {
    /// One of the values where arithmetic wraps or allocations fail.
    Edge(u8),
    /// Anything.
    Any(u64),
    /// Small.
    Small(u8),
}

impl Size {
    /// Boundary values: zero, one, powers of two at the ends of 16, 32 and 64 bits.
    pub const EDGES: [u64; 14] = [
        0,
        1,
        2,
        255,
        65_535,
        65_536,
        (1 << 31) - 1,
        1 << 31,
        (1 << 32) - 1,
        1 << 32,
        1 << 62,
        (1 << 63) - 1,
        1 << 63,
        u64::MAX,
    ];

    fn value(self) -> Value {
        match self {
            Size::Edge(i) => json!(Self::EDGES[i as usize % Self::EDGES.len()]),
            Size::Any(v) => json!(v),
            Size::Small(v) => json!(v),
        }
    }
}

/// One layer of a structured spec.
#[derive(Arbitrary, Debug)]
pub enum FuzzLayer {
    /// `linear`.
    Linear { out: Size, bias: bool },
    /// `conv2d`.
    Conv2d {
        out: Size,
        kernel: Size,
        stride: Size,
        padding: Size,
        dilation: Size,
        groups: Size,
    },
    /// `max_pool2d` or `avg_pool2d`.
    Pool {
        avg: bool,
        kernel: Size,
        stride: Option<Size>,
    },
    /// `batch_norm`.
    BatchNorm,
    /// `dropout`.
    Dropout { p: f64 },
    /// `reshape`.
    Reshape { shape: Vec<Size> },
    /// `flatten`.
    Flatten,
    /// A layer type by its index in the list of layer types, with one field set.
    Other {
        kind: u8,
        field: String,
        value: Size,
    },
}

/// A spec as a list of layers, rendered to JSON and read as a file would be.
#[derive(Arbitrary, Debug)]
pub struct SpecInput {
    /// The layers.
    pub layers: Vec<FuzzLayer>,
    /// Render as TOML instead of JSON.
    pub toml: bool,
}

impl FuzzLayer {
    fn value(&self) -> Value {
        match self {
            FuzzLayer::Linear { out, bias } => {
                json!({"type": "linear", "out": out.value(), "bias": bias})
            }
            FuzzLayer::Conv2d {
                out,
                kernel,
                stride,
                padding,
                dilation,
                groups,
            } => json!({
                "type": "conv2d", "out": out.value(), "kernel": kernel.value(),
                "stride": stride.value(), "padding": padding.value(),
                "dilation": dilation.value(), "groups": groups.value(),
            }),
            FuzzLayer::Pool {
                avg,
                kernel,
                stride,
            } => {
                let mut v = json!({
                    "type": if *avg { "avg_pool2d" } else { "max_pool2d" },
                    "kernel": kernel.value(),
                });
                if let Some(s) = stride {
                    v["stride"] = s.value();
                }
                v
            }
            FuzzLayer::BatchNorm => json!({"type": "batch_norm"}),
            FuzzLayer::Dropout { p } => json!({"type": "dropout", "p": p}),
            FuzzLayer::Reshape { shape } => {
                json!({"type": "reshape", "shape": shape.iter().map(|s| s.value()).collect::<Vec<_>>()})
            }
            FuzzLayer::Flatten => json!({"type": "flatten"}),
            FuzzLayer::Other { kind, field, value } => {
                let types = backprop::nn::spec::layer_types();
                let t = types[*kind as usize % types.len()];
                let mut v = json!({ "type": t });
                if !field.is_empty() && field != "type" {
                    v[field.as_str()] = value.value();
                }
                v
            }
        }
    }
}

/// A structured spec: rendered to text, then through [`spec`]'s path.
pub fn spec_structured(input: &SpecInput) {
    let layers: Vec<Value> = input.layers.iter().map(FuzzLayer::value).collect();
    let doc = json!({ "layers": layers });
    let parsed = if input.toml {
        // TOML has no u64 above i64::MAX: such a spec is rendered as JSON instead
        match toml_text(&doc) {
            Some(t) => ModelSpec::from_toml(&t),
            None => ModelSpec::from_json(&doc.to_string()),
        }
    } else {
        ModelSpec::from_json(&doc.to_string())
    };
    if let Ok(spec) = parsed {
        build_and_run(&spec);
    }
}

/// `[[layers]]` tables for a spec of flat layers (numbers, strings, booleans, arrays).
fn toml_text(doc: &Value) -> Option<String> {
    let mut out = String::new();
    for l in doc["layers"].as_array()? {
        out.push_str("[[layers]]\n");
        for (k, v) in l.as_object()? {
            let v = match v {
                Value::Number(n) if n.as_i64().is_none() && n.as_f64().is_none() => return None,
                Value::Number(n) if n.as_u64().is_some_and(|u| u > i64::MAX as u64) => return None,
                other => other.to_string(),
            };
            out.push_str(&format!("{} = {v}\n", Value::String(k.clone())));
        }
    }
    Some(out)
}

/// A safetensors checkpoint with metadata, as `eval`, `predict` and `--resume` read it:
/// parsed and checked, its model rebuilt (where the spec fits [`BUDGET`]) and its weights,
/// optimizer state and history restored into a trainer.
pub fn checkpoint(data: &[u8]) {
    let Ok(ck) = Checkpoint::from_bytes(data) else {
        return;
    };
    // what is written reads back the same, bit for bit
    let again = Checkpoint::from_bytes(&ck.to_bytes()).expect("a written checkpoint reads back");
    assert_eq!(again.metadata, ck.metadata);
    let bits = |c: &Checkpoint| {
        let mut v: Vec<(String, Vec<usize>, Vec<u32>)> = c
            .tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.shape().to_vec(),
                    t.data().iter().map(|x| x.to_bits()).collect(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert!(bits(&again) == bits(&ck), "the tensors read back the same");
    if let Some(h) = ck.metadata.get("backprop.history") {
        let _ = History::from_json(h);
    }
    if !fits_budget(&ck) {
        return;
    }
    let Ok(saved) = SavedModel::from_checkpoint(ck.clone(), PathBuf::from("fuzz.safetensors"))
    else {
        return;
    };
    let _ = saved.loss();
    let _ = saved.table();
    let _ = saved.input_encoding();
    forward_backward(&saved.model, saved.inputs);
    if let Ok(mut t) = Trainer::new(&saved.model, TrainConfig::default()) {
        let _ = t.resume(&ck);
    }
}

/// Whether the model a checkpoint's metadata describes fits [`BUDGET`] (or does not plan,
/// which loading then reports).
fn fits_budget(ck: &Checkpoint) -> bool {
    let spec = ck
        .metadata
        .get("backprop.spec")
        .and_then(|s| serde_json::from_str::<ModelSpec>(s).ok());
    let inputs = ck
        .metadata
        .get("backprop.inputs")
        .and_then(|s| s.parse::<usize>().ok());
    let image = ck
        .metadata
        .get("backprop.image_shape")
        .and_then(|s| serde_json::from_str::<[usize; 3]>(s).ok());
    match (spec, inputs) {
        (Some(spec), Some(inputs)) => spec
            .plan(inputs, image, None)
            .map_or(true, |p| plan_fits(&p)),
        _ => true,
    }
}

/// A PNG or PGM image as `predict` reads it: decoded, inverted if light, cut into digits
/// and each normalised to 28×28 as `--segment` does.
pub fn image(data: &[u8]) {
    let Ok(img) = crate::images::decode_image(data) else {
        return;
    };
    assert_eq!(
        img.pixels.len(),
        img.width * img.height,
        "one byte per pixel"
    );
    let mut px = img.pixels;
    let mean = px.iter().map(|&v| f64::from(v)).sum::<f64>() / px.len().max(1) as f64;
    if mean > 127.0 {
        px.iter_mut().for_each(|v| *v = 255 - *v);
    }
    for s in segment_digits(&px, img.width, img.height) {
        assert_eq!(s.pixels.len(), 784, "a segment is 28×28");
    }
    if let Some(d) = normalize_digit(&px, img.width, img.height) {
        assert_eq!(d.len(), 784);
    }
}

/// The playground server's state, shared by every run of [`playground`]: no digits model
/// (its page then answers that it is not ready), many sessions allowed.
fn app() -> &'static Arc<backprop_playground::App> {
    static APP: OnceLock<Arc<backprop_playground::App>> = OnceLock::new();
    APP.get_or_init(|| {
        let none = std::env::temp_dir().join("backprop-fuzz-no-such-dir");
        let app = backprop_playground::App::new(backprop_playground::Options {
            max_sessions: 1000,
            digits: backprop_playground::DigitsOptions {
                model: none.join("model.safetensors"),
                mnist_dir: none,
                epochs: 1,
            },
            ..backprop_playground::Options::default()
        });
        // The digits model is prepared on a thread of its own; with no data it fails at
        // once. Wait for that, so that every run sees the same settled state (a drawing
        // sent while it is still "working" would be answered 503, retry later).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (_, bytes) =
                backprop_playground::server::answer(&app, "GET", "/api/digits/status", Vec::new());
            let v: Value = serde_json::from_slice(&bytes).expect("the status is JSON");
            let state = v["state"].as_str().unwrap_or_default().to_string();
            if state != "idle" && state != "working" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the digits model did not settle: {v}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        app
    })
}

/// A request body sent to the playground (the first byte picks the endpoint): a session's
/// config when it is created or changed, a CSV upload, a step count, a drawing to classify.
/// Whatever the body, the answer is a 2xx or a 4xx with a JSON error, never a 5xx.
pub fn playground(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let app = app();
    let answer = |method: &str, uri: &str, body: Vec<u8>| {
        let (status, bytes) = backprop_playground::server::answer(app, method, uri, body);
        assert!(status < 500, "{method} {uri}: status {status}");
        if status >= 400 {
            let v: Value = serde_json::from_slice(&bytes).expect("an error is JSON");
            assert!(v["error"].is_string(), "{v}");
        }
        (status, bytes)
    };
    let (status, bytes) = match pick % 4 {
        // the config of a new session
        0 => answer("POST", "/api/sessions", body.to_vec()),
        3 => answer("POST", "/api/digits/predict", body.to_vec()),
        _ => answer("POST", "/api/sessions", b"{\"points\": 40}".to_vec()),
    };
    if status != 201 {
        return;
    }
    let v: Value = serde_json::from_slice(&bytes).expect("a session is JSON");
    let id = v["id"].as_str().expect("a session has an id").to_string();
    match pick % 4 {
        1 => {
            answer("PUT", &format!("/api/sessions/{id}/config"), body.to_vec());
        }
        2 => {
            let problem = if pick & 4 == 0 {
                "classification"
            } else {
                "regression"
            };
            let uri = format!("/api/sessions/{id}/upload?problem={problem}");
            if answer("POST", &uri, body.to_vec()).0 == 200 {
                answer(
                    "POST",
                    &format!("/api/sessions/{id}/step?epochs=1"),
                    Vec::new(),
                );
            }
        }
        _ => {
            answer(
                "POST",
                &format!("/api/sessions/{id}/step?epochs=1"),
                Vec::new(),
            );
        }
    }
    answer("DELETE", &format!("/api/sessions/{id}"), Vec::new());
}
