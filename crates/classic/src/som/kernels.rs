//! The SOM's inner loops over one input vector and one unit's weights (`d` values each).
//!
//! Float sums do not vectorise on their own (reordering them changes the result, and there
//! is no fast-math), so each kernel keeps [`LANES`] partial sums that the compiler maps onto
//! SIMD registers; the order of additions is fixed, so results do not depend on the CPU.
//! [`Kernels::detect`] picks an AVX2 or AVX-512 build of the same code at run time.
//!
//! [`Kernels::sweep`] is the online training's one pass over the map: each unit moves
//! towards this iteration's sample and then measures its distance to the next one, so the
//! weights are read and written once per iteration instead of read twice and written once,
//! and the whole loop over the units runs inside one build (no call per unit).

use super::Distance;

/// A weight nearer zero than this (2⁻⁶³ = √[`f32::MIN_POSITIVE`]) is set to zero when a
/// unit moves. Below it, the weight's square and its pull by a gain ≥ 10⁻⁹ could be
/// subnormal numbers, which x86 CPUs handle about a hundred times slower: on MNIST the
/// weights of the blank border pixels shrink geometrically towards zero and, unflushed,
/// spent most of the training down there. No result changes visibly: a feature of data
/// measured in units of 10⁻¹⁹ would have to be rescaled anyway.
pub const TINY: f32 = 1.084_202_2e-19;

/// Gains below this are not applied: they would not change an f32 weight.
pub const NEGLIGIBLE: f32 = 1e-9;

// what TINY promises: neither a kept weight's square nor its smallest pull is subnormal
const _: () = assert!(TINY * TINY >= f32::MIN_POSITIVE && TINY * NEGLIGIBLE >= f32::MIN_POSITIVE);

/// Partial sums per kernel (two AVX-512 registers of f32).
pub const LANES: usize = 32;

/// Sums the partial sums pairwise (a tree, so the adds overlap instead of waiting on each
/// other; the order is still fixed).
#[inline(always)]
fn fold_lanes(mut acc: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    acc[0]
}

/// Two chunks as fixed-size arrays, so the lane loops carry no bounds checks and vectorise.
#[inline(always)]
fn lanes<'a>(x: &'a [f32], y: &'a [f32]) -> (&'a [f32; LANES], &'a [f32; LANES]) {
    (
        x.try_into().expect("a whole chunk"),
        y.try_into().expect("a whole chunk"),
    )
}

/// `Σ (a − b)²`.
#[inline(always)]
fn sq_dist_generic(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y) = lanes(x, y);
        for l in 0..LANES {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        let d = x - y;
        acc[l] += d * d;
    }
    fold_lanes(acc)
}

/// `Σ |a − b|`.
#[inline(always)]
fn l1_dist_generic(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y) = lanes(x, y);
        for l in 0..LANES {
            acc[l] += (x[l] - y[l]).abs();
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] += (x - y).abs();
    }
    fold_lanes(acc)
}

/// `max |a − b|`.
#[inline(always)]
fn linf_dist_generic(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y) = lanes(x, y);
        for l in 0..LANES {
            acc[l] = acc[l].max((x[l] - y[l]).abs());
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] = acc[l].max((x - y).abs());
    }
    acc.into_iter().fold(0.0, f32::max)
}

/// `(Σ a·b, Σ b²)`.
#[inline(always)]
fn dot_norm_generic(a: &[f32], b: &[f32]) -> (f32, f32) {
    let mut acc = [0.0f32; LANES];
    let mut nb = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y) = lanes(x, y);
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
            nb[l] += y[l] * y[l];
        }
    }
    for (l, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[l] += x * y;
        nb[l] += y * y;
    }
    (fold_lanes(acc), fold_lanes(nb))
}

/// `w ← w + g·(x − w)`, then `|w| <` [`TINY`] → 0.
#[inline(always)]
fn pull_generic(w: &mut [f32], x: &[f32], g: f32) {
    let n = w.len().min(x.len());
    let (w, x) = (&mut w[..n], &x[..n]);
    for i in 0..n {
        let v = w[i] + g * (x[i] - w[i]);
        w[i] = if v.abs() < TINY { 0.0 } else { v };
    }
}

/// The activation distance from `x` (norm `x_norm`, used by the cosine) to `w`; squared
/// for Euclidean.
#[inline(always)]
fn distance_generic(metric: Distance, x: &[f32], w: &[f32], x_norm: f32) -> f32 {
    match metric {
        Distance::Euclidean => sq_dist_generic(x, w),
        Distance::Manhattan => l1_dist_generic(x, w),
        Distance::Chebyshev => linf_dist_generic(x, w),
        Distance::Cosine => {
            let (dot, ww) = dot_norm_generic(x, w);
            1.0 - dot / (ww.sqrt() * x_norm + 1e-8)
        }
    }
}

/// One pass over the units of `weights` (`d` values each): unit `k` moves towards `x` by
/// `gains[k]` (skipped below [`NEGLIGIBLE`]; no moves when `gains` is empty), then its
/// distance to `next` goes to `dist[k]` (none when `next` is empty).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn sweep_generic(
    weights: &mut [f32],
    d: usize,
    x: &[f32],
    gains: &[f32],
    next: &[f32],
    next_norm: f32,
    metric: Distance,
    dist: &mut [f32],
) {
    for (k, w) in weights.chunks_exact_mut(d).enumerate() {
        if let Some(&g) = gains.get(k) {
            if g.abs() >= NEGLIGIBLE {
                pull_generic(w, x, g);
            }
        }
        if !next.is_empty() {
            dist[k] = distance_generic(metric, next, w, next_norm);
        }
    }
}

macro_rules! with_features {
    ($name:ident, $feat:literal) => {
        mod $name {
            #[target_feature(enable = $feat)]
            pub unsafe fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
                super::sq_dist_generic(a, b)
            }
            #[target_feature(enable = $feat)]
            pub unsafe fn l1_dist(a: &[f32], b: &[f32]) -> f32 {
                super::l1_dist_generic(a, b)
            }
            #[target_feature(enable = $feat)]
            pub unsafe fn linf_dist(a: &[f32], b: &[f32]) -> f32 {
                super::linf_dist_generic(a, b)
            }
            #[target_feature(enable = $feat)]
            pub unsafe fn dot_norm(a: &[f32], b: &[f32]) -> (f32, f32) {
                super::dot_norm_generic(a, b)
            }
            #[target_feature(enable = $feat)]
            pub unsafe fn pull(w: &mut [f32], x: &[f32], g: f32) {
                super::pull_generic(w, x, g)
            }
            #[target_feature(enable = $feat)]
            #[allow(clippy::too_many_arguments)]
            pub unsafe fn sweep(
                weights: &mut [f32],
                d: usize,
                x: &[f32],
                gains: &[f32],
                next: &[f32],
                next_norm: f32,
                metric: super::Distance,
                dist: &mut [f32],
            ) {
                super::sweep_generic(weights, d, x, gains, next, next_norm, metric, dist)
            }
        }
    };
}

/// The Euclidean online pass written with intrinsics, one pass per unit: each block of 32
/// weights is loaded once, moved, stored, and measured against the next sample while still
/// in registers. The lanes, the order of the operations (no FMA) and the tail are those of
/// the plain kernels, so the results are the same bit for bit; the compiler's own
/// vectorisation of the inlined generic pass fell back to 2-wide code in places.
#[cfg(target_arch = "x86_64")]
mod euclidean {
    use std::arch::x86_64::*;

    use super::{fold_lanes, LANES, NEGLIGIBLE, TINY};

    /// The scalar tail of one unit (weights `from..`), lane by lane as the generic kernels
    /// do, then the folded sum of the lanes.
    #[inline(always)]
    fn tail<const PULL: bool, const DIST: bool>(
        w: &mut [f32],
        x: &[f32],
        g: f32,
        next: &[f32],
        from: usize,
        mut acc: [f32; LANES],
    ) -> f32 {
        for (l, k) in (from..w.len()).enumerate() {
            if PULL {
                let v = w[k] + g * (x[k] - w[k]);
                w[k] = if v.abs() < TINY { 0.0 } else { v };
            }
            if DIST {
                let d = next[k] - w[k];
                acc[l] += d * d;
            }
        }
        if DIST {
            fold_lanes(acc)
        } else {
            0.0
        }
    }

    /// One unit: `w ← w + g(x − w)` flushed below [`TINY`] (if `PULL`), then
    /// `Σ (next − w)²` (if `DIST`, else 0).
    ///
    /// # Safety
    /// AVX-512F; `x` (if `PULL`) and `next` (if `DIST`) at least as long as `w`. Every
    /// access goes through a masked load or store whose mask covers only indices below
    /// `w.len()`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn unit_avx512<const PULL: bool, const DIST: bool>(
        w: &mut [f32],
        x: &[f32],
        g: f32,
        next: &[f32],
    ) -> f32 {
        let n = w.len();
        let (gv, tiny, zero) = (_mm512_set1_ps(g), _mm512_set1_ps(TINY), _mm512_setzero_ps());
        let (mut acc0, mut acc1) = (zero, zero);
        let (wp, xp, np) = (w.as_mut_ptr(), x.as_ptr(), next.as_ptr());
        // `w ← w + g(x − w)`, zero below TINY, on the lanes of `live`
        let pull = |at: usize, live: __mmask16| {
            let wv = _mm512_maskz_loadu_ps(live, wp.wrapping_add(at));
            let xv = _mm512_maskz_loadu_ps(live, xp.wrapping_add(at));
            let v = _mm512_add_ps(wv, _mm512_mul_ps(gv, _mm512_sub_ps(xv, wv)));
            let small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(v), tiny);
            let v = _mm512_mask_mov_ps(v, small, zero);
            _mm512_mask_storeu_ps(wp.wrapping_add(at), live, v);
            v
        };
        // `(next − w)²` on the lanes of `live`, zero elsewhere
        let square = |at: usize, live: __mmask16, wv: __m512| {
            let d = _mm512_sub_ps(_mm512_maskz_loadu_ps(live, np.wrapping_add(at)), wv);
            _mm512_mul_ps(d, d)
        };
        // blocks of 32 (lanes 0–15 in acc0, 16–31 in acc1); the tail of r < 32 values
        // takes lanes 0..r, as in the generic kernels, through masked loads and stores
        // (lanes outside the mask are never read or written, so the addresses past the end
        // are formed with wrapping_add and not dereferenced)
        let mut i = 0;
        while i < n {
            let r = (n - i).min(LANES);
            let live0 = if r >= 16 {
                0xffff
            } else {
                ((1u32 << r) - 1) as u16
            };
            let live1 = if r >= LANES {
                0xffff
            } else {
                ((1u32 << r.saturating_sub(16)) - 1) as u16
            };
            let (w0, w1) = if PULL {
                (pull(i, live0), pull(i + 16, live1))
            } else {
                (
                    _mm512_maskz_loadu_ps(live0, wp.wrapping_add(i)),
                    _mm512_maskz_loadu_ps(live1, wp.wrapping_add(i + 16)),
                )
            };
            if DIST {
                // lanes past the end square 0 − 0: adding +0 leaves a sum of squares as it is
                acc0 = _mm512_add_ps(acc0, square(i, live0, w0));
                acc1 = _mm512_add_ps(acc1, square(i + 16, live1, w1));
            }
            i += LANES;
        }
        if !DIST {
            return 0.0;
        }
        // the generic kernels' pairwise fold, 32 → 16 → 8 → 4 → 2 → 1, in registers
        let s16 = _mm512_add_ps(acc0, acc1);
        let lo8 = _mm512_castps512_ps256(s16);
        let hi8 = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(s16)));
        let s8 = _mm256_add_ps(lo8, hi8);
        let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)))
    }

    /// As [`unit_avx512`] with four AVX2 registers for the 32 lanes.
    ///
    /// # Safety
    /// AVX2; `x` (if `PULL`) and `next` (if `DIST`) at least as long as `w`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn unit_avx2<const PULL: bool, const DIST: bool>(
        w: &mut [f32],
        x: &[f32],
        g: f32,
        next: &[f32],
    ) -> f32 {
        let full = w.len() / LANES * LANES;
        let (gv, tiny, sign) = (
            _mm256_set1_ps(g),
            _mm256_set1_ps(TINY),
            _mm256_set1_ps(-0.0),
        );
        let mut acc = [_mm256_setzero_ps(); 4];
        let (wp, xp, np) = (w.as_mut_ptr(), x.as_ptr(), next.as_ptr());
        let mut i = 0;
        while i < full {
            for (r, a) in acc.iter_mut().enumerate() {
                let at = i + 8 * r;
                let mut wv = _mm256_loadu_ps(wp.add(at));
                if PULL {
                    let xv = _mm256_loadu_ps(xp.add(at));
                    let v = _mm256_add_ps(wv, _mm256_mul_ps(gv, _mm256_sub_ps(xv, wv)));
                    let small = _mm256_cmp_ps::<_CMP_LT_OQ>(_mm256_andnot_ps(sign, v), tiny);
                    wv = _mm256_andnot_ps(small, v);
                    _mm256_storeu_ps(wp.add(at), wv);
                }
                if DIST {
                    let d = _mm256_sub_ps(_mm256_loadu_ps(np.add(at)), wv);
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(d, d));
                }
            }
            i += LANES;
        }
        let mut lanes = [0.0f32; LANES];
        for (r, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(lanes.as_mut_ptr().add(8 * r), *a);
        }
        tail::<PULL, DIST>(w, x, g, next, full, lanes)
    }

    macro_rules! sweep_with {
        ($name:ident, $unit:ident, $feat:literal) => {
            /// The Euclidean [`super::Kernels::sweep`] over whole units.
            ///
            /// # Safety
            /// The CPU has the feature; the lengths are those `Kernels::sweep` checks.
            #[target_feature(enable = $feat)]
            pub unsafe fn $name(
                weights: &mut [f32],
                d: usize,
                x: &[f32],
                gains: &[f32],
                next: &[f32],
                dist: &mut [f32],
            ) {
                let measure = !next.is_empty();
                for (k, w) in weights.chunks_exact_mut(d).enumerate() {
                    let g = gains.get(k).copied().unwrap_or(0.0);
                    match (g.abs() >= NEGLIGIBLE, measure) {
                        (true, true) => dist[k] = $unit::<true, true>(w, x, g, next),
                        (false, true) => dist[k] = $unit::<false, true>(w, x, g, next),
                        (true, false) => {
                            $unit::<true, false>(w, x, g, next);
                        }
                        (false, false) => {}
                    }
                }
            }
        };
    }

    sweep_with!(sweep_avx512, unit_avx512, "avx512f");
    sweep_with!(sweep_avx2, unit_avx2, "avx2");
}

#[cfg(target_arch = "x86_64")]
with_features!(avx2, "avx2");
#[cfg(target_arch = "x86_64")]
with_features!(avx512, "avx512f");

/// Which build of the kernels this CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
    /// AVX2.
    Avx2,
    /// AVX-512F.
    Avx512,
}

impl Kernels {
    /// The widest build the running CPU supports.
    pub fn detect() -> Kernels {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernels::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Kernels::Avx2;
            }
        }
        Kernels::Baseline
    }
}

macro_rules! dispatch {
    ($self:expr, $f:ident ( $($arg:expr),* )) => {
        match $self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` chose this build only after the CPU reported the feature.
            Kernels::Avx512 => unsafe { avx512::$f($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX2.
            Kernels::Avx2 => unsafe { avx2::$f($($arg),*) },
            _ => paste_generic!($f)($($arg),*),
        }
    };
}

macro_rules! paste_generic {
    (sq_dist) => {
        sq_dist_generic
    };
    (l1_dist) => {
        l1_dist_generic
    };
    (linf_dist) => {
        linf_dist_generic
    };
    (dot_norm) => {
        dot_norm_generic
    };
    (pull) => {
        pull_generic
    };
    (sweep) => {
        sweep_generic
    };
}

impl Kernels {
    /// `Σ (a − b)²`. `a` and `b` have the same length.
    #[inline]
    pub fn sq_dist(self, a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        dispatch!(self, sq_dist(a, b))
    }
    /// `Σ |a − b|`.
    #[inline]
    pub fn l1_dist(self, a: &[f32], b: &[f32]) -> f32 {
        dispatch!(self, l1_dist(a, b))
    }
    /// `max |a − b|`.
    #[inline]
    pub fn linf_dist(self, a: &[f32], b: &[f32]) -> f32 {
        dispatch!(self, linf_dist(a, b))
    }
    /// `(a·b, ‖b‖²)`.
    #[inline]
    pub fn dot_norm(self, a: &[f32], b: &[f32]) -> (f32, f32) {
        dispatch!(self, dot_norm(a, b))
    }
    /// `w ← w + g·(x − w)`, then `|w| <` [`TINY`] → 0.
    #[inline]
    pub fn pull(self, w: &mut [f32], x: &[f32], g: f32) {
        debug_assert_eq!(w.len(), x.len());
        dispatch!(self, pull(w, x, g))
    }

    /// One online-training pass over the units of `weights` (`d` values each): unit `k`
    /// moves towards `x` by `gains[k]` (gains below [`NEGLIGIBLE`] are skipped; an empty
    /// `gains` moves nothing), then its `metric` distance to `next` (norm `next_norm`) is
    /// written to `dist[k]` (an empty `next` measures nothing).
    ///
    /// # Panics
    /// If the lengths disagree: `weights` not whole units of `d`, `x` or a non-empty `next`
    /// not `d` long, a non-empty `gains` or `dist` not one per unit.
    #[allow(clippy::too_many_arguments)]
    pub fn sweep(
        self,
        weights: &mut [f32],
        d: usize,
        x: &[f32],
        gains: &[f32],
        next: &[f32],
        next_norm: f32,
        metric: Distance,
        dist: &mut [f32],
    ) {
        let units = weights.len() / d.max(1);
        assert!(
            d > 0
                && weights.len() == units * d
                && (gains.is_empty() || (gains.len() == units && x.len() == d))
                && (next.is_empty() || (next.len() == d && dist.len() == units)),
            "Kernels::sweep: {} weights of {d}, x {}, gains {}, next {}, dist {}",
            weights.len(),
            x.len(),
            gains.len(),
            next.len(),
            dist.len()
        );
        #[cfg(target_arch = "x86_64")]
        if metric == Distance::Euclidean {
            match self {
                // SAFETY: `detect` chose this build only after the CPU reported AVX-512F;
                // the lengths were checked above.
                Kernels::Avx512 => unsafe {
                    return euclidean::sweep_avx512(weights, d, x, gains, next, dist);
                },
                // SAFETY: as above, for AVX2.
                Kernels::Avx2 => unsafe {
                    return euclidean::sweep_avx2(weights, d, x, gains, next, dist);
                },
                Kernels::Baseline => {}
            }
        }
        dispatch!(
            self,
            sweep(weights, d, x, gains, next, next_norm, metric, dist)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_build_agrees_with_the_plain_loops() {
        let a: Vec<f32> = (0..77).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..77).map(|i| (i as f32 * 0.11).cos()).collect();
        let sq: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let l1: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
        let linf = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        let dot: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let mut builds = vec![Kernels::Baseline];
        if Kernels::detect() != Kernels::Baseline {
            builds.push(Kernels::detect());
        }
        for k in builds {
            assert!((k.sq_dist(&a, &b) - sq).abs() < 1e-4, "{k:?}");
            assert!((k.l1_dist(&a, &b) - l1).abs() < 1e-4, "{k:?}");
            assert_eq!(k.linf_dist(&a, &b), linf, "{k:?}");
            assert!((k.dot_norm(&a, &b).0 - dot).abs() < 1e-4, "{k:?}");
            let mut w = a.clone();
            k.pull(&mut w, &b, 0.25);
            for i in 0..77 {
                assert!((w[i] - (a[i] + 0.25 * (b[i] - a[i]))).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn the_sweep_gives_the_same_bits_in_every_build() {
        // lengths around the 16- and 32-lane blocks, the digits' 64 and MNIST's 784
        let mut builds = vec![Kernels::Baseline];
        if Kernels::detect() != Kernels::Baseline {
            builds.push(Kernels::detect());
        }
        #[cfg(target_arch = "x86_64")]
        if Kernels::detect() == Kernels::Avx512 {
            builds.push(Kernels::Avx2);
        }
        let units = 7;
        for d in [1usize, 5, 16, 17, 31, 32, 33, 48, 64, 70, 784] {
            let val = |i: usize, f: f32| ((i as f32 * f).sin() * 2.0).powi(3);
            // unit 4 holds tiny weights (≈ 10⁻²⁵) and x is 0 at every third feature: moving
            // halfway leaves ≈ 10⁻²⁵ there, which the flush sets to zero
            let w0: Vec<f32> = (0..units * d)
                .map(|i| val(i, 0.37) * if i / d == 4 { 1e-25 } else { 1.0 })
                .collect();
            let x: Vec<f32> = (0..d)
                .map(|i| if i % 3 == 0 { 0.0 } else { val(i, 0.11) })
                .collect();
            let next: Vec<f32> = (0..d).map(|i| val(i, 0.23)).collect();
            // gains: applied, skipped (below NEGLIGIBLE), one large enough to leave tiny
            // weights that the flush sets to zero
            let gains = [0.3, 1e-12, 0.999_999_9, 0.0, 0.5, 1.0, 2e-9];
            for metric in [Distance::Euclidean, Distance::Cosine] {
                let norm = next.iter().map(|v| v * v).sum::<f32>().sqrt();
                let mut want: Option<(Vec<f32>, Vec<f32>)> = None;
                for &k in &builds {
                    let mut w = w0.clone();
                    let mut dist = vec![0.0; units];
                    k.sweep(&mut w, d, &x, &gains, &next, norm, metric, &mut dist);
                    for i in (0..d).step_by(3) {
                        assert_eq!(w[4 * d + i], 0.0, "{k:?} d = {d}: not flushed");
                    }
                    // a second pass that only moves, and one that only measures
                    k.sweep(&mut w, d, &next, &gains, &[], 0.0, metric, &mut []);
                    let mut again = vec![0.0; units];
                    k.sweep(&mut w, d, &[], &[], &x, norm, metric, &mut again);
                    dist.extend(again);
                    match &want {
                        None => want = Some((w, dist)),
                        Some((ww, wd)) => {
                            let bits =
                                |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                            assert_eq!(bits(&w), bits(ww), "{k:?} d = {d} {metric:?}");
                            assert_eq!(bits(&dist), bits(wd), "{k:?} d = {d} {metric:?}");
                        }
                    }
                }
                // and the plain loops: distances to 1e-4 relative, and the skipped unit
                let (w, dist) = want.unwrap();
                assert_eq!(&w[d..2 * d], &w0[d..2 * d]);
                if metric == Distance::Euclidean {
                    let plain: f32 = x.iter().zip(&w[..d]).map(|(a, b)| (a - b) * (a - b)).sum();
                    assert!(
                        (dist[units] - plain).abs() <= 1e-4 * plain.max(1.0),
                        "d = {d}"
                    );
                }
            }
        }
    }
}
