//! Model specifications: a list of layer configurations in a JSON or TOML file, quick MLP
//! flags, and named presets. A spec is checked completely (layer types, shapes, explicit
//! weights) before anything trains.
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
//! The same in TOML: `[[layers]]` tables with the same keys. Each layer's keys are its
//! configuration struct's fields, defined beside the layer ([`LinearConfig`] in
//! `layers.rs`, [`Conv2dConfig`] in `conv.rs`, ...); an activation layer is
//! `{"type": <name>}` with its parameter if it has one (`slope`, `alpha`), read through
//! [`Activation::ALL`]. A `linear` layer may set `weight` (`[[...], ...]`, shape `[out, in]`)
//! and `bias_values` so that a hand-worked network from a lecture loads exactly.

use std::fmt;
use std::path::{Path, PathBuf};

use backprop_tensor::{Element, Rng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::activation::{Activation, PReluConfig};
use crate::conv::{
    AvgPool2dConfig, Conv2dConfig, GlobalAvgPoolConfig, MaxPool2dConfig, ReshapeConfig,
};
use crate::conv1d::Conv1dConfig;
use crate::jordan::JordanConfig;
use crate::layers::{
    BatchNormConfig, DropoutConfig, FlattenConfig, LayerNormConfig, LinearConfig, MaxoutConfig,
};
use crate::module::{Module, Sequential};
use crate::rbf::RbfConfig;
use crate::recurrent::{GruConfig, LstmConfig, RnnConfig, RnnReluConfig};
use crate::{Flatten, Reshape};

/// The per-sample input a layer type takes; a spec inserts a flatten or reshape layer in
/// front of a layer that needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Any shape.
    Any,
    /// Flat features `[in]` (a flatten layer goes in front of images).
    Flat,
    /// Images `[C, H, W]` (flat data is seen as the data's image shape).
    Image,
    /// Sequences `[T, F]` (flat data with a one-channel image shape `[1, H, W]` is seen as H
    /// steps of W features: row by row).
    Sequence,
}

/// A layer's configuration: serde fields with defaults, and a checked build.
pub trait LayerConfig: Serialize + DeserializeOwned {
    /// Its `type` in a spec.
    const TYPE: &'static str;
    /// The prefix of its name in a built model: `fc` gives `fc1`, `fc2`, ...
    const PREFIX: &'static str;
    /// The per-sample input it takes.
    const INPUT: InputKind = InputKind::Any;

    /// Checks the per-sample input shape (without the batch axis) and builds the layer,
    /// drawing any random values from `rng`; returns it with its per-sample output shape.
    ///
    /// # Errors
    /// If the shape does not fit or a setting is out of range.
    #[allow(clippy::type_complexity)]
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<(Box<dyn Module<E>>, Vec<usize>), LayerError>;

    /// Checks the per-sample input shape and works out the output shape and the number of
    /// parameters without allocating anything: what a model's memory estimate reads before
    /// [`LayerConfig::build`] runs.
    ///
    /// # Errors
    /// As [`LayerConfig::build`], and if a size does not fit in 64 bits.
    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError>;
}

/// What a layer makes of its input, worked out without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPlan {
    /// The per-sample output shape.
    pub out_shape: Vec<usize>,
    /// Trainable parameters.
    pub params: u64,
}

impl LayerPlan {
    /// A layer with `params` parameters giving `out_shape`.
    pub fn new(out_shape: Vec<usize>, params: u64) -> LayerPlan {
        LayerPlan { out_shape, params }
    }
}

/// The product of `sizes`, or an error if it does not fit in 64 bits (a size read from a
/// user's spec is never multiplied unchecked).
///
/// ```
/// assert_eq!(backprop_nn::spec::count(&[3, 4, 5]).unwrap(), 60);
/// assert!(backprop_nn::spec::count(&[1 << 40, 1 << 40]).is_err());
/// ```
///
/// # Errors
/// On overflow.
pub fn count(sizes: &[usize]) -> Result<u64, LayerError> {
    sizes
        .iter()
        .try_fold(1u64, |acc, &s| acc.checked_mul(s as u64))
        .ok_or_else(|| LayerError::Invalid(format!("sizes {sizes:?} multiply to more than 2^64")))
}

/// `a + b` for parameter counts, or an error on overflow.
pub(crate) fn add_counts(a: u64, b: u64) -> Result<u64, LayerError> {
    a.checked_add(b)
        .ok_or_else(|| LayerError::Invalid("the parameter count exceeds 2^64".into()))
}

/// Why a layer configuration cannot be built on the input that reaches it.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerError {
    /// The input width does not fit; `expects` reads "expects 3 inputs".
    Width {
        /// What the layer expects.
        expects: String,
        /// The width that reaches it.
        width: usize,
    },
    /// The per-sample input shape does not fit; `expects` reads "needs images ...".
    Shape {
        /// What the layer expects.
        expects: String,
        /// The shape that reaches it.
        shape: Vec<usize>,
    },
    /// A setting is out of range or inconsistent.
    Invalid(String),
}

impl LayerError {
    /// The message for layer `n` (from 1) of a spec, naming what reaches it: the data or
    /// layer `n − 1`.
    pub fn in_spec(&self, n: usize) -> String {
        match self {
            LayerError::Width { expects, width } if n == 1 => {
                format!("{expects} but the data has {width} features")
            }
            LayerError::Width { expects, width } => {
                format!("{expects} but layer {} gives {width}", n - 1)
            }
            LayerError::Shape { expects, shape } => {
                format!("{expects} but {}", previous_shape(n, shape))
            }
            LayerError::Invalid(m) => m.clone(),
        }
    }
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerError::Width { expects, width } => write!(f, "{expects} but gets {width}"),
            LayerError::Shape { expects, shape } => write!(f, "{expects} but gets {shape:?}"),
            LayerError::Invalid(m) => f.write_str(m),
        }
    }
}
impl std::error::Error for LayerError {}

fn previous_shape(n: usize, shape: &[usize]) -> String {
    if n == 1 {
        format!("the data gives samples of shape {shape:?}")
    } else {
        format!("layer {} gives {shape:?}", n - 1)
    }
}

/// A spec problem, naming the layer or file where there is one.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecError {
    /// The text is not a valid spec, a name is unknown, or the model does not fit the data.
    Invalid(String),
    /// Layer `index` (from 1) is invalid or does not fit the one before.
    Layer {
        /// Its position, from 1.
        index: usize,
        /// Its `type`, if it has one.
        kind: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A spec file cannot be read or holds an invalid spec.
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: Box<SpecError>,
    },
}

impl SpecError {
    fn layer(index: usize, kind: &str, message: String) -> SpecError {
        SpecError::Layer {
            index,
            kind: Some(kind.to_string()),
            message,
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::Invalid(m) => f.write_str(m),
            SpecError::Layer {
                index,
                kind: Some(k),
                message,
            } => write!(f, "layer {index} ({k}): {message}"),
            SpecError::Layer { index, message, .. } => write!(f, "layer {index}: {message}"),
            SpecError::File { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}
impl std::error::Error for SpecError {}

/// A layer as a spec writes it: `type` first, then the configuration's fields in order.
#[derive(Serialize)]
struct Tagged<'a, T> {
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(flatten)]
    fields: &'a T,
}

/// Declares the layer types once: the [`LayerSpec`] variants, their parser, the type list
/// and the dispatch to each configuration.
macro_rules! layer_specs {
    ($($(#[$doc:meta])* $variant:ident($config:ty),)*) => {
        /// One layer of a spec: a layer configuration, or an activation. `type` selects it.
        #[derive(Debug, Clone, PartialEq)]
        pub enum LayerSpec {
            $($(#[$doc])* $variant($config),)*
            /// A parameter-free activation (`relu`, `leaky_relu` with `slope`, ...).
            Activation(Activation),
        }

        /// The `type`s of the configured (non-activation) layers.
        const CONFIG_TYPES: &[&str] = &[$(<$config as LayerConfig>::TYPE),*];

        impl LayerSpec {
            fn parse_config(ty: &str, body: Value) -> Option<Result<LayerSpec, String>> {
                $(if ty == <$config as LayerConfig>::TYPE {
                    return Some(serde_json::from_value(body)
                        .map(LayerSpec::$variant)
                        .map_err(|e| e.to_string()));
                })*
                None
            }

            /// Its `type` in a spec.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(LayerSpec::$variant(_) => <$config as LayerConfig>::TYPE,)*
                    LayerSpec::Activation(a) => a.name(),
                }
            }

            fn prefix(&self) -> &'static str {
                match self {
                    $(LayerSpec::$variant(_) => <$config as LayerConfig>::PREFIX,)*
                    LayerSpec::Activation(a) => a.name(),
                }
            }

            fn input(&self) -> InputKind {
                match self {
                    $(LayerSpec::$variant(_) => <$config as LayerConfig>::INPUT,)*
                    LayerSpec::Activation(_) => InputKind::Any,
                }
            }

            /// Builds the layer on a per-sample input shape (see [`LayerConfig::build`]).
            ///
            /// # Errors
            /// If the shape does not fit or a setting is out of range.
            #[allow(clippy::type_complexity)]
            pub fn build<E: Element>(
                &self,
                in_shape: &[usize],
                rng: &mut Rng,
            ) -> Result<(Box<dyn Module<E>>, Vec<usize>), LayerError> {
                match self {
                    $(LayerSpec::$variant(c) => c.build(in_shape, rng),)*
                    LayerSpec::Activation(a) => Ok((Box::new(*a), in_shape.to_vec())),
                }
            }

            /// Works out the layer's output shape and parameter count without building it
            /// (see [`LayerConfig::plan`]).
            ///
            /// # Errors
            /// If the shape does not fit or a setting is out of range.
            pub fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
                match self {
                    $(LayerSpec::$variant(c) => c.plan(in_shape),)*
                    LayerSpec::Activation(_) => Ok(LayerPlan::new(in_shape.to_vec(), 0)),
                }
            }

            fn serialize_tagged<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let ty = self.type_name();
                match self {
                    $(LayerSpec::$variant(fields) => Tagged { ty, fields }.serialize(s),)*
                    LayerSpec::Activation(a) => {
                        let fields: std::collections::BTreeMap<_, _> = a.param().into_iter().collect();
                        Tagged { ty, fields: &fields }.serialize(s)
                    }
                }
            }
        }
    };
}

layer_specs! {
    /// A fully connected layer.
    Linear(LinearConfig),
    /// Maxout.
    Maxout(MaxoutConfig),
    /// Gaussian radial basis functions with learnable centres and widths.
    Rbf(RbfConfig),
    /// PReLU, one shared slope or one per feature.
    Prelu(PReluConfig),
    /// Inverted dropout.
    Dropout(DropoutConfig),
    /// Layer normalization.
    LayerNorm(LayerNormConfig),
    /// Batch normalization (per feature for flat inputs, per channel for images).
    BatchNorm(BatchNormConfig),
    /// Flatten all axes after the batch axis.
    Flatten(FlattenConfig),
    /// 2-D convolution.
    Conv2d(Conv2dConfig),
    /// Max pooling.
    MaxPool2d(MaxPool2dConfig),
    /// Average pooling.
    AvgPool2d(AvgPool2dConfig),
    /// Global average pooling, `[C, H, W] → [C]`.
    GlobalAvgPool(GlobalAvgPoolConfig),
    /// Reshape each sample.
    Reshape(ReshapeConfig),
    /// An Elman recurrent layer (tanh).
    Rnn(RnnConfig),
    /// An Elman recurrent layer with ReLU.
    RnnRelu(RnnReluConfig),
    /// A long short-term memory layer.
    Lstm(LstmConfig),
    /// A gated recurrent unit layer.
    Gru(GruConfig),
    /// A Jordan recurrent layer (the output fed back through a decaying context).
    Jordan(JordanConfig),
    /// 1-D convolution over a sequence's steps (a time-delay layer).
    Conv1d(Conv1dConfig),
}

/// The named presets of [`ModelSpec::preset`].
pub const PRESETS: &[&str] = &["mlp", "lenet5", "cnn", "rnn", "lstm", "gru"];

/// Every `type` a spec may use: the layer configurations' and [`Activation::ALL`]'s names.
///
/// ```
/// let types = backprop_nn::spec::layer_types();
/// assert!(types.contains(&"conv2d") && types.contains(&"leaky_relu"));
/// ```
pub fn layer_types() -> Vec<&'static str> {
    let acts = Activation::ALL.iter().map(Activation::name);
    CONFIG_TYPES.iter().copied().chain(acts).collect()
}

/// The activations the `mlp` preset (the `--activation` flag) accepts: every elementwise
/// [`Activation`] and `prelu`.
pub fn hidden_activations() -> Vec<&'static str> {
    let acts = Activation::ALL.iter().filter(|a| a.is_elementwise());
    let mut names: Vec<&str> = acts.map(Activation::name).collect();
    names.push(PReluConfig::TYPE);
    names
}

/// The spec layer for an activation name (or alias) given to the `mlp` preset.
///
/// # Errors
/// If the name is not one of [`hidden_activations`] (or an alias).
pub fn activation_spec(name: &str) -> Result<LayerSpec, SpecError> {
    match Activation::from_name(name).filter(Activation::is_elementwise) {
        Some(a) => Ok(LayerSpec::Activation(a)),
        None if name == PReluConfig::TYPE => Ok(LayerSpec::Prelu(PReluConfig::default())),
        None => Err(SpecError::Invalid(format!(
            "unknown activation {name:?}; choose one of {}",
            hidden_activations().join(", ")
        ))),
    }
}

impl LayerSpec {
    /// Reads one layer from its JSON object (`type` and the configuration's fields).
    ///
    /// # Errors
    /// A message without the layer's position: a missing or unknown `type`, or a field
    /// that is unknown, missing or of the wrong kind.
    pub fn from_value(v: &Value) -> Result<LayerSpec, String> {
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or("missing \"type\"")?;
        let mut body = v.as_object().cloned().unwrap_or_default();
        body.remove("type");
        if let Some(r) = Self::parse_config(ty, Value::Object(body.clone())) {
            return r;
        }
        let a = Activation::ALL
            .iter()
            .find(|a| a.name() == ty)
            .ok_or_else(|| {
                format!(
                    "unknown layer type {ty:?}; known types: {}",
                    layer_types().join(", ")
                )
            })?;
        let mut a = *a;
        for (k, val) in body {
            match a.param() {
                Some((p, _)) if p == k => {
                    let x = val
                        .as_f64()
                        .ok_or_else(|| format!("{k} must be a number, not {val}"))?;
                    a = a.with_param(x);
                }
                Some((p, _)) => return Err(format!("unknown field `{k}`, expected `{p}`")),
                None => return Err(format!("unknown field `{k}`, there are no fields")),
            }
        }
        Ok(LayerSpec::Activation(a))
    }
}

impl Serialize for LayerSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize_tagged(s)
    }
}

impl<'de> Deserialize<'de> for LayerSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        LayerSpec::from_value(&v).map_err(serde::de::Error::custom)
    }
}

/// A model: its layers in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The layers.
    pub layers: Vec<LayerSpec>,
}

/// A built model and what building found out.
pub struct Built<E: Element = f32> {
    /// The network.
    pub model: Sequential<E>,
    /// Output width.
    pub outputs: usize,
}

/// One layer of a [`ModelPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLayer {
    /// Its name in the built model (`fc1`, `conv2`, ...).
    pub name: String,
    /// Its `type`.
    pub type_name: &'static str,
    /// Its position in the spec, from 1; `None` for a flatten or reshape the spec inserts.
    pub index: Option<usize>,
    /// The per-sample shape that reaches it.
    pub in_shape: Vec<usize>,
    /// The per-sample shape it gives.
    pub out_shape: Vec<usize>,
    /// Trainable parameters.
    pub params: u64,
}

impl PlannedLayer {
    /// "layer 2 (linear fc1, [784] → [1000])", or "flatten1" for an inserted layer.
    pub fn describe(&self) -> String {
        match self.index {
            Some(n) => format!(
                "layer {n} ({} {}, {:?} → {:?})",
                self.type_name, self.name, self.in_shape, self.out_shape
            ),
            None => format!("{} ({:?} → {:?})", self.name, self.in_shape, self.out_shape),
        }
    }
}

/// A spec checked against the data's shape, every layer worked out but nothing allocated
/// (see [`ModelSpec::plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPlan {
    /// The layers as they will be built, inserted flatten/reshape layers included.
    pub layers: Vec<PlannedLayer>,
}

impl ModelPlan {
    /// Trainable parameters (the plan checked that the sum fits in 64 bits).
    pub fn params(&self) -> u64 {
        self.layers.iter().map(|l| l.params).sum()
    }

    /// The output width.
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_shape[0])
    }

    /// Values each sample's forward pass keeps for the backward pass: every layer's output.
    pub fn values_per_sample(&self) -> u128 {
        self.layers
            .iter()
            .map(|l| l.out_shape.iter().map(|&d| d as u128).product::<u128>())
            .sum()
    }

    /// Bytes of the parameters alone, with `elem` bytes per value.
    pub fn parameter_bytes(&self, elem: usize) -> u128 {
        self.params() as u128 * elem as u128
    }

    /// Bytes training needs, estimated: parameters, their gradients and `optimizer_slots`
    /// values of optimizer state per parameter, and for a batch of `batch` samples every
    /// layer's output, its gradient and one working copy.
    pub fn training_bytes(&self, elem: usize, optimizer_slots: usize, batch: usize) -> u128 {
        let per_param = 2 + optimizer_slots as u128;
        let activations = self.values_per_sample() * batch as u128 * 3;
        (self.params() as u128 * per_param + activations) * elem as u128
    }

    /// The layer with the most parameters.
    pub fn largest(&self) -> Option<&PlannedLayer> {
        self.layers.iter().max_by_key(|l| l.params)
    }

    /// Refuses `needed` bytes (for `what`, e.g. "parameters alone") when this machine has
    /// less memory available, naming the largest layer, before anything is allocated.
    ///
    /// # Errors
    /// [`SpecError::Invalid`] saying how much is needed and available.
    pub fn check_fits(&self, needed: u128, what: &str) -> Result<(), SpecError> {
        let Some(available) = backprop_tensor::memory::available_bytes() else {
            return Ok(());
        };
        if needed <= available as u128 {
            return Ok(());
        }
        let human = backprop_tensor::memory::human_bytes;
        let largest = self.largest().map_or(String::new(), |l| {
            format!(
                "; the largest is {} with {} parameters",
                l.describe(),
                l.params
            )
        });
        Err(SpecError::Invalid(format!(
            "the model is too large for this machine ({what}): about {} needed, {} available ({} parameters{largest})",
            human(needed),
            human(available as u128),
            self.params()
        )))
    }
}

impl ModelSpec {
    /// Parses a spec from JSON text.
    ///
    /// # Errors
    /// On malformed JSON or an invalid layer (named by its position, counted from 1).
    pub fn from_json(text: &str) -> Result<ModelSpec, SpecError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| SpecError::Invalid(format!("not valid JSON: {e}")))?;
        Self::from_value(v)
    }

    /// Parses a spec from TOML text (`[[layers]]` tables).
    ///
    /// # Errors
    /// On malformed TOML or an invalid layer.
    pub fn from_toml(text: &str) -> Result<ModelSpec, SpecError> {
        let v: Value =
            toml::from_str(text).map_err(|e| SpecError::Invalid(format!("not valid TOML: {e}")))?;
        Self::from_value(v)
    }

    /// Reads a `.json` or `.toml` file.
    ///
    /// # Errors
    /// If the file cannot be read or parsed; the message names the file.
    pub fn from_file(path: &Path) -> Result<ModelSpec, SpecError> {
        let in_file = |error| SpecError::File {
            path: path.to_path_buf(),
            error: Box::new(error),
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            in_file(SpecError::Invalid(format!(
                "cannot read the model spec: {e}"
            )))
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Self::from_toml(&text),
            _ => Self::from_json(&text),
        }
        .map_err(in_file)
    }

    fn from_value(v: Value) -> Result<ModelSpec, SpecError> {
        let invalid = |m: &str| SpecError::Invalid(m.into());
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("a model spec is an object with a \"layers\" list"))?;
        if let Some(k) = obj.keys().find(|k| *k != "layers") {
            return Err(SpecError::Invalid(format!(
                "unknown key {k:?}; a model spec has only \"layers\""
            )));
        }
        let layers = obj
            .get("layers")
            .and_then(|l| l.as_array())
            .ok_or_else(|| invalid("the spec needs a \"layers\" list"))?;
        if layers.is_empty() {
            return Err(invalid("the \"layers\" list is empty"));
        }
        let layers = layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                LayerSpec::from_value(l).map_err(|message| SpecError::Layer {
                    index: i + 1,
                    kind: l.get("type").and_then(Value::as_str).map(str::to_string),
                    message,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ModelSpec { layers })
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
        // He initialization for the rectifiers
        let he = matches!(
            act,
            LayerSpec::Activation(Activation::Relu | Activation::LeakyRelu(_))
                | LayerSpec::Prelu(_)
        );
        let mut layers = Vec::new();
        for &h in hidden {
            let lin = LinearConfig::new(h);
            layers.push(LayerSpec::Linear(if he {
                lin.with_init("he_uniform")
            } else {
                lin
            }));
            layers.push(act.clone());
            if dropout > 0.0 {
                layers.push(LayerSpec::Dropout(DropoutConfig { p: dropout }));
            }
        }
        layers.push(LayerSpec::Linear(LinearConfig::new(outputs)));
        Ok(ModelSpec { layers })
    }

    /// A named preset: `mlp` (256-128 ReLU), `lenet5`, `cnn`, or a recurrent classifier
    /// `rnn`, `lstm`, `gru` (see [`ModelSpec::recurrent`]); the input and output widths come
    /// from the data.
    ///
    /// # Errors
    /// If the name is unknown.
    pub fn preset(name: &str, outputs: usize) -> Result<ModelSpec, SpecError> {
        match name {
            "mlp" => Self::mlp(&[256, 128], "relu", 0.0, outputs),
            "lenet5" => Ok(Self::lenet5(outputs)),
            "cnn" => Ok(Self::cnn(outputs)),
            "rnn" | "lstm" | "gru" => Ok(Self::recurrent(name, outputs)),
            other => Err(SpecError::Invalid(format!(
                "unknown model preset {other:?}; presets: {} (or give a .json/.toml spec file)",
                PRESETS.join(", ")
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
                LayerSpec::Linear(c) => LayerSpec::Linear(LinearConfig {
                    weight: None,
                    bias_values: None,
                    ..c.clone()
                }),
                other => other.clone(),
            })
            .collect();
        ModelSpec { layers }
    }

    /// The input width the spec states itself, if it does: its first layer's `in`, or the
    /// column count of that layer's explicit weights. A spec that states it needs no
    /// dataset to be summarised or checked.
    ///
    /// ```
    /// let spec = backprop_nn::ModelSpec::from_toml(
    ///     "[[layers]]\ntype = \"linear\"\nout = 1\nweight = [[0.3, 0.9]]\n").unwrap();
    /// assert_eq!(spec.stated_inputs(), Some(2));
    /// assert_eq!(backprop_nn::ModelSpec::lenet5(10).stated_inputs(), None);
    /// ```
    pub fn stated_inputs(&self) -> Option<usize> {
        match self.layers.first()? {
            LayerSpec::Linear(c) => c
                .inputs
                .or_else(|| c.weight.as_ref().and_then(|w| w.first()).map(Vec::len)),
            LayerSpec::Maxout(c) => c.inputs,
            _ => None,
        }
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
    /// linear layer meets images a `flatten` layer is inserted. Layers are named by type and
    /// count (`fc1`, `conv1`, `bn1`, `relu1`, ...), so parameters are `fc1.weight`, ...
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
        let plan = self.plan(inputs, image, outputs)?;
        plan.check_fits(
            plan.parameter_bytes(std::mem::size_of::<E>()),
            "parameters alone",
        )?;
        let mut rng = Rng::seed(seed);
        let mut net = Sequential::<E>::new();
        for step in &plan.layers {
            let layer: Box<dyn Module<E>> = match step.index {
                None if step.type_name == FlattenConfig::TYPE => Box::new(Flatten),
                None => Box::new(Reshape(step.out_shape.clone())),
                Some(n) => {
                    let l = &self.layers[n - 1];
                    let (layer, out_shape) = l
                        .build::<E>(&step.in_shape, &mut rng)
                        .map_err(|e| SpecError::layer(n, l.type_name(), e.in_spec(n)))?;
                    debug_assert_eq!(out_shape, step.out_shape, "layer {n}'s plan");
                    layer
                }
            };
            net.push(&step.name, layer);
        }
        Ok(Built {
            model: net,
            outputs: plan.outputs(),
        })
    }

    /// Checks the spec against the data's shape and works out every layer's name, shapes
    /// and parameter count without allocating: what [`ModelSpec::build_shaped`] builds,
    /// and what a memory estimate reads. Flat samples meet a spatial layer through an
    /// inserted `reshape` to `image`, images meet a flat layer through an inserted
    /// `flatten`.
    ///
    /// ```
    /// use backprop_nn::ModelSpec;
    /// let plan = ModelSpec::lenet5(10).plan(784, Some([1, 28, 28]), Some(10)).unwrap();
    /// assert_eq!(plan.params(), 61_706);
    /// assert_eq!(plan.layers[0].name, "reshape1"); // inserted in front of conv1
    /// let huge = ModelSpec::mlp(&[1 << 40], "relu", 0.0, 10).unwrap();
    /// assert!(huge.plan(1 << 30, None, None).is_err()); // 2^70 weights do not even count
    /// let big = ModelSpec::mlp(&[1 << 20], "relu", 0.0, 10).unwrap();
    /// assert_eq!(big.plan(1 << 20, None, None).unwrap().params(), (1 << 40) + (1 << 20) + 10 * (1 << 20) + 10);
    /// ```
    ///
    /// # Errors
    /// As [`ModelSpec::build_shaped`].
    pub fn plan(
        &self,
        inputs: usize,
        image: Option<[usize; 3]>,
        outputs: Option<usize>,
    ) -> Result<ModelPlan, SpecError> {
        let mut layers = Vec::new();
        let mut shape: Vec<usize> = vec![inputs];
        let mut counts = std::collections::HashMap::<&str, usize>::new();
        let mut name_for = |prefix: &'static str| {
            let c = counts.entry(prefix).or_insert(0);
            *c += 1;
            format!("{prefix}{c}")
        };
        for (i, l) in self.layers.iter().enumerate() {
            let n = i + 1;
            let err = |e: LayerError| SpecError::layer(n, l.type_name(), e.in_spec(n));
            let inserted = match l.input() {
                InputKind::Flat if shape.len() > 1 => Some((
                    FlattenConfig::TYPE,
                    FlattenConfig::PREFIX,
                    vec![count(&shape).map_err(err)? as usize],
                )),
                InputKind::Image if shape.len() != 3 => match image {
                    Some(img) if shape.len() == 1 && count(&img).ok() == Some(shape[0] as u64) => {
                        Some((ReshapeConfig::TYPE, ReshapeConfig::PREFIX, img.to_vec()))
                    }
                    _ => {
                        let e = LayerError::Shape {
                            expects: "needs images [channels, height, width]".into(),
                            shape,
                        };
                        let hint = "add a reshape layer, e.g. {\"type\": \"reshape\", \"shape\": [1, 28, 28]}";
                        return Err(SpecError::layer(
                            n,
                            l.type_name(),
                            format!("{}; {hint}", e.in_spec(n)),
                        ));
                    }
                },
                InputKind::Sequence if shape.len() != 2 => match image {
                    Some([1, h, w]) if shape == [h * w] => {
                        Some((ReshapeConfig::TYPE, ReshapeConfig::PREFIX, vec![h, w]))
                    }
                    _ => {
                        let e = LayerError::Shape {
                            expects: "needs sequences [steps, features]".into(),
                            shape,
                        };
                        let hint = "add a reshape layer, e.g. {\"type\": \"reshape\", \"shape\": [28, 28]}";
                        return Err(SpecError::layer(
                            n,
                            l.type_name(),
                            format!("{}; {hint}", e.in_spec(n)),
                        ));
                    }
                },
                _ => None,
            };
            if let Some((type_name, prefix, out_shape)) = inserted {
                layers.push(PlannedLayer {
                    name: name_for(prefix),
                    type_name,
                    index: None,
                    in_shape: std::mem::replace(&mut shape, out_shape.clone()),
                    out_shape,
                    params: 0,
                });
            }
            let p = l.plan(&shape).map_err(err)?;
            layers.push(PlannedLayer {
                name: name_for(l.prefix()),
                type_name: l.type_name(),
                index: Some(n),
                in_shape: std::mem::replace(&mut shape, p.out_shape.clone()),
                out_shape: p.out_shape,
                params: p.params,
            });
        }
        if shape.len() != 1 {
            return Err(SpecError::Invalid(format!("the last layer gives samples of shape {shape:?}; end with flatten and a linear layer")));
        }
        let width = shape[0];
        if let Some(o) = outputs.filter(|&o| o != width) {
            return Err(SpecError::Invalid(format!(
                "the last layer gives {width} outputs but the data needs {o} (one per class, or one per regression target)"
            )));
        }
        let plan = ModelPlan { layers };
        plan.layers
            .iter()
            .try_fold(0u64, |acc, l| add_counts(acc, l.params))
            .map_err(|e| SpecError::Invalid(e.to_string()))?;
        Ok(plan)
    }

    /// A sequence classifier: one recurrent layer of 128 units (`kind` is `rnn`, `lstm` or
    /// `gru`; anything else gives the GRU) whose final hidden state feeds a linear layer of
    /// `outputs`. On MNIST each image is read row by row, 28 steps of 28 pixels.
    pub fn recurrent(kind: &str, outputs: usize) -> ModelSpec {
        let layer = match kind {
            "rnn" => LayerSpec::Rnn(RnnConfig::new(128)),
            "lstm" => LayerSpec::Lstm(LstmConfig::new(128)),
            _ => LayerSpec::Gru(GruConfig::new(128)),
        };
        ModelSpec {
            layers: vec![layer, LayerSpec::Linear(LinearConfig::new(outputs))],
        }
    }

    /// LeNet-5 as in the lecture figure, with ReLU and max pooling: conv 6@5×5 (padding 2
    /// for 28×28 inputs, so the maps are 28×28 as in the original 32×32 input), pool 2,
    /// conv 16@5×5, pool 2, then 120, 84 and the outputs.
    pub fn lenet5(outputs: usize) -> ModelSpec {
        let conv = |out, pad| LayerSpec::Conv2d(Conv2dConfig::new(out, 5).with_padding(pad));
        let pool = || LayerSpec::MaxPool2d(MaxPool2dConfig::new(2));
        let lin = |out| LayerSpec::Linear(LinearConfig::new(out));
        let relu = LayerSpec::Activation(Activation::Relu);
        ModelSpec {
            layers: vec![
                conv(6, 2),
                relu.clone(),
                pool(),
                conv(16, 0),
                relu.clone(),
                pool(),
                LayerSpec::Flatten(FlattenConfig {}),
                lin(120),
                relu.clone(),
                lin(84),
                relu,
                lin(outputs),
            ],
        }
    }

    /// A small modern CNN of conv-BN-ReLU blocks: 16, 32 and 64 channels of 3×3
    /// convolutions with 2×2 max pooling after the first two, then a 128-unit ReLU layer and
    /// the outputs.
    pub fn cnn(outputs: usize) -> ModelSpec {
        let conv = |out| {
            LayerSpec::Conv2d(
                Conv2dConfig::new(out, 3)
                    .with_padding(1)
                    .with_bias(false)
                    .with_init("he_uniform"),
            )
        };
        let pool = || LayerSpec::MaxPool2d(MaxPool2dConfig::new(2));
        let bn = || LayerSpec::BatchNorm(BatchNormConfig {});
        let relu = || LayerSpec::Activation(Activation::Relu);
        ModelSpec {
            layers: vec![
                conv(16),
                bn(),
                relu(),
                pool(),
                conv(32),
                bn(),
                relu(),
                pool(),
                conv(64),
                bn(),
                relu(),
                LayerSpec::Flatten(FlattenConfig {}),
                LayerSpec::Linear(LinearConfig::new(128).with_init("he_uniform")),
                relu(),
                LayerSpec::Linear(LinearConfig::new(outputs)),
            ],
        }
    }
}
