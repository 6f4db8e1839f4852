//! Numerically stable softmax and log-softmax along an axis, with their backward kernels.
//!
//! Shapes: `x: [..., n, ...] -> [..., n, ...]`, normalised over the axis of length `n`.
//! Stability: the axis maximum is subtracted before exponentiating, so no `exp` overflows.

use super::reduce::split_at_axis;
use crate::element::Element;
use crate::shape::norm_axis;
use crate::tensor::Tensor;

/// Calls `f(base, n, stride)` for every lane along `axis`: the lane's elements sit at
/// `base + j·stride` for `j < n`.
fn for_each_lane(shape: &[usize], axis: usize, mut f: impl FnMut(usize, usize, usize)) {
    let (outer, n, inner) = split_at_axis(shape, axis);
    for o in 0..outer {
        for i in 0..inner {
            f(o * n * inner + i, n, inner);
        }
    }
}

impl<E: Element> Tensor<E> {
    /// `softmax(x)_j = e^{x_j − max x} / Σ_k e^{x_k − max x}` along `axis`.
    ///
    /// ```
    /// use backprop_tensor::Tensor;
    /// let p = Tensor::from_vec(vec![1000.0f32, 1000.0], &[1, 2]).softmax(-1);
    /// assert_eq!(p.to_vec(), vec![0.5, 0.5]);
    /// ```
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn softmax(&self, axis: isize) -> Tensor<E> {
        let ax = norm_axis("softmax", axis, self.rank());
        let x = self.data();
        let mut out = vec![E::ZERO; x.len()];
        for_each_lane(self.shape(), ax, |base, n, st| {
            let mut m = E::neg_infinity();
            for j in 0..n {
                let v = x[base + j * st];
                if v > m {
                    m = v;
                }
            }
            let mut s = E::ZERO;
            for j in 0..n {
                let e = (x[base + j * st] - m).exp();
                out[base + j * st] = e;
                s += e;
            }
            let inv = E::ONE / s;
            for j in 0..n {
                out[base + j * st] *= inv;
            }
        });
        Tensor::from_parts(out, self.shape().to_vec())
    }

    /// `log_softmax(x)_j = x_j − max x − log Σ_k e^{x_k − max x}` along `axis`.
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn log_softmax(&self, axis: isize) -> Tensor<E> {
        let ax = norm_axis("log_softmax", axis, self.rank());
        let x = self.data();
        let mut out = vec![E::ZERO; x.len()];
        for_each_lane(self.shape(), ax, |base, n, st| {
            let mut m = E::neg_infinity();
            for j in 0..n {
                let v = x[base + j * st];
                if v > m {
                    m = v;
                }
            }
            let mut s = E::ZERO;
            for j in 0..n {
                s += (x[base + j * st] - m).exp();
            }
            let lse = m + s.ln();
            for j in 0..n {
                out[base + j * st] = x[base + j * st] - lse;
            }
        });
        Tensor::from_parts(out, self.shape().to_vec())
    }
}

/// Backward of softmax: given `y = softmax(x)` and `dy`, `dx = y ⊙ (dy − Σ_j dy_j y_j)`.
pub fn softmax_backward<E: Element>(y: &Tensor<E>, dy: &Tensor<E>, axis: isize) -> Tensor<E> {
    let ax = norm_axis("softmax_backward", axis, y.rank());
    let (yv, g) = (y.data(), dy.data());
    let mut dx = vec![E::ZERO; yv.len()];
    for_each_lane(y.shape(), ax, |base, n, st| {
        let mut dot = E::ZERO;
        for j in 0..n {
            dot += g[base + j * st] * yv[base + j * st];
        }
        for j in 0..n {
            let k = base + j * st;
            dx[k] = yv[k] * (g[k] - dot);
        }
    });
    Tensor::from_parts(dx, y.shape().to_vec())
}

/// Backward of log-softmax: given `y = log_softmax(x)` and `dy`,
/// `dx = dy − softmax(x) ⊙ Σ_j dy_j`, with `softmax(x) = e^y`.
pub fn log_softmax_backward<E: Element>(y: &Tensor<E>, dy: &Tensor<E>, axis: isize) -> Tensor<E> {
    let ax = norm_axis("log_softmax_backward", axis, y.rank());
    let (yv, g) = (y.data(), dy.data());
    let mut dx = vec![E::ZERO; yv.len()];
    for_each_lane(y.shape(), ax, |base, n, st| {
        let mut s = E::ZERO;
        for j in 0..n {
            s += g[base + j * st];
        }
        for j in 0..n {
            let k = base + j * st;
            dx[k] = g[k] - yv[k].exp() * s;
        }
    });
    Tensor::from_parts(dx, y.shape().to_vec())
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn softmax_sums_to_one_on_any_axis_and_is_stable() {
        let x = Tensor::<f64>::from_vec(vec![1., 2., 3., 4., 1e4, -1e4], &[2, 3]);
        for ax in [0isize, 1] {
            let p = x.softmax(ax);
            assert!(p.all_finite());
            let s = p.sum_axis(ax, false);
            assert!(s.data().iter().all(|v| (v - 1.0).abs() < 1e-12), "{s:?}");
            let lp = x.log_softmax(ax);
            assert!(lp.all_finite());
            assert!(lp.exp().allclose(&p, 1e-12, 1e-300));
        }
        let p = Tensor::<f64>::from_vec(vec![0., 0.0f64.ln_1p() + 2f64.ln()], &[2]).softmax(0);
        assert!((p.get(&[1]) - 2.0 / 3.0).abs() < 1e-15);
    }
}
