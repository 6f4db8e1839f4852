//! Fused per-channel normalization kernels for batch normalization.
//!
//! Shapes: `x: [N, C, H, W]` (a `[N, C]` input is viewed as `[N, C, 1, 1]`), per-channel
//! vectors `[C]`. Statistics run over the `M = N·H·W` values of each channel.
//!
//! Forward (training): `μ_c`, biased `σ²_c`, `x̂ = (x − μ_c)/√(σ²_c + ε)`, `y = γ_c x̂ + β_c`.
//! Backward: `dβ_c = Σ dy`, `dγ_c = Σ dy·x̂`,
//! `dx = γ_c/(M·√(σ²_c + ε)) · (M·dy − Σ dy − x̂·Σ dy·x̂)`.
//! Evaluation uses the plain per-channel affine map `y = s_c·x + t_c`, whose gradients are
//! `dx = s_c·dy`, `ds_c = Σ dy·x`, `dt_c = Σ dy`.
//!
//! Each channel is one task over the thread pool: one pass over its `N` planes gathers the
//! statistics (shifted sums `Σ(x − k)`, `Σ(x − k)²` with `k` the channel's first value, so
//! no cancellation when the mean is large; partial sums per plane, planes added in `f64`),
//! and a second pass writes `y = a·x + t` while the channel's planes are still in the core's
//! cache. The backward pass is fused the same way (`Σ dy`, `Σ dy·(x − μ)` in one pass, then
//! `dx = a·dy + b·x + c` per channel). For `f32` on CPUs with AVX-512 the plane loops are
//! intrinsics chosen at run time; portable loops otherwise, which the tests hold them to.
//! Sums run in a fixed order per channel, so results do not depend on the number of
//! threads. Outputs are written in full without being zero-filled first.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::element::Element;
use crate::error::Result;
#[cfg(target_arch = "x86_64")]
use crate::ops::as_f32;
use crate::ops::conv::{ChannelWeightGrad, Conv2dParams};
use crate::ops::pool::{max_plane, max_plane_grad, max_pool_geom, pooled_grad_geom, Pool2dParams};
use crate::tensor::Tensor;

fn dims(s: &[usize]) -> (usize, usize, usize) {
    match s.len() {
        2 => (s[0], s[1], 1),
        4 => (s[0], s[1], s[2] * s[3]),
        _ => panic!("batch norm: expects [N, C] or [N, C, H, W], got {s:?}"),
    }
}

/// The plane kernels of one call: AVX-512 intrinsics for `f32` when the CPU has them
/// (checked once per call), else portable loops (`f64`, other CPUs).
#[derive(Clone, Copy)]
struct Kernels {
    avx512: bool,
}

impl Kernels {
    fn for_type<E: Element>() -> Self {
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::any::TypeId::of::<E>() == std::any::TypeId::of::<f32>()
            && std::arch::is_x86_feature_detected!("avx512f")
            && !force_portable();
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        Kernels { avx512 }
    }

    /// `(Σ(p − k), Σ(p − k)²)` over one plane.
    #[inline]
    fn stats<E: Element>(self, p: &[E], k: E) -> (f64, f64) {
        #[cfg(target_arch = "x86_64")]
        if self.avx512 {
            // SAFETY: `avx512` is set only when the CPU has AVX-512F and E is f32.
            return unsafe { simd::stats(as_f32(p), k.to_f64() as f32) };
        }
        let (s1, s2) = lanes(p, p, |v, _| {
            let d = v - k;
            (d, d * d)
        });
        (s1.to_f64(), s2.to_f64())
    }

    /// `(Σ d, Σ d·(x − μ))` over one plane of `dy` and `x`; with `relu` (the forward pass's
    /// `[a, t]` of a batch norm followed by ReLU), `d` counts only where the forward pass's
    /// output `a·(x − μ) + t` was positive, recomputed from `x` exactly as it was then.
    #[inline]
    fn grad_sums<E: Element>(self, d: &[E], x: &[E], relu: Option<[E; 2]>, mu: E) -> (f64, f64) {
        assert_eq!(d.len(), x.len());
        #[cfg(target_arch = "x86_64")]
        if self.avx512 {
            let f = |v: E| v.to_f64() as f32;
            let (d, x, mu) = (as_f32(d), as_f32(x), f(mu));
            // SAFETY: AVX-512F and f32, as above; the planes have the same length.
            return unsafe {
                match relu {
                    Some([a, t]) => simd::grad_sums::<true>(d, x, [mu, f(a), f(t)]),
                    None => simd::grad_sums::<false>(d, x, [mu, 0.0, 0.0]),
                }
            };
        }
        let (s1, s2) = match relu {
            Some([a, t]) => {
                let masked: Vec<E> = d
                    .iter()
                    .zip(x)
                    .map(|(&g, &v)| relu_mask(g, pre_relu(v, [mu, a, t])))
                    .collect();
                lanes(&masked, x, |g, v| (g, g * (v - mu)))
            }
            None => lanes(d, x, |g, v| (g, g * (v - mu))),
        };
        (s1.to_f64(), s2.to_f64())
    }

    /// `o = a·(p − μ) + t` (centred first, so a large mean does not cancel in `a·p + t`),
    /// then `max(o, 0)` when `relu` is set.
    #[inline]
    fn affine<E: Element>(self, o: &mut [MaybeUninit<E>], p: &[E], [mu, a, t]: [E; 3], relu: bool) {
        assert_eq!(o.len(), p.len());
        #[cfg(target_arch = "x86_64")]
        if self.avx512 {
            let f = |v: E| v.to_f64() as f32;
            let (o, p, k) = (o.as_mut_ptr().cast(), as_f32(p), [f(mu), f(a), f(t)]);
            // SAFETY: AVX-512F and f32, as above; `o` holds as many elements as `p`.
            return unsafe {
                if relu {
                    simd::affine::<true>(o, p, k)
                } else {
                    simd::affine::<false>(o, p, k)
                }
            };
        }
        for (o, &v) in o.iter_mut().zip(p) {
            let r = pre_relu(v, [mu, a, t]);
            o.write(if relu { relu_of(r) } else { r });
        }
    }

    /// `o = a·d + b·(x − μ) + c`; with `relu = [a', t']` (as in [`Kernels::grad_sums`]), `d`
    /// is taken as 0 where the forward output `a'·(x − μ) + t'` was not positive.
    #[inline]
    fn grad_out<E: Element>(
        self,
        o: &mut [MaybeUninit<E>],
        d: &[E],
        x: &[E],
        relu: Option<[E; 2]>,
        k: [E; 4],
    ) {
        assert!(o.len() == d.len() && d.len() == x.len());
        let [mu, a, b, c] = k;
        #[cfg(target_arch = "x86_64")]
        if self.avx512 {
            let f = |v: E| v.to_f64() as f32;
            let k = [f(mu), f(a), f(b), f(c)];
            let (o, d, x) = (o.as_mut_ptr().cast(), as_f32(d), as_f32(x));
            // SAFETY: AVX-512F and f32, as above; the planes have the same length.
            return unsafe {
                match relu {
                    Some([ra, rt]) => simd::grad_out::<true>(o, d, x, [f(ra), f(rt)], k),
                    None => simd::grad_out::<false>(o, d, x, [0.0, 0.0], k),
                }
            };
        }
        for (o, (&g, &v)) in o.iter_mut().zip(d.iter().zip(x)) {
            let g = relu.map_or(g, |[ra, rt]| relu_mask(g, pre_relu(v, [mu, ra, rt])));
            o.write(a * g + b * (v - mu) + c);
        }
    }
}

/// The batch norm's output before its ReLU, `a·(v − μ) + t`: one expression for the forward
/// pass and for the backward pass that recomputes the ReLU's mask from it.
#[inline(always)]
fn pre_relu<E: Element>(v: E, [mu, a, t]: [E; 3]) -> E {
    a * (v - mu) + t
}

/// The per-channel `[μ, a, t]` of `y = a·(x − μ) + t` from the batch mean and variance as
/// stored (rounded to `E`), so the backward pass can recompute the very same `y`.
fn affine_coefs<E: Element>(mean: E, var: E, gamma: E, beta: E, eps: E) -> [E; 3] {
    let scale = gamma.to_f64() / (var.to_f64() + eps.to_f64()).sqrt();
    [mean, E::from_f64(scale), beta]
}

/// `v` if positive, else 0 (NaN too), as `Tensor::relu`.
#[inline(always)]
fn relu_of<E: Element>(v: E) -> E {
    if v > E::ZERO {
        v
    } else {
        E::ZERO
    }
}

/// The gradient `g` through a ReLU whose output is `y`: `g` where `y > 0`, else 0
/// (`relu'(0) = 0`).
#[inline(always)]
fn relu_mask<E: Element>(g: E, y: E) -> E {
    if y > E::ZERO {
        g
    } else {
        E::ZERO
    }
}

/// `(Σ f(p, q).0, Σ f(p, q).1)` over eight interleaved partial sums (the portable path).
#[inline(always)]
fn lanes<E: Element>(p: &[E], q: &[E], f: impl Fn(E, E) -> (E, E)) -> (E, E) {
    let mut acc = [(E::ZERO, E::ZERO); 8];
    let (pc, qc) = (p.chunks_exact(8), q.chunks_exact(8));
    let (pr, qr) = (pc.remainder(), qc.remainder());
    for (a8, b8) in pc.zip(qc) {
        for ((s, &a), &b) in acc.iter_mut().zip(a8).zip(b8) {
            let (x, y) = f(a, b);
            s.0 += x;
            s.1 += y;
        }
    }
    let (mut s1, mut s2) = (E::ZERO, E::ZERO);
    for (&a, &b) in pr.iter().zip(qr) {
        let (x, y) = f(a, b);
        s1 += x;
        s2 += y;
    }
    for s in acc {
        s1 += s.0;
        s2 += s.1;
    }
    (s1, s2)
}

/// Tests switch the SIMD kernels off to compare them with the portable ones.
#[cfg(test)]
fn force_portable() -> bool {
    tests::PORTABLE.with(|p| p.get())
}
#[cfg(not(test))]
fn force_portable() -> bool {
    false
}

/// The plane loops in AVX-512: 16 lanes, two accumulators per sum, a masked tail.
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    /// The mask of the lanes `i..n` when fewer than 16 remain, else all 16.
    #[inline(always)]
    fn mask(i: usize, n: usize) -> __mmask16 {
        if n - i >= 16 {
            0xffff
        } else {
            ((1u32 << (n - i)) - 1) as __mmask16
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn stats(p: &[f32], k: f32) -> (f64, f64) {
        let (n, ptr, kv) = (p.len(), p.as_ptr(), _mm512_set1_ps(k));
        let z = _mm512_setzero_ps();
        let (mut a1, mut a2, mut b1, mut b2) = (z, z, z, z);
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: i + 32 ≤ n, so both loads lie inside `p`.
            let (x, y) = unsafe {
                (
                    _mm512_loadu_ps(ptr.add(i)),
                    _mm512_loadu_ps(ptr.add(i + 16)),
                )
            };
            let (dx, dy) = (_mm512_sub_ps(x, kv), _mm512_sub_ps(y, kv));
            a1 = _mm512_add_ps(a1, dx);
            a2 = _mm512_fmadd_ps(dx, dx, a2);
            b1 = _mm512_add_ps(b1, dy);
            b2 = _mm512_fmadd_ps(dy, dy, b2);
            i += 32;
        }
        while i < n {
            let m = mask(i, n);
            // SAFETY: the mask covers only lanes with i + lane < n.
            let x = unsafe { _mm512_maskz_loadu_ps(m, ptr.add(i)) };
            let d = _mm512_maskz_sub_ps(m, x, kv);
            a1 = _mm512_add_ps(a1, d);
            a2 = _mm512_fmadd_ps(d, d, a2);
            i += 16;
        }
        (
            f64::from(_mm512_reduce_add_ps(_mm512_add_ps(a1, b1))),
            f64::from(_mm512_reduce_add_ps(_mm512_add_ps(a2, b2))),
        )
    }

    /// `d` where `a·u + t > 0` (the gradient through the ReLU of a batch norm whose
    /// centred input is `u`, recomputed as the forward pass computed it), else 0; `d` as
    /// it is unless `RELU`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn through_relu<const RELU: bool>(d: __m512, u: __m512, av: __m512, tv: __m512) -> __m512 {
        if RELU {
            let r = _mm512_fmadd_ps(av, u, tv);
            _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(r, _mm512_setzero_ps()), d)
        } else {
            d
        }
    }

    /// `(Σ d, Σ d·(x − μ))`, with `d` masked by the ReLU of `a·(x − μ) + t` under `RELU`
    /// (`[μ, a, t]`, `a` and `t` unused otherwise).
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and `d` and `x` must have the same length.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn grad_sums<const RELU: bool>(
        d: &[f32],
        x: &[f32],
        [mu, a, t]: [f32; 3],
    ) -> (f64, f64) {
        let (n, dp, xp, m0) = (d.len(), d.as_ptr(), x.as_ptr(), _mm512_set1_ps(mu));
        let (av, tv) = (_mm512_set1_ps(a), _mm512_set1_ps(t));
        let z = _mm512_setzero_ps();
        let (mut a1, mut a2, mut b1, mut b2) = (z, z, z, z);
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: i + 32 ≤ n = d.len() = x.len().
            let (g, h, u, v) = unsafe {
                (
                    _mm512_loadu_ps(dp.add(i)),
                    _mm512_loadu_ps(dp.add(i + 16)),
                    _mm512_sub_ps(_mm512_loadu_ps(xp.add(i)), m0),
                    _mm512_sub_ps(_mm512_loadu_ps(xp.add(i + 16)), m0),
                )
            };
            let (g, h) = (
                through_relu::<RELU>(g, u, av, tv),
                through_relu::<RELU>(h, v, av, tv),
            );
            a1 = _mm512_add_ps(a1, g);
            a2 = _mm512_fmadd_ps(g, u, a2);
            b1 = _mm512_add_ps(b1, h);
            b2 = _mm512_fmadd_ps(h, v, b2);
            i += 32;
        }
        while i < n {
            let m = mask(i, n);
            // SAFETY: the mask covers only lanes with i + lane < n.
            let (g, u) = unsafe {
                (
                    _mm512_maskz_loadu_ps(m, dp.add(i)),
                    _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xp.add(i)), m0),
                )
            };
            let g = through_relu::<RELU>(g, u, av, tv);
            a1 = _mm512_add_ps(a1, g);
            a2 = _mm512_fmadd_ps(g, u, a2);
            i += 16;
        }
        (
            f64::from(_mm512_reduce_add_ps(_mm512_add_ps(a1, b1))),
            f64::from(_mm512_reduce_add_ps(_mm512_add_ps(a2, b2))),
        )
    }

    /// `o = a·(p − μ) + t`, and `max(o, 0)` with `RELU` (`vmaxps` returns its second
    /// operand, 0, for a NaN, as `relu` does).
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and `o` must be valid for `p.len()` writes.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn affine<const RELU: bool>(o: *mut f32, p: &[f32], [mu, a, t]: [f32; 3]) {
        let (n, ptr, av, tv) = (p.len(), p.as_ptr(), _mm512_set1_ps(a), _mm512_set1_ps(t));
        let mv = _mm512_set1_ps(mu);
        let mut i = 0;
        while i < n {
            let m = mask(i, n);
            // SAFETY: the mask covers only lanes with i + lane < n, inside `p` and `o`.
            unsafe {
                let x = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, ptr.add(i)), mv);
                let r = _mm512_fmadd_ps(av, x, tv);
                let r = if RELU {
                    _mm512_max_ps(r, _mm512_setzero_ps())
                } else {
                    r
                };
                _mm512_mask_storeu_ps(o.add(i), m, r);
            }
            i += 16;
        }
    }

    /// `o = a·d + b·(x − μ) + c`, with `d` taken as 0 where `ra·(x − μ) + rt ≤ 0` under
    /// `RELU` (`[ra, rt]`, unused otherwise).
    ///
    /// # Safety
    /// The CPU must have AVX-512F, `d` and `x` must have the same length, and `o` must be
    /// valid for that many writes.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn grad_out<const RELU: bool>(
        o: *mut f32,
        d: &[f32],
        x: &[f32],
        [ra, rt]: [f32; 2],
        [mu, a, b, c]: [f32; 4],
    ) {
        let (n, dp, xp) = (d.len(), d.as_ptr(), x.as_ptr());
        let (av, bv, cv) = (_mm512_set1_ps(a), _mm512_set1_ps(b), _mm512_set1_ps(c));
        let (rav, rtv) = (_mm512_set1_ps(ra), _mm512_set1_ps(rt));
        let mv = _mm512_set1_ps(mu);
        let mut i = 0;
        while i < n {
            let m = mask(i, n);
            // SAFETY: the mask covers only lanes with i + lane < n, inside `d`, `x` and `o`.
            unsafe {
                let v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, xp.add(i)), mv);
                let g = _mm512_maskz_loadu_ps(m, dp.add(i));
                let g = through_relu::<RELU>(g, v, rav, rtv);
                let r = _mm512_fmadd_ps(av, g, _mm512_fmadd_ps(bv, v, cv));
                _mm512_mask_storeu_ps(o.add(i), m, r);
            }
            i += 16;
        }
    }
}

/// The channel's planes of `v` (`[N, C, HW]`): plane `b` of channel `ch` at `(b·C + ch)·HW`.
fn planes_of<E>(v: &[E], c: usize, hw: usize, ch: usize) -> impl Iterator<Item = &[E]> {
    v.chunks_exact(hw.max(1)).skip(ch).step_by(c.max(1))
}

/// The output's planes `[N, C, HW]` handed out per channel (disjoint borrows), with the
/// channel index, for one task per channel.
fn planes_by_channel<T>(out: &mut [T], c: usize, hw: usize) -> Vec<(usize, Vec<&mut [T]>)> {
    let per = out.len() / (hw.max(1) * c.max(1));
    let mut by: Vec<(usize, Vec<&mut [T]>)> =
        (0..c).map(|ch| (ch, Vec::with_capacity(per))).collect();
    for (i, plane) in out.chunks_exact_mut(hw.max(1)).enumerate() {
        by[i % c].1.push(plane);
    }
    by
}

/// A buffer of `len` elements that `fill` writes in full, without zero-filling it first.
fn filled<E: Element, R>(len: usize, fill: impl FnOnce(&mut [MaybeUninit<E>]) -> R) -> (Vec<E>, R) {
    let mut v: Vec<E> = Vec::with_capacity(len);
    let r = fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote each of the first `len` elements: both callers hand every plane
    // of the buffer (`len` is a whole number of planes) to exactly one channel's task, which
    // writes the whole plane (`affine` / `grad_out` write `p.len()` = the plane's length).
    unsafe { v.set_len(len) };
    (v, r)
}

/// Training-mode batch normalization: returns `y`, the batch mean and the biased batch
/// variance per channel.
///
/// # Panics
/// If `x` is not 2-D or 4-D, or `gamma`/`beta` are not `[C]`.
pub fn batch_norm_forward<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    beta: &Tensor<E>,
    eps: E,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    bn_forward(x, gamma, beta, eps, false)
}

/// [`batch_norm_forward`] followed by ReLU, `y = max(BN(x), 0)`, in the same pass: the
/// normalised value is clamped as it is written. Returns `y`, the batch mean and the biased
/// batch variance; [`batch_norm_relu_backward`] is its gradient.
///
/// # Panics
/// If `x` is not 2-D or 4-D, or `gamma`/`beta` are not `[C]`.
pub fn batch_norm_relu_forward<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    beta: &Tensor<E>,
    eps: E,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    bn_forward(x, gamma, beta, eps, true)
}

fn bn_forward<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    beta: &Tensor<E>,
    eps: E,
    relu: bool,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let (n, c, hw) = dims(x.shape());
    assert!(
        gamma.shape() == [c] && beta.shape() == [c],
        "batch norm: gamma {:?} and beta {:?} for {c} channels",
        gamma.shape(),
        beta.shape()
    );
    if n * hw == 0 {
        let zeros = || Tensor::from_parts(vec![E::ZERO; c], vec![c]);
        return (
            Tensor::from_parts(Vec::new(), x.shape().to_vec()),
            zeros(),
            zeros(),
        );
    }
    let (xd, g, b) = (x.data(), gamma.data(), beta.data());
    let k = Kernels::for_type::<E>();
    let (y, stats) = filled(n * c * hw, |y| {
        planes_by_channel(y, c, hw)
            .into_par_iter()
            .map(|(ch, out)| {
                let (mean, var) = channel_stats(k, xd, (c, hw), ch);
                let mat = affine_coefs(mean, var, g[ch], b[ch], eps);
                for (o, p) in out.into_iter().zip(planes_of(xd, c, hw, ch)) {
                    k.affine(o, p, mat, relu);
                }
                (mean, var)
            })
            .collect::<Vec<(E, E)>>()
    });
    let (mean, var): (Vec<E>, Vec<E>) = stats.into_iter().unzip();
    (
        Tensor::from_parts(y, x.shape().to_vec()),
        Tensor::from_parts(mean, vec![c]),
        Tensor::from_parts(var, vec![c]),
    )
}

/// Channel `ch`'s batch mean and biased variance over its planes of `x` (`[N, C, HW]`, not
/// empty): shifted sums with `k0` the channel's first value, one partial sum per plane,
/// planes added in `f64`.
fn channel_stats<E: Element>(k: Kernels, xd: &[E], (c, hw): (usize, usize), ch: usize) -> (E, E) {
    let k0 = xd[ch * hw];
    let (mut s1, mut s2, mut m) = (0.0f64, 0.0f64, 0usize);
    for p in planes_of(xd, c, hw, ch) {
        let (a, b) = k.stats(p, k0);
        s1 += a;
        s2 += b;
        m += p.len();
    }
    let m = m as f64;
    let d = s1 / m;
    let mean = E::from_f64(k0.to_f64() + d);
    let var = E::from_f64((s2 / m - d * d).max(0.0));
    (mean, var)
}

/// [`batch_norm_relu_forward`] followed by max pooling, `pool(max(BN(x), 0))`, on
/// `[N, C, H, W]`: each plane is normalised into a buffer that stays in the core's cache and
/// pooled from there, so the full-size output is never written out and read back. Returns
/// the pooled output, the flat index of each output's maximum within its plane (as
/// [`max_pool2d_forward`](crate::max_pool2d_forward) returns them), and the batch mean and
/// biased variance. The results are those of the two ops one after the other, to the bit.
///
/// # Errors
/// If `x` is not 4-D or the window does not fit (as `max_pool2d_forward`).
///
/// # Panics
/// If `gamma`/`beta` are not `[C]`.
#[allow(clippy::type_complexity)]
pub fn batch_norm_relu_max_pool_forward<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    beta: &Tensor<E>,
    eps: E,
    p: Pool2dParams,
) -> Result<(Tensor<E>, Vec<u32>, Tensor<E>, Tensor<E>)> {
    let (_, h, w, ho, wo) = max_pool_geom(x.shape(), p)?;
    let (n, c, hw) = dims(x.shape());
    if n * hw == 0 || ho * wo == 0 {
        let (y, mean, var) = bn_forward(x, gamma, beta, eps, true);
        let (y, idx) = crate::max_pool2d_forward(&y, p)?;
        return Ok((y, idx, mean, var));
    }
    assert!(
        gamma.shape() == [c] && beta.shape() == [c],
        "batch norm: gamma {:?} and beta {:?} for {c} channels",
        gamma.shape(),
        beta.shape()
    );
    let hwo = ho * wo;
    let (xd, g, b) = (x.data(), gamma.data(), beta.data());
    let k = Kernels::for_type::<E>();
    // Not zero-filled here: each plane is zeroed by the task that pools into it, while it
    // is in that core's cache. Zero-filling the whole output on the calling thread first
    // was 9% of what that thread did while the other worker of the `cnn` preset's step sat
    // idle, waiting for it.
    let len = n * c * hwo;
    let mut y: Vec<E> = Vec::with_capacity(len);
    let mut idx: Vec<u32> = Vec::with_capacity(len);
    let stats: Vec<(E, E)> = planes_by_channel(&mut y.spare_capacity_mut()[..len], c, hwo)
        .into_par_iter()
        .zip(planes_by_channel(
            &mut idx.spare_capacity_mut()[..len],
            c,
            hwo,
        ))
        .map(|((ch, ys), (_, is))| {
            let (mean, var) = channel_stats(k, xd, (c, hw), ch);
            let mat = affine_coefs(mean, var, g[ch], b[ch], eps);
            let mut buf: Vec<E> = Vec::with_capacity(hw);
            for ((yp, ip), xp) in ys.into_iter().zip(is).zip(planes_of(xd, c, hw, ch)) {
                let spare = &mut buf.spare_capacity_mut()[..hw];
                k.affine(spare, xp, mat, true);
                // SAFETY: `affine` wrote all `hw` elements (`xp.len()` = `hw`);
                // `MaybeUninit<E>` has the layout of `E`.
                let plane = unsafe { &*(spare as *const [MaybeUninit<E>] as *const [E]) };
                yp.fill(MaybeUninit::new(E::ZERO));
                ip.fill(MaybeUninit::new(0));
                // SAFETY: both planes were just written in full; `MaybeUninit<T>` has the
                // layout of `T`.
                let (yp, ip) = unsafe {
                    (
                        &mut *(yp as *mut [MaybeUninit<E>] as *mut [E]),
                        &mut *(ip as *mut [MaybeUninit<u32>] as *mut [u32]),
                    )
                };
                max_plane(p, plane, (h, w, wo), yp, ip);
            }
            (mean, var)
        })
        .collect();
    // SAFETY: the planes of `hwo` elements tile the first `len` elements of both buffers,
    // each went to exactly one channel's task, which zeroed it before pooling into it.
    unsafe {
        y.set_len(len);
        idx.set_len(len);
    }
    let (mean, var): (Vec<E>, Vec<E>) = stats.into_iter().unzip();
    Ok((
        Tensor::from_parts(y, vec![n, c, ho, wo]),
        idx,
        Tensor::from_parts(mean, vec![c]),
        Tensor::from_parts(var, vec![c]),
    ))
}

/// Backward of [`batch_norm_relu_max_pool_forward`]: `(dx, dγ, dβ)` from `x`, `γ`, `β`, the
/// batch mean and variance and the maxima's indices the forward pass returned, and the
/// pooled output's gradient `dy`. Each plane's gradient at full size (the pooling's) is
/// built once, into a buffer of its channel's planes that stays in cache and that both
/// passes read, rather than written out for the whole batch and read back; the results are
/// those of the two backward passes one after the other, to the bit.
///
/// # Panics
/// If the shapes do not fit `x`, `p` and the forward pass's outputs.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_relu_max_pool_backward<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    beta: &Tensor<E>,
    [mean, var]: [&Tensor<E>; 2],
    eps: E,
    p: Pool2dParams,
    dy: &Tensor<E>,
    idx: &[u32],
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let (h, w, ho, wo) = pooled_grad_geom("batch norm + max pool backward", x.shape(), p, dy, idx);
    let dyp = Dy::Pooled {
        g: dy.data(),
        idx,
        p,
        geom: (h, w, ho, wo),
    };
    bn_backward(x, Some(beta), gamma, [mean, var], eps, dyp)
}

/// The gradient a batch norm's backward pass reads, plane by plane: given in full, or
/// pooled (each plane's full-size gradient rebuilt from the pooled one and the maxima's
/// indices).
enum Dy<'a, E> {
    Full(&'a [E]),
    Pooled {
        g: &'a [E],
        idx: &'a [u32],
        p: Pool2dParams,
        geom: (usize, usize, usize, usize),
    },
}

impl<E: Element> Dy<'_, E> {
    /// Plane `pl` (of `hw` elements, the `b`-th of its channel's planes), read from a
    /// full gradient or, pooled, rebuilt into slot `b` of `built` (a channel's `N` planes,
    /// `N·hw` elements of capacity), where the second pass reads it again ([`Dy::built`]).
    fn plane<'s>(&'s self, pl: usize, b: usize, hw: usize, built: &'s mut Vec<E>) -> &'s [E] {
        match *self {
            Dy::Full(d) => &d[pl * hw..(pl + 1) * hw],
            Dy::Pooled { g, idx, p, geom } => {
                let hwo = geom.2 * geom.3;
                let spare = &mut built.spare_capacity_mut()[b * hw..][..hw];
                let (gp, ip) = (&g[pl * hwo..][..hwo], &idx[pl * hwo..][..hwo]);
                max_plane_grad(p, spare, gp, ip, geom);
                // SAFETY: `max_plane_grad` writes every element of the `hw` given;
                // `MaybeUninit<E>` has the layout of `E`.
                unsafe { &*(spare as *const [MaybeUninit<E>] as *const [E]) }
            }
        }
    }

    /// Asks the CPU to fetch what building plane `pl` reads: a channel's planes lie
    /// `C·HO·WO` elements apart, a stride the hardware prefetchers do not follow, and
    /// each plane's build began by waiting for its first lines (most of the build's time
    /// for the `cnn` preset's first layer).
    fn prefetch(&self, pl: usize) {
        if let Dy::Pooled { g, idx, geom, .. } = *self {
            let hwo = geom.2 * geom.3;
            if let (Some(gp), Some(ip)) = (
                g.get(pl * hwo..(pl + 1) * hwo),
                idx.get(pl * hwo..(pl + 1) * hwo),
            ) {
                crate::hint::prefetch(gp);
                crate::hint::prefetch(ip);
            }
        }
    }

    /// Plane `pl` again, for the second pass: the full gradient's, or slot `b` of `built`,
    /// which the first pass filled.
    fn built<'s>(&'s self, pl: usize, b: usize, hw: usize, built: &'s [E]) -> &'s [E] {
        match *self {
            Dy::Full(d) => &d[pl * hw..(pl + 1) * hw],
            Dy::Pooled { .. } => &built[b * hw..(b + 1) * hw],
        }
    }
}

/// Backward of [`batch_norm_forward`]: `(dx, dγ, dβ)` from `x`, `γ`, the batch mean and
/// variance, and `dy`.
pub fn batch_norm_backward<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    mean: &Tensor<E>,
    var: &Tensor<E>,
    eps: E,
    dy: &Tensor<E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    assert_eq!(
        dy.shape(),
        x.shape(),
        "batch norm backward: dy and x differ"
    );
    bn_backward(x, None, gamma, [mean, var], eps, Dy::Full(dy.data()))
}

/// Backward of [`batch_norm_relu_forward`]: `(dx, dγ, dβ)` from `x`, `γ`, `β`, the batch
/// mean and variance the forward pass returned, and `dy`. The ReLU's gradient (`dy` where the
/// output was positive, else 0) is applied as `dy` is read, in both passes: the output's sign
/// is recomputed from `x`, `γ`, `β` and the statistics exactly as the forward pass computed
/// it, so the output itself is not read again.
///
/// # Panics
/// If `x` and `dy` differ in shape.
pub fn batch_norm_relu_backward<E: Element>(
    x: &Tensor<E>,
    gamma: &Tensor<E>,
    beta: &Tensor<E>,
    mean: &Tensor<E>,
    var: &Tensor<E>,
    eps: E,
    dy: &Tensor<E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    assert_eq!(
        dy.shape(),
        x.shape(),
        "batch norm backward: dy and x differ"
    );
    bn_backward(x, Some(beta), gamma, [mean, var], eps, Dy::Full(dy.data()))
}

fn bn_backward<E: Element>(
    x: &Tensor<E>,
    beta: Option<&Tensor<E>>,
    gamma: &Tensor<E>,
    [mean, var]: [&Tensor<E>; 2],
    eps: E,
    dy: Dy<'_, E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let (n, c, hw) = dims(x.shape());
    let xd = x.data();
    let k = Kernels::for_type::<E>();
    let (dx, sums) = filled(n * c * hw, |dx| {
        planes_by_channel(dx, c, hw)
            .into_par_iter()
            .map(|(ch, out)| {
                let first = first_pass(k, x, beta, gamma, [mean, var], eps, &dy, ch);
                for (b, (o, q)) in out.into_iter().zip(planes_of(xd, c, hw, ch)).enumerate() {
                    let p = dy.built(b * c + ch, b, hw, &first.built);
                    k.grad_out(o, p, q, first.relu, first.coef);
                }
                (first.dg, first.db)
            })
            .collect::<Vec<(E, E)>>()
    });
    let (dgamma, dbeta): (Vec<E>, Vec<E>) = sums.into_iter().unzip();
    (
        Tensor::from_parts(dx, x.shape().to_vec()),
        Tensor::from_parts(dgamma, vec![c]),
        Tensor::from_parts(dbeta, vec![c]),
    )
}

/// What one channel's first backward pass gives the second: `dγ`, `dβ`, the coefficients
/// of `dx = a·dy + bx·(x − μ) + c0` (`[μ, a, bx, c0]`), the forward pass's ReLU
/// coefficients if it had one, and a pooled gradient's planes rebuilt at full size.
struct FirstPass<E> {
    dg: E,
    db: E,
    relu: Option<[E; 2]>,
    coef: [E; 4],
    built: Vec<E>,
}

/// Channel `ch`'s first backward pass: `Σ dy` and `Σ dy·(x − μ)` over its planes (a pooled
/// gradient's planes rebuilt on the way, into [`FirstPass::built`], which stays in cache
/// for the second pass).
#[allow(clippy::too_many_arguments)]
fn first_pass<E: Element>(
    k: Kernels,
    x: &Tensor<E>,
    beta: Option<&Tensor<E>>,
    gamma: &Tensor<E>,
    [mean, var]: [&Tensor<E>; 2],
    eps: E,
    dy: &Dy<'_, E>,
    ch: usize,
) -> FirstPass<E> {
    let (n, c, hw) = dims(x.shape());
    let m = (n * hw).max(1) as f64;
    let (xd, mu, g) = (x.data(), mean.data(), gamma.data());
    let mu_c = mu[ch];
    let vc = var.data()[ch];
    // the forward pass's [a, t], to recompute its ReLU's mask
    let relu = beta.map(|b| {
        let [_, a, t] = affine_coefs(mu_c, vc, g[ch], b.data()[ch], eps);
        [a, t]
    });
    let invstd = 1.0 / (vc.to_f64() + eps.to_f64()).sqrt();
    let (mut db, mut dxm) = (0.0f64, 0.0f64);
    // a pooled gradient's planes, built once at full size (a channel's `N·H·W`
    // elements, which stay in cache between the passes) and read by both
    let mut built = Vec::new();
    if matches!(dy, Dy::Pooled { .. }) {
        built.reserve_exact(n * hw);
    }
    dy.prefetch(ch);
    for (b, q) in planes_of(xd, c, hw, ch).enumerate() {
        dy.prefetch((b + 1) * c + ch);
        // the channel's next plane of x, `C` planes on: a stride the hardware prefetchers
        // do not follow either (2–3% of the `cnn` preset's training step, measured step by
        // step; the statistics' pass in the forward direction gained nothing from it)
        let next = ((b + 1) * c + ch) * hw;
        if let Some(nx) = xd.get(next..next + hw) {
            crate::hint::prefetch(nx);
        }
        let p = dy.plane(b * c + ch, b, hw, &mut built);
        let (a, b) = k.grad_sums(p, q, relu, mu_c);
        db += a;
        dxm += b;
    }
    if matches!(dy, Dy::Pooled { .. }) {
        // SAFETY: the loop above built all `n` planes of `hw` elements, slot `b`
        // for plane `b` (`planes_of` yields `n` of them), within the capacity
        // reserved.
        unsafe { built.set_len(n * hw) };
    }
    let dg = dxm * invstd;
    // dx = a·dy + bx·(x − μ) + c0 with a = γ·invstd, bx = −a·invstd·dγ/M,
    // c0 = −a·dβ/M
    let a = g[ch].to_f64() * invstd;
    let bx = -a * invstd * dg / m;
    let c0 = -a * db / m;
    FirstPass {
        dg: E::from_f64(dg),
        db: E::from_f64(db),
        relu,
        coef: [mu_c, E::from_f64(a), E::from_f64(bx), E::from_f64(c0)],
        built,
    }
}

/// Backward of [`batch_norm_relu_max_pool_forward`] applied to the output of a convolution
/// (`y = conv2d(x, w, b)`, then batch norm, ReLU and max pooling) whose input `x` needs no
/// gradient, as a network's first layer's does: `(dw, db, dγ, dβ)` (`db` when `want_bias`)
/// from the convolution's input `x`, its weight's shape and parameters, and what
/// [`batch_norm_relu_max_pool_backward`] takes (`y` is its `x`). The convolution's output
/// gradient is never written out: each of its planes is made in a buffer that stays in
/// cache and goes at once into its channel's weight gradient ([`ChannelWeightGrad`]), where
/// the two backward passes one after the other write `N·O·HO·WO` elements and read them
/// back. The values are those two passes': `dγ`, `dβ` and the bias's gradient to the bit,
/// the weight's up to rounding (summed in another order, see [`ChannelWeightGrad`]).
///
/// # Panics
/// If the shapes do not fit each other, or the convolution has more than one group.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_batch_norm_relu_max_pool_backward<E: Element>(
    (x, w_shape, cp, want_bias): (&Tensor<E>, &[usize], Conv2dParams, bool),
    y: &Tensor<E>,
    gamma: &Tensor<E>,
    beta: &Tensor<E>,
    [mean, var]: [&Tensor<E>; 2],
    eps: E,
    p: Pool2dParams,
    dy: &Tensor<E>,
    idx: &[u32],
) -> (Tensor<E>, Option<Tensor<E>>, Tensor<E>, Tensor<E>) {
    let conv = ChannelWeightGrad::new(x, w_shape, cp).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        y.shape(),
        conv.output_shape(),
        "conv2d + batch norm + max pool backward: the convolution's output"
    );
    let (h, w, ho, wo) = pooled_grad_geom("batch norm + max pool backward", y.shape(), p, dy, idx);
    let dy = Dy::Pooled {
        g: dy.data(),
        idx,
        p,
        geom: (h, w, ho, wo),
    };
    let (_, c, hw) = dims(y.shape());
    let (yd, per) = (y.data(), conv.per_channel());
    let k = Kernels::for_type::<E>();
    let by_channel: Vec<(E, E, Vec<E>, E)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let first = first_pass(k, y, Some(beta), gamma, [mean, var], eps, &dy, ch);
            let mut acc = vec![E::ZERO; per];
            let mut bias = E::ZERO;
            // one plane of the convolution's output gradient at a time
            let mut plane: Vec<E> = Vec::with_capacity(hw);
            for (b, q) in planes_of(yd, c, hw, ch).enumerate() {
                let d = dy.built(b * c + ch, b, hw, &first.built);
                k.grad_out(
                    &mut plane.spare_capacity_mut()[..hw],
                    d,
                    q,
                    first.relu,
                    first.coef,
                );
                // SAFETY: `grad_out` wrote all `hw` elements.
                unsafe { plane.set_len(hw) };
                conv.add(b, &plane, &mut acc);
                if want_bias {
                    bias += ChannelWeightGrad::<E>::bias_sum(&plane);
                }
                // SAFETY: shortening; the elements are plain values.
                unsafe { plane.set_len(0) };
            }
            (first.dg, first.db, acc, bias)
        })
        .collect();
    let mut dw = Vec::with_capacity(c * per);
    let (mut dg, mut dbeta, mut dbias) = (Vec::with_capacity(c), Vec::with_capacity(c), Vec::new());
    for (g, b, acc, bias) in by_channel {
        dg.push(g);
        dbeta.push(b);
        dw.extend_from_slice(&acc);
        dbias.push(bias);
    }
    (
        Tensor::from_parts(dw, w_shape.to_vec()),
        want_bias.then(|| Tensor::from_parts(dbias, vec![c])),
        Tensor::from_parts(dg, vec![c]),
        Tensor::from_parts(dbeta, vec![c]),
    )
}

/// Per-channel sums of `f(i, channel)` over batch and space, in parallel over channels.
fn channel_sums<E: Element>(shape: &[usize], f: impl Fn(usize, usize) -> E + Sync) -> Vec<E> {
    let (n, c, hw) = dims(shape);
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut s = E::ZERO;
            for b in 0..n {
                let base = (b * c + ch) * hw;
                for i in base..base + hw {
                    s += f(i, ch);
                }
            }
            s
        })
        .collect()
}

/// Writes `out[i] = f(i, channel)` for every element, in parallel over `H·W` planes.
fn map_planes<E: Element>(shape: &[usize], f: impl Fn(usize, usize) -> E + Sync) -> Vec<E> {
    let (n, c, hw) = dims(shape);
    let mut out = vec![E::ZERO; n * c * hw];
    out.par_chunks_mut(hw.max(1))
        .enumerate()
        .for_each(|(plane, o)| {
            let ch = plane % c;
            for (k, v) in o.iter_mut().enumerate() {
                *v = f(plane * hw + k, ch);
            }
        });
    out
}

/// The per-channel affine map `y = s_c·x + t_c`.
pub fn channel_affine_forward<E: Element>(
    x: &Tensor<E>,
    s: &Tensor<E>,
    t: &Tensor<E>,
) -> Tensor<E> {
    let c = dims(x.shape()).1;
    assert!(
        s.shape() == [c] && t.shape() == [c],
        "channel affine: scale {:?} and shift {:?} for {c} channels",
        s.shape(),
        t.shape()
    );
    let (n, c, hw) = dims(x.shape());
    let (xd, sd, td) = (x.data(), s.data(), t.data());
    let k = Kernels::for_type::<E>();
    let (y, ()) = filled(n * c * hw, |y| {
        // one task per image; each writes all its planes
        y.par_chunks_mut((hw * c).max(1))
            .zip(xd.par_chunks((hw * c).max(1)))
            .for_each(|(yi, xi)| {
                let planes = yi.chunks_mut(hw.max(1)).zip(xi.chunks(hw.max(1)));
                for (ch, (o, p)) in planes.enumerate() {
                    k.affine(o, p, [E::ZERO, sd[ch], td[ch]], false);
                }
            })
    });
    Tensor::from_parts(y, x.shape().to_vec())
}

/// Backward of [`channel_affine_forward`]: `(dx, ds, dt)`.
pub fn channel_affine_backward<E: Element>(
    x: &Tensor<E>,
    s: &Tensor<E>,
    dy: &Tensor<E>,
) -> (Tensor<E>, Tensor<E>, Tensor<E>) {
    let (_, c, _) = dims(x.shape());
    let (xd, sd, gd) = (x.data(), s.data(), dy.data());
    let dx = map_planes(x.shape(), |i, ch| sd[ch] * gd[i]);
    let ds = channel_sums(x.shape(), |i, _| gd[i] * xd[i]);
    let dt = channel_sums(x.shape(), |i, _| gd[i]);
    (
        Tensor::from_parts(dx, x.shape().to_vec()),
        Tensor::from_parts(ds, vec![c]),
        Tensor::from_parts(dt, vec![c]),
    )
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::Rng;

    thread_local! {
        /// Set by a test to run the portable kernels.
        pub(super) static PORTABLE: Cell<bool> = const { Cell::new(false) };
    }

    /// The fused batch norm → ReLU → max pool against the three ops one after the other:
    /// the same outputs, indices, statistics and gradients, to the bit.
    fn fused_pool_matches<E: Element>(seed: u64) {
        use crate::{max_pool2d_backward, max_pool2d_forward};
        let mut rng = Rng::seed(seed);
        let sq = Pool2dParams::square;
        let padded = Pool2dParams {
            kernel: (3, 3),
            stride: (2, 2),
            padding: (1, 1),
        };
        // windows that tile the plane (the 2×2 spread), odd sizes that leave a row and a
        // column out, overlapping and padded windows, planes of more than 16 and 32 columns
        for (shape, p) in [
            ([4, 3, 28, 28], sq(2)),
            ([3, 2, 7, 7], sq(2)),
            ([2, 3, 6, 9], sq(3)),
            ([2, 2, 9, 37], padded),
            ([5, 2, 4, 4], sq(2)),
        ] {
            let c = shape[1];
            let x = Tensor::<E>::rand_normal(&shape, 0.3, 1.5, &mut rng);
            let g = Tensor::<E>::rand_normal(&[c], 1.0, 0.5, &mut rng);
            let b = Tensor::<E>::rand_normal(&[c], 0.0, 0.5, &mut rng);
            let eps = E::from_f64(1e-5);
            let (y, idx, mean, var) = batch_norm_relu_max_pool_forward(&x, &g, &b, eps, p).unwrap();
            let (full, mean1, var1) = batch_norm_relu_forward(&x, &g, &b, eps);
            let (y1, idx1) = max_pool2d_forward(&full, p).unwrap();
            assert_eq!(y.shape(), y1.shape(), "{shape:?}");
            assert_eq!(y.to_vec(), y1.to_vec(), "{shape:?} output");
            assert_eq!(idx, idx1, "{shape:?} indices");
            assert_eq!(
                (mean.to_vec(), var.to_vec()),
                (mean1.to_vec(), var1.to_vec())
            );
            let dy = Tensor::<E>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
            let got =
                batch_norm_relu_max_pool_backward(&x, &g, &b, [&mean, &var], eps, p, &dy, &idx);
            let dfull = max_pool2d_backward(&shape, &dy, &idx1, p);
            let want = batch_norm_relu_backward(&x, &g, &b, &mean1, &var1, eps, &dfull);
            assert_eq!(got.0.to_vec(), want.0.to_vec(), "{shape:?} dx");
            assert_eq!(got.1.to_vec(), want.1.to_vec(), "{shape:?} dγ");
            assert_eq!(got.2.to_vec(), want.2.to_vec(), "{shape:?} dβ");
            assert!(got.0.to_vec().iter().any(|v| *v != E::ZERO));
        }
        // the pooling's errors, as max_pool2d_forward gives them
        let flat = Tensor::<E>::zeros(&[4, 3]);
        let (g, b) = (Tensor::<E>::ones(&[3]), Tensor::<E>::zeros(&[3]));
        let e = batch_norm_relu_max_pool_forward(&flat, &g, &b, E::ZERO, sq(2)).unwrap_err();
        assert!(e.to_string().contains("max_pool2d"), "{e}");
    }

    #[test]
    fn batch_norm_relu_and_max_pool_fused_are_the_three_ops_in_a_row() {
        fused_pool_matches::<f64>(3);
        fused_pool_matches::<f32>(4);
    }

    /// The first layer's fused backward pass (convolution → batch norm → ReLU → max pool,
    /// the input needing no gradient) against batch norm's backward pass and then the
    /// convolution's: the same `dγ`, `dβ` and bias gradient to the bit (the same sums in the
    /// same order), the weight gradient up to rounding (summed in another order); `tol` is
    /// relative to the largest weight gradient.
    fn fused_first_layer_matches<E: Element>(seed: u64, tol: f64) {
        use crate::{conv2d_backward, conv2d_forward};
        let mut rng = Rng::seed(seed);
        let pad = |p: usize| Conv2dParams {
            padding: (p, p),
            ..Default::default()
        };
        let strided = Conv2dParams {
            stride: (2, 1),
            padding: (1, 2),
            ..Default::default()
        };
        let rows_cols = |ph: usize, pw: usize| Conv2dParams {
            padding: (ph, pw),
            ..Default::default()
        };
        // the plane kernel's shapes (one channel, as wide out as in: 3×3 on 28 columns,
        // rows padded by none or two, 5×5, planes shorter than a vector), then the portable
        // loop's (no padding, strides, two input channels)
        for (x_shape, w_shape, cp) in [
            ([4, 1, 28, 28], [5, 1, 3, 3], pad(1)),
            ([3, 1, 9, 20], [2, 1, 3, 3], rows_cols(0, 1)),
            ([2, 1, 6, 19], [2, 1, 3, 3], rows_cols(2, 1)),
            ([3, 1, 12, 12], [3, 1, 5, 5], pad(2)),
            ([5, 1, 3, 6], [2, 1, 3, 3], pad(1)),
            ([3, 1, 9, 9], [3, 1, 3, 3], pad(0)),
            ([2, 1, 10, 9], [4, 1, 3, 2], strided),
            ([3, 2, 8, 8], [3, 2, 3, 3], pad(1)),
        ] {
            let x = Tensor::<E>::rand_normal(&x_shape, 0.0, 1.0, &mut rng);
            let w = Tensor::<E>::rand_normal(&w_shape, 0.0, 0.5, &mut rng);
            let bias = Tensor::<E>::rand_normal(&[w_shape[0]], 0.0, 0.5, &mut rng);
            let c = w_shape[0];
            let g = Tensor::<E>::rand_normal(&[c], 1.0, 0.5, &mut rng);
            let b = Tensor::<E>::rand_normal(&[c], 0.0, 0.5, &mut rng);
            let (eps, p) = (E::from_f64(1e-5), Pool2dParams::square(2));
            let y = conv2d_forward(&x, &w, Some(&bias), cp);
            let (out, idx, mean, var) =
                batch_norm_relu_max_pool_forward(&y, &g, &b, eps, p).unwrap();
            let dy = Tensor::<E>::rand_normal(out.shape(), 0.0, 1.0, &mut rng);
            let (dconv, dg, db) =
                batch_norm_relu_max_pool_backward(&y, &g, &b, [&mean, &var], eps, p, &dy, &idx);
            let (_, dw, dbias) = conv2d_backward(&x, &w, &dconv, cp, (false, true, true));
            let (dw, dbias) = (dw.unwrap(), dbias.unwrap());
            for want_bias in [true, false] {
                let got = conv2d_batch_norm_relu_max_pool_backward(
                    (&x, &w_shape, cp, want_bias),
                    &y,
                    &g,
                    &b,
                    [&mean, &var],
                    eps,
                    p,
                    &dy,
                    &idx,
                );
                let at = format!("{x_shape:?} {w_shape:?}");
                assert_eq!(got.0.shape(), &w_shape[..], "{at}");
                let scale = dw
                    .to_vec()
                    .iter()
                    .map(|v| v.to_f64().abs())
                    .fold(0.0, f64::max);
                assert!(scale > 0.0, "{at}");
                for (a, b) in got.0.to_vec().iter().zip(dw.to_vec()) {
                    assert!(
                        (a.to_f64() - b.to_f64()).abs() <= tol * scale,
                        "{at} dw {a} {b}"
                    );
                }
                match &got.1 {
                    Some(d) => assert_eq!(d.to_vec(), dbias.to_vec(), "{at} bias"),
                    None => assert!(!want_bias),
                }
                assert_eq!(got.2.to_vec(), dg.to_vec(), "{at} dγ");
                assert_eq!(got.3.to_vec(), db.to_vec(), "{at} dβ");
            }
        }
    }

    #[test]
    fn the_first_layers_fused_backward_is_batch_norms_then_the_convolutions() {
        fused_first_layer_matches::<f64>(21, 1e-12);
        fused_first_layer_matches::<f32>(22, 1e-5);
    }

    #[test]
    fn the_weight_gradient_by_channel_takes_one_group() {
        let x = Tensor::<f64>::zeros(&[1, 2, 4, 4]);
        let groups = Conv2dParams {
            groups: 2,
            ..Default::default()
        };
        let e = ChannelWeightGrad::new(&x, &[4, 1, 3, 3], groups)
            .err()
            .unwrap();
        assert!(e.to_string().contains("one group, not 2"), "{e}");
        let e = ChannelWeightGrad::new(&x, &[4, 3, 3, 3], Conv2dParams::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("conv2d"), "{e}");
    }

    #[test]
    #[should_panic(expected = "the convolution's output")]
    fn the_first_layers_fused_backward_refuses_an_output_that_is_not_the_convolutions() {
        let x = Tensor::<f64>::zeros(&[2, 1, 4, 4]);
        // a 3×3 kernel without padding makes 2×2 planes, not 4×4
        let y = Tensor::<f64>::zeros(&[2, 3, 4, 4]);
        let (g, b) = (Tensor::ones(&[3]), Tensor::zeros(&[3]));
        let (mean, var) = (Tensor::zeros(&[3]), Tensor::ones(&[3]));
        let p = Pool2dParams::square(2);
        let dy = Tensor::zeros(&[2, 3, 2, 2]);
        conv2d_batch_norm_relu_max_pool_backward(
            (&x, &[3, 1, 3, 3], Conv2dParams::default(), false),
            &y,
            &g,
            &b,
            [&mean, &var],
            0.0,
            p,
            &dy,
            &[0; 24],
        );
    }

    #[test]
    fn the_simd_kernels_agree_with_the_portable_ones_in_f32() {
        let mut rng = Rng::seed(7);
        // plane sizes below, at and past the 16 and 32 lanes; flat features
        for shape in [
            &[4, 3, 28, 28][..],
            &[5, 2, 7, 7],
            &[3, 4, 4, 4],
            &[2, 2, 1, 33],
            &[9, 5],
        ] {
            let c = shape[1];
            let x = Tensor::<f32>::rand_normal(shape, 0.5, 2.0, &mut rng);
            let g = Tensor::<f32>::rand_normal(&[c], 1.0, 0.5, &mut rng);
            let b = Tensor::<f32>::rand_normal(&[c], 0.0, 0.5, &mut rng);
            let dy = Tensor::<f32>::rand_normal(shape, 0.0, 1.0, &mut rng);
            let run = |portable: bool| {
                PORTABLE.with(|p| p.set(portable));
                let (y, mean, var) = batch_norm_forward(&x, &g, &b, 1e-5);
                let (dx, dg, db) = batch_norm_backward(&x, &g, &mean, &var, 1e-5, &dy);
                let aff = channel_affine_forward(&x, &g, &b);
                let (yr, _, _) = batch_norm_relu_forward(&x, &g, &b, 1e-5);
                let (dxr, dgr, dbr) = batch_norm_relu_backward(&x, &g, &b, &mean, &var, 1e-5, &dy);
                PORTABLE.with(|p| p.set(false));
                [y, mean, var, dx, dg, db, aff, yr, dxr, dgr, dbr].map(|t| t.to_vec())
            };
            // rayon tasks may run on other threads, where the flag is not set; run the
            // portable version inside one task so it covers every plane
            let fast = run(false);
            let slow = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap()
                .install(|| run(true));
            for (k, (a, w)) in fast.iter().zip(&slow).enumerate() {
                let ok = a
                    .iter()
                    .zip(w)
                    .all(|(p, q)| (p - q).abs() <= 1e-4 * (1.0 + q.abs()));
                assert!(ok && a.len() == w.len(), "{shape:?} output {k}");
            }
        }
    }

    /// The plain formulas, element by element: the reference for the fused kernels.
    fn reference<E: Element>(
        x: &Tensor<E>,
        gamma: &Tensor<E>,
        beta: &Tensor<E>,
        eps: E,
        dy: &Tensor<E>,
    ) -> [Vec<E>; 6] {
        let (n, _, hw) = dims(x.shape());
        let m = E::from_usize(n * hw);
        let xd = x.data();
        let mean: Vec<E> = channel_sums(x.shape(), |i, _| xd[i])
            .into_iter()
            .map(|s| s / m)
            .collect();
        let var: Vec<E> = channel_sums(x.shape(), |i, ch| (xd[i] - mean[ch]) * (xd[i] - mean[ch]))
            .into_iter()
            .map(|s| s / m)
            .collect();
        let inv: Vec<E> = var.iter().map(|&v| E::ONE / (v + eps).sqrt()).collect();
        let (g, b, gd) = (gamma.data(), beta.data(), dy.data());
        let y = map_planes(x.shape(), |i, ch| {
            g[ch] * (xd[i] - mean[ch]) * inv[ch] + b[ch]
        });
        let db = channel_sums(x.shape(), |i, _| gd[i]);
        let dg = channel_sums(x.shape(), |i, ch| gd[i] * (xd[i] - mean[ch]) * inv[ch]);
        let dx = map_planes(x.shape(), |i, ch| {
            let xhat = (xd[i] - mean[ch]) * inv[ch];
            g[ch] * inv[ch] / m * (m * gd[i] - db[ch] - xhat * dg[ch])
        });
        [y, mean, var, dx, dg, db]
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
    }

    #[test]
    fn the_fused_kernels_agree_with_the_plain_formulas() {
        let mut rng = Rng::seed(4);
        // images with odd plane sizes (tails of the 16 lanes), flat features, one sample
        for shape in [&[5, 3, 7, 9][..], &[6, 4], &[1, 2, 4, 4], &[3, 17, 5, 5]] {
            let c = shape[1];
            // a large offset: the shifted sums must not cancel
            let x = Tensor::<f64>::rand_normal(shape, 100.0, 2.0, &mut rng);
            let g = Tensor::<f64>::rand_normal(&[c], 1.0, 0.5, &mut rng);
            let b = Tensor::<f64>::rand_normal(&[c], 0.0, 0.5, &mut rng);
            let dy = Tensor::<f64>::rand_normal(shape, 0.0, 1.0, &mut rng);
            let want = reference(&x, &g, &b, 1e-5, &dy);
            let (y, mean, var) = batch_norm_forward(&x, &g, &b, 1e-5);
            let (dx, dg, db) = batch_norm_backward(&x, &g, &mean, &var, 1e-5, &dy);
            let got = [y, mean, var, dx, dg, db].map(|t| t.to_vec());
            for (k, (a, w)) in got.iter().zip(&want).enumerate() {
                assert!(close(a, w, 1e-9), "{shape:?} output {k}: {a:?} vs {w:?}");
            }
        }
    }

    #[test]
    fn batch_norm_with_relu_is_relu_of_batch_norm_and_its_gradient() {
        let mut rng = Rng::seed(8);
        for shape in [&[5, 3, 7, 9][..], &[6, 4], &[2, 2, 4, 4]] {
            let c = shape[1];
            let x = Tensor::<f64>::rand_normal(shape, 1.0, 2.0, &mut rng);
            let g = Tensor::<f64>::rand_normal(&[c], 1.0, 0.5, &mut rng);
            let b = Tensor::<f64>::rand_normal(&[c], 0.0, 0.5, &mut rng);
            let dy = Tensor::<f64>::rand_normal(shape, 0.0, 1.0, &mut rng);
            let (z, mean, var) = batch_norm_forward(&x, &g, &b, 1e-5);
            let (y, mean_r, var_r) = batch_norm_relu_forward(&x, &g, &b, 1e-5);
            assert_eq!(y.to_vec(), z.relu().to_vec(), "{shape:?} forward");
            assert_eq!(
                (mean.to_vec(), var.to_vec()),
                (mean_r.to_vec(), var_r.to_vec())
            );
            // the ReLU's gradient first (dy where z > 0), then batch norm's
            let masked = Tensor::from_vec(
                dy.to_vec()
                    .iter()
                    .zip(z.to_vec())
                    .map(|(&d, z)| if z > 0.0 { d } else { 0.0 })
                    .collect(),
                shape,
            );
            let want = batch_norm_backward(&x, &g, &mean, &var, 1e-5, &masked);
            let got = batch_norm_relu_backward(&x, &g, &b, &mean, &var, 1e-5, &dy);
            for (k, (a, w)) in [got.0, got.1, got.2]
                .iter()
                .zip([want.0, want.1, want.2])
                .enumerate()
            {
                assert!(
                    close(&a.to_vec(), &w.to_vec(), 1e-12),
                    "{shape:?} gradient {k}"
                );
            }
        }
    }

    #[test]
    fn the_recomputed_relu_mask_is_the_forward_outputs_sign_in_f32() {
        let mut rng = Rng::seed(9);
        // sizes with and without 16-lane tails; β near 0, so many outputs sit near the kink
        for shape in [&[8, 3, 14, 14][..], &[5, 4, 7, 7], &[7, 6]] {
            let c = shape[1];
            let x = Tensor::<f32>::rand_normal(shape, 0.3, 1.0, &mut rng);
            let g = Tensor::<f32>::rand_normal(&[c], 1.0, 0.5, &mut rng);
            let b = Tensor::<f32>::rand_normal(&[c], 0.0, 0.01, &mut rng);
            let dy = Tensor::<f32>::rand_normal(shape, 0.0, 1.0, &mut rng);
            let (y, mean, var) = batch_norm_relu_forward(&x, &g, &b, 1e-5);
            let masked: Vec<f32> = dy
                .to_vec()
                .iter()
                .zip(y.to_vec())
                .map(|(&d, y)| if y > 0.0 { d } else { 0.0 })
                .collect();
            let masked = Tensor::from_vec(masked, shape);
            let want = batch_norm_backward(&x, &g, &mean, &var, 1e-5, &masked);
            let got = batch_norm_relu_backward(&x, &g, &b, &mean, &var, 1e-5, &dy);
            // the same kernels on the same masked values: equal to the bit
            assert_eq!(got.0.to_vec(), want.0.to_vec(), "{shape:?} dx");
            assert_eq!(got.1.to_vec(), want.1.to_vec(), "{shape:?} dγ");
            assert_eq!(got.2.to_vec(), want.2.to_vec(), "{shape:?} dβ");
        }
    }

    #[test]
    fn f32_statistics_stay_accurate_with_a_large_mean() {
        let mut rng = Rng::seed(5);
        let x64 = Tensor::<f64>::rand_normal(&[64, 2, 14, 14], 1000.0, 0.01, &mut rng);
        let x32 = Tensor::<f32>::from_vec(
            x64.to_vec().iter().map(|&v| v as f32).collect(),
            x64.shape(),
        );
        let (g, b) = (Tensor::<f32>::ones(&[2]), Tensor::<f32>::zeros(&[2]));
        let (y, _, var) = batch_norm_forward(&x32, &g, &b, 0.0);
        // the exact variance of the f32 inputs
        let xs: Vec<f64> = x32.to_vec().iter().map(|&v| f64::from(v)).collect();
        let (_, c, hw) = dims(x32.shape());
        for ch in 0..c {
            let vals: Vec<f64> = planes_of(&xs, c, hw, ch).flatten().copied().collect();
            let mu = vals.iter().sum::<f64>() / vals.len() as f64;
            let v = vals.iter().map(|a| (a - mu) * (a - mu)).sum::<f64>() / vals.len() as f64;
            assert!(
                (f64::from(var.to_vec()[ch]) - v).abs() < 1e-3 * v,
                "{} vs {v}",
                var.to_vec()[ch]
            );
        }
        // the mean itself is stored in f32: at 1000 its half-ulp is 3e-5, which is 3e-3
        // standard deviations of 0.01, so the normalised mean is that close to 0, no closer
        let m = y.to_vec().iter().map(|&v| f64::from(v)).sum::<f64>() / y.numel() as f64;
        assert!(m.abs() < 4e-3, "normalised mean {m}");
    }

    #[test]
    fn the_channel_affine_map_agrees_with_its_formula() {
        let mut rng = Rng::seed(6);
        let x = Tensor::<f64>::rand_normal(&[3, 5, 3, 7], 0.0, 1.0, &mut rng);
        let s = Tensor::<f64>::rand_normal(&[5], 0.0, 1.0, &mut rng);
        let t = Tensor::<f64>::rand_normal(&[5], 0.0, 1.0, &mut rng);
        let (xd, sd, td) = (x.data(), s.data(), t.data());
        let want = map_planes(x.shape(), |i, ch| sd[ch] * xd[i] + td[ch]);
        assert_eq!(channel_affine_forward(&x, &s, &t).to_vec(), want);
    }
}
