//! The Jordan network (Jordan 1986): a recurrent network whose memory is its own past
//! output. A context layer keeps a decaying sum of the outputs,
//!
//! ```text
//! c_0 given (zeros by default),   c_t = μ·c_{t−1} + y_{t−1}   (t ≥ 1)
//! h_t = tanh(W_ih x_t + W_ch c_t + b_h)
//! y_t = f(W_ho h_t + b_o)
//! ```
//!
//! with μ ∈ [0, 1) the context's self-connection (Jordan's "memory decay") and f the output
//! activation (identity by default). An Elman network feeds back the hidden layer; a Jordan
//! network feeds back the output, so what it remembers is what it has said.
//!
//! # Shapes
//! - input `[T, B, I]` (or `[B, T, I]` with `batch_first`);
//! - output `[T, B, O]` (`[B, T, O]`), or with [`SequenceOutput::Last`] the last step's `y`,
//!   `[B, O]`;
//! - state: the context `c`, `[B, O]` (the final one is `c_T = μ c_{T−1} + y_{T−1}`, what a
//!   next step would read, so a long sequence can be fed in pieces).
//!
//! Parameters: `weight_ih` `[H, I]`, `weight_ch` `[H, O]`, `bias_h` `[H]`, `weight_ho`
//! `[O, H]`, `bias_o` `[O]`, drawn from U(−1/√H, 1/√H) as the other recurrent layers'.
//!
//! The step is composed of autograd primitives (the input projection of all steps is one
//! GEMM; each step is two small GEMMs and elementwise ops), so its backward pass is
//! backpropagation through time by construction.

use backprop_autograd::Var;
use backprop_tensor::{Element, Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::layers::BuiltLayer;
use crate::module::{Mode, Module};
use crate::recurrent::SequenceOutput;
use crate::spec::{add_counts, count, InputKind, LayerConfig, LayerError, LayerPlan};

/// A Jordan recurrent layer (see the module docs for the equations and shapes).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Activation, Jordan, Module};
/// use backprop_tensor::{Rng, Tensor};
/// let net = Jordan::<f64>::new(3, 5, 2, 0.5, Activation::Identity, &mut Rng::seed(0));
/// let x = Var::constant(Tensor::ones(&[4, 7, 3])); // [T, B, I]
/// let (y, c) = net.forward_state(&x, None);
/// assert_eq!(y.shape(), vec![4, 7, 2]);
/// // the final context is μ·c_3 + y_3
/// let (y, c) = (y.value(), c.value());
/// let (_, c3) = net.forward_state(&Var::constant(Tensor::ones(&[3, 7, 3])), None);
/// let want = c3.value().get(&[0, 0]) * 0.5 + y.get(&[3, 0, 0]);
/// assert!((c.get(&[0, 0]) - want).abs() < 1e-12);
/// ```
pub struct Jordan<E: Element = f32> {
    /// `[H, I]`.
    pub weight_ih: Var<E>,
    /// `[H, O]`: context to hidden.
    pub weight_ch: Var<E>,
    /// `[H]`.
    pub bias_h: Var<E>,
    /// `[O, H]`.
    pub weight_ho: Var<E>,
    /// `[O]`.
    pub bias_o: Var<E>,
    /// The context's self-connection μ.
    pub mu: f64,
    /// The output activation f.
    pub activation: Activation,
    /// `[B, T, I]` input and output instead of `[T, B, I]`.
    pub batch_first: bool,
    /// What [`Module::forward`] returns.
    pub output: SequenceOutput,
}

impl<E: Element> Jordan<E> {
    /// `inputs → hidden → outputs`, context decay `mu`, output activation `activation`;
    /// time-major, every step's output returned.
    ///
    /// # Panics
    /// If a size is 0 or `mu` is outside `[0, 1)` (a spec checks these first).
    pub fn new(
        inputs: usize,
        hidden: usize,
        outputs: usize,
        mu: f64,
        activation: Activation,
        rng: &mut Rng,
    ) -> Self {
        assert!(
            inputs > 0 && hidden > 0 && outputs > 0,
            "Jordan: sizes must be at least 1"
        );
        assert!(
            (0.0..1.0).contains(&mu),
            "Jordan: μ = {mu} must be in [0, 1)"
        );
        let k = 1.0 / (hidden as f64).sqrt();
        let mut u = |shape: &[usize]| Var::parameter(Tensor::rand_uniform(shape, -k, k, rng));
        Jordan {
            weight_ih: u(&[hidden, inputs]),
            weight_ch: u(&[hidden, outputs]),
            bias_h: u(&[hidden]),
            weight_ho: u(&[outputs, hidden]),
            bias_o: u(&[outputs]),
            mu,
            activation,
            batch_first: false,
            output: SequenceOutput::Sequence,
        }
    }

    /// Runs the layer from context `c0` (`[B, O]`, zeros if `None`); returns the outputs
    /// and the final context.
    ///
    /// # Panics
    /// If `x` is not 3-D with `I` features or `c0` is not `[B, O]`.
    #[track_caller]
    pub fn forward_state(&self, x: &Var<E>, c0: Option<&Var<E>>) -> (Var<E>, Var<E>) {
        let (h, i) = (self.weight_ih.shape()[0], self.weight_ih.shape()[1]);
        let o = self.weight_ho.shape()[0];
        let s = x.shape();
        assert!(
            s.len() == 3 && s[2] == i,
            "{}: the input {s:?} must be 3-D with {i} features",
            Module::<E>::kind(self)
        );
        let seq = if self.batch_first {
            x.transpose(0, 1)
        } else {
            x.clone()
        };
        let (t_len, b) = (seq.shape()[0], seq.shape()[1]);
        let mut c = match c0 {
            Some(c) => {
                assert_eq!(c.shape(), [b, o], "Jordan: the context must be [{b}, {o}]");
                c.clone()
            }
            None => Var::constant(Tensor::zeros(&[b, o])),
        };
        // all steps' input projections in one GEMM
        let xp = seq
            .reshape(&[t_len * b, i])
            .linear(&self.weight_ih, Some(&self.bias_h))
            .reshape(&[t_len, b, h]);
        let mu = E::from_f64(self.mu);
        let mut ys = Vec::with_capacity(t_len);
        for t in 0..t_len {
            let pre = xp.narrow(0, t, 1).reshape(&[b, h]);
            let hid = pre.add(&c.linear(&self.weight_ch, None)).tanh();
            let y = Module::<E>::forward(
                &self.activation,
                &hid.linear(&self.weight_ho, Some(&self.bias_o)),
                Mode::Eval,
            );
            c = c.mul_scalar(mu).add(&y);
            ys.push(y);
        }
        let out = Var::stack(&ys.iter().collect::<Vec<_>>(), 0);
        let out = if self.batch_first {
            out.transpose(0, 1)
        } else {
            out
        };
        (out, c)
    }
}

impl<E: Element> Module<E> for Jordan<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let (y, _) = self.forward_state(x, None);
        match self.output {
            SequenceOutput::Sequence => y,
            SequenceOutput::Last => {
                let (t_axis, s) = (usize::from(self.batch_first), y.shape());
                let last = y.narrow(t_axis as isize, s[t_axis] - 1, 1);
                last.reshape(&[s[1 - t_axis], s[2]])
            }
        }
    }
    /// Only batch-first: a time-major input's first axis is time, whose halves depend on
    /// each other.
    fn sample_independent(&self) -> bool {
        self.batch_first
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        vec![
            ("weight_ih".into(), self.weight_ih.clone()),
            ("weight_ch".into(), self.weight_ch.clone()),
            ("bias_h".into(), self.bias_h.clone()),
            ("weight_ho".into(), self.weight_ho.clone()),
            ("bias_o".into(), self.bias_o.clone()),
        ]
    }
    fn kind(&self) -> String {
        let (h, i) = (self.weight_ih.shape()[0], self.weight_ih.shape()[1]);
        let o = self.weight_ho.shape()[0];
        let mut s = format!("Jordan({i} → {h} → {o}, μ = {}", self.mu);
        if self.activation != Activation::Identity {
            s += &format!(", {}", self.activation.name());
        }
        if self.output == SequenceOutput::Last {
            s += ", last output";
        }
        s + ")"
    }
}

fn identity() -> String {
    "identity".into()
}
fn half() -> f64 {
    0.5
}
fn last() -> SequenceOutput {
    SequenceOutput::Last
}

/// A [`Jordan`] layer in a spec, over sequences `[T, F]`:
/// `{"type": "jordan", "hidden": 16, "out": 10, "mu": 0.5, "activation": "identity",
/// "output": "last"}` (`mu` defaults to 0.5, `activation` to `identity` — any elementwise
/// activation — and `output` to `"last"`, the last step's `y`; `"sequence"` gives every
/// step's, `[T, out]`).
///
/// ```
/// use backprop_nn::{JordanConfig, LayerConfig};
/// use backprop_tensor::Rng;
/// let (net, out) = JordanConfig::new(16, 10).build::<f32>(&[28, 28], &mut Rng::seed(0)).unwrap();
/// assert_eq!(out, vec![10]);
/// assert_eq!(net.num_params(), 16 * 28 + 16 * 10 + 16 + 10 * 16 + 10);
/// let bad = JordanConfig { mu: 1.0, ..JordanConfig::new(16, 10) };
/// assert!(bad.build::<f32>(&[28, 28], &mut Rng::seed(0)).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JordanConfig {
    /// Hidden units H.
    pub hidden: usize,
    /// Output units O (what is fed back).
    pub out: usize,
    /// The context's self-connection μ, in `[0, 1)`.
    #[serde(default = "half")]
    pub mu: f64,
    /// The output activation's name.
    #[serde(default = "identity")]
    pub activation: String,
    /// What the layer passes on.
    #[serde(default = "last")]
    pub output: SequenceOutput,
}

impl JordanConfig {
    /// `hidden` units, `out` outputs, μ = 0.5, identity outputs, the last output passed on.
    pub fn new(hidden: usize, out: usize) -> Self {
        JordanConfig {
            hidden,
            out,
            mu: half(),
            activation: identity(),
            output: last(),
        }
    }

    fn activation(&self) -> Result<Activation, LayerError> {
        Activation::from_name(&self.activation)
            .filter(Activation::is_elementwise)
            .ok_or_else(|| {
                LayerError::Invalid(format!(
                    "unknown output activation {:?}; use an elementwise one such as identity, tanh or sigmoid",
                    self.activation
                ))
            })
    }
}

impl LayerConfig for JordanConfig {
    const TYPE: &'static str = "jordan";
    const PREFIX: &'static str = "jordan";
    const INPUT: InputKind = InputKind::Sequence;

    /// # Shapes
    /// `[T, F] → [out]` (`output: "last"`) or `[T, out]` (`"sequence"`).
    fn build<E: Element>(
        &self,
        in_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<BuiltLayer<E>, LayerError> {
        let out = self.plan(in_shape)?.out_shape;
        let mut net = Jordan::<E>::new(
            in_shape[1],
            self.hidden,
            self.out,
            self.mu,
            self.activation()?,
            rng,
        );
        net.batch_first = true;
        net.output = self.output;
        Ok((Box::new(net), out))
    }

    fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
        let [t, f] = *in_shape else {
            return Err(LayerError::Shape {
                expects: "needs sequences [steps, features]".into(),
                shape: in_shape.to_vec(),
            });
        };
        if t == 0 || f == 0 || self.hidden == 0 || self.out == 0 {
            return Err(LayerError::Invalid(format!(
                "hidden and out must be at least 1 and the sequences {in_shape:?} not empty"
            )));
        }
        if !(0.0..1.0).contains(&self.mu) {
            return Err(LayerError::Invalid(format!(
                "mu = {} must be in [0, 1)",
                self.mu
            )));
        }
        self.activation()?;
        let (h, o) = (self.hidden, self.out);
        let params = [
            count(&[h, f])?,
            count(&[h, o])?,
            h as u64,
            count(&[o, h])?,
            o as u64,
        ]
        .into_iter()
        .try_fold(0u64, add_counts)?;
        let out = match self.output {
            SequenceOutput::Last => vec![self.out],
            SequenceOutput::Sequence => vec![t, self.out],
        };
        Ok(LayerPlan::new(out, params))
    }
}
