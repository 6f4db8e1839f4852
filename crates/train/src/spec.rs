//! Model specifications: a list of layers in a JSON or TOML file, quick MLP flags, and
//! named presets. A spec is checked completely (layer types, shapes, explicit weights)
//! before anything trains.
//!
//! ```json
//! { "layers": [
//!     { "type": "linear", "out": 256, "init": "he_uniform" },
//!     { "type": "relu" },
//!     { "type": "dropout", "p": 0.2 },
//!     { "type": "linear", "out": 10 }
//! ] }
//! ```
//!
//! The same in TOML: `[[layers]]` tables with the same keys. A `linear` layer may set
//! `weight` (`[[...], ...]`, shape `[out, in]`) and `bias` values (`bias_values`) so that a
//! hand-worked network from a lecture can be loaded exactly.

use std::path::Path;

use backprop_nn::{
    Activation, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d,
    Init, LayerNorm, Linear, MaxPool2d, Maxout, Module, PRelu, Reshape, Sequential,
};
use backprop_tensor::{
    conv2d_output_shape, pool2d_output_shape, Element, Pool2dParams, Rng, Tensor,
};
use serde::{Deserialize, Serialize};

/// One layer of a spec. `type` selects the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// A fully connected layer.
    Linear {
        /// Input width, if stated; checked against the layer before.
        #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
        inputs: Option<usize>,
        /// Output width.
        out: usize,
        /// Whether it has a bias (default true).
        #[serde(default = "yes")]
        bias: bool,
        /// Initializer name (default `lecun_uniform`, PyTorch's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<String>,
        /// Explicit weights, `[out][in]`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight: Option<Vec<Vec<f64>>>,
        /// Explicit bias values, `[out]`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias_values: Option<Vec<f64>>,
    },
    /// Maxout with `pieces` affine maps per unit.
    Maxout {
        /// Input width, if stated; checked against the layer before.
        #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
        inputs: Option<usize>,
        /// Output width.
        out: usize,
        /// Affine maps per unit.
        pieces: usize,
    },
    /// ReLU.
    Relu,
    /// Logistic sigmoid.
    Sigmoid,
    /// tanh.
    Tanh,
    /// The identity.
    Identity,
    /// Unit step (½ at 0).
    Step,
    /// Sign.
    Sign,
    /// GELU (tanh form).
    Gelu,
    /// SiLU.
    Silu,
    /// Softmax over the features.
    Softmax,
    /// Leaky ReLU with a slope (default 0.1, the lecture's).
    LeakyRelu {
        /// Slope for x < 0.
        #[serde(default = "slope")]
        slope: f64,
    },
    /// ELU with α (default 1).
    Elu {
        /// α.
        #[serde(default = "one")]
        alpha: f64,
    },
    /// PReLU, one shared slope or one per feature.
    Prelu {
        /// One slope per feature instead of one shared slope.
        #[serde(default)]
        per_channel: bool,
        /// Initial slope (default 0.25).
        #[serde(default = "quarter")]
        init: f64,
    },
    /// Inverted dropout.
    Dropout {
        /// Drop probability.
        p: f64,
    },
    /// Layer normalization.
    LayerNorm,
    /// Batch normalization (per feature for flat inputs, per channel for images).
    BatchNorm,
    /// Flatten all axes after the batch axis.
    Flatten,
    /// 2-D convolution.
    Conv2d {
        /// Input channels, if stated; checked against the layer before.
        #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
        inputs: Option<usize>,
        /// Output channels.
        out: usize,
        /// Kernel size: `k` or `[kh, kw]`.
        kernel: Pair,
        /// Stride (default 1).
        #[serde(default = "pair_one")]
        stride: Pair,
        /// Zero padding (default 0).
        #[serde(default = "pair_zero")]
        padding: Pair,
        /// Dilation (default 1).
        #[serde(default = "pair_one")]
        dilation: Pair,
        /// Channel groups (default 1).
        #[serde(default = "one_usize")]
        groups: usize,
        /// Whether it has a bias (default true).
        #[serde(default = "yes")]
        bias: bool,
        /// Initializer name (default `lecun_uniform`, PyTorch's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<String>,
    },
    /// Max pooling.
    MaxPool2d {
        /// Window: `k` or `[kh, kw]`.
        kernel: Pair,
        /// Stride (default: the window).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<Pair>,
        /// Padding (default 0).
        #[serde(default = "pair_zero")]
        padding: Pair,
    },
    /// Average pooling.
    AvgPool2d {
        /// Window: `k` or `[kh, kw]`.
        kernel: Pair,
        /// Stride (default: the window).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<Pair>,
        /// Padding (default 0).
        #[serde(default = "pair_zero")]
        padding: Pair,
    },
    /// Global average pooling, `[C, H, W] → [C]`.
    GlobalAvgPool,
    /// Reshape each sample.
    Reshape {
        /// The new per-sample shape.
        shape: Vec<usize>,
    },
}

/// A size given as one number (square) or as `[height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pair {
    /// The same in both directions.
    One(usize),
    /// `[height, width]`.
    Two([usize; 2]),
}

impl Pair {
    /// `(height, width)`.
    pub fn hw(self) -> (usize, usize) {
        match self {
            Pair::One(k) => (k, k),
            Pair::Two([h, w]) => (h, w),
        }
    }
}

fn pair_one() -> Pair {
    Pair::One(1)
}
fn pair_zero() -> Pair {
    Pair::One(0)
}
fn one_usize() -> usize {
    1
}

fn yes() -> bool {
    true
}
fn slope() -> f64 {
    0.1
}
fn one() -> f64 {
    1.0
}
fn quarter() -> f64 {
    0.25
}

/// The layer types a spec may use.
pub const LAYER_TYPES: &[&str] = &[
    "linear",
    "maxout",
    "relu",
    "sigmoid",
    "tanh",
    "identity",
    "step",
    "sign",
    "gelu",
    "silu",
    "softmax",
    "leaky_relu",
    "elu",
    "prelu",
    "dropout",
    "layer_norm",
    "batch_norm",
    "flatten",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "global_avg_pool",
    "reshape",
];

/// The activations the `--activation` flag accepts.
pub const ACTIVATIONS: &[&str] = &[
    "relu",
    "sigmoid",
    "tanh",
    "identity",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "prelu",
    "step",
    "sign",
];

/// A model: its layers in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The layers.
    pub layers: Vec<LayerSpec>,
}

/// A spec problem, naming the layer where there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError(pub String);

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SpecError {}

fn parse_init(layer: usize, s: &str) -> Result<Init, SpecError> {
    Ok(match s {
        "lecun_uniform" | "default" => Init::LecunUniform,
        "he_uniform" | "kaiming_uniform" => Init::HeUniform,
        "he_normal" | "kaiming_normal" => Init::HeNormal,
        "xavier_uniform" | "glorot_uniform" => Init::XavierUniform,
        "xavier_normal" | "glorot_normal" => Init::XavierNormal,
        "zeros" => Init::Zeros,
        other => {
            return Err(SpecError(format!(
                "layer {layer} (linear): unknown init {other:?}; use lecun_uniform, he_uniform, he_normal, xavier_uniform, xavier_normal or zeros"
            )))
        }
    })
}

/// A built model and what building found out.
pub struct Built<E: Element = f32> {
    /// The network.
    pub model: Sequential<E>,
    /// Output width.
    pub outputs: usize,
}

impl ModelSpec {
    /// Parses a spec from JSON text.
    ///
    /// # Errors
    /// On malformed JSON or an invalid layer (named by its position, counted from 1).
    pub fn from_json(text: &str) -> Result<ModelSpec, SpecError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| SpecError(format!("not valid JSON: {e}")))?;
        Self::from_value(v)
    }

    /// Parses a spec from TOML text (`[[layers]]` tables).
    ///
    /// # Errors
    /// On malformed TOML or an invalid layer.
    pub fn from_toml(text: &str) -> Result<ModelSpec, SpecError> {
        let v: serde_json::Value =
            toml::from_str(text).map_err(|e| SpecError(format!("not valid TOML: {e}")))?;
        Self::from_value(v)
    }

    /// Reads a `.json` or `.toml` file.
    ///
    /// # Errors
    /// If the file cannot be read or parsed; the message names the file.
    pub fn from_file(path: &Path) -> Result<ModelSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SpecError(format!(
                "{}: cannot read the model spec: {e}",
                path.display()
            ))
        })?;
        let r = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Self::from_toml(&text),
            _ => Self::from_json(&text),
        };
        r.map_err(|e| SpecError(format!("{}: {}", path.display(), e.0)))
    }

    fn from_value(v: serde_json::Value) -> Result<ModelSpec, SpecError> {
        let obj = v
            .as_object()
            .ok_or_else(|| SpecError("a model spec is an object with a \"layers\" list".into()))?;
        if let Some(k) = obj.keys().find(|k| *k != "layers") {
            return Err(SpecError(format!(
                "unknown key {k:?}; a model spec has only \"layers\""
            )));
        }
        let layers = obj
            .get("layers")
            .and_then(|l| l.as_array())
            .ok_or_else(|| SpecError("the spec needs a \"layers\" list".into()))?;
        if layers.is_empty() {
            return Err(SpecError("the \"layers\" list is empty".into()));
        }
        let mut out = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let n = i + 1;
            let ty = l
                .get("type")
                .and_then(|t| t.as_str())
                .ok_or_else(|| SpecError(format!("layer {n}: missing \"type\"")))?;
            if !LAYER_TYPES.contains(&ty) {
                return Err(SpecError(format!(
                    "layer {n}: unknown layer type {ty:?}; known types: {}",
                    LAYER_TYPES.join(", ")
                )));
            }
            let spec: LayerSpec = serde_json::from_value(l.clone())
                .map_err(|e| SpecError(format!("layer {n} ({ty}): {e}")))?;
            out.push(spec);
        }
        Ok(ModelSpec { layers: out })
    }

    /// An MLP: `hidden` widths with `activation` (and dropout `p` after each, if non-zero),
    /// then a linear output layer of width `outputs`.
    ///
    /// # Errors
    /// If the activation name is unknown.
    pub fn mlp(
        hidden: &[usize],
        activation: &str,
        dropout: f64,
        outputs: usize,
    ) -> Result<ModelSpec, SpecError> {
        let act = activation_spec(activation)?;
        let mut layers = Vec::new();
        for &h in hidden {
            let init = if matches!(
                act,
                LayerSpec::Relu | LayerSpec::LeakyRelu { .. } | LayerSpec::Prelu { .. }
            ) {
                Some("he_uniform".to_string())
            } else {
                None
            };
            layers.push(LayerSpec::Linear {
                inputs: None,
                out: h,
                bias: true,
                init,
                weight: None,
                bias_values: None,
            });
            layers.push(act.clone());
            if dropout > 0.0 {
                layers.push(LayerSpec::Dropout { p: dropout });
            }
        }
        layers.push(LayerSpec::Linear {
            inputs: None,
            out: outputs,
            bias: true,
            init: None,
            weight: None,
            bias_values: None,
        });
        Ok(ModelSpec { layers })
    }

    /// A named preset: `mlp` (256-128 ReLU), `lenet5` or `cnn`; the input and output widths
    /// come from the data.
    ///
    /// # Errors
    /// If the name is unknown.
    pub fn preset(name: &str, outputs: usize) -> Result<ModelSpec, SpecError> {
        match name {
            "mlp" => Self::mlp(&[256, 128], "relu", 0.0, outputs),
            "lenet5" => Ok(Self::lenet5(outputs)),
            "cnn" => Ok(Self::cnn(outputs)),
            other => Err(SpecError(format!(
                "unknown model preset {other:?}; presets: mlp, lenet5, cnn (or give a .json/.toml spec file)"
            ))),
        }
    }

    /// The spec without explicit weight values (what a checkpoint's metadata keeps; the
    /// values live in the checkpoint's tensors).
    pub fn without_values(&self) -> ModelSpec {
        let layers = self
            .layers
            .iter()
            .map(|l| match l {
                LayerSpec::Linear {
                    inputs,
                    out,
                    bias,
                    init,
                    ..
                } => LayerSpec::Linear {
                    inputs: *inputs,
                    out: *out,
                    bias: *bias,
                    init: init.clone(),
                    weight: None,
                    bias_values: None,
                },
                other => other.clone(),
            })
            .collect();
        ModelSpec { layers }
    }

    /// Checks the spec against an input width and builds the network, seeded.
    ///
    /// # Errors
    /// As [`ModelSpec::build_shaped`].
    pub fn build<E: Element>(
        &self,
        inputs: usize,
        outputs: Option<usize>,
        seed: u64,
    ) -> Result<Built<E>, SpecError> {
        self.build_shaped(inputs, None, outputs, seed)
    }

    /// Checks the spec and builds the network, seeded. Samples arrive flat (`inputs`
    /// features); when a spatial layer (conv, pooling) meets flat features it sees them as
    /// the data's `image` shape `[C, H, W]` (a `reshape` layer is inserted), and when a
    /// linear layer meets images a `flatten` layer is inserted.
    ///
    /// # Errors
    /// If shapes do not chain, explicit weights have the wrong shape, a parameter is out of
    /// range, or (when `outputs` is given) the last layer's width differs from it. The
    /// message names the layer.
    pub fn build_shaped<E: Element>(
        &self,
        inputs: usize,
        image: Option<[usize; 3]>,
        outputs: Option<usize>,
        seed: u64,
    ) -> Result<Built<E>, SpecError> {
        let mut rng = Rng::seed(seed);
        let mut net = Sequential::<E>::new();
        let mut shape: Vec<usize> = vec![inputs];
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let mut name_for = |prefix: &'static str| {
            let c = counts.entry(prefix).or_insert(0);
            *c += 1;
            format!("{prefix}{c}")
        };
        for (i, l) in self.layers.iter().enumerate() {
            let n = i + 1;
            let err = |m: String| SpecError(format!("layer {n} ({}): {m}", layer_type(l)));
            let act = |a: Activation| -> Box<dyn Module<E>> { Box::new(a) };
            let flat_layer = matches!(l, LayerSpec::Linear { .. } | LayerSpec::Maxout { .. });
            let spatial = matches!(
                l,
                LayerSpec::Conv2d { .. }
                    | LayerSpec::MaxPool2d { .. }
                    | LayerSpec::AvgPool2d { .. }
                    | LayerSpec::GlobalAvgPool
            );
            if flat_layer && shape.len() > 1 {
                net.push(&name_for("flatten"), Box::new(Flatten));
                shape = vec![shape.iter().product()];
            }
            if spatial && shape.len() != 3 {
                match image {
                    Some(img) if shape.len() == 1 && img.iter().product::<usize>() == shape[0] => {
                        net.push(&name_for("reshape"), Box::new(Reshape(img.to_vec())));
                        shape = img.to_vec();
                    }
                    _ => {
                        return Err(err(format!(
                            "needs images [channels, height, width] but {}; add a reshape layer, e.g. {{\"type\": \"reshape\", \"shape\": [1, 28, 28]}}",
                            previous_shape(n, &shape)
                        )))
                    }
                }
            }
            let width = shape[0];
            let (name, layer): (String, Box<dyn Module<E>>) = match l {
                LayerSpec::Linear {
                    inputs: stated,
                    out,
                    bias,
                    init,
                    weight,
                    bias_values,
                } => {
                    check_width(*stated, width, n).map_err(err)?;
                    if *out == 0 {
                        return Err(err("out must be at least 1".into()));
                    }
                    let init = parse_init(n, init.as_deref().unwrap_or("lecun_uniform"))?;
                    let lin = if matches!(init, Init::LecunUniform) && *bias {
                        Linear::new(width, *out, &mut rng)
                    } else {
                        Linear::with_init(width, *out, init, *bias, &mut rng)
                    };
                    if let Some(w) = weight {
                        if w.len() != *out || w.iter().any(|r| r.len() != width) {
                            let cols = w.first().map_or(0, |r| r.len());
                            return Err(err(format!(
                                "weight is {}×{cols} but must be {out}×{width} (out × in)",
                                w.len()
                            )));
                        }
                        lin.weight.set_value(Tensor::from_vec(
                            w.iter().flatten().map(|&v| E::from_f64(v)).collect(),
                            &[*out, width],
                        ));
                    }
                    if let Some(b) = bias_values {
                        if !*bias {
                            return Err(err("bias_values given but bias is false".into()));
                        }
                        if b.len() != *out {
                            return Err(err(format!(
                                "bias_values has {} entries but out is {out}",
                                b.len()
                            )));
                        }
                        lin.bias.as_ref().unwrap().set_value(Tensor::from_vec(
                            b.iter().map(|&v| E::from_f64(v)).collect(),
                            &[*out],
                        ));
                    }
                    shape = vec![*out];
                    (name_for("fc"), Box::new(lin))
                }
                LayerSpec::Maxout {
                    inputs: stated,
                    out,
                    pieces,
                } => {
                    check_width(*stated, width, n).map_err(err)?;
                    if *out == 0 || *pieces == 0 {
                        return Err(err("out and pieces must be at least 1".into()));
                    }
                    let m = Maxout::new(width, *out, *pieces, &mut rng);
                    shape = vec![*out];
                    (name_for("maxout"), Box::new(m))
                }
                LayerSpec::Conv2d {
                    inputs: stated,
                    out,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    groups,
                    bias,
                    init,
                } => {
                    let c = shape[0];
                    if let Some(k) = stated {
                        if *k != c {
                            return Err(err(format!(
                                "expects {k} input channels but {}",
                                previous_shape(n, &shape)
                            )));
                        }
                    }
                    if *out == 0 || *groups == 0 || !c.is_multiple_of(*groups) || out % groups != 0
                    {
                        return Err(err(format!("{groups} groups must divide both {c} input and {out} output channels (and out must be at least 1)")));
                    }
                    let init = parse_init(n, init.as_deref().unwrap_or("lecun_uniform"))?;
                    let (s, p, d) = (stride.hw(), padding.hw(), dilation.hw());
                    let conv =
                        Conv2d::with_groups(c, *out, kernel.hw(), *groups, init, *bias, &mut rng)
                            .stride(s.0, s.1)
                            .padding(p.0, p.1)
                            .dilation(d.0, d.1);
                    let out_shape = conv2d_output_shape(
                        &[1, c, shape[1], shape[2]],
                        &conv.weight.shape(),
                        conv.params,
                    )
                    .map_err(|e| err(format!("{e}")))?;
                    shape = out_shape[1..].to_vec();
                    (name_for("conv"), Box::new(conv))
                }
                LayerSpec::MaxPool2d {
                    kernel,
                    stride,
                    padding,
                }
                | LayerSpec::AvgPool2d {
                    kernel,
                    stride,
                    padding,
                } => {
                    let p = Pool2dParams {
                        kernel: kernel.hw(),
                        stride: stride.unwrap_or(*kernel).hw(),
                        padding: padding.hw(),
                    };
                    let out_shape = pool2d_output_shape(&[1, shape[0], shape[1], shape[2]], p)
                        .map_err(|e| err(format!("{e}")))?;
                    shape = out_shape[1..].to_vec();
                    if matches!(l, LayerSpec::MaxPool2d { .. }) {
                        (name_for("pool"), Box::new(MaxPool2d(p)))
                    } else {
                        (name_for("avgpool"), Box::new(AvgPool2d(p)))
                    }
                }
                LayerSpec::GlobalAvgPool => {
                    shape = vec![shape[0]];
                    (name_for("gap"), Box::new(GlobalAvgPool2d))
                }
                LayerSpec::Reshape { shape: to } => {
                    if to.is_empty()
                        || to.iter().product::<usize>() != shape.iter().product::<usize>()
                    {
                        return Err(err(format!(
                            "cannot reshape {} into {to:?}",
                            previous_shape(n, &shape)
                        )));
                    }
                    shape = to.clone();
                    (name_for("reshape"), Box::new(Reshape(to.clone())))
                }
                LayerSpec::Relu => (name_for("relu"), act(Activation::Relu)),
                LayerSpec::Sigmoid => (name_for("sigmoid"), act(Activation::Sigmoid)),
                LayerSpec::Tanh => (name_for("tanh"), act(Activation::Tanh)),
                LayerSpec::Identity => (name_for("identity"), act(Activation::Identity)),
                LayerSpec::Step => (name_for("step"), act(Activation::Step)),
                LayerSpec::Sign => (name_for("sign"), act(Activation::Sign)),
                LayerSpec::Gelu => (name_for("gelu"), act(Activation::Gelu)),
                LayerSpec::Silu => (name_for("silu"), act(Activation::Silu)),
                LayerSpec::Softmax => (name_for("softmax"), act(Activation::Softmax)),
                LayerSpec::LeakyRelu { slope } => {
                    (name_for("leaky_relu"), act(Activation::LeakyRelu(*slope)))
                }
                LayerSpec::Elu { alpha } => (name_for("elu"), act(Activation::Elu(*alpha))),
                LayerSpec::Prelu { per_channel, init } => {
                    let p = if *per_channel {
                        PRelu::per_channel(width, *init)
                    } else {
                        PRelu::shared(*init)
                    };
                    (name_for("prelu"), Box::new(p))
                }
                LayerSpec::Dropout { p } => {
                    if !(0.0..1.0).contains(p) {
                        return Err(err(format!("p = {p} must be in [0, 1)")));
                    }
                    (
                        name_for("dropout"),
                        Box::new(Dropout::new(*p, rng.next_u64())),
                    )
                }
                LayerSpec::LayerNorm => (
                    name_for("ln"),
                    Box::new(LayerNorm::new(*shape.last().unwrap())),
                ),
                LayerSpec::BatchNorm => match shape.len() {
                    1 => (name_for("bn"), Box::new(BatchNorm1d::new(width))),
                    3 => (name_for("bn"), Box::new(BatchNorm2d::new(width))),
                    _ => {
                        return Err(err(format!(
                            "works on features or images, not {}",
                            previous_shape(n, &shape)
                        )))
                    }
                },
                LayerSpec::Flatten => {
                    shape = vec![shape.iter().product()];
                    (name_for("flatten"), Box::new(Flatten))
                }
            };
            net.push(&name, layer);
        }
        if shape.len() != 1 {
            return Err(SpecError(format!("the last layer gives samples of shape {shape:?}; end with flatten and a linear layer")));
        }
        let width = shape[0];
        if let Some(o) = outputs {
            if o != width {
                return Err(SpecError(format!(
                    "the last layer gives {width} outputs but the data needs {o} (one per class, or one per regression target)"
                )));
            }
        }
        Ok(Built {
            model: net,
            outputs: width,
        })
    }

    /// LeNet-5 as in the lecture figure, with ReLU and max pooling: conv 6@5×5 (padding 2
    /// for 28×28 inputs, so the maps are 28×28 as in the original 32×32 input), pool 2,
    /// conv 16@5×5, pool 2, then 120, 84 and the outputs.
    pub fn lenet5(outputs: usize) -> ModelSpec {
        let conv = |out, pad| LayerSpec::Conv2d {
            inputs: None,
            out,
            kernel: Pair::One(5),
            stride: Pair::One(1),
            padding: Pair::One(pad),
            dilation: Pair::One(1),
            groups: 1,
            bias: true,
            init: None,
        };
        let pool = || LayerSpec::MaxPool2d {
            kernel: Pair::One(2),
            stride: None,
            padding: Pair::One(0),
        };
        let lin = |out| LayerSpec::Linear {
            inputs: None,
            out,
            bias: true,
            init: None,
            weight: None,
            bias_values: None,
        };
        ModelSpec {
            layers: vec![
                conv(6, 2),
                LayerSpec::Relu,
                pool(),
                conv(16, 0),
                LayerSpec::Relu,
                pool(),
                LayerSpec::Flatten,
                lin(120),
                LayerSpec::Relu,
                lin(84),
                LayerSpec::Relu,
                lin(outputs),
            ],
        }
    }

    /// A small modern CNN of conv-BN-ReLU blocks: 16, 32 and 64 channels of 3×3
    /// convolutions with 2×2 max pooling after the first two, then a 128-unit ReLU layer and
    /// the outputs.
    pub fn cnn(outputs: usize) -> ModelSpec {
        let conv = |out| LayerSpec::Conv2d {
            inputs: None,
            out,
            kernel: Pair::One(3),
            stride: Pair::One(1),
            padding: Pair::One(1),
            dilation: Pair::One(1),
            groups: 1,
            bias: false,
            init: Some("he_uniform".into()),
        };
        let pool = || LayerSpec::MaxPool2d {
            kernel: Pair::One(2),
            stride: None,
            padding: Pair::One(0),
        };
        let lin = |out, init: Option<&str>| LayerSpec::Linear {
            inputs: None,
            out,
            bias: true,
            init: init.map(str::to_string),
            weight: None,
            bias_values: None,
        };
        ModelSpec {
            layers: vec![
                conv(16),
                LayerSpec::BatchNorm,
                LayerSpec::Relu,
                pool(),
                conv(32),
                LayerSpec::BatchNorm,
                LayerSpec::Relu,
                pool(),
                conv(64),
                LayerSpec::BatchNorm,
                LayerSpec::Relu,
                LayerSpec::Flatten,
                lin(128, Some("he_uniform")),
                LayerSpec::Relu,
                lin(outputs, None),
            ],
        }
    }
}

/// Checks a layer's stated input width against the width that reaches it.
fn check_width(stated: Option<usize>, width: usize, n: usize) -> Result<(), String> {
    match stated {
        Some(k) if k != width => Err(format!("expects {k} inputs but {}", previous(n, width))),
        _ => Ok(()),
    }
}

fn previous_shape(n: usize, shape: &[usize]) -> String {
    if n == 1 {
        format!("the data gives samples of shape {shape:?}")
    } else {
        format!("layer {} gives {shape:?}", n - 1)
    }
}

fn previous(n: usize, width: usize) -> String {
    if n == 1 {
        format!("the data has {width} features")
    } else {
        format!("layer {} gives {width}", n - 1)
    }
}

fn layer_type(l: &LayerSpec) -> String {
    serde_json::to_value(l)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// The spec layer for an activation flag value.
///
/// # Errors
/// If the name is unknown.
pub fn activation_spec(name: &str) -> Result<LayerSpec, SpecError> {
    Ok(match name {
        "relu" => LayerSpec::Relu,
        "sigmoid" => LayerSpec::Sigmoid,
        "tanh" => LayerSpec::Tanh,
        "identity" | "linear" => LayerSpec::Identity,
        "leaky_relu" | "leaky-relu" => LayerSpec::LeakyRelu { slope: 0.1 },
        "elu" => LayerSpec::Elu { alpha: 1.0 },
        "gelu" => LayerSpec::Gelu,
        "silu" | "swish" => LayerSpec::Silu,
        "prelu" => LayerSpec::Prelu {
            per_channel: false,
            init: 0.25,
        },
        "step" => LayerSpec::Step,
        "sign" => LayerSpec::Sign,
        other => {
            return Err(SpecError(format!(
                "unknown activation {other:?}; choose one of {}",
                ACTIVATIONS.join(", ")
            )))
        }
    })
}
