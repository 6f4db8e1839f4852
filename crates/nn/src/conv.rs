//! Convolutional layers: [`Conv2d`], [`MaxPool2d`], [`AvgPool2d`], [`GlobalAvgPool2d`],
//! and [`Reshape`] (flat features to images), each with its configuration
//! ([`Conv2dConfig`], ...) as a spec names it. Batch normalization of images is
//! [`BatchNorm`](crate::BatchNorm).

use backprop_autograd::Var;
use backprop_tensor::{
    conv2d_output_shape, pool2d_output_shape, Conv2dParams, Element, Pool2dParams, Rng,
};
use serde::{Deserialize, Serialize};

use crate::init::Init;
use crate::layers::{init_named, BuiltLayer};
use crate::module::{Mode, Module};
use crate::spec::{add_counts, count, InputKind, LayerConfig, LayerError, LayerPlan};

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

/// Checks that a spatial layer gets images `[C, H, W]`.
fn image_shape(in_shape: &[usize]) -> Result<[usize; 3], LayerError> {
    match *in_shape {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(LayerError::Shape {
            expects: "needs images [channels, height, width]".into(),
            shape: in_shape.to_vec(),
        }),
    }
}

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

/// A [`Conv2d`] layer's configuration:
/// `{"type": "conv2d", "out": 6, "kernel": 5, "padding": 2}`.
///
/// ```
/// use backprop_nn::{Conv2dConfig, LayerConfig};
/// use backprop_tensor::Rng;
/// let cfg = Conv2dConfig::new(6, 5).with_padding(2);
/// let (conv, out) = cfg.build::<f32>(&[1, 28, 28], &mut Rng::seed(0)).unwrap();
/// assert_eq!(out, vec![6, 28, 28]);
/// assert_eq!(conv.num_params(), 6 * 25 + 6);
/// let err = Conv2dConfig::new(6, 5).with_inputs(3).build::<f32>(&[1, 28, 28], &mut Rng::seed(0));
/// assert!(err.is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dConfig {
    /// Input channels, if stated; checked against the layer before.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub inputs: Option<usize>,
    /// Output channels.
    pub out: usize,
    /// Kernel size: `k` or `[kh, kw]`.
    pub kernel: Pair,
    /// Stride (default 1).
    #[serde(default = "pair_one")]
    pub stride: Pair,
    /// Zero padding (default 0).
    #[serde(default = "pair_zero")]
    pub padding: Pair,
    /// Dilation (default 1).
    #[serde(default = "pair_one")]
    pub dilation: Pair,
    /// Channel groups (default 1).
    #[serde(default = "one_usize")]
    pub groups: usize,
    /// Whether it has a bias (default true).
    #[serde(default = "yes")]
    pub bias: bool,
    /// Initializer name (default `lecun_uniform`, PyTorch's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
}

impl Conv2dConfig {
    /// `out` channels with a square `kernel`; stride 1, no padding, dilation 1, one group,
    /// a bias, PyTorch's initialization.
    pub fn new(out: usize, kernel: usize) -> Self {
        Conv2dConfig {
            inputs: None,
            out,
            kernel: Pair::One(kernel),
            stride: pair_one(),
            padding: pair_zero(),
            dilation: pair_one(),
            groups: 1,
            bias: true,
            init: None,
        }
    }
    /// States the input channels.
    pub fn with_inputs(mut self, channels: usize) -> Self {
        self.inputs = Some(channels);
        self
    }
    /// Square stride.
    pub fn with_stride(mut self, s: usize) -> Self {
        self.stride = Pair::One(s);
        self
    }
    /// Square zero padding.
    pub fn with_padding(mut self, p: usize) -> Self {
        self.padding = Pair::One(p);
        self
    }
    /// Square dilation.
    pub fn with_dilation(mut self, d: usize) -> Self {
        self.dilation = Pair::One(d);
        self
    }
    /// Channel groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
    /// With or without a bias.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    /// An initializer by name.
    pub fn with_init(mut self, init: &str) -> Self {
        self.init = Some(init.to_string());
        self
    }

    /// The layer for images `[C, H, W]`, with its output shape.
    ///
    /// # Errors
    /// If the stated channels differ, the groups do not divide the channels, the
    /// initializer is unknown or the kernel does not fit the (padded) image.
    pub fn init<E: Element>(
        &self,
        in_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<(Conv2d<E>, Vec<usize>), LayerError> {
        // every check (channels, groups, initializer, the kernel fitting) before allocating
        let out_shape = self.plan(in_shape)?.out_shape;
        let init = init_named(self.init.as_deref())?;
        let (s, p, d) = (self.stride.hw(), self.padding.hw(), self.dilation.hw());
        let conv = Conv2d::with_groups(
            in_shape[0],
            self.out,
            self.kernel.hw(),
            self.groups,
            init,
            self.bias,
            rng,
        )
        .stride(s.0, s.1)
        .padding(p.0, p.1)
        .dilation(d.0, d.1);
        Ok((conv, out_shape))
    }
}

impl LayerConfig for Conv2dConfig {
    const TYPE: &'static str = "conv2d";
    const PREFIX: &'static str = "conv";
    const INPUT: InputKind = InputKind::Image;

    /// # Shapes
    /// `[in, H, W] → [out, HO, WO]`.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        let (conv, out) = self.init::<E>(in_shape, rng)?;
        Ok((Box::new(conv), out))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        let [c, h, w] = image_shape(in_shape)?;
        let (out, groups) = (self.out, self.groups);
        if let Some(k) = self.inputs.filter(|&k| k != c) {
            return Err(LayerError::Shape {
                expects: format!("expects {k} input channels"),
                shape: in_shape.to_vec(),
            });
        }
        if out == 0 || groups == 0 || !c.is_multiple_of(groups) || !out.is_multiple_of(groups) {
            return Err(LayerError::Invalid(format!("{groups} groups must divide both {c} input and {out} output channels (and out must be at least 1)")));
        }
        init_named(self.init.as_deref())?;
        let (kh, kw) = self.kernel.hw();
        let weight = [out, c / groups, kh, kw];
        let params = Conv2dParams {
            stride: self.stride.hw(),
            padding: self.padding.hw(),
            dilation: self.dilation.hw(),
            groups,
        };
        let y = conv2d_output_shape(&[1, c, h, w], &weight, params)
            .map_err(|e| LayerError::Invalid(e.to_string()))?;
        let bias = if self.bias { out as u64 } else { 0 };
        Ok(LayerPlan::new(
            y[1..].to_vec(),
            add_counts(count(&weight)?, bias)?,
        ))
    }
}

impl<E: Element> Module<E> for Conv2d<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        x.conv2d(&self.weight, self.bias.as_ref(), self.params)
    }
    fn as_conv2d(&self) -> Option<&Conv2d<E>> {
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
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        x.max_pool2d(self.0)
    }
    fn kind(&self) -> String {
        pool_kind("MaxPool2d", self.0)
    }
}

macro_rules! pool_config {
    ($(#[$doc:meta])* $config:ident, $layer:ident, $ty:literal, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $config {
            /// Window: `k` or `[kh, kw]`.
            pub kernel: Pair,
            /// Stride (default: the window).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub stride: Option<Pair>,
            /// Padding (default 0).
            #[serde(default = "pair_zero")]
            pub padding: Pair,
        }

        impl $config {
            /// `k×k` windows with stride `k`, no padding.
            pub fn new(k: usize) -> Self {
                $config {
                    kernel: Pair::One(k),
                    stride: None,
                    padding: pair_zero(),
                }
            }
            /// The kernel's parameters.
            pub fn params(&self) -> Pool2dParams {
                Pool2dParams {
                    kernel: self.kernel.hw(),
                    stride: self.stride.unwrap_or(self.kernel).hw(),
                    padding: self.padding.hw(),
                }
            }
        }

        impl LayerConfig for $config {
            const TYPE: &'static str = $ty;
            const PREFIX: &'static str = $prefix;
            const INPUT: InputKind = InputKind::Image;

            /// # Shapes
            /// `[C, H, W] → [C, HO, WO]`.
            fn build<E: Element>(&self, in_shape: &[usize], _rng: &mut Rng) -> Result<BuiltLayer<E>, LayerError> {
                let out = self.plan(in_shape)?.out_shape;
                Ok((Box::new($layer(self.params())), out))
            }

            fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
                let [c, h, w] = image_shape(in_shape)?;
                let y = pool2d_output_shape(&[1, c, h, w], self.params())
                    .map_err(|e| LayerError::Invalid(e.to_string()))?;
                Ok(LayerPlan::new(y[1..].to_vec(), 0))
            }
        }
    };
}

pool_config!(
    /// A [`MaxPool2d`] layer's configuration: `{"type": "max_pool2d", "kernel": 2}`.
    MaxPool2dConfig, MaxPool2d, "max_pool2d", "pool"
);
pool_config!(
    /// An [`AvgPool2d`] layer's configuration: `{"type": "avg_pool2d", "kernel": 2}`.
    AvgPool2dConfig, AvgPool2d, "avg_pool2d", "avgpool"
);

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
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
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
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
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

/// A [`GlobalAvgPool2d`] layer's configuration, `{"type": "global_avg_pool"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalAvgPoolConfig {}

impl LayerConfig for GlobalAvgPoolConfig {
    const TYPE: &'static str = "global_avg_pool";
    const PREFIX: &'static str = "gap";
    const INPUT: InputKind = InputKind::Image;

    /// # Shapes
    /// `[C, H, W] → [C]`.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        let [c, _, _] = image_shape(in_shape)?;
        Ok((Box::new(GlobalAvgPool2d), vec![c]))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        let [c, _, _] = image_shape(in_shape)?;
        Ok(LayerPlan::new(vec![c], 0))
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
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let mut s = vec![x.shape()[0]];
        s.extend(&self.0);
        x.reshape(&s)
    }
    fn kind(&self) -> String {
        format!("Reshape({:?})", self.0)
    }
    fn is_shape_only(&self) -> bool {
        true
    }
}

/// A [`Reshape`] layer's configuration: `{"type": "reshape", "shape": [1, 28, 28]}`.
///
/// ```
/// use backprop_nn::{LayerConfig, ReshapeConfig};
/// use backprop_tensor::Rng;
/// let cfg = ReshapeConfig { shape: vec![1, 28, 28] };
/// assert_eq!(cfg.build::<f32>(&[784], &mut Rng::seed(0)).unwrap().1, vec![1, 28, 28]);
/// assert!(cfg.build::<f32>(&[783], &mut Rng::seed(0)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReshapeConfig {
    /// The new per-sample shape.
    pub shape: Vec<usize>,
}

impl LayerConfig for ReshapeConfig {
    const TYPE: &'static str = "reshape";
    const PREFIX: &'static str = "reshape";

    /// # Shapes
    /// `[d...] → shape`, with as many values.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        _rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        let out = self.plan(in_shape)?.out_shape;
        Ok((Box::new(Reshape(out.clone())), out))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        let to = &self.shape;
        let n = count(to)?;
        if to.is_empty() || to.contains(&0) || n != count(in_shape)? {
            return Err(LayerError::Shape {
                expects: format!("reshapes {n} values into {to:?}"),
                shape: in_shape.to_vec(),
            });
        }
        Ok(LayerPlan::new(to.clone(), 0))
    }
}
