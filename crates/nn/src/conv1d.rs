//! One-dimensional convolution, [`Conv1d`], with stride, zero padding and dilation — the
//! time-delay neural network (Waibel et al. 1989): each output frame sees a window of `k`
//! input frames (`dilation` apart), with the same weights at every time step. Its spec
//! configuration is [`Conv1dConfig`].
//!
//! The weights are PyTorch's `nn.Conv1d`'s: `weight` `[out, in, k]`, `bias` `[out]`, drawn
//! from U(−1/√(in·k), 1/√(in·k)). The work is the 2-D convolution's (im2col + GEMM) on a
//! height-1 image, so it is as fast and as tested as `Conv2d`.

use backprop_autograd::Var;
use backprop_tensor::{Conv2dParams, Element, Rng};
use serde::{Deserialize, Serialize};

use crate::init::Init;
use crate::layers::BuiltLayer;
use crate::module::{Mode, Module};
use crate::spec::{add_counts, count, InputKind, LayerConfig, LayerError, LayerPlan};

/// How a [`Conv1d`] lays out its input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conv1dLayout {
    /// PyTorch's `[N, C, L]`: channels, then time.
    #[default]
    ChannelsFirst,
    /// `[N, T, F]`: time, then features — a sequence as the recurrent layers and the spec
    /// see it (the layer transposes in and out).
    StepsFirst,
}

/// A 1-D convolution (cross-correlation): `y[n, o, t] = b[o] + Σ_c Σ_j w[o, c, j] ·
/// x[n, c, s·t + d·j − p]` (zero outside the input).
///
/// # Shapes
/// `[N, in, L] → [N, out, LO]` with `LO = (L + 2p − d·(k−1) − 1)/s + 1`; with
/// [`Conv1dLayout::StepsFirst`], `[N, L, in] → [N, LO, out]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Conv1d, Mode, Module};
/// use backprop_tensor::{Rng, Tensor};
/// let conv = Conv1d::<f32>::new(16, 8, 3, &mut Rng::seed(0)).stride(2).padding(1).dilation(2);
/// let y = conv.forward(&Var::constant(Tensor::zeros(&[4, 16, 15])), Mode::Eval);
/// assert_eq!(y.shape(), vec![4, 8, 7]); // (15 + 2 − 2·2 − 1)/2 + 1
/// assert_eq!(conv.params()[0].1.shape(), vec![8, 16, 3]); // PyTorch's out × in × k
/// ```
pub struct Conv1d<E: Element = f32> {
    /// `[out, in, k]`.
    pub weight: Var<E>,
    /// `[out]`, if any.
    pub bias: Option<Var<E>>,
    /// Stride s.
    pub stride: usize,
    /// Zero padding p on each side.
    pub padding: usize,
    /// Dilation d: the taps are `d` steps apart.
    pub dilation: usize,
    /// The input and output layout.
    pub layout: Conv1dLayout,
}

impl<E: Element> Conv1d<E> {
    /// `inputs → outputs` channels, kernel `k`, stride 1, no padding, dilation 1, a bias,
    /// PyTorch's initialisation U(±1/√(inputs·k)).
    ///
    /// # Panics
    /// If a size is 0.
    pub fn new(inputs: usize, outputs: usize, k: usize, rng: &mut Rng) -> Self {
        Self::with_bias(inputs, outputs, k, true, rng)
    }

    /// As [`Conv1d::new`], with or without a bias.
    ///
    /// # Panics
    /// If a size is 0.
    pub fn with_bias(inputs: usize, outputs: usize, k: usize, bias: bool, rng: &mut Rng) -> Self {
        assert!(
            inputs > 0 && outputs > 0 && k > 0,
            "Conv1d: channels and kernel must be at least 1"
        );
        let shape = [outputs, inputs, k];
        let weight = Init::LecunUniform.tensor(&shape, rng);
        let a = 1.0 / ((inputs * k) as f64).sqrt();
        let b = bias.then(|| Init::Uniform { lo: -a, hi: a }.tensor(&[outputs], rng));
        Conv1d {
            weight: Var::parameter(weight),
            bias: b.map(Var::parameter),
            stride: 1,
            padding: 0,
            dilation: 1,
            layout: Conv1dLayout::ChannelsFirst,
        }
    }
    /// Sets the stride.
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = s;
        self
    }
    /// Sets the zero padding on each side.
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = p;
        self
    }
    /// Sets the dilation.
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = d;
        self
    }
    /// Sets the layout.
    pub fn layout(mut self, layout: Conv1dLayout) -> Self {
        self.layout = layout;
        self
    }

    fn conv2d_params(&self) -> Conv2dParams {
        conv1d_params(self.stride, self.padding, self.dilation)
    }
}

/// The output length `(l + 2p − d·(k−1) − 1)/s + 1`, or `None` if the kernel's span does
/// not fit the padded input (or a size overflows).
pub fn conv1d_steps(l: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
    let span = d.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
    let padded = l.checked_add(p.checked_mul(2)?)?;
    Some(padded.checked_sub(span)? / s.max(1) + 1)
}

fn conv1d_params(s: usize, p: usize, d: usize) -> Conv2dParams {
    Conv2dParams {
        stride: (1, s),
        padding: (0, p),
        dilation: (1, d),
        groups: 1,
    }
}

impl<E: Element> Module<E> for Conv1d<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let x = match self.layout {
            Conv1dLayout::ChannelsFirst => x.clone(),
            Conv1dLayout::StepsFirst => x.transpose(1, 2),
        };
        let s = x.shape();
        assert!(
            s.len() == 3,
            "{}: the input {s:?} must be [N, C, L]",
            Module::<E>::kind(self)
        );
        let w = self.weight.shape();
        let img = x.reshape(&[s[0], s[1], 1, s[2]]);
        let w4 = self.weight.reshape(&[w[0], w[1], 1, w[2]]);
        let y = img.conv2d(&w4, self.bias.as_ref(), self.conv2d_params());
        let ys = y.shape();
        let y = y.reshape(&[ys[0], ys[1], ys[3]]);
        match self.layout {
            Conv1dLayout::ChannelsFirst => y,
            Conv1dLayout::StepsFirst => y.transpose(1, 2),
        }
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
    fn kind(&self) -> String {
        let w = self.weight.shape();
        let mut k = format!("Conv1d({} → {}, k {}", w[1], w[0], w[2]);
        for (name, v, default) in [
            ("stride", self.stride, 1),
            ("pad", self.padding, 0),
            ("dilation", self.dilation, 1),
        ] {
            if v != default {
                k += &format!(", {name} {v}");
            }
        }
        k + ")"
    }
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// A [`Conv1d`] layer in a spec, over sequences `[T, F]` (steps, features):
/// `{"type": "conv1d", "out": 8, "kernel": 3, "stride": 1, "padding": 0, "dilation": 1}`.
/// The features are the channels; the output is a sequence `[TO, out]`, so time-delay
/// layers stack and feed recurrent layers. Flat data with an image shape `[1, H, W]` is read
/// row by row (H steps of W features), as for the recurrent layers.
///
/// ```
/// use backprop_nn::{Conv1dConfig, LayerConfig};
/// use backprop_tensor::Rng;
/// let cfg = Conv1dConfig { padding: 1, ..Conv1dConfig::new(8, 3) };
/// let (conv, out) = cfg.build::<f32>(&[28, 28], &mut Rng::seed(0)).unwrap();
/// assert_eq!(out, vec![28, 8]);
/// assert_eq!(conv.num_params(), 8 * 28 * 3 + 8);
/// assert!(Conv1dConfig::new(8, 30).build::<f32>(&[28, 28], &mut Rng::seed(0)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv1dConfig {
    /// Output channels.
    pub out: usize,
    /// Kernel size k (time steps seen).
    pub kernel: usize,
    /// Stride (default 1).
    #[serde(default = "one")]
    pub stride: usize,
    /// Zero padding on each side (default 0).
    #[serde(default)]
    pub padding: usize,
    /// Dilation (default 1).
    #[serde(default = "one")]
    pub dilation: usize,
    /// Whether it has a bias (default true).
    #[serde(default = "yes")]
    pub bias: bool,
}

impl Conv1dConfig {
    /// `out` channels, kernel `kernel`, stride 1, no padding, dilation 1, a bias.
    pub fn new(out: usize, kernel: usize) -> Self {
        Conv1dConfig {
            out,
            kernel,
            stride: 1,
            padding: 0,
            dilation: 1,
            bias: true,
        }
    }
}

impl LayerConfig for Conv1dConfig {
    const TYPE: &'static str = "conv1d";
    const PREFIX: &'static str = "conv1d";
    const INPUT: InputKind = InputKind::Sequence;

    /// # Shapes
    /// `[T, in] → [TO, out]`.
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        let out = self.plan(in_shape)?.out_shape;
        let conv = Conv1d::<E>::with_bias(in_shape[1], self.out, self.kernel, self.bias, rng)
            .stride(self.stride)
            .padding(self.padding)
            .dilation(self.dilation)
            .layout(Conv1dLayout::StepsFirst);
        Ok((Box::new(conv), out))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        let [t, f] = *in_shape else {
            return Err(LayerError::Shape {
                expects: "needs sequences [steps, features]".into(),
                shape: in_shape.to_vec(),
            });
        };
        if self.out == 0 || self.kernel == 0 || self.stride == 0 || self.dilation == 0 {
            return Err(LayerError::Invalid(
                "out, kernel, stride and dilation must be at least 1".into(),
            ));
        }
        let weight = [self.out, f, self.kernel];
        let steps = conv1d_steps(t, self.kernel, self.stride, self.padding, self.dilation)
            .ok_or_else(|| {
                LayerError::Invalid(format!(
                    "a kernel of {} steps with dilation {} spans more than the {t} steps (padded by {} on each side)",
                    self.kernel, self.dilation, self.padding
                ))
            })?;
        let bias = if self.bias { self.out as u64 } else { 0 };
        Ok(LayerPlan::new(
            vec![steps, self.out],
            add_counts(count(&weight)?, bias)?,
        ))
    }
}
