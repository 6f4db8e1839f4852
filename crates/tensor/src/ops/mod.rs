//! Tensor kernels, one family per file. Each file starts with a shape legend.

pub mod conv;
pub mod elementwise;
pub mod gates;
pub(crate) mod gemm;
pub mod matmul;
pub mod movement;
pub mod norm;
pub mod packing;
pub mod pool;
pub mod recurrent;
pub mod reduce;
pub mod softmax;
pub mod sparse;

/// A slice of `E` known to be `f32` (checked), as `f32`: for the AVX-512 kernels, which
/// their callers choose only for `f32`.
///
/// # Panics
/// If `E` is not `f32`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn as_f32<E: crate::Element>(s: &[E]) -> &[f32] {
    assert_eq!(std::any::TypeId::of::<E>(), std::any::TypeId::of::<f32>());
    // SAFETY: E is f32 (checked just above): same size, alignment and validity.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) }
}

/// [`as_f32`] for a mutable slice.
///
/// # Panics
/// If `E` is not `f32`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn as_f32_mut<E: crate::Element>(s: &mut [E]) -> &mut [f32] {
    assert_eq!(std::any::TypeId::of::<E>(), std::any::TypeId::of::<f32>());
    // SAFETY: E is f32 (checked just above), and the new slice takes over the unique borrow
    // of the old one for its lifetime.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) }
}

/// `&mut [MaybeUninit<E>]` as `&mut [MaybeUninit<f32>]`: an output buffer not yet written,
/// for the AVX-512 kernels.
///
/// # Panics
/// If `E` is not `f32`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn uninit_f32<E: crate::Element>(
    s: &mut [std::mem::MaybeUninit<E>],
) -> &mut [std::mem::MaybeUninit<f32>] {
    assert_eq!(std::any::TypeId::of::<E>(), std::any::TypeId::of::<f32>());
    // SAFETY: E is f32 (checked just above), so `MaybeUninit<E>` is `MaybeUninit<f32>`; the
    // new slice takes over the unique borrow of the old one for its lifetime.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}

/// Visits every position of `out_shape` in row-major order, passing the flat output index and
/// the offsets of `N` inputs read through `strides` (broadcast dimensions have stride 0).
pub(crate) fn for_each_broadcast<const N: usize>(
    out_shape: &[usize],
    strides: [&[usize]; N],
    mut f: impl FnMut(usize, [usize; N]),
) {
    let rank = out_shape.len();
    let total: usize = out_shape.iter().product();
    if total == 0 {
        return;
    }
    if rank == 0 {
        f(0, [0; N]);
        return;
    }
    let last = out_shape[rank - 1];
    let inner: [usize; N] = std::array::from_fn(|k| strides[k][rank - 1]);
    let mut idx = vec![0usize; rank];
    let mut base = [0usize; N];
    let mut o = 0;
    loop {
        for j in 0..last {
            f(o, std::array::from_fn(|k| base[k] + j * inner[k]));
            o += 1;
        }
        // advance the odometer over all but the last dimension
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            for k in 0..N {
                base[k] += strides[k][d];
            }
            if idx[d] < out_shape[d] {
                break;
            }
            for k in 0..N {
                base[k] -= strides[k][d] * out_shape[d];
            }
            idx[d] = 0;
        }
    }
}
