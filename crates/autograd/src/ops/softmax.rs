//! Softmax and log-softmax along an axis, as fused primitives with hand-written backward
//! (the stable forms need the axis maximum, which composes poorly from primitives).
//!
//! Gradients: softmax `dx = y ⊙ (g − Σ g⊙y)`; log-softmax `dx = g − softmax(x) ⊙ Σ g`.

use backprop_tensor::{log_softmax_backward, softmax_backward, Element};

use crate::Var;

impl<E: Element> Var<E> {
    /// Stable softmax along `axis`.
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn softmax(&self, axis: isize) -> Var<E> {
        let y = self.value().softmax(axis);
        let saved = y.clone();
        Var::from_op("softmax", y, vec![self.clone()], move |g, _| {
            vec![Some(softmax_backward(&saved, g, axis))]
        })
    }

    /// Stable log-softmax along `axis`.
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn log_softmax(&self, axis: isize) -> Var<E> {
        let y = self.value().log_softmax(axis);
        let saved = y.clone();
        Var::from_op("log_softmax", y, vec![self.clone()], move |g, _| {
            vec![Some(log_softmax_backward(&saved, g, axis))]
        })
    }
}
