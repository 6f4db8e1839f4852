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
    /// Hyperbolic tangent. In `f32` on CPUs with AVX-512F it runs sixteen lanes at a time
    /// (within 2 ulp of the correctly rounded value, the sign of zero and NaN kept); elsewhere
    /// it is the standard library's, one element at a time.
    pub fn tanh(&self) -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>()
            && std::arch::is_x86_feature_detected!("avx512f")
        {
            let n = self.numel();
            let x = crate::ops::as_f32(self.data());
            let mut out: Vec<E> = Vec::with_capacity(n);
            {
                let o = crate::ops::uninit_f32(&mut out.spare_capacity_mut()[..n]);
                if crate::profile::split_elementwise(n) {
                    use rayon::prelude::*;
                    const PIECE: usize = 1 << 14;
                    x.par_chunks(PIECE)
                        .zip(o.par_chunks_mut(PIECE))
                        // SAFETY: AVX-512F was detected just above.
                        .for_each(|(x, o)| unsafe { simd::tanh_f32(x, o) });
                } else {
                    // SAFETY: AVX-512F was detected just above.
                    unsafe { simd::tanh_f32(x, o) };
                }
            }
            // SAFETY: `tanh_f32` wrote all `n` elements.
            unsafe { out.set_len(n) };
            return Tensor::from_parts(out, self.shape().to_vec());
        }
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

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// `tanh(a) = a + a³·P(a²)` below this `|a|`, else `1 − 2/(e^{2a} + 1)`, whose subtraction
    /// loses at most a bit from here on.
    const SMALL: f32 = 0.625;
    /// P's coefficients, constant term first: a least-squares fit of `(tanh(a) − a)/a³` on
    /// `a² ∈ [0, SMALL²]` weighted for relative error (about 2.5e-9 in exact arithmetic
    /// with these `f32` coefficients).
    const P: [f32; 6] = [
        -0.333_333_3,
        0.133_332_04,
        -0.053_946_95,
        0.021_703_418,
        -0.008_187_203,
        0.002_154_141_7,
    ];
    /// Above this `|a|` the value rounds to 1 (`1 − tanh(a) < 2⁻²⁵` from about 9.01 on).
    const ONE_FROM: f32 = 10.0;

    /// `tanh` of sixteen lanes: within 2 ulp of the correctly rounded value (a test sweeps
    /// every 97th `f32` of [0, 12] and their negatives; the worst is 1 ulp),
    /// `tanh(±0) = ±0`, `tanh(±∞) = ±1`, NaN kept.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    unsafe fn tanh16(x: __m512) -> __m512 {
        let sign = _mm512_set1_epi32(i32::MIN);
        let xi = _mm512_castps_si512(x);
        let a = _mm512_castsi512_ps(_mm512_andnot_si512(sign, xi));
        let one = _mm512_set1_ps(1.0);
        // small |a|: the odd polynomial
        let u = _mm512_mul_ps(a, a);
        let mut p = _mm512_set1_ps(P[5]);
        for &c in P[..5].iter().rev() {
            p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(c));
        }
        let small = _mm512_fmadd_ps(_mm512_mul_ps(a, u), p, a);
        // large |a|: e^{2a} as 2ⁿ·e^r, |r| ≤ ln2/2, e^r by its Taylor series to r⁷
        let y = _mm512_mul_ps(
            _mm512_min_ps(a, _mm512_set1_ps(ONE_FROM)),
            _mm512_set1_ps(2.0),
        );
        let n = _mm512_roundscale_ps::<0x08>(_mm512_mul_ps(
            y,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), y);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
        let mut q = _mm512_set1_ps(1.0 / 5040.0);
        for c in [
            1.0 / 720.0,
            1.0 / 120.0,
            1.0 / 24.0,
            1.0 / 6.0,
            0.5,
            1.0,
            1.0,
        ] {
            q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(c));
        }
        let e = _mm512_scalef_ps(q, n);
        let large = _mm512_sub_ps(
            one,
            _mm512_div_ps(_mm512_set1_ps(2.0), _mm512_add_ps(e, one)),
        );
        let m = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, _mm512_set1_ps(SMALL));
        let t = _mm512_mask_blend_ps(m, large, small);
        let t = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(t),
            _mm512_and_si512(xi, sign),
        ));
        // NaN lanes (which took the large branch through the clamp) give x itself
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
        _mm512_mask_blend_ps(nan, t, x)
    }

    /// `out[i] = tanh(x[i])` for every `i < x.len()`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F.
    ///
    /// # Panics
    /// If `out` is shorter than `x`.
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn tanh_f32(x: &[f32], out: &mut [MaybeUninit<f32>]) {
        assert!(out.len() >= x.len(), "tanh: output shorter than input");
        let n = x.len();
        let o = out.as_mut_ptr() as *mut f32;
        let mut i = 0;
        while i + 16 <= n {
            _mm512_storeu_ps(o.add(i), tanh16(_mm512_loadu_ps(x.as_ptr().add(i))));
            i += 16;
        }
        if i < n {
            let m: __mmask16 = ((1u32 << (n - i)) - 1) as u16;
            let v = _mm512_maskz_loadu_ps(m, x.as_ptr().add(i));
            _mm512_mask_storeu_ps(o.add(i), m, tanh16(v));
        }
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

    /// The distance in units in the last place between two finite `f32` of one sign.
    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn tanh_in_f32_on_avx512_is_within_two_ulp_of_the_rounded_value_everywhere() {
        #[cfg(target_arch = "x86_64")]
        {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                eprintln!("no AVX-512F on this CPU: Tensor::tanh takes the standard library's");
                return;
            }
            // every 97th f32 from 0 to beyond where tanh rounds to 1, and their negatives,
            // against the f64 value rounded to f32, on the kernel itself
            let top = 12.0f32.to_bits();
            let mut xs: Vec<f32> = Vec::with_capacity(2 * (top as usize / 97 + 1) + 16);
            for b in (0..=top).step_by(97) {
                xs.push(f32::from_bits(b));
                xs.push(-f32::from_bits(b));
            }
            xs.extend([
                0.625,
                -0.625,
                0.624_999_94,
                9.01,
                1e-30,
                -1e-40,
                f32::MIN_POSITIVE,
                f32::MAX,
                -f32::MAX,
                20.0,
                -88.0,
            ]);
            let mut out = Vec::with_capacity(xs.len());
            // SAFETY: AVX-512F was detected above; `tanh_f32` writes all `xs.len()` elements.
            unsafe {
                super::simd::tanh_f32(&xs, &mut out.spare_capacity_mut()[..xs.len()]);
                out.set_len(xs.len());
            }
            let mut worst = (0u32, 0.0f32);
            for (&x, &t) in xs.iter().zip(&out) {
                let want = (x as f64).tanh() as f32;
                assert_eq!(
                    t.is_sign_negative(),
                    want.is_sign_negative(),
                    "tanh({x:e}) = {t:e}"
                );
                let d = ulps(t, want);
                if d > worst.0 {
                    worst = (d, x);
                }
            }
            assert!(worst.0 <= 2, "tanh is {} ulp off at {:e}", worst.0, worst.1);
            // Tensor::tanh takes this kernel (for this length split over the pool, if it has
            // two threads or more)
            let xs = Tensor::from_vec(xs, &[out.len()]);
            assert!(
                xs.tanh().data() == &out[..],
                "Tensor::tanh is not the kernel"
            );
        }
    }

    #[test]
    fn tanh_keeps_the_sign_of_zero_gives_one_at_infinity_and_keeps_nan() {
        // on whichever path this CPU takes; seven elements, no multiple of sixteen
        let odd = [
            0.0f32,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.5,
            -3.0,
        ];
        let t = Tensor::from_vec(odd.to_vec(), &[7]).tanh();
        let t = t.data();
        assert!(t[0] == 0.0 && t[0].is_sign_positive());
        assert!(t[1] == 0.0 && t[1].is_sign_negative());
        assert_eq!((t[2], t[3]), (1.0, -1.0));
        assert!(t[4].is_nan());
        assert!((t[5] - 0.5f64.tanh() as f32).abs() <= 2.0 * f32::EPSILON);
        assert!((t[6] - (-3.0f64).tanh() as f32).abs() <= 2.0 * f32::EPSILON);
    }
}
