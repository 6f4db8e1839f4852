//! Tensor kernels, one family per file. Each file starts with a shape legend.

pub mod conv;
pub mod elementwise;
pub mod gates;
pub(crate) mod gemm;
pub mod matmul;
pub mod movement;
pub mod norm;
pub mod pool;
pub mod recurrent;
pub mod reduce;
pub mod softmax;
pub mod sparse;

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
