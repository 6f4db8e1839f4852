//! 2-D convolution (cross-correlation, as in every deep-learning library) through im2col +
//! GEMM, with a direct reference kernel.
//!
//! Shapes: `x: [N, C, H, W]`, `w: [O, C/groups, KH, KW]`, `b: [O]` →
//! `y: [N, O, HO, WO]` with `HO = (H + 2·PH − DH·(KH−1) − 1)/SH + 1` (likewise `WO`).
//!
//! The images go in chunks of a few (enough for about 768 output positions, at most 8;
//! fixed by the shapes): a chunk's images are unfolded side by side into one
//! `[C·KH·KW, nb·HO·WO]` buffer and multiplied by the weight in one GEMM, whose `[O,
//! nb·HO·WO]` product is then copied out image by image (a 7×7 layer's 49 positions alone
//! fill the GEMM's tiles badly, and every product packs the weight again).
//! [`try_conv2d_forward_keep`] can instead write every chunk's columns into one batch buffer
//! for the backward pass (`N·C·KH·KW·HO·WO` elements until then), which then does not unfold
//! the images again; training does not use it (`Var::conv2d` unfolds again: keeping them was
//! measured slower). The backward pass gathers
//! each chunk's `dY` side by side and makes one GEMM for the chunk's share of the weight
//! gradient (summed transposed, `col · dYᵀ`) and one for its unfolded input gradient.
//! Stride-1 convolutions unfold through a zero-padded copy of each plane, so every row is
//! whole-width copies (on AVX-512F, `f32` runs load straight from the plane, masked). Chunks are spread over rayon's threads; the weight gradient's chunks
//! are added in order, so results do not depend on the number of threads.
//!
//! A convolution of one input channel with unit steps and output rows of at most 32 (a
//! first layer on grey images) does not unfold at all on CPUs with AVX-512F, in `f32`: its
//! forward pass and weight gradient run on direct kernels that read each tap's shifted row
//! from the image (see `direct_applies`); in training, when batch norm, ReLU and max pooling
//! follow it on a "same" padding, its weight gradient runs instead inside batch norm's
//! backward pass, plane by plane (see `ChannelWeightGrad`). One image of several input
//! channels on a "same"
//! convolution of small planes (the `cnn` preset's second and third layers) does not unfold
//! either: a direct kernel reads each tap's shifted plane (see `plane_direct`). Chunks of
//! several such images, in `f32` on AVX-512F, go to the implicit kernel (see
//! `implicit_applies`), which reads a channel-major copy of the chunk (a ninth of what
//! unfolding writes) at each tap's fixed offset; so does the input gradient of any chunk, as
//! the convolution of `dY` with the weights turned around, with no `Wᵀ·dY` product and no
//! col2im. Only the weight gradient still unfolds there. One image
//! inside [`team::scope`] splits its products with the partner thread: by bands of output
//! rows when max pooling follows and the image unfolds (each thread unfolding only its
//! band), else by output channels.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::element::Element;
use crate::error::{or_panic, Result, TensorError};
use crate::ops::gemm::{gemm, Mat, Out, Threads};
use crate::ops::pool::{max_pool2d_forward, max_pool_planes, pool2d_output_shape, Pool2dParams};
#[cfg(target_arch = "x86_64")]
use crate::ops::{as_f32, as_f32_mut, uninit_f32};
use crate::team;
use crate::tensor::Tensor;

/// Stride, padding, dilation and groups of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// `(SH, SW)`.
    pub stride: (usize, usize),
    /// Zero padding `(PH, PW)` on each side.
    pub padding: (usize, usize),
    /// `(DH, DW)`: the spacing of kernel taps.
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels are split into this many independent
    /// convolutions.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

/// Everything a kernel needs to know about one convolution's shapes.
#[derive(Debug, Clone, Copy)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    p: Conv2dParams,
}

impl Geom {
    fn new(x: &[usize], w: &[usize], p: Conv2dParams) -> Result<Geom> {
        let bad = |m: String| Err(TensorError::shapes("conv2d", x, w, m));
        if x.len() != 4 || w.len() != 4 {
            return bad(
                "the input must be [N, C, H, W] and the weight [O, C/groups, KH, KW]".into(),
            );
        }
        let (n, c, h, wd) = (x[0], x[1], x[2], x[3]);
        let (o, cg, kh, kw) = (w[0], w[1], w[2], w[3]);
        let g = p.groups;
        if g == 0 || c % g != 0 || o % g != 0 {
            return bad(format!(
                "{g} groups must divide both {c} input and {o} output channels"
            ));
        }
        if cg != c / g {
            return bad(format!(
                "the weight expects {} input channels per group, the input has {}",
                cg,
                c / g
            ));
        }
        if p.stride.0 == 0
            || p.stride.1 == 0
            || p.dilation.0 == 0
            || p.dilation.1 == 0
            || kh == 0
            || kw == 0
        {
            return bad("stride, dilation and kernel size must be at least 1".into());
        }
        // sizes from a user's spec: every product and sum is checked
        let span = |d: usize, k: usize| d.checked_mul(k - 1).and_then(|s| s.checked_add(1));
        let padded = |x: usize, pad: usize| pad.checked_mul(2).and_then(|p| p.checked_add(x));
        let (Some(span_h), Some(span_w), Some(ph), Some(pw)) = (
            span(p.dilation.0, kh),
            span(p.dilation.1, kw),
            padded(h, p.padding.0),
            padded(wd, p.padding.1),
        ) else {
            return bad(format!(
                "the kernel's span (dilation {:?}) or the padded input (padding {:?}) is too large to count",
                p.dilation, p.padding
            ));
        };
        if ph < span_h || pw < span_w {
            return bad(format!(
                "the kernel spans {span_h}×{span_w}, more than the padded {ph}×{pw} input"
            ));
        }
        let ho = (ph - span_h) / p.stride.0 + 1;
        let wo = (pw - span_w) / p.stride.1 + 1;
        Ok(Geom {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            ho,
            wo,
            p,
        })
    }
    fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }
    fn positions(&self) -> usize {
        self.ho * self.wo
    }
    /// Input row and column read by output position `(oy, ox)` and tap `(i, j)`, if inside.
    #[inline]
    fn src(&self, oy: usize, ox: usize, i: usize, j: usize) -> Option<(usize, usize)> {
        let y = (oy * self.p.stride.0 + i * self.p.dilation.0).checked_sub(self.p.padding.0)?;
        let x = (ox * self.p.stride.1 + j * self.p.dilation.1).checked_sub(self.p.padding.1)?;
        (y < self.h && x < self.w).then_some((y, x))
    }
}

/// Output shape of a convolution, or an error naming both shapes.
pub fn conv2d_output_shape(x: &[usize], w: &[usize], p: Conv2dParams) -> Result<Vec<usize>> {
    let g = Geom::new(x, w, p)?;
    Ok(vec![g.n, g.o, g.ho, g.wo])
}

impl Geom {
    /// For tap `(i, j)` and output row `oy`: the input row read, and the range of output
    /// columns `ox` whose input column lies inside the image (input column =
    /// `ox·SW + j·DW − PW`), `lo < hi`. `None` if the whole output row reads padding.
    #[inline]
    fn row_span(&self, oy: usize, i: usize, j: usize) -> Option<(usize, usize, usize)> {
        let y = (oy * self.p.stride.0 + i * self.p.dilation.0).checked_sub(self.p.padding.0)?;
        if y >= self.h {
            return None;
        }
        let (sw, off) = (self.p.stride.1, j * self.p.dilation.1);
        let pw = self.p.padding.1;
        // first ox with ox·sw + off ≥ pw, and one past the last with ox·sw + off − pw < w
        let lo = if off >= pw {
            0
        } else {
            (pw - off).div_ceil(sw)
        };
        let hi = if self.w + pw > off {
            ((self.w + pw - off - 1) / sw + 1).min(self.wo)
        } else {
            0
        };
        // no column of the row inside the image (lo may even lie past the row's end, when
        // the padding is wider than the output)
        (lo < hi).then_some((y, lo, hi))
    }
}

impl Geom {
    /// Stride 1 and dilation 1 in both directions: im2col and col2im take a path without
    /// per-row divisions.
    fn unit_steps(&self) -> bool {
        self.p.stride == (1, 1) && self.p.dilation == (1, 1)
    }
}

/// [`im2col`] for stride 1 and dilation 1. A padded input is first copied into a zeroed
/// plane with the margins, so every row of `col` is `HO` copies of `WO` elements with no
/// clipping. The plane is zeroed once: each channel overwrites only its inside, so the
/// margins stay zero.
fn im2col_unit<E: Element>(g: &Geom, img: &[E], col: &mut [E], ld: usize) {
    let (pp, wo) = (g.positions(), g.wo);
    let (ph, pw) = g.p.padding;
    let wp = g.w + 2 * pw;
    let is_padded = (ph, pw) != (0, 0);
    let mut padded = vec![E::ZERO; if is_padded { (g.h + 2 * ph) * wp } else { 0 }];
    for c in 0..g.c {
        let plane = &img[c * g.h * g.w..(c + 1) * g.h * g.w];
        let src: &[E] = if !is_padded {
            plane
        } else {
            for (y, line) in plane.chunks_exact(g.w).enumerate() {
                copy_n(&mut padded[(y + ph) * wp + pw..][..g.w], line);
            }
            &padded
        };
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * ld..][..pp];
                for (oy, out) in row.chunks_exact_mut(wo).enumerate() {
                    copy_n(out, &src[(oy + i) * wp + j..][..wo]);
                }
            }
        }
    }
}

/// [`col2im`] for stride 1 and dilation 1: sums into a padded plane (no clipping), then
/// adds its inside to the image.
fn col2im_unit<E: Element>(g: &Geom, col: &[E], img: &mut [E], ld: usize) {
    let (pp, wo) = (g.positions(), g.wo);
    let (ph, pw) = g.p.padding;
    let wp = g.w + 2 * pw;
    let mut padded = Vec::new();
    for c in 0..g.c {
        let plane = &mut img[c * g.h * g.w..(c + 1) * g.h * g.w];
        let is_padded = (ph, pw) != (0, 0);
        if is_padded {
            padded.clear();
            padded.resize((g.h + 2 * ph) * wp, E::ZERO);
        }
        let dst: &mut [E] = if is_padded { &mut padded } else { plane };
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &col[((c * g.kh + i) * g.kw + j) * ld..][..pp];
                for (oy, inp) in row.chunks_exact(wo).enumerate() {
                    add_n(&mut dst[(oy + i) * wp + j..][..wo], inp);
                }
            }
        }
        if is_padded {
            let plane = &mut img[c * g.h * g.w..(c + 1) * g.h * g.w];
            for (y, line) in plane.chunks_exact_mut(g.w).enumerate() {
                let src = &padded[(y + ph) * wp + pw..][..g.w];
                for (d, &v) in line.iter_mut().zip(src) {
                    *d += v;
                }
            }
        }
    }
}

/// Unfolds one image `[C, H, W]` into `col: [C·KH·KW, HO·WO]`, whose rows start `ld ≥ HO·WO`
/// elements apart (`ld > HO·WO` when the columns of several images sit side by side).
fn im2col<E: Element>(g: &Geom, img: &[E], col: &mut [E], ld: usize) {
    #[cfg(target_arch = "x86_64")]
    if g.unit_steps() && simd::usable::<E>() {
        return simd::im2col_unit_f32(g, as_f32(img), as_f32_mut(col), ld);
    }
    if g.unit_steps() {
        im2col_unit(g, img, col, ld)
    } else {
        im2col_general(g, img, col, ld)
    }
}

/// Unfolds the `nb` images `[C, H, W]` at the start of `imgs` side by side into
/// `col: [C·KH·KW, ld]`, image `k`'s `HO·WO` columns from column `k·HO·WO` (`ld ≥ nb·HO·WO`):
/// what [`im2col`] of each image into `&mut col[k·HO·WO..]` gives.
fn im2col_images<E: Element>(g: &Geom, imgs: &[E], nb: usize, col: &mut [E], ld: usize) {
    #[cfg(target_arch = "x86_64")]
    if g.unit_steps() && simd::usable::<E>() {
        return simd::im2col_images_f32(g, as_f32(imgs), nb, as_f32_mut(col), ld);
    }
    let (pp, img_len) = (g.positions(), g.c * g.h * g.w);
    for k in 0..nb {
        im2col(
            g,
            &imgs[k * img_len..(k + 1) * img_len],
            &mut col[k * pp..],
            ld,
        );
    }
}

/// The unit-step unfolding in AVX-512: each output row's run of up to sixteen columns is one
/// masked load straight from the input plane (the lanes that fall in the padding load as
/// zeros) and one masked store, where the portable path copies every run through a padded
/// plane. For the `cnn` preset's 14×14 and 7×7 layers that is 2,016 runs of 14 or 7 each.
/// The folding back (col2im, in the backward pass) is the same walk with a masked load, add
/// and store into the plane.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    use super::Geom;
    use crate::element::Element;

    /// Whether `E` is `f32` and the CPU has AVX-512F.
    pub(super) fn usable<E: Element>() -> bool {
        std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>()
            && std::arch::is_x86_feature_detected!("avx512f")
    }

    /// The lanes `lo..hi` (none when `lo ≥ hi`), `hi ≤ 16`.
    #[inline(always)]
    fn lanes(lo: usize, hi: usize) -> __mmask16 {
        if lo >= hi {
            0
        } else {
            (((1u32 << hi) - 1) & !((1u32 << lo) - 1)) as __mmask16
        }
    }

    /// [`super::im2col_unit`] for `f32` (same arguments, same result).
    ///
    /// # Panics
    /// If the geometry does not have unit steps, or `img` or `col` is too short for it.
    pub(super) fn im2col_unit_f32(g: &Geom, img: &[f32], col: &mut [f32], ld: usize) {
        assert!(g.unit_steps() && ld >= g.positions(), "im2col: geometry");
        assert!(img.len() >= g.c * g.h * g.w, "im2col: image");
        let rows = g.c * g.kh * g.kw;
        assert!(
            rows == 0 || col.len() >= (rows - 1) * ld + g.positions(),
            "im2col: columns"
        );
        assert!(usable::<f32>(), "im2col: AVX-512F");
        // SAFETY: AVX-512F was detected; the lengths were checked above (see `kernel`).
        unsafe { kernel(g, img, col, ld, (0, g.ho), (1, 0)) }
    }

    /// [`super::im2col_images`] for `f32` (same arguments, same result).
    ///
    /// # Panics
    /// If the geometry does not have unit steps, or `imgs` or `col` is too short for `nb`
    /// images.
    pub(super) fn im2col_images_f32(g: &Geom, imgs: &[f32], nb: usize, col: &mut [f32], ld: usize) {
        let (pp, img_len) = (g.positions(), g.c * g.h * g.w);
        assert!(g.unit_steps() && ld >= nb * pp, "im2col: geometry");
        assert!(imgs.len() >= nb * img_len, "im2col: images");
        let rows = g.c * g.kh * g.kw;
        assert!(
            nb == 0 || rows == 0 || col.len() >= (rows - 1) * ld + nb * pp,
            "im2col: columns"
        );
        assert!(usable::<f32>(), "im2col: AVX-512F");
        // SAFETY: AVX-512F was detected; the lengths were checked above (see `kernel`).
        unsafe { kernel(g, imgs, col, ld, (0, g.ho), (nb, img_len)) }
    }

    /// [`im2col_unit_f32`] for the output rows `r0..r1` only: `col` holds `C·KH·KW` rows of
    /// `(r1 − r0)·WO` positions, `ld` apart, as the unfolding of an image whose output
    /// starts at row `r0`.
    ///
    /// # Panics
    /// If the geometry does not have unit steps, the rows are not a nonempty range in
    /// `0..HO`, or `img` or `col` is too short.
    pub(super) fn im2col_rows_f32(
        g: &Geom,
        img: &[f32],
        col: &mut [f32],
        ld: usize,
        (r0, r1): (usize, usize),
    ) {
        let n = r1.saturating_sub(r0) * g.wo;
        assert!(
            g.unit_steps() && r0 < r1 && r1 <= g.ho && ld >= n,
            "im2col: rows"
        );
        assert!(img.len() >= g.c * g.h * g.w, "im2col: image");
        let rows = g.c * g.kh * g.kw;
        assert!(
            rows == 0 || col.len() >= (rows - 1) * ld + n,
            "im2col: columns"
        );
        assert!(usable::<f32>(), "im2col: AVX-512F");
        // SAFETY: AVX-512F was detected; the lengths were checked above (see `kernel`).
        unsafe { kernel(g, img, col, ld, (r0, r1), (1, 0)) }
    }

    /// [`super::col2im_unit`] for `f32` (same arguments, same result). Each run of up to
    /// sixteen input columns is loaded once, gets every tap's contribution added in a
    /// register (masked loads from the column rows), and is stored once: adding into the
    /// plane tap by tap would load what the previous tap's masked store has not yet
    /// written back, which stalls. The taps are added in the order
    /// [`super::col2im_general`] adds them, so the sums are the same to the bit.
    ///
    /// # Panics
    /// If the geometry does not have unit steps, or `img` or `col` is too short for it.
    pub(super) fn col2im_unit_f32(g: &Geom, col: &[f32], img: &mut [f32], ld: usize) {
        assert!(g.unit_steps() && ld >= g.positions(), "col2im: geometry");
        assert!(img.len() >= g.c * g.h * g.w, "col2im: image");
        let rows = g.c * g.kh * g.kw;
        assert!(
            rows == 0 || col.len() >= (rows - 1) * ld + g.positions(),
            "col2im: columns"
        );
        assert!(usable::<f32>(), "col2im: AVX-512F");
        // SAFETY: AVX-512F was detected; the lengths were checked above (see `fold`).
        unsafe { fold(g, col, img, ld) }
    }

    /// # Safety
    /// The CPU has AVX-512F; `g` has unit steps; `img` holds `C·H·W` elements and `col`
    /// `C·KH·KW` rows of `HO·WO` elements starting `ld` apart.
    #[target_feature(enable = "avx512f")]
    unsafe fn fold(g: &Geom, col: &[f32], img: &mut [f32], ld: usize) {
        let (ph, pw) = g.p.padding;
        let (h, w, wo) = (g.h, g.w, g.wo);
        for c in 0..g.c {
            // SAFETY (for every pointer below): `plane` is channel c's `H·W` elements inside
            // `img`; the lanes `0..cnt` of input row `y = y0 + r < H` are its elements
            // `y·W + x0 + k < H·W`. Tap (i, j) adds to lane k (input column x = x0 + k) the
            // element of output row `oy = y + ph − i` (checked to be in `0..HO`; a negative
            // one wraps to a huge value and fails the check) and output column
            // `ox = x + pw − j`; only lanes whose output column is in `0..WO` (and
            // `k < cnt`) are read, at `tap·ld + oy·WO + ox < tap·ld + HO·WO ≤ col.len()`.
            let plane = img.as_mut_ptr().add(c * h * w);
            // ROWS input rows at a time, so that their sums (each a chain of dependent
            // additions) overlap
            const ROWS: usize = 4;
            let mut y0 = 0;
            while y0 < h {
                let ny = (h - y0).min(ROWS);
                let mut x0 = 0;
                while x0 < w {
                    let cnt = (w - x0).min(16);
                    let run = lanes(0, cnt);
                    let mut acc = [_mm512_setzero_ps(); ROWS];
                    for (r, a) in acc.iter_mut().enumerate().take(ny) {
                        *a = _mm512_maskz_loadu_ps(run, plane.add((y0 + r) * w + x0));
                    }
                    for i in 0..g.kh {
                        for j in 0..g.kw {
                            // lanes k with 0 ≤ x0 + k + pw − j < WO
                            let lo = j.saturating_sub(x0 + pw);
                            let hi = (wo + j).saturating_sub(x0 + pw).min(cnt);
                            let valid = lanes(lo, hi);
                            let tap = (c * g.kh + i) * g.kw + j;
                            let src = col
                                .as_ptr()
                                .wrapping_add(tap * ld + x0 + pw)
                                .wrapping_sub(j);
                            for (r, a) in acc.iter_mut().enumerate().take(ny) {
                                let oy = (y0 + r + ph).wrapping_sub(i);
                                if oy < g.ho {
                                    let v = _mm512_maskz_loadu_ps(valid, src.wrapping_add(oy * wo));
                                    *a = _mm512_mask_add_ps(*a, valid, *a, v);
                                }
                            }
                        }
                    }
                    for (r, a) in acc.iter().enumerate().take(ny) {
                        _mm512_mask_storeu_ps(plane.add((y0 + r) * w + x0), run, *a);
                    }
                    x0 += 16;
                }
                y0 += ny;
            }
        }
    }

    /// The most output positions a band of [`plane_forward_f32`] takes: the position masks
    /// of a 3×3 kernel then fit [`PLANE_MASKS`].
    pub(super) const PLANE_MAX_POSITIONS: usize = 256;

    /// Entries of the stack table of [`plane_forward_f32`]'s masks (one per tap and run of
    /// sixteen positions); larger kernels keep theirs on the heap.
    const PLANE_MASKS: usize = 9 * PLANE_MAX_POSITIONS / 16;

    /// Whether [`plane_forward_f32`] takes `g`: unit steps, as wide out as in (a "same"
    /// padding), no groups, more than one input channel (one, with rows of at most 32,
    /// goes to [`direct_forward_f32`]), a kernel of more than one tap (a 1×1 one unfolds
    /// by a copy), at most [`PLANE_MAX_POSITIONS`] output positions and an input of at most
    /// [`PLANE_MAX_INPUT`] elements, `f32` on AVX-512F. Measured only on the `cnn`
    /// preset's layers (16 and 32 channels of 14×14 and 7×7): it reads the whole input
    /// again for every four output channels, so larger inputs keep the unfolding.
    pub(super) fn plane_direct_applies<E: Element>(g: &Geom) -> bool {
        g.unit_steps()
            && g.p.groups == 1
            && g.wo == g.w
            && g.w > 0
            && g.c > 1
            && g.kh * g.kw > 1
            && g.ho * g.wo <= PLANE_MAX_POSITIONS
            && g.c * g.h * g.w <= PLANE_MAX_INPUT
            && usable::<E>()
    }

    /// The largest input (`C·H·W` elements, 32 KB) [`plane_forward_f32`] takes: an L1 data
    /// cache's worth, which it reads again for every four output channels.
    pub(super) const PLANE_MAX_INPUT: usize = 8192;

    /// Output rows `r0..r1` of one image's convolution, for as many output channels as `w`
    /// holds rows of `C·KH·KW`, computed directly with no unfolding: with `p` the band's
    /// positions (`p = oy·WO + ox`, `r0 ≤ oy < r1`), `y[o][p − r0·WO] = Σ_c Σ_(i,j)
    /// w[o][c][i][j] · x[c][p + (i − PH)·W + j − PW]`, the input zero where its row or
    /// column falls in the padding. As in [`same_width`], each tap reads the plane at a
    /// fixed offset from the positions, sixteen at a time under a mask; here four runs of
    /// sixteen positions and four output channels accumulate in sixteen registers over
    /// every input channel and tap, each input vector loaded once per four channels and
    /// each weight broadcast once per four runs. Every element of `y` (`rows·(r1 − r0)·WO`)
    /// is written, with `bias[o]` added (if given: one per row of `w`) and then the ReLU
    /// applied (if `relu`) as it is stored, as [`super::bias_relu_rows`] would after.
    ///
    /// One image's convolution by unfolding and GEMM spent most of its time outside the
    /// multiply-adds (each thread unfolding the whole image and the GEMM packing both
    /// sides); this is for one image (inference latency), where that cost is not shared by
    /// a batch.
    ///
    /// # Panics
    /// If `g` is not one [`plane_direct_applies`] takes, the rows are not a nonempty range
    /// in `0..HO` of at most [`PLANE_MAX_POSITIONS`] positions, or the lengths do not fit.
    pub(super) fn plane_forward_f32(
        g: &Geom,
        img: &[f32],
        w: &[f32],
        y: &mut [std::mem::MaybeUninit<f32>],
        (r0, r1): (usize, usize),
        (bias, relu): (Option<&[f32]>, bool),
    ) {
        assert!(
            plane_direct_applies::<f32>(g) && r0 < r1 && r1 <= g.ho,
            "conv2d: the plane kernel takes unit steps, WO = W, several input channels and AVX-512F"
        );
        let (ckk, taps) = (g.ckk(), g.kh * g.kw);
        let rows = w.len() / ckk;
        let n = (r1 - r0) * g.wo;
        assert!(
            w.len() == rows * ckk
                && y.len() == rows * n
                && img.len() >= g.c * g.h * g.w
                && bias.is_none_or(|b| b.len() >= rows),
            "conv2d: plane kernel lengths"
        );
        let runs = n.div_ceil(16);
        let mut on_stack: [__mmask16; PLANE_MASKS] = [0; PLANE_MASKS];
        let mut on_heap: Vec<__mmask16> = Vec::new();
        let masks: &mut [__mmask16] = match on_stack.get_mut(..taps * runs) {
            Some(m) => m,
            None => {
                on_heap.resize(taps * runs, 0);
                &mut on_heap
            }
        };
        // SAFETY: AVX-512F was detected (`plane_direct_applies`).
        unsafe { plane_masks(g, (r0, r1), masks) };
        let y = y.as_mut_ptr().cast::<f32>();
        let mut o0 = 0;
        while o0 < rows {
            let ob = (rows - o0).min(4);
            let mut v0 = 0;
            while v0 < runs {
                let vb = (runs - v0).min(4);
                let at = Block {
                    o0,
                    v0,
                    n,
                    runs,
                    bias,
                    relu,
                };
                // SAFETY: AVX-512F was detected and the lengths checked above (see
                // `plane_block`).
                unsafe {
                    match (ob, vb) {
                        (4, 4) => plane_block::<4, 4>(g, img, w, y, masks, at, r0),
                        (4, 3) => plane_block::<4, 3>(g, img, w, y, masks, at, r0),
                        (4, 2) => plane_block::<4, 2>(g, img, w, y, masks, at, r0),
                        (4, _) => plane_block::<4, 1>(g, img, w, y, masks, at, r0),
                        (3, 4) => plane_block::<3, 4>(g, img, w, y, masks, at, r0),
                        (3, 3) => plane_block::<3, 3>(g, img, w, y, masks, at, r0),
                        (3, 2) => plane_block::<3, 2>(g, img, w, y, masks, at, r0),
                        (3, _) => plane_block::<3, 1>(g, img, w, y, masks, at, r0),
                        (2, 4) => plane_block::<2, 4>(g, img, w, y, masks, at, r0),
                        (2, 3) => plane_block::<2, 3>(g, img, w, y, masks, at, r0),
                        (2, 2) => plane_block::<2, 2>(g, img, w, y, masks, at, r0),
                        (2, _) => plane_block::<2, 1>(g, img, w, y, masks, at, r0),
                        (_, 4) => plane_block::<1, 4>(g, img, w, y, masks, at, r0),
                        (_, 3) => plane_block::<1, 3>(g, img, w, y, masks, at, r0),
                        (_, 2) => plane_block::<1, 2>(g, img, w, y, masks, at, r0),
                        (_, _) => plane_block::<1, 1>(g, img, w, y, masks, at, r0),
                    }
                }
                v0 += vb;
            }
            o0 += ob;
        }
    }

    /// Where a [`plane_block`] works: output channels from `o0`, runs of sixteen positions
    /// from `v0`, of a band of `n` positions (`runs` runs); the bias (one per output
    /// channel, if any) and whether the ReLU follows.
    #[derive(Clone, Copy)]
    struct Block<'a> {
        o0: usize,
        v0: usize,
        n: usize,
        runs: usize,
        bias: Option<&'a [f32]>,
        relu: bool,
    }

    /// Per tap `t = i·KW + j` and run `v` of the band `r0..r1`'s positions, the lanes whose
    /// position lies in the band and whose input row `oy + i − PH` and column `ox + j − PW`
    /// lie inside the plane, at `masks[t·runs + v]`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `masks` holds `KH·KW·runs` entries, `runs = ⌈(r1 − r0)·W/16⌉`.
    #[target_feature(enable = "avx512f")]
    unsafe fn plane_masks(g: &Geom, (r0, r1): (usize, usize), masks: &mut [__mmask16]) {
        let (ph, pw) = g.p.padding;
        let (h, w) = (g.h, g.w);
        let n = (r1 - r0) * w;
        let runs = n.div_ceil(16);
        let wv = _mm512_set1_epi32(w as i32);
        let mut x = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let mut y = _mm512_set1_epi32(r0 as i32);
        for v in 0..runs {
            // bring every lane's column into 0..W, one row at a time
            loop {
                let over = _mm512_cmpge_epi32_mask(x, wv);
                if over == 0 {
                    break;
                }
                x = _mm512_mask_sub_epi32(x, over, x, wv);
                y = _mm512_mask_add_epi32(y, over, y, _mm512_set1_epi32(1));
            }
            let inside = lanes(0, (n - 16 * v).min(16));
            for i in 0..g.kh {
                let lo = _mm512_set1_epi32(ph as i32 - i as i32);
                let hi = _mm512_set1_epi32((h + ph) as i32 - i as i32);
                let row = _mm512_cmpge_epi32_mask(y, lo) & _mm512_cmplt_epi32_mask(y, hi);
                for j in 0..g.kw {
                    let lo = _mm512_set1_epi32(pw as i32 - j as i32);
                    let hi = _mm512_set1_epi32((w + pw) as i32 - j as i32);
                    let col = _mm512_cmpge_epi32_mask(x, lo) & _mm512_cmplt_epi32_mask(x, hi);
                    masks[(i * g.kw + j) * runs + v] = inside & row & col;
                }
            }
            x = _mm512_add_epi32(x, _mm512_set1_epi32(16));
        }
    }

    /// Output channels `o0..o0 + OB` and runs `v0..v0 + VB` of [`plane_forward_f32`].
    ///
    /// # Safety
    /// The CPU has AVX-512F; `g` passed [`plane_direct_applies`]; `img` holds `C·H·W`
    /// elements, `w` at least `(o0 + OB)·C·KH·KW`, `y` points at `(o0 + OB)·n` elements;
    /// `v0 + VB ≤ runs`; the bias, if any, holds at least `o0 + OB` elements; `masks` is
    /// [`plane_masks`]'s for the band from `r0`. Lane `l` of
    /// run `v` is band position `q = 16·v + l`, plane position `p = r0·W + q`; it is loaded
    /// only when its mask has it, so `q < n` and its input row and column lie in the plane,
    /// i.e. from `plane[p + (i − PH)·W + j − PW]`, in bounds; other lanes' addresses are
    /// formed by wrapping arithmetic and neither read nor faulted on. Stores write lanes
    /// `q < n` of rows `o < o0 + OB`, at `o·n + q`.
    #[target_feature(enable = "avx512f")]
    unsafe fn plane_block<const OB: usize, const VB: usize>(
        g: &Geom,
        img: &[f32],
        w: &[f32],
        y: *mut f32,
        masks: &[__mmask16],
        Block {
            o0,
            v0,
            n,
            runs,
            bias,
            relu,
        }: Block,
        r0: usize,
    ) {
        let (ph, pw) = g.p.padding;
        let (taps, ckk, hw) = (g.kh * g.kw, g.ckk(), g.h * g.w);
        let zero = _mm512_setzero_ps();
        let mut acc = [[zero; VB]; OB];
        let wp = w.as_ptr().add(o0 * ckk);
        for c in 0..g.c {
            let plane = img.as_ptr().add(c * hw);
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let t = i * g.kw + j;
                    let off = (i * g.w + j) as isize - (ph * g.w + pw) as isize;
                    let src = plane.wrapping_offset(off).wrapping_add(r0 * g.w + 16 * v0);
                    let mut xv = [zero; VB];
                    for (v, xv) in xv.iter_mut().enumerate() {
                        *xv = _mm512_maskz_loadu_ps(
                            *masks.get_unchecked(t * runs + v0 + v),
                            src.wrapping_add(16 * v),
                        );
                    }
                    for (o, acc) in acc.iter_mut().enumerate() {
                        let wv = _mm512_set1_ps(*wp.add(o * ckk + c * taps + t));
                        for (a, &x) in acc.iter_mut().zip(&xv) {
                            *a = _mm512_fmadd_ps(x, wv, *a);
                        }
                    }
                }
            }
        }
        for (o, acc) in acc.iter().enumerate() {
            let b = _mm512_set1_ps(bias.map_or(0.0, |b| *b.get_unchecked(o0 + o)));
            for (v, &a) in acc.iter().enumerate() {
                let q = 16 * (v0 + v);
                let store = lanes(0, (n - q).min(16));
                // `max(a + b, 0)` is 0 for NaN as `relu_of` is (the maximum takes its second
                // operand when either is NaN, and +0 when both are zeros)
                let a = if bias.is_some() {
                    _mm512_add_ps(a, b)
                } else {
                    a
                };
                let a = if relu { _mm512_max_ps(a, zero) } else { a };
                _mm512_mask_storeu_ps(y.add((o0 + o) * n + q), store, a);
            }
        }
    }

    /// Output channels one block of [`implicit_chunk_f32`] computes.
    pub(super) const IMPLICIT_ROWS: usize = 8;

    /// The shape [`implicit_chunk_f32`] works on: planes of `H×W` positions, input and output
    /// alike (unit steps, a "same" padding), a `KH×KW` kernel with padding `(PH, PW)`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) struct Implicit {
        pub h: usize,
        pub w: usize,
        pub kh: usize,
        pub kw: usize,
        pub ph: usize,
        pub pw: usize,
    }

    /// The lanes [`implicit_chunk_f32`] loads for the shape `k` and a chunk of `ld`
    /// positions: made only by [`implicit_masks`], which records both, so that the kernel
    /// can check it was given the masks of its own shape (its loads stay in bounds only
    /// with those).
    pub(super) struct ImplicitMasks {
        k: Implicit,
        ld: usize,
        bits: Vec<u16>,
    }

    impl ImplicitMasks {
        /// The chunk's positions these masks were made for.
        pub(super) fn positions(&self) -> usize {
            self.ld
        }
    }

    /// Per tap `t = i·KW + j` and run `v` of sixteen of a chunk's `ld` positions (image
    /// `q / (H·W)`, row and column from `q mod H·W`), the lanes whose position is below `ld`
    /// and whose input row `oy + i − PH` and column `ox + j − PW` lie inside the image, at
    /// `bits[t·runs + v]`.
    pub(super) fn implicit_masks(k: &Implicit, ld: usize) -> ImplicitMasks {
        let (runs, taps) = (ld.div_ceil(16), k.kh * k.kw);
        let mut masks = vec![0u16; taps * runs];
        // the taps' rows and columns that lie inside the image for an output row or column
        let inside =
            |o: usize, pad: usize, len: usize, tap: usize| (o + tap).wrapping_sub(pad) < len;
        let mut q = 0;
        while q < ld {
            for oy in 0..k.h {
                for ox in 0..k.w {
                    if q == ld {
                        break;
                    }
                    let (run, bit) = (q / 16, 1u16 << (q % 16));
                    for i in (0..k.kh).filter(|&i| inside(oy, k.ph, k.h, i)) {
                        for j in (0..k.kw).filter(|&j| inside(ox, k.pw, k.w, j)) {
                            masks[(i * k.kw + j) * runs + run] |= bit;
                        }
                    }
                    q += 1;
                }
            }
        }
        ImplicitMasks {
            k: *k,
            ld,
            bits: masks,
        }
    }

    /// `rows` output channels of a chunk of `nb` images, computed straight from the chunk's
    /// input laid out channel by channel (`src[c·ld + q]`, `ld = nb·H·W`, the images side by
    /// side) with no unfolding: `y[img][o][p] = Σ_c Σ_(i,j) w[o][c][i][j] · x[img][c][p +
    /// (i − PH)·W + j − PW]`, the input zero where its row or column falls outside the
    /// image. `packed` holds the weights in blocks of [`IMPLICIT_ROWS`] rows (see
    /// `implicit_weights`), `masks` is [`implicit_masks`]'s for `k` and `ld`. The output is written to
    /// `y` image by image (`y[(img·rows + o)·H·W + p]`, every element), with `bias[o]` added
    /// and the ReLU applied if asked, as it is stored.
    ///
    /// A block of eight channels and two runs of sixteen positions accumulates in sixteen
    /// registers over every input channel and tap: per step two masked loads of the input
    /// and eight broadcast weights for sixteen multiply-adds, as a GEMM's micro-kernel, but
    /// reading the input where it lies instead of an unfolded copy. On the `cnn` preset's
    /// chunks (one thread) it ran at 225–240 GFLOP/s where the GEMM crate ran the unfolded
    /// product at 180–220, and the unfolding itself (7–18 µs a chunk) is gone. Three runs
    /// (24 accumulators) had the compiler store every accumulator to the stack after each
    /// multiply-add: 75–84 GFLOP/s.
    ///
    /// # Panics
    /// If the lengths do not fit, a plane has fewer than 16 positions or the CPU lacks
    /// AVX-512F.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn implicit_chunk_f32(
        k: &Implicit,
        src: &[f32],
        (cin, nb): (usize, usize),
        packed: &[f32],
        rows: usize,
        masks: &ImplicitMasks,
        y: &mut [std::mem::MaybeUninit<f32>],
        (bias, relu): (Option<&[f32]>, bool),
    ) {
        let (pp, taps) = (k.h * k.w, k.kh * k.kw);
        let ld = nb * pp;
        let runs = ld.div_ceil(16);
        let blocks = rows.div_ceil(IMPLICIT_ROWS);
        let bits = &masks.bits;
        assert!(
            std::arch::is_x86_feature_detected!("avx512f")
                && pp >= 16
                && src.len() >= cin * ld
                && packed.len() == blocks * IMPLICIT_ROWS * cin * taps
                && masks.k == *k
                && masks.ld == ld
                && masks.bits.len() == taps * runs
                && y.len() == nb * rows * pp
                && bias.is_none_or(|b| b.len() >= rows),
            "conv2d: implicit kernel lengths"
        );
        let offs: Vec<isize> = (0..taps)
            .map(|t| {
                let (i, j) = (t / k.kw, t % k.kw);
                (i * k.w + j) as isize - (k.ph * k.w + k.pw) as isize
            })
            .collect();
        let out = Out {
            y: y.as_mut_ptr().cast::<f32>(),
            rows,
            pp,
            ld,
            bias,
            relu,
        };
        for b in 0..blocks {
            let wp = &packed[b * IMPLICIT_ROWS * cin * taps..][..IMPLICIT_ROWS * cin * taps];
            let mut v0 = 0;
            while v0 < runs {
                let vb = (runs - v0).min(2);
                let at = (b * IMPLICIT_ROWS, v0);
                // SAFETY: AVX-512F was detected and the lengths checked above (see
                // `implicit_block`).
                unsafe {
                    match vb {
                        2 => implicit_block::<2>(src, (cin, runs), &offs, bits, wp, &out, at),
                        _ => implicit_block::<1>(src, (cin, runs), &offs, bits, wp, &out, at),
                    }
                }
                v0 += vb;
            }
        }
    }

    /// Where [`implicit_block`] stores: the output of `rows` channels of `pp` positions per
    /// image, the chunk's `ld` positions, the bias and the ReLU.
    struct Out<'a> {
        y: *mut f32,
        rows: usize,
        pp: usize,
        ld: usize,
        bias: Option<&'a [f32]>,
        relu: bool,
    }

    /// Rows `o0..o0 + 8` (those below `rows`) and runs `v0..v0 + VB` of
    /// [`implicit_chunk_f32`]. The rows' loop at the end runs all eight (skipping those past
    /// `rows`) so that it unrolls and the accumulators stay in registers.
    ///
    /// # Safety
    /// The CPU has AVX-512F and [`implicit_chunk_f32`]'s checks hold; `v0 + VB ≤ runs`.
    /// Lane `l` of run `v` is chunk position `q = 16·v + l`; for tap `t` it is loaded only
    /// when its mask has it, so `q < ld` and its input row and column lie inside its image,
    /// i.e. from `src[c·ld + q + offs[t]]`, in the same image's plane, in bounds; other
    /// lanes' addresses are formed by wrapping arithmetic and neither read nor faulted on.
    /// Stores write lanes `q < ld` of rows `o < rows`: position `q` is image `q / pp`'s
    /// position `q mod pp`, at `(img·rows + o)·pp + q mod pp < nb·rows·pp`; a run that
    /// crosses into the next image stores its two parts separately.
    #[target_feature(enable = "avx512f")]
    unsafe fn implicit_block<const VB: usize>(
        src: &[f32],
        (cin, runs): (usize, usize),
        offs: &[isize],
        masks: &[u16],
        wp: &[f32],
        out: &Out,
        (o0, v0): (usize, usize),
    ) {
        let zero = _mm512_setzero_ps();
        let mut acc = [[zero; VB]; IMPLICIT_ROWS];
        let mut wq = wp.as_ptr();
        for c in 0..cin {
            let base = src.as_ptr().wrapping_add(c * out.ld + 16 * v0);
            for (t, &off) in offs.iter().enumerate() {
                let s = base.wrapping_offset(off);
                let mut xv = [zero; VB];
                for (v, xv) in xv.iter_mut().enumerate() {
                    *xv = _mm512_maskz_loadu_ps(
                        *masks.get_unchecked(t * runs + v0 + v),
                        s.wrapping_add(16 * v),
                    );
                }
                for acc in acc.iter_mut() {
                    let wv = _mm512_set1_ps(*wq);
                    wq = wq.add(1);
                    for (a, &x) in acc.iter_mut().zip(&xv) {
                        *a = _mm512_fmadd_ps(x, wv, *a);
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let o = o0 + r;
            if o >= out.rows {
                continue;
            }
            let b = _mm512_set1_ps(out.bias.map_or(0.0, |b| *b.get_unchecked(o)));
            for (v, &a) in acc.iter().enumerate() {
                let q = 16 * (v0 + v);
                let valid = (out.ld - q).min(16);
                let (img, pos) = (q / out.pp, q % out.pp);
                let first = (out.pp - pos).min(valid);
                let a = if out.bias.is_some() {
                    _mm512_add_ps(a, b)
                } else {
                    a
                };
                // `max(a, 0)` is 0 for NaN as `relu_of` is (the maximum takes its second
                // operand when either is NaN)
                let a = if out.relu { _mm512_max_ps(a, zero) } else { a };
                let at = out.y.add((img * out.rows + o) * out.pp + pos);
                _mm512_mask_storeu_ps(at, lanes(0, first), a);
                if valid > first {
                    let next = out
                        .y
                        .add(((img + 1) * out.rows + o) * out.pp)
                        .wrapping_sub(first);
                    _mm512_mask_storeu_ps(next, lanes(first, valid), a);
                }
            }
        }
    }

    /// The longest output row the direct kernels take: two vectors.
    pub(super) const DIRECT_MAX_WO: usize = 32;

    /// Output channels of at most this many at a time in the direct forward kernel (two
    /// accumulators each, plus the two input vectors).
    const DIRECT_CHANNELS: usize = 8;

    /// Taps of at most this many at a time in the direct weight gradient: a 3×3 kernel's
    /// nine in one pass over the images (two channels' 18 accumulators, their four output
    /// gradient vectors and the two input vectors fit the 32 registers). With 8, a 3×3
    /// kernel took two passes, and the `cnn` preset's first layer's weight gradient took
    /// 247–258 µs instead of 221–228 µs (one thread, batch 64).
    const DIRECT_TAPS: usize = 9;

    /// The masks [`plane_weight_grad_f32`] reads for `g`, whose plane kernel conditions
    /// ([`plane_grad_applies`]) hold: per tap `t` and run `v` of sixteen of the `HO·WO`
    /// positions, at `t·runs + v`.
    pub(super) fn plane_grad_masks(g: &Geom) -> Vec<u16> {
        assert!(
            plane_grad_applies::<f32>(g),
            "conv2d: plane gradient geometry"
        );
        let runs = g.positions().div_ceil(16);
        let mut masks = vec![0; g.kh * g.kw * runs];
        // SAFETY: AVX-512F was checked; `masks` holds `KH·KW·runs` entries for the band of
        // all `HO` output rows.
        unsafe { plane_masks(g, (0, g.ho), &mut masks) };
        masks
    }

    /// Whether [`plane_weight_grad_f32`] takes `g`: one input channel, one group, unit
    /// steps, as wide out as in (`WO = W`, so each tap reads the plane at a fixed offset from
    /// the output position), `f32` on AVX-512F.
    pub(super) fn plane_grad_applies<E: Element>(g: &Geom) -> bool {
        g.c == 1 && g.p.groups == 1 && g.unit_steps() && g.wo == g.w && g.w > 0 && usable::<E>()
    }

    /// Adds to `acc[t]` (one sum per tap `t = i·KW + j`) `Σ_p dy[p] · img[p + (i − PH)·W + j
    /// − PW]` over the `HO·WO` output positions `p` whose input lies inside the plane: the
    /// weight gradient of one output channel of one image, for [`super::ChannelWeightGrad`].
    /// The positions go sixteen at a time as one run over the plane (a row of 28 would fill
    /// two vectors' 32 lanes), each run's `dy` loaded once and multiplied into every tap's
    /// accumulator with that tap's masked load of the image; the lanes are added at the end.
    ///
    /// # Panics
    /// If `g` is not what [`plane_grad_applies`] takes, or the lengths do not fit it and
    /// [`plane_grad_masks`]'s masks.
    pub(super) fn plane_weight_grad_f32(
        g: &Geom,
        masks: &[u16],
        img: &[f32],
        dy: &[f32],
        acc: &mut [f32],
    ) {
        let (taps, n) = (g.kh * g.kw, g.positions());
        let runs = n.div_ceil(16);
        assert!(
            plane_grad_applies::<f32>(g)
                && masks.len() == taps * runs
                && img.len() >= g.h * g.w
                && dy.len() == n
                && acc.len() == taps,
            "conv2d: plane gradient lengths"
        );
        let all = [(0, runs)];
        if g.kh == 3 && g.kw == 3 {
            // runs all of whose positions read three rows inside the plane: positions
            // `PH·W ≤ p < (H − 3 + PH + 1)·W`, whole runs of sixteen
            let lo = (g.p.padding.0 * g.w).div_ceil(16);
            let hi = ((g.h + g.p.padding.0).saturating_sub(2) * g.w / 16).min(n / 16);
            if lo < hi {
                // SAFETY: AVX-512F was detected and the lengths checked above; the runs
                // `lo..hi` are whole and their rows inside (see `plane_grad_3x3`).
                let inner = unsafe { plane_grad_3x3(g, masks, img, dy, (lo, hi)) };
                let rest = [(0, lo), (hi, runs)];
                // SAFETY: as below, with the other runs.
                unsafe { plane_grad_block::<9>(g, masks, img, dy, acc, 0, (inner, &rest)) };
                return;
            }
        }
        let mut t0 = 0;
        while t0 < taps {
            let tb = (taps - t0).min(DIRECT_TAPS);
            let acc = &mut acc[t0..t0 + tb];
            // SAFETY: AVX-512F was detected and the lengths checked above (see
            // `plane_grad_block`).
            unsafe {
                let z = _mm512_setzero_ps();
                match tb {
                    9 => plane_grad_block::<9>(g, masks, img, dy, acc, t0, ([z; 9], &all)),
                    8 => plane_grad_block::<8>(g, masks, img, dy, acc, t0, ([z; 8], &all)),
                    7 => plane_grad_block::<7>(g, masks, img, dy, acc, t0, ([z; 7], &all)),
                    6 => plane_grad_block::<6>(g, masks, img, dy, acc, t0, ([z; 6], &all)),
                    5 => plane_grad_block::<5>(g, masks, img, dy, acc, t0, ([z; 5], &all)),
                    4 => plane_grad_block::<4>(g, masks, img, dy, acc, t0, ([z; 4], &all)),
                    3 => plane_grad_block::<3>(g, masks, img, dy, acc, t0, ([z; 3], &all)),
                    2 => plane_grad_block::<2>(g, masks, img, dy, acc, t0, ([z; 2], &all)),
                    _ => plane_grad_block::<1>(g, masks, img, dy, acc, t0, ([z; 1], &all)),
                }
            }
            t0 += tb;
        }
    }

    /// The per-tap sums of [`plane_weight_grad_f32`] over the runs `v0..v1` for a 3×3 kernel,
    /// where every position's three input rows lie inside the plane: a tap's lanes then
    /// depend on its column alone (the masks of the middle row's taps, three per run rather
    /// than nine), and the three input rows are read through three pointers, each tap at a
    /// fixed displacement, where the general block kept nine pointers and nine masks per run
    /// and ran out of registers (it took about four times the multiply-adds' time).
    ///
    /// # Safety
    /// As [`plane_grad_block`], with `KH = KW = 3`, `v1 ≤ HO·WO/16` (whole runs) and every
    /// position `p` of the runs in `PH·W ≤ p < (H − 2 + PH)·W`, so that its input rows
    /// `p/W + i − PH` (`i < 3`) lie in `0..H`: the middle row's masks then hold exactly the
    /// lanes whose column is inside, for every row of taps.
    #[target_feature(enable = "avx512f")]
    unsafe fn plane_grad_3x3(
        g: &Geom,
        masks: &[u16],
        img: &[f32],
        dy: &[f32],
        (v0, v1): (usize, usize),
    ) -> [__m512; 9] {
        let (ph, pw) = g.p.padding;
        let (w, runs) = (g.w, g.positions().div_ceil(16));
        let mut sum = [_mm512_setzero_ps(); 9];
        // the masks of taps (1, 0), (1, 1) and (1, 2)
        let mid = masks.as_ptr().add(3 * runs);
        for v in v0..v1 {
            let d = _mm512_loadu_ps(dy.as_ptr().add(16 * v));
            let m = [*mid.add(v), *mid.add(runs + v), *mid.add(2 * runs + v)];
            for i in 0..3 {
                // position p of row of taps i reads input p + (i − PH)·W + j − PW
                let row = img
                    .as_ptr()
                    .wrapping_add(16 * v + i * w)
                    .wrapping_sub(ph * w + pw);
                for (j, &m) in m.iter().enumerate() {
                    let x = _mm512_maskz_loadu_ps(m, row.wrapping_add(j));
                    sum[i * 3 + j] = _mm512_fmadd_ps(d, x, sum[i * 3 + j]);
                }
            }
        }
        sum
    }

    /// Taps `t0..t0 + TB` (`TB = acc.len()`, at most [`DIRECT_TAPS`]) of
    /// [`plane_weight_grad_f32`] over the runs of `ranges` (within `0..⌈HO·WO/16⌉`), their
    /// sums starting from `sum`: a constant count, so that the accumulators stay in
    /// registers (with a count known only at run time they went through memory).
    ///
    /// # Safety
    /// The CPU has AVX-512F; `g` passed [`plane_grad_applies`]; `masks` is
    /// [`plane_grad_masks`]'s for `g`; `img` holds `H·W` elements and `dy` `HO·WO`. Lane `l`
    /// of run `v` is position `p = 16·v + l`: `dy` is read at lanes `p < HO·WO`, and the
    /// image only at the lanes of the tap's mask, whose input row and column lie in the
    /// plane, i.e. at `plane[p + (i − PH)·W + j − PW]`, in bounds; the other lanes' addresses
    /// are formed by wrapping arithmetic and neither read nor faulted on.
    #[target_feature(enable = "avx512f")]
    unsafe fn plane_grad_block<const TB: usize>(
        g: &Geom,
        masks: &[u16],
        img: &[f32],
        dy: &[f32],
        acc: &mut [f32],
        t0: usize,
        (mut sum, ranges): ([__m512; TB], &[(usize, usize)]),
    ) {
        let (ph, pw) = g.p.padding;
        let n = g.positions();
        let runs = n.div_ceil(16);
        let mut src = [img.as_ptr(); TB];
        for (k, s) in src.iter_mut().enumerate() {
            let (i, j) = ((t0 + k) / g.kw, (t0 + k) % g.kw);
            let off = (i * g.w + j) as isize - (ph * g.w + pw) as isize;
            *s = img.as_ptr().wrapping_offset(off);
        }
        for v in ranges.iter().flat_map(|&(a, b)| a..b) {
            let d = _mm512_maskz_loadu_ps(lanes(0, (n - 16 * v).min(16)), dy.as_ptr().add(16 * v));
            for (k, (s, p)) in sum.iter_mut().zip(&src).enumerate() {
                let m = *masks.get_unchecked((t0 + k) * runs + v);
                let x = _mm512_maskz_loadu_ps(m, p.wrapping_add(16 * v));
                *s = _mm512_fmadd_ps(d, x, *s);
            }
        }
        for (a, s) in acc.iter_mut().zip(&sum) {
            *a += _mm512_reduce_add_ps(*s);
        }
    }

    /// Panics unless `g` is what the direct kernels take (see [`super::direct_applies`]).
    fn check_direct(g: &Geom) {
        assert!(
            super::direct_applies::<f32>(g),
            "conv2d: the direct kernel takes one input channel, unit steps, output rows of 1 to {DIRECT_MAX_WO} and AVX-512F"
        );
    }

    /// The convolution of one single-channel image computed directly, with no unfolding:
    /// row `o` of `y` (`HO·WO` elements) is `Σ_(i,j) w[o][i][j] · x[oy + i − ph][ox + j − pw]`
    /// (zero outside the image), for as many output channels as `w` holds rows of `KH·KW`.
    /// Every element of `y` is written; no bias.
    ///
    /// # Panics
    /// If `g` is not one input channel with unit steps and output rows of at most 32, or
    /// the lengths do not fit it.
    pub(super) fn direct_forward_f32(
        g: &Geom,
        img: &[f32],
        w: &[f32],
        y: &mut [std::mem::MaybeUninit<f32>],
    ) {
        check_direct(g);
        let taps = g.kh * g.kw;
        let rows = w.len() / taps;
        assert!(
            w.len() == rows * taps && y.len() == rows * g.positions() && img.len() >= g.h * g.w,
            "conv2d: direct kernel lengths"
        );
        let y = y.as_mut_ptr().cast::<f32>();
        let mut o0 = 0;
        while o0 < rows {
            let cb = (rows - o0).min(DIRECT_CHANNELS);
            // SAFETY: AVX-512F was detected and the lengths checked above (see `forward_block`).
            unsafe {
                match cb {
                    8 => forward_block::<8>(g, img, w, y, o0),
                    7 => forward_block::<7>(g, img, w, y, o0),
                    6 => forward_block::<6>(g, img, w, y, o0),
                    5 => forward_block::<5>(g, img, w, y, o0),
                    4 => forward_block::<4>(g, img, w, y, o0),
                    3 => forward_block::<3>(g, img, w, y, o0),
                    2 => forward_block::<2>(g, img, w, y, o0),
                    _ => forward_block::<1>(g, img, w, y, o0),
                }
            }
            o0 += cb;
        }
    }

    /// Lanes of the two vectors of an output row (output columns `0..16` and `16..32`)
    /// whose input column `ox + j − pw` lies in `0..W`, for tap column `j`.
    #[inline(always)]
    fn tap_lanes(g: &Geom, j: usize) -> (__mmask16, __mmask16) {
        let pw = g.p.padding.1;
        let x_lo = pw.saturating_sub(j);
        let x_hi = (g.w + pw).saturating_sub(j).min(g.wo);
        (
            lanes(x_lo.min(16), x_hi.min(16)),
            lanes(x_lo.saturating_sub(16), x_hi.saturating_sub(16)),
        )
    }

    /// Output channels `o0..o0 + CB` of [`direct_forward_f32`], row by row: each tap's
    /// shifted input row is loaded once (masked: lanes outside the image load as zeros) and
    /// multiplied into every channel's accumulators.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `g` passed [`check_direct`]; `img` holds `H·W` elements, `w`
    /// at least `(o0 + CB)·KH·KW` and `y` at least `(o0 + CB)·HO·WO`. Loads read only lanes
    /// whose input row is in `0..H` (checked) and column in `0..W` ([`tap_lanes`]); stores
    /// write the lanes `0..WO` of output row `oy < HO` of channel `o < o0 + CB`.
    #[target_feature(enable = "avx512f")]
    unsafe fn forward_block<const CB: usize>(
        g: &Geom,
        img: &[f32],
        w: &[f32],
        y: *mut f32,
        o0: usize,
    ) {
        let (ph, pw) = g.p.padding;
        let taps = g.kh * g.kw;
        let pp = g.positions();
        let two = g.wo > 16;
        let (s0, s1) = (lanes(0, g.wo.min(16)), lanes(0, g.wo.saturating_sub(16)));
        let zero = _mm512_setzero_ps();
        let wp = w.as_ptr().add(o0 * taps);
        for oy in 0..g.ho {
            let mut acc = [[zero; 2]; CB];
            for i in 0..g.kh {
                let yy = (oy + i).wrapping_sub(ph);
                if yy >= g.h {
                    continue;
                }
                for j in 0..g.kw {
                    let (m0, m1) = tap_lanes(g, j);
                    let src = img.as_ptr().wrapping_add(yy * g.w + j).wrapping_sub(pw);
                    let a = _mm512_maskz_loadu_ps(m0, src);
                    let b = if two {
                        _mm512_maskz_loadu_ps(m1, src.wrapping_add(16))
                    } else {
                        zero
                    };
                    let t = i * g.kw + j;
                    for (c, acc) in acc.iter_mut().enumerate() {
                        let wv = _mm512_set1_ps(*wp.add(c * taps + t));
                        acc[0] = _mm512_fmadd_ps(a, wv, acc[0]);
                        if two {
                            acc[1] = _mm512_fmadd_ps(b, wv, acc[1]);
                        }
                    }
                }
            }
            for (c, acc) in acc.iter().enumerate() {
                let dst = y.add((o0 + c) * pp + oy * g.wo);
                _mm512_mask_storeu_ps(dst, s0, acc[0]);
                if two {
                    _mm512_mask_storeu_ps(dst.add(16), s1, acc[1]);
                }
            }
        }
    }

    /// The weight gradient of [`direct_forward_f32`] summed over `nb` images, without
    /// unfolding them: `dw_t[t·O + o] = Σ_images Σ_(oy,ox) dy[o][oy][ox] · x[oy + i − ph][ox +
    /// j − pw]` for tap `t = i·KW + j` (transposed, as the GEMM path's sums are), where `imgs`
    /// holds the `nb` images and `dys` their `O·HO·WO` output gradients. Every element of
    /// `dw_t` is written.
    ///
    /// # Panics
    /// As [`direct_forward_f32`].
    pub(super) fn direct_weight_grad_f32(
        g: &Geom,
        imgs: &[f32],
        dys: &[f32],
        nb: usize,
        dw_t: &mut [std::mem::MaybeUninit<f32>],
    ) {
        check_direct(g);
        let (taps, pp) = (g.kh * g.kw, g.positions());
        assert!(
            imgs.len() >= nb * g.h * g.w && dys.len() >= nb * g.o * pp && dw_t.len() == taps * g.o,
            "conv2d: direct kernel lengths"
        );
        let dw = dw_t.as_mut_ptr().cast::<f32>();
        // taps in even blocks of at most DIRECT_TAPS (9 → 9, 25 → 8, 8, 9)
        let blocks = taps.div_ceil(DIRECT_TAPS);
        let mut o0 = 0;
        while o0 < g.o {
            let cb = (g.o - o0).min(2);
            let mut t0 = 0;
            for b in 0..blocks {
                let tb = (taps - t0) / (blocks - b);
                // SAFETY: AVX-512F was detected and the lengths checked above (see
                // `weight_grad_block`).
                unsafe {
                    if cb == 2 {
                        weight_grad_block::<2>(g, imgs, dys, nb, dw, o0, t0, tb);
                    } else {
                        weight_grad_block::<1>(g, imgs, dys, nb, dw, o0, t0, tb);
                    }
                }
                t0 += tb;
            }
            o0 += cb;
        }
    }

    /// Channels `o0..o0 + CB` and taps `t0..t0 + tb` (`tb ≤ DIRECT_TAPS`) of
    /// [`direct_weight_grad_f32`]: each output-gradient row is loaded once per block, each
    /// tap's shifted input row once per row and channel pair, the products summed in one
    /// vector per channel and tap over every row of every image, then across its lanes.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `g` passed [`check_direct`]; `imgs` holds `nb` images of `H·W`
    /// elements, `dys` `nb` gradients of `O·HO·WO`; `o0 + CB ≤ O`; `t0 + tb ≤ KH·KW`; `dw`
    /// points at `KH·KW·O` elements. Loads are bounded as in [`forward_block`] (output
    /// gradient rows: lanes `0..WO` of row `oy < HO`).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn weight_grad_block<const CB: usize>(
        g: &Geom,
        imgs: &[f32],
        dys: &[f32],
        nb: usize,
        dw: *mut f32,
        o0: usize,
        t0: usize,
        tb: usize,
    ) {
        let (ph, pw) = g.p.padding;
        let pp = g.positions();
        let two = g.wo > 16;
        let (s0, s1) = (lanes(0, g.wo.min(16)), lanes(0, g.wo.saturating_sub(16)));
        let zero = _mm512_setzero_ps();
        // each tap's row, column offset and lanes
        let mut tap = [(0usize, 0usize, 0 as __mmask16, 0 as __mmask16); DIRECT_TAPS];
        for (k, t) in tap.iter_mut().enumerate().take(tb) {
            let (i, j) = ((t0 + k) / g.kw, (t0 + k) % g.kw);
            let (m0, m1) = tap_lanes(g, j);
            *t = (i, j, m0, m1);
        }
        let mut acc = [[zero; DIRECT_TAPS]; CB];
        for n in 0..nb {
            let plane = imgs.as_ptr().add(n * g.h * g.w);
            let dyp = dys.as_ptr().add((n * g.o + o0) * pp);
            for oy in 0..g.ho {
                let mut d = [[zero; 2]; CB];
                for (c, d) in d.iter_mut().enumerate() {
                    let row = dyp.add(c * pp + oy * g.wo);
                    d[0] = _mm512_maskz_loadu_ps(s0, row);
                    if two {
                        d[1] = _mm512_maskz_loadu_ps(s1, row.add(16));
                    }
                }
                for k in 0..DIRECT_TAPS {
                    if k >= tb {
                        break;
                    }
                    let (i, j, m0, m1) = tap[k];
                    let yy = (oy + i).wrapping_sub(ph);
                    if yy >= g.h {
                        continue;
                    }
                    let src = plane.wrapping_add(yy * g.w + j).wrapping_sub(pw);
                    let a = _mm512_maskz_loadu_ps(m0, src);
                    for (c, acc) in acc.iter_mut().enumerate() {
                        acc[k] = _mm512_fmadd_ps(d[c][0], a, acc[k]);
                    }
                    if two {
                        let b = _mm512_maskz_loadu_ps(m1, src.wrapping_add(16));
                        for (c, acc) in acc.iter_mut().enumerate() {
                            acc[k] = _mm512_fmadd_ps(d[c][1], b, acc[k]);
                        }
                    }
                }
            }
        }
        for (c, acc) in acc.iter().enumerate() {
            for (k, a) in acc.iter().enumerate().take(tb) {
                *dw.add((t0 + k) * g.o + o0 + c) = _mm512_reduce_add_ps(*a);
            }
        }
    }

    /// Unfolds the output rows `r0..r1` (all of them: `0..HO`) of `nb` images lying
    /// `img_len` elements apart (`nb = 1`: one image), image `k`'s columns `k·HO·WO`
    /// elements into each column row. Each column row is written for all the images
    /// before the next: image by image, the `cnn` preset's 7×7 layer wrote 288 rows of what
    /// was then a 16-image chunk 196 bytes at a time, and the lines an image left half written had
    /// left the L1 cache when the next image came to finish them (the unfolding took four
    /// times as long per byte as the 14×14 layer's, on a Xeon).
    ///
    /// # Safety
    /// The CPU has AVX-512F; `g` has unit steps; `r0 ≤ r1 ≤ HO`; `img` holds
    /// `(nb − 1)·img_len + C·H·W` elements and `col` `C·KH·KW` rows of
    /// `(nb − 1)·HO·WO + (r1 − r0)·WO` elements starting `ld` apart; with `nb > 1`, `r0 = 0`
    /// and `r1 = HO`.
    #[target_feature(enable = "avx512f")]
    unsafe fn kernel(
        g: &Geom,
        img: &[f32],
        col: &mut [f32],
        ld: usize,
        (r0, r1): (usize, usize),
        (nb, img_len): (usize, usize),
    ) {
        if g.wo == g.w && g.w > 0 && g.w <= 8 {
            // SAFETY: this function's own conditions, which `same_width` shares.
            return unsafe { same_width(g, img, col, ld, (r0, r1), (nb, img_len)) };
        }
        let (ph, pw) = g.p.padding;
        let (h, w, wo) = (g.h, g.w, g.wo);
        let pp = g.positions();
        let zero = _mm512_setzero_ps();
        for c in 0..g.c {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let r = (c * g.kh + i) * g.kw + j;
                    for k in 0..nb {
                        // SAFETY (for every pointer below): `plane` is channel c's `H·W` elements
                        // of image `k` inside `img`. A load reads only its lanes in `valid`,
                        // whose input column `x` is in `0..W` on a row `y` in `0..H`, so each
                        // element read is `plane[y·W + x]`, in bounds; lanes outside `valid` are
                        // neither read nor faulted on. A store writes the lanes `x0..x0 + cnt`
                        // (`cnt ≤ WO − x0`) of output row `r0 ≤ oy < r1` of column row `r`, at
                        // `r·ld + k·HO·WO + (oy − r0)·WO + x0 + l < r·ld + k·HO·WO + (r1 − r0)·WO
                        // ≤ col.len()`.
                        let plane = img.as_ptr().add(k * img_len + c * h * w);
                        let row = col.as_mut_ptr().add(r * ld + k * pp);
                        // output columns whose input column ox + j − pw lies in 0..W, and
                        // output rows whose input row oy + i − ph lies in 0..H
                        let x_lo = pw.saturating_sub(j);
                        let x_hi = (w + pw).saturating_sub(j).min(wo);
                        let oy_lo = ph.saturating_sub(i).min(g.ho);
                        let oy_hi = (h + ph).saturating_sub(i).min(g.ho).max(oy_lo);
                        let mut x0 = 0;
                        while x0 < wo {
                            let cnt = (wo - x0).min(16);
                            let store = lanes(0, cnt);
                            let valid =
                                lanes(x_lo.saturating_sub(x0), x_hi.saturating_sub(x0).min(cnt));
                            let dst = row.add(x0).wrapping_sub(r0 * wo);
                            for oy in (r0..r1.min(oy_lo)).chain(r0.max(oy_hi)..r1) {
                                _mm512_mask_storeu_ps(dst.wrapping_add(oy * wo), store, zero);
                            }
                            // lane l of row oy reads input (oy + i − ph, x0 + l + j − pw)
                            let src = plane.wrapping_add(x0 + j).wrapping_sub(pw);
                            for oy in r0.max(oy_lo)..r1.min(oy_hi) {
                                let v = _mm512_maskz_loadu_ps(
                                    valid,
                                    src.wrapping_add((oy + i - ph) * w),
                                );
                                _mm512_mask_storeu_ps(dst.wrapping_add(oy * wo), store, v);
                            }
                            x0 += 16;
                        }
                    }
                }
            }
        }
    }

    /// [`kernel`] when the output is as wide as the input (`WO = W`: a "same" padding, as
    /// the `cnn` preset's 3×3 layers with padding 1 have) and at most half a vector wide.
    /// Output position `p = oy·WO + ox` of tap `(i, j)` then reads input element
    /// `p + (i − PH)·W + (j − PW)` of the plane, a fixed offset, so each column row is one
    /// run over all the positions, sixteen at a time: a masked load (the lanes whose input
    /// row or column falls in the padding load as zeros) and a store of all sixteen lanes,
    /// where the row-by-row walk makes one masked store of `WO` lanes per output row. One
    /// thread, batch 64: the `cnn` preset's 7×7 layer unfolds in 60–90 µs less per pass
    /// (forward 795–849 → 736–770 µs with its GEMM); on its 14×14 layer, whose rows fill 14
    /// of 16 lanes already, this way took 25–45 µs longer, so wider rows keep the walk.
    ///
    /// # Safety
    /// As [`kernel`], and `WO = W > 0`.
    #[target_feature(enable = "avx512f")]
    unsafe fn same_width(
        g: &Geom,
        img: &[f32],
        col: &mut [f32],
        ld: usize,
        (r0, r1): (usize, usize),
        (nb, img_len): (usize, usize),
    ) {
        let (ph, pw) = g.p.padding;
        let (h, w) = (g.h, g.w);
        let (p0, p1) = (r0 * w, r1 * w);
        let runs = (p1 - p0).div_ceil(16);
        let taps = g.kh * g.kw;
        // per tap and run of sixteen positions, the lanes it loads ([`plane_masks`]); on the
        // stack for the usual sizes (this runs once per chunk of images or band of rows):
        // the `cnn` preset's 7×7 layer needs 9·4
        let mut on_stack: [__mmask16; 256] = [0; 256];
        let mut on_heap: Vec<__mmask16> = Vec::new();
        let masks: &mut [__mmask16] = match on_stack.get_mut(..taps * runs) {
            Some(m) => m,
            None => {
                on_heap.resize(taps * runs, 0);
                &mut on_heap
            }
        };
        // SAFETY: AVX-512F, as this function requires; `masks` holds `KH·KW·runs` entries.
        unsafe { plane_masks(g, (r0, r1), masks) };
        // the lanes of each run inside the positions, which its store writes
        let inside = |v: usize| lanes(0, (p1 - p0 - 16 * v).min(16));
        let pp = g.positions();
        for c in 0..g.c {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let r = (c * g.kh + i) * g.kw + j;
                    let off = (i * w + j) as isize - (ph * w + pw) as isize;
                    for k in 0..nb {
                        // SAFETY (for every pointer below): `plane` is channel c's `H·W`
                        // elements of image `k` inside `img`. Lane `l` of run `v` is position
                        // `p = p0 + 16·v + l`; it is loaded only when its input row
                        // `p/W + i − PH` is in `0..H` and its input column `p%W + j − PW` in
                        // `0..W`, i.e. from `plane[(p/W + i − PH)·W + p%W + j − PW]` =
                        // `plane[p + (i − PH)·W + (j − PW)]`, in bounds; other lanes are
                        // neither read nor faulted on (their addresses are formed by wrapping
                        // arithmetic). A store writes the lanes of `p < p1` at
                        // `r·ld + k·HO·WO + p − p0 < r·ld + k·HO·WO + (r1 − r0)·WO ≤
                        // col.len()` of column row `r`.
                        let plane = img.as_ptr().add(k * img_len + c * h * w);
                        let row = col.as_mut_ptr().add(r * ld + k * pp);
                        let src = plane.wrapping_offset(off).wrapping_add(p0);
                        let valid = &masks[(i * g.kw + j) * runs..][..runs];
                        for (v, &valid) in valid.iter().enumerate() {
                            let x = _mm512_maskz_loadu_ps(valid, src.wrapping_add(16 * v));
                            _mm512_mask_storeu_ps(row.add(16 * v), inside(v), x);
                        }
                    }
                }
            }
        }
    }
}

/// [`im2col`] for any stride and dilation.
fn im2col_general<E: Element>(g: &Geom, img: &[E], col: &mut [E], ld: usize) {
    let pp = g.positions();
    let (sw, pw, dw) = (g.p.stride.1, g.p.padding.1, g.p.dilation.1);
    for c in 0..g.c {
        let plane = &img[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * ld..][..pp];
                for oy in 0..g.ho {
                    let out = &mut row[oy * g.wo..(oy + 1) * g.wo];
                    let Some((y, lo, hi)) = g.row_span(oy, i, j) else {
                        out.fill(E::ZERO);
                        continue;
                    };
                    out[..lo].fill(E::ZERO);
                    out[hi..].fill(E::ZERO);
                    let src = &plane[y * g.w..(y + 1) * g.w];
                    let x0 = lo * sw + j * dw - pw;
                    if sw == 1 {
                        out[lo..hi].copy_from_slice(&src[x0..x0 + (hi - lo)]);
                    } else {
                        for (k, o) in out[lo..hi].iter_mut().enumerate() {
                            *o = src[x0 + k * sw];
                        }
                    }
                }
            }
        }
    }
}

/// Whether a convolution runs on the direct kernels instead of im2col + GEMM: one input
/// channel (a network's first layer on grey images), unit steps, output rows of at most 32,
/// `f32` on a CPU with AVX-512F. Unfolding such an image writes `KH·KW` shifted copies of it
/// for a product whose inner dimension is only `KH·KW` (25 for LeNet's first layer, 9 for the
/// `cnn` preset's), which the unfolding's stores dominated; the direct kernels read each
/// shifted row from the image itself (about 10% of LeNet's training epoch).
fn direct_applies<E: Element>(g: &Geom) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        g.c == 1
            && g.p.groups == 1
            && g.unit_steps()
            && (1..=simd::DIRECT_MAX_WO).contains(&g.wo)
            && g.kh * g.kw > 0
            && simd::usable::<E>()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        false
    }
}

/// Whether one image's forward pass runs on the plane kernel (`simd::plane_forward_f32`):
/// several input channels, unit steps, a "same" width and small planes, `f32` on AVX-512F.
fn plane_direct<E: Element>(g: &Geom) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        simd::plane_direct_applies::<E>(g)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        false
    }
}

/// Output rows `rows` of one image for the output channels `w` holds rows of, written to `y`
/// by the plane kernel with the bias (one per row of `w`) and ReLU of [`bias_relu_rows`].
/// Only where [`plane_direct`].
fn plane_forward<E: Element>(
    g: &Geom,
    img: &[E],
    w: &[E],
    y: &mut [MaybeUninit<E>],
    rows: (usize, usize),
    (bias, relu): (Option<&[E]>, bool),
) {
    #[cfg(target_arch = "x86_64")]
    simd::plane_forward_f32(
        g,
        as_f32(img),
        as_f32(w),
        uninit_f32(y),
        rows,
        (bias.map(as_f32), relu),
    );
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "conv2d: no plane kernel for {g:?}, {}, {}, {}, {rows:?}, {:?}, {relu}",
        img.len(),
        w.len(),
        y.len(),
        bias.map(|b| b.len())
    );
}

/// Whether a chunk of several images runs its forward pass and input gradient on the implicit
/// kernel (`simd::implicit_chunk_f32`) rather than unfolding and GEMM: one group, unit steps,
/// an output as large as the input (a "same" padding, so that each tap reads the input at a
/// fixed offset from the output position), more than one input channel, planes of at least
/// 16 positions, `f32` on AVX-512F.
fn implicit_applies<E: Element>(g: &Geom) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        g.p.groups == 1
            && g.unit_steps()
            && g.ho == g.h
            && g.wo == g.w
            && g.h * g.w >= 16
            && g.c > 1
            && g.kh * g.kw > 0
            && simd::usable::<E>()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        false
    }
}

/// Whether a convolution of input shape `x` and weight shape `w` with `p` runs the forward
/// pass and input gradient of its chunks of several images on the implicit kernel rather
/// than im2col + GEMM (for benchmarks that list the step's GEMM calls). False for shapes
/// that do not fit.
pub fn runs_implicit<E: Element>(x: &[usize], w: &[usize], p: Conv2dParams) -> bool {
    Geom::new(x, w, p).is_ok_and(|g| implicit_applies::<E>(&g))
}

/// The weights and geometry of the implicit kernel for the forward pass (`flip` false: the
/// rows are the output channels, `w[o][c][t]`) or for the input gradient (`flip`: the rows
/// are the input channels and the taps turned around, `w[o][c][taps − 1 − t]` for row `c`
/// and channel `o`, with the padding `K − 1 − P`: the convolution that takes `dY` to `dX`).
/// Blocks of [`simd::IMPLICIT_ROWS`] rows, in each the rows' weights for one channel and tap
/// side by side, zero for rows past the last. Only where [`implicit_applies`].
#[cfg(target_arch = "x86_64")]
fn implicit_weights(g: &Geom, w: &[f32], flip: bool) -> (simd::Implicit, Vec<f32>) {
    const R: usize = simd::IMPLICIT_ROWS;
    let taps = g.kh * g.kw;
    let (rows, cin) = if flip { (g.c, g.o) } else { (g.o, g.c) };
    let mut packed = vec![0.0f32; rows.div_ceil(R) * R * cin * taps];
    for r in 0..rows {
        for c in 0..cin {
            for t in 0..taps {
                let v = if flip {
                    w[(c * g.c + r) * taps + taps - 1 - t]
                } else {
                    w[(r * g.c + c) * taps + t]
                };
                packed[((r / R * cin + c) * taps + t) * R + r % R] = v;
            }
        }
    }
    let (ph, pw) = g.p.padding;
    let k = simd::Implicit {
        h: g.h,
        w: g.w,
        kh: g.kh,
        kw: g.kw,
        ph: if flip { g.kh - 1 - ph } else { ph },
        pw: if flip { g.kw - 1 - pw } else { pw },
    };
    (k, packed)
}

/// The implicit kernel's weights for `E` (only `f32` takes it; `None` for others).
struct ImplicitWeights {
    #[cfg(target_arch = "x86_64")]
    k: simd::Implicit,
    #[cfg(target_arch = "x86_64")]
    packed: Vec<f32>,
    /// The masks of a full chunk's positions, shared by every chunk of that many images.
    #[cfg(target_arch = "x86_64")]
    masks: simd::ImplicitMasks,
}

impl ImplicitWeights {
    /// [`implicit_weights`] where [`implicit_applies`], else `None`.
    fn new<E: Element>(g: &Geom, w: &[E], flip: bool) -> Option<ImplicitWeights> {
        #[cfg(target_arch = "x86_64")]
        {
            implicit_applies::<E>(g).then(|| {
                let (k, packed) = implicit_weights(g, as_f32(w), flip);
                let full = g.chunk_images().min(g.n);
                let masks = simd::implicit_masks(&k, full * g.h * g.w);
                ImplicitWeights { k, packed, masks }
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (g, w, flip);
            None
        }
    }

    /// `rows` channels of a chunk of `nb` images from `src` (its `cin` channels, each the
    /// images' planes side by side) into `y` (image by image), with the bias and ReLU.
    fn chunk<E: Element>(
        &self,
        src: &[E],
        (cin, nb): (usize, usize),
        rows: usize,
        y: &mut [MaybeUninit<E>],
        (bias, relu): (Option<&[E]>, bool),
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            let ld = nb * self.k.h * self.k.w;
            let own;
            let masks = if ld == self.masks.positions() {
                &self.masks
            } else {
                own = simd::implicit_masks(&self.k, ld);
                &own
            };
            simd::implicit_chunk_f32(
                &self.k,
                as_f32(src),
                (cin, nb),
                &self.packed,
                rows,
                masks,
                uninit_f32(y),
                (bias.map(as_f32), relu),
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "conv2d: no implicit kernel ({}, {cin}, {nb}, {rows}, {}, {:?}, {relu})",
            src.len(),
            y.len(),
            bias.map(|b| b.len())
        );
    }
}

/// Whether a convolution of input shape `x` and weight shape `w` with `p` runs its forward
/// pass and weight gradient on the direct kernels for one input channel rather than im2col +
/// GEMM (for benchmarks that list the step's GEMM calls). False for shapes that do not fit.
pub fn runs_direct<E: Element>(x: &[usize], w: &[usize], p: Conv2dParams) -> bool {
    Geom::new(x, w, p).is_ok_and(|g| direct_applies::<E>(&g))
}

/// Whether [`ChannelWeightGrad`] runs on its plane kernel for a convolution of input shape
/// `x` and weight shape `w` with `p` (one input channel, unit steps, as wide out as in, `f32`
/// on AVX-512F), rather than its plain loop: where fusing a first layer's weight gradient
/// into batch norm's backward pass pays. False for shapes that do not fit.
pub fn runs_plane_weight_grad<E: Element>(x: &[usize], w: &[usize], p: Conv2dParams) -> bool {
    Geom::new(x, w, p).is_ok_and(|g| plane_grad_masks_apply::<E>(&g))
}

/// The output channels of one image that `w` holds rows of, written to `y` by the direct
/// kernel (no bias). Only where [`direct_applies`].
fn direct_forward<E: Element>(g: &Geom, img: &[E], w: &[E], y: &mut [MaybeUninit<E>]) {
    #[cfg(target_arch = "x86_64")]
    simd::direct_forward_f32(g, as_f32(img), as_f32(w), uninit_f32(y));
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "conv2d: no direct kernel for {g:?}, {}, {}, {}",
        img.len(),
        w.len(),
        y.len()
    );
}

/// The transposed weight gradient (`[KH·KW, O]`) summed over the `nb` images of `imgs` and
/// their output gradients `dys`, by the direct kernel. Only where [`direct_applies`].
fn direct_weight_grad<E: Element>(
    g: &Geom,
    imgs: &[E],
    dys: &[E],
    nb: usize,
    dw_t: &mut [MaybeUninit<E>],
) {
    #[cfg(target_arch = "x86_64")]
    simd::direct_weight_grad_f32(g, as_f32(imgs), as_f32(dys), nb, uninit_f32(dw_t));
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "conv2d: no direct kernel for {g:?}, {}, {}, {nb}, {}",
        imgs.len(),
        dys.len(),
        dw_t.len()
    );
}

/// A convolution's weight gradient for one output channel at a time, summed image by
/// image from that channel's output-gradient planes as they are made: what
/// [`conv2d_backward`] computes for the weight (and bias), for a caller that has each
/// plane of `dY` in cache for a moment and would otherwise write the whole `dY` out for
/// the convolution to read back (batch norm's backward pass after a network's first
/// layer, [`crate::conv2d_batch_norm_relu_max_pool_backward`]). Output channel `o`'s rows of
/// the gradient are `Σ_images Σ_(oy,ox) dY[o][oy][ox] · x[c][oy·s + i·d − p][ox·s + j·d − p]`,
/// one per input channel `c` and tap `(i, j)`, in the weight's layout `[C, KH, KW]`.
///
/// Where the plane kernel takes the convolution (one input channel, unit steps, as wide out
/// as in, `f32` on AVX-512F: a network's first layer with a "same" padding) each image's
/// sums run sixteen positions at a time over the whole plane; elsewhere a plain loop over
/// the positions. Either way the sums equal [`conv2d_backward`]'s up to rounding: they are
/// added in another order.
pub struct ChannelWeightGrad<'a, E> {
    g: Geom,
    x: &'a [E],
    /// The plane kernel's masks, where it applies.
    masks: Option<Vec<u16>>,
}

impl<'a, E: Element> ChannelWeightGrad<'a, E> {
    /// For the input `x` (`[N, C, H, W]`) of a convolution with weight shape `w`
    /// (`[O, C, KH, KW]`) and parameters `p`.
    ///
    /// # Errors
    /// If the shapes do not fit each other (as [`conv2d_output_shape`] reports), or `p` has
    /// more than one group.
    pub fn new(x: &'a Tensor<E>, w: &[usize], p: Conv2dParams) -> Result<Self> {
        let g = Geom::new(x.shape(), w, p)?;
        if p.groups != 1 {
            return Err(TensorError::shapes(
                "conv2d weight gradient by channel",
                x.shape(),
                w,
                format!("takes one group, not {}", p.groups),
            ));
        }
        Ok(ChannelWeightGrad {
            g,
            x: x.data(),
            masks: plane_grad_masks::<E>(&g),
        })
    }

    /// The output's shape `[N, O, HO, WO]`.
    pub fn output_shape(&self) -> [usize; 4] {
        [self.g.n, self.g.o, self.g.ho, self.g.wo]
    }

    /// The weight-gradient elements of one output channel, `C·KH·KW`.
    pub fn per_channel(&self) -> usize {
        self.g.ckk()
    }

    /// Adds image `n`'s contribution from its output-gradient plane `dy` (`HO·WO` elements,
    /// one output channel's) to that channel's weight gradient `acc` (`C·KH·KW`).
    ///
    /// # Panics
    /// If `n` is not an image of the input or the lengths are not those above.
    pub fn add(&self, n: usize, dy: &[E], acc: &mut [E]) {
        let g = &self.g;
        let (img_len, ckk) = (g.c * g.h * g.w, g.ckk());
        assert!(
            n < g.n && dy.len() == g.positions() && acc.len() == ckk,
            "conv2d weight gradient by channel: image {n} of {}, a plane of {} for {}, {} sums for {ckk}",
            g.n,
            dy.len(),
            g.positions(),
            acc.len()
        );
        let img = &self.x[n * img_len..(n + 1) * img_len];
        if let Some(masks) = &self.masks {
            return plane_weight_grad(g, masks, img, dy, acc);
        }
        for c in 0..g.c {
            let plane = &img[c * g.h * g.w..(c + 1) * g.h * g.w];
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let mut s = E::ZERO;
                    for oy in 0..g.ho {
                        for ox in 0..g.wo {
                            if let Some((y, x)) = g.src(oy, ox, i, j) {
                                s += dy[oy * g.wo + ox] * plane[y * g.w + x];
                            }
                        }
                    }
                    acc[(c * g.kh + i) * g.kw + j] += s;
                }
            }
        }
    }

    /// The bias gradient's contribution of one plane, summed as [`conv2d_backward`] sums
    /// it (so the same to the bit when added in image order).
    pub fn bias_sum(dy: &[E]) -> E {
        sum_lanes(dy)
    }
}

/// The masks of the plane kernel for one output channel's weight gradient
/// (`simd::plane_weight_grad_f32`), if it takes `g`: one input channel, unit steps,
/// `WO = W`, `f32` on AVX-512F.
fn plane_grad_masks<E: Element>(g: &Geom) -> Option<Vec<u16>> {
    #[cfg(target_arch = "x86_64")]
    {
        simd::plane_grad_applies::<E>(g).then(|| simd::plane_grad_masks(g))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        None
    }
}

/// Whether [`plane_grad_masks`] gives masks for `g` (the plane kernel takes it).
fn plane_grad_masks_apply<E: Element>(g: &Geom) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        simd::plane_grad_applies::<E>(g)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        false
    }
}

/// Adds one image's output channel's weight gradient to `acc` on the plane kernel. Only
/// with the masks [`plane_grad_masks`] gave for `g`.
fn plane_weight_grad<E: Element>(g: &Geom, masks: &[u16], img: &[E], dy: &[E], acc: &mut [E]) {
    #[cfg(target_arch = "x86_64")]
    simd::plane_weight_grad_f32(g, masks, as_f32(img), as_f32(dy), as_f32_mut(acc));
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!(
        "conv2d: no plane kernel for {g:?}, {}, {}, {}, {}",
        masks.len(),
        img.len(),
        dy.len(),
        acc.len()
    );
}

/// Folds `col` (rows `ld` apart, as in [`im2col`]) back into an image, adding overlapping
/// contributions.
fn col2im<E: Element>(g: &Geom, col: &[E], img: &mut [E], ld: usize) {
    #[cfg(target_arch = "x86_64")]
    if g.unit_steps() && simd::usable::<E>() {
        return simd::col2im_unit_f32(g, as_f32(col), as_f32_mut(img), ld);
    }
    if g.unit_steps() {
        col2im_unit(g, col, img, ld)
    } else {
        col2im_general(g, col, img, ld)
    }
}

/// [`col2im`] for any stride and dilation.
fn col2im_general<E: Element>(g: &Geom, col: &[E], img: &mut [E], ld: usize) {
    let pp = g.positions();
    let (sw, pw, dw) = (g.p.stride.1, g.p.padding.1, g.p.dilation.1);
    for c in 0..g.c {
        let plane = &mut img[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &col[((c * g.kh + i) * g.kw + j) * ld..][..pp];
                for oy in 0..g.ho {
                    let Some((y, lo, hi)) = g.row_span(oy, i, j) else {
                        continue;
                    };
                    let inp = &row[oy * g.wo + lo..oy * g.wo + hi];
                    let dst = &mut plane[y * g.w..(y + 1) * g.w];
                    let x0 = lo * sw + j * dw - pw;
                    if sw == 1 {
                        for (d, &v) in dst[x0..x0 + (hi - lo)].iter_mut().zip(inp) {
                            *d += v;
                        }
                    } else {
                        for (k, &v) in inp.iter().enumerate() {
                            dst[x0 + k * sw] += v;
                        }
                    }
                }
            }
        }
    }
}

/// The sum of `v` over eight interleaved partial sums (a fixed order, so the same on every
/// machine): a one-accumulator loop waits on each addition's latency.
fn sum_lanes<E: Element>(v: &[E]) -> E {
    let mut acc = [E::ZERO; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    for (a, &x) in acc.iter_mut().zip(rest) {
        *a += x;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Copies `src[..dst.len()]` into `dst`. Runs shorter than 32 elements are moved as two
/// overlapping fixed-size blocks, without a call into the C library's `memcpy` (whose entry
/// costs more than moving the 10–28 elements of a convolution's row); longer ones use it.
#[inline(always)]
fn copy_n<E: Element>(dst: &mut [E], src: &[E]) {
    let n = dst.len();
    let src = &src[..n];
    macro_rules! ends {
        ($k:expr) => {{
            let head: [E; $k] = src[..$k].try_into().expect("block");
            let tail: [E; $k] = src[n - $k..].try_into().expect("block");
            dst[..$k].copy_from_slice(&head);
            dst[n - $k..].copy_from_slice(&tail);
        }};
    }
    match n {
        0 => {}
        1 => dst[0] = src[0],
        2..=3 => ends!(2),
        4..=7 => ends!(4),
        8..=15 => ends!(8),
        16..=31 => ends!(16),
        _ => dst.copy_from_slice(src),
    }
}

/// `dst += src[..dst.len()]` in fixed-size blocks: short runs without the run-time overlap
/// checks and scalar tails of a plain loop.
#[inline(always)]
fn add_n<E: Element>(dst: &mut [E], src: &[E]) {
    #[inline(always)]
    fn block<E: Element, const K: usize>(dst: &mut [E], src: &[E]) {
        let s: [E; K] = src[..K].try_into().expect("block");
        let d: &mut [E; K] = (&mut dst[..K]).try_into().expect("block");
        for (d, s) in d.iter_mut().zip(s) {
            *d += s;
        }
    }
    let n = dst.len();
    let src = &src[..n];
    let mut k = 0;
    while n - k >= 8 {
        block::<E, 8>(&mut dst[k..], &src[k..]);
        k += 8;
    }
    if n - k >= 4 {
        block::<E, 4>(&mut dst[k..], &src[k..]);
        k += 4;
    }
    if n - k >= 2 {
        block::<E, 2>(&mut dst[k..], &src[k..]);
        k += 2;
    }
    if n > k {
        dst[k] += src[k];
    }
}

/// `v` if positive, else 0 (NaN too), as [`Tensor::relu`].
#[inline(always)]
fn relu_of<E: Element>(v: E) -> E {
    if v > E::ZERO {
        v
    } else {
        E::ZERO
    }
}

/// Output positions a chunk of images aims at: the images of a chunk are unfolded side by
/// side and multiplied in one GEMM per layer (and group), so that small images (a 7×7 layer
/// has 49 positions, which fill the GEMM crate's tiles badly) still make wide products.
const CHUNK_POSITIONS: usize = 768;
/// At most this many images per chunk. With 16, the `cnn` preset's 7×7 layer (49 positions)
/// went in chunks of 16 images, four per batch of 64 for two threads, each chunk's columns
/// (`[288, 784]`, 903 KB) about a whole L2 cache; in chunks of 8 (452 KB, eight tasks) its
/// training step took 2–3.5% less (eight runs of 200–300 steps each alternating with 16 step
/// by step in one process: medians of the pairs' ratios 0.965–0.983, against 0.991–1.014 with
/// nothing changed; 4 gave 0.990 and 0.988).
const MAX_CHUNK_IMAGES: usize = 8;

impl Geom {
    /// Images per chunk: fixed by the shapes, not by the thread count, so that the weight
    /// gradient's sums over chunks do not depend on the number of threads.
    fn chunk_images(&self) -> usize {
        CHUNK_POSITIONS
            .div_ceil(self.positions().max(1))
            .clamp(1, MAX_CHUNK_IMAGES)
    }
}

/// The forward convolution, `y = conv(x, w) + b`, through im2col + GEMM (or the direct,
/// plane and implicit kernels where they apply; see the module's documentation).
///
/// # Panics
/// If the shapes do not fit (the message names `conv2d` and both shapes).
#[track_caller]
pub fn conv2d_forward<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
    p: Conv2dParams,
) -> Tensor<E> {
    or_panic(try_conv2d_forward(x, w, b, p))
}

/// [`conv2d_forward`] returning an error on mismatched shapes.
pub fn try_conv2d_forward<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
    p: Conv2dParams,
) -> Result<Tensor<E>> {
    forward(x, w, b, p, false, false).map(|(y, _)| y)
}

/// `relu(conv(x, w) + b)` in one pass over each image's output while it is in cache, for
/// inference (no gradient): [`try_conv2d_forward`] followed by ReLU when `relu` is set. A
/// batch norm in evaluation folds into `w` and `b` beforehand (as `backprop_nn` does).
///
/// # Errors
/// If the shapes do not fit (the message names `conv2d` and both shapes).
pub fn try_conv2d_forward_relu<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
    p: Conv2dParams,
    relu: bool,
) -> Result<Tensor<E>> {
    forward(x, w, b, p, false, relu).map(|(y, _)| y)
}

/// `maxpool(relu(conv(x, w) + b))` for inference (no gradient, no record of the maxima):
/// [`try_conv2d_forward_relu`] followed by [`max_pool2d_forward`]'s output. One image is
/// pooled while its output is in cache, so the unpooled output is never written out whole.
/// Inside [`team::scope`] it runs in two halves on this thread and the partner: halves of
/// the pooled rows where the pooling windows tile the rows (window = stride, no padding) and
/// the convolution unfolds on AVX-512 (`f32`, unit steps, more than one input channel, not
/// on the plane kernel), each thread unfolding only the input rows of its band; otherwise
/// halves of the output channels, each thread unfolding the whole image (one input channel,
/// or small "same" planes on the plane kernel: computing it directly). Batches go in chunks
/// of images over the pool, each chunk pooled from a buffer in cache
/// ([`batch_relu_maxpool`]); grouped convolutions run the convolution, then the pooling.
///
/// # Errors
/// If the shapes do not fit (the message names `conv2d` and both shapes) or the pooling
/// window does not fit the convolution's output (it names `pool2d`).
pub fn try_conv2d_forward_relu_maxpool<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
    p: Conv2dParams,
    relu: bool,
    pool: Pool2dParams,
) -> Result<Tensor<E>> {
    let g = Geom::new(x.shape(), w.shape(), p)?;
    check_bias(&g, w, b)?;
    let shape = pool2d_output_shape(&[g.n, g.o, g.ho, g.wo], pool)?;
    let (pp, ckk) = (g.positions(), g.ckk());
    let per = shape[2] * shape[3];
    if g.n > 1 && g.o > 0 && p.groups == 1 && pp > 0 && ckk > 0 && per > 0 {
        return batch_relu_maxpool(&g, x, w, b, relu, (pool, shape));
    }
    if g.n != 1 || p.groups != 1 || pp == 0 || ckk == 0 || per == 0 {
        let y = forward(x, w, b, p, false, relu)?.0;
        return Ok(max_pool2d_forward(&y, pool)?.0);
    }
    let (xd, wd, bias) = (x.data(), w.data(), b.map(|b| b.data()));
    let (direct, plane) = (direct_applies::<E>(&g), plane_direct::<E>(&g));
    // output channels o0.. (as many as `out` holds pooled planes), pooled into `out`
    let channels = |o0: usize, out: &mut [E]| {
        with_scratch(|s: &mut Scratch<E>| {
            let rows = out.len() / per;
            s.tmp.clear();
            s.tmp.reserve(rows * pp);
            let dst = &mut s.tmp.spare_capacity_mut()[..rows * pp];
            let w_rows = &wd[o0 * ckk..(o0 + rows) * ckk];
            if direct {
                direct_forward(&g, xd, w_rows, dst);
            } else if plane {
                let epi = (bias.map(|b| &b[o0..o0 + rows]), relu);
                plane_forward(&g, xd, w_rows, dst, (0, g.ho), epi);
            } else {
                let col = s.col.get(ckk * pp);
                im2col(&g, xd, col, pp);
                gemm(
                    Out::WriteUninit(dst),
                    Mat::new(w_rows, rows, ckk),
                    Mat::new(col, ckk, pp),
                    Threads::Caller,
                );
            }
            // SAFETY: the direct or plane kernel or `Out::WriteUninit` wrote all `rows·pp`
            // elements.
            unsafe { s.tmp.set_len(rows * pp) };
            if !plane {
                bias_relu_rows(&mut s.tmp, pp, bias.map(|b| &b[o0..]), relu);
            }
            s.idx.resize(per, 0);
            max_pool_planes(pool, &s.tmp, (g.ho, g.wo, shape[3]), out, &mut s.idx);
        })
    };
    let mut y = vec![E::ZERO; g.o * per];
    let split = g.o >= 2 && g.o * ckk * pp >= team::MIN_WORK && team::splits();
    #[cfg(target_arch = "x86_64")]
    if split && shape[2] >= 2 && pooled_rows_split::<E>(&g, pool) {
        // halves of the pooled rows, each thread unfolding only the rows it pools
        let pr = shape[2].div_ceil(2);
        let (pwo, sh) = (shape[3], pool.stride.0);
        let rows = |pr0: usize, pr1: usize| -> Vec<E> {
            with_scratch(|s: &mut Scratch<E>| {
                let (r0, r1) = (pr0 * sh, pr1 * sh);
                image_rows(&g, s, (xd, wd, bias), relu, (r0, r1));
                let part = (pr1 - pr0) * pwo;
                let mut out = vec![E::ZERO; g.o * part];
                s.idx.resize(part, 0);
                max_pool_planes(pool, &s.tmp, (r1 - r0, g.wo, pwo), &mut out, &mut s.idx);
                out
            })
        };
        let (top, bottom) = team::join(|| rows(0, pr), || rows(pr, shape[2]));
        for (r0, part) in [(0, top), (pr, bottom)] {
            let len = part.len() / g.o;
            for (o, src) in part.chunks_exact(len.max(1)).enumerate() {
                y[o * per + r0 * pwo..][..len].copy_from_slice(src);
            }
        }
        return Ok(Tensor::from_parts(y, shape));
    }
    if split {
        let (lo, hi) = y.split_at_mut(g.o / 2 * per);
        team::join(|| channels(0, lo), || channels(g.o / 2, hi));
    } else {
        channels(0, &mut y);
    }
    Ok(Tensor::from_parts(y, shape))
}

/// [`try_conv2d_forward_relu_maxpool`] of a batch: the images in chunks (as many as one
/// chunk of the forward pass holds, [`Geom::chunk_images`]) spread over the pool, each chunk
/// convolved into a buffer that stays in the core's cache and pooled from there, so the
/// full-size output is never written out and read back (for the `cnn` preset's first layer
/// at batch 256, 12.8 MB). The values are those of the convolution and the pooling one
/// after the other, to the bit: each chunk runs the same [`forward`] as a batch of its own.
/// `shape` is the pooled output's, `[N, O, PH, PW]`.
fn batch_relu_maxpool<E: Element>(
    g: &Geom,
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
    relu: bool,
    (pool, shape): (Pool2dParams, Vec<usize>),
) -> Result<Tensor<E>> {
    let cb = g.chunk_images();
    let img_len = g.c * g.h * g.w;
    let (per, pwo) = (shape[2] * shape[3], shape[3]);
    let out_img = g.o * per;
    // the implicit kernel's weights, made once for every chunk (of several images)
    let implicit = (cb > 1)
        .then(|| ImplicitWeights::new(g, w.data(), false))
        .flatten();
    let mut y = vec![E::ZERO; g.n * out_img];
    y.par_chunks_mut(cb * out_img)
        .enumerate()
        .try_for_each(|(c, yc)| -> Result<()> {
            let (i0, nb) = (c * cb, yc.len() / out_img);
            let xs = Tensor::from_parts(
                x.data()[i0 * img_len..(i0 + nb) * img_len].to_vec(),
                vec![nb, g.c, g.h, g.w],
            );
            // one chunk: `forward` runs it on this thread, without handing it to the pool
            let conv = forward_sharing(&xs, w, b, g.p, (false, relu), implicit.as_ref())?.0;
            with_scratch(|s: &mut Scratch<E>| {
                s.idx.resize(per, 0);
                max_pool_planes(pool, conv.data(), (g.ho, g.wo, pwo), yc, &mut s.idx);
            });
            Ok(())
        })?;
    Ok(Tensor::from_parts(y, shape))
}

/// Whether one image's convolution and max pooling can split by output rows: unit steps on
/// the AVX-512 unfolding ([`rows_split`]), and pooling windows that tile the rows (window =
/// stride, no padding), so that pooling a band of rows gives the same values as pooling the
/// plane.
#[cfg(target_arch = "x86_64")]
fn pooled_rows_split<E: Element>(g: &Geom, pool: Pool2dParams) -> bool {
    rows_split::<E>(g) && pool.kernel == pool.stride && pool.padding == (0, 0)
}

/// Whether one image's convolution can split by output rows, each thread unfolding only
/// its band ([`image_rows`]): unit steps, `f32` on AVX-512F, no groups, and not on the
/// direct or plane kernels (which do not unfold). Split by output channels instead, both
/// threads unfold the whole image: with the `cnn` preset's second layer (pooled after) split
/// by rows, the one-image latency went from 46–47 µs to 43–45 µs, before that layer took the
/// plane kernel (split by channels, as nothing is unfolded).
#[cfg(target_arch = "x86_64")]
fn rows_split<E: Element>(g: &Geom) -> bool {
    g.unit_steps()
        && g.p.groups == 1
        && g.ho >= 2
        && simd::usable::<E>()
        && !direct_applies::<E>(g)
        && !plane_direct::<E>(g)
}

/// Output rows `r0..r1` of one image's convolution, every channel, with the bias and the
/// ReLU (if `relu`): `[O, (r1 − r0)·WO]` in `s.tmp`, the band unfolded into `s.col`.
#[cfg(target_arch = "x86_64")]
fn image_rows<E: Element>(
    g: &Geom,
    s: &mut Scratch<E>,
    (x, w, bias): (&[E], &[E], Option<&[E]>),
    relu: bool,
    (r0, r1): (usize, usize),
) {
    let ckk = g.ckk();
    let n = (r1 - r0) * g.wo;
    let col = s.col.get(ckk * n);
    simd::im2col_rows_f32(g, as_f32(x), as_f32_mut(col), n, (r0, r1));
    s.tmp.clear();
    s.tmp.reserve(g.o * n);
    gemm(
        Out::WriteUninit(&mut s.tmp.spare_capacity_mut()[..g.o * n]),
        Mat::new(w, g.o, ckk),
        Mat::new(col, ckk, n),
        Threads::Caller,
    );
    // SAFETY: `Out::WriteUninit` wrote all `o·n` elements.
    unsafe { s.tmp.set_len(g.o * n) };
    bias_relu_rows(&mut s.tmp, n, bias, relu);
}

/// The unfolded input of a forward convolution (chunk by chunk, each `[C·KH·KW, nb·HO·WO]`
/// with the chunk's images side by side), kept so the weight
/// gradient need not unfold the images again. See [`try_conv2d_forward_keep`]. Its buffer
/// goes back to a small pool when dropped, for the next forward pass to reuse.
#[derive(Debug, Clone)]
pub struct Unfolded<E: Element> {
    cols: Vec<E>,
    x_shape: Vec<usize>,
    w_shape: Vec<usize>,
    p: Conv2dParams,
}

impl<E: Element> Drop for Unfolded<E> {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.cols));
    }
}

/// Buffers of dropped [`Unfolded`]s: im2col overwrites every element, so a reused buffer
/// need not be zeroed as a fresh one must (for LeNet at batch 64 that is 9 MB a step).
static SPARE: std::sync::Mutex<Vec<Box<dyn std::any::Any + Send>>> =
    std::sync::Mutex::new(Vec::new());
/// At most this many buffers wait in [`SPARE`].
const MAX_SPARE: usize = 8;

/// A buffer of `len` elements, reused from [`SPARE`] when one is large enough (its old
/// contents are left in place: the caller overwrites them all).
fn take_buffer<E: Element>(len: usize) -> Vec<E> {
    let found = {
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        // the smallest that fits, so the two layers of a network keep their own buffers
        spare
            .iter()
            .enumerate()
            .filter_map(|(at, b)| {
                let cap = b.downcast_ref::<Vec<E>>()?.capacity();
                (cap >= len).then_some((cap, at))
            })
            .min()
            .map(|(_, at)| spare.swap_remove(at))
    };
    match found.and_then(|b| b.downcast::<Vec<E>>().ok()) {
        Some(mut v) => {
            v.resize(len, E::ZERO);
            *v
        }
        None => vec![E::ZERO; len],
    }
}

fn give_back<E: Element>(v: Vec<E>) {
    if v.capacity() == 0 {
        return;
    }
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    if spare.len() < MAX_SPARE {
        spare.push(Box::new(v));
    }
}

/// [`try_conv2d_forward`] that also returns the unfolded input, for
/// [`conv2d_backward_unfolded`]. It costs `N·C·KH·KW·HO·WO` elements of memory until the
/// backward pass (2.5 MB for LeNet's first layer at 32 images) and saves the backward pass
/// one unfolding per image.
pub fn try_conv2d_forward_keep<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
    p: Conv2dParams,
) -> Result<(Tensor<E>, Unfolded<E>)> {
    let (y, cols) = forward(x, w, b, p, true, false)?;
    let kept = Unfolded {
        cols: cols.unwrap_or_default(),
        x_shape: x.shape().to_vec(),
        w_shape: w.shape().to_vec(),
        p,
    };
    Ok((y, kept))
}

/// An error unless `b` (if any) has one element per output channel.
fn check_bias<E: Element>(g: &Geom, w: &Tensor<E>, b: Option<&Tensor<E>>) -> Result<()> {
    match b {
        Some(b) if b.shape() != [g.o] => Err(TensorError::shapes(
            "conv2d",
            w.shape(),
            b.shape(),
            format!("the bias must have shape [{}]", g.o),
        )),
        _ => Ok(()),
    }
}

fn forward<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
    p: Conv2dParams,
    keep: bool,
    relu: bool,
) -> Result<(Tensor<E>, Option<Vec<E>>)> {
    forward_sharing(x, w, b, p, (keep, relu), None)
}

/// [`forward`], with the implicit kernel's weights already made for `w` (by a caller that
/// runs a batch chunk by chunk, so that each chunk does not pack them again).
fn forward_sharing<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
    p: Conv2dParams,
    (keep, relu): (bool, bool),
    shared: Option<&ImplicitWeights>,
) -> Result<(Tensor<E>, Option<Vec<E>>)> {
    let g = Geom::new(x.shape(), w.shape(), p)?;
    check_bias(&g, w, b)?;
    let (pp, ckk, groups) = (g.positions(), g.ckk(), p.groups);
    let (og, ckkg) = (g.o / groups, ckk / groups);
    let len = g.n * g.o * pp;
    if g.n == 0 || g.o == 0 || pp == 0 || ckk == 0 {
        let cols = keep.then(Vec::new);
        let mut y = vec![E::ZERO; len];
        if let Some(b) = b {
            for (row, &bo) in y.chunks_exact_mut(pp.max(1)).zip(b.data().iter().cycle()) {
                row.iter_mut().for_each(|v| *v = epilogue(bo, relu));
            }
        }
        return Ok((Tensor::from_parts(y, vec![g.n, g.o, g.ho, g.wo]), cols));
    }
    // written in full by the GEMMs or kernels below, so not zero-filled first
    let mut y: Vec<E> = Vec::with_capacity(len);
    let yu = &mut y.spare_capacity_mut()[..len];
    let (xd, wd) = (x.data(), w.data());
    let bias = b.map(|b| b.data());
    let img_len = g.c * g.h * g.w;
    let cb = g.chunk_images();
    // the kept columns are the unfolded images, so a kept forward pass unfolds them
    let direct = !keep && direct_applies::<E>(&g);
    let plane = !keep && plane_direct::<E>(&g);
    let own;
    let implicit = match shared {
        _ if keep || direct || g.chunk_images().min(g.n) < 2 => None,
        Some(iw) => Some(iw),
        None => {
            own = ImplicitWeights::new(&g, wd, false);
            own.as_ref()
        }
    };
    // One chunk: the images from i0 that `yc` holds, unfolded side by side into `col`
    // ([C·KH·KW, nb·HO·WO]), multiplied by W in one GEMM per group; with several images the
    // product goes to `tmp` ([O, nb·HO·WO]) and each image's planes are copied out of it.
    // Several images on the implicit kernel are instead copied channel by channel into
    // `col` ([C, nb·H·W]) and convolved from there straight into `yc`.
    let one_chunk = |i0: usize, yc: &mut [MaybeUninit<E>], col: &mut [E], tmp: &mut Vec<E>| {
        let nb = yc.len() / (g.o * pp);
        let ld = nb * pp;
        let unfold = |col: &mut [E]| {
            im2col_images(&g, &xd[i0 * img_len..(i0 + nb) * img_len], nb, col, ld);
        };
        let product = |dst: &mut [MaybeUninit<E>], col: &[E]| {
            for k in 0..groups {
                // Y_k = W_k · col_k : [og, ckkg] × [ckkg, nb·pp]
                gemm(
                    Out::WriteUninit(&mut dst[k * og * ld..(k + 1) * og * ld]),
                    Mat::new(&wd[k * og * ckkg..(k + 1) * og * ckkg], og, ckkg),
                    Mat::new(&col[k * ckkg * ld..(k + 1) * ckkg * ld], ckkg, ld),
                    Threads::Caller,
                );
            }
        };
        if nb == 1 {
            // Output channels o0.. (as many as `dst` holds) of the one image, unfolded into
            // `col` here, with the bias and ReLU.
            let channels = |dst: &mut [MaybeUninit<E>], o0: usize, col: &mut [E]| {
                let rows = dst.len() / pp;
                if direct {
                    let img = &xd[i0 * img_len..(i0 + 1) * img_len];
                    direct_forward(&g, img, &wd[o0 * ckk..(o0 + rows) * ckk], dst);
                } else if plane {
                    let img = &xd[i0 * img_len..(i0 + 1) * img_len];
                    let epi = (bias.map(|b| &b[o0..o0 + rows]), relu);
                    plane_forward(
                        &g,
                        img,
                        &wd[o0 * ckk..(o0 + rows) * ckk],
                        dst,
                        (0, g.ho),
                        epi,
                    );
                    return;
                } else if groups == 1 {
                    unfold(col);
                    gemm(
                        Out::WriteUninit(dst),
                        Mat::new(&wd[o0 * ckk..(o0 + rows) * ckk], rows, ckk),
                        Mat::new(&col[..ckk * pp], ckk, pp),
                        Threads::Caller,
                    );
                } else {
                    unfold(col);
                    product(dst, col);
                }
                // SAFETY: the direct kernel, the GEMM (or the `groups` blocks of `og·pp` elements, which tile
                // `dst`: `groups·og = o`) wrote every element of `dst` through
                // `Out::WriteUninit`, so it is initialised; `MaybeUninit<E>` has the layout
                // of `E`.
                let yi = unsafe { &mut *(dst as *mut [MaybeUninit<E>] as *mut [E]) };
                bias_relu_rows(yi, pp, bias.map(|b| &b[o0..]), relu);
            };
            let split =
                groups == 1 && g.o >= 2 && g.o * ckk * pp >= team::MIN_WORK && team::splits();
            // (split by output rows, as an unfolding pooled convolution is, the `cnn`
            // preset's third layer took 1–2 µs longer when it still unfolded: its 7 rows
            // make bands of 28 and 21 positions, and each thread packs the whole weight)
            if split {
                // One image (inference latency): half the channels each on this thread and
                // the partner, each unfolding the image into its own buffer (or, with one
                // input channel or on the plane kernel, reading it directly). Sharing one
                // unfolded image costs more than unfolding it twice: the partner's reads
                // of lines this thread had just written made both halves' products 60%
                // slower.
                let (lo, hi) = yc.split_at_mut(g.o / 2 * pp);
                team::join(
                    || channels(lo, 0, col),
                    || {
                        with_scratch(|s: &mut Scratch<E>| {
                            channels(hi, g.o / 2, s.col.get(ckk * pp))
                        })
                    },
                );
            } else {
                channels(yc, 0, col);
            }
            return;
        }
        if direct {
            for (k, yi) in yc.chunks_exact_mut(g.o * pp).enumerate() {
                direct_forward(&g, &xd[(i0 + k) * img_len..][..img_len], wd, yi);
                // SAFETY: the direct kernel wrote every element of the image's output;
                // `MaybeUninit<E>` has the layout of `E`.
                let yi = unsafe { &mut *(yi as *mut [MaybeUninit<E>] as *mut [E]) };
                bias_relu_rows(yi, pp, bias, relu);
            }
            return;
        }
        if let Some(iw) = implicit {
            // the chunk's images channel by channel, each channel's planes side by side
            let src = &mut col[..g.c * ld];
            for c in 0..g.c {
                for k in 0..nb {
                    src[c * ld + k * pp..][..pp]
                        .copy_from_slice(&xd[(i0 + k) * img_len + c * pp..][..pp]);
                }
            }
            iw.chunk(src, (g.c, nb), g.o, yc, (bias, relu));
            return;
        }
        unfold(col);
        tmp.clear();
        tmp.reserve(g.o * ld);
        product(&mut tmp.spare_capacity_mut()[..g.o * ld], col);
        // SAFETY: `product` wrote all `o·ld` elements (the blocks tile them, as above).
        unsafe { tmp.set_len(g.o * ld) };
        for (k, yi) in yc.chunks_exact_mut(g.o * pp).enumerate() {
            for (o, row) in yi.chunks_exact_mut(pp).enumerate() {
                let bo = bias.map_or(E::ZERO, |b| b[o]);
                let src = &tmp[o * ld + k * pp..][..pp];
                for (d, &v) in row.iter_mut().zip(src) {
                    d.write(epilogue(v + bo, relu));
                }
            }
        }
    };
    let per_chunk = cb * g.o * pp;
    let cols = if keep {
        let mut cols = take_buffer(g.n * ckk * pp);
        yu.par_chunks_mut(per_chunk)
            .zip(cols.par_chunks_mut(cb * ckk * pp))
            .enumerate()
            .for_each_init(Vec::new, |tmp, (c, (yc, col))| {
                one_chunk(c * cb, yc, col, tmp)
            });
        Some(cols)
    } else if g.n <= cb {
        // one chunk (inference latency): no hand-off to the pool
        with_scratch(|s: &mut Scratch<E>| {
            let col = s.col.get(ckk * g.n * pp);
            one_chunk(0, yu, col, &mut s.tmp)
        });
        None
    } else {
        yu.par_chunks_mut(per_chunk)
            .enumerate()
            .for_each(|(c, yc)| {
                with_scratch(|s: &mut Scratch<E>| {
                    let col = s.col.get(ckk * cb * pp);
                    one_chunk(c * cb, yc, col, &mut s.tmp)
                })
            });
        None
    };
    // SAFETY: the chunks of `cb·o·pp` elements cover the first `len` elements, and each
    // went to one call of `one_chunk`, which initialises all of it (see there).
    unsafe { y.set_len(len) };
    Ok((Tensor::from_parts(y, vec![g.n, g.o, g.ho, g.wo]), cols))
}

/// Adds `bias[o]` to each row `o` of `y` (rows of `pp` output positions) and applies the
/// ReLU when `relu` is set: the end of a one-image convolution's channels.
fn bias_relu_rows<E: Element>(y: &mut [E], pp: usize, bias: Option<&[E]>, relu: bool) {
    if bias.is_none() && !relu {
        return;
    }
    for (o, row) in y.chunks_exact_mut(pp).enumerate() {
        let bo = bias.map_or(E::ZERO, |b| b[o]);
        row.iter_mut().for_each(|v| *v = epilogue(*v + bo, relu));
    }
}

/// `relu(v)` when `relu` is set, else `v`.
#[inline(always)]
fn epilogue<E: Element>(v: E, relu: bool) -> E {
    if relu {
        relu_of(v)
    } else {
        v
    }
}

/// `(dx, dw, db)`, each present if it was asked for.
pub type ConvGrads<E> = (Option<Tensor<E>>, Option<Tensor<E>>, Option<Tensor<E>>);

/// Gradients of a convolution: given `x`, `w` and `dy`, returns `(dx, dw, db)`, each only
/// if asked for.
///
/// # Panics
/// If the shapes do not fit.
#[track_caller]
pub fn conv2d_backward<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    dy: &Tensor<E>,
    p: Conv2dParams,
    want: (bool, bool, bool),
) -> ConvGrads<E> {
    backward(x, w, dy, p, want, None)
}

/// [`conv2d_backward`] reading the weight gradient's unfolded images from `kept` (what
/// [`try_conv2d_forward_keep`] returned for the same `x`, `w` and parameters).
///
/// # Panics
/// If the shapes do not fit, or `kept` belongs to other shapes or parameters.
#[track_caller]
pub fn conv2d_backward_unfolded<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    dy: &Tensor<E>,
    p: Conv2dParams,
    want: (bool, bool, bool),
    kept: &Unfolded<E>,
) -> ConvGrads<E> {
    assert!(
        kept.x_shape == x.shape() && kept.w_shape == w.shape() && kept.p == p,
        "conv2d_backward_unfolded: the kept columns are of input {:?}, weight {:?}, {:?}; \
         called with {:?}, {:?}, {:?}",
        kept.x_shape,
        kept.w_shape,
        kept.p,
        x.shape(),
        w.shape(),
        p
    );
    backward(x, w, dy, p, want, Some(&kept.cols))
}

#[track_caller]
fn backward<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    dy: &Tensor<E>,
    p: Conv2dParams,
    want: (bool, bool, bool),
    kept: Option<&[E]>,
) -> ConvGrads<E> {
    let g = or_panic(Geom::new(x.shape(), w.shape(), p));
    assert_eq!(
        dy.shape(),
        [g.n, g.o, g.ho, g.wo],
        "conv2d_backward: dy has shape {:?}",
        dy.shape()
    );
    let (pp, ckk, groups) = (g.positions(), g.ckk(), p.groups);
    let (og, ckkg) = (g.o / groups, ckk / groups);
    let (xd, wd, gd) = (x.data(), w.data(), dy.data());
    let img_len = g.c * g.h * g.w;
    let out_len = g.o * pp;
    let db = want.2.then(|| {
        let mut db = vec![E::ZERO; g.o];
        for i in 0..g.n {
            for (o, row) in gd[i * out_len..(i + 1) * out_len]
                .chunks_exact(pp.max(1))
                .enumerate()
            {
                db[o] += sum_lanes(row);
            }
        }
        Tensor::from_parts(db, vec![g.o])
    });
    if !want.0 && !want.1 {
        return (None, None, db);
    }
    // The images in the forward pass's chunks (fixed by the shapes, so the sums do not
    // depend on the thread count), each chunk's dY gathered side by side ([O, nb·HO·WO]):
    // one GEMM per group for the chunk's share of dWᵀ, one for its unfolded dX (or, where
    // the implicit kernel applies, dX straight from the gathered dY).
    let cb = g.chunk_images();
    let chunks = g.n.div_ceil(cb);
    let dx_len = if want.0 { g.n * img_len } else { 0 };
    let mut dx: Vec<E> = Vec::with_capacity(dx_len);
    let mut dx_parts: Vec<Option<&mut [MaybeUninit<E>]>> = Vec::with_capacity(chunks);
    let mut rest = &mut dx.spare_capacity_mut()[..dx_len];
    for c in 0..chunks {
        let nb = cb.min(g.n - c * cb);
        if want.0 {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(nb * img_len);
            dx_parts.push(Some(head));
            rest = tail;
        } else {
            dx_parts.push(None);
        }
    }
    let direct = want.1 && kept.is_none() && direct_applies::<E>(&g);
    let implicit = want.0.then(|| ImplicitWeights::new(&g, wd, true)).flatten();
    let one_chunk = |scratch: &mut Scratch<E>,
                     (c, mut dxc): (usize, Option<&mut [MaybeUninit<E>]>)| {
        let i0 = c * cb;
        let nb = cb.min(g.n - i0);
        let ld = nb * pp;
        // the weight gradient read straight from the images and dY, without unfolding
        let direct_acc = direct.then(|| {
            let mut acc: Vec<E> = Vec::with_capacity(g.o * ckk);
            direct_weight_grad(
                &g,
                &xd[i0 * img_len..(i0 + nb) * img_len],
                &gd[i0 * out_len..(i0 + nb) * out_len],
                nb,
                &mut acc.spare_capacity_mut()[..g.o * ckk],
            );
            // SAFETY: the direct kernel wrote all `o·ckk` elements.
            unsafe { acc.set_len(g.o * ckk) };
            acc
        });
        if direct && dxc.is_none() {
            return direct_acc;
        }
        let dyc: &[E] = if nb == 1 {
            &gd[i0 * out_len..(i0 + 1) * out_len]
        } else {
            let buf = scratch.dy.get(g.o * ld);
            for k in 0..nb {
                let gi = &gd[(i0 + k) * out_len..(i0 + k + 1) * out_len];
                for (o, src) in gi.chunks_exact(pp).enumerate() {
                    buf[o * ld + k * pp..][..pp].copy_from_slice(src);
                }
            }
            buf
        };
        let acc = direct_acc.or_else(|| {
            want.1.then(|| {
                let col: &[E] = match kept {
                    Some(cols) => &cols[i0 * ckk * pp..(i0 + nb) * ckk * pp],
                    None => {
                        let col = scratch.col.get(ckk * ld);
                        im2col_images(&g, &xd[i0 * img_len..(i0 + nb) * img_len], nb, col, ld);
                        col
                    }
                };
                let mut acc: Vec<E> = Vec::with_capacity(g.o * ckkg);
                let dst = &mut acc.spare_capacity_mut()[..g.o * ckkg];
                for k in 0..groups {
                    // dW_kᵀ = col_k · dY_kᵀ : [ckkg, nb·pp] × [nb·pp, og]; summed transposed, the
                    // GEMM packs the short dY side
                    gemm(
                        Out::WriteUninit(&mut dst[k * og * ckkg..(k + 1) * og * ckkg]),
                        Mat::new(&col[k * ckkg * ld..(k + 1) * ckkg * ld], ckkg, ld),
                        Mat::new(&dyc[k * og * ld..(k + 1) * og * ld], og, ld).t(),
                        Threads::Caller,
                    );
                }
                // SAFETY: the `groups` blocks of `og·ckkg` elements tile the `o·ckkg` written.
                unsafe { acc.set_len(g.o * ckkg) };
                acc
            })
        });
        if let (Some(dxc), Some(iw)) = (dxc.as_deref_mut(), &implicit) {
            iw.chunk(dyc, (g.o, nb), g.c, dxc, (None, false));
            return acc;
        }
        if let Some(dxc) = dxc {
            let dcol = scratch.dcol.get(ckk * ld);
            for k in 0..groups {
                // dcol_k = W_kᵀ · dY_k : [ckkg, og] × [og, nb·pp]
                gemm(
                    Out::Write(&mut dcol[k * ckkg * ld..(k + 1) * ckkg * ld]),
                    Mat::new(&wd[k * og * ckkg..(k + 1) * og * ckkg], og, ckkg).t(),
                    Mat::new(&dyc[k * og * ld..(k + 1) * og * ld], og, ld),
                    Threads::Caller,
                );
            }
            // each image zeroed (in this task, while in cache) before col2im adds to it
            for (k, dxi) in dxc.chunks_exact_mut(img_len.max(1)).enumerate() {
                dxi.fill(MaybeUninit::new(E::ZERO));
                // SAFETY: every element of the image was just written; `MaybeUninit<E>`
                // has the layout of `E`.
                let dxi = unsafe { &mut *(dxi as *mut [MaybeUninit<E>] as *mut [E]) };
                col2im(&g, &dcol[k * pp..], dxi, ld);
            }
        }
        acc
    };
    let accs: Vec<Option<Vec<E>>> = dx_parts
        .into_par_iter()
        .enumerate()
        .map(|part| with_scratch(|s| one_chunk(s, part)))
        .collect();
    let dx = want.0.then(|| {
        // SAFETY: the chunks' parts tile the `n·img_len` elements, and each part's images
        // were either written in full by the implicit kernel or zeroed in full before
        // col2im added to them.
        unsafe { dx.set_len(dx_len) };
        Tensor::from_parts(dx, x.shape().to_vec())
    });
    let dw = want.1.then(|| {
        let mut dw_t = vec![E::ZERO; g.o * ckkg];
        for acc in accs.into_iter().flatten() {
            dw_t.iter_mut().zip(acc).for_each(|(a, b)| *a += b);
        }
        // each group's block is [ckkg, og]; the weight is [og, ckkg] per group
        let mut dw = vec![E::ZERO; g.o * ckkg];
        for k in 0..groups {
            let (src, dst) = (
                &dw_t[k * og * ckkg..(k + 1) * og * ckkg],
                &mut dw[k * og * ckkg..(k + 1) * og * ckkg],
            );
            for (r, row) in src.chunks_exact(og).enumerate() {
                for (o, &v) in row.iter().enumerate() {
                    dst[o * ckkg + r] = v;
                }
            }
        }
        Tensor::from_parts(dw, w.shape().to_vec())
    });
    (dx, dw, db)
}

/// A thread's reusable buffers for the chunks of the forward and backward passes (grown on
/// first use, then kept from call to call, so they are neither allocated nor zero-filled
/// again: every user overwrites what it takes).
struct Scratch<E> {
    dy: Grow<E>,
    col: Grow<E>,
    dcol: Grow<E>,
    /// The forward pass's product of a chunk, before its images are copied out.
    tmp: Vec<E>,
    /// Where fused pooling records its maxima (and inference then ignores them).
    idx: Vec<u32>,
}

impl<E> Default for Scratch<E> {
    fn default() -> Self {
        Scratch {
            dy: Grow(Vec::new()),
            col: Grow(Vec::new()),
            dcol: Grow(Vec::new()),
            tmp: Vec::new(),
            idx: Vec::new(),
        }
    }
}

thread_local! {
    /// Each thread's [`Scratch`] per element type, kept between calls.
    static SCRATCH: std::cell::RefCell<Vec<Box<dyn std::any::Any>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's [`Scratch`] for `E`, taken out of [`SCRATCH`] while `f` runs
/// (a task that starts on the same thread meanwhile, e.g. one stolen while `f` waits,
/// finds none and makes its own; a thread keeps up to two).
fn with_scratch<E: Element, R>(f: impl FnOnce(&mut Scratch<E>) -> R) -> R {
    let taken = SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let at = s.iter().position(|b| b.is::<Scratch<E>>())?;
        s.swap_remove(at).downcast::<Scratch<E>>().ok()
    });
    let mut scratch = taken.unwrap_or_default();
    let r = f(&mut scratch);
    SCRATCH.with(|s| {
        // two may be out at once (a half that the partner was too late to take runs on
        // this thread inside the other half's call): keep both for the next time
        let mut s = s.borrow_mut();
        if s.iter().filter(|b| b.is::<Scratch<E>>()).count() < 2 {
            s.push(scratch);
        }
    });
    r
}

/// A buffer handed out at a requested length; its contents are whatever was there before
/// (every user overwrites what it takes).
struct Grow<E>(Vec<E>);

impl<E: Element> Grow<E> {
    fn get(&mut self, len: usize) -> &mut [E] {
        if self.0.len() < len {
            self.0.resize(len, E::ZERO);
        }
        &mut self.0[..len]
    }
}

/// The slow, obviously correct reference: six nested loops, no im2col.
///
/// # Panics
/// If the shapes do not fit.
pub fn conv2d_direct<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
    p: Conv2dParams,
) -> Tensor<E> {
    let g = or_panic(Geom::new(x.shape(), w.shape(), p));
    let (og, cg) = (g.o / p.groups, g.c / p.groups);
    let mut y = vec![E::ZERO; g.n * g.o * g.ho * g.wo];
    for n in 0..g.n {
        for o in 0..g.o {
            let k = o / og;
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    let mut acc = b.map_or(E::ZERO, |b| b.data()[o]);
                    for ci in 0..cg {
                        let c = k * cg + ci;
                        for i in 0..g.kh {
                            for j in 0..g.kw {
                                if let Some((yy, xx)) = g.src(oy, ox, i, j) {
                                    acc += x.data()[((n * g.c + c) * g.h + yy) * g.w + xx]
                                        * w.data()[((o * cg + ci) * g.kh + i) * g.kw + j];
                                }
                            }
                        }
                    }
                    y[((n * g.o + o) * g.ho + oy) * g.wo + ox] = acc;
                }
            }
        }
    }
    Tensor::from_parts(y, vec![g.n, g.o, g.ho, g.wo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
        Tensor::from_vec(v.to_vec(), s)
    }

    #[test]
    fn sizes_whose_arithmetic_would_overflow_are_refused() {
        // found by fuzzing model specs: a dilation or padding near 2^64 wrapped the span
        let p = |dilation: usize, padding: usize| Conv2dParams {
            dilation: (dilation, 1),
            padding: (padding, 0),
            ..Conv2dParams::default()
        };
        for (d, pad) in [
            (usize::MAX, 0),
            (1 << 63, 0),
            (1, usize::MAX / 2 + 1),
            (1, usize::MAX),
        ] {
            let e = conv2d_output_shape(&[1, 1, 28, 28], &[1, 1, 3, 3], p(d, pad)).unwrap_err();
            assert!(e.to_string().contains("conv2d"), "{e}");
        }
        let huge_kernel = conv2d_output_shape(&[1, 1, 28, 28], &[1, 1, usize::MAX, 3], p(2, 0));
        assert!(huge_kernel.is_err());
        assert_eq!(
            conv2d_output_shape(&[1, 1, 28, 28], &[1, 1, 3, 3], p(2, 1)).unwrap(),
            vec![1, 1, 26, 26]
        );
    }

    #[test]
    fn the_lectures_5x5_binary_image_and_x_filter() {
        // image and filter from the lecture; each output is the count of 1s under the
        // filter's five 1s, e.g. top-left: 1+1+1+1+0 on the corners and centre = 4
        let img = [
            1., 1., 1., 0., 0., 0., 1., 1., 1., 0., 0., 0., 1., 1., 1., 0., 0., 1., 1., 0., 0., 1.,
            1., 0., 0.,
        ];
        let f = [1., 0., 1., 0., 1., 0., 1., 0., 1.];
        let y = conv2d_forward(
            &t(&img, &[1, 1, 5, 5]),
            &t(&f, &[1, 1, 3, 3]),
            None,
            Conv2dParams::default(),
        );
        assert_eq!(y.shape(), &[1, 1, 3, 3]);
        assert_eq!(y.to_vec(), vec![4., 3., 4., 2., 4., 3., 2., 3., 4.]);
    }

    #[test]
    fn the_lectures_6x6_image_with_two_filters() {
        let img = [
            1., 0., 0., 0., 0., 1., 0., 1., 0., 0., 1., 0., 0., 0., 1., 1., 0., 0., //
            1., 0., 0., 0., 1., 0., 0., 1., 0., 0., 1., 0., 0., 0., 1., 0., 1., 0.,
        ];
        let diagonal = [1., -1., -1., -1., 1., -1., -1., -1., 1.];
        let vertical = [-1., 1., -1., -1., 1., -1., -1., 1., -1.];
        let w = t(&[diagonal, vertical].concat(), &[2, 1, 3, 3]);
        let x = t(&img, &[1, 1, 6, 6]);
        let y = conv2d_forward(&x, &w, None, Conv2dParams::default());
        assert_eq!(y.shape(), &[1, 2, 4, 4]);
        #[rustfmt::skip]
        let want = [
            3., -1., -3., -1.,  -3., 1., 0., -3.,  -3., -3., 0., 1.,  3., -2., -2., -1.,
            -1., -1., -1., -1.,  -1., -1., -2., 1.,  -1., -1., -2., 1.,  -1., 0., -4., 3.,
        ];
        assert_eq!(y.to_vec(), want.to_vec());
        let y2 = conv2d_forward(
            &x,
            &w,
            None,
            Conv2dParams {
                stride: (2, 2),
                ..Default::default()
            },
        );
        assert_eq!(y2.shape(), &[1, 2, 2, 2]);
        assert_eq!(y2.to_vec(), vec![3., -3., -3., 0., -1., -1., -1., -2.]);
    }

    #[test]
    fn the_unit_step_im2col_and_col2im_agree_with_the_general_ones() {
        let mut rng = Rng::seed(5);
        // (C, H, W, KH, KW, PH, PW): LeNet's two layers, padding wider than the kernel,
        // a kernel as wide as the padded input
        for &(c, h, w, kh, kw, ph, pw) in &[
            (1, 28, 28, 5, 5, 2, 2),
            (6, 14, 14, 5, 5, 0, 0),
            (2, 4, 5, 2, 3, 3, 4),
            (1, 3, 3, 5, 5, 1, 1),
            (3, 6, 2, 1, 1, 0, 0),
            // the `cnn` preset's layers; rows of more than sixteen columns
            (16, 14, 14, 3, 3, 1, 1),
            (2, 7, 7, 3, 3, 1, 1),
            (1, 9, 37, 3, 4, 1, 2),
            // as wide out as in, at most 8 (the AVX-512 run over whole planes), with fewer or
            // more rows out than in, a tall kernel, a one-column plane, 8 columns
            (2, 6, 5, 3, 3, 0, 1),
            (3, 4, 3, 5, 3, 3, 1),
            (1, 5, 1, 3, 1, 1, 0),
            (2, 5, 8, 3, 5, 1, 2),
            // enough positions that the masks do not fit the stack's table
            (1, 100, 8, 3, 3, 1, 1),
        ] {
            let p = Conv2dParams {
                padding: (ph, pw),
                ..Default::default()
            };
            let g = Geom::new(&[1, c, h, w], &[1, c, kh, kw], p).unwrap();
            let img: Vec<f64> = (0..c * h * w)
                .map(|_| rng.uniform_range(-1.0, 1.0))
                .collect();
            // rows packed (ld = HO·WO) and rows further apart, as in a chunk of images
            for ld in [g.positions(), g.positions() + 3] {
                let n = g.ckk() * ld;
                const UNTOUCHED: f64 = -7.25;
                let (mut a, mut b) = (vec![UNTOUCHED; n], vec![UNTOUCHED; n]);
                im2col_unit(&g, &img, &mut a, ld);
                im2col_general(&g, &img, &mut b, ld);
                assert_eq!(a, b, "im2col {c}×{h}×{w} k{kh}×{kw} p{ph},{pw} ld {ld}");
                #[cfg(target_arch = "x86_64")]
                if simd::usable::<f32>() {
                    let img32: Vec<f32> = img.iter().map(|&v| v as f32).collect();
                    let (mut a32, mut s32) = (vec![-7.25f32; n], vec![-7.25f32; n]);
                    im2col_unit(&g, &img32, &mut a32, ld);
                    simd::im2col_unit_f32(&g, &img32, &mut s32, ld);
                    assert_eq!(a32, s32, "AVX-512 im2col {c}×{h}×{w} k{kh}×{kw} p{ph},{pw}");
                    // bands of output rows, as one image split by rows unfolds them: every
                    // two rows, every three, and the two halves
                    let bands = (0..g.ho)
                        .flat_map(|r0| [(r0, (r0 + 2).min(g.ho)), (r0, (r0 + 3).min(g.ho))])
                        .chain([(0, g.ho / 2), (g.ho / 2, g.ho)])
                        .filter(|(r0, r1)| r0 < r1);
                    for (r0, r1) in bands {
                        let band = (r1 - r0) * g.wo;
                        let mut b32 = vec![-7.25f32; g.ckk() * band];
                        simd::im2col_rows_f32(&g, &img32, &mut b32, band, (r0, r1));
                        for (r, got) in b32.chunks_exact(band).enumerate() {
                            let want = &a32[r * ld + r0 * g.wo..][..band];
                            assert_eq!(got, want, "rows {r0}..{r1} of {c}×{h}×{w} k{kh}×{kw}");
                        }
                    }
                }
                // three images side by side, each column row written for all three at once
                // (the AVX-512 kernels) or image by image, with every row's tail untouched
                let (nb, img_len, pp) = (3, c * h * w, g.positions());
                let imgs: Vec<f64> = (0..nb * img_len)
                    .map(|_| rng.uniform_range(-1.0, 1.0))
                    .collect();
                let wide = nb * pp + ld - pp;
                let mut want = vec![UNTOUCHED; g.ckk() * wide];
                for k in 0..nb {
                    let img = &imgs[k * img_len..(k + 1) * img_len];
                    im2col_general(&g, img, &mut want[k * pp..], wide);
                }
                let mut got = vec![UNTOUCHED; g.ckk() * wide];
                im2col_images(&g, &imgs, nb, &mut got, wide);
                assert_eq!(got, want, "{nb} images {c}×{h}×{w} k{kh}×{kw} p{ph},{pw}");
                #[cfg(target_arch = "x86_64")]
                if simd::usable::<f32>() {
                    let i32s: Vec<f32> = imgs.iter().map(|&v| v as f32).collect();
                    let w32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
                    let mut s32 = vec![-7.25f32; g.ckk() * wide];
                    simd::im2col_images_f32(&g, &i32s, nb, &mut s32, wide);
                    assert_eq!(s32, w32, "AVX-512, {nb} images {c}×{h}×{w} k{kh}×{kw}");
                }
                let written = a.iter().filter(|v| **v != UNTOUCHED).count();
                assert!(ld > g.positions() || written == n, "every element written");
                let col: Vec<f64> = (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
                let (mut a, mut b) = (vec![0.5; c * h * w], vec![0.5; c * h * w]);
                col2im_unit(&g, &col, &mut a, ld);
                col2im_general(&g, &col, &mut b, ld);
                let close = a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-12);
                assert!(close, "col2im {c}×{h}×{w} k{kh}×{kw} p{ph},{pw} ld {ld}");
                #[cfg(target_arch = "x86_64")]
                if simd::usable::<f32>() {
                    let col32: Vec<f32> = col.iter().map(|&v| v as f32).collect();
                    let (mut g32, mut s32) = (vec![0.5f32; c * h * w], vec![0.5f32; c * h * w]);
                    col2im_general(&g, &col32, &mut g32, ld);
                    simd::col2im_unit_f32(&g, &col32, &mut s32, ld);
                    assert_eq!(g32, s32, "AVX-512 col2im {c}×{h}×{w} k{kh}×{kw} p{ph},{pw}");
                }
            }
        }
    }

    #[test]
    fn the_kept_unfolding_gives_the_same_gradients() {
        let mut rng = Rng::seed(8);
        let p = Conv2dParams {
            padding: (1, 2),
            stride: (2, 1),
            groups: 2,
            ..Default::default()
        };
        let x = Tensor::<f64>::rand_normal(&[5, 4, 7, 6], 0.0, 1.0, &mut rng);
        let w = Tensor::<f64>::rand_normal(&[6, 2, 3, 3], 0.0, 1.0, &mut rng);
        let b = Tensor::<f64>::rand_normal(&[6], 0.0, 1.0, &mut rng);
        let (y, kept) = try_conv2d_forward_keep(&x, &w, Some(&b), p).unwrap();
        assert_eq!(y.to_vec(), conv2d_forward(&x, &w, Some(&b), p).to_vec());
        let dy = Tensor::<f64>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
        let all = (true, true, true);
        let (a, b_) = (
            conv2d_backward(&x, &w, &dy, p, all),
            conv2d_backward_unfolded(&x, &w, &dy, p, all, &kept),
        );
        assert_eq!(a.0.unwrap().to_vec(), b_.0.unwrap().to_vec());
        assert_eq!(a.1.unwrap().to_vec(), b_.1.unwrap().to_vec());
        assert_eq!(a.2.unwrap().to_vec(), b_.2.unwrap().to_vec());
        // columns kept for other shapes are refused
        let other = Tensor::<f64>::zeros(&[6, 2, 3, 2]);
        let refused = std::panic::catch_unwind(|| {
            conv2d_backward_unfolded(&x, &other, &dy, p, all, &kept);
        });
        assert!(refused.is_err());
    }

    #[test]
    fn chunks_of_images_give_what_the_images_give_one_by_one() {
        let mut rng = Rng::seed(10);
        // 25 positions: chunks of 8 images (at most), so 37 images make four full chunks and
        // a partial one
        let p = Conv2dParams {
            padding: (1, 1),
            ..Default::default()
        };
        let x = Tensor::<f64>::rand_normal(&[37, 3, 5, 5], 0.0, 1.0, &mut rng);
        let w = Tensor::<f64>::rand_normal(&[4, 3, 3, 3], 0.0, 1.0, &mut rng);
        let b = Tensor::<f64>::rand_normal(&[4], 0.0, 1.0, &mut rng);
        let g = Geom::new(x.shape(), w.shape(), p).unwrap();
        assert_eq!(
            (g.chunk_images(), 37usize.div_ceil(g.chunk_images())),
            (8, 5)
        );
        let (y, kept) = try_conv2d_forward_keep(&x, &w, Some(&b), p).unwrap();
        assert!(y.allclose(&conv2d_direct(&x, &w, Some(&b), p), 1e-12, 1e-12));
        assert_eq!(y.to_vec(), conv2d_forward(&x, &w, Some(&b), p).to_vec());
        let dy = Tensor::<f64>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
        let all = (true, true, true);
        let batch = conv2d_backward_unfolded(&x, &w, &dy, p, all, &kept);
        let unkept = conv2d_backward(&x, &w, &dy, p, all);
        // image by image: dx side by side, dw and db summed
        let (mut dx, mut dw, mut db) = (Vec::new(), vec![0.0; w.numel()], vec![0.0; 4]);
        for i in 0..37 {
            let (xi, dyi) = (x.narrow(0, i, 1), dy.narrow(0, i, 1));
            let (a, bw, bb) = conv2d_backward(&xi, &w, &dyi, p, all);
            dx.extend(a.unwrap().to_vec());
            dw.iter_mut()
                .zip(bw.unwrap().to_vec())
                .for_each(|(s, v)| *s += v);
            db.iter_mut()
                .zip(bb.unwrap().to_vec())
                .for_each(|(s, v)| *s += v);
        }
        for (name, got) in [("batch", &batch), ("unkept", &unkept)] {
            let close = |t: &Option<Tensor<f64>>, want: &[f64]| {
                let t = t.as_ref().unwrap().to_vec();
                t.len() == want.len() && t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-10)
            };
            assert!(close(&got.0, &dx), "{name} dx");
            assert!(close(&got.1, &dw), "{name} dw");
            assert!(close(&got.2, &db), "{name} db");
        }
        // only some gradients asked for
        let only_dw = conv2d_backward(&x, &w, &dy, p, (false, true, false));
        assert!(only_dw.0.is_none() && only_dw.2.is_none());
        assert_eq!(only_dw.1.unwrap().to_vec(), unkept.1.unwrap().to_vec());
    }

    #[test]
    fn a_reused_buffer_is_overwritten_in_full() {
        let mut rng = Rng::seed(9);
        let p = Conv2dParams {
            padding: (2, 2),
            ..Default::default()
        };
        let x = Tensor::<f64>::rand_normal(&[3, 2, 6, 5], 0.0, 1.0, &mut rng);
        let w = Tensor::<f64>::rand_normal(&[4, 2, 3, 3], 0.0, 1.0, &mut rng);
        // kept alive to the end, so its buffer is not the one reused below
        let (_, first) = try_conv2d_forward_keep(&x, &w, None, p).unwrap();
        // a stale, larger buffer full of NaN waits in the pool; the next forward pass takes
        // the smallest that fits, which is this one unless a parallel test took it first
        give_back(vec![f64::NAN; first.cols.len() + 7]);
        let (_, kept) = try_conv2d_forward_keep(&x, &w, None, p).unwrap();
        assert_eq!(kept.cols.len(), first.cols.len());
        assert_eq!(kept.cols, first.cols);
    }

    #[test]
    fn im2col_gemm_agrees_with_the_direct_kernel() {
        let mut rng = Rng::seed(3);
        let cases = [
            ([2, 3, 9, 8], [4, 3, 3, 3], Conv2dParams::default()),
            (
                [3, 4, 10, 11],
                [6, 2, 3, 2],
                Conv2dParams {
                    stride: (2, 1),
                    padding: (1, 2),
                    dilation: (2, 1),
                    groups: 2,
                },
            ),
            (
                [5, 1, 7, 7],
                [2, 1, 5, 5],
                Conv2dParams {
                    padding: (2, 2),
                    ..Default::default()
                },
            ),
            // padding wider than the one output column (found by the spec fuzz target: the
            // first kernel column's span started past the row's end)
            (
                [2, 5, 3, 3],
                [4, 5, 4, 4],
                Conv2dParams {
                    padding: (2, 2),
                    dilation: (2, 2),
                    ..Default::default()
                },
            ),
        ];
        for (xs, ws, p) in cases {
            let x = Tensor::<f64>::rand_normal(&xs, 0.0, 1.0, &mut rng);
            let w = Tensor::<f64>::rand_normal(&ws, 0.0, 1.0, &mut rng);
            let b = Tensor::<f64>::rand_normal(&[ws[0]], 0.0, 1.0, &mut rng);
            let fast = conv2d_forward(&x, &w, Some(&b), p);
            let slow = conv2d_direct(&x, &w, Some(&b), p);
            assert!(fast.allclose(&slow, 1e-12, 1e-12), "{xs:?} {ws:?} {p:?}");
        }
    }

    #[test]
    fn the_fused_relu_is_relu_of_the_convolution() {
        let mut rng = Rng::seed(13);
        let p = Conv2dParams {
            padding: (1, 1),
            ..Default::default()
        };
        // one image (the serial path) and several
        for n in [1, 3] {
            let x = Tensor::<f64>::rand_normal(&[n, 2, 5, 6], 0.0, 1.0, &mut rng);
            let w = Tensor::<f64>::rand_normal(&[4, 2, 3, 3], 0.0, 1.0, &mut rng);
            let b = Tensor::<f64>::rand_normal(&[4], 0.0, 1.0, &mut rng);
            for bias in [None, Some(&b)] {
                let fused = try_conv2d_forward_relu(&x, &w, bias, p, true).unwrap();
                let plain = conv2d_direct(&x, &w, bias, p).relu();
                assert!(
                    fused.allclose(&plain, 1e-12, 1e-12),
                    "n {n}, bias {}",
                    bias.is_some()
                );
                assert!(fused.to_vec().iter().any(|&v| v == 0.0));
                let no_relu = try_conv2d_forward_relu(&x, &w, bias, p, false).unwrap();
                assert!(no_relu.allclose(&conv2d_direct(&x, &w, bias, p), 1e-12, 1e-12));
            }
        }
    }

    #[test]
    fn one_image_split_with_the_partner_gives_the_direct_result() {
        // large enough for `team::join` (an odd channel count: uneven halves)
        let mut rng = Rng::seed(14);
        let p = Conv2dParams {
            padding: (1, 1),
            ..Default::default()
        };
        let x = Tensor::<f64>::rand_normal(&[1, 16, 14, 14], 0.0, 1.0, &mut rng);
        let w = Tensor::<f64>::rand_normal(&[33, 16, 3, 3], 0.0, 1.0, &mut rng);
        let b = Tensor::<f64>::rand_normal(&[33], 0.0, 1.0, &mut rng);
        assert!(33 * 16 * 9 * 14 * 14 >= team::MIN_WORK);
        for _ in 0..20 {
            for relu in [false, true] {
                let fast =
                    team::scope(|| try_conv2d_forward_relu(&x, &w, Some(&b), p, relu).unwrap());
                let mut slow = conv2d_direct(&x, &w, Some(&b), p);
                if relu {
                    slow = slow.relu();
                }
                assert!(fast.allclose(&slow, 1e-12, 1e-12), "relu {relu}");
            }
        }
    }

    /// The largest difference between `a` (f32) and `b` (f64), relative to `b`'s largest
    /// magnitude.
    fn rel_err(a: &Tensor<f32>, b: &Tensor<f64>) -> f64 {
        assert_eq!(a.shape(), b.shape());
        let scale = b.to_vec().iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let diff = a
            .cast::<f64>()
            .to_vec()
            .iter()
            .zip(b.to_vec())
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        diff / scale
    }

    #[test]
    fn the_implicit_kernel_writes_every_element_of_its_chunk_and_nothing_past_it() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            let mut rng = Rng::seed(43);
            let same = Conv2dParams {
                padding: (1, 1),
                ..Default::default()
            };
            // (images, channels, plane, output channels): runs crossing from image to image,
            // a last run cut short, one image, rows off the block of eight
            for (nb, c, h, o) in [
                (3usize, 5usize, 7usize, 11usize),
                (4, 2, 5, 8),
                (1, 3, 6, 3),
            ] {
                let x = Tensor::<f64>::rand_normal(&[nb, c, h, h], 0.0, 1.0, &mut rng);
                let w = Tensor::<f64>::rand_normal(&[o, c, 3, 3], 0.0, 1.0, &mut rng);
                let g = Geom::new(x.shape(), w.shape(), same).unwrap();
                let iw = ImplicitWeights::new(&g, w.cast::<f32>().data(), false).unwrap();
                let (pp, xs) = (h * h, x.cast::<f32>());
                // the chunk channel by channel, each channel's planes side by side
                let mut src = vec![0.0f32; c * nb * pp];
                for ci in 0..c {
                    for k in 0..nb {
                        src[(ci * nb + k) * pp..][..pp]
                            .copy_from_slice(&xs.data()[(k * c + ci) * pp..][..pp]);
                    }
                }
                let want = conv2d_direct(&x, &w, None, same).map(|v| v.max(0.0));
                let len = nb * o * pp;
                let mut y = vec![MaybeUninit::new(f32::NAN); len + 16];
                iw.chunk(&src, (c, nb), o, &mut y[..len], (None, true));
                // SAFETY: every element was initialised (to NaN) before the call.
                let y: Vec<f32> = y.iter().map(|v| unsafe { v.assume_init() }).collect();
                assert!(y[len..].iter().all(|v| v.is_nan()), "written past the end");
                assert!(
                    y[..len].iter().all(|v| v.is_finite()),
                    "an element left unwritten"
                );
                let got = Tensor::from_parts(y[..len].to_vec(), vec![nb, o, h, h]);
                let e = rel_err(&got, &want);
                assert!(e < 1e-5, "{nb} {c} {h} {o}: {e}");
            }
        }
    }

    #[test]
    fn chunks_of_images_on_the_implicit_kernel_match_f64() {
        // (batch, input [C, H, W], weight [O, KH, KW], padding): the `cnn` preset's second and
        // third layers (chunks of four and eight images, runs of sixteen positions crossing
        // from image to image; a last chunk of three images, and of one, which the forward
        // pass runs on the one-image path), a 4×4 plane (a run is one image), odd sizes and
        // channel counts off the block of eight, 5×5, 1×1 and a 3×1 kernel
        type Case = (usize, [usize; 3], [usize; 3], (usize, usize));
        let cases: &[Case] = &[
            (11, [16, 14, 14], [32, 3, 3], (1, 1)),
            (17, [32, 7, 7], [64, 3, 3], (1, 1)),
            (5, [3, 4, 4], [5, 3, 3], (1, 1)),
            (7, [2, 5, 7], [11, 3, 3], (1, 1)),
            (3, [9, 6, 6], [3, 5, 5], (2, 2)),
            (4, [6, 5, 5], [10, 1, 1], (0, 0)),
            (6, [4, 6, 5], [7, 3, 1], (1, 0)),
        ];
        let mut rng = Rng::seed(41);
        for &(n, [c, h, w], [o, kh, kw], padding) in cases {
            let p = Conv2dParams {
                padding,
                ..Default::default()
            };
            #[cfg(target_arch = "x86_64")]
            let has = std::arch::is_x86_feature_detected!("avx512f");
            #[cfg(not(target_arch = "x86_64"))]
            let has = false;
            assert!(
                runs_implicit::<f32>(&[n, c, h, w], &[o, c, kh, kw], p) == has,
                "{n} {c} {h} {w} {o} {kh} {kw}"
            );
            let x = Tensor::<f64>::rand_normal(&[n, c, h, w], 0.0, 1.0, &mut rng);
            let wt = Tensor::<f64>::rand_normal(&[o, c, kh, kw], 0.0, 1.0, &mut rng);
            let b = Tensor::<f64>::rand_normal(&[o], 0.0, 1.0, &mut rng);
            let dy = Tensor::<f64>::rand_normal(&[n, o, h, w], 0.0, 1.0, &mut rng);
            let (x32, w32, b32, dy32) = (
                x.cast::<f32>(),
                wt.cast::<f32>(),
                b.cast::<f32>(),
                dy.cast::<f32>(),
            );
            let want = conv2d_direct(&x, &wt, Some(&b), p);
            let got = conv2d_forward(&x32, &w32, Some(&b32), p);
            let e = rel_err(&got, &want);
            assert!(e < 1e-5, "forward {n} {c} {h} {w} {o} {kh} {kw}: {e}");
            let relu = try_conv2d_forward_relu(&x32, &w32, Some(&b32), p, true).unwrap();
            let want_relu = want.map(|v| v.max(0.0));
            let e = rel_err(&relu, &want_relu);
            assert!(e < 1e-5, "relu {n} {c} {h} {w} {o} {kh} {kw}: {e}");
            let (dx_want, _, _) = conv2d_backward(&x, &wt, &dy, p, (true, false, false));
            let (dx, dw, _) = conv2d_backward(&x32, &w32, &dy32, p, (true, true, false));
            let e = rel_err(&dx.unwrap(), &dx_want.unwrap());
            assert!(e < 1e-5, "dx {n} {c} {h} {w} {o} {kh} {kw}: {e}");
            assert_eq!(dw.unwrap().shape(), [o, c, kh, kw]);
        }
    }

    #[test]
    fn one_channel_f32_convolutions_on_the_direct_kernels_match_f64() {
        // (input, weight, padding): LeNet's and the `cnn` preset's first layers, two-vector
        // and one-vector rows, channel counts that leave remainders in the kernels' blocks,
        // odd kernels and paddings, a 1×1 kernel, rows of 31 and (not direct) 33 columns
        let cases = [
            ([3, 1, 28, 28], [6, 1, 5, 5], (2, 2)),
            ([2, 1, 28, 28], [16, 1, 3, 3], (1, 1)),
            ([17, 1, 9, 9], [9, 1, 3, 3], (0, 0)),
            ([2, 1, 6, 7], [3, 1, 2, 4], (3, 1)),
            ([1, 1, 32, 32], [1, 1, 1, 1], (0, 0)),
            ([2, 1, 5, 31], [17, 1, 3, 3], (1, 1)),
            ([1, 1, 3, 2], [2, 1, 5, 5], (2, 2)),
            // rows of 1, 16 and 17 columns; padding as wide as the kernel (whole output
            // columns read only padding)
            ([2, 1, 5, 1], [3, 1, 3, 1], (1, 0)),
            ([2, 1, 6, 18], [4, 1, 3, 3], (1, 0)),
            ([2, 1, 6, 17], [4, 1, 3, 3], (1, 1)),
            ([2, 1, 4, 5], [3, 1, 2, 3], (0, 3)),
            ([2, 1, 4, 33], [2, 1, 3, 3], (1, 1)),
            // 10 and 16 taps: two blocks of taps in the weight gradient
            ([2, 1, 9, 12], [5, 1, 2, 5], (1, 2)),
            ([2, 1, 8, 8], [3, 1, 4, 4], (2, 2)),
        ];
        let mut rng = Rng::seed(21);
        for (xs, ws, padding) in cases {
            let p = Conv2dParams {
                padding,
                ..Default::default()
            };
            let g = Geom::new(&xs, &ws, p).unwrap();
            let expect_direct = g.wo <= 32 && cfg!(target_arch = "x86_64") && {
                #[cfg(target_arch = "x86_64")]
                let has = std::arch::is_x86_feature_detected!("avx512f");
                #[cfg(not(target_arch = "x86_64"))]
                let has = false;
                has
            };
            assert_eq!(direct_applies::<f32>(&g), expect_direct, "{xs:?} {ws:?}");
            assert!(!direct_applies::<f64>(&g));
            let x = Tensor::<f32>::rand_normal(&xs, 0.0, 1.0, &mut rng);
            let w = Tensor::<f32>::rand_normal(&ws, 0.0, 1.0, &mut rng);
            let b = Tensor::<f32>::rand_normal(&[ws[0]], 0.0, 1.0, &mut rng);
            let (x64, w64, b64) = (x.cast::<f64>(), w.cast::<f64>(), b.cast::<f64>());
            let want = conv2d_direct(&x64, &w64, Some(&b64), p);
            let dy = Tensor::<f32>::rand_normal(want.shape(), 0.0, 1.0, &mut rng);
            let case = format!("{xs:?} {ws:?} {padding:?}");
            // the batch, its chunks, and the ReLU
            let y = conv2d_forward(&x, &w, Some(&b), p);
            assert!(rel_err(&y, &want) < 1e-5, "forward {case}");
            let y = try_conv2d_forward_relu(&x, &w, Some(&b), p, true).unwrap();
            assert!(rel_err(&y, &want.relu()) < 1e-5, "relu {case}");
            // one image: alone, split with the partner, and pooled
            let one = x.narrow(0, 0, 1);
            let want_one = conv2d_direct(&one.cast::<f64>(), &w64, Some(&b64), p);
            for _ in 0..5 {
                let y =
                    team::scope(|| try_conv2d_forward_relu(&one, &w, Some(&b), p, false)).unwrap();
                assert!(rel_err(&y, &want_one) < 1e-5, "one image {case}");
            }
            let pool = Pool2dParams::square(2);
            if g.ho >= 2 && g.wo >= 2 {
                let y = team::scope(|| {
                    try_conv2d_forward_relu_maxpool(&one, &w, Some(&b), p, true, pool)
                })
                .unwrap();
                let (want_pool, _) = max_pool2d_forward(&want_one.relu(), pool).unwrap();
                assert!(rel_err(&y, &want_pool) < 1e-5, "pooled {case}");
            }
            // the weight gradient alone (a first layer) and with the input's
            let dy64 = dy.cast::<f64>();
            let (dx_want, dw_want, db_want) =
                conv2d_backward(&x64, &w64, &dy64, p, (true, true, true));
            let (dx, dw, db) = conv2d_backward(&x, &w, &dy, p, (false, true, true));
            assert!(dx.is_none());
            assert!(
                rel_err(&dw.unwrap(), &dw_want.clone().unwrap()) < 1e-5,
                "dw {case}"
            );
            assert!(rel_err(&db.unwrap(), &db_want.unwrap()) < 1e-5, "db {case}");
            let (dx, dw, _) = conv2d_backward(&x, &w, &dy, p, (true, true, false));
            assert!(
                rel_err(&dw.unwrap(), &dw_want.unwrap()) < 1e-5,
                "dw with dx {case}"
            );
            assert!(rel_err(&dx.unwrap(), &dx_want.unwrap()) < 1e-5, "dx {case}");
            // the kernels themselves write every element: outputs start as NaN
            #[cfg(target_arch = "x86_64")]
            if expect_direct {
                let nan = MaybeUninit::new(f32::NAN);
                let mut y = vec![nan; g.o * g.positions()];
                simd::direct_forward_f32(&g, &x.data()[..g.h * g.w], w.data(), &mut y);
                // SAFETY: every element was initialised (to NaN, then maybe overwritten).
                let y: Vec<f32> = y.iter().map(|v| unsafe { v.assume_init() }).collect();
                let want = conv2d_direct(&one.cast::<f64>(), &w64, None, p);
                let y = Tensor::from_vec(y, want.shape());
                assert!(rel_err(&y, &want) < 1e-5, "kernel {case}");
                let mut dw_t = vec![nan; g.o * g.ckk()];
                simd::direct_weight_grad_f32(&g, x.data(), dy.data(), g.n, &mut dw_t);
                // SAFETY: as above.
                let all = dw_t.iter().all(|v| unsafe { v.assume_init() }.is_finite());
                assert!(all, "kernel dw {case}");
            }
        }
    }

    #[test]
    fn one_image_of_several_channels_on_the_plane_kernel_matches_f64() {
        // (input, weight, padding, whether the plane kernel takes it): the `cnn` preset's
        // second and third layers, output channel counts that leave 1–3 over a block of four,
        // bands of 1–4 runs of sixteen (and a partial one), a 5×5 kernel, fewer rows out than
        // in, one-column planes, padding taller than the kernel (whole rows of padding), one
        // row of taps, the largest plane it takes and the first it does not, the largest
        // input and one more channel, a 1×1 kernel, one input channel (the direct kernel's)
        // and a narrower output (not "same")
        let cases = [
            ([1, 16, 14, 14], [32, 16, 3, 3], (1, 1), true),
            ([1, 32, 7, 7], [64, 32, 3, 3], (1, 1), true),
            ([1, 3, 5, 5], [7, 3, 3, 3], (1, 1), true),
            ([1, 2, 9, 9], [6, 2, 3, 3], (1, 1), true),
            ([1, 4, 11, 13], [5, 4, 5, 5], (2, 2), true),
            ([1, 3, 8, 6], [2, 3, 3, 3], (0, 1), true),
            ([1, 5, 10, 1], [3, 5, 3, 1], (1, 0), true),
            ([1, 3, 4, 6], [5, 3, 1, 3], (2, 1), true),
            ([1, 2, 16, 16], [3, 2, 3, 3], (1, 1), true),
            ([1, 2, 17, 16], [3, 2, 3, 3], (1, 1), false),
            ([1, 128, 8, 8], [6, 128, 3, 3], (1, 1), true),
            ([1, 129, 8, 8], [6, 129, 3, 3], (1, 1), false),
            ([1, 8, 6, 7], [5, 8, 1, 1], (0, 0), false),
            ([1, 1, 7, 7], [4, 1, 3, 3], (1, 1), false),
            ([1, 3, 7, 7], [4, 3, 3, 3], (0, 0), false),
        ];
        let avx512 = cfg!(target_arch = "x86_64") && {
            #[cfg(target_arch = "x86_64")]
            let has = std::arch::is_x86_feature_detected!("avx512f");
            #[cfg(not(target_arch = "x86_64"))]
            let has = false;
            has
        };
        let mut rng = Rng::seed(23);
        for (xs, ws, padding, takes) in cases {
            let p = Conv2dParams {
                padding,
                ..Default::default()
            };
            let g = Geom::new(&xs, &ws, p).unwrap();
            let case = format!("{xs:?} {ws:?} {padding:?}");
            assert_eq!(plane_direct::<f32>(&g), takes && avx512, "{case}");
            assert!(!plane_direct::<f64>(&g));
            let x = Tensor::<f32>::rand_normal(&xs, 0.0, 1.0, &mut rng);
            let w = Tensor::<f32>::rand_normal(&ws, 0.0, 0.5, &mut rng);
            let b = Tensor::<f32>::rand_normal(&[ws[0]], 0.0, 1.0, &mut rng);
            let (x64, w64, b64) = (x.cast::<f64>(), w.cast::<f64>(), b.cast::<f64>());
            let want = conv2d_direct(&x64, &w64, Some(&b64), p);
            let bare = conv2d_direct(&x64, &w64, None, p);
            // alone, split with the partner (several times, as the partner may be late),
            // with and without the bias and the ReLU, and pooled
            for _ in 0..3 {
                let y = team::scope(|| try_conv2d_forward_relu(&x, &w, Some(&b), p, false));
                assert!(rel_err(&y.unwrap(), &want) < 1e-5, "split {case}");
                let y = team::scope(|| try_conv2d_forward_relu(&x, &w, None, p, true));
                assert!(
                    rel_err(&y.unwrap(), &bare.relu()) < 1e-5,
                    "split relu {case}"
                );
            }
            let y = try_conv2d_forward_relu(&x, &w, Some(&b), p, true).unwrap();
            assert!(rel_err(&y, &want.relu()) < 1e-5, "alone {case}");
            let pool = Pool2dParams::square(2);
            if g.ho >= 2 && g.wo >= 2 {
                for (bias, relu) in [(Some(&b), true), (None, false)] {
                    let y = team::scope(|| {
                        try_conv2d_forward_relu_maxpool(&x, &w, bias, p, relu, pool)
                    })
                    .unwrap();
                    let before = if relu { want.relu() } else { bare.clone() };
                    let (want_pool, _) = max_pool2d_forward(&before, pool).unwrap();
                    assert!(rel_err(&y, &want_pool) < 1e-5, "pooled {case} {relu}");
                }
            }
            // a batch whose last chunk is one image, which takes the plane kernel on a worker
            let five = Tensor::<f32>::rand_normal(&[5, xs[1], xs[2], xs[3]], 0.0, 1.0, &mut rng);
            let want5 = conv2d_direct(&five.cast::<f64>(), &w64, Some(&b64), p);
            let y = try_conv2d_forward_relu(&five, &w, Some(&b), p, false).unwrap();
            assert!(rel_err(&y, &want5) < 1e-5, "five images {case}");
            // the kernel itself, on bands of rows and on the upper half of the output
            // channels (as the partner's half is), writes every element of its output and
            // nothing past it (outputs start as NaN, the tail must stay NaN)
            #[cfg(target_arch = "x86_64")]
            if takes && avx512 {
                let nan = MaybeUninit::new(f32::NAN);
                let bands = [(0, g.ho), (0, 1), (g.ho / 2, g.ho), (g.ho - 1, g.ho)];
                let ckk = g.ckk();
                for (r0, r1) in bands.into_iter().filter(|(r0, r1)| r0 < r1) {
                    let n = (r1 - r0) * g.wo;
                    for (o0, bias, relu) in [(0, None, false), (g.o / 2, Some(b.data()), true)] {
                        let rows = g.o - o0;
                        let mut y = vec![nan; rows * n + 17];
                        let (w_rows, bias) = (&w.data()[o0 * ckk..], bias.map(|b| &b[o0..]));
                        let out = &mut y[..rows * n];
                        simd::plane_forward_f32(&g, x.data(), w_rows, out, (r0, r1), (bias, relu));
                        // SAFETY: every element was initialised (to NaN, then maybe
                        // overwritten).
                        let y: Vec<f32> = y.iter().map(|v| unsafe { v.assume_init() }).collect();
                        assert!(
                            y[rows * n..].iter().all(|v| v.is_nan()),
                            "past the end {case}"
                        );
                        let full = if bias.is_some() {
                            want.relu()
                        } else {
                            bare.clone()
                        };
                        for (o, got) in y[..rows * n].chunks_exact(n).enumerate() {
                            let exp = &full.data()[(o0 + o) * g.positions() + r0 * g.wo..][..n];
                            // f32 sums of C·KH·KW terms: a rounding bound that grows
                            // with them (a wrong tap or channel is off by far more)
                            let tol = (2e-7 * ckk as f64).max(1e-5);
                            for (a, e) in got.iter().zip(exp) {
                                let ok = (*a as f64 - e).abs() <= tol * (1.0 + e.abs());
                                assert!(ok, "kernel rows {r0}..{r1} {case}: {a} against {e}");
                            }
                        }
                    }
                }
            }
        }
        // where the partner runs (two threads or more), the `cnn` preset's layers above were
        // split with it: both are large enough
        if team::scope(team::splits) {
            for (xs, ws) in [
                ([1, 16, 14, 14], [32, 16, 3, 3]),
                ([1, 32, 7, 7], [64, 32, 3, 3]),
            ] {
                let p = Conv2dParams {
                    padding: (1, 1),
                    ..Default::default()
                };
                let g = Geom::new(&xs, &ws, p).unwrap();
                assert!(g.o * g.ckk() * g.positions() >= team::MIN_WORK);
            }
        }
    }

    #[test]
    fn a_pooled_batch_gives_the_bits_of_the_convolution_then_the_pooling() {
        // Batches pool each chunk of images from a buffer of its own: the same values as the
        // whole batch's convolution followed by max pooling, to the bit, for the chunk sizes
        // of the `cnn` preset's three layers (1, 4 and 8 images), LeNet-5's 5×5
        // layers, a last chunk shorter than the others, a pooling that drops a row and a
        // column (7×7 → 3×3) and a window that overlaps (3×3, stride 2); f32 and f64.
        fn check<E: Element>(rng: &mut Rng) {
            let cases: [(&[usize], &[usize], usize, Pool2dParams); 6] = [
                (&[3, 1, 28, 28], &[16, 1, 3, 3], 1, Pool2dParams::square(2)),
                (
                    &[9, 16, 14, 14],
                    &[32, 16, 3, 3],
                    1,
                    Pool2dParams::square(2),
                ),
                (&[37, 32, 7, 7], &[64, 32, 3, 3], 1, Pool2dParams::square(2)),
                (&[5, 1, 28, 28], &[6, 1, 5, 5], 2, Pool2dParams::square(2)),
                (&[6, 6, 14, 14], &[16, 6, 5, 5], 0, Pool2dParams::square(2)),
                (
                    &[7, 3, 12, 12],
                    &[8, 3, 3, 3],
                    1,
                    Pool2dParams {
                        kernel: (3, 3),
                        stride: (2, 2),
                        ..Pool2dParams::square(2)
                    },
                ),
            ];
            for (xs, ws, pad, pool) in cases {
                let p = Conv2dParams {
                    padding: (pad, pad),
                    ..Default::default()
                };
                let x = Tensor::<f64>::rand_normal(xs, 0.0, 1.0, rng).cast::<E>();
                let w = Tensor::<f64>::rand_normal(ws, 0.0, 0.5, rng).cast::<E>();
                let b = Tensor::<f64>::rand_normal(&[ws[0]], 0.0, 1.0, rng).cast::<E>();
                for (bias, relu) in [(Some(&b), true), (None, false), (Some(&b), false)] {
                    let y = try_conv2d_forward_relu_maxpool(&x, &w, bias, p, relu, pool).unwrap();
                    let conv = try_conv2d_forward_relu(&x, &w, bias, p, relu).unwrap();
                    let (want, _) = max_pool2d_forward(&conv, pool).unwrap();
                    assert_eq!(y.shape(), want.shape(), "{xs:?} {ws:?}");
                    let same = y
                        .data()
                        .iter()
                        .zip(want.data())
                        .all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits());
                    assert!(same, "{xs:?} {ws:?} bias {} relu {relu}", bias.is_some());
                }
            }
        }
        let mut rng = Rng::seed(29);
        check::<f32>(&mut rng);
        check::<f64>(&mut rng);
        // no output channels: an empty output of the right shape, batch or one image
        let w0 = Tensor::<f32>::from_vec(Vec::new(), &[0, 3, 3, 3]);
        let p = Conv2dParams {
            padding: (1, 1),
            ..Default::default()
        };
        for n in [1, 4] {
            let x = Tensor::<f32>::rand_normal(&[n, 3, 8, 8], 0.0, 1.0, &mut rng);
            let pool = Pool2dParams::square(2);
            let y = try_conv2d_forward_relu_maxpool(&x, &w0, None, p, true, pool).unwrap();
            assert_eq!(y.shape(), [n, 0, 4, 4]);
            let y = try_conv2d_forward_relu(&x, &w0, None, p, true).unwrap();
            assert_eq!(y.shape(), [n, 0, 8, 8]);
        }
    }

    #[test]
    fn one_image_pooled_in_bands_of_rows_matches_f64() {
        // (input, weight, conv padding, pooling): the `cnn` preset's second layer (now split
        // by channels, on the plane kernel), and for the split by rows planes of more than
        // 256 positions or narrower out than in: odd and even pooled heights, a conv row the
        // pooling drops, 3×3 windows; and windows that do not tile (split by channels)
        let square = Pool2dParams::square;
        let overlapping = Pool2dParams {
            kernel: (2, 2),
            stride: (1, 1),
            padding: (0, 0),
        };
        let cases = [
            ([1, 16, 14, 14], [32, 16, 3, 3], (1, 1), square(2)),
            ([1, 8, 18, 18], [12, 8, 3, 3], (1, 1), square(2)),
            ([1, 8, 16, 18], [12, 8, 3, 3], (1, 1), square(2)),
            ([1, 8, 23, 13], [12, 8, 3, 3], (1, 1), square(2)),
            ([1, 6, 20, 20], [10, 6, 5, 5], (0, 0), square(3)),
            ([1, 8, 12, 12], [12, 8, 3, 3], (1, 1), overlapping),
        ];
        let mut rng = Rng::seed(22);
        for (xs, ws, padding, pool) in cases {
            let p = Conv2dParams {
                padding,
                ..Default::default()
            };
            let g = Geom::new(&xs, &ws, p).unwrap();
            assert!(g.o * g.ckk() * g.positions() >= team::MIN_WORK);
            #[cfg(target_arch = "x86_64")]
            assert_eq!(
                pooled_rows_split::<f32>(&g, pool),
                pool.kernel == pool.stride && simd::usable::<f32>() && !plane_direct::<f32>(&g)
            );
            let x = Tensor::<f32>::rand_normal(&xs, 0.0, 1.0, &mut rng);
            let w = Tensor::<f32>::rand_normal(&ws, 0.0, 1.0, &mut rng);
            let b = Tensor::<f32>::rand_normal(&[ws[0]], 0.0, 1.0, &mut rng);
            let conv = conv2d_direct(&x.cast::<f64>(), &w.cast::<f64>(), Some(&b.cast()), p);
            for relu in [false, true] {
                let before = if relu { conv.relu() } else { conv.clone() };
                let (want, _) = max_pool2d_forward(&before, pool).unwrap();
                for _ in 0..10 {
                    let y = team::scope(|| {
                        try_conv2d_forward_relu_maxpool(&x, &w, Some(&b), p, relu, pool)
                    })
                    .unwrap();
                    assert!(
                        rel_err(&y, &want) < 1e-5,
                        "{xs:?} {ws:?} {pool:?} relu {relu}"
                    );
                }
            }
            // bands of rows without the partner (any machine with AVX-512F)
            #[cfg(target_arch = "x86_64")]
            if simd::usable::<f32>() {
                let mut bands = Vec::new();
                for (r0, r1) in [(0, g.ho / 2), (g.ho / 2, g.ho - 1), (g.ho - 1, g.ho)] {
                    with_scratch(|s: &mut Scratch<f32>| {
                        let xw = (x.data(), w.data(), Some(b.data()));
                        image_rows(&g, s, xw, false, (r0, r1));
                        let n = (r1 - r0) * g.wo;
                        bands.push(
                            s.tmp
                                .chunks_exact(n)
                                .map(<[f32]>::to_vec)
                                .collect::<Vec<_>>(),
                        );
                    });
                }
                let joined: Vec<f32> = (0..g.o)
                    .flat_map(|o| bands.iter().flat_map(move |band| band[o].clone()))
                    .collect();
                let joined = Tensor::from_vec(joined, conv.shape());
                assert!(rel_err(&joined, &conv) < 1e-5, "bands {xs:?} {ws:?}");
            }
        }
        // where the partner runs, the loop above went through the banded split
        #[cfg(target_arch = "x86_64")]
        if team::scope(team::splits) {
            let p = Conv2dParams {
                padding: (1, 1),
                ..Default::default()
            };
            let g = Geom::new(&[1, 8, 18, 18], &[12, 8, 3, 3], p).unwrap();
            assert_eq!(
                pooled_rows_split::<f32>(&g, square(2)),
                simd::usable::<f32>()
            );
        }
    }

    #[test]
    fn shape_errors_name_conv2d_and_both_shapes() {
        let x = Tensor::<f32>::zeros(&[1, 3, 8, 8]);
        let w = Tensor::<f32>::zeros(&[4, 2, 3, 3]);
        let e = try_conv2d_forward(&x, &w, None, Conv2dParams::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("conv2d") && e.contains("[1, 3, 8, 8]") && e.contains("[4, 2, 3, 3]"),
            "{e}"
        );
        let big = Tensor::<f32>::zeros(&[4, 3, 9, 9]);
        assert!(try_conv2d_forward(&x, &big, None, Conv2dParams::default()).is_err());
    }
}
