//! The SOM's inner loops over one input vector and one unit's weights (`d` values each).
//!
//! Float sums do not vectorise on their own (reordering them changes the result, and there
//! is no fast-math), so each kernel keeps [`LANES`] partial sums that the compiler maps onto
//! SIMD registers; the order of additions is fixed, so results do not depend on the CPU.
//! [`Kernels::detect`] picks an AVX2 or AVX-512 build of the same code at run time.

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

/// `w ← w + g·(x − w)`.
#[inline(always)]
fn pull_generic(w: &mut [f32], x: &[f32], g: f32) {
    let n = w.len().min(x.len());
    let (w, x) = (&mut w[..n], &x[..n]);
    for i in 0..n {
        w[i] += g * (x[i] - w[i]);
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
        }
    };
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
    /// `w ← w + g·(x − w)`.
    #[inline]
    pub fn pull(self, w: &mut [f32], x: &[f32], g: f32) {
        debug_assert_eq!(w.len(), x.len());
        dispatch!(self, pull(w, x, g))
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
}
