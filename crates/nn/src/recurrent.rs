//! Recurrent layers trained by backpropagation through time: [`Recurrent`] runs an Elman
//! network (Elman 1990, `tanh` or `relu`), an LSTM (Hochreiter & Schmidhuber 1997) or a GRU
//! (Cho et al. 2014), stacked and optionally bidirectional, with PyTorch's parameter names,
//! shapes, gate order and initialisation, so weights move between the two unchanged. Its
//! spec configurations are [`RnnConfig`], [`LstmConfig`] and [`GruConfig`].
//!
//! # Shapes
//! - input `[T, B, I]`, or `[B, T, I]` with `batch_first`;
//! - output `[T, B, D·H]` (`[B, T, D·H]`), D = 2 if bidirectional, else 1; with
//!   [`SequenceOutput::Last`] the final hidden state of the top layer instead, `[B, D·H]`;
//! - state `h`, `c`: `[L·D, B, H]`, layer-major (`l0`, `l0_reverse`, `l1`, ...).
//!
//! Parameters per layer `k` (and `_reverse` for the backward direction): `weight_ih_l{k}`
//! `[G·H, in]`, `weight_hh_l{k}` `[G·H, H]`, `bias_ih_l{k}` and `bias_hh_l{k}` `[G·H]`, with
//! G = 1, 4 (`i | f | g | o`) or 3 (`r | z | n`); every one drawn from U(−1/√H, 1/√H).

use backprop_autograd::ops::recurrent::RecurrentVars;
use backprop_autograd::Var;
use backprop_tensor::{CellKind, Element, Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::layers::BuiltLayer;
use crate::module::{Mode, Module};
use crate::spec::{InputKind, LayerConfig, LayerError, LayerPlan};

/// What a [`Recurrent`] layer returns from [`Module::forward`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequenceOutput {
    /// Every step's top-layer output, `[T, B, D·H]` (PyTorch's `output`).
    #[default]
    Sequence,
    /// The top layer's final hidden state, both directions side by side: `[B, D·H]` (what a
    /// sequence classifier feeds to its linear layer).
    Last,
}

/// The shape of a [`Recurrent`] layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecurrentOptions {
    /// The cell.
    pub kind: CellKind,
    /// Input features per step.
    pub input_size: usize,
    /// Hidden units H.
    pub hidden_size: usize,
    /// Stacked layers L (default 1).
    pub num_layers: usize,
    /// Whether the layers have biases (default true).
    pub bias: bool,
    /// Input and output `[B, T, ·]` instead of `[T, B, ·]` (default false).
    pub batch_first: bool,
    /// A second direction reading the sequence backwards (default false).
    pub bidirectional: bool,
    /// What [`Module::forward`] returns (default the whole sequence).
    pub output: SequenceOutput,
}

impl RecurrentOptions {
    /// One layer of `kind`, `input_size → hidden_size`, with biases, time-major,
    /// unidirectional.
    pub fn new(kind: CellKind, input_size: usize, hidden_size: usize) -> Self {
        RecurrentOptions {
            kind,
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            bidirectional: false,
            output: SequenceOutput::Sequence,
        }
    }
    /// `L` stacked layers.
    pub fn with_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }
    /// With or without biases.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    /// `[B, T, ·]` input and output.
    pub fn with_batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }
    /// A second, backward direction.
    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }
    /// What `forward` returns.
    pub fn with_output(mut self, output: SequenceOutput) -> Self {
        self.output = output;
        self
    }
    /// The number of directions D.
    pub fn directions(&self) -> usize {
        1 + usize::from(self.bidirectional)
    }
}

/// One layer and direction's parameters.
struct Direction<E: Element> {
    suffix: String,
    w_ih: Var<E>,
    w_hh: Var<E>,
    biases: Option<(Var<E>, Var<E>)>,
}

/// The recurrent state between calls: `h` (and `c` for the LSTM), each `[L·D, B, H]`.
#[derive(Debug, Clone)]
pub struct RecurrentState<E: Element = f32> {
    /// Hidden states.
    pub h: Var<E>,
    /// Cell states (LSTM only).
    pub c: Option<Var<E>>,
}

impl<E: Element> RecurrentState<E> {
    /// The same values, cut from the graph (for stateful training across batches).
    pub fn detach(&self) -> Self {
        RecurrentState {
            h: self.h.detach(),
            c: self.c.as_ref().map(Var::detach),
        }
    }
}

/// A stacked, optionally bidirectional Elman network, LSTM or GRU (see the module docs for
/// the equations' home, the shapes and the parameter names).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Module, Recurrent, RecurrentOptions};
/// use backprop_tensor::{CellKind, Rng, Tensor};
/// let opts = RecurrentOptions::new(CellKind::Lstm, 3, 5).with_layers(2).with_bidirectional(true);
/// let lstm = Recurrent::<f32>::new(opts, &mut Rng::seed(0));
/// let names: Vec<String> = lstm.params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(&names[..5], ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse"]);
/// let x = Var::constant(Tensor::ones(&[7, 2, 3])); // [T, B, I]
/// let (y, state) = lstm.forward_state(&x, None);
/// assert_eq!(y.shape(), vec![7, 2, 10]);
/// assert_eq!(state.h.shape(), vec![4, 2, 5]);
/// assert_eq!(state.c.unwrap().shape(), vec![4, 2, 5]);
/// ```
pub struct Recurrent<E: Element = f32> {
    options: RecurrentOptions,
    dirs: Vec<Direction<E>>,
}

impl<E: Element> Recurrent<E> {
    /// The layer with PyTorch's initialisation U(−1/√H, 1/√H), drawn from `rng`.
    ///
    /// # Panics
    /// If a size or the number of layers is 0 (a spec checks these first).
    pub fn new(options: RecurrentOptions, rng: &mut Rng) -> Self {
        let o = options;
        assert!(
            o.input_size > 0 && o.hidden_size > 0 && o.num_layers > 0,
            "Recurrent: input_size, hidden_size and num_layers must be at least 1"
        );
        let (h, gh) = (o.hidden_size, o.kind.gates() * o.hidden_size);
        let k = 1.0 / (h as f64).sqrt();
        let mut dirs = Vec::new();
        for layer in 0..o.num_layers {
            let input = if layer == 0 {
                o.input_size
            } else {
                h * o.directions()
            };
            for d in 0..o.directions() {
                let mut u =
                    |shape: &[usize]| Var::parameter(Tensor::rand_uniform(shape, -k, k, rng));
                let w_ih = u(&[gh, input]);
                let w_hh = u(&[gh, h]);
                let biases = o.bias.then(|| (u(&[gh]), u(&[gh])));
                let suffix = format!("l{layer}{}", if d == 1 { "_reverse" } else { "" });
                dirs.push(Direction {
                    suffix,
                    w_ih,
                    w_hh,
                    biases,
                });
            }
        }
        Recurrent { options, dirs }
    }

    /// The layer's shape and settings.
    pub fn options(&self) -> &RecurrentOptions {
        &self.options
    }

    /// Runs the layer from `state` (zeros if `None`); returns the output sequence and the
    /// final state, `[L·D, B, H]` each, as PyTorch's `(output, h_n)` / `(output, (h_n, c_n))`.
    ///
    /// # Panics
    /// If `x` is not 3-D with `input_size` features, or the state's shape does not fit.
    #[track_caller]
    pub fn forward_state(
        &self,
        x: &Var<E>,
        state: Option<&RecurrentState<E>>,
    ) -> (Var<E>, RecurrentState<E>) {
        let o = &self.options;
        let shape = x.shape();
        assert!(
            shape.len() == 3 && shape[2] == o.input_size,
            "{}: the input {shape:?} must be [{}, {}, {}]",
            self.title(),
            if o.batch_first { "B" } else { "T" },
            if o.batch_first { "T" } else { "B" },
            o.input_size
        );
        let mut seq = if o.batch_first {
            x.transpose(0, 1)
        } else {
            x.clone()
        };
        let (t_len, b, h) = (seq.shape()[0], seq.shape()[1], o.hidden_size);
        let dd = o.directions();
        let zeros = || Var::constant(Tensor::zeros(&[b, h]));
        let initial = |s: Option<&Var<E>>, idx: usize| match s {
            Some(v) => v.narrow(0, idx, 1).reshape(&[b, h]),
            None => zeros(),
        };
        if let Some(s) = state {
            let want = vec![o.num_layers * dd, b, h];
            assert!(
                s.h.shape() == want && s.c.as_ref().is_none_or(|c| c.shape() == want),
                "{}: the initial state must be {want:?}",
                self.title()
            );
            assert_eq!(
                s.c.is_some(),
                o.kind.has_cell(),
                "{}: an LSTM's state has c, no other cell's has",
                self.title()
            );
        }
        let (mut hn, mut cn) = (Vec::new(), Vec::new());
        for layer in 0..o.num_layers {
            let mut outs = Vec::new();
            for d in 0..dd {
                let idx = layer * dd + d;
                let dir = &self.dirs[idx];
                let h0 = initial(state.map(|s| &s.h), idx);
                let c0 = o
                    .kind
                    .has_cell()
                    .then(|| initial(state.and_then(|s| s.c.as_ref()), idx));
                let vars = RecurrentVars {
                    h0: &h0,
                    c0: c0.as_ref(),
                    w_ih: &dir.w_ih,
                    w_hh: &dir.w_hh,
                    biases: dir.biases.as_ref().map(|(a, b)| (a, b)),
                };
                let y = seq.recurrent(o.kind, vars, d == 1);
                outs.push(y.narrow(0, 0, t_len));
                hn.push(y.narrow(0, t_len, 1));
                if o.kind.has_cell() {
                    cn.push(y.narrow(0, t_len + 1, 1));
                }
            }
            seq = match outs.as_slice() {
                [one] => one.clone(),
                both => Var::concat(&both.iter().collect::<Vec<_>>(), 2),
            };
        }
        let out = if o.batch_first {
            seq.transpose(0, 1)
        } else {
            seq
        };
        let join = |v: Vec<Var<E>>| Var::concat(&v.iter().collect::<Vec<_>>(), 0);
        let c = o.kind.has_cell().then(|| join(cn));
        (out, RecurrentState { h: join(hn), c })
    }

    /// `LSTM(28 → 128)`, with `×2 layers` and `bidirectional` when so.
    fn title(&self) -> String {
        let o = &self.options;
        let name = match o.kind {
            CellKind::RnnTanh => "RNN",
            CellKind::RnnRelu => "RNN-ReLU",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        };
        let mut s = format!("{name}({} → {}", o.input_size, o.hidden_size);
        if o.num_layers > 1 {
            s += &format!(", {} layers", o.num_layers);
        }
        if o.bidirectional {
            s += ", bidirectional";
        }
        if o.output == SequenceOutput::Last {
            s += ", last state";
        }
        s + ")"
    }
}

impl<E: Element> Module<E> for Recurrent<E> {
    fn forward(&self, x: &Var<E>, _mode: Mode) -> Var<E> {
        let (out, state) = self.forward_state(x, None);
        match self.options.output {
            SequenceOutput::Sequence => out,
            SequenceOutput::Last => {
                let o = &self.options;
                let dd = o.directions();
                let top = state.h.narrow(0, (o.num_layers - 1) * dd, dd); // [D, B, H]
                let b = top.shape()[1];
                top.transpose(0, 1).reshape(&[b, dd * o.hidden_size])
            }
        }
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        let mut p = Vec::new();
        for d in &self.dirs {
            p.push((format!("weight_ih_{}", d.suffix), d.w_ih.clone()));
            p.push((format!("weight_hh_{}", d.suffix), d.w_hh.clone()));
            if let Some((bi, bh)) = &d.biases {
                p.push((format!("bias_ih_{}", d.suffix), bi.clone()));
                p.push((format!("bias_hh_{}", d.suffix), bh.clone()));
            }
        }
        p
    }
    fn kind(&self) -> String {
        self.title()
    }
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// Checks a spec layer's settings against the per-sample input `[T, F]`; returns `F`.
fn sequence_width(in_shape: &[usize], hidden: usize, layers: usize) -> Result<usize, LayerError> {
    let [t, f] = *in_shape else {
        return Err(LayerError::Shape {
            expects: "needs sequences [steps, features]".into(),
            shape: in_shape.to_vec(),
        });
    };
    if t == 0 || f == 0 {
        return Err(LayerError::Invalid(format!(
            "the sequences {in_shape:?} are empty"
        )));
    }
    if hidden == 0 || layers == 0 {
        return Err(LayerError::Invalid(
            "hidden and num_layers must be at least 1".into(),
        ));
    }
    // 2 directions × 4 gates × (in + hidden + 2) per unit and layer: keep it allocatable
    let per_layer = (f.max(2 * hidden) as u128 + hidden as u128 + 2) * 8 * hidden as u128;
    if per_layer * layers as u128 > 1 << 30 {
        return Err(LayerError::Invalid(format!(
            "hidden {hidden} with {layers} layers on {f} features is too large (over 2^30 parameters)"
        )));
    }
    Ok(f)
}

/// Declares a spec configuration for one recurrent cell type.
macro_rules! recurrent_config {
    ($(#[$doc:meta])* $name:ident, $ty:literal, $prefix:literal, $kind:expr) => {
        $(#[$doc])*
        ///
        /// Fields: `hidden` (units H), `num_layers` (default 1), `bidirectional` (default
        /// false), `bias` (default true), `output` (`"last"`, the default: the final hidden
        /// state `[D·H]`; or `"sequence"`: every step's output `[T, D·H]`). The input is a
        /// sequence `[T, F]` per sample; flat data with an image shape `[1, H, W]` is read as
        /// H steps of W features (row by row).
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Hidden units H.
            pub hidden: usize,
            /// Stacked layers.
            #[serde(default = "one")]
            pub num_layers: usize,
            /// A second, backward direction.
            #[serde(default)]
            pub bidirectional: bool,
            /// Whether the layers have biases.
            #[serde(default = "yes")]
            pub bias: bool,
            /// What the layer passes on.
            #[serde(default = "last")]
            pub output: SequenceOutput,
        }

        impl $name {
            /// `hidden` units, one layer, one direction, the last state out.
            pub fn new(hidden: usize) -> Self {
                $name { hidden, num_layers: 1, bidirectional: false, bias: true, output: SequenceOutput::Last }
            }
        }

        impl LayerConfig for $name {
            const TYPE: &'static str = $ty;
            const PREFIX: &'static str = $prefix;
            const INPUT: InputKind = InputKind::Sequence;

            /// # Shapes
            /// `[T, F] → [D·H]` (`output: "last"`) or `[T, D·H]` (`"sequence"`).
            fn build<E: Element>(&self, in_shape: &[usize], rng: &mut Rng) -> Result<BuiltLayer<E>, LayerError> {
                let f = sequence_width(in_shape, self.hidden, self.num_layers)?;
                let opts = RecurrentOptions::new($kind(self), f, self.hidden)
                    .with_layers(self.num_layers)
                    .with_bias(self.bias)
                    .with_bidirectional(self.bidirectional)
                    .with_batch_first(true)
                    .with_output(self.output);
                let width = opts.directions() * self.hidden;
                let out = match self.output {
                    SequenceOutput::Last => vec![width],
                    SequenceOutput::Sequence => vec![in_shape[0], width],
                };
                Ok((Box::new(Recurrent::<E>::new(opts, rng)), out))
            }

            fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
                let f = sequence_width(in_shape, self.hidden, self.num_layers)?;
                let kind: CellKind = $kind(self);
                let (g, h) = (kind.gates() as u64, self.hidden as u64);
                let d = 1 + u64::from(self.bidirectional);
                // per layer and direction: W_ih [G·H, in], W_hh [G·H, H], two biases [G·H];
                // the first layer reads F features, the others D·H
                let per = |inputs: u64| g * h * (inputs + h + if self.bias { 2 } else { 0 });
                let layers = self.num_layers as u64;
                let params = d * (per(f as u64) + (layers - 1) * per(d * h));
                let width = d as usize * self.hidden;
                let out = match self.output {
                    SequenceOutput::Last => vec![width],
                    SequenceOutput::Sequence => vec![in_shape[0], width],
                };
                Ok(LayerPlan::new(out, params))
            }
        }
    };
}

fn last() -> SequenceOutput {
    SequenceOutput::Last
}

recurrent_config!(
    /// An Elman layer (tanh) in a spec: `{"type": "rnn", "hidden": 128}`; `rnn_relu` is
    /// the ReLU form.
    RnnConfig, "rnn", "rnn", |_: &RnnConfig| CellKind::RnnTanh
);
recurrent_config!(
    /// An Elman layer with ReLU in a spec: `{"type": "rnn_relu", "hidden": 128}`.
    RnnReluConfig, "rnn_relu", "rnn", |_: &RnnReluConfig| CellKind::RnnRelu
);
recurrent_config!(
    /// An LSTM layer in a spec: `{"type": "lstm", "hidden": 128}`.
    LstmConfig, "lstm", "lstm", |_: &LstmConfig| CellKind::Lstm
);
recurrent_config!(
    /// A GRU layer in a spec: `{"type": "gru", "hidden": 128}`.
    GruConfig, "gru", "gru", |_: &GruConfig| CellKind::Gru
);
