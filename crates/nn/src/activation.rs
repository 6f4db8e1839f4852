//! Activation functions, as functions on [`Var`] and as layers ([`Activation`], [`PRelu`]).
//!
//! | name | f(x) | f'(x) |
//! |---|---|---|
//! | unit step | 1 if x > 0, ½ at 0, 0 if x < 0 (the lecture's definition) | 0 (by definition, also at 0) |
//! | sign | −1, 0, 1 (0 at 0) | 0 (by definition, also at 0) |
//! | identity / linear | x | 1 |
//! | sigmoid | σ(x) = 1/(1+e^{−x}) | σ(x)(1−σ(x)) |
//! | tanh | tanh x | 1 − tanh² x |
//! | ReLU | max(x, 0) | 1 if x > 0, else 0 (0 at 0) |
//! | leaky ReLU | x if x > 0, else αx (the lecture uses α = 0.1) | 1 if x > 0, else α (α at 0) |
//! | PReLU | x if x > 0, else a·x, `a` learned | as leaky ReLU; ∂/∂a = x if x ≤ 0 |
//! | ELU | x if x > 0, else α(eˣ − 1) | 1 if x > 0, else αeˣ |
//! | softmax | e^{x_j} / Σ_k e^{x_k} along the last axis | J = diag(p) − ppᵀ |
//! | GELU (tanh form) | ½x(1 + tanh(√(2/π)(x + 0.044715x³))) | by autodiff |
//! | SiLU / swish | x·σ(x) | σ(x)(1 + x(1−σ(x))) |
//! | softplus | ln(1 + eˣ) | σ(x) |
//!
//! The step and sign functions have no useful gradient: a network using them cannot learn by
//! backpropagation (that is what perceptron learning rules are for).

use backprop_autograd::Var;
use backprop_tensor::{Element, Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::layers::BuiltLayer;
use crate::module::{Mode, Module};
use crate::spec::{LayerConfig, LayerError, LayerPlan};

/// Unit step: 1 for x > 0, ½ at 0, 0 for x < 0. Its gradient is 0 everywhere.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f32>::from_vec(vec![-2.0, 0.0, 3.0], &[3]));
/// assert_eq!(backprop_nn::activation::step(&x).value().to_vec(), vec![0.0, 0.5, 1.0]);
/// ```
pub fn step<E: Element>(x: &Var<E>) -> Var<E> {
    let v = x.value();
    let half = E::from_f64(0.5);
    let y = v.map(|t| {
        if t > E::ZERO {
            E::ONE
        } else if t < E::ZERO {
            E::ZERO
        } else {
            half
        }
    });
    Var::from_op("step", y, vec![x.clone()], |g, _| {
        vec![Some(g.zeros_like())]
    })
}

/// Sign: −1, 0 (at 0) or 1. Its gradient is 0 everywhere.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f64>::from_vec(vec![-1.0, 0.0, 2.0], &[3]));
/// let y = backprop_nn::activation::sign(&x).value().to_vec();
/// assert_eq!(y, vec![-1.0, 0.0, 1.0]);
/// ```
pub fn sign<E: Element>(x: &Var<E>) -> Var<E> {
    x.sign()
}

/// Logistic sigmoid σ(x) = 1/(1+e^{−x}); σ' = σ(1−σ).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f64>::from_vec(vec![-1.0, 0.0, 2.0], &[3]));
/// let y = backprop_nn::activation::sigmoid(&x).value().to_vec();
/// assert_eq!(y[1], 0.5);
/// assert!((y[2] - 1.0 / (1.0 + (-2f64).exp())).abs() < 1e-15);
/// ```
pub fn sigmoid<E: Element>(x: &Var<E>) -> Var<E> {
    x.sigmoid()
}

/// Hyperbolic tangent; tanh' = 1 − tanh².
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f64>::from_vec(vec![-1.0, 0.0, 2.0], &[3]));
/// let y = backprop_nn::activation::tanh(&x).value().to_vec();
/// assert_eq!(y[1], 0.0);
/// assert!((y[2] - 2f64.tanh()).abs() < 1e-15);
/// ```
pub fn tanh<E: Element>(x: &Var<E>) -> Var<E> {
    x.tanh()
}

/// ReLU max(x, 0), with relu'(0) = 0.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f64>::from_vec(vec![-1.0, 0.0, 2.0], &[3]));
/// let y = backprop_nn::activation::relu(&x).value().to_vec();
/// assert_eq!(y, vec![0.0, 0.0, 2.0]);
/// ```
pub fn relu<E: Element>(x: &Var<E>) -> Var<E> {
    x.relu()
}

/// Leaky ReLU: x for x > 0, αx otherwise (gradient α at 0).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f32>::from_vec(vec![-2.0, 3.0], &[2]));
/// assert_eq!(backprop_nn::activation::leaky_relu(&x, 0.1).value().to_vec(), vec![-0.2, 3.0]);
/// ```
pub fn leaky_relu<E: Element>(x: &Var<E>, alpha: f64) -> Var<E> {
    let mask = x.with_value(|v| v.gt_scalar(E::ZERO));
    Var::where_(&mask, x, &x.mul_scalar(E::from_f64(alpha)))
}

/// ELU: x for x > 0, α(eˣ − 1) otherwise.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f64>::from_vec(vec![-1.0, 2.0], &[2]));
/// let y = backprop_nn::activation::elu(&x, 1.0).value().to_vec();
/// assert_eq!(y, vec![(-1f64).exp() - 1.0, 2.0]);
/// ```
pub fn elu<E: Element>(x: &Var<E>, alpha: f64) -> Var<E> {
    let mask = x.with_value(|v| v.gt_scalar(E::ZERO));
    // e^{min(x,0)} keeps the unused branch finite for large positive x
    let neg = x
        .minimum_scalar(E::ZERO)
        .exp()
        .add_scalar(-E::ONE)
        .mul_scalar(E::from_f64(alpha));
    Var::where_(&mask, x, &neg)
}

/// GELU in its tanh form, ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f64>::from_vec(vec![-1.0, 0.0, 2.0], &[3]));
/// let y = backprop_nn::activation::gelu(&x).value().to_vec();
/// assert_eq!(y[1], 0.0);
/// assert!((y[2] - 1.9546).abs() < 1e-4);
/// ```
pub fn gelu<E: Element>(x: &Var<E>) -> Var<E> {
    let c = E::from_f64((2.0 / std::f64::consts::PI).sqrt());
    let inner = x
        .add(&x.powf(E::from_f64(3.0)).mul_scalar(E::from_f64(0.044715)))
        .mul_scalar(c);
    x.mul(&inner.tanh().add_scalar(E::ONE))
        .mul_scalar(E::from_f64(0.5))
}

/// SiLU (swish): x·σ(x).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f64>::from_vec(vec![-1.0, 0.0, 2.0], &[3]));
/// let y = backprop_nn::activation::silu(&x).value().to_vec();
/// assert_eq!(y[1], 0.0);
/// assert!((y[2] - 2.0 / (1.0 + (-2f64).exp())).abs() < 1e-15);
/// ```
pub fn silu<E: Element>(x: &Var<E>) -> Var<E> {
    x.mul(&x.sigmoid())
}

/// Softplus ln(1 + eˣ), a smooth ReLU; softplus′ = σ. Computed as max(x, 0) + ln(1 + e^{−|x|})
/// so that it does not overflow for large x (for very negative x its absolute error is that
/// of ln(1 + ε), about one ulp of 1).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f64>::from_vec(vec![-30.0, 0.0, 2.0, 100.0], &[4]));
/// let y = backprop_nn::activation::softplus(&x).value().to_vec();
/// assert!((y[1] - 2f64.ln()).abs() < 1e-15);
/// assert!((y[2] - (1.0 + 2f64.exp()).ln()).abs() < 1e-15);
/// assert!((y[0] - (-30f64).exp()).abs() < 1e-15 && y[3] == 100.0);
/// ```
pub fn softplus<E: Element>(x: &Var<E>) -> Var<E> {
    // max(x, 0) written as (x + |x|)/2: its gradient at 0 is ½, which with the ln term's −½
    // gives σ(0) = ½ exactly
    let pos = x.add(&x.abs()).mul_scalar(E::from_f64(0.5));
    pos.add(&x.abs().neg().exp().add_scalar(E::ONE).log())
}

/// Softmax along the last axis.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f64>::from_vec(vec![-1.0, 0.0, 2.0], &[3]));
/// let y = backprop_nn::activation::softmax(&x).value().to_vec();
/// assert!((y.iter().sum::<f64>() - 1.0).abs() < 1e-15);
/// assert!(y[2] > y[1] && y[1] > y[0]);
/// ```
pub fn softmax<E: Element>(x: &Var<E>) -> Var<E> {
    x.softmax(-1)
}

/// A parameter-free activation as a layer; the one list of activations.
///
/// [`Activation::ALL`] holds every variant with its default parameter, and a spec names an
/// activation layer by [`Activation::name`] (`{"type": "leaky_relu", "slope": 0.2}`): a
/// new activation added here is known to the spec parser, the `mlp` preset and the list of
/// layer types without any other change.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Activation, Mode, Module};
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f32>::from_vec(vec![-1.0, 0.0, 2.0], &[1, 3]));
/// assert_eq!(Activation::Relu.forward(&x, Mode::Eval).value().to_vec(), vec![0.0, 0.0, 2.0]);
/// assert_eq!(Activation::Step.forward(&x, Mode::Eval).value().to_vec(), vec![0.0, 0.5, 1.0]);
/// assert_eq!(Activation::from_name("leaky-relu"), Some(Activation::LeakyRelu(0.1)));
/// assert_eq!(Activation::Silu.name(), "silu");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// Unit step (½ at 0), zero gradient.
    Step,
    /// Sign (0 at 0), zero gradient.
    Sign,
    /// The identity (a "linear" activation).
    Identity,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// max(x, 0).
    Relu,
    /// x or αx.
    LeakyRelu(f64),
    /// x or α(eˣ − 1).
    Elu(f64),
    /// GELU, tanh form.
    Gelu,
    /// x·σ(x).
    Silu,
    /// ln(1 + eˣ).
    Softplus,
    /// Softmax over the last axis.
    Softmax,
}

impl Activation {
    /// Every activation, each with its default parameter (leaky ReLU's slope 0.1 as in the
    /// lecture, ELU's α = 1), in the order menus list them.
    pub const ALL: &'static [Activation] = &[
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Identity,
        Activation::Step,
        Activation::Sign,
        Activation::Gelu,
        Activation::Silu,
        Activation::Softplus,
        Activation::Softmax,
        Activation::LeakyRelu(0.1),
        Activation::Elu(1.0),
    ];

    /// The name in specs and on the command line: `relu`, `leaky_relu`, ...
    pub const fn name(&self) -> &'static str {
        match self {
            Activation::Step => "step",
            Activation::Sign => "sign",
            Activation::Identity => "identity",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Elu(_) => "elu",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::Softplus => "softplus",
            Activation::Softmax => "softmax",
        }
    }

    /// The activation called `name` (or an accepted alias: `linear` for identity, `swish`
    /// for SiLU, `leaky-relu`), with its default parameter.
    ///
    /// ```
    /// use backprop_nn::Activation;
    /// assert_eq!(Activation::from_name("linear"), Some(Activation::Identity));
    /// assert_eq!(Activation::from_name("elu"), Some(Activation::Elu(1.0)));
    /// assert_eq!(Activation::from_name("swoosh"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Activation> {
        let name = match name {
            "linear" => "identity",
            "swish" => "silu",
            "leaky-relu" => "leaky_relu",
            other => other,
        };
        Activation::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// The name of its parameter in a spec (`slope`, `alpha`) and its value, if it has one.
    pub fn param(&self) -> Option<(&'static str, f64)> {
        match *self {
            Activation::LeakyRelu(a) => Some(("slope", a)),
            Activation::Elu(a) => Some(("alpha", a)),
            _ => None,
        }
    }

    /// The same activation with its parameter set to `value` (unchanged if it has none).
    pub fn with_param(self, value: f64) -> Activation {
        match self {
            Activation::LeakyRelu(_) => Activation::LeakyRelu(value),
            Activation::Elu(_) => Activation::Elu(value),
            other => other,
        }
    }

    /// The lecture's formula for `a = f(z)` and `f′(z)`, for a math panel.
    ///
    /// ```
    /// use backprop_nn::Activation;
    /// assert!(Activation::Relu.formula().starts_with("a = max(0, z)"));
    /// ```
    pub fn formula(&self) -> &'static str {
        match self {
            Activation::Step => "a = 1 if z > 0, ½ if z = 0, else 0,  f′(z) = 0",
            Activation::Sign => "a = sign z,  f′(z) = 0",
            Activation::Identity => "a = z,  f′(z) = 1",
            Activation::Sigmoid => "a = σ(z) = 1/(1 + e^−z),  f′(z) = σ(z)(1 − σ(z))",
            Activation::Tanh => "a = tanh z,  f′(z) = 1 − tanh² z",
            Activation::Relu => "a = max(0, z),  f′(z) = 1 if z > 0 else 0",
            Activation::LeakyRelu(_) => "a = z if z > 0 else αz,  f′(z) = 1 if z > 0 else α",
            Activation::Elu(_) => "a = z if z > 0 else α(e^z − 1),  f′(z) = 1 if z > 0 else αe^z",
            Activation::Gelu => {
                "a = ½z(1 + tanh(√(2/π)(z + 0.044715z³))),  f′(z) by the chain rule"
            }
            Activation::Silu => "a = z·σ(z),  f′(z) = σ(z)(1 + z(1 − σ(z)))",
            Activation::Softplus => "a = ln(1 + e^z),  f′(z) = σ(z) = 1/(1 + e^−z)",
            Activation::Softmax => "a_j = e^{z_j} / Σ_k e^{z_k},  ∂a_i/∂z_j = a_i(δ_ij − a_j)",
        }
    }

    /// False for step and sign, whose derivative is zero everywhere: a network using them
    /// cannot learn by backpropagation.
    pub fn has_gradient(&self) -> bool {
        !matches!(self, Activation::Step | Activation::Sign)
    }

    /// True if each output depends on its own input alone (false for softmax, which mixes
    /// a sample's features).
    pub fn is_elementwise(&self) -> bool {
        !matches!(self, Activation::Softmax)
    }
}

impl<E: Element> Module<E> for Activation {
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        match *self {
            Activation::Step => step(x),
            Activation::Sign => sign(x),
            Activation::Identity => x.clone(),
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => tanh(x),
            Activation::Relu => relu(x),
            Activation::LeakyRelu(a) => leaky_relu(x, a),
            Activation::Elu(a) => elu(x, a),
            Activation::Gelu => gelu(x),
            Activation::Silu => silu(x),
            Activation::Softplus => softplus(x),
            Activation::Softmax => softmax(x),
        }
    }
    fn activation(&self) -> Option<Activation> {
        Some(*self)
    }
    fn kind(&self) -> String {
        match self {
            Activation::LeakyRelu(a) => format!("LeakyReLU({a})"),
            Activation::Elu(a) => format!("ELU({a})"),
            other => format!("{other:?}").replace("Relu", "ReLU"),
        }
    }
}

/// Parametric ReLU (He et al. 2015): `x` for x > 0, `a·x` otherwise, with the slope `a`
/// learned, either one shared slope or one per channel (axis 1 of the input).
///
/// Parameter: `weight`, shape `[1]` (shared) or `[channels]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Mode, Module, PRelu};
/// use backprop_tensor::Tensor;
/// let p = PRelu::<f32>::per_channel(2, 0.25);
/// let x = Var::constant(Tensor::from_vec(vec![-4.0, 4.0], &[1, 2]));
/// assert_eq!(p.forward(&x, Mode::Train).value().to_vec(), vec![-1.0, 4.0]);
/// ```
pub struct PRelu<E: Element = f32> {
    /// The slopes.
    pub weight: Var<E>,
}

impl<E: Element> PRelu<E> {
    /// One slope shared by every unit, starting at `init` (PyTorch uses 0.25).
    pub fn shared(init: f64) -> Self {
        PRelu {
            weight: Var::parameter(Tensor::full(&[1], E::from_f64(init))),
        }
    }
    /// One slope per channel (axis 1), each starting at `init`.
    pub fn per_channel(channels: usize, init: f64) -> Self {
        PRelu {
            weight: Var::parameter(Tensor::full(&[channels], E::from_f64(init))),
        }
    }
}

impl<E: Element> Module<E> for PRelu<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let shape = x.shape();
        let c = self.weight.shape()[0];
        let slope = if c == 1 {
            self.weight.clone()
        } else {
            assert!(
                shape.len() >= 2 && shape[1] == c,
                "PRelu: {c} slopes for an input of shape {shape:?} (channels are axis 1)"
            );
            // [C] -> [C, 1, ..., 1] so it broadcasts over the axes after the channel axis
            let mut s = vec![c];
            s.extend(std::iter::repeat_n(1, shape.len() - 2));
            self.weight.reshape(&s)
        };
        let mask = x.with_value(|v| v.gt_scalar(E::ZERO));
        Var::where_(&mask, x, &x.mul(&slope))
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        vec![("weight".into(), self.weight.clone())]
    }
    fn kind(&self) -> String {
        format!("PReLU({})", self.weight.shape()[0])
    }
}

fn quarter() -> f64 {
    0.25
}

/// A [`PRelu`] layer's configuration: `{"type": "prelu", "per_channel": true, "init": 0.25}`.
///
/// ```
/// use backprop_nn::{LayerConfig, PReluConfig};
/// use backprop_tensor::Rng;
/// let cfg = PReluConfig { per_channel: true, ..Default::default() };
/// let (p, out) = cfg.build::<f32>(&[6, 4, 4], &mut Rng::seed(0)).unwrap();
/// assert_eq!((p.num_params(), out), (6, vec![6, 4, 4]));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PReluConfig {
    /// One slope per feature (channel) instead of one shared slope.
    #[serde(default)]
    pub per_channel: bool,
    /// Initial slope (default 0.25, PyTorch's).
    #[serde(default = "quarter")]
    pub init: f64,
}

impl Default for PReluConfig {
    fn default() -> Self {
        PReluConfig {
            per_channel: false,
            init: quarter(),
        }
    }
}

impl LayerConfig for PReluConfig {
    const TYPE: &'static str = "prelu";
    const PREFIX: &'static str = "prelu";

    /// # Shapes
    /// `[C, ...] → [C, ...]`; per channel, one slope for each of the `C`.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        self.plan(in_shape)?;
        let p = if self.per_channel {
            PRelu::per_channel(in_shape[0], self.init)
        } else {
            PRelu::shared(self.init)
        };
        Ok((Box::new(p), in_shape.to_vec()))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        let params = match (self.per_channel, in_shape.first()) {
            (false, _) => 1,
            (true, Some(&c)) => c as u64,
            (true, None) => {
                return Err(LayerError::Shape {
                    expects: "needs a channel axis for one slope per channel".into(),
                    shape: in_shape.to_vec(),
                })
            }
        };
        Ok(LayerPlan::new(in_shape.to_vec(), params))
    }
}
