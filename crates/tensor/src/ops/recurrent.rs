//! Recurrent cells over whole sequences — Elman (tanh or ReLU), LSTM and GRU — forward and
//! backward through time, with PyTorch's gate order and bias placement.
//!
//! Shapes (one layer, one direction, time-major):
//! - `x: [T, B, I]`, `h0, c0: [B, H]`
//! - `w_ih: [G·H, I]`, `w_hh: [G·H, H]`, `b_ih, b_hh: [G·H]`, where G = 1 (Elman), 4 (LSTM,
//!   rows `i | f | g | o`) or 3 (GRU, rows `r | z | n`)
//! - `out: [T + S, B, H]`: the outputs `h_t` in time order, then the final state — `h_T`
//!   (S = 1), and for the LSTM also `c_T` (S = 2). A reversed pass reads the sequence from
//!   `t = T−1` down to 0, so its final state is the one after `t = 0`.
//! - `lengths: [B]` (optional): sample `b` is `lengths[b] ≤ T` steps long and the rest is
//!   padding. Padded steps are skipped — the state passes through unchanged, the output
//!   there is 0 and its gradient ignored — so padding reaches neither the outputs nor any
//!   gradient; the final state is the one after the sample's last real step (a reversed pass
//!   starts at `t = lengths[b] − 1`), as PyTorch's packed sequences give.
//!
//! The cells (σ the logistic function, ⊙ elementwise):
//! - Elman: `h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)` (or ReLU);
//! - LSTM: `[i f g o] = [σ σ tanh σ](W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)`,
//!   `c_t = f⊙c_{t−1} + i⊙g`, `h_t = o⊙tanh(c_t)`;
//! - GRU: `r, z = σ(W_i{r,z} x_t + b_i{r,z} + W_h{r,z} h_{t−1} + b_h{r,z})`,
//!   `n = tanh(W_in x_t + b_in + r⊙(W_hn h_{t−1} + b_hn))`, `h_t = (1−z)⊙n + z⊙h_{t−1}`.
//!
//! Work: one GEMM projects the inputs of all T steps at once (`[T·B, I]·W_ihᵀ`); each step
//! then adds the recurrence (`[B, H]·W_hhᵀ`, one GEMM) onto its projections and turns them
//! into its gates in place, in one fused pass that adds the bias. Backward runs the steps in
//! reverse with one GEMM each (`δ_h(t−1) = δ_gates(t)·W_hh`), turning the saved gates into
//! their gradients in place, and collects the weight gradients in three GEMMs over all steps
//! at the end (`dW_ih = δᵀ·X`, `dW_hh = δᵀ·H_prev`, `dX = δ·W_ih`). Buffers are allocated
//! once per call, never per step. The per-step products read W_hh through copies whose rows
//! are padded off powers of two (W_hhᵀ forward, W_hh backward), which the GEMM crate streams
//! without packing them again on every step.

use crate::element::Element;
use crate::error::{or_panic, Result, TensorError};
use crate::ops::gates::{sigmoid_in_place, tanh_in_place};
use crate::ops::gemm::{gemm, Mat, Out, Threads};
use crate::ops::sparse::transpose_strided;
use crate::tensor::Tensor;

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellKind {
    /// Elman: `h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)`.
    RnnTanh,
    /// Elman with ReLU: `h_t = max(0, W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)`.
    RnnRelu,
    /// Long short-term memory (Hochreiter & Schmidhuber 1997), gates `i | f | g | o`.
    Lstm,
    /// Gated recurrent unit (Cho et al. 2014), gates `r | z | n`.
    Gru,
}

impl CellKind {
    /// The number of gate blocks G: the weights have `G·H` rows.
    pub fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// True for the LSTM, the one cell with a cell state `c` besides `h`.
    pub fn has_cell(self) -> bool {
        self == CellKind::Lstm
    }

    /// The final-state slices after the outputs: 2 for the LSTM (`h_T`, `c_T`), else 1.
    pub fn state_slices(self) -> usize {
        if self.has_cell() {
            2
        } else {
            1
        }
    }
}

/// The weights of one layer and direction (PyTorch's layout, see the module docs).
#[derive(Clone, Copy)]
pub struct RecurrentWeights<'a, E: Element> {
    /// `[G·H, I]`.
    pub w_ih: &'a Tensor<E>,
    /// `[G·H, H]`.
    pub w_hh: &'a Tensor<E>,
    /// `[G·H]`, if the layer has biases.
    pub b_ih: Option<&'a Tensor<E>>,
    /// `[G·H]`, if the layer has biases.
    pub b_hh: Option<&'a Tensor<E>>,
}

/// How a pass runs over the sequence: the direction, and the samples' lengths if the batch
/// is padded (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct RecurrentPass<'a> {
    /// Read from `t = T−1` down to 0.
    pub reverse: bool,
    /// `[B]`: each sample's real steps; `None` if all are `T` long.
    pub lengths: Option<&'a [usize]>,
}

impl RecurrentPass<'_> {
    /// A forward (`reverse = false`) or backward pass over unpadded sequences.
    pub fn new(reverse: bool) -> Self {
        RecurrentPass {
            reverse,
            lengths: None,
        }
    }
}

/// What the forward pass keeps for backward: post-activation gates and the states each step
/// read, indexed by time.
#[derive(Debug, Clone)]
pub struct RecurrentSaved<E: Element> {
    kind: CellKind,
    reverse: bool,
    dims: Dims,
    /// `[B]` sample lengths, if the batch is padded.
    lengths: Option<Vec<usize>>,
    /// `[T, B, G·H]`: Elman `h_t`; LSTM `i, f, g, o`; GRU `r, z, n`.
    gates: Vec<E>,
    /// `[T + 1, B, H]`: the states in time order; step t read slot t (t + 1 if reversed).
    hprev: Vec<E>,
    /// LSTM `[T + 1, B, H]`: the cell states, likewise.
    cprev: Vec<E>,
    /// LSTM `[T, B, H]`: `tanh(c_t)`.
    cells: Vec<E>,
    /// GRU `[T, B, H]`: `W_hn h_{t−1} + b_hn`.
    hn: Vec<E>,
}

/// Sizes: steps, batch, input width, hidden width, gate blocks.
#[derive(Debug, Clone, Copy)]
struct Dims {
    t: usize,
    b: usize,
    i: usize,
    h: usize,
    g: usize,
}

impl Dims {
    fn gh(&self) -> usize {
        self.g * self.h
    }
    /// The time index of processing step `s`.
    fn time(&self, s: usize, reverse: bool) -> usize {
        if reverse {
            self.t - 1 - s
        } else {
            s
        }
    }
}

/// Which samples are real (not padding) at step `t`; all of them without lengths.
fn active_at(lengths: Option<&[usize]>, t: usize, active: &mut [bool]) {
    match lengths {
        Some(l) => active.iter_mut().zip(l).for_each(|(a, &n)| *a = t < n),
        None => active.fill(true),
    }
}

/// Gradients of [`recurrent_backward`]; `None` where not asked for.
#[derive(Debug, Clone, Default)]
pub struct RecurrentGrads<E: Element> {
    /// `[T, B, I]`.
    pub dx: Option<Tensor<E>>,
    /// `[B, H]`.
    pub dh0: Option<Tensor<E>>,
    /// `[B, H]` (LSTM).
    pub dc0: Option<Tensor<E>>,
    /// `[G·H, I]`.
    pub dw_ih: Option<Tensor<E>>,
    /// `[G·H, H]`.
    pub dw_hh: Option<Tensor<E>>,
    /// `[G·H]`.
    pub db_ih: Option<Tensor<E>>,
    /// `[G·H]`.
    pub db_hh: Option<Tensor<E>>,
}

/// Which gradients [`recurrent_backward`] should compute.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecurrentWant {
    /// The input's.
    pub x: bool,
    /// The initial states'.
    pub state: bool,
    /// The weights' (`w_ih`, `w_hh`).
    pub weights: bool,
    /// The biases'.
    pub biases: bool,
}

fn check<E: Element>(
    kind: CellKind,
    x: &Tensor<E>,
    h0: &Tensor<E>,
    c0: Option<&Tensor<E>>,
    w: RecurrentWeights<'_, E>,
    lengths: Option<&[usize]>,
) -> Result<Dims> {
    const OP: &str = "recurrent";
    let [t, b, i] = *x.shape() else {
        return Err(TensorError::invalid(
            OP,
            format!("the input {:?} must be [T, B, I]", x.shape()),
        ));
    };
    let g = kind.gates();
    let h = w.w_hh.shape().get(1).copied().unwrap_or(0);
    if w.w_ih.shape() != [g * h, i] || w.w_hh.shape() != [g * h, h] {
        return Err(TensorError::shapes(
            OP,
            w.w_ih.shape(),
            w.w_hh.shape(),
            format!(
                "w_ih must be [{}, {i}] and w_hh [{0}, {h}] ({g} gate blocks)",
                g * h
            ),
        ));
    }
    for bias in [w.b_ih, w.b_hh].into_iter().flatten() {
        if bias.shape() != [g * h] {
            return Err(TensorError::shapes(
                OP,
                w.w_hh.shape(),
                bias.shape(),
                format!("a bias must be [{}]", g * h),
            ));
        }
    }
    if h0.shape() != [b, h] || c0.is_some_and(|c| c.shape() != [b, h]) {
        return Err(TensorError::shapes(
            OP,
            x.shape(),
            h0.shape(),
            format!("the initial state must be [{b}, {h}]"),
        ));
    }
    if kind.has_cell() != c0.is_some() {
        return Err(TensorError::invalid(
            OP,
            "an LSTM needs an initial cell state c0, and only an LSTM takes one",
        ));
    }
    if let Some(l) = lengths {
        if l.len() != b || l.iter().any(|&n| n > t) {
            return Err(TensorError::invalid(
                OP,
                format!(
                    "{} lengths for a batch of {b}; each must be at most {t} steps",
                    l.len()
                ),
            ));
        }
    }
    Ok(Dims { t, b, i, h, g })
}

/// Runs one layer and direction over a whole sequence; see the module docs for the shapes.
/// With `keep`, also returns what [`recurrent_backward`] needs.
///
/// ```
/// use backprop_tensor::{recurrent_forward, CellKind, RecurrentPass, RecurrentWeights, Tensor};
/// // one unit, W_ih = 1, W_hh = 0.5, no bias: h_1 = tanh(1), h_2 = tanh(0 + 0.5·h_1)
/// let x = Tensor::<f64>::from_vec(vec![1.0, 0.0], &[2, 1, 1]);
/// let (w_ih, w_hh) = (Tensor::from_vec(vec![1.0], &[1, 1]), Tensor::from_vec(vec![0.5], &[1, 1]));
/// let w = RecurrentWeights { w_ih: &w_ih, w_hh: &w_hh, b_ih: None, b_hh: None };
/// let (out, _) = recurrent_forward(CellKind::RnnTanh, &x, &Tensor::zeros(&[1, 1]), None, w, RecurrentPass::new(false), false);
/// let h1 = 1f64.tanh();
/// assert_eq!(out.to_vec(), vec![h1, (0.5 * h1).tanh(), (0.5 * h1).tanh()]);
/// ```
///
/// # Panics
/// If the shapes do not fit (the message names `recurrent` and the shapes).
#[track_caller]
pub fn recurrent_forward<E: Element>(
    kind: CellKind,
    x: &Tensor<E>,
    h0: &Tensor<E>,
    c0: Option<&Tensor<E>>,
    w: RecurrentWeights<'_, E>,
    pass: RecurrentPass<'_>,
    keep: bool,
) -> (Tensor<E>, Option<RecurrentSaved<E>>) {
    or_panic(try_recurrent_forward(kind, x, h0, c0, w, pass, keep))
}

/// [`recurrent_forward`] returning an error on shapes that do not fit.
pub fn try_recurrent_forward<E: Element>(
    kind: CellKind,
    x: &Tensor<E>,
    h0: &Tensor<E>,
    c0: Option<&Tensor<E>>,
    w: RecurrentWeights<'_, E>,
    pass: RecurrentPass<'_>,
    keep: bool,
) -> Result<(Tensor<E>, Option<RecurrentSaved<E>>)> {
    let d = check(kind, x, h0, c0, w, pass.lengths)?;
    let reverse = pass.reverse;
    let (t_len, b, h, gh) = (d.t, d.b, d.h, d.gh());
    // the input projections of every step, which each step then turns into its gates in
    // place: `[T, B, G·H]`, kept for backward as they are
    let (mut gates, bias) = input_projection(kind, x, w, d);
    // W_hhᵀ `[H, G·H]`, rows padded to `ld`: read as stored by every step's product, which
    // the GEMM crate then streams as it is instead of packing W_hh again on each of the T
    // steps; the padding keeps its columns (2 KiB apart for G·H = 512) off the same cache sets
    let ld = padded_ld(gh);
    let w_hh_t = transposed(w.w_hh.data(), gh, h, ld);
    let slices = kind.state_slices();
    let mut out = vec![E::ZERO; (t_len + slices) * b * h];
    let steps = if keep { t_len } else { 1 };
    let bh = b * h;
    // The states before and after every step, `[T + 1, B, H]` for h (and for the LSTM's c),
    // in time order: step t reads slot t and writes slot t + 1 (a reversed pass reads t + 1
    // and writes t), so backward finds every h_{t−1} and c_{t−1} where the forward pass left
    // it, with no copies. Without `keep`, two slots taken in turn.
    let slots = if keep { t_len + 1 } else { 2 };
    let slot = |s: usize| -> (usize, usize) {
        if !keep {
            (s % 2, (s + 1) % 2)
        } else if reverse {
            (d.time(s, true) + 1, d.time(s, true))
        } else {
            (s, s + 1)
        }
    };
    let mut hist = vec![E::ZERO; slots * bh];
    let mut chist = vec![E::ZERO; if kind.has_cell() { slots * bh } else { 0 }];
    if t_len > 0 {
        let first = slot(0).0 * bh;
        hist[first..first + bh].copy_from_slice(h0.data());
        if let Some(c0) = c0 {
            chist[first..first + bh].copy_from_slice(c0.data());
        }
    }
    let mut cells = vec![E::ZERO; if kind.has_cell() { steps * bh } else { 0 }];
    let mut hn = vec![E::ZERO; if kind == CellKind::Gru { steps * bh } else { 0 }];
    // the GRU's recurrent projection, apart from the input's (its n gate needs it alone)
    let mut hp = if kind == CellKind::Gru {
        vec![E::ZERO; b * gh]
    } else {
        Vec::new()
    };
    let mut active = vec![true; b];
    for s in 0..t_len {
        let t = d.time(s, reverse);
        active_at(pass.lengths, t, &mut active);
        let k = if keep { t } else { 0 };
        let (rd, wr) = slot(s);
        let (h_prev, h_next) = read_write(&mut hist, rd, wr, bh);
        let (c_prev, c_next) = read_write(&mut chist, rd, wr, bh);
        let step_gates = &mut gates[t * b * gh..][..b * gh];
        let product = |dst| {
            gemm(
                Out::Add(dst),
                Mat::new(h_prev, b, h),
                Mat::padded(&w_hh_t, h, gh, ld),
                Threads::Auto,
            )
        };
        match kind {
            // hp = h_{t−1}·W_hhᵀ + b_hh
            CellKind::Gru => {
                match w.b_hh {
                    Some(bh) => hp
                        .chunks_exact_mut(gh)
                        .for_each(|r| r.copy_from_slice(bh.data())),
                    None => hp.fill(E::ZERO),
                }
                product(&mut hp);
            }
            // the pre-activations: xp_t += h_{t−1}·W_hhᵀ
            _ => product(step_gates),
        }
        let (nc, nh) = (cells.len(), hn.len());
        let step = StepForward {
            bias: &bias,
            hp: &hp,
            gates: step_gates,
            cells: &mut cells[(k * bh).min(nc)..],
            hn: &mut hn[(k * bh).min(nh)..],
            h_prev,
            h: h_next,
            c_prev,
            c: c_next,
            active: &active,
        };
        step.run(kind, d);
        let row = &mut out[t * bh..][..bh];
        let h_next = &hist[wr * bh..][..bh];
        for (n, r) in row.chunks_exact_mut(h).enumerate() {
            if active[n] {
                r.copy_from_slice(&h_next[n * h..][..h]);
            }
        }
    }
    // the final state: the last slot written (the initial one for an empty sequence)
    let last = t_len.checked_sub(1).map(|s| slot(s).1 * bh);
    let final_h = last.map_or(h0.data(), |at| &hist[at..at + bh]);
    out[t_len * bh..][..bh].copy_from_slice(final_h);
    if kind.has_cell() {
        let c0 = c0.map(Tensor::data).unwrap_or_default();
        let final_c = last.map_or(c0, |at| &chist[at..at + bh]);
        out[(t_len + 1) * bh..][..bh].copy_from_slice(final_c);
    }
    let out = Tensor::from_parts(out, vec![t_len + slices, b, h]);
    let saved = keep.then(|| RecurrentSaved {
        kind,
        reverse,
        dims: d,
        lengths: pass.lengths.map(<[usize]>::to_vec),
        gates,
        hprev: hist,
        cprev: chist,
        cells,
        hn,
    });
    Ok((out, saved))
}

/// Slot `rd` (read) and slot `wr` (written), `n` elements each, of `v`; `rd ≠ wr`. Empty
/// slices when `v` is empty (a cell without the state).
fn read_write<E>(v: &mut [E], rd: usize, wr: usize, n: usize) -> (&[E], &mut [E]) {
    if v.is_empty() {
        return (&[], &mut []);
    }
    if rd < wr {
        let (a, b) = v.split_at_mut(wr * n);
        (&a[rd * n..][..n], &mut b[..n])
    } else {
        let (a, b) = v.split_at_mut(rd * n);
        (&b[..n], &mut a[wr * n..][..n])
    }
}

/// The `[cols, rows]` transpose of a row-major `[rows, cols]` matrix, its rows `ld ≥ rows`
/// elements apart (the padding zero).
fn transposed<E: Element>(m: &[E], rows: usize, cols: usize, ld: usize) -> Vec<E> {
    let mut t = vec![E::ZERO; cols * ld];
    transpose_strided(&m[..rows * cols], rows, cols, &mut t, ld);
    t
}

/// A copy of a row-major `[rows, cols]` matrix with its rows `ld ≥ cols` elements apart.
fn padded_rows<E: Element>(m: &[E], rows: usize, cols: usize, ld: usize) -> Vec<E> {
    let mut p = vec![E::ZERO; rows * ld];
    for (dst, src) in p.chunks_exact_mut(ld).zip(m.chunks_exact(cols).take(rows)) {
        dst[..cols].copy_from_slice(src);
    }
    p
}

/// A row length for a matrix with `n` columns: `n`, plus 16 when `n` is a multiple of 256
/// (1 KiB of `f32`), where the columns of a column-wise read would fall on few cache sets.
fn padded_ld(n: usize) -> usize {
    if n >= 256 && n % 256 == 0 {
        n + 16
    } else {
        n
    }
}

/// `xp = X·W_ihᵀ`, `[T·B, G·H]`, one GEMM, and the bias each step adds to its rows,
/// `b_ih (+ b_hh except for the GRU)` (empty without biases).
fn input_projection<E: Element>(
    kind: CellKind,
    x: &Tensor<E>,
    w: RecurrentWeights<'_, E>,
    d: Dims,
) -> (Vec<E>, Vec<E>) {
    let (rows, gh) = (d.t * d.b, d.gh());
    let mut bias = Vec::new();
    for bb in [w.b_ih, w.b_hh.filter(|_| kind != CellKind::Gru)]
        .into_iter()
        .flatten()
    {
        bias.resize(gh, E::ZERO);
        bias.iter_mut().zip(bb.data()).for_each(|(a, &v)| *a += v);
    }
    // the product writes every element, so the buffer is not filled first
    let mut xp = Vec::with_capacity(rows * gh);
    gemm(
        Out::WriteUninit(&mut xp.spare_capacity_mut()[..rows * gh]),
        Mat::new(x.data(), rows, d.i),
        Mat::new(w.w_ih.data(), gh, d.i).t(),
        Threads::Auto,
    );
    // SAFETY: the product wrote all `rows·gh` elements (`gemm` writes every element of an
    // `Out::WriteUninit` block).
    unsafe { xp.set_len(rows * gh) };
    (xp, bias)
}

/// One step's fused gate work: turns the step's pre-activations into its gates, in place,
/// and writes the new state.
struct StepForward<'a, E> {
    /// `[G·H]` the bias of the pre-activations (empty if the layer has none).
    bias: &'a [E],
    /// GRU `[B, G·H]`: the recurrent projection (empty for the other cells, whose
    /// pre-activations already hold it).
    hp: &'a [E],
    /// `[B, G·H]`: the pre-activations in (for the GRU, the input projection alone), the
    /// gates out (`h_t` for Elman; `i, f, g, o`; `r, z, n`).
    gates: &'a mut [E],
    cells: &'a mut [E],
    hn: &'a mut [E],
    /// `[B, H]`: `h_{t−1}` (read) and `h_t` (written).
    h_prev: &'a [E],
    h: &'a mut [E],
    /// LSTM `[B, H]`: `c_{t−1}` and `c_t` (empty for the other cells).
    c_prev: &'a [E],
    c: &'a mut [E],
    /// `[B]`: false where the sample is padding at this step (its state passes unchanged).
    active: &'a [bool],
}

impl<E: Element> StepForward<'_, E> {
    fn run(self, kind: CellKind, d: Dims) {
        let (h, gh) = (d.h, d.gh());
        for b in 0..d.b {
            let hs = &mut self.h[b * h..][..h];
            if !self.active[b] {
                hs.copy_from_slice(&self.h_prev[b * h..][..h]);
                if let Some(c) = self.c.get_mut(b * h..(b + 1) * h) {
                    c.copy_from_slice(&self.c_prev[b * h..][..h]);
                }
                continue;
            }
            let gr = &mut self.gates[b * gh..][..gh];
            if !self.bias.is_empty() {
                add_row(gr, self.bias);
            }
            match kind {
                CellKind::RnnTanh => {
                    tanh_in_place(gr);
                    hs.copy_from_slice(gr);
                }
                CellKind::RnnRelu => {
                    gr.iter_mut().for_each(|v| {
                        if *v < E::ZERO {
                            *v = E::ZERO // NaN stays NaN, so a diverged run shows it
                        }
                    });
                    hs.copy_from_slice(gr);
                }
                CellKind::Lstm => {
                    sigmoid_in_place(&mut gr[..2 * h]);
                    tanh_in_place(&mut gr[2 * h..3 * h]);
                    sigmoid_in_place(&mut gr[3 * h..]);
                    // c_t = f⊙c_{t−1} + i⊙g; the cells buffer keeps tanh(c_t)
                    let tc = &mut self.cells[b * h..][..h];
                    let c_prev = &self.c_prev[b * h..][..h];
                    lstm_state_row(gr, c_prev, &mut self.c[b * h..][..h], tc);
                    tanh_in_place(tc);
                    mul_row(&gr[3 * h..], tc, hs);
                }
                CellKind::Gru => {
                    let hr = &self.hp[b * gh..][..gh];
                    add_row(&mut gr[..2 * h], &hr[..2 * h]);
                    sigmoid_in_place(&mut gr[..2 * h]);
                    let hn = &mut self.hn[b * h..][..h];
                    hn.copy_from_slice(&hr[2 * h..]);
                    gru_candidate_row(gr, hn);
                    tanh_in_place(&mut gr[2 * h..]);
                    gru_state_row(gr, &self.h_prev[b * h..][..h], hs);
                }
            }
        }
    }
}

/// Defines `fn $name<E>(…)` whose body is compiled twice — for AVX-512 (used when the CPU
/// has it, checked at run time) and for the baseline target — so that the elementwise loops
/// of a cell vectorise 16 lanes wide where they can. Both forms compute the same operations
/// in the same order (no fused multiply-adds are formed), so results do not depend on the CPU.
macro_rules! wide {
    ($(#[$m:meta])* fn $name:ident<E>($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        fn $name<E: Element>($($arg: $ty),*) {
            #[inline(always)]
            fn body<E: Element>($($arg: $ty),*) $body
            /// # Safety
            /// The CPU must have AVX-512F.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512<E: Element>($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { avx512($($arg),*) };
            }
            body($($arg),*)
        }
    };
}

wide! {
    /// LSTM, one sample: `c ← f⊙c_prev + i⊙g` over the gates `[i f g o]` (`[4H]`), and
    /// `tc ← c` (made `tanh(c)` by the caller).
    fn lstm_state_row<E>(gr: &[E], c_prev: &[E], c: &mut [E], tc: &mut [E]) {
        let h = c.len();
        let (i, f, g) = (&gr[..h], &gr[h..2 * h], &gr[2 * h..3 * h]);
        let (c_prev, tc) = (&c_prev[..h], &mut tc[..h]);
        for j in 0..h {
            c[j] = f[j] * c_prev[j] + i[j] * g[j];
            tc[j] = c[j];
        }
    }
}

wide! {
    /// `out ← a⊙b`.
    fn mul_row<E>(a: &[E], b: &[E], out: &mut [E]) {
        let n = out.len();
        let (a, b) = (&a[..n], &b[..n]);
        for j in 0..n {
            out[j] = a[j] * b[j];
        }
    }
}

wide! {
    /// `a ← a + b`.
    fn add_row<E>(a: &mut [E], b: &[E]) {
        let b = &b[..a.len()];
        for j in 0..a.len() {
            a[j] = a[j] + b[j];
        }
    }
}

wide! {
    /// GRU, one sample: the n gate's pre-activation `x_n + r⊙hn` over the gates `[r z n]`.
    fn gru_candidate_row<E>(gr: &mut [E], hn: &[E]) {
        let h = hn.len();
        let (r, rest) = gr.split_at_mut(h);
        let n = &mut rest[h..2 * h];
        for j in 0..h {
            n[j] = n[j] + r[j] * hn[j];
        }
    }
}

wide! {
    /// GRU, one sample: `h ← (1−z)⊙n + z⊙h_prev`.
    fn gru_state_row<E>(gr: &[E], h_prev: &[E], hs: &mut [E]) {
        let h = hs.len();
        let (z, n, h_prev) = (&gr[h..2 * h], &gr[2 * h..3 * h], &h_prev[..h]);
        for j in 0..h {
            hs[j] = (E::ONE - z[j]) * n[j] + z[j] * h_prev[j];
        }
    }
}

/// Backpropagation through time for one layer and direction: `g` is the gradient of the
/// whole `[T + S, B, H]` output of [`recurrent_forward`] (outputs and final state). Takes
/// what the forward pass saved by value: the saved gates become their own gradients, in
/// place, step by step.
///
/// # Panics
/// If `g`'s shape is not the output's or the weights are not the forward pass's.
#[track_caller]
pub fn recurrent_backward<E: Element>(
    x: &Tensor<E>,
    w: RecurrentWeights<'_, E>,
    saved: RecurrentSaved<E>,
    g: &Tensor<E>,
    want: RecurrentWant,
) -> RecurrentGrads<E> {
    let (kind, d) = (saved.kind, saved.dims);
    let (t_len, b, h, gh) = (d.t, d.b, d.h, d.gh());
    assert_eq!(
        g.shape(),
        [t_len + kind.state_slices(), b, h],
        "recurrent_backward: gradient {:?} for an output of [{}, {b}, {h}]",
        g.shape(),
        t_len + kind.state_slices()
    );
    let gd = g.data();
    let RecurrentSaved {
        reverse,
        lengths,
        gates: mut dxp,
        hprev,
        cprev,
        cells,
        hn,
        ..
    } = saved;
    let mut dhp = if kind == CellKind::Gru {
        vec![E::ZERO; t_len * b * gh]
    } else {
        Vec::new()
    };
    let mut dh = gd[t_len * b * h..][..b * h].to_vec();
    let mut dc = if kind.has_cell() {
        gd[(t_len + 1) * b * h..][..b * h].to_vec()
    } else {
        Vec::new()
    };
    let mut next = vec![E::ZERO; b * h];
    let mut active = vec![true; b];
    // W_hh with padded rows, read column-wise by every step's product (see the forward pass)
    let ld = h + 16;
    let w_hh_padded = padded_rows(w.w_hh.data(), gh, h, ld);
    for s in (0..t_len).rev() {
        let t = d.time(s, reverse);
        let at = t * b * h;
        // the slot of the state step t read (see the forward pass)
        let prev = (t + usize::from(reverse)) * b * h;
        active_at(lengths.as_deref(), t, &mut active);
        // a padded step's output is a constant 0: its gradient goes nowhere
        let rows = dh
            .chunks_exact_mut(h)
            .zip(gd[at..at + b * h].chunks_exact(h));
        for (n, (a, g)) in rows.enumerate() {
            if active[n] {
                a.iter_mut().zip(g).for_each(|(a, &v)| *a += v);
            }
        }
        let step = StepBackward {
            hprev: &hprev[prev..prev + b * h],
            cprev: cprev.get(prev..prev + b * h).unwrap_or(&[]),
            cells: cells.get(at..at + b * h).unwrap_or(&[]),
            hn: hn.get(at..at + b * h).unwrap_or(&[]),
            dh: &dh,
            dc: &mut dc,
            dxp: &mut dxp[t * b * gh..][..b * gh],
            dhp: dhp.get_mut(t * b * gh..(t + 1) * b * gh).unwrap_or(&mut []),
            direct: &mut next,
            active: &active,
        };
        step.run(kind, d);
        // δh_{t−1} = δ(recurrent projection)·W_hh (+ the GRU's direct z⊙δh, already in `next`)
        let dproj = if kind == CellKind::Gru { &dhp } else { &dxp };
        gemm(
            Out::Add(&mut next),
            Mat::new(&dproj[t * b * gh..], b, gh),
            Mat::padded(&w_hh_padded, gh, h, ld),
            Threads::Auto,
        );
        std::mem::swap(&mut dh, &mut next);
    }
    let dhp = if kind == CellKind::Gru { &dhp } else { &dxp };
    let rows = t_len * b;
    let mut out = RecurrentGrads::default();
    if want.x {
        let mut dx = vec![E::ZERO; rows * d.i];
        gemm(
            Out::Write(&mut dx),
            Mat::new(&dxp, rows, gh),
            Mat::new(w.w_ih.data(), gh, d.i),
            Threads::Auto,
        );
        out.dx = Some(Tensor::from_parts(dx, vec![t_len, b, d.i]));
    }
    if want.state {
        out.dh0 = Some(Tensor::from_parts(dh, vec![b, h]));
        if kind.has_cell() {
            out.dc0 = Some(Tensor::from_parts(dc, vec![b, h]));
        }
    }
    if want.weights {
        let mut dw_ih = vec![E::ZERO; gh * d.i];
        gemm(
            Out::Write(&mut dw_ih),
            Mat::new(&dxp, rows, gh).t(),
            Mat::new(x.data(), rows, d.i),
            Threads::Auto,
        );
        let mut dw_hh = vec![E::ZERO; gh * h];
        gemm(
            Out::Write(&mut dw_hh),
            Mat::new(dhp, rows, gh).t(),
            Mat::new(&hprev[usize::from(reverse) * b * h..], rows, h),
            Threads::Auto,
        );
        out.dw_ih = Some(Tensor::from_parts(dw_ih, vec![gh, d.i]));
        out.dw_hh = Some(Tensor::from_parts(dw_hh, vec![gh, h]));
    }
    if want.biases && w.b_ih.is_some() {
        let db_ih = column_sums(&dxp, gh);
        // both biases enter the same pre-activations, except for the GRU's n gate
        out.db_hh = Some(if kind == CellKind::Gru {
            column_sums(dhp, gh)
        } else {
            db_ih.clone()
        });
        out.db_ih = Some(db_ih);
    }
    out
}

/// Sums the rows of a row-major `[rows, cols]` buffer: `[cols]`.
fn column_sums<E: Element>(m: &[E], cols: usize) -> Tensor<E> {
    let mut s = vec![E::ZERO; cols];
    for row in m.chunks_exact(cols) {
        add_row(&mut s, row);
    }
    Tensor::from_parts(s, vec![cols])
}

/// One step's fused gate gradients.
struct StepBackward<'a, E> {
    hprev: &'a [E],
    cprev: &'a [E],
    cells: &'a [E],
    hn: &'a [E],
    /// `[B, H]` δh_t (from the output and from step t+1).
    dh: &'a [E],
    /// LSTM `[B, H]`: δc_t in, δc_{t−1} out.
    dc: &'a mut [E],
    /// `[B, G·H]`: the step's gates in, the δ of its input projection (pre-activation) out.
    dxp: &'a mut [E],
    /// GRU `[B, G·H]` δ of the recurrent projection.
    dhp: &'a mut [E],
    /// `[B, H]`: the part of δh_{t−1} that does not pass through W_hh (written).
    direct: &'a mut [E],
    /// `[B]`: false where the sample is padding at this step.
    active: &'a [bool],
}

impl<E: Element> StepBackward<'_, E> {
    fn run(self, kind: CellKind, d: Dims) {
        let (h, gh) = (d.h, d.gh());
        for b in 0..d.b {
            let dx = &mut self.dxp[b * gh..][..gh];
            let dh = &self.dh[b * h..][..h];
            let direct = &mut self.direct[b * h..][..h];
            if !self.active[b] {
                // a skipped step passes the state, and its gradient, through unchanged;
                // its projections' gradients stay 0 (and δc is left as it is)
                dx.fill(E::ZERO);
                if let Some(dhp) = self.dhp.get_mut(b * gh..(b + 1) * gh) {
                    dhp.fill(E::ZERO);
                }
                direct.copy_from_slice(dh);
                continue;
            }
            match kind {
                CellKind::RnnTanh => {
                    tanh_back_row(dh, dx);
                    direct.fill(E::ZERO);
                }
                CellKind::RnnRelu => {
                    for j in 0..h {
                        dx[j] = if dx[j] > E::ZERO { dh[j] } else { E::ZERO };
                    }
                    direct.fill(E::ZERO);
                }
                CellKind::Lstm => {
                    let dc = &mut self.dc[b * h..][..h];
                    let (cp, tcs) = (&self.cprev[b * h..][..h], &self.cells[b * h..][..h]);
                    lstm_back_row(cp, tcs, dh, dc, dx);
                    direct.fill(E::ZERO);
                }
                CellKind::Gru => {
                    let dhp = &mut self.dhp[b * gh..][..gh];
                    let (hp, hn) = (&self.hprev[b * h..][..h], &self.hn[b * h..][..h]);
                    gru_back_row(hp, hn, dh, dx, dhp, direct);
                }
            }
        }
    }
}

wide! {
    /// Elman (tanh), one sample: `dx ← dh⊙(1 − h_t²)`, where `dx` holds `h_t`.
    fn tanh_back_row<E>(dh: &[E], dx: &mut [E]) {
        let h = dh.len();
        let dx = &mut dx[..h];
        for j in 0..h {
            let ht = dx[j];
            dx[j] = dh[j] * (E::ONE - ht * ht);
        }
    }
}

wide! {
    /// LSTM, one sample: `dx` holds the gates `[i f g o]` and becomes their pre-activation
    /// gradients `[di df dg do]`, from `c_{t−1}`, `tanh(c_t)`, δh_t and δc_t; δc becomes
    /// δc_{t−1}.
    fn lstm_back_row<E>(cp: &[E], tcs: &[E], dh: &[E], dc: &mut [E], dx: &mut [E]) {
        let h = dh.len();
        let one = E::ONE;
        let (cp, tcs, dc) = (&cp[..h], &tcs[..h], &mut dc[..h]);
        let (dxi, rest) = dx.split_at_mut(h);
        let (dxf, rest) = rest.split_at_mut(h);
        let (dxg, rest) = rest.split_at_mut(h);
        let dxo = &mut rest[..h];
        for j in 0..h {
            let (i, f, g, o) = (dxi[j], dxf[j], dxg[j], dxo[j]);
            let tc = tcs[j];
            let dct = dc[j] + dh[j] * o * (one - tc * tc);
            dxi[j] = dct * g * i * (one - i);
            dxf[j] = dct * cp[j] * f * (one - f);
            dxg[j] = dct * i * (one - g * g);
            dxo[j] = dh[j] * tc * o * (one - o);
            dc[j] = dct * f;
        }
    }
}

wide! {
    /// GRU, one sample: `dx` holds the gates `[r z n]` and becomes the gradient of the input
    /// projection; `dhp` that of the recurrent one (`dhp`, where δn is scaled by r), and the direct part `z⊙δh` of δh_{t−1}.
    fn gru_back_row<E>(
        hp: &[E],
        hn: &[E],
        dh: &[E],
        dx: &mut [E],
        dhp: &mut [E],
        direct: &mut [E],
    ) {
        let h = dh.len();
        let one = E::ONE;
        let (hp, hn, direct) = (&hp[..h], &hn[..h], &mut direct[..h]);
        let (dxr, rest) = dx.split_at_mut(h);
        let (dxz, rest) = rest.split_at_mut(h);
        let dxn = &mut rest[..h];
        let (dhr, rest) = dhp.split_at_mut(h);
        let (dhz, rest) = rest.split_at_mut(h);
        let dhn = &mut rest[..h];
        for j in 0..h {
            let (r, z, n) = (dxr[j], dxz[j], dxn[j]);
            let dan = dh[j] * (one - z) * (one - n * n);
            let daz = dh[j] * (hp[j] - n) * z * (one - z);
            let dar = dan * hn[j] * r * (one - r);
            (dxr[j], dxz[j], dxn[j]) = (dar, daz, dan);
            (dhr[j], dhz[j], dhn[j]) = (dar, daz, dan * r);
            direct[j] = dh[j] * z;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    /// A slow reference: the cells written step by step with plain loops.
    fn reference(
        kind: CellKind,
        x: &Tensor<f64>,
        w: RecurrentWeights<'_, f64>,
        h: usize,
    ) -> Vec<f64> {
        let [t_len, b, i] = *x.shape() else {
            unreachable!()
        };
        let g = kind.gates();
        let (wi, wh) = (w.w_ih.data(), w.w_hh.data());
        let bias = |v: Option<&Tensor<f64>>, r: usize| v.map_or(0.0, |t| t.data()[r]);
        let mut hs = vec![0.0; b * h];
        let mut cs = vec![0.0; b * h];
        let mut out = Vec::new();
        for t in 0..t_len {
            let mut new_h = hs.clone();
            for n in 0..b {
                let pre = |r: usize| -> (f64, f64) {
                    let xi: f64 = (0..i)
                        .map(|k| wi[r * i + k] * x.data()[(t * b + n) * i + k])
                        .sum();
                    let hh: f64 = (0..h).map(|k| wh[r * h + k] * hs[n * h + k]).sum();
                    (xi + bias(w.b_ih, r), hh + bias(w.b_hh, r))
                };
                for j in 0..h {
                    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
                    let both = |r: usize| {
                        let (a, c) = pre(r);
                        a + c
                    };
                    new_h[n * h + j] = match kind {
                        CellKind::RnnTanh => both(j).tanh(),
                        CellKind::RnnRelu => both(j).max(0.0),
                        CellKind::Lstm => {
                            let (ig, fg) = (sig(both(j)), sig(both(h + j)));
                            let (gg, og) = (both(2 * h + j).tanh(), sig(both(3 * h + j)));
                            cs[n * h + j] = fg * cs[n * h + j] + ig * gg;
                            og * cs[n * h + j].tanh()
                        }
                        CellKind::Gru => {
                            let (r, z) = (sig(both(j)), sig(both(h + j)));
                            let (xn, hn) = pre(2 * h + j);
                            let nn = (xn + r * hn).tanh();
                            (1.0 - z) * nn + z * hs[n * h + j]
                        }
                    };
                }
            }
            hs = new_h;
            out.extend_from_slice(&hs);
        }
        let _ = g;
        out
    }

    #[test]
    fn fused_forward_agrees_with_the_step_by_step_reference() {
        let mut rng = Rng::seed(3);
        for kind in [
            CellKind::RnnTanh,
            CellKind::RnnRelu,
            CellKind::Lstm,
            CellKind::Gru,
        ] {
            // h = 64 makes the LSTM's G·H 256, whose W_hhᵀ copy has padded rows
            for (t, b, i, h) in [(5, 3, 4, 6), (4, 2, 3, 64)] {
                let gh = kind.gates() * h;
                let x = Tensor::rand_uniform(&[t, b, i], -1.0, 1.0, &mut rng);
                let w_ih = Tensor::rand_uniform(&[gh, i], -0.5, 0.5, &mut rng);
                let w_hh = Tensor::rand_uniform(&[gh, h], -0.5, 0.5, &mut rng);
                let b_ih = Tensor::rand_uniform(&[gh], -0.5, 0.5, &mut rng);
                let b_hh = Tensor::rand_uniform(&[gh], -0.5, 0.5, &mut rng);
                let w = RecurrentWeights {
                    w_ih: &w_ih,
                    w_hh: &w_hh,
                    b_ih: Some(&b_ih),
                    b_hh: Some(&b_hh),
                };
                let c0 = Tensor::zeros(&[b, h]);
                let c0 = kind.has_cell().then_some(&c0);
                for keep in [false, true] {
                    let (out, _) = recurrent_forward(
                        kind,
                        &x,
                        &Tensor::zeros(&[b, h]),
                        c0,
                        w,
                        RecurrentPass::new(false),
                        keep,
                    );
                    let want = reference(kind, &x, w, h);
                    let got = &out.data()[..t * b * h];
                    for (a, r) in got.iter().zip(&want) {
                        assert!((a - r).abs() < 1e-12, "{kind:?}: {a} vs {r}");
                    }
                    assert_eq!(&out.data()[t * b * h..][..b * h], &got[(t - 1) * b * h..]);
                }
            }
        }
    }

    /// Random weights (with biases when `biases`) for a cell of `i` inputs and `h` units.
    fn weights(kind: CellKind, i: usize, h: usize, rng: &mut Rng) -> [Tensor<f64>; 4] {
        let gh = kind.gates() * h;
        [
            Tensor::rand_uniform(&[gh, i], -0.5, 0.5, rng),
            Tensor::rand_uniform(&[gh, h], -0.5, 0.5, rng),
            Tensor::rand_uniform(&[gh], -0.5, 0.5, rng),
            Tensor::rand_uniform(&[gh], -0.5, 0.5, rng),
        ]
    }

    #[test]
    fn a_padded_batch_in_either_direction_gives_each_sample_run_alone() {
        let mut rng = Rng::seed(5);
        let (t, i, h) = (5, 3, 7);
        let lengths = [5, 0, 2, 5, 1];
        let b = lengths.len();
        for kind in [
            CellKind::RnnTanh,
            CellKind::RnnRelu,
            CellKind::Lstm,
            CellKind::Gru,
        ] {
            for biases in [true, false] {
                let [w_ih, w_hh, b_ih, b_hh] = weights(kind, i, h, &mut rng);
                let w = RecurrentWeights {
                    w_ih: &w_ih,
                    w_hh: &w_hh,
                    b_ih: biases.then_some(&b_ih),
                    b_hh: biases.then_some(&b_hh),
                };
                let x = Tensor::rand_uniform(&[t, b, i], -1.0, 1.0, &mut rng);
                let h0 = Tensor::rand_uniform(&[b, h], -1.0, 1.0, &mut rng);
                let c0 = Tensor::rand_uniform(&[b, h], -1.0, 1.0, &mut rng);
                let c0 = kind.has_cell().then_some(&c0);
                for reverse in [false, true] {
                    let pass = RecurrentPass {
                        reverse,
                        lengths: Some(&lengths),
                    };
                    let (out, _) = recurrent_forward(kind, &x, &h0, c0, w, pass, true);
                    let (lean, _) = recurrent_forward(kind, &x, &h0, c0, w, pass, false);
                    assert_eq!(out.data(), lean.data(), "{kind:?}: keep or not");
                    let s = kind.state_slices();
                    assert_eq!(out.shape(), [t + s, b, h]);
                    for (n, &len) in lengths.iter().enumerate() {
                        // sample n alone, over its real steps only
                        let xs: Vec<f64> = (0..len)
                            .flat_map(|k| x.data()[(k * b + n) * i..][..i].to_vec())
                            .collect();
                        let xs = Tensor::from_vec(xs, &[len, 1, i]);
                        let row = |m: &Tensor<f64>| {
                            Tensor::from_vec(m.data()[n * h..][..h].to_vec(), &[1, h])
                        };
                        let c0n = c0.map(row);
                        let (alone, _) = recurrent_forward(
                            kind,
                            &xs,
                            &row(&h0),
                            c0n.as_ref(),
                            w,
                            RecurrentPass::new(reverse),
                            false,
                        );
                        for k in 0..t {
                            let got = &out.data()[(k * b + n) * h..][..h];
                            if k < len {
                                let want = &alone.data()[k * h..][..h];
                                for (a, r) in got.iter().zip(want) {
                                    assert!(
                                        (a - r).abs() < 1e-12,
                                        "{kind:?} {reverse} n={n} t={k}"
                                    );
                                }
                            } else {
                                assert!(got.iter().all(|&v| v == 0.0), "padding is 0");
                            }
                        }
                        for slice in 0..s {
                            let got = &out.data()[((t + slice) * b + n) * h..][..h];
                            let want = &alone.data()[(len + slice) * h..][..h];
                            for (a, r) in got.iter().zip(want) {
                                assert!((a - r).abs() < 1e-12, "{kind:?} {reverse} n={n} final");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn an_empty_sequence_returns_the_initial_state_and_passes_its_gradient_back() {
        let mut rng = Rng::seed(6);
        let (b, i, h) = (2, 3, 4);
        for kind in [CellKind::RnnTanh, CellKind::Lstm, CellKind::Gru] {
            let [w_ih, w_hh, b_ih, b_hh] = weights(kind, i, h, &mut rng);
            let w = RecurrentWeights {
                w_ih: &w_ih,
                w_hh: &w_hh,
                b_ih: Some(&b_ih),
                b_hh: Some(&b_hh),
            };
            let h0 = Tensor::rand_uniform(&[b, h], -1.0, 1.0, &mut rng);
            let c0 = Tensor::rand_uniform(&[b, h], -1.0, 1.0, &mut rng);
            let c0 = kind.has_cell().then_some(&c0);
            for reverse in [false, true] {
                let x = Tensor::<f64>::zeros(&[0, b, i]);
                let pass = RecurrentPass::new(reverse);
                let (out, saved) = recurrent_forward(kind, &x, &h0, c0, w, pass, true);
                let s = kind.state_slices();
                assert_eq!(out.shape(), [s, b, h]);
                assert_eq!(&out.data()[..b * h], h0.data());
                if let Some(c0) = c0 {
                    assert_eq!(&out.data()[b * h..], c0.data());
                }
                let g = Tensor::rand_uniform(&[s, b, h], -1.0, 1.0, &mut rng);
                let want = RecurrentWant {
                    x: true,
                    state: true,
                    weights: true,
                    biases: true,
                };
                let r = recurrent_backward(&x, w, saved.unwrap(), &g, want);
                assert_eq!(r.dh0.unwrap().data(), &g.data()[..b * h]);
                assert!(r.dw_hh.unwrap().data().iter().all(|&v| v == 0.0));
                assert!(r.db_ih.unwrap().data().iter().all(|&v| v == 0.0));
                assert_eq!(r.dx.unwrap().shape(), [0, b, i]);
            }
        }
    }

    #[test]
    fn mismatched_shapes_are_errors_naming_the_op() {
        let x = Tensor::<f32>::zeros(&[2, 1, 3]);
        let (w_ih, w_hh) = (Tensor::zeros(&[8, 3]), Tensor::zeros(&[8, 2]));
        let w = RecurrentWeights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            b_ih: None,
            b_hh: None,
        };
        let h0 = Tensor::zeros(&[1, 2]);
        let e = try_recurrent_forward(
            CellKind::Gru,
            &x,
            &h0,
            None,
            w,
            RecurrentPass::new(false),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("recurrent:"), "{e}");
        let e = try_recurrent_forward(
            CellKind::Lstm,
            &x,
            &h0,
            None,
            w,
            RecurrentPass::new(false),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("cell state"), "{e}");
    }
}
