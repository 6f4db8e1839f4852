//! Elementwise kernels: unary maps and binary ops with NumPy broadcasting.
//!
//! Shapes: unary `x: [*] -> [*]`; binary `a: [*A], b: [*B] -> [broadcast(A, B)]`;
//! `where_(cond, a, b) -> [broadcast(cond, a, b)]`. Masks are tensors of 0 and 1 in the
//! same element type.

use super::for_each_broadcast;
use crate::element::Element;
use crate::error::{or_panic, Result, TensorError};
use crate::shape::{broadcast_shapes, broadcast_strides};
use crate::tensor::Tensor;

/// Applies `f` elementwise to two tensors under broadcasting.
pub(crate) fn binary_forward<E: Element>(
    op: &'static str,
    a: &Tensor<E>,
    b: &Tensor<E>,
    f: impl Fn(E, E) -> E,
) -> Result<Tensor<E>> {
    let (ad, bd) = (a.data(), b.data());
    if a.shape() == b.shape() {
        let out = ad.iter().zip(bd).map(|(&x, &y)| f(x, y)).collect();
        return Ok(Tensor::from_parts(out, a.shape().to_vec()));
    }
    let out_shape = broadcast_shapes(op, a.shape(), b.shape())?;
    if out_shape == a.shape() {
        if bd.len() == 1 {
            let y = bd[0];
            return Ok(Tensor::from_parts(
                ad.iter().map(|&x| f(x, y)).collect(),
                out_shape,
            ));
        }
        if a.shape().ends_with(b.shape()) {
            // b repeats along the leading dimensions (the bias case)
            let mut out = Vec::with_capacity(ad.len());
            for chunk in ad.chunks_exact(bd.len()) {
                out.extend(chunk.iter().zip(bd).map(|(&x, &y)| f(x, y)));
            }
            return Ok(Tensor::from_parts(out, out_shape));
        }
    }
    if out_shape == b.shape() {
        if ad.len() == 1 {
            let x = ad[0];
            return Ok(Tensor::from_parts(
                bd.iter().map(|&y| f(x, y)).collect(),
                out_shape,
            ));
        }
        if b.shape().ends_with(a.shape()) {
            let mut out = Vec::with_capacity(bd.len());
            for chunk in bd.chunks_exact(ad.len()) {
                out.extend(ad.iter().zip(chunk).map(|(&x, &y)| f(x, y)));
            }
            return Ok(Tensor::from_parts(out, out_shape));
        }
    }
    let sa = broadcast_strides(a.shape(), &out_shape);
    let sb = broadcast_strides(b.shape(), &out_shape);
    let n: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(n);
    for_each_broadcast(&out_shape, [&sa, &sb], |_, [ia, ib]| {
        out.push(f(ad[ia], bd[ib]))
    });
    Ok(Tensor::from_parts(out, out_shape))
}

macro_rules! binary_ops {
    ($( $(#[$doc:meta])* $name:ident, $try_name:ident, $op:literal, |$x:ident, $y:ident| $body:expr; )*) => {
        impl<E: Element> Tensor<E> {
            $(
                $(#[$doc])*
                ///
                /// # Panics
                /// If the shapes cannot be broadcast; the message names the op and both shapes.
                #[track_caller]
                pub fn $name(&self, other: &Tensor<E>) -> Tensor<E> {
                    or_panic(self.$try_name(other))
                }

                #[doc = concat!("[`Tensor::", stringify!($name), "`] returning an error on mismatched shapes.")]
                pub fn $try_name(&self, other: &Tensor<E>) -> Result<Tensor<E>> {
                    binary_forward($op, self, other, |$x: E, $y: E| $body)
                }
            )*
        }
    };
}

binary_ops! {
    /// `a + b` elementwise, with broadcasting.
    add, try_add, "add", |x, y| x + y;
    /// `a − b` elementwise, with broadcasting.
    sub, try_sub, "sub", |x, y| x - y;
    /// `a · b` elementwise, with broadcasting.
    mul, try_mul, "mul", |x, y| x * y;
    /// `a / b` elementwise, with broadcasting.
    div, try_div, "div", |x, y| x / y;
    /// Elementwise maximum, with broadcasting.
    maximum, try_maximum, "maximum", |x, y| if x >= y { x } else { y };
    /// Elementwise minimum, with broadcasting.
    minimum, try_minimum, "minimum", |x, y| if x <= y { x } else { y };
    /// Mask of `a == b` (1 where true, 0 elsewhere), with broadcasting.
    eq_mask, try_eq_mask, "eq", |x, y| if x == y { E::ONE } else { E::ZERO };
    /// Mask of `a > b`, with broadcasting.
    gt_mask, try_gt_mask, "gt", |x, y| if x > y { E::ONE } else { E::ZERO };
    /// Mask of `a ≥ b`, with broadcasting.
    ge_mask, try_ge_mask, "ge", |x, y| if x >= y { E::ONE } else { E::ZERO };
    /// Mask of `a < b`, with broadcasting.
    lt_mask, try_lt_mask, "lt", |x, y| if x < y { E::ONE } else { E::ZERO };
    /// Mask of `a ≤ b`, with broadcasting.
    le_mask, try_le_mask, "le", |x, y| if x <= y { E::ONE } else { E::ZERO };
}

impl<E: Element> Tensor<E> {
    /// `−x`.
    pub fn neg(&self) -> Self {
        self.map(|x| -x)
    }
    /// `eˣ`.
    pub fn exp(&self) -> Self {
        self.map(|x| x.exp())
    }
    /// Natural logarithm (NaN below 0, −∞ at 0).
    pub fn log(&self) -> Self {
        self.map(|x| x.ln())
    }
    /// Square root.
    pub fn sqrt(&self) -> Self {
        self.map(|x| x.sqrt())
    }
    /// `xᵖ` for a scalar exponent.
    pub fn powf(&self, p: E) -> Self {
        self.map(|x| x.powf(p))
    }
    /// `|x|`.
    pub fn abs(&self) -> Self {
        self.map(|x| x.abs())
    }
    /// −1, 0 or 1: the sign, with `sign(0) = 0`.
    pub fn sign(&self) -> Self {
        self.map(|x| {
            if x > E::ZERO {
                E::ONE
            } else if x < E::ZERO {
                -E::ONE
            } else {
                E::ZERO
            }
        })
    }
    /// `max(x, 0)`.
    pub fn relu(&self) -> Self {
        self.map(|x| if x > E::ZERO { x } else { E::ZERO })
    }
    /// `1 / (1 + e^{−x})`, computed without overflow for large |x|.
    pub fn sigmoid(&self) -> Self {
        self.map(sigmoid_scalar)
    }
    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Self {
        self.map(|x| x.tanh())
    }
    /// `x + c`.
    pub fn add_scalar(&self, c: E) -> Self {
        self.map(|x| x + c)
    }
    /// `x · c`.
    pub fn mul_scalar(&self, c: E) -> Self {
        self.map(|x| x * c)
    }
    /// `max(x, c)`.
    pub fn maximum_scalar(&self, c: E) -> Self {
        self.map(|x| if x >= c { x } else { c })
    }
    /// `min(x, c)`.
    pub fn minimum_scalar(&self, c: E) -> Self {
        self.map(|x| if x <= c { x } else { c })
    }
    /// Mask of `x > c`.
    pub fn gt_scalar(&self, c: E) -> Self {
        self.map(|x| if x > c { E::ONE } else { E::ZERO })
    }
    /// Mask of `x < c`.
    pub fn lt_scalar(&self, c: E) -> Self {
        self.map(|x| if x < c { E::ONE } else { E::ZERO })
    }
    /// Mask of `x == c`.
    pub fn eq_scalar(&self, c: E) -> Self {
        self.map(|x| if x == c { E::ONE } else { E::ZERO })
    }

    /// `a` where `cond` is non-zero, `b` elsewhere; all three broadcast together.
    ///
    /// ```
    /// use backprop_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![-1.0, 2.0, -3.0], &[3]);
    /// let y = Tensor::where_(&x.gt_scalar(0.0), &x, &Tensor::scalar(0.0));
    /// assert_eq!(y.to_vec(), vec![0.0, 2.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If the three shapes cannot be broadcast together.
    #[track_caller]
    pub fn where_(cond: &Tensor<E>, a: &Tensor<E>, b: &Tensor<E>) -> Tensor<E> {
        or_panic(Self::try_where(cond, a, b))
    }

    /// [`Tensor::where_`] returning an error on mismatched shapes.
    pub fn try_where(cond: &Tensor<E>, a: &Tensor<E>, b: &Tensor<E>) -> Result<Tensor<E>> {
        let ab = broadcast_shapes("where", a.shape(), b.shape())?;
        let out_shape = broadcast_shapes("where", cond.shape(), &ab).map_err(|_| {
            TensorError::shapes(
                "where",
                cond.shape(),
                &ab,
                "the condition does not broadcast against the values",
            )
        })?;
        let (sc, sa, sb) = (
            broadcast_strides(cond.shape(), &out_shape),
            broadcast_strides(a.shape(), &out_shape),
            broadcast_strides(b.shape(), &out_shape),
        );
        let (cd, ad, bd) = (cond.data(), a.data(), b.data());
        let mut out = Vec::with_capacity(out_shape.iter().product());
        for_each_broadcast(&out_shape, [&sc, &sa, &sb], |_, [ic, ia, ib]| {
            out.push(if cd[ic] != E::ZERO { ad[ia] } else { bd[ib] })
        });
        Ok(Tensor::from_parts(out, out_shape))
    }
}

/// The logistic function for one value, stable for large |x|.
#[inline]
pub fn sigmoid_scalar<E: Element>(x: E) -> E {
    if x >= E::ZERO {
        E::ONE / (E::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (E::ONE + e)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
        Tensor::from_vec(v.to_vec(), s)
    }

    #[test]
    fn broadcasting_in_every_layout() {
        let a = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
        assert_eq!(
            a.add(&t(&[10.], &[])).to_vec(),
            vec![11., 12., 13., 14., 15., 16.]
        );
        assert_eq!(
            a.mul(&t(&[1., 0., 2.], &[3])).to_vec(),
            vec![1., 0., 6., 4., 0., 12.]
        );
        // column vector: general strided path
        assert_eq!(
            a.sub(&t(&[1., 2.], &[2, 1])).to_vec(),
            vec![0., 1., 2., 2., 3., 4.]
        );
        // both sides broadcast: [2,1] with [3] -> [2,3]
        assert_eq!(
            t(&[1., 2.], &[2, 1])
                .add(&t(&[10., 20., 30.], &[3]))
                .to_vec(),
            vec![11., 21., 31., 12., 22., 32.]
        );
        // left side smaller
        assert_eq!(
            t(&[6.], &[]).div(&t(&[1., 2., 3.], &[3])).to_vec(),
            vec![6., 3., 2.]
        );
        assert_eq!(
            t(&[1., 2., 3.], &[3]).sub(&a).to_vec(),
            vec![0., 0., 0., -3., -3., -3.]
        );
    }

    #[test]
    fn unary_and_comparisons() {
        let x = t(&[-2., 0., 3.], &[3]);
        assert_eq!(x.sign().to_vec(), vec![-1., 0., 1.]);
        assert_eq!(x.abs().to_vec(), vec![2., 0., 3.]);
        assert_eq!(x.relu().to_vec(), vec![0., 0., 3.]);
        assert_eq!(x.maximum_scalar(1.).to_vec(), vec![1., 1., 3.]);
        assert_eq!(x.minimum(&t(&[0.], &[1])).to_vec(), vec![-2., 0., 0.]);
        assert_eq!(x.gt_mask(&t(&[0.], &[])).to_vec(), vec![0., 0., 1.]);
        assert_eq!(x.le_mask(&t(&[0.], &[])).to_vec(), vec![1., 1., 0.]);
        assert_eq!(t(&[4.], &[1]).sqrt().to_vec(), vec![2.]);
        assert_eq!(t(&[2.], &[1]).powf(3.).to_vec(), vec![8.]);
        assert!((t(&[1.], &[1]).exp().log().item() - 1.0).abs() < 1e-15);
        let s = t(&[-1000., 0., 1000.], &[3]).sigmoid().to_vec();
        assert_eq!(s, vec![0., 0.5, 1.]);
    }

    #[test]
    fn mismatched_shapes_name_the_op_and_both_shapes() {
        let e = t(&[1.; 6], &[2, 3])
            .try_add(&t(&[1.; 4], &[4]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("add:") && e.contains("[2, 3]") && e.contains("[4]"),
            "{e}"
        );
        let r = std::panic::catch_unwind(|| t(&[1.; 6], &[2, 3]).mul(&t(&[1.; 2], &[2])));
        let msg = r.unwrap_err().downcast::<String>().unwrap();
        assert!(
            msg.contains("mul") && msg.contains("[2, 3]") && msg.contains("[2]"),
            "{msg}"
        );
    }
}
