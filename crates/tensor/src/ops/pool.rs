//! 2-D max and average pooling.
//!
//! Shapes: `x: [N, C, H, W] → y: [N, C, HO, WO]`, `HO = (H + 2·PH − KH)/SH + 1` (likewise
//! `WO`).
//!
//! - Max pooling pads with −∞ and sends each output's gradient to the position of its
//!   maximum; when several positions of a window tie, the **first in row-major window order**
//!   gets all of it (as PyTorch does).
//! - Average pooling pads with zeros and always divides by `KH·KW` (PyTorch's
//!   `count_include_pad = true`), so its gradient is `dy / (KH·KW)` spread over the window.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Result, TensorError};
#[cfg(target_arch = "x86_64")]
use crate::ops::as_f32;
use crate::tensor::Tensor;

/// Window, stride and padding of a pooling layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    /// `(KH, KW)`.
    pub kernel: (usize, usize),
    /// `(SH, SW)`.
    pub stride: (usize, usize),
    /// `(PH, PW)`.
    pub padding: (usize, usize),
}

impl Pool2dParams {
    /// A `k×k` window with stride `k` and no padding (the usual 2×2 pooling).
    pub fn square(k: usize) -> Self {
        Pool2dParams {
            kernel: (k, k),
            stride: (k, k),
            padding: (0, 0),
        }
    }
}

/// `(n·c, h, w, ho, wo)`.
fn geom(
    op: &'static str,
    s: &[usize],
    p: Pool2dParams,
) -> Result<(usize, usize, usize, usize, usize)> {
    if s.len() != 4 {
        return Err(TensorError::invalid(
            op,
            format!("expects [N, C, H, W], got {s:?}"),
        ));
    }
    let (kh, kw) = p.kernel;
    if kh == 0 || kw == 0 || p.stride.0 == 0 || p.stride.1 == 0 {
        return Err(TensorError::invalid(
            op,
            "kernel and stride must be at least 1",
        ));
    }
    // sizes from a user's spec: nothing below may overflow
    if p.padding.0 > kh / 2 || p.padding.1 > kw / 2 {
        return Err(TensorError::invalid(
            op,
            format!(
                "padding {:?} is more than half the kernel {:?}",
                p.padding, p.kernel
            ),
        ));
    }
    // padding ≤ kernel/2, so the padded sizes are at most input + kernel
    let (Some(h), Some(w)) = (
        s[2].checked_add(2 * p.padding.0),
        s[3].checked_add(2 * p.padding.1),
    ) else {
        return Err(TensorError::invalid(
            op,
            format!(
                "the {kh}×{kw} window does not fit the {}×{} input",
                s[2], s[3]
            ),
        ));
    };
    if h < kh || w < kw {
        return Err(TensorError::invalid(
            op,
            format!(
                "the {kh}×{kw} window does not fit the {}×{} input",
                s[2], s[3]
            ),
        ));
    }
    let planes = s[0]
        .checked_mul(s[1])
        .ok_or_else(|| TensorError::invalid(op, format!("{} × {} planes overflow", s[0], s[1])))?;
    Ok((
        planes,
        s[2],
        s[3],
        (h - kh) / p.stride.0 + 1,
        (w - kw) / p.stride.1 + 1,
    ))
}

/// Calls `f(y·W + x)` for every input position of the window of output `(oy, ox)` that
/// lies inside the `h × w` plane (padding positions are skipped).
#[inline]
fn for_each_in_window(
    p: Pool2dParams,
    h: usize,
    w: usize,
    oy: usize,
    ox: usize,
    mut f: impl FnMut(usize),
) {
    for i in 0..p.kernel.0 {
        let Some(yy) = (oy * p.stride.0 + i)
            .checked_sub(p.padding.0)
            .filter(|&v| v < h)
        else {
            continue;
        };
        for j in 0..p.kernel.1 {
            let Some(xx) = (ox * p.stride.1 + j)
                .checked_sub(p.padding.1)
                .filter(|&v| v < w)
            else {
                continue;
            };
            f(yy * w + xx);
        }
    }
}

/// Output shape of pooling, or an error.
pub fn pool2d_output_shape(s: &[usize], p: Pool2dParams) -> Result<Vec<usize>> {
    let (_, _, _, ho, wo) = geom("pool2d", s, p)?;
    Ok(vec![s[0], s[1], ho, wo])
}

/// Planes handed to one task at a time, so small planes (a 5×5 map) do not each pay for a
/// task of their own.
fn planes_per_task(plane_outputs: usize) -> usize {
    (4096 / plane_outputs.max(1)).max(1)
}

/// Max pooling of one plane when no window reaches into padding: straight loops, with the
/// common 2×2 window of stride 2 unrolled. Same tie and NaN rules as the general path.
fn max_plane_unpadded<E: Element>(
    p: Pool2dParams,
    plane: &[E],
    w: usize,
    wo: usize,
    yp: &mut [E],
    ip: &mut [u32],
) {
    #[inline(always)]
    fn take<E: Element>(best: &mut E, bi: &mut usize, v: E, k: usize) {
        if !best.is_nan() && (v > *best || v.is_nan()) {
            *best = v;
            *bi = k;
        }
    }
    /// Of positions `i` (earlier) and `j` (later), the one that wins by the rules above: an
    /// integer select, so the data-dependent choice costs no mispredicted branch.
    #[inline(always)]
    fn pick<E: Element>(plane: &[E], i: usize, j: usize) -> usize {
        let (a, b) = (plane[i], plane[j]);
        let later = !a.is_nan() & ((b > a) | b.is_nan());
        if later {
            j
        } else {
            i
        }
    }
    let ((kh, kw), (sh, sw)) = (p.kernel, p.stride);
    #[cfg(target_arch = "x86_64")]
    if (kh, kw, sh, sw) == (2, 2, 2, 2) && avx512_f32::<E>() {
        let plane = as_f32(plane);
        // SAFETY: f32 (as_f32 checked it) and AVX-512F (avx512_f32); a 2×2/2 window without
        // padding keeps every output's four inputs inside the plane: rows 2·oy and 2·oy + 1
        // < h, columns 2·ox + 1 < w for ox < wo (what `geom` computed wo from).
        unsafe {
            let yp = std::slice::from_raw_parts_mut(yp.as_mut_ptr().cast::<f32>(), yp.len());
            simd::max_2x2(plane, w, wo, yp, ip);
        }
        return;
    }
    for (oy, (yrow, irow)) in yp
        .chunks_exact_mut(wo)
        .zip(ip.chunks_exact_mut(wo))
        .enumerate()
    {
        let top = oy * sh * w;
        if (kh, kw, sh, sw) == (2, 2, 2, 2) {
            // a tournament: (top-left vs top-right) vs (bottom-left vs bottom-right); the
            // earlier pair wins ties, so the first maximum in row-major order still wins
            for (ox, (yv, iv)) in yrow.iter_mut().zip(irow.iter_mut()).enumerate() {
                let k = top + 2 * ox;
                let upper = pick(plane, k, k + 1);
                let lower = pick(plane, k + w, k + w + 1);
                let k = pick(plane, upper, lower);
                *yv = plane[k];
                *iv = k as u32;
            }
            continue;
        }
        for (ox, (yv, iv)) in yrow.iter_mut().zip(irow.iter_mut()).enumerate() {
            let base = top + ox * sw;
            let (mut best, mut bi) = (plane[base], base);
            for i in 0..kh {
                let row = base + i * w;
                for (j, &v) in plane[row..row + kw].iter().enumerate() {
                    take(&mut best, &mut bi, v, row + j);
                }
            }
            *yv = best;
            *iv = bi as u32;
        }
    }
}

/// Whether `E` is `f32` and the CPU has AVX-512F (tests can turn the fast path off).
#[cfg(target_arch = "x86_64")]
fn avx512_f32<E: Element>() -> bool {
    std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>()
        && std::arch::is_x86_feature_detected!("avx512f")
        && !force_portable()
}

/// Tests switch the SIMD kernel off to compare it with the portable one.
#[cfg(test)]
fn force_portable() -> bool {
    tests::PORTABLE.with(|p| p.get())
}
#[cfg(not(test))]
fn force_portable() -> bool {
    false
}

/// 2×2 max pooling of stride 2 in AVX-512: sixteen outputs at a time, the same tournament
/// as the portable loop, with mask compares and blends instead of branches.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// Of `a` (earlier positions) and `b` (later), the lanes where `b` wins: `a` is not NaN
    /// and `b` is larger or NaN (the first maximum wins ties; a NaN wins and then stays).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn later(a: __m512, b: __m512) -> __mmask16 {
        let a_ok = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(a, a);
        let b_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(b, b);
        let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(b, a);
        a_ok & (gt | b_nan)
    }

    /// The masks of `cnt ≤ 16` windows of 2×2: `cnt` outputs, and each input row's `2·cnt`
    /// elements as its first 16 and the rest.
    #[inline(always)]
    fn window_masks(cnt: usize) -> (__mmask16, __mmask16, __mmask16) {
        (
            ((1u32 << cnt) - 1) as __mmask16,
            ((1u64 << (2 * cnt).min(16)) - 1) as __mmask16,
            ((1u64 << (2 * cnt).saturating_sub(16)) - 1) as __mmask16,
        )
    }

    /// # Safety
    /// The CPU must have AVX-512F; `plane` holds at least `2·ho` rows of `w ≥ 2·wo`
    /// elements, `ho = yp.len() / wo`, and `ip` as many elements as `yp`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn max_2x2(plane: &[f32], w: usize, wo: usize, yp: &mut [f32], ip: &mut [u32]) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
        let (pp, wi) = (plane.as_ptr(), _mm512_set1_epi32(w as i32));
        for oy in 0..yp.len() / wo {
            let top = 2 * oy * w;
            let mut ox = 0;
            while ox < wo {
                let cnt = (wo - ox).min(16);
                let (m, m_lo, m_hi) = window_masks(cnt);
                let k = top + 2 * ox;
                // SAFETY: masked loads touch only columns 2·ox .. 2·(ox + cnt) − 1 < 2·wo
                // ≤ w of rows 2·oy and 2·oy + 1, inside the plane (the caller's bounds);
                // masked-off lanes are not read (and the second half's address, which may
                // lie past the plane when it is all masked off, is formed by wrapping_add).
                let (t0, t1, b0, b1) = unsafe {
                    (
                        _mm512_maskz_loadu_ps(m_lo, pp.add(k)),
                        _mm512_maskz_loadu_ps(m_hi, pp.wrapping_add(k + 16)),
                        _mm512_maskz_loadu_ps(m_lo, pp.add(k + w)),
                        _mm512_maskz_loadu_ps(m_hi, pp.wrapping_add(k + w + 16)),
                    )
                };
                let (tl, tr) = (
                    _mm512_permutex2var_ps(t0, even, t1),
                    _mm512_permutex2var_ps(t0, odd, t1),
                );
                let (bl, br) = (
                    _mm512_permutex2var_ps(b0, even, b1),
                    _mm512_permutex2var_ps(b0, odd, b1),
                );
                let i_tl = _mm512_add_epi32(_mm512_set1_epi32(k as i32), even);
                let i_tr = _mm512_add_epi32(i_tl, _mm512_set1_epi32(1));
                let (i_bl, i_br) = (_mm512_add_epi32(i_tl, wi), _mm512_add_epi32(i_tr, wi));
                let mu = later(tl, tr);
                let (up, i_up) = (
                    _mm512_mask_blend_ps(mu, tl, tr),
                    _mm512_mask_blend_epi32(mu, i_tl, i_tr),
                );
                let ml = later(bl, br);
                let (lo, i_lo) = (
                    _mm512_mask_blend_ps(ml, bl, br),
                    _mm512_mask_blend_epi32(ml, i_bl, i_br),
                );
                let mf = later(up, lo);
                let (v, i) = (
                    _mm512_mask_blend_ps(mf, up, lo),
                    _mm512_mask_blend_epi32(mf, i_up, i_lo),
                );
                let at = oy * wo + ox;
                // SAFETY: lanes ox .. ox + cnt of output row oy, inside `yp` and `ip`.
                unsafe {
                    _mm512_mask_storeu_ps(yp.as_mut_ptr().add(at), m, v);
                    _mm512_mask_storeu_epi32(ip.as_mut_ptr().add(at).cast(), m, i);
                }
                ox += cnt;
            }
        }
    }

    /// The gradient of a 2×2, stride-2 max pooling over one plane, sixteen outputs at a
    /// time: the gradient goes to the lane of its window's top-left, top-right, bottom-left
    /// or bottom-right whose flat index matches the recorded one, 0 to the others; two
    /// output rows of `2·wo` columns are written per output row (columns `2·wo..w` and rows
    /// from `2·ho` are left to the caller).
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `dp` holds at least `2·ho` rows of `w ≥ 2·wo` elements,
    /// `ho = g.len() / wo`, and `idx` as many elements as `g`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn spread_2x2(
        dp: &mut [std::mem::MaybeUninit<f32>],
        g: &[f32],
        idx: &[u32],
        w: usize,
        wo: usize,
    ) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        // interleave two vectors of 16: lanes 0..8 of each, then lanes 8..16
        let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
        let (one, wi) = (_mm512_set1_epi32(1), _mm512_set1_epi32(w as i32));
        let (op, gp, ipp) = (dp.as_mut_ptr().cast::<f32>(), g.as_ptr(), idx.as_ptr());
        for oy in 0..g.len() / wo {
            let top = 2 * oy * w;
            let mut ox = 0;
            while ox < wo {
                let cnt = (wo - ox).min(16);
                let (m, m_lo, m_hi) = window_masks(cnt);
                let at = oy * wo + ox;
                // SAFETY: lanes ox .. ox + cnt of output row oy, inside `g` and `idx`.
                let (gv, iv) = unsafe {
                    (
                        _mm512_maskz_loadu_ps(m, gp.add(at)),
                        _mm512_maskz_loadu_epi32(m, ipp.add(at).cast()),
                    )
                };
                let k = top + 2 * ox;
                let i_tl = _mm512_add_epi32(_mm512_set1_epi32(k as i32), even);
                let i_bl = _mm512_add_epi32(i_tl, wi);
                let pick = |i: __m512i| _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(iv, i), gv);
                let (tl, tr) = (pick(i_tl), pick(_mm512_add_epi32(i_tl, one)));
                let (bl, br) = (pick(i_bl), pick(_mm512_add_epi32(i_bl, one)));
                // SAFETY: columns 2·ox .. 2·(ox + cnt) − 1 < 2·wo ≤ w of rows 2·oy and
                // 2·oy + 1 (the caller's bounds), under the masks; an all-masked-off second
                // half's address is formed by wrapping_add and not written.
                unsafe {
                    _mm512_mask_storeu_ps(op.add(k), m_lo, _mm512_permutex2var_ps(tl, lo, tr));
                    let p = op.wrapping_add(k + 16);
                    _mm512_mask_storeu_ps(p, m_hi, _mm512_permutex2var_ps(tl, hi, tr));
                    _mm512_mask_storeu_ps(op.add(k + w), m_lo, _mm512_permutex2var_ps(bl, lo, br));
                    let p = op.wrapping_add(k + w + 16);
                    _mm512_mask_storeu_ps(p, m_hi, _mm512_permutex2var_ps(bl, hi, br));
                }
                ox += cnt;
            }
        }
    }
}

/// Max pooling of one plane, any padding (padded positions never win).
fn max_plane_general<E: Element>(
    p: Pool2dParams,
    plane: &[E],
    h: usize,
    w: usize,
    wo: usize,
    yp: &mut [E],
    ip: &mut [u32],
) {
    for (k_out, (yv, iv)) in yp.iter_mut().zip(ip.iter_mut()).enumerate() {
        let (oy, ox) = (k_out / wo, k_out % wo);
        let mut best = E::neg_infinity();
        let mut bi = u32::MAX;
        for_each_in_window(p, h, w, oy, ox, |k| {
            let v = plane[k];
            // the first maximum wins ties; a NaN wins and then stays (it propagates)
            if !best.is_nan() && (v > best || bi == u32::MAX || v.is_nan()) {
                best = v;
                bi = k as u32;
            }
        });
        *yv = best;
        *iv = bi;
    }
}

/// Max pooling: the output and, for each output, the flat index `y·W + x` of its maximum
/// within its `H×W` plane.
///
/// # Errors
/// If the input is not 4-D or the window does not fit.
pub fn max_pool2d_forward<E: Element>(
    x: &Tensor<E>,
    p: Pool2dParams,
) -> Result<(Tensor<E>, Vec<u32>)> {
    pool_forward(x, p, false)
}

/// Max pooling of `x`, or with `relu` of `max(x, 0)` (each plane through the ReLU into a
/// buffer first): the output and the maxima's indices.
fn pool_forward<E: Element>(
    x: &Tensor<E>,
    p: Pool2dParams,
    relu: bool,
) -> Result<(Tensor<E>, Vec<u32>)> {
    let (planes, h, w, ho, wo) = geom("max_pool2d", x.shape(), p)?;
    let mut y = vec![E::ZERO; planes * ho * wo];
    let mut idx = vec![0u32; planes * ho * wo];
    let xd = x.data();
    let one = |buf: &mut Vec<E>, pl: usize, (yp, ip): (&mut [E], &mut [u32])| {
        let mut plane = &xd[pl * h * w..(pl + 1) * h * w];
        if relu {
            buf.clear();
            buf.extend(plane.iter().map(|&v| if v > E::ZERO { v } else { E::ZERO }));
            plane = buf;
        }
        max_plane(p, plane, (h, w, wo), yp, ip);
    };
    if ho * wo == 0 {
        // no outputs
    } else if planes <= planes_per_task(ho * wo) {
        // one task's worth (one image in inference): no hand-off to the pool
        let mut buf = Vec::new();
        y.chunks_mut(ho * wo)
            .zip(idx.chunks_mut(ho * wo))
            .enumerate()
            .for_each(|(pl, pair)| one(&mut buf, pl, pair));
    } else {
        y.par_chunks_mut(ho * wo)
            .zip(idx.par_chunks_mut(ho * wo))
            .enumerate()
            .with_min_len(planes_per_task(ho * wo))
            .for_each_init(Vec::new, |buf, (pl, pair)| one(buf, pl, pair));
    }
    Ok((
        Tensor::from_parts(y, vec![x.shape()[0], x.shape()[1], ho, wo]),
        idx,
    ))
}

/// Max pooling of ReLU's output, `pool(max(x, 0))`, in one pass: each plane goes through
/// the ReLU into a buffer that stays in cache and is pooled from there, so the full-size
/// ReLU output is never written out and read back. The outputs and indices are those of
/// [`max_pool2d_forward`] on `x.relu()`, to the bit (a NaN becomes 0 first, as ReLU makes
/// it).
///
/// # Errors
/// If the input is not 4-D or the window does not fit (as [`max_pool2d_forward`]).
pub fn relu_max_pool2d_forward<E: Element>(
    x: &Tensor<E>,
    p: Pool2dParams,
) -> Result<(Tensor<E>, Vec<u32>)> {
    pool_forward(x, p, true)
}

/// Backward of [`relu_max_pool2d_forward`]: each `dy` goes to its window's recorded maximum
/// if the input there is positive (ReLU's gradient), 0 elsewhere; each plane is written
/// once. The same bits as [`max_pool2d_backward`] followed by ReLU's backward pass.
///
/// # Panics
/// If `dy` and `idx` do not fit `x` and `p`.
pub fn relu_max_pool2d_backward<E: Element>(
    x: &Tensor<E>,
    dy: &Tensor<E>,
    idx: &[u32],
    p: Pool2dParams,
) -> Tensor<E> {
    let (h, w, ho, wo) = pooled_grad_geom("ReLU + max pool backward", x.shape(), p, dy, idx);
    let s = x.shape();
    if h * w == 0 {
        return Tensor::from_parts(Vec::new(), s.to_vec());
    }
    let dx = plane_grads(s, (dy.data(), idx), p, (ho, wo), Some(x.data()));
    Tensor::from_parts(dx, s.to_vec())
}

/// Max pooling of `planes` `h×w` planes stored one after another in `x` into `y` (the
/// pooled planes, `ho·wo` each, `ho·wo = y.len() / planes`), on the calling thread, with no
/// record of where the maxima were: the inference half of [`max_pool2d_forward`], for a
/// caller that pools what it has just computed. `ho` and `wo` are `p`'s output size for
/// `h×w` (as [`pool2d_output_shape`] gives it); `idx` is scratch space of at least `ho·wo`.
pub(crate) fn max_pool_planes<E: Element>(
    p: Pool2dParams,
    x: &[E],
    (h, w, wo): (usize, usize, usize),
    y: &mut [E],
    idx: &mut [u32],
) {
    let per = y.len() / (x.len() / (h * w).max(1)).max(1);
    if per == 0 {
        return;
    }
    for (plane, yp) in x.chunks_exact(h * w).zip(y.chunks_exact_mut(per)) {
        max_plane(p, plane, (h, w, wo), yp, &mut idx[..per]);
    }
}

/// `(H, W, HO, WO)` of max pooling `s` (`[N, C, H, W]`) with `p`, after checking that `dy`
/// and `idx` are a pooled output's gradient and indices for it.
///
/// # Panics
/// If they are not, or the pooling does not fit `s` (the message names `what`).
pub(crate) fn pooled_grad_geom<E: Element>(
    what: &str,
    s: &[usize],
    p: Pool2dParams,
    dy: &Tensor<E>,
    idx: &[u32],
) -> (usize, usize, usize, usize) {
    let (_, h, w, ho, wo) = geom("max_pool2d", s, p).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        dy.shape() == [s[0], s[1], ho, wo] && idx.len() == dy.numel(),
        "{what}: dy {:?} and {} indices for input {s:?}",
        dy.shape(),
        idx.len()
    );
    (h, w, ho, wo)
}

/// The output size of max pooling `[N, C, H, W]` (`s`) with `p`, checked as
/// [`max_pool2d_forward`] checks it: `(N·C, H, W, HO, WO)`.
pub(crate) fn max_pool_geom(
    s: &[usize],
    p: Pool2dParams,
) -> Result<(usize, usize, usize, usize, usize)> {
    geom("max_pool2d", s, p)
}

/// Max pooling of one `h×w` plane into its `yp.len()` outputs (`wo` per row) and the flat
/// indices of their maxima within the plane.
pub(crate) fn max_plane<E: Element>(
    p: Pool2dParams,
    plane: &[E],
    (h, w, wo): (usize, usize, usize),
    yp: &mut [E],
    ip: &mut [u32],
) {
    if p.padding == (0, 0) {
        max_plane_unpadded(p, plane, w, wo, yp, ip);
    } else {
        max_plane_general(p, plane, h, w, wo, yp, ip);
    }
}

/// The gradient of max pooling over one `h×w` plane, written in full into `dp`: each output
/// gradient in `gp` goes to the position its window's maximum had (`ip`), 0 elsewhere.
pub(crate) fn max_plane_grad<E: Element>(
    p: Pool2dParams,
    dp: &mut [MaybeUninit<E>],
    gp: &[E],
    ip: &[u32],
    (h, w, ho, wo): (usize, usize, usize, usize),
) {
    // with windows that tile the plane, window by window (zeros and the gradient at the
    // maximum); else zeroed, then the gradients sent to the recorded maxima
    if p == Pool2dParams::square(2) && (ho, wo) == (h / 2, w / 2) {
        spread_2x2(dp, gp, ip, h, w, wo);
        return;
    }
    dp.fill(MaybeUninit::new(E::ZERO));
    // SAFETY: every element of the plane was just written; `MaybeUninit<E>` has the layout
    // of `E`.
    let dp = unsafe { &mut *(dp as *mut [MaybeUninit<E>] as *mut [E]) };
    for (&k, &v) in ip.iter().zip(gp) {
        dp[k as usize] += v;
    }
}

/// Backward of max pooling: each `dy` goes to its window's recorded maximum (`idx` and `p`
/// as [`max_pool2d_forward`] had and returned them).
pub fn max_pool2d_backward<E: Element>(
    x_shape: &[usize],
    dy: &Tensor<E>,
    idx: &[u32],
    p: Pool2dParams,
) -> Tensor<E> {
    let (h, w) = (x_shape[2], x_shape[3]);
    let (ho, wo) = (dy.shape()[2], dy.shape()[3]);
    let len: usize = x_shape.iter().product();
    if h * w == 0 {
        return Tensor::from_parts(vec![E::ZERO; len], x_shape.to_vec());
    }
    let dx = plane_grads(x_shape, (dy.data(), idx), p, (ho, wo), None);
    Tensor::from_parts(dx, x_shape.to_vec())
}

/// The input gradient of max pooling `[N, C, H, W]` (`x_shape`, `H·W > 0`) from the output
/// gradient `g` and the maxima's indices, each plane written in full by one task; with
/// `relu_of`, ReLU's gradient too (0 where that input is not positive), as a select.
fn plane_grads<E: Element>(
    x_shape: &[usize],
    (g, idx): (&[E], &[u32]),
    p: Pool2dParams,
    (ho, wo): (usize, usize),
    relu_of: Option<&[E]>,
) -> Vec<E> {
    let (h, w) = (x_shape[2], x_shape[3]);
    let len: usize = x_shape.iter().product();
    let mut dx: Vec<E> = Vec::with_capacity(len);
    dx.spare_capacity_mut()[..len]
        .par_chunks_mut(h * w)
        .enumerate()
        .with_min_len(planes_per_task(h * w))
        .for_each(|(pl, dp)| {
            let (gp, ip) = (
                &g[pl * ho * wo..][..ho * wo],
                &idx[pl * ho * wo..][..ho * wo],
            );
            max_plane_grad(p, dp, gp, ip, (h, w, ho, wo));
            if let Some(x) = relu_of {
                // SAFETY: `max_plane_grad` wrote every element of the plane;
                // `MaybeUninit<E>` has the layout of `E`.
                let dp = unsafe { &mut *(dp as *mut [MaybeUninit<E>] as *mut [E]) };
                // a select, not a branch: the signs are as good as random
                for (d, &v) in dp.iter_mut().zip(&x[pl * h * w..(pl + 1) * h * w]) {
                    *d = if v > E::ZERO { *d } else { E::ZERO };
                }
            }
        });
    // SAFETY: the planes (`len / (h·w)` of them, `len` being a whole number of planes)
    // were each written in full above (`max_plane_grad` writes every element of its plane).
    unsafe { dx.set_len(len) };
    dx
}

/// The gradient of one plane of a 2×2, stride-2 max pooling, written in full: each window's
/// four inputs get `g` at its recorded maximum and 0 elsewhere; a last odd row or column
/// (outside every window) gets 0. Indices outside the output's window count as no match
/// (their gradient is dropped), so the kernel never writes out of its window.
fn spread_2x2<E: Element>(
    dp: &mut [MaybeUninit<E>],
    g: &[E],
    idx: &[u32],
    h: usize,
    w: usize,
    wo: usize,
) {
    assert!(dp.len() == h * w && g.len() == idx.len() && g.len() == (h / 2) * wo && wo == w / 2);
    #[cfg(target_arch = "x86_64")]
    if avx512_f32::<E>() {
        // SAFETY: f32 (checked by avx512_f32, so `MaybeUninit<E>` is `MaybeUninit<f32>`) and
        // AVX-512F; the lengths were checked just above.
        unsafe {
            let dp = std::slice::from_raw_parts_mut(dp.as_mut_ptr().cast(), dp.len());
            simd::spread_2x2(dp, as_f32(g), idx, w, wo);
        }
    } else {
        for (oy, (grow, irow)) in g.chunks_exact(wo).zip(idx.chunks_exact(wo)).enumerate() {
            for i in 0..2 {
                let y = 2 * oy + i;
                let row = &mut dp[y * w..(y + 1) * w];
                for (ox, (&gv, &k)) in grow.iter().zip(irow).enumerate() {
                    for j in 0..2 {
                        let at = y * w + 2 * ox + j;
                        row[2 * ox + j].write(if k as usize == at { gv } else { E::ZERO });
                    }
                }
            }
        }
    }
    // the odd column and row outside every window
    if w % 2 == 1 {
        for y in 0..2 * (h / 2) {
            dp[y * w + w - 1].write(E::ZERO);
        }
    }
    for v in &mut dp[2 * (h / 2) * w..] {
        v.write(E::ZERO);
    }
}

/// Average pooling (zero padding counted in the divisor).
///
/// # Errors
/// If the input is not 4-D or the window does not fit.
pub fn avg_pool2d_forward<E: Element>(x: &Tensor<E>, p: Pool2dParams) -> Result<Tensor<E>> {
    let (planes, h, w, ho, wo) = geom("avg_pool2d", x.shape(), p)?;
    let inv = E::ONE / E::from_usize(p.kernel.0 * p.kernel.1);
    let mut y = vec![E::ZERO; planes * ho * wo];
    let xd = x.data();
    y.par_chunks_mut(ho * wo).enumerate().for_each(|(pl, yp)| {
        let plane = &xd[pl * h * w..(pl + 1) * h * w];
        for oy in 0..ho {
            for ox in 0..wo {
                let mut s = E::ZERO;
                for_each_in_window(p, h, w, oy, ox, |k| {
                    s += plane[k];
                });
                yp[oy * wo + ox] = s * inv;
            }
        }
    });
    Ok(Tensor::from_parts(
        y,
        vec![x.shape()[0], x.shape()[1], ho, wo],
    ))
}

/// Backward of average pooling.
pub fn avg_pool2d_backward<E: Element>(
    x_shape: &[usize],
    dy: &Tensor<E>,
    p: Pool2dParams,
) -> Tensor<E> {
    let (h, w) = (x_shape[2], x_shape[3]);
    let (ho, wo) = (dy.shape()[2], dy.shape()[3]);
    let inv = E::ONE / E::from_usize(p.kernel.0 * p.kernel.1);
    let mut dx = vec![E::ZERO; x_shape.iter().product()];
    let g = dy.data();
    dx.par_chunks_mut(h * w).enumerate().for_each(|(pl, dp)| {
        for oy in 0..ho {
            for ox in 0..wo {
                let v = g[pl * ho * wo + oy * wo + ox] * inv;
                for_each_in_window(p, h, w, oy, ox, |k| {
                    dp[k] += v;
                });
            }
        }
    });
    Tensor::from_parts(dx, x_shape.to_vec())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        /// Set by a test to run the portable kernel.
        pub(super) static PORTABLE: Cell<bool> = const { Cell::new(false) };
    }

    /// ReLU and max pooling fused against the two ops in a row, to the bit.
    fn relu_pool_matches<E: Element>(seed: u64) {
        let mut rng = crate::Rng::seed(seed);
        let padded = Pool2dParams {
            kernel: (3, 3),
            stride: (2, 2),
            padding: (1, 1),
        };
        let overlapping = Pool2dParams {
            kernel: (3, 2),
            stride: (1, 2),
            padding: (0, 0),
        };
        for (shape, p) in [
            ([3, 6, 28, 28], Pool2dParams::square(2)),
            ([2, 3, 7, 9], Pool2dParams::square(2)),
            ([2, 2, 9, 37], padded),
            ([2, 2, 6, 5], overlapping),
        ] {
            let mut x = Tensor::<E>::rand_normal(&shape, -0.2, 1.0, &mut rng).to_vec();
            // a NaN (ReLU makes it 0) and a window of negatives only (all ties at 0)
            x[17] = E::from_f64(f64::NAN);
            for v in &mut x[..4] {
                *v = E::from_f64(-1.0);
            }
            let x = Tensor::from_vec(x, &shape);
            let (y, idx) = relu_max_pool2d_forward(&x, p).unwrap();
            let (y1, idx1) = max_pool2d_forward(&x.relu(), p).unwrap();
            assert_eq!(y.shape(), y1.shape());
            let bits = |t: &Tensor<E>| {
                t.data()
                    .iter()
                    .map(|v| v.to_f64().to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&y), bits(&y1), "{shape:?}");
            assert_eq!(idx, idx1, "{shape:?}");
            let dy = Tensor::<E>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
            let dx = relu_max_pool2d_backward(&x, &dy, &idx, p);
            let full = max_pool2d_backward(&shape, &dy, &idx1, p);
            let want: Vec<E> = full
                .data()
                .iter()
                .zip(x.data())
                .map(|(&g, &v)| if v > E::ZERO { g } else { E::ZERO })
                .collect();
            assert_eq!(
                bits(&dx),
                bits(&Tensor::from_vec(want, &shape)),
                "{shape:?}"
            );
            assert!(dx.data().iter().any(|v| *v != E::ZERO));
        }
        let flat = Tensor::<E>::zeros(&[4, 3]);
        let e = relu_max_pool2d_forward(&flat, Pool2dParams::square(2)).unwrap_err();
        assert!(e.to_string().contains("max_pool2d"), "{e}");
    }

    #[test]
    fn relu_and_max_pooling_fused_are_the_two_ops_in_a_row() {
        relu_pool_matches::<f32>(6);
        relu_pool_matches::<f64>(7);
    }

    #[test]
    fn the_simd_2x2_pooling_agrees_with_the_portable_one() {
        let mut rng = crate::Rng::seed(4);
        let p = Pool2dParams::square(2);
        // widths giving 1..=17 outputs a row (a masked tail, a full vector and one more);
        // odd sizes leave a row and column out
        for &(h, w) in &[(28, 28), (14, 14), (7, 9), (2, 2), (5, 34), (4, 35), (3, 3)] {
            let mut plane: Vec<f32> = (0..h * w).map(|_| rng.below(4) as f32).collect();
            plane[h * w / 3] = f32::NAN;
            let (ho, wo) = (h / 2, w / 2);
            let run = |portable: bool| {
                PORTABLE.with(|f| f.set(portable));
                let (mut y, mut i) = (vec![0.0f32; ho * wo], vec![0u32; ho * wo]);
                max_plane_unpadded(p, &plane, w, wo, &mut y, &mut i);
                PORTABLE.with(|f| f.set(false));
                (y, i)
            };
            let ((y1, i1), (y2, i2)) = (run(false), run(true));
            assert_eq!(i1, i2, "{h}×{w}");
            let same = y1
                .iter()
                .zip(&y2)
                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            assert!(same, "{h}×{w}: {y1:?} vs {y2:?}");
        }
    }

    #[test]
    fn the_window_by_window_gradient_is_the_scattered_one() {
        let mut rng = crate::Rng::seed(5);
        let p = Pool2dParams::square(2);
        // 1..=17 outputs a row, odd rows and columns left out of every window
        for &(n, c, h, w) in &[
            (2, 3, 28, 28),
            (1, 2, 7, 9),
            (3, 1, 2, 2),
            (1, 2, 5, 34),
            (2, 2, 4, 35),
        ] {
            let x = Tensor::<f32>::from_vec(
                (0..n * c * h * w).map(|_| rng.below(5) as f32).collect(),
                &[n, c, h, w],
            );
            let (y, idx) = max_pool2d_forward(&x, p).unwrap();
            let dy = Tensor::<f32>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
            // the plain scatter: zeros, then each gradient added at its maximum
            let (ho, wo) = (h / 2, w / 2);
            let mut want = vec![0.0f32; n * c * h * w];
            for (k, (&i, &g)) in idx.iter().zip(dy.data()).enumerate() {
                want[k / (ho * wo) * h * w + i as usize] += g;
            }
            for portable in [false, true] {
                // one thread, set inside it, so the flag holds in every task
                let got = rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .build()
                    .unwrap()
                    .install(|| {
                        PORTABLE.with(|f| f.set(portable));
                        let dx = max_pool2d_backward(x.shape(), &dy, &idx, p);
                        PORTABLE.with(|f| f.set(false));
                        dx
                    });
                assert_eq!(got.to_vec(), want, "{n}×{c}×{h}×{w}, portable {portable}");
            }
        }
    }

    #[test]
    fn sizes_whose_arithmetic_would_overflow_are_refused() {
        let p = |k: usize, pad: usize| Pool2dParams {
            kernel: (k, 2),
            stride: (1, 1),
            padding: (pad, 0),
        };
        for (k, pad) in [
            (usize::MAX, usize::MAX / 2),
            (usize::MAX, 1),
            (2, usize::MAX),
        ] {
            assert!(
                pool2d_output_shape(&[1, 1, 28, 28], p(k, pad)).is_err(),
                "{k} {pad}"
            );
        }
        assert!(pool2d_output_shape(&[usize::MAX, 2, 28, 28], p(2, 0)).is_err());
        assert_eq!(
            pool2d_output_shape(&[1, 1, 28, 28], p(3, 1)).unwrap(),
            vec![1, 1, 28, 27]
        );
    }

    #[test]
    fn the_lectures_2x2_max_pooling_of_the_feature_maps() {
        // the two 4×4 maps of the 6×6 example (see conv.rs), pooled 2×2
        #[rustfmt::skip]
        let maps = [
            3., -1., -3., -1.,  -3., 1., 0., -3.,  -3., -3., 0., 1.,  3., -2., -2., -1.,
            -1., -1., -1., -1.,  -1., -1., -2., 1.,  -1., -1., -2., 1.,  -1., 0., -4., 3.,
        ];
        let x = Tensor::<f64>::from_vec(maps.to_vec(), &[1, 2, 4, 4]);
        let (y, _) = max_pool2d_forward(&x, Pool2dParams::square(2)).unwrap();
        assert_eq!(y.to_vec(), vec![3., 0., 3., 1., -1., 1., 0., 3.]);
    }

    #[test]
    fn the_unpadded_fast_path_agrees_with_the_general_one() {
        let mut rng = crate::Rng::seed(3);
        for &(kh, kw, sh, sw, h, w) in &[
            (2, 2, 2, 2, 14, 14),
            (2, 2, 2, 2, 7, 9),
            (3, 3, 2, 2, 9, 11),
            (2, 3, 1, 2, 6, 8),
            (1, 1, 1, 1, 3, 4),
        ] {
            let p = Pool2dParams {
                kernel: (kh, kw),
                stride: (sh, sw),
                padding: (0, 0),
            };
            // few distinct values (many ties), one NaN
            let mut plane: Vec<f64> = (0..h * w).map(|_| rng.below(4) as f64).collect();
            plane[h * w / 2] = f64::NAN;
            let (ho, wo) = ((h - kh) / sh + 1, (w - kw) / sw + 1);
            let (mut y1, mut i1) = (vec![0.0; ho * wo], vec![0u32; ho * wo]);
            let (mut y2, mut i2) = (vec![0.0; ho * wo], vec![0u32; ho * wo]);
            max_plane_unpadded(p, &plane, w, wo, &mut y1, &mut i1);
            max_plane_general(p, &plane, h, w, wo, &mut y2, &mut i2);
            assert_eq!(i1, i2, "{p:?} on {h}×{w}");
            let same = y1
                .iter()
                .zip(&y2)
                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()));
            assert!(same, "{p:?} on {h}×{w}: {y1:?} vs {y2:?}");
            assert!(y1.iter().any(|v| v.is_nan()));
        }
    }

    #[test]
    fn ties_send_the_gradient_to_the_first_maximum() {
        let x = Tensor::<f64>::from_vec(vec![5., 5., 1., 5.], &[1, 1, 2, 2]);
        let (y, idx) = max_pool2d_forward(&x, Pool2dParams::square(2)).unwrap();
        assert_eq!((y.to_vec(), idx.clone()), (vec![5.], vec![0]));
        let dx = max_pool2d_backward(
            x.shape(),
            &Tensor::from_vec(vec![1.0], &[1, 1, 1, 1]),
            &idx,
            Pool2dParams::square(2),
        );
        assert_eq!(dx.to_vec(), vec![1., 0., 0., 0.]);
    }

    #[test]
    fn average_pooling_with_padding_counts_the_zeros() {
        let x = Tensor::<f64>::from_vec(vec![4., 8., 12., 16.], &[1, 1, 2, 2]);
        let p = Pool2dParams {
            kernel: (2, 2),
            stride: (2, 2),
            padding: (1, 1),
        };
        let y = avg_pool2d_forward(&x, p).unwrap();
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(y.to_vec(), vec![1., 2., 3., 4.]);
        assert!(max_pool2d_forward(&x, Pool2dParams::square(3)).is_err());
    }
}
