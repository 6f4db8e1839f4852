//! Reductions.
//!
//! Gradients: `sum` spreads `g` back over the reduced axis; `mean` spreads `g/n`;
//! `max`/`min` send `g` to the extreme element, and **split it evenly between ties**
//! (so a max over `[2, 2]` sends `g/2` to each, matching a central difference).

use backprop_tensor::shape::norm_axis;
use backprop_tensor::{Element, Tensor};

use crate::Var;

fn unsqueezed(shape: &[usize], axis: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    s[axis] = 1;
    s
}

impl<E: Element> Var<E> {
    /// Sum of all elements (a rank-0 result).
    pub fn sum(&self) -> Var<E> {
        let x = self.value();
        let shape = x.shape().to_vec();
        Var::from_op("sum", x.sum_all(), vec![self.clone()], move |g, _| {
            vec![Some(Tensor::full(&shape, g.item()))]
        })
    }

    /// Mean of all elements (a rank-0 result).
    pub fn mean(&self) -> Var<E> {
        let x = self.value();
        let shape = x.shape().to_vec();
        let n = E::from_usize(x.numel());
        Var::from_op("mean", x.mean_all(), vec![self.clone()], move |g, _| {
            vec![Some(Tensor::full(&shape, g.item() / n))]
        })
    }

    /// Sum over one axis.
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn sum_axis(&self, axis: isize, keepdim: bool) -> Var<E> {
        let x = self.value();
        let ax = norm_axis("sum_axis", axis, x.rank());
        let shape = x.shape().to_vec();
        Var::from_op(
            "sum_axis",
            x.sum_axis(axis, keepdim),
            vec![self.clone()],
            move |g, _| {
                vec![Some(
                    g.reshape(&unsqueezed(&shape, ax)).broadcast_to(&shape),
                )]
            },
        )
    }

    /// Mean over one axis.
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn mean_axis(&self, axis: isize, keepdim: bool) -> Var<E> {
        let x = self.value();
        let ax = norm_axis("mean_axis", axis, x.rank());
        let shape = x.shape().to_vec();
        let n = E::from_usize(shape[ax]);
        Var::from_op(
            "mean_axis",
            x.mean_axis(axis, keepdim),
            vec![self.clone()],
            move |g, _| {
                vec![Some(
                    g.reshape(&unsqueezed(&shape, ax))
                        .broadcast_to(&shape)
                        .mul_scalar(E::ONE / n),
                )]
            },
        )
    }

    /// Maximum over one axis; ties share the gradient evenly.
    ///
    /// # Panics
    /// If the axis is out of range or empty.
    #[track_caller]
    pub fn max_axis(&self, axis: isize, keepdim: bool) -> Var<E> {
        self.extreme_axis(axis, keepdim, true)
    }

    /// Minimum over one axis; ties share the gradient evenly.
    ///
    /// # Panics
    /// If the axis is out of range or empty.
    #[track_caller]
    pub fn min_axis(&self, axis: isize, keepdim: bool) -> Var<E> {
        self.extreme_axis(axis, keepdim, false)
    }

    /// Largest element (rank-0); ties share the gradient evenly.
    pub fn max(&self) -> Var<E> {
        let n = self.with_value(|v| v.numel());
        self.reshape(&[n]).max_axis(0, false)
    }

    /// Smallest element (rank-0); ties share the gradient evenly.
    pub fn min(&self) -> Var<E> {
        let n = self.with_value(|v| v.numel());
        self.reshape(&[n]).min_axis(0, false)
    }

    #[track_caller]
    fn extreme_axis(&self, axis: isize, keepdim: bool, max: bool) -> Var<E> {
        let x = self.value();
        let op = if max { "max_axis" } else { "min_axis" };
        let ax = norm_axis(op, axis, x.rank());
        let (y, _) = if max {
            x.max_axis(axis, keepdim)
        } else {
            x.min_axis(axis, keepdim)
        };
        let keep_shape = unsqueezed(x.shape(), ax);
        let yk = y.reshape(&keep_shape);
        Var::from_op(op, y, vec![self.clone()], move |g, _| {
            let hits = x.eq_mask(&yk); // 1 at every extreme element, ties included
            let count = hits.sum_axis(ax as isize, true);
            let share = g.reshape(&keep_shape).div(&count);
            vec![Some(hits.mul(&share))]
        })
    }
}
