//! The logistic function and tanh over slices, in place: the gate nonlinearities of the
//! recurrent cells, which call them on every step.
//!
//! Shapes: any `[n]` slice. For `f64` (gradient checking) these are the standard library's
//! functions. For `f32` they are branch-free polynomial forms that the compiler vectorises —
//! with AVX-512 when the CPU has it (checked at run time), with SSE2 otherwise — accurate to a
//! few units in the last place (|error| < 4e-7 absolute, tested against `f64` below), where
//! the C library's `tanhf` and `expf` cost a call per element. NaN stays NaN.

use std::any::TypeId;

use crate::element::Element;
use crate::ops::elementwise::sigmoid_scalar;

/// `v[i] ← σ(v[i]) = 1 / (1 + e^{−v[i]})`.
pub fn sigmoid_in_place<E: Element>(v: &mut [E]) {
    match as_f32(v) {
        Some(v) => dispatch(v, Kind::Sigmoid),
        None => v.iter_mut().for_each(|x| *x = sigmoid_scalar(*x)),
    }
}

/// `v[i] ← tanh(v[i])`.
pub fn tanh_in_place<E: Element>(v: &mut [E]) {
    match as_f32(v) {
        Some(v) => dispatch(v, Kind::Tanh),
        None => v.iter_mut().for_each(|x| *x = x.tanh()),
    }
}

fn as_f32<E: Element>(v: &mut [E]) -> Option<&mut [f32]> {
    (TypeId::of::<E>() == TypeId::of::<f32>())
        // SAFETY: E is f32 (same type, so same size, alignment and validity), and the new
        // slice takes over the unique borrow of the old one for its lifetime.
        .then(|| unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut f32, v.len()) })
}

#[derive(Clone, Copy)]
enum Kind {
    Sigmoid,
    Tanh,
}

fn dispatch(v: &mut [f32], kind: Kind) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F (checked just above).
        unsafe { apply_avx512(v, kind) };
        return;
    }
    apply(v, kind);
}

/// [`apply`] compiled for AVX-512 (16 lanes).
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn apply_avx512(v: &mut [f32], kind: Kind) {
    apply(v, kind);
}

#[inline(always)]
fn apply(v: &mut [f32], kind: Kind) {
    match kind {
        Kind::Sigmoid => v.iter_mut().for_each(|x| *x = sigmoid_f32(*x)),
        Kind::Tanh => v.iter_mut().for_each(|x| *x = tanh_f32(*x)),
    }
}

/// e^x for f32 (Cephes' `expf`: x = n·ln 2 + r, |r| ≤ ln 2 / 2, a degree-6 polynomial for
/// e^r, 2^n put together from its bits). Clamped to [−87, 88], so never overflows; NaN stays
/// NaN.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    // t's low mantissa bits hold n, so 2^n is built without a float-to-int conversion
    let ni = (t.to_bits() as i32).wrapping_sub(0x4B40_0000);
    let scale = f32::from_bits((ni.wrapping_add(127) as u32).wrapping_shl(23));
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    (p * r * r + r + 1.0) * scale
}

#[inline(always)]
fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

/// tanh for f32: Cephes' odd polynomial below |x| = 0.625, `1 − 2/(e^{2|x|} + 1)` with the
/// sign of x above.
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328_2e-1)
            * z
            * x
            + x;
    let large = (1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 {
        small
    } else {
        large
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<f32> {
        let mut v: Vec<f32> = (-40_000..=40_000).map(|i| i as f32 * 5e-4).collect();
        v.extend([
            -1e30, -100.0, -88.5, 88.5, 100.0, 1e30, 0.0, -0.0, 1e-30, -1e-30,
        ]);
        v
    }

    #[test]
    fn f32_forms_agree_with_f64_to_a_few_ulp() {
        for (name, kind, reference) in [
            (
                "sigmoid",
                Kind::Sigmoid,
                (|x: f64| 1.0 / (1.0 + (-x).exp())) as fn(f64) -> f64,
            ),
            ("tanh", Kind::Tanh, f64::tanh as fn(f64) -> f64),
        ] {
            let xs = grid();
            // both code paths: the dispatched one (AVX-512 here) and the portable one
            let mut fast = xs.clone();
            dispatch(&mut fast, kind);
            let mut portable = xs.clone();
            apply(&mut portable, kind);
            for ((&x, &f), &p) in xs.iter().zip(&fast).zip(&portable) {
                let r = reference(x as f64);
                let err = (f as f64 - r).abs();
                assert!(
                    err < 4e-7 && (err < 1e-6 * r.abs() || err < 1e-37),
                    "{name}({x}) = {f}, want {r}"
                );
                assert_eq!(
                    f.to_bits(),
                    p.to_bits(),
                    "{name}({x}): SIMD and portable differ"
                );
            }
        }
    }

    #[test]
    fn nan_stays_nan_and_f64_uses_the_standard_functions() {
        let mut v = [f32::NAN, 1.0];
        tanh_in_place(&mut v);
        assert!(v[0].is_nan());
        sigmoid_in_place(&mut v);
        assert!(v[0].is_nan());
        let mut d = [0.3f64, -2.0];
        tanh_in_place(&mut d);
        assert_eq!(d, [0.3f64.tanh(), (-2.0f64).tanh()]);
    }
}
