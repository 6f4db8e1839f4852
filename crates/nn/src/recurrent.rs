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
//!
//! Beyond PyTorch's options: variable-length sequences in a padded batch (`lengths`, or a
//! `padding_value` that marks trailing padding) never let the padding reach an output or a
//! gradient; truncated backpropagation through time (`truncate`: the state is cut from the
//! graph every k steps, so gradients reach at most k steps back); and stateful operation
//! (`stateful`: the final state of one call, detached, is the initial state of the next, for
//! a long sequence fed in consecutive batches).

use std::sync::Mutex;

use backprop_autograd::ops::recurrent::RecurrentVars;
use backprop_autograd::Var;
use backprop_tensor::{CellKind, Element, Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::layers::{BuiltLayer, Dropout};
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
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// Dropout probability on the outputs of every layer but the last, in training
    /// (PyTorch's `dropout`; default 0).
    pub dropout: f64,
    /// Truncated BPTT: the state is detached every `k` steps (default `None`: full BPTT).
    pub truncate: Option<usize>,
    /// Carry the final state, detached, into the next call (default false).
    pub stateful: bool,
    /// In [`Module::forward`], trailing steps whose features all equal this value are
    /// padding (default `None`: no padding).
    pub padding_value: Option<f64>,
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
            dropout: 0.0,
            truncate: None,
            stateful: false,
            padding_value: None,
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
    /// Dropout `p` between stacked layers (in training).
    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }
    /// Truncated BPTT every `k` steps.
    pub fn with_truncate(mut self, k: Option<usize>) -> Self {
        self.truncate = k;
        self
    }
    /// Carry the state across calls.
    pub fn with_stateful(mut self, stateful: bool) -> Self {
        self.stateful = stateful;
        self
    }
    /// Trailing steps equal to `v` in every feature are padding.
    pub fn with_padding_value(mut self, v: Option<f64>) -> Self {
        self.padding_value = v;
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
    /// Between stacked layers, if `dropout > 0`.
    dropout: Option<Dropout>,
    /// The state a stateful layer carries to its next call.
    carried: Mutex<Option<RecurrentState<E>>>,
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
        assert!(
            o.truncate != Some(0),
            "Recurrent: truncate must be at least 1 step"
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
        // the masks' seed is drawn only when there is dropout, so that a model without it
        // is initialised as before
        let dropout = (o.dropout > 0.0).then(|| Dropout::new(o.dropout, rng.next_u64()));
        Recurrent {
            options,
            dirs,
            dropout,
            carried: Mutex::new(None),
        }
    }

    /// The layer's shape and settings.
    pub fn options(&self) -> &RecurrentOptions {
        &self.options
    }

    /// Runs the layer from `state` (zeros if `None`), without dropout; returns the output
    /// sequence and the final state, `[L·D, B, H]` each, as PyTorch's `(output, h_n)` /
    /// `(output, (h_n, c_n))`. See [`Recurrent::forward_with`] for padded batches and
    /// training with dropout.
    ///
    /// # Panics
    /// If `x` is not 3-D with `input_size` features, or the state's shape does not fit.
    #[track_caller]
    pub fn forward_state(
        &self,
        x: &Var<E>,
        state: Option<&RecurrentState<E>>,
    ) -> (Var<E>, RecurrentState<E>) {
        self.forward_with(x, state, None, Mode::Eval)
    }

    /// [`Recurrent::forward_state`] for a padded batch: sample `b` is `lengths[b]` steps
    /// long (`None`: all are), its output is 0 past its end and its final state the one
    /// after its last real step (the backward direction starts there), as PyTorch's packed
    /// sequences give. In [`Mode::Train`], dropout acts between stacked layers. A stateful
    /// layer called without `state` starts from the state its last call ended in (if the
    /// batch size is the same) and keeps the new final state, detached.
    ///
    /// # Panics
    /// As [`Recurrent::forward_state`], and if `lengths` does not have one entry per sample,
    /// each at most `T`.
    #[track_caller]
    pub fn forward_with(
        &self,
        x: &Var<E>,
        state: Option<&RecurrentState<E>>,
        lengths: Option<&[usize]>,
        mode: Mode,
    ) -> (Var<E>, RecurrentState<E>) {
        let (out, fin) = self.run(x, state, lengths, mode, true);
        (out.expect("the outputs were asked for"), fin)
    }

    /// [`Recurrent::forward_with`], building the output sequence only if `outputs` is set
    /// (a layer that returns its last state alone needs only the state: the top layer's
    /// outputs are then neither copied out of the cells' result nor transposed).
    #[track_caller]
    fn run(
        &self,
        x: &Var<E>,
        state: Option<&RecurrentState<E>>,
        lengths: Option<&[usize]>,
        mode: Mode,
        outputs: bool,
    ) -> (Option<Var<E>>, RecurrentState<E>) {
        let o = &self.options;
        let mut seq = self.time_major(x);
        let (t_len, b, h) = (seq.shape()[0], seq.shape()[1], o.hidden_size);
        if let Some(l) = lengths {
            assert!(
                l.len() == b && l.iter().all(|&n| n <= t_len),
                "{}: {} lengths for {b} sequences of at most {t_len} steps",
                self.title(),
                l.len()
            );
        }
        let carried = state
            .is_none()
            .then(|| self.carried.lock().unwrap().clone())
            .flatten()
            .filter(|s| o.stateful && s.h.shape()[1] == b);
        let state = state.or(carried.as_ref());
        if let Some(s) = state {
            self.check_state(s, b);
        }
        let dd = o.directions();
        let (mut hn, mut cn) = (Vec::new(), Vec::new());
        for layer in 0..o.num_layers {
            if let (Some(drop), true) = (&self.dropout, layer > 0) {
                seq = Module::<E>::forward(drop, &seq, mode);
            }
            let need = outputs || layer + 1 < o.num_layers;
            let mut outs = Vec::new();
            for d in 0..dd {
                let idx = layer * dd + d;
                let initial = |s: Option<&Var<E>>| match s {
                    Some(v) => v.narrow(0, idx, 1).reshape(&[b, h]),
                    None => Var::constant(Tensor::zeros(&[b, h])),
                };
                let h0 = initial(state.map(|s| &s.h));
                let c0 = o
                    .kind
                    .has_cell()
                    .then(|| initial(state.and_then(|s| s.c.as_ref())));
                let (y, h_t, c_t) = self.direction(&seq, idx, (h0, c0), lengths, d == 1, need);
                outs.extend(y);
                hn.push(h_t);
                cn.extend(c_t);
            }
            seq = match outs.as_slice() {
                [] if !need => seq, // the top layer, whose outputs nobody reads
                [] => Var::constant(Tensor::zeros(&[t_len, b, dd * h])), // an empty sequence
                [one] => one.clone(),
                both => Var::concat(&both.iter().collect::<Vec<_>>(), 2),
            };
        }
        let out = match (outputs, o.batch_first) {
            (false, _) => None,
            (true, true) => Some(seq.transpose(0, 1)),
            (true, false) => Some(seq),
        };
        let join = |v: Vec<Var<E>>| Var::stack(&v.iter().collect::<Vec<_>>(), 0);
        let c = o.kind.has_cell().then(|| join(cn));
        let fin = RecurrentState { h: join(hn), c };
        if o.stateful {
            *self.carried.lock().unwrap() = Some(fin.detach());
        }
        (out, fin)
    }

    /// Forgets the state a stateful layer carries (the next call starts from zeros).
    pub fn reset_state(&self) {
        *self.carried.lock().unwrap() = None;
    }

    /// The input as `[T, B, I]`, checked.
    #[track_caller]
    fn time_major(&self, x: &Var<E>) -> Var<E> {
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
        if o.batch_first {
            x.transpose(0, 1)
        } else {
            x.clone()
        }
    }

    #[track_caller]
    fn check_state(&self, s: &RecurrentState<E>, b: usize) {
        let o = &self.options;
        let want = vec![o.num_layers * o.directions(), b, o.hidden_size];
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

    /// One layer and direction over `seq` `[T, B, in]` from `(h0, c0)` (`[B, H]` each), in
    /// chunks of `truncate` steps with the state detached between them; returns the
    /// outputs `[T, B, H]` (if `outputs`) and the final `h`, `c` (`[B, H]`).
    #[allow(clippy::type_complexity)]
    fn direction(
        &self,
        seq: &Var<E>,
        idx: usize,
        (mut h, mut c): (Var<E>, Option<Var<E>>),
        lengths: Option<&[usize]>,
        reverse: bool,
        outputs: bool,
    ) -> (Option<Var<E>>, Var<E>, Option<Var<E>>) {
        let o = &self.options;
        let dir = &self.dirs[idx];
        let (t_len, b, hs) = (seq.shape()[0], seq.shape()[1], o.hidden_size);
        let k = o.truncate.unwrap_or(t_len).clamp(1, t_len.max(1));
        let mut starts: Vec<usize> = (0..t_len).step_by(k).collect();
        if reverse {
            starts.reverse();
        }
        let mut outs = vec![None; starts.len()];
        for (n, &start) in starts.iter().enumerate() {
            if n > 0 {
                // truncated BPTT: the gradient stops at the chunk boundary
                h = h.detach();
                c = c.as_ref().map(Var::detach);
            }
            let len = k.min(t_len - start);
            let part = if len == t_len {
                seq.clone()
            } else {
                seq.narrow(0, start, len)
            };
            let part_lengths: Option<Vec<usize>> = lengths.map(|l| {
                l.iter()
                    .map(|&n| n.saturating_sub(start).min(len))
                    .collect()
            });
            let vars = RecurrentVars {
                h0: &h,
                c0: c.as_ref(),
                w_ih: &dir.w_ih,
                w_hh: &dir.w_hh,
                biases: dir.biases.as_ref().map(|(a, b)| (a, b)),
                lengths: part_lengths.as_deref(),
            };
            let y = part.recurrent(o.kind, vars, reverse);
            if outputs {
                outs[start / k] = Some(y.narrow(0, 0, len));
            }
            h = y.narrow(0, len, 1).reshape(&[b, hs]);
            if o.kind.has_cell() {
                c = Some(y.narrow(0, len + 1, 1).reshape(&[b, hs]));
            }
        }
        let outs: Vec<Var<E>> = outs.into_iter().flatten().collect();
        let out = match outs.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(Var::concat(&many.iter().collect::<Vec<_>>(), 0)),
        };
        (out, h, c)
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
        if o.dropout > 0.0 {
            s += &format!(", dropout {}", o.dropout);
        }
        if let Some(k) = o.truncate {
            s += &format!(", BPTT truncated at {k}");
        }
        if o.stateful {
            s += ", stateful";
        }
        if o.output == SequenceOutput::Last {
            s += ", last state";
        }
        s + ")"
    }
}

impl<E: Element> Module<E> for Recurrent<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, mode: Mode) -> Var<E> {
        let lengths = self
            .options
            .padding_value
            .map(|v| padded_lengths(x, v, self.options.batch_first));
        let outputs = self.options.output == SequenceOutput::Sequence;
        let (out, state) = self.run(x, None, lengths.as_deref(), mode, outputs);
        match self.options.output {
            SequenceOutput::Sequence => out.expect("the outputs were asked for"),
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
    fn reseed(&self, seed: u64) {
        if let Some(d) = &self.dropout {
            Module::<E>::reseed(d, seed);
        }
    }
    /// Batch-first only: a time-major input's first axis is time, whose halves depend on
    /// each other.
    fn sample_independent(&self) -> bool {
        self.dropout.is_none() && !self.options.stateful && self.options.batch_first
    }
    fn sample_independent_in_eval(&self) -> bool {
        !self.options.stateful && self.options.batch_first
    }
    fn reset_state(&self) {
        Recurrent::reset_state(self);
    }
}

/// Each sample's length in a batch padded at the end with `value`: one past its last step
/// with a feature different from `value` (0 if there is none). `x` is `[T, B, F]`, or
/// `[B, T, F]` with `batch_first`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// // two samples of 3 steps, 1 feature, batch first: [1, 0, 2] and [4, 0, 0]
/// let x = Var::constant(Tensor::<f32>::from_vec(vec![1., 0., 2., 4., 0., 0.], &[2, 3, 1]));
/// assert_eq!(backprop_nn::recurrent::padded_lengths(&x, 0.0, true), vec![3, 1]);
/// ```
pub fn padded_lengths<E: Element>(x: &Var<E>, value: f64, batch_first: bool) -> Vec<usize> {
    let v = x.value();
    let s = v.shape().to_vec();
    let (t_len, b, f) = if batch_first {
        (s[1], s[0], s[2])
    } else {
        (s[0], s[1], s[2])
    };
    let pad = E::from_f64(value);
    let d = v.data();
    (0..b)
        .map(|n| {
            let at = |t: usize| {
                let row = if batch_first {
                    n * t_len + t
                } else {
                    t * b + n
                };
                &d[row * f..][..f]
            };
            (0..t_len)
                .rev()
                .find(|&t| at(t).iter().any(|&e| e != pad))
                .map_or(0, |t| t + 1)
        })
        .collect()
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
    // 2 directions × 4 gates × (in + hidden + 2) per unit and layer: keep it allocatable.
    // Saturating in u128, since hidden and num_layers may be anything up to 2^64 − 1.
    let (f, h) = (f as u128, hidden as u128);
    let per_layer = (f.max(2 * h) + h + 2).saturating_mul(8 * h);
    if per_layer.saturating_mul(layers as u128) > 1 << 30 {
        return Err(LayerError::Invalid(format!(
            "hidden {hidden} with {layers} layers on {f} features is too large (over 2^30 parameters)"
        )));
    }
    Ok(in_shape[1])
}

/// Declares a spec configuration for one recurrent cell type.
macro_rules! recurrent_config {
    ($(#[$doc:meta])* $name:ident, $ty:literal, $prefix:literal, $kind:expr) => {
        $(#[$doc])*
        ///
        /// Fields: `hidden` (units H), `num_layers` (default 1), `bidirectional` (default
        /// false), `bias` (default true), `output` (`"last"`, the default: the final hidden
        /// state `[D·H]`; or `"sequence"`: every step's output `[T, D·H]`), `dropout`
        /// between stacked layers (default 0), `truncate` (truncated BPTT every k steps),
        /// `stateful` (the state carried, detached, from batch to batch; default false),
        /// `padding_value` (trailing steps equal to it are padding, skipped). The input is a
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
            /// Dropout between stacked layers, in `[0, 1)`.
            #[serde(default, skip_serializing_if = "is_zero")]
            pub dropout: f64,
            /// Truncated BPTT: the state is detached every `truncate` steps.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub truncate: Option<usize>,
            /// Carry the final state, detached, into the next batch.
            #[serde(default, skip_serializing_if = "is_false")]
            pub stateful: bool,
            /// Trailing steps whose features all equal this value are padding.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub padding_value: Option<f64>,
        }

        impl $name {
            /// `hidden` units, one layer, one direction, the last state out.
            pub fn new(hidden: usize) -> Self {
                $name {
                    hidden,
                    num_layers: 1,
                    bidirectional: false,
                    bias: true,
                    output: SequenceOutput::Last,
                    dropout: 0.0,
                    truncate: None,
                    stateful: false,
                    padding_value: None,
                }
            }

            fn extras(&self) -> Extras {
                Extras {
                    layers: self.num_layers,
                    dropout: self.dropout,
                    truncate: self.truncate,
                    padding_value: self.padding_value,
                }
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
                self.extras().check()?;
                let opts = RecurrentOptions::new($kind(self), f, self.hidden)
                    .with_layers(self.num_layers)
                    .with_bias(self.bias)
                    .with_bidirectional(self.bidirectional)
                    .with_batch_first(true)
                    .with_output(self.output)
                    .with_dropout(self.dropout)
                    .with_truncate(self.truncate)
                    .with_stateful(self.stateful)
                    .with_padding_value(self.padding_value);
                let width = opts.directions() * self.hidden;
                let out = match self.output {
                    SequenceOutput::Last => vec![width],
                    SequenceOutput::Sequence => vec![in_shape[0], width],
                };
                Ok((Box::new(Recurrent::<E>::new(opts, rng)), out))
            }

            fn plan(&self, in_shape: &[usize]) -> Result<LayerPlan, LayerError> {
                let f = sequence_width(in_shape, self.hidden, self.num_layers)?;
                self.extras().check()?;
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
fn is_zero(v: &f64) -> bool {
    *v == 0.0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// The spec fields beyond the shape, checked together.
struct Extras {
    layers: usize,
    dropout: f64,
    truncate: Option<usize>,
    padding_value: Option<f64>,
}

impl Extras {
    fn check(&self) -> Result<(), LayerError> {
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(LayerError::Invalid(format!(
                "dropout = {} must be in [0, 1)",
                self.dropout
            )));
        }
        if self.dropout > 0.0 && self.layers == 1 {
            return Err(LayerError::Invalid(format!(
                "dropout = {} acts between stacked layers; with num_layers 1 it would do nothing (add a dropout layer after this one instead)",
                self.dropout
            )));
        }
        if self.truncate == Some(0) {
            return Err(LayerError::Invalid(
                "truncate must be at least 1 step".into(),
            ));
        }
        if self.padding_value.is_some_and(|v| !v.is_finite()) {
            return Err(LayerError::Invalid(
                "padding_value must be a finite number".into(),
            ));
        }
        Ok(())
    }
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
