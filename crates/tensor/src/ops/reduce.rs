//! Reductions over one axis or over all elements, and `sum_to`, the reduction that undoes
//! broadcasting (used by every broadcasting op's backward).
//!
//! Shapes: `x: [..., n, ...]` reduced over the axis of length `n` gives `[..., ...]`, or
//! `[..., 1, ...]` with `keepdim`. Internally the input is viewed as `[outer, n, inner]`.

use super::for_each_broadcast;
use crate::element::Element;
use crate::error::{or_panic, Result, TensorError};
use crate::shape::{broadcast_shapes, broadcast_strides, norm_axis, try_norm_axis};
use crate::tensor::Tensor;

/// `(outer, n, inner)` for reducing `shape` over `axis`.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Vec<usize> {
    let mut s = shape.to_vec();
    if keepdim {
        s[axis] = 1;
    } else {
        s.remove(axis);
    }
    s
}

impl<E: Element> Tensor<E> {
    /// Sum over one axis (negative counts from the end).
    ///
    /// ```
    /// use backprop_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// assert_eq!(x.sum_axis(-1, true).shape(), &[2, 1]);
    /// assert_eq!(x.sum_axis(1, false).to_vec(), vec![6.0, 15.0]);
    /// ```
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn sum_axis(&self, axis: isize, keepdim: bool) -> Tensor<E> {
        or_panic(self.try_sum_axis(axis, keepdim))
    }

    /// [`Tensor::sum_axis`] returning an error for a bad axis.
    pub fn try_sum_axis(&self, axis: isize, keepdim: bool) -> Result<Tensor<E>> {
        let ax = try_norm_axis("sum", axis, self.rank())?;
        let (outer, n, inner) = split_at_axis(self.shape(), ax);
        let x = self.data();
        let mut out = vec![E::ZERO; outer * inner];
        for o in 0..outer {
            let acc = &mut out[o * inner..(o + 1) * inner];
            for k in 0..n {
                let row = &x[(o * n + k) * inner..(o * n + k + 1) * inner];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
        }
        Ok(Tensor::from_parts(
            out,
            reduced_shape(self.shape(), ax, keepdim),
        ))
    }

    /// Mean over one axis.
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn mean_axis(&self, axis: isize, keepdim: bool) -> Tensor<E> {
        let ax = norm_axis("mean", axis, self.rank());
        let n = E::from_usize(self.shape()[ax]);
        self.sum_axis(axis, keepdim).map(|x| x / n)
    }

    /// Maximum over one axis and the index of the first maximum (argmax).
    ///
    /// # Panics
    /// If the axis is out of range or has length 0.
    #[track_caller]
    pub fn max_axis(&self, axis: isize, keepdim: bool) -> (Tensor<E>, Vec<usize>) {
        or_panic(self.extreme_axis("max", axis, keepdim, |a, b| a > b))
    }

    /// Minimum over one axis and the index of the first minimum (argmin).
    ///
    /// # Panics
    /// If the axis is out of range or has length 0.
    #[track_caller]
    pub fn min_axis(&self, axis: isize, keepdim: bool) -> (Tensor<E>, Vec<usize>) {
        or_panic(self.extreme_axis("min", axis, keepdim, |a, b| a < b))
    }

    /// Index of the first maximum along an axis, one per position of the other axes.
    pub fn argmax(&self, axis: isize) -> Vec<usize> {
        self.max_axis(axis, false).1
    }

    fn extreme_axis(
        &self,
        op: &'static str,
        axis: isize,
        keepdim: bool,
        better: impl Fn(E, E) -> bool,
    ) -> Result<(Tensor<E>, Vec<usize>)> {
        let ax = try_norm_axis(op, axis, self.rank())?;
        let (outer, n, inner) = split_at_axis(self.shape(), ax);
        if n == 0 {
            return Err(TensorError::invalid(
                op,
                format!("axis {axis} of shape {:?} is empty", self.shape()),
            ));
        }
        let x = self.data();
        let mut vals = x[..0].to_vec();
        vals.reserve(outer * inner);
        let mut idx = vec![0usize; outer * inner];
        for o in 0..outer {
            vals.extend_from_slice(&x[o * n * inner..o * n * inner + inner]);
            let best = &mut vals[o * inner..(o + 1) * inner];
            let bi = &mut idx[o * inner..(o + 1) * inner];
            for k in 1..n {
                let row = &x[(o * n + k) * inner..(o * n + k + 1) * inner];
                for i in 0..inner {
                    // NaN propagates: a NaN beats everything and is never beaten.
                    if (better(row[i], best[i]) || row[i].is_nan()) && !best[i].is_nan() {
                        best[i] = row[i];
                        bi[i] = k;
                    }
                }
            }
        }
        Ok((
            Tensor::from_parts(vals, reduced_shape(self.shape(), ax, keepdim)),
            idx,
        ))
    }

    /// Sum of all elements, as a rank-0 tensor.
    pub fn sum_all(&self) -> Tensor<E> {
        Tensor::scalar(self.data().iter().copied().sum())
    }

    /// Mean of all elements, as a rank-0 tensor.
    pub fn mean_all(&self) -> Tensor<E> {
        Tensor::scalar(self.data().iter().copied().sum::<E>() / E::from_usize(self.numel()))
    }

    /// Largest element (NaN if any element is NaN).
    ///
    /// # Panics
    /// If the tensor is empty.
    pub fn max_all(&self) -> E {
        self.reshape(&[self.numel()]).max_axis(0, false).0.item()
    }

    /// Smallest element (NaN if any element is NaN).
    ///
    /// # Panics
    /// If the tensor is empty.
    pub fn min_all(&self) -> E {
        self.reshape(&[self.numel()]).min_axis(0, false).0.item()
    }

    /// Sums `self` down to `shape`, the inverse of broadcasting `shape` up to `self.shape()`.
    /// This is how the gradient of a broadcast operand is formed.
    ///
    /// ```
    /// use backprop_tensor::Tensor;
    /// let g = Tensor::<f32>::ones(&[4, 3]);
    /// assert_eq!(g.sum_to(&[3]).to_vec(), vec![4.0, 4.0, 4.0]);
    /// assert_eq!(g.sum_to(&[4, 1]).to_vec(), vec![3.0; 4]);
    /// ```
    ///
    /// # Panics
    /// If `shape` does not broadcast to `self.shape()`.
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Tensor<E> {
        or_panic(self.try_sum_to(shape))
    }

    /// [`Tensor::sum_to`] returning an error when `shape` does not broadcast to this shape.
    pub fn try_sum_to(&self, shape: &[usize]) -> Result<Tensor<E>> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let b = broadcast_shapes("sum_to", shape, self.shape())?;
        if b != self.shape() {
            return Err(TensorError::shapes(
                "sum_to",
                self.shape(),
                shape,
                "the target does not broadcast to the source",
            ));
        }
        let x = self.data();
        let n: usize = shape.iter().product();
        let mut out = vec![E::ZERO; n];
        if self.shape().ends_with(shape) {
            for chunk in x.chunks_exact(n.max(1)) {
                for (o, &v) in out.iter_mut().zip(chunk) {
                    *o += v;
                }
            }
        } else {
            let st = broadcast_strides(shape, self.shape());
            for_each_broadcast(self.shape(), [&st], |i, [j]| out[j] += x[i]);
        }
        Ok(Tensor::from_parts(out, shape.to_vec()))
    }

    /// Repeats `self` along broadcast dimensions to reach `shape`.
    ///
    /// # Panics
    /// If `self.shape()` does not broadcast to `shape`.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor<E> {
        let b = or_panic(broadcast_shapes("broadcast_to", self.shape(), shape));
        assert!(
            b == shape,
            "broadcast_to: shape {:?} does not broadcast to {:?}",
            self.shape(),
            shape
        );
        if shape == self.shape() {
            return self.clone();
        }
        let st = broadcast_strides(self.shape(), shape);
        let x = self.data();
        let mut out = Vec::with_capacity(shape.iter().product());
        for_each_broadcast(shape, [&st], |_, [j]| out.push(x[j]));
        Tensor::from_parts(out, shape.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn reductions_over_each_axis() {
        let x = Tensor::<f64>::from_vec((0..24).map(|v| v as f64).collect(), &[2, 3, 4]);
        let s0 = x.sum_axis(0, false);
        assert_eq!(s0.shape(), &[3, 4]);
        assert_eq!(s0.get(&[1, 2]), 6.0 + 18.0);
        let s1 = x.sum_axis(1, true);
        assert_eq!(s1.shape(), &[2, 1, 4]);
        assert_eq!(s1.get(&[1, 0, 3]), 15.0 + 19.0 + 23.0);
        assert_eq!(x.mean_axis(-1, false).get(&[0, 0]), 1.5);
        assert_eq!(x.sum_all().item(), 276.0);
        assert_eq!(x.mean_all().item(), 11.5);
    }

    #[test]
    fn max_min_and_argmax_take_the_first_of_ties() {
        let x = Tensor::<f32>::from_vec(vec![1., 5., 5., -1., -3., -3.], &[2, 3]);
        let (m, i) = x.max_axis(1, false);
        assert_eq!(m.to_vec(), vec![5., -1.]);
        assert_eq!(i, vec![1, 0]);
        let (m, i) = x.min_axis(1, false);
        assert_eq!(m.to_vec(), vec![1., -3.]);
        assert_eq!(i, vec![0, 1]);
        assert_eq!(x.argmax(0), vec![0, 0, 0]);
        assert_eq!(x.max_all(), 5.0);
        assert_eq!(x.min_all(), -3.0);
        let nan = Tensor::<f32>::from_vec(vec![1., f32::NAN, 3.], &[3]);
        assert!(nan.max_all().is_nan());
    }

    #[test]
    fn sum_to_inverts_broadcasting() {
        let g = Tensor::<f64>::from_vec((0..6).map(|v| v as f64).collect(), &[2, 3]);
        assert_eq!(g.sum_to(&[1, 3]).to_vec(), vec![3., 5., 7.]);
        assert_eq!(g.sum_to(&[2, 1]).to_vec(), vec![3., 12.]);
        assert_eq!(g.sum_to(&[]).to_vec(), vec![15.]);
        assert!(g.try_sum_to(&[4]).is_err());
        let b = Tensor::<f64>::from_vec(vec![1., 2.], &[2, 1]).broadcast_to(&[2, 3]);
        assert_eq!(b.to_vec(), vec![1., 1., 1., 2., 2., 2.]);
    }

    #[test]
    fn bad_axis_is_an_error() {
        let e = Tensor::<f32>::zeros(&[2, 3])
            .try_sum_axis(2, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sum") && e.contains("axis 2"), "{e}");
    }
}
