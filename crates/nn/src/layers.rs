//! Layers with parameters or modes: [`Linear`], [`Dropout`], [`LayerNorm`],
//! [`BatchNorm1d`], [`Maxout`], [`Flatten`].

use std::sync::Mutex;

use backprop_autograd::Var;
use backprop_tensor::{Element, Rng, Tensor};

use crate::init::Init;
use crate::module::{Mode, Module};

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
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        x.linear(&self.weight, self.bias.as_ref())
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
    fn reseed(&self, seed: u64) {
        *self.rng.lock().unwrap() = Rng::seed(seed);
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

impl<E: Element> Module<E> for LayerNorm<E> {
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

/// Batch normalization (Ioffe & Szegedy 2015) of each feature over the batch.
///
/// Training: `y = γ ⊙ (x − μ_B)/√(σ²_B + ε) + β` with the batch mean and biased variance;
/// the running statistics move as `r ← (1 − m)·r + m·s` (momentum `m` = 0.1, the running
/// variance using the unbiased batch variance, as PyTorch does). Evaluation uses the running
/// statistics instead.
///
/// Parameters: `weight` (γ) and `bias` (β), `[features]`. Buffers: `running_mean`,
/// `running_var`.
///
/// # Shapes
/// `x: [batch, features] → [batch, features]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{BatchNorm1d, Mode, Module};
/// use backprop_tensor::Tensor;
/// let bn = BatchNorm1d::<f64>::new(2);
/// let x = Var::constant(Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2]));
/// let y = bn.forward(&x, Mode::Train).value();
/// assert!((y.get(&[0, 0]) + 1.0).abs() < 1e-4 && (y.get(&[1, 1]) - 1.0).abs() < 1e-4);
/// assert!((bn.running_mean.value().to_vec()[0] - 0.2).abs() < 1e-12);
/// ```
pub struct BatchNorm1d<E: Element = f32> {
    /// γ, `[features]`.
    pub weight: Var<E>,
    /// β, `[features]`.
    pub bias: Var<E>,
    /// Running mean, `[features]` (a buffer, not learned).
    pub running_mean: Var<E>,
    /// Running variance, `[features]` (a buffer, not learned).
    pub running_var: Var<E>,
    eps: f64,
    momentum: f64,
}

impl<E: Element> BatchNorm1d<E> {
    /// γ = 1, β = 0, running mean 0 and variance 1, ε = 1e-5, momentum 0.1.
    pub fn new(features: usize) -> Self {
        BatchNorm1d {
            weight: Var::parameter(Tensor::ones(&[features])),
            bias: Var::parameter(Tensor::zeros(&[features])),
            running_mean: Var::constant(Tensor::zeros(&[features])),
            running_var: Var::constant(Tensor::ones(&[features])),
            eps: 1e-5,
            momentum: 0.1,
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
}

impl<E: Element> Module<E> for BatchNorm1d<E> {
    fn forward(&self, x: &Var<E>, mode: Mode) -> Var<E> {
        let shape = x.shape();
        assert!(
            shape.len() == 2 && shape[1] == self.weight.shape()[0],
            "BatchNorm1d: expected [batch, {}], got {shape:?}",
            self.weight.shape()[0]
        );
        let r = RunningStats {
            mean: &self.running_mean,
            var: &self.running_var,
            momentum: self.momentum,
        };
        batch_norm(x, &self.weight, &self.bias, &r, self.eps, mode)
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
        format!("BatchNorm1d({})", self.weight.shape()[0])
    }
}

/// The running statistics of a batch-norm layer.
pub(crate) struct RunningStats<'a, E: Element> {
    pub(crate) mean: &'a Var<E>,
    pub(crate) var: &'a Var<E>,
    pub(crate) momentum: f64,
}

/// Batch normalization of `[N, C]` or `[N, C, H, W]` per channel, shared by
/// [`BatchNorm1d`] and `BatchNorm2d`: the fused training kernel (batch statistics, running
/// statistics updated with the unbiased variance), or in evaluation the per-channel affine
/// map `γ/√(r_var + ε)·x + (β − r_mean·γ/√(r_var + ε))`.
pub(crate) fn batch_norm<E: Element>(
    x: &Var<E>,
    weight: &Var<E>,
    bias: &Var<E>,
    r: &RunningStats<E>,
    eps: f64,
    mode: Mode,
) -> Var<E> {
    match mode {
        Mode::Train => {
            let (y, mean, var) = x.batch_norm(weight, bias, eps);
            let s = x.shape();
            let m = (s[0] * s[2..].iter().product::<usize>()) as f64;
            let unbias = if m > 1.0 { m / (m - 1.0) } else { 1.0 };
            let (k, keep) = (E::from_f64(r.momentum), E::from_f64(1.0 - r.momentum));
            r.mean
                .set_value(r.mean.value().mul_scalar(keep).add(&mean.mul_scalar(k)));
            r.var.set_value(
                r.var
                    .value()
                    .mul_scalar(keep)
                    .add(&var.mul_scalar(k * E::from_f64(unbias))),
            );
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
            x.channel_affine(&scale, &shift)
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
}

impl<E: Element> Module<E> for Maxout<E> {
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
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let s = x.shape();
        let batch = s.first().copied().unwrap_or(1);
        x.reshape(&[batch, s.iter().skip(1).product()])
    }
    fn kind(&self) -> String {
        "Flatten".into()
    }
}
