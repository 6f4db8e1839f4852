//! A network as an ONNX graph: one walk over the modules, asking each what it is
//! ([`Module::as_linear`], [`Module::activation`], [`Module::as_any`]), emitting standard
//! operators of the default domain. Weights become initializers under their state-dict
//! names (`fc1.weight`), so the graph and a `model.safetensors` name them alike.
//!
//! | layer | ONNX operators |
//! |---|---|
//! | linear | `Gemm` (`transB = 1`) |
//! | conv | `Conv` |
//! | max / average / global average pool | `MaxPool`, `AveragePool` (`count_include_pad = 1`), `GlobalAveragePool` + `Flatten` |
//! | batch norm | `BatchNormalization` (running statistics) |
//! | layer norm | `LayerNormalization` (last axis) |
//! | flatten, reshape | `Flatten`, `Reshape` (batch axis kept) |
//! | dropout | nothing (the identity in evaluation) |
//! | maxout | `Gemm`, `Reshape` to `[N, out, k]`, `ReduceMax` over `k` |
//! | residual | the block, then `Add` |
//! | sigmoid, tanh, ReLU, leaky ReLU, ELU, softplus, sign, softmax | the operator of that name (softmax over the last axis) |
//! | PReLU | `PRelu` |
//! | step | `(Sign(x) + 1) · ½` |
//! | GELU (tanh form) | `½x(1 + Tanh(√(2/π)(x + 0.044715x³)))` from `Mul`, `Add`, `Tanh` |
//! | SiLU | `x · Sigmoid(x)` |
//! | Elman RNN (tanh, ReLU), LSTM, GRU | `RNN`, `LSTM`, `GRU`, one per stacked layer (see [`crate::recurrent`]) |
//!
//! Refused, with [`ExportError::Inexpressible`] naming the layer and the reason: a Jordan
//! layer (its output fed back through a decaying context is no ONNX recurrent operator) and
//! a `stateful` recurrent layer (its state carried from call to call has no place in a
//! stateless graph).

use std::collections::BTreeMap;
use std::fmt;

use backprop_autograd::{no_grad, Var};
use backprop_nn::{
    Activation, AvgPool2d, BatchNorm, Dropout, Flatten, GlobalAvgPool2d, Jordan, LayerNorm,
    MaxPool2d, Maxout, Mode, Module, PRelu, Recurrent, Reshape, Residual, Sequential,
};
use backprop_tensor::Tensor;
use prost::Message;

use crate::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, AttributeType, DataType, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// The ONNX operator set the graph is written against.
pub const OPSET: i64 = 21;
/// The ONNX IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 10;
/// The graph input's name: `[batch, features]` floats.
pub const INPUT: &str = "input";
/// The graph output's name: the network's outputs, `[batch, outputs]`.
pub const LOGITS: &str = "logits";
/// The optional second output: softmax of the logits over the last axis.
pub const PROBABILITIES: &str = "probabilities";
/// The symbolic name of the batch dimension.
pub const BATCH: &str = "batch";

/// Why a network cannot be exported.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportError {
    /// A layer has no ONNX form here; `layer` is its path in the network (`res1.f.fc2`).
    Unsupported {
        /// Its path.
        layer: String,
        /// Its description ([`Module::kind`]).
        kind: String,
    },
    /// A layer of a known type in a configuration ONNX's operators cannot compute exactly
    /// (a Jordan layer, a stateful recurrent layer); `reason` says why.
    Inexpressible {
        /// Its path.
        layer: String,
        /// Its description ([`Module::kind`]).
        kind: String,
        /// Why it has no exact ONNX form.
        reason: String,
    },
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Unsupported { layer, kind } => {
                write!(f, "layer {layer} ({kind}) has no ONNX export")
            }
            ExportError::Inexpressible {
                layer,
                kind,
                reason,
            } => write!(
                f,
                "layer {layer} ({kind}) cannot be exported to ONNX: {reason}"
            ),
        }
    }
}
impl std::error::Error for ExportError {}

/// What to write besides the graph.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Also output [`PROBABILITIES`] (softmax of the logits), for classifiers.
    pub probabilities: bool,
    /// Entries for the model's `metadata_props` (class names, input encoding, ...).
    pub metadata: BTreeMap<String, String>,
    /// The graph's name.
    pub name: String,
}

/// Exports `model`, which takes samples of shape `sample_shape` (without the batch axis),
/// as an ONNX model with input [`INPUT`] `[batch, ...sample_shape]` and output [`LOGITS`]
/// (and [`PROBABILITIES`] if asked for), the batch dimension symbolic.
///
/// # Errors
/// If a layer has no ONNX form ([`ExportError::Unsupported`], naming the layer).
///
/// ```
/// use backprop_nn::{Activation, Linear, Module, Sequential};
/// use backprop_onnx::{export, ExportOptions};
/// use backprop_tensor::Rng;
/// let mut rng = Rng::seed(0);
/// let net = Sequential::<f32>::new()
///     .add("fc1", Linear::new(4, 8, &mut rng))
///     .add("relu1", Activation::Relu)
///     .add("fc2", Linear::new(8, 3, &mut rng));
/// let model = export(&net, &[4], &ExportOptions::default()).unwrap();
/// let graph = model.graph.as_ref().unwrap();
/// let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
/// assert_eq!(ops, ["Gemm", "Relu", "Gemm", "Identity"]);
/// assert_eq!(graph.initializer[0].name, "fc1.weight");
/// ```
pub fn export(
    model: &dyn Module<f32>,
    sample_shape: &[usize],
    options: &ExportOptions,
) -> Result<ModelProto, ExportError> {
    let mut g = Builder::default();
    let mut shape = sample_shape.to_vec();
    let last = g.module(model, "", INPUT.to_string(), &mut shape)?;
    g.push("Identity", "output", &[&last], vec![], LOGITS.into());
    let mut outputs = vec![value_info(LOGITS, &shape)];
    if options.probabilities {
        let axis = int_attr("axis", -1);
        g.push(
            "Softmax",
            "probabilities",
            &[LOGITS],
            vec![axis],
            PROBABILITIES.into(),
        );
        outputs.push(value_info(PROBABILITIES, &shape));
    }
    let graph = GraphProto {
        node: g.nodes,
        name: if options.name.is_empty() {
            "backprop".into()
        } else {
            options.name.clone()
        },
        initializer: g.inits,
        input: vec![value_info(INPUT, sample_shape)],
        output: outputs,
        ..Default::default()
    };
    let metadata_props = options
        .metadata
        .iter()
        .map(|(k, v)| StringStringEntryProto {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "backprop".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props,
        ..Default::default()
    })
}

/// The model's protobuf bytes, as an `.onnx` file holds them.
pub fn to_bytes(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// A float tensor `[batch, ...shape]` with a symbolic batch dimension.
fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
    let mut dim = vec![Dimension {
        value: Some(dimension::Value::DimParam(BATCH.into())),
        ..Default::default()
    }];
    dim.extend(shape.iter().map(|&d| Dimension {
        value: Some(dimension::Value::DimValue(d as i64)),
        ..Default::default()
    }));
    let tensor = type_proto::Tensor {
        elem_type: DataType::Float as i32,
        shape: Some(TensorShapeProto { dim }),
    };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

pub(crate) fn ints_attr(name: &str, ints: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.iter().map(|&v| v as i64).collect(),
        ..Default::default()
    }
}

pub(crate) fn float_attr(name: &str, f: f64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f: f as f32,
        ..Default::default()
    }
}

/// Nodes and initializers so far, with fresh names for intermediate values.
#[derive(Default)]
pub(crate) struct Builder {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    count: usize,
}

impl Builder {
    /// Appends `op(inputs)` named `node`; returns its output's name (`out`, or a fresh one).
    pub(crate) fn push(
        &mut self,
        op: &str,
        node: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
        out: String,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: format!("{node}#{}", self.nodes.len()),
            op_type: op.into(),
            attribute,
            ..Default::default()
        });
        out
    }

    /// Appends `op(inputs)` named `node` with several outputs (`""` for one left out).
    pub(crate) fn push_outputs(
        &mut self,
        op: &str,
        node: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
        outputs: &[&str],
    ) {
        self.push(op, node, inputs, attribute, String::new());
        let n = self.nodes.last_mut().expect("just pushed");
        n.output = outputs.iter().map(|s| s.to_string()).collect();
    }

    /// A fresh value name for an output of `op` at `node`.
    pub(crate) fn fresh(&mut self, op: &str, node: &str) -> String {
        self.count += 1;
        format!("{}/{op}_{}", node.trim_end_matches('.'), self.count)
    }

    /// `op(inputs)` into a fresh value.
    pub(crate) fn op(
        &mut self,
        op: &str,
        node: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        let out = self.fresh(op, node);
        self.push(op, node, inputs, attrs, out)
    }

    /// A float initializer; returns its name.
    pub(crate) fn init(&mut self, name: &str, t: &Tensor<f32>) -> String {
        self.inits.push(TensorProto {
            dims: t.shape().iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            name: name.into(),
            raw_data: t.data().iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.into()
    }

    /// A scalar float constant.
    pub(crate) fn scalar(&mut self, node: &str, what: &str, v: f32) -> String {
        self.init(&format!("{node}{what}"), &Tensor::from_vec(vec![v], &[]))
    }

    /// A 1-D int64 initializer (shapes, axes).
    pub(crate) fn ints(&mut self, name: &str, vals: &[i64]) -> String {
        self.inits.push(TensorProto {
            dims: vec![vals.len() as i64],
            data_type: DataType::Int64 as i32,
            name: name.into(),
            raw_data: vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name.into()
    }

    /// Emits `m` applied to `x` (per-sample shape `shape`, updated); `path` is its
    /// parameter prefix (`""`, `fc1.`, `res1.f.`). Returns the output's name.
    fn module(
        &mut self,
        m: &dyn Module<f32>,
        path: &str,
        x: String,
        shape: &mut Vec<usize>,
    ) -> Result<String, ExportError> {
        let out_shape = sample_output_shape(m, shape);
        let y = if let Some(a) = m.activation() {
            self.activation(a, path, &x)
        } else if let Some(l) = m.as_linear() {
            let mut inputs = vec![x, self.init(&format!("{path}weight"), &l.weight.value())];
            if let Some(b) = &l.bias {
                inputs.push(self.init(&format!("{path}bias"), &b.value()));
            }
            let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            self.op("Gemm", path, &inputs, vec![int_attr("transB", 1)])
        } else if let Some(c) = m.as_conv2d() {
            let w = c.weight.value();
            let mut inputs = vec![x, self.init(&format!("{path}weight"), &w)];
            if let Some(b) = &c.bias {
                inputs.push(self.init(&format!("{path}bias"), &b.value()));
            }
            let p = c.params;
            let attrs = vec![
                ints_attr("kernel_shape", &w.shape()[2..]),
                ints_attr("strides", &[p.stride.0, p.stride.1]),
                ints_attr(
                    "pads",
                    &[p.padding.0, p.padding.1, p.padding.0, p.padding.1],
                ),
                ints_attr("dilations", &[p.dilation.0, p.dilation.1]),
                int_attr("group", p.groups as i64),
            ];
            let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            self.op("Conv", path, &inputs, attrs)
        } else {
            let any = m.as_any().ok_or_else(|| unsupported(m, path))?;
            self.other(m, any, path, x, shape, &out_shape)?
        };
        *shape = out_shape;
        Ok(y)
    }

    /// The layers known by their concrete type.
    fn other(
        &mut self,
        m: &dyn Module<f32>,
        any: &dyn std::any::Any,
        path: &str,
        x: String,
        shape: &[usize],
        out_shape: &[usize],
    ) -> Result<String, ExportError> {
        if any.is::<Sequential<f32>>() || any.is::<Residual<f32>>() {
            let mut h = x.clone();
            let mut s = shape.to_vec();
            for (name, child) in m.children() {
                h = self.module(child, &format!("{path}{name}."), h, &mut s)?;
            }
            if any.is::<Residual<f32>>() {
                h = self.op("Add", path, &[&x, &h], vec![]);
            }
            return Ok(h);
        }
        if any.is::<Dropout>() {
            return Ok(x);
        }
        if any.is::<Flatten>() {
            return Ok(self.op("Flatten", path, &[&x], vec![int_attr("axis", 1)]));
        }
        if let Some(r) = any.downcast_ref::<Reshape>() {
            let mut dims = vec![0i64];
            dims.extend(r.0.iter().map(|&d| d as i64));
            let s = self.ints(&format!("{path}shape"), &dims);
            return Ok(self.op("Reshape", path, &[&x, &s], vec![]));
        }
        if let Some(p) = any.downcast_ref::<MaxPool2d>() {
            return Ok(self.op("MaxPool", path, &[&x], pool_attrs(p.0)));
        }
        if let Some(p) = any.downcast_ref::<AvgPool2d>() {
            let mut attrs = pool_attrs(p.0);
            attrs.push(int_attr("count_include_pad", 1));
            return Ok(self.op("AveragePool", path, &[&x], attrs));
        }
        if any.is::<GlobalAvgPool2d>() {
            let y = self.op("GlobalAveragePool", path, &[&x], vec![]);
            return Ok(self.op("Flatten", path, &[&y], vec![int_attr("axis", 1)]));
        }
        if let Some(bn) = any.downcast_ref::<BatchNorm<f32>>() {
            let names = ["weight", "bias", "running_mean", "running_var"];
            let vars = [&bn.weight, &bn.bias, &bn.running_mean, &bn.running_var];
            let mut inputs = vec![x];
            for (n, v) in names.iter().zip(vars) {
                inputs.push(self.init(&format!("{path}{n}"), &v.value()));
            }
            let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            let attrs = vec![float_attr("epsilon", bn.eps())];
            return Ok(self.op("BatchNormalization", path, &inputs, attrs));
        }
        if let Some(ln) = any.downcast_ref::<LayerNorm<f32>>() {
            let w = self.init(&format!("{path}weight"), &ln.weight.value());
            let b = self.init(&format!("{path}bias"), &ln.bias.value());
            let attrs = vec![int_attr("axis", -1), float_attr("epsilon", ln.eps())];
            return Ok(self.op("LayerNormalization", path, &[&x, &w, &b], attrs));
        }
        if let Some(mx) = any.downcast_ref::<Maxout<f32>>() {
            let w = self.init(&format!("{path}weight"), &mx.weight.value());
            let b = self.init(&format!("{path}bias"), &mx.bias.value());
            let z = self.op("Gemm", path, &[&x, &w, &b], vec![int_attr("transB", 1)]);
            let k = mx.pieces() as i64;
            let s = self.ints(&format!("{path}pieces_shape"), &[0, out_shape[0] as i64, k]);
            let z = self.op("Reshape", path, &[&z, &s], vec![]);
            let axes = self.ints(&format!("{path}pieces_axis"), &[-1]);
            return Ok(self.op(
                "ReduceMax",
                path,
                &[&z, &axes],
                vec![int_attr("keepdims", 0)],
            ));
        }
        if let Some(r) = any.downcast_ref::<Recurrent<f32>>() {
            return crate::recurrent::recurrent(self, r, path, x);
        }
        if any.is::<Jordan<f32>>() {
            return Err(ExportError::Inexpressible {
                layer: layer_name(path),
                kind: m.kind(),
                reason: "a Jordan network feeds its output back through a decaying context, \
                         which none of ONNX's recurrent operators (RNN, LSTM, GRU) computes"
                    .into(),
            });
        }
        if let Some(p) = any.downcast_ref::<PRelu<f32>>() {
            let w = p.weight.value();
            let c = w.numel();
            // one slope per channel (axis 1) broadcasts as [C, 1, ..., 1]
            let mut s = vec![c];
            if c > 1 {
                s.extend(std::iter::repeat_n(1, shape.len() - 1));
            }
            let slope = self.init(&format!("{path}weight"), &w.reshape(&s));
            return Ok(self.op("PRelu", path, &[&x, &slope], vec![]));
        }
        Err(unsupported(m, path))
    }

    fn activation(&mut self, a: Activation, path: &str, x: &str) -> String {
        let unary = |g: &mut Self, op: &str, attrs| g.op(op, path, &[x], attrs);
        match a {
            Activation::Identity => x.to_string(),
            Activation::Sign => unary(self, "Sign", vec![]),
            Activation::Sigmoid => unary(self, "Sigmoid", vec![]),
            Activation::Tanh => unary(self, "Tanh", vec![]),
            Activation::Relu => unary(self, "Relu", vec![]),
            Activation::Softplus => unary(self, "Softplus", vec![]),
            Activation::LeakyRelu(s) => unary(self, "LeakyRelu", vec![float_attr("alpha", s)]),
            Activation::Elu(al) => unary(self, "Elu", vec![float_attr("alpha", al)]),
            Activation::Softmax => unary(self, "Softmax", vec![int_attr("axis", -1)]),
            Activation::Step => {
                let s = unary(self, "Sign", vec![]);
                let one = self.scalar(path, "one", 1.0);
                let half = self.scalar(path, "half", 0.5);
                let t = self.op("Add", path, &[&s, &one], vec![]);
                self.op("Mul", path, &[&t, &half], vec![])
            }
            Activation::Silu => {
                let s = unary(self, "Sigmoid", vec![]);
                self.op("Mul", path, &[x, &s], vec![])
            }
            Activation::Gelu => self.gelu(path, x),
        }
    }

    /// ½x(1 + tanh(√(2/π)(x + 0.044715x³))), as the layer computes it.
    fn gelu(&mut self, path: &str, x: &str) -> String {
        let c = self.scalar(path, "cubic", 0.044715);
        let k = self.scalar(
            path,
            "sqrt_2_over_pi",
            (2.0 / std::f64::consts::PI).sqrt() as f32,
        );
        let one = self.scalar(path, "one", 1.0);
        let half = self.scalar(path, "half", 0.5);
        let x2 = self.op("Mul", path, &[x, x], vec![]);
        let x3 = self.op("Mul", path, &[&x2, x], vec![]);
        let cx3 = self.op("Mul", path, &[&x3, &c], vec![]);
        let inner = self.op("Add", path, &[x, &cx3], vec![]);
        let scaled = self.op("Mul", path, &[&inner, &k], vec![]);
        let t = self.op("Tanh", path, &[&scaled], vec![]);
        let t1 = self.op("Add", path, &[&t, &one], vec![]);
        let hx = self.op("Mul", path, &[x, &half], vec![]);
        self.op("Mul", path, &[&hx, &t1], vec![])
    }
}

fn pool_attrs(p: backprop_tensor::Pool2dParams) -> Vec<AttributeProto> {
    vec![
        ints_attr("kernel_shape", &[p.kernel.0, p.kernel.1]),
        ints_attr("strides", &[p.stride.0, p.stride.1]),
        ints_attr(
            "pads",
            &[p.padding.0, p.padding.1, p.padding.0, p.padding.1],
        ),
    ]
}

fn unsupported(m: &dyn Module<f32>, path: &str) -> ExportError {
    ExportError::Unsupported {
        layer: layer_name(path),
        kind: m.kind(),
    }
}

/// A layer's path as messages name it: `res1.f.fc2`, or `(the model)` for the root.
pub(crate) fn layer_name(path: &str) -> String {
    let layer = path.trim_end_matches('.');
    if layer.is_empty() {
        "(the model)".into()
    } else {
        layer.into()
    }
}

/// The per-sample output shape of `m` on per-sample input `shape`, from one evaluation
/// pass on a zero sample (evaluation mode changes no running statistics).
fn sample_output_shape(m: &dyn Module<f32>, shape: &[usize]) -> Vec<usize> {
    let mut full = vec![1];
    full.extend(shape);
    let y = no_grad(|| m.forward(&Var::constant(Tensor::zeros(&full)), Mode::Eval));
    y.shape()[1..].to_vec()
}
