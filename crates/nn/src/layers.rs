//! Layers with parameters or modes: [`Linear`], [`Dropout`], [`LayerNorm`],
//! [`BatchNorm`], [`Maxout`], [`Flatten`], each with its configuration
//! ([`LinearConfig`], ...) as a spec names it.

use std::sync::Mutex;

use backprop_autograd::Var;
use backprop_tensor::{Element, Pool2dParams, Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::init::Init;
use crate::module::{Mode, Module};
use crate::spec::{add_counts, count, InputKind, LayerConfig, LayerError, LayerPlan};

/// The boxed layer and per-sample output shape a [`LayerConfig::build`] returns.
pub(crate) type BuiltLayer<E> = (Box<dyn Module<E>>, Vec<usize>);

fn yes() -> bool {
    true
}

/// Checks that a flat layer gets flat features, and its stated width (`in`) if any;
/// returns the width.
pub(crate) fn flat_width(stated: Option<usize>, in_shape: &[usize]) -> Result<usize, LayerError> {
    let [width] = in_shape else {
        return Err(LayerError::Shape {
            expects: "needs flat features [in]".into(),
            shape: in_shape.to_vec(),
        });
    };
    match stated {
        Some(k) if k != *width => Err(LayerError::Width {
            expects: format!("expects {k} inputs"),
            width: *width,
        }),
        _ => Ok(*width),
    }
}

/// An initializer by its spec name.
pub(crate) fn init_named(name: Option<&str>) -> Result<Init, LayerError> {
    let name = name.unwrap_or("lecun_uniform");
    Init::from_name(name).ok_or_else(|| {
        LayerError::Invalid(format!(
            "unknown init {name:?}; use {}",
            Init::NAMES.join(", ")
        ))
    })
}

/// A [`Linear`] layer's configuration; in a spec `{"type": "linear", "out": 10, ...}`.
///
/// ```
/// use backprop_nn::{LayerConfig, LinearConfig};
/// use backprop_tensor::Rng;
/// let cfg = LinearConfig::new(2).with_bias(false).with_weight(vec![vec![0.1, 0.8], vec![0.4, 0.6]]);
/// let layer = cfg.init::<f64>(2, &mut Rng::seed(0)).unwrap();
/// assert_eq!(layer.weight.value().to_vec(), vec![0.1, 0.8, 0.4, 0.6]);
/// // the width that reaches it must be the stated one
/// let err = LinearConfig::new(2).with_inputs(3).build::<f32>(&[4], &mut Rng::seed(0)).err().unwrap();
/// assert_eq!(err.to_string(), "expects 3 inputs but gets 4");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearConfig {
    /// Input width, if stated; checked against the width that reaches the layer.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub inputs: Option<usize>,
    /// Output width.
    pub out: usize,
    /// Whether it has a bias (default true).
    #[serde(default = "yes")]
    pub bias: bool,
    /// Initializer name (default `lecun_uniform`, PyTorch's; see [`Init::from_name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// Explicit weights, `[out][in]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Vec<Vec<f64>>>,
    /// Explicit bias values, `[out]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_values: Option<Vec<f64>>,
}

impl LinearConfig {
    /// `out` outputs, with a bias, PyTorch's initialization, the input width inferred.
    pub fn new(out: usize) -> Self {
        LinearConfig {
            inputs: None,
            out,
            bias: true,
            init: None,
            weight: None,
            bias_values: None,
        }
    }
    /// States the input width.
    pub fn with_inputs(mut self, inputs: usize) -> Self {
        self.inputs = Some(inputs);
        self
    }
    /// With or without a bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    /// An initializer by name (`he_uniform`, ...).
    pub fn with_init(mut self, init: &str) -> Self {
        self.init = Some(init.to_string());
        self
    }
    /// Explicit weights, `[out][in]`.
    pub fn with_weight(mut self, weight: Vec<Vec<f64>>) -> Self {
        self.weight = Some(weight);
        self
    }
    /// Explicit bias values, `[out]`.
    pub fn with_bias_values(mut self, bias: Vec<f64>) -> Self {
        self.bias_values = Some(bias);
        self
    }

    /// The layer for `inputs` features: initialized from `rng`, then set to the explicit
    /// values if there are any.
    ///
    /// # Errors
    /// If `out` is 0, the stated width differs, the initializer is unknown or explicit
    /// values have the wrong shape.
    pub fn init<E: Element>(&self, inputs: usize, rng: &mut Rng) -> Result<Linear<E>, LayerError> {
        // one place for the checks: the plan (explicit values included)
        self.plan(&[inputs])?;
        let width = flat_width(self.inputs, &[inputs])?;
        let out = self.out;
        let init = init_named(self.init.as_deref())?;
        let lin = if matches!(init, Init::LecunUniform) && self.bias {
            Linear::new(width, out, rng)
        } else {
            Linear::with_init(width, out, init, self.bias, rng)
        };
        if let Some(w) = &self.weight {
            let values = w.iter().flatten().map(|&v| E::from_f64(v)).collect();
            lin.weight
                .set_value(Tensor::from_vec(values, &[out, width]));
        }
        if let (Some(b), Some(bias)) = (&self.bias_values, &lin.bias) {
            let values = b.iter().map(|&v| E::from_f64(v)).collect();
            bias.set_value(Tensor::from_vec(values, &[out]));
        }
        Ok(lin)
    }

    /// Checks the explicit weight and bias values against `out × width`.
    fn check_values(&self, width: usize) -> Result<(), LayerError> {
        let (out, bad) = (self.out, |m: String| Err(LayerError::Invalid(m)));
        if let Some(w) = &self.weight {
            if w.len() != out || w.iter().any(|r| r.len() != width) {
                let cols = w.first().map_or(0, |r| r.len());
                let rows = w.len();
                return bad(format!(
                    "weight is {rows}×{cols} but must be {out}×{width} (out × in)"
                ));
            }
        }
        if let Some(b) = &self.bias_values {
            if !self.bias {
                return bad("bias_values given but bias is false".into());
            }
            if b.len() != out {
                return bad(format!(
                    "bias_values has {} entries but out is {out}",
                    b.len()
                ));
            }
        }
        Ok(())
    }
}

impl LayerConfig for LinearConfig {
    const TYPE: &'static str = "linear";
    const PREFIX: &'static str = "fc";
    const INPUT: InputKind = InputKind::Flat;

    /// # Shapes
    /// `[in] → [out]`.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        let width = flat_width(self.inputs, in_shape)?;
        Ok((Box::new(self.init::<E>(width, rng)?), vec![self.out]))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        let width = flat_width(self.inputs, in_shape)?;
        if self.out == 0 {
            return Err(LayerError::Invalid("out must be at least 1".into()));
        }
        init_named(self.init.as_deref())?;
        self.check_values(width)?;
        let bias = if self.bias { self.out as u64 } else { 0 };
        let params = add_counts(count(&[self.out, width])?, bias)?;
        Ok(LayerPlan::new(vec![self.out], params))
    }
}

/// A fully connected layer: `y = x·Wᵀ + b` (the lecture's `z = Wa + b`, one row per sample).
///
/// Parameters: `weight` `[out, in]` (PyTorch's layout), `bias` `[out]` (optional).
///
/// # Shapes
/// `x: [*, in] → y: [*, out]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Init, Linear, Mode, Module};
/// use backprop_tensor::{Rng, Tensor};
/// let layer = Linear::<f32>::new(3, 2, &mut Rng::seed(0));
/// assert_eq!(layer.weight.shape(), vec![2, 3]);
/// // explicit values, e.g. a lecture's hand-set network:
/// let fixed = Linear::from_tensors(
///     Tensor::<f32>::from_vec(vec![0.1, 0.8, 0.4, 0.6], &[2, 2]), None);
/// let y = fixed.forward(&Var::constant(Tensor::from_vec(vec![0.35, 0.9], &[1, 2])), Mode::Eval);
/// assert!((y.value().data()[0] - 0.755).abs() < 1e-6);
/// // other initializers and no bias:
/// let he = Linear::<f32>::with_init(784, 256, Init::HeNormal, false, &mut Rng::seed(1));
/// assert!(he.bias.is_none());
/// ```
pub struct Linear<E: Element = f32> {
    /// `[out, in]`.
    pub weight: Var<E>,
    /// `[out]`, if the layer has a bias.
    pub bias: Option<Var<E>>,
}

impl<E: Element> Linear<E> {
    /// A layer with a bias, initialized as PyTorch does: weights and bias from
    /// U(−1/√in, 1/√in).
    pub fn new(inputs: usize, outputs: usize, rng: &mut Rng) -> Self {
        let weight = Init::LecunUniform.tensor(&[outputs, inputs], rng);
        let a = 1.0 / (inputs.max(1) as f64).sqrt();
        let bias = Init::Uniform { lo: -a, hi: a }.tensor(&[outputs], rng);
        Self::from_tensors(weight, Some(bias))
    }

    /// A layer with weights from `init` and, if `bias`, a zero bias.
    pub fn with_init(inputs: usize, outputs: usize, init: Init, bias: bool, rng: &mut Rng) -> Self {
        let weight = init.tensor(&[outputs, inputs], rng);
        Self::from_tensors(weight, bias.then(|| Tensor::zeros(&[outputs])))
    }

    /// A layer with explicit values: `weight` `[out, in]`, `bias` `[out]`.
    ///
    /// # Panics
    /// If the weight is not 2-D or the bias length is not `out`.
    pub fn from_tensors(weight: Tensor<E>, bias: Option<Tensor<E>>) -> Self {
        assert_eq!(
            weight.rank(),
            2,
            "Linear: weight must be [out, in], got {:?}",
            weight.shape()
        );
        if let Some(b) = &bias {
            assert_eq!(
                b.shape(),
                &[weight.shape()[0]],
                "Linear: bias {:?} does not match weight {:?}",
                b.shape(),
                weight.shape()
            );
        }
        Linear {
            weight: Var::parameter(weight),
            bias: bias.map(Var::parameter),
        }
    }

    /// Input width.
    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl<E: Element> Module<E> for Linear<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        x.linear(&self.weight, self.bias.as_ref())
    }
    fn as_linear(&self) -> Option<&Linear<E>> {
        Some(self)
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
    fn kind(&self) -> String {
        format!(
            "Linear({} → {}{})",
            self.in_features(),
            self.out_features(),
            if self.bias.is_some() { "" } else { ", no bias" }
        )
    }
}

/// Inverted dropout (Srivastava et al. 2014). In training each input is zeroed with
/// probability `p` and the survivors are scaled by `1/(1−p)`; in evaluation it is the
/// identity.
///
/// The lectures describe the original form instead: no scaling during training, and every
/// outgoing weight multiplied by `(1−p)` at test time. The two agree in expectation: with a
/// keep-mask `m ~ Bernoulli(1−p)`, `E[W(m⊙x)] = (1−p)·Wx` (the lecture's test-time network),
/// and `E[W(m⊙x)/(1−p)] = Wx` (ours). A network trained with inverted dropout and weights `W`
/// is the lecture's network with weights `W/(1−p)`; `tests/layers.rs` checks this.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Dropout, Mode, Module};
/// use backprop_tensor::Tensor;
/// let d = Dropout::new(0.5, 7);
/// let x = Var::constant(Tensor::<f32>::ones(&[1, 1000]));
/// let y = d.forward(&x, Mode::Train).value();
/// assert!(y.data().iter().all(|&v| v == 0.0 || v == 2.0));
/// assert_eq!(d.forward(&x, Mode::Eval).value(), x.value());
/// ```
pub struct Dropout {
    p: f64,
    rng: Mutex<Rng>,
}

impl Dropout {
    /// Drop probability `p` in `[0, 1)`, masks drawn from a generator seeded with `seed`.
    ///
    /// # Panics
    /// If `p` is outside `[0, 1)`.
    pub fn new(p: f64, seed: u64) -> Self {
        assert!(
            (0.0..1.0).contains(&p),
            "Dropout: p = {p} must be in [0, 1)"
        );
        Dropout {
            p,
            rng: Mutex::new(Rng::seed(seed)),
        }
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl<E: Element> Module<E> for Dropout {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, mode: Mode) -> Var<E> {
        if mode == Mode::Eval || self.p == 0.0 {
            return x.clone();
        }
        let shape = x.shape();
        let scale = E::from_f64(1.0 / (1.0 - self.p));
        let mut rng = self.rng.lock().unwrap();
        let n: usize = shape.iter().product();
        let mask: Vec<E> = (0..n)
            .map(|_| {
                if rng.uniform() < self.p {
                    E::ZERO
                } else {
                    scale
                }
            })
            .collect();
        x.mul(&Var::constant(Tensor::from_vec(mask, &shape)))
    }
    fn kind(&self) -> String {
        format!("Dropout(p={})", self.p)
    }
    fn sample_independent(&self) -> bool {
        false
    }
    fn sample_independent_in_eval(&self) -> bool {
        true
    }
    fn is_shape_only(&self) -> bool {
        true
    }
    fn reseed(&self, seed: u64) {
        *self.rng.lock().unwrap() = Rng::seed(seed);
    }
}

/// A [`Dropout`] layer's configuration: `{"type": "dropout", "p": 0.2}`.
///
/// ```
/// use backprop_nn::{DropoutConfig, LayerConfig};
/// use backprop_tensor::Rng;
/// let err = DropoutConfig { p: 1.0 }.build::<f32>(&[4], &mut Rng::seed(0)).err().unwrap();
/// assert!(err.to_string().contains("[0, 1)"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutConfig {
    /// Drop probability, in `[0, 1)`.
    pub p: f64,
}

impl LayerConfig for DropoutConfig {
    const TYPE: &'static str = "dropout";
    const PREFIX: &'static str = "dropout";

    /// Its masks are seeded from `rng`. # Shapes: any, unchanged.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        let out = self.plan(in_shape)?.out_shape;
        Ok((Box::new(Dropout::new(self.p, rng.next_u64())), out))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        if !(0.0..1.0).contains(&self.p) {
            return Err(LayerError::Invalid(format!(
                "p = {} must be in [0, 1)",
                self.p
            )));
        }
        Ok(LayerPlan::new(in_shape.to_vec(), 0))
    }
}

/// Layer normalization (Ba et al. 2016) over the last axis:
/// `y = γ ⊙ (x − μ)/√(σ² + ε) + β`, with μ and σ² the mean and (biased) variance of each
/// sample's features.
///
/// Parameters: `weight` (γ, starts at 1) and `bias` (β, starts at 0), both `[features]`.
/// Scaling the pre-activation by any α > 0 does not change the output (up to ε):
/// `LN(αz) = LN(z)`.
///
/// # Shapes
/// `x: [*, features] → [*, features]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{LayerNorm, Mode, Module};
/// use backprop_tensor::Tensor;
/// let ln = LayerNorm::<f64>::new(4);
/// let y = ln.forward(&Var::constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 4])), Mode::Train);
/// assert!(y.value().mean_all().item().abs() < 1e-12);
/// ```
pub struct LayerNorm<E: Element = f32> {
    /// γ, `[features]`.
    pub weight: Var<E>,
    /// β, `[features]`.
    pub bias: Var<E>,
    eps: f64,
}

impl<E: Element> LayerNorm<E> {
    /// γ = 1, β = 0, ε = 1e-5.
    pub fn new(features: usize) -> Self {
        Self::with_eps(features, 1e-5)
    }
    /// With a chosen ε.
    pub fn with_eps(features: usize, eps: f64) -> Self {
        LayerNorm {
            weight: Var::parameter(Tensor::ones(&[features])),
            bias: Var::parameter(Tensor::zeros(&[features])),
            eps,
        }
    }
    /// ε, added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

/// `(x − mean)/√(var + eps)` along `axis`, with biased variance; returns the normalized
/// value, the mean and the variance.
fn normalize<E: Element>(x: &Var<E>, axis: isize, eps: f64) -> (Var<E>, Var<E>, Var<E>) {
    let mean = x.mean_axis(axis, true);
    let centred = x.sub(&mean);
    let var = centred.mul(&centred).mean_axis(axis, true);
    let xhat = centred.div(&var.add_scalar(E::from_f64(eps)).sqrt());
    (xhat, mean, var)
}

/// A [`LayerNorm`]'s configuration, `{"type": "layer_norm"}`: over the last axis of what
/// reaches it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerNormConfig {}

impl LayerConfig for LayerNormConfig {
    const TYPE: &'static str = "layer_norm";
    const PREFIX: &'static str = "ln";

    /// # Shapes
    /// `[*, features] → [*, features]`.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        let features = in_shape.last().copied().unwrap_or(1);
        Ok((Box::new(LayerNorm::new(features)), in_shape.to_vec()))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        let features = in_shape.last().copied().unwrap_or(1);
        Ok(LayerPlan::new(in_shape.to_vec(), count(&[features, 2])?))
    }
}

impl<E: Element> Module<E> for LayerNorm<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let (xhat, _, _) = normalize(x, -1, self.eps);
        xhat.mul(&self.weight).add(&self.bias)
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        vec![
            ("weight".into(), self.weight.clone()),
            ("bias".into(), self.bias.clone()),
        ]
    }
    fn kind(&self) -> String {
        format!("LayerNorm({})", self.weight.shape()[0])
    }
}

/// Batch normalization (Ioffe & Szegedy 2015): per feature of `[N, C]` inputs over the
/// batch, per channel of `[N, C, H, W]` images over the batch and both spatial axes.
///
/// Training: `y = γ ⊙ (x − μ_B)/√(σ²_B + ε) + β` with the batch mean and biased variance;
/// the running statistics move as `r ← (1 − m)·r + m·s` (momentum `m` = 0.1, the running
/// variance using the unbiased batch variance, as PyTorch does). Evaluation uses the running
/// statistics instead.
///
/// Parameters: `weight` (γ) and `bias` (β), `[C]`. Buffers: `running_mean`,
/// `running_var` (PyTorch's names).
///
/// # Shapes
/// `[N, C] → [N, C]` or `[N, C, H, W] → [N, C, H, W]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{BatchNorm, Mode, Module};
/// use backprop_tensor::{Rng, Tensor};
/// let bn = BatchNorm::<f64>::new(2);
/// let x = Var::constant(Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2]));
/// let y = bn.forward(&x, Mode::Train).value();
/// assert!((y.get(&[0, 0]) + 1.0).abs() < 1e-4 && (y.get(&[1, 1]) - 1.0).abs() < 1e-4);
/// assert!((bn.running_mean.value().to_vec()[0] - 0.2).abs() < 1e-12);
/// // the same layer type on images, per channel
/// let bn = BatchNorm::<f64>::for_images(3);
/// let x = Var::constant(Tensor::rand_normal(&[4, 3, 5, 5], 2.0, 3.0, &mut Rng::seed(0)));
/// assert!(bn.forward(&x, Mode::Train).value().mean_all().item().abs() < 1e-9);
/// assert_eq!(bn.kind(), "BatchNorm2d(3)");
/// ```
pub struct BatchNorm<E: Element = f32> {
    /// γ, `[C]`.
    pub weight: Var<E>,
    /// β, `[C]`.
    pub bias: Var<E>,
    /// Running mean, `[C]` (a buffer, not learned).
    pub running_mean: Var<E>,
    /// Running variance, `[C]` (a buffer, not learned).
    pub running_var: Var<E>,
    eps: f64,
    momentum: f64,
    /// The input rank it is for (2 or 4), if fixed.
    rank: Option<usize>,
    /// Its folding into the convolution before it, for inference (see `crate::fuse`).
    pub(crate) folded: crate::fuse::FoldCache<E>,
}

/// Batch normalization of `[N, C]` inputs (the name PyTorch uses).
pub type BatchNorm1d<E = f32> = BatchNorm<E>;
/// Batch normalization of `[N, C, H, W]` images (the name PyTorch uses).
pub type BatchNorm2d<E = f32> = BatchNorm<E>;

impl<E: Element> BatchNorm<E> {
    /// `channels` features or channels, for `[N, C]` or `[N, C, H, W]` inputs: γ = 1,
    /// β = 0, running mean 0 and variance 1, ε = 1e-5, momentum 0.1.
    pub fn new(channels: usize) -> Self {
        BatchNorm {
            weight: Var::parameter(Tensor::ones(&[channels])),
            bias: Var::parameter(Tensor::zeros(&[channels])),
            running_mean: Var::constant(Tensor::zeros(&[channels])),
            running_var: Var::constant(Tensor::ones(&[channels])),
            eps: 1e-5,
            momentum: 0.1,
            rank: None,
            folded: Default::default(),
        }
    }

    /// For `[N, C]` inputs only (summaries call it `BatchNorm1d`).
    pub fn for_features(features: usize) -> Self {
        BatchNorm {
            rank: Some(2),
            ..Self::new(features)
        }
    }

    /// For `[N, C, H, W]` images only (summaries call it `BatchNorm2d`).
    pub fn for_images(channels: usize) -> Self {
        BatchNorm {
            rank: Some(4),
            ..Self::new(channels)
        }
    }

    /// Sets the momentum of the running statistics.
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets ε.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// ε, added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl<E: Element> BatchNorm<E> {
    /// `relu(self.forward(x, mode))`, in training as one fused op
    /// ([`Var::batch_norm_relu`]); [`Sequential`](crate::Sequential) runs a batch norm
    /// followed by a ReLU layer this way.
    pub fn forward_relu(&self, x: &Var<E>, mode: Mode) -> Var<E> {
        self.run(x, mode, true)
    }

    /// The running statistics, with the momentum they move by.
    fn running(&self) -> RunningStats<'_, E> {
        RunningStats {
            mean: &self.running_mean,
            var: &self.running_var,
            momentum: self.momentum,
        }
    }

    /// Whether it takes `[N, C, H, W]` (a batch norm built for images, or for any rank).
    pub(crate) fn takes_images(&self) -> bool {
        self.rank.is_none_or(|r| r == 4)
    }

    /// `max_pool(relu(self.forward(x, Mode::Train)), p)` as one fused op
    /// ([`Var::batch_norm_relu_max_pool`]), for `[N, C, H, W]`; [`Sequential`](crate::Sequential)
    /// runs a batch norm followed by a ReLU and a max pooling this way in training.
    ///
    /// # Panics
    /// If `x` is not `[N, C, H, W]` with this layer's `C`, or the window does not fit (then
    /// before the running statistics move, where the layers one by one would have moved
    /// them and then failed in the pooling).
    pub fn forward_relu_max_pool(&self, x: &Var<E>, p: Pool2dParams) -> Var<E> {
        let shape = x.shape();
        let c = self.weight.shape()[0];
        assert!(
            self.takes_images() && shape.len() == 4 && shape[1] == c,
            "{}: expected [batch, {c}, H, W], got {shape:?}",
            Module::<E>::kind(self)
        );
        let (y, mean, var) = x.batch_norm_relu_max_pool(&self.weight, &self.bias, self.eps, p);
        self.running().update(&shape, &mean, &var);
        y
    }

    /// `conv` on `x`, then this layer, a ReLU and the max pooling `p` in training, as one op
    /// ([`Var::conv2d_batch_norm_relu_max_pool`], whose backward pass makes the
    /// convolution's output gradient plane by plane in cache when `x` needs no gradient);
    /// updates the running statistics as [`BatchNorm::forward_relu_max_pool`] does.
    ///
    /// # Panics
    /// As [`BatchNorm::forward_relu_max_pool`] for the convolution's output, and if the
    /// convolution does not fit `x`.
    pub fn forward_conv_relu_max_pool(
        &self,
        x: &Var<E>,
        conv: &crate::conv::Conv2d<E>,
        p: Pool2dParams,
    ) -> Var<E> {
        let c = self.weight.shape()[0];
        let out =
            backprop_tensor::conv2d_output_shape(&x.shape(), &conv.weight.shape(), conv.params)
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            self.takes_images() && out[1] == c,
            "{}: expected [batch, {c}, H, W], got {out:?}",
            Module::<E>::kind(self)
        );
        let (y, mean, var) = x.conv2d_batch_norm_relu_max_pool(
            &conv.weight,
            conv.bias.as_ref(),
            &self.weight,
            &self.bias,
            self.eps,
            (conv.params, p),
        );
        self.running().update(&out, &mean, &var);
        y
    }

    fn run(&self, x: &Var<E>, mode: Mode, relu: bool) -> Var<E> {
        let shape = x.shape();
        let c = self.weight.shape()[0];
        let rank_ok = match self.rank {
            Some(r) => shape.len() == r,
            None => shape.len() == 2 || shape.len() == 4,
        };
        assert!(
            rank_ok && shape[1] == c,
            "{}: expected [batch, {c}] or [batch, {c}, H, W], got {shape:?}",
            Module::<E>::kind(self)
        );
        batch_norm(
            x,
            &self.weight,
            &self.bias,
            &self.running(),
            (self.eps, relu),
            mode,
        )
    }
}

impl<E: Element> Module<E> for BatchNorm<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, mode: Mode) -> Var<E> {
        self.run(x, mode, false)
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        vec![
            ("weight".into(), self.weight.clone()),
            ("bias".into(), self.bias.clone()),
        ]
    }
    fn buffers(&self) -> Vec<(String, Var<E>)> {
        vec![
            ("running_mean".into(), self.running_mean.clone()),
            ("running_var".into(), self.running_var.clone()),
        ]
    }
    fn kind(&self) -> String {
        let name = match self.rank {
            Some(2) => "BatchNorm1d",
            Some(_) => "BatchNorm2d",
            None => "BatchNorm",
        };
        format!("{name}({})", self.weight.shape()[0])
    }
    fn sample_independent(&self) -> bool {
        false
    }
    fn sample_independent_in_eval(&self) -> bool {
        true
    }
}

/// A [`BatchNorm`]'s configuration, `{"type": "batch_norm"}`: per feature for flat inputs,
/// per channel for images.
///
/// ```
/// use backprop_nn::{BatchNormConfig, LayerConfig};
/// use backprop_tensor::Rng;
/// let (bn, out) = BatchNormConfig {}.build::<f32>(&[8, 5, 5], &mut Rng::seed(0)).unwrap();
/// assert_eq!((bn.kind(), out), ("BatchNorm2d(8)".to_string(), vec![8, 5, 5]));
/// assert!(BatchNormConfig {}.build::<f32>(&[8, 5], &mut Rng::seed(0)).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormConfig {}

impl LayerConfig for BatchNormConfig {
    const TYPE: &'static str = "batch_norm";
    const PREFIX: &'static str = "bn";

    /// # Shapes
    /// `[C] → [C]` or `[C, H, W] → [C, H, W]`.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        self.plan(in_shape)?;
        let bn = match *in_shape {
            [c] => BatchNorm::for_features(c),
            _ => BatchNorm::for_images(in_shape[0]),
        };
        Ok((Box::new(bn), in_shape.to_vec()))
    }

    /// γ and β are parameters; the running mean and variance (as many again) are buffers.
    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        match *in_shape {
            [c] | [c, _, _] => Ok(LayerPlan::new(in_shape.to_vec(), count(&[c, 2])?)),
            _ => Err(LayerError::Shape {
                expects: "works on features [C] or images [C, H, W]".into(),
                shape: in_shape.to_vec(),
            }),
        }
    }
}

/// The running statistics of a batch-norm layer.
pub(crate) struct RunningStats<'a, E: Element> {
    pub(crate) mean: &'a Var<E>,
    pub(crate) var: &'a Var<E>,
    pub(crate) momentum: f64,
}

impl<E: Element> RunningStats<'_, E> {
    /// Moves the running statistics toward a training batch's mean and (biased) variance
    /// `var` of an input of shape `s`, the variance made unbiased.
    fn update(&self, s: &[usize], mean: &Tensor<E>, var: &Tensor<E>) {
        let m = (s[0] * s[2..].iter().product::<usize>()) as f64;
        let unbias = if m > 1.0 { m / (m - 1.0) } else { 1.0 };
        let (k, keep) = (E::from_f64(self.momentum), E::from_f64(1.0 - self.momentum));
        self.mean
            .set_value(self.mean.value().mul_scalar(keep).add(&mean.mul_scalar(k)));
        self.var.set_value(
            self.var
                .value()
                .mul_scalar(keep)
                .add(&var.mul_scalar(k * E::from_f64(unbias))),
        );
    }
}

/// Batch normalization of `[N, C]` or `[N, C, H, W]` per channel: the fused training kernel (batch statistics, running
/// statistics updated with the unbiased variance), or in evaluation the per-channel affine
/// map `γ/√(r_var + ε)·x + (β − r_mean·γ/√(r_var + ε))`. With `relu`, ReLU follows (fused
/// into the training kernel).
pub(crate) fn batch_norm<E: Element>(
    x: &Var<E>,
    weight: &Var<E>,
    bias: &Var<E>,
    r: &RunningStats<E>,
    (eps, relu): (f64, bool),
    mode: Mode,
) -> Var<E> {
    match mode {
        Mode::Train => {
            let (y, mean, var) = if relu {
                x.batch_norm_relu(weight, bias, eps)
            } else {
                x.batch_norm(weight, bias, eps)
            };
            r.update(&x.shape(), &mean, &var);
            y
        }
        Mode::Eval => {
            let inv = Var::constant(
                r.var
                    .value()
                    .add_scalar(E::from_f64(eps))
                    .sqrt()
                    .map(|v| E::ONE / v),
            );
            let scale = weight.mul(&inv);
            let shift = bias.sub(&scale.mul(&Var::constant(r.mean.value())));
            let y = x.channel_affine(&scale, &shift);
            if relu {
                y.relu()
            } else {
                y
            }
        }
    }
}

/// Maxout (Goodfellow et al. 2013): each of the `out` units is the maximum of `k` affine
/// maps, `h_i(x) = max_j (W_{ij}·x + b_{ij})`. At a tie the gradient is split evenly.
///
/// Parameters: `weight` `[out·k, in]` (unit `i`'s piece `j` is row `i·k + j`) and `bias`
/// `[out·k]`.
///
/// # Shapes
/// `x: [*, in] → [*, out]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Maxout, Mode, Module};
/// use backprop_tensor::{Rng, Tensor};
/// let m = Maxout::<f32>::new(3, 2, 4, &mut Rng::seed(0));
/// assert_eq!(m.weight.shape(), vec![8, 3]);
/// assert_eq!(m.forward(&Var::constant(Tensor::ones(&[5, 3])), Mode::Eval).shape(), vec![5, 2]);
/// ```
pub struct Maxout<E: Element = f32> {
    /// `[out·k, in]`.
    pub weight: Var<E>,
    /// `[out·k]`.
    pub bias: Var<E>,
    pieces: usize,
}

impl<E: Element> Maxout<E> {
    /// `out` units of `pieces` affine maps each, initialized like [`Linear::new`].
    ///
    /// # Panics
    /// If `pieces` is 0.
    pub fn new(inputs: usize, outputs: usize, pieces: usize, rng: &mut Rng) -> Self {
        assert!(pieces > 0, "Maxout: pieces must be at least 1");
        let l = Linear::new(inputs, outputs * pieces, rng);
        Maxout {
            weight: l.weight,
            bias: l.bias.unwrap(),
            pieces,
        }
    }

    /// Affine maps per unit (`k`).
    pub fn pieces(&self) -> usize {
        self.pieces
    }
}

/// A [`Maxout`] layer's configuration: `{"type": "maxout", "out": 5, "pieces": 3}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxoutConfig {
    /// Input width, if stated; checked against the width that reaches the layer.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub inputs: Option<usize>,
    /// Output width.
    pub out: usize,
    /// Affine maps per unit.
    pub pieces: usize,
}

impl LayerConfig for MaxoutConfig {
    const TYPE: &'static str = "maxout";
    const PREFIX: &'static str = "maxout";
    const INPUT: InputKind = InputKind::Flat;

    /// # Shapes
    /// `[in] → [out]`.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        let out = self.plan(in_shape)?.out_shape;
        let m = Maxout::new(in_shape[0], self.out, self.pieces, rng);
        Ok((Box::new(m), out))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        let width = flat_width(self.inputs, in_shape)?;
        if self.out == 0 || self.pieces == 0 {
            return Err(LayerError::Invalid(
                "out and pieces must be at least 1".into(),
            ));
        }
        let rows = count(&[self.out, self.pieces])?;
        let params = add_counts(count(&[self.out, self.pieces, width])?, rows)?;
        Ok(LayerPlan::new(vec![self.out], params))
    }
}

impl<E: Element> Module<E> for Maxout<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let z = x.linear(&self.weight, Some(&self.bias));
        let mut shape = z.shape();
        let last = shape.pop().unwrap();
        let outputs = last / self.pieces;
        let mut grouped = shape.clone();
        grouped.extend([outputs, self.pieces]);
        z.reshape(&grouped).max_axis(-1, false)
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        vec![
            ("weight".into(), self.weight.clone()),
            ("bias".into(), self.bias.clone()),
        ]
    }
    fn kind(&self) -> String {
        let s = self.weight.shape();
        format!(
            "Maxout({} → {}, k={})",
            s[1],
            s[0] / self.pieces,
            self.pieces
        )
    }
}

/// Flattens every axis after the first: `[batch, d1, d2, ...] → [batch, d1·d2·...]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Flatten, Mode, Module};
/// use backprop_tensor::Tensor;
/// let y = Flatten.forward(&Var::constant(Tensor::<f32>::zeros(&[2, 3, 4])), Mode::Eval);
/// assert_eq!(y.shape(), vec![2, 12]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Flatten;

impl<E: Element> Module<E> for Flatten {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let s = x.shape();
        let batch = s.first().copied().unwrap_or(1);
        x.reshape(&[batch, s.iter().skip(1).product()])
    }
    fn kind(&self) -> String {
        "Flatten".into()
    }
    fn is_shape_only(&self) -> bool {
        true
    }
}

/// A [`Flatten`] layer's configuration, `{"type": "flatten"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlattenConfig {}

impl LayerConfig for FlattenConfig {
    const TYPE: &'static str = "flatten";
    const PREFIX: &'static str = "flatten";

    /// # Shapes
    /// `[d1, d2, ...] → [d1·d2·...]`.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        Ok((Box::new(Flatten), self.plan(in_shape)?.out_shape))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        Ok(LayerPlan::new(vec![count(in_shape)? as usize], 0))
    }
}
