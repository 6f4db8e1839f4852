//! Recurrent layers over whole sequences (Elman, LSTM, GRU), one layer and one direction per
//! op, with backpropagation through time as the backward rule (kernels in
//! `backprop_tensor::ops::recurrent`).
//!
//! The op's output is `[T + S, B, H]`: the T outputs, then the final `h_T` (and `c_T` for the
//! LSTM). A layer narrows it into the output sequence and the final state, so gradients that
//! reach either flow back through one rule: δ of every `h_t` from above, plus δ carried from
//! step t+1 through `W_hh` (and through `c` for the LSTM).

use backprop_tensor::{
    recurrent_backward, try_recurrent_forward, CellKind, Element, RecurrentPass, RecurrentWant,
    RecurrentWeights,
};

use crate::{is_grad_disabled, Var};

/// The state and weights of one recurrent layer and direction (see [`Var::recurrent`]).
#[derive(Clone, Copy)]
pub struct RecurrentVars<'a, E: Element> {
    /// Initial hidden state `[B, H]`.
    pub h0: &'a Var<E>,
    /// Initial cell state `[B, H]` (LSTM only).
    pub c0: Option<&'a Var<E>>,
    /// `[G·H, I]`.
    pub w_ih: &'a Var<E>,
    /// `[G·H, H]`.
    pub w_hh: &'a Var<E>,
    /// `(b_ih, b_hh)`, each `[G·H]`, if the layer has biases.
    pub biases: Option<(&'a Var<E>, &'a Var<E>)>,
    /// `[B]`: each sample's real steps in a padded batch (`None`: all `T`). Padding reaches
    /// neither the outputs (0 there) nor any gradient.
    pub lengths: Option<&'a [usize]>,
}

impl<E: Element> Var<E> {
    /// Runs a recurrent cell over this time-major sequence `[T, B, I]`, from `t = 0` up or
    /// (with `reverse`) from `t = T−1` down; returns `[T + S, B, H]`, the outputs then the
    /// final state (S = 2 for the LSTM: `h_T`, `c_T`; else 1). Gates in PyTorch's order.
    ///
    /// ```
    /// use backprop_autograd::{ops::recurrent::RecurrentVars, Var};
    /// use backprop_tensor::{CellKind, Tensor};
    /// let x = Var::constant(Tensor::<f64>::ones(&[5, 2, 3]));
    /// let h0 = Var::constant(Tensor::zeros(&[2, 4]));
    /// let w_ih = Var::parameter(Tensor::full(&[4, 3], 0.1));
    /// let w_hh = Var::parameter(Tensor::full(&[4, 4], 0.1));
    /// let v = RecurrentVars { h0: &h0, c0: None, w_ih: &w_ih, w_hh: &w_hh, biases: None, lengths: None };
    /// let y = x.recurrent(CellKind::RnnTanh, v, false);
    /// assert_eq!(y.shape(), vec![6, 2, 4]);
    /// let g = y.narrow(0, 0, 5).tanh().mean().backward();
    /// assert_eq!(g.get(&w_hh).unwrap().shape(), &[4, 4]);
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit (the message names `recurrent` and the shapes).
    #[track_caller]
    pub fn recurrent(&self, kind: CellKind, v: RecurrentVars<'_, E>, reverse: bool) -> Var<E> {
        let mut parents = vec![self.clone(), v.h0.clone()];
        parents.extend(v.c0.cloned());
        parents.extend([v.w_ih.clone(), v.w_hh.clone()]);
        if let Some((bi, bh)) = v.biases {
            parents.extend([bi.clone(), bh.clone()]);
        }
        let keep = !is_grad_disabled() && parents.iter().any(Var::requires_grad);
        let (x, h0) = (self.value(), v.h0.value());
        let c0 = v.c0.map(Var::value);
        let (w_ih, w_hh) = (v.w_ih.value(), v.w_hh.value());
        let b = v.biases.map(|(bi, bh)| (bi.value(), bh.value()));
        let weights = RecurrentWeights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            b_ih: b.as_ref().map(|b| &b.0),
            b_hh: b.as_ref().map(|b| &b.1),
        };
        let pass = RecurrentPass {
            reverse,
            lengths: v.lengths,
        };
        let (y, saved) = try_recurrent_forward(kind, &x, &h0, c0.as_ref(), weights, pass, keep)
            .unwrap_or_else(|e| panic!("{e}"));
        let has_c = c0.is_some();
        Var::from_op("recurrent", y, parents, move |g, needs| {
            let saved = saved.expect("recurrent: the forward pass kept its activations");
            let state_at = 1;
            let w_at = if has_c { 3 } else { 2 };
            let want = RecurrentWant {
                x: needs[0],
                state: needs[state_at] || (has_c && needs[2]),
                weights: needs[w_at] || needs[w_at + 1],
                biases: needs.len() > w_at + 2 && (needs[w_at + 2] || needs[w_at + 3]),
            };
            let weights = RecurrentWeights {
                w_ih: &w_ih,
                w_hh: &w_hh,
                b_ih: b.as_ref().map(|b| &b.0),
                b_hh: b.as_ref().map(|b| &b.1),
            };
            let r = recurrent_backward(&x, weights, saved, g, want);
            let mut out = vec![r.dx, r.dh0];
            if has_c {
                out.push(r.dc0);
            }
            out.extend([r.dw_ih, r.dw_hh]);
            if b.is_some() {
                out.extend([r.db_ih, r.db_hh]);
            }
            out
        })
    }
}
