//! Convolutional layers: [`Conv2d`], [`MaxPool2d`], [`AvgPool2d`], [`GlobalAvgPool2d`],
//! [`BatchNorm2d`], and [`Reshape`] (flat features to images).

use backprop_autograd::Var;
use backprop_tensor::{Conv2dParams, Element, Pool2dParams, Rng, Tensor};

use crate::init::Init;
use crate::layers::{batch_norm, RunningStats};
use crate::module::{Mode, Module};

/// A 2-D convolution: `y[n, o] = b[o] + Σ_c w[o, c] ⋆ x[n, c]` (cross-correlation), with
/// stride, zero padding, dilation and groups, computed by im2col + GEMM one image at a time.
///
/// Parameters: `weight` `[out, in/groups, KH, KW]` (PyTorch's layout), `bias` `[out]`.
///
/// # Shapes
/// `x: [N, in, H, W] → [N, out, HO, WO]`, `HO = (H + 2·PH − DH·(KH−1) − 1)/SH + 1`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Conv2d, Mode, Module};
/// use backprop_tensor::{Rng, Tensor};
/// let conv = Conv2d::<f32>::new(1, 6, (5, 5), &mut Rng::seed(0)).padding(2, 2);
/// let y = conv.forward(&Var::constant(Tensor::zeros(&[8, 1, 28, 28])), Mode::Train);
/// assert_eq!(y.shape(), vec![8, 6, 28, 28]);
/// assert_eq!(conv.num_params(), 6 * 25 + 6);
/// ```
pub struct Conv2d<E: Element = f32> {
    /// `[out, in/groups, KH, KW]`.
    pub weight: Var<E>,
    /// `[out]`, if any.
    pub bias: Option<Var<E>>,
    /// Stride, padding, dilation, groups.
    pub params: Conv2dParams,
}

impl<E: Element> Conv2d<E> {
    /// `in → out` channels with a `(KH, KW)` kernel, stride 1, no padding, with a bias;
    /// initialized as PyTorch does (U(±1/√fan_in)).
    pub fn new(inputs: usize, outputs: usize, kernel: (usize, usize), rng: &mut Rng) -> Self {
        Self::with_groups(inputs, outputs, kernel, 1, Init::LecunUniform, true, rng)
    }

    /// Full control: channel groups, initializer, bias.
    ///
    /// # Panics
    /// If `groups` does not divide both channel counts.
    pub fn with_groups(
        inputs: usize,
        outputs: usize,
        kernel: (usize, usize),
        groups: usize,
        init: Init,
        bias: bool,
        rng: &mut Rng,
    ) -> Self {
        assert!(
            groups > 0 && inputs.is_multiple_of(groups) && outputs.is_multiple_of(groups),
            "Conv2d: {groups} groups must divide {inputs} and {outputs} channels"
        );
        let shape = [outputs, inputs / groups, kernel.0, kernel.1];
        let weight = init.tensor(&shape, rng);
        let fan_in = (inputs / groups * kernel.0 * kernel.1).max(1) as f64;
        let b = bias.then(|| {
            Init::Uniform {
                lo: -1.0 / fan_in.sqrt(),
                hi: 1.0 / fan_in.sqrt(),
            }
            .tensor(&[outputs], rng)
        });
        Conv2d {
            weight: Var::parameter(weight),
            bias: b.map(Var::parameter),
            params: Conv2dParams {
                groups,
                ..Default::default()
            },
        }
    }

    /// Sets the stride.
    pub fn stride(mut self, sh: usize, sw: usize) -> Self {
        self.params.stride = (sh, sw);
        self
    }
    /// Sets the zero padding.
    pub fn padding(mut self, ph: usize, pw: usize) -> Self {
        self.params.padding = (ph, pw);
        self
    }
    /// Sets the dilation.
    pub fn dilation(mut self, dh: usize, dw: usize) -> Self {
        self.params.dilation = (dh, dw);
        self
    }
}

impl<E: Element> Module<E> for Conv2d<E> {
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        x.conv2d(&self.weight, self.bias.as_ref(), self.params)
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
    fn kind(&self) -> String {
        let s = self.weight.shape();
        let p = self.params;
        let mut k = format!("Conv2d({} → {}, {}×{}", s[1] * p.groups, s[0], s[2], s[3]);
        if p.stride != (1, 1) {
            k += &format!(", stride {}×{}", p.stride.0, p.stride.1);
        }
        if p.padding != (0, 0) {
            k += &format!(", pad {}×{}", p.padding.0, p.padding.1);
        }
        if p.dilation != (1, 1) {
            k += &format!(", dilation {}×{}", p.dilation.0, p.dilation.1);
        }
        if p.groups != 1 {
            k += &format!(", groups {}", p.groups);
        }
        k + ")"
    }
}

/// Max pooling over `(KH, KW)` windows; the gradient goes to each window's maximum (the
/// first one, in row-major window order, when several tie).
///
/// # Shapes
/// `[N, C, H, W] → [N, C, HO, WO]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{MaxPool2d, Mode, Module};
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f32>::from_vec(vec![1., 2., 3., 4.], &[1, 1, 2, 2]));
/// assert_eq!(MaxPool2d::new(2).forward(&x, Mode::Eval).value().to_vec(), vec![4.0]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d(pub Pool2dParams);

impl MaxPool2d {
    /// `k×k` windows with stride `k`.
    pub fn new(k: usize) -> Self {
        MaxPool2d(Pool2dParams::square(k))
    }
}

impl<E: Element> Module<E> for MaxPool2d {
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        x.max_pool2d(self.0)
    }
    fn kind(&self) -> String {
        pool_kind("MaxPool2d", self.0)
    }
}

fn pool_kind(name: &str, p: Pool2dParams) -> String {
    let mut k = format!("{name}({}×{}", p.kernel.0, p.kernel.1);
    if p.stride != p.kernel {
        k += &format!(", stride {}×{}", p.stride.0, p.stride.1);
    }
    if p.padding != (0, 0) {
        k += &format!(", pad {}×{}", p.padding.0, p.padding.1);
    }
    k + ")"
}

/// Average pooling; zero padding counts in the divisor (`count_include_pad`).
///
/// # Shapes
/// `[N, C, H, W] → [N, C, HO, WO]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{AvgPool2d, Mode, Module};
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f32>::from_vec(vec![1., 2., 3., 4.], &[1, 1, 2, 2]));
/// assert_eq!(AvgPool2d::new(2).forward(&x, Mode::Eval).value().to_vec(), vec![2.5]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AvgPool2d(pub Pool2dParams);

impl AvgPool2d {
    /// `k×k` windows with stride `k`.
    pub fn new(k: usize) -> Self {
        AvgPool2d(Pool2dParams::square(k))
    }
}

impl<E: Element> Module<E> for AvgPool2d {
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        x.avg_pool2d(self.0)
    }
    fn kind(&self) -> String {
        pool_kind("AvgPool2d", self.0)
    }
}

/// Global average pooling: the mean of each channel's map, `[N, C, H, W] → [N, C]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{GlobalAvgPool2d, Mode, Module};
/// use backprop_tensor::Tensor;
/// let x = Var::constant(Tensor::<f32>::from_vec(vec![1., 2., 3., 4.], &[1, 1, 2, 2]));
/// assert_eq!(GlobalAvgPool2d.forward(&x, Mode::Eval).value().to_vec(), vec![2.5]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct GlobalAvgPool2d;

impl<E: Element> Module<E> for GlobalAvgPool2d {
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let s = x.shape();
        assert_eq!(
            s.len(),
            4,
            "GlobalAvgPool2d: expects [N, C, H, W], got {s:?}"
        );
        x.reshape(&[s[0], s[1], s[2] * s[3]]).mean_axis(2, false)
    }
    fn kind(&self) -> String {
        "GlobalAvgPool2d".into()
    }
}

/// Batch normalization of each channel over the batch and both spatial axes (Ioffe &
/// Szegedy 2015): `y = γ_c (x − μ_c)/√(σ²_c + ε) + β_c`, with running statistics for
/// evaluation (momentum 0.1, unbiased running variance, as PyTorch).
///
/// Parameters: `weight` (γ), `bias` (β), `[C]`. Buffers: `running_mean`, `running_var`.
///
/// # Shapes
/// `[N, C, H, W] → [N, C, H, W]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{BatchNorm2d, Mode, Module};
/// use backprop_tensor::{Rng, Tensor};
/// let bn = BatchNorm2d::<f64>::new(3);
/// let x = Var::constant(Tensor::rand_normal(&[4, 3, 5, 5], 2.0, 3.0, &mut Rng::seed(0)));
/// let y = bn.forward(&x, Mode::Train).value();
/// assert!(y.mean_all().item().abs() < 1e-9);
/// ```
pub struct BatchNorm2d<E: Element = f32> {
    /// γ.
    pub weight: Var<E>,
    /// β.
    pub bias: Var<E>,
    /// Running mean (a buffer).
    pub running_mean: Var<E>,
    /// Running variance (a buffer).
    pub running_var: Var<E>,
    eps: f64,
    momentum: f64,
}

impl<E: Element> BatchNorm2d<E> {
    /// γ = 1, β = 0, running mean 0, variance 1, ε = 1e-5, momentum 0.1.
    pub fn new(channels: usize) -> Self {
        BatchNorm2d {
            weight: Var::parameter(Tensor::ones(&[channels])),
            bias: Var::parameter(Tensor::zeros(&[channels])),
            running_mean: Var::constant(Tensor::zeros(&[channels])),
            running_var: Var::constant(Tensor::ones(&[channels])),
            eps: 1e-5,
            momentum: 0.1,
        }
    }
}

impl<E: Element> Module<E> for BatchNorm2d<E> {
    fn forward(&self, x: &Var<E>, mode: Mode) -> Var<E> {
        let s = x.shape();
        let c = self.weight.shape()[0];
        assert!(
            s.len() == 4 && s[1] == c,
            "BatchNorm2d: expects [N, {c}, H, W], got {s:?}"
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
        format!("BatchNorm2d({})", self.weight.shape()[0])
    }
}

/// Reshapes each sample: `[N, d...] → [N, shape...]` (e.g. flat MNIST pixels to
/// `[1, 28, 28]` images).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Mode, Module, Reshape};
/// use backprop_tensor::Tensor;
/// let y = Reshape(vec![1, 28, 28]).forward(&Var::constant(Tensor::<f32>::zeros(&[5, 784])), Mode::Eval);
/// assert_eq!(y.shape(), vec![5, 1, 28, 28]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reshape(pub Vec<usize>);

impl<E: Element> Module<E> for Reshape {
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let mut s = vec![x.shape()[0]];
        s.extend(&self.0);
        x.reshape(&s)
    }
    fn kind(&self) -> String {
        format!("Reshape({:?})", self.0)
    }
}
