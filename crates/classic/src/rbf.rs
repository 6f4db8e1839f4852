//! Radial basis function networks (Broomhead & Lowe 1988) trained in the classic two
//! stages: the centres by k-means (k-means++ start, Arthur & Vassilvitskii 2007), the widths
//! by a stated heuristic, and the linear output weights by ridge regression in closed form.
//!
//! `φⱼ(x) = exp(−‖x − cⱼ‖² / 2σⱼ²)`, `y = W·[1; φ(x)]`.
//!
//! Width heuristic: `σⱼ = width_scale × √(mean ‖x − cⱼ‖² over the samples k-means gave to cⱼ)`,
//! the cluster's RMS radius (clusters of fewer than two samples take the median of the
//! others).
//!
//! # Shapes
//! Inputs are row-major `n × d` f32; centres `k × d`; outputs `n × classes`.
//!
//! ```
//! use backprop_classic::rbf::{RbfConfig, RbfNet};
//! // XOR: four points, four centres
//! let x = [0.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
//! let cfg = RbfConfig { centres: 4, ridge: 1e-6, ..RbfConfig::default() };
//! let net = RbfNet::fit_classifier(&x, 2, &[0, 1, 1, 0], 2, &cfg).unwrap();
//! assert_eq!(net.classify(&x), vec![0, 1, 1, 0]);
//! ```

use backprop_tensor::{Rng, Tensor};
use rayon::prelude::*;

use crate::linalg::cholesky_solve;
use crate::{non_negative, positive, ClassicError};

/// Rows per GEMM when measuring distances or accumulating the normal equations.
const CHUNK: usize = 2048;

/// The two-stage training's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RbfConfig {
    /// Basis functions (k-means clusters).
    pub centres: usize,
    /// Lloyd iterations after the k-means++ start.
    pub kmeans_iterations: usize,
    /// Run k-means on at most this many samples (a seeded random subset; 0: all).
    pub kmeans_samples: usize,
    /// Multiplies every cluster's RMS radius to give σⱼ.
    pub width_scale: f64,
    /// Ridge coefficient of the output weights (the bias is not penalised).
    pub ridge: f64,
    /// Seeds k-means++ and the subset.
    pub seed: u64,
}

impl Default for RbfConfig {
    fn default() -> Self {
        RbfConfig {
            centres: 100,
            kmeans_iterations: 10,
            kmeans_samples: 0,
            width_scale: 1.0,
            ridge: 1e-3,
            seed: 0,
        }
    }
}

impl RbfConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// The first bad one, named as the CLI spells it.
    pub fn validate(&self) -> Result<(), ClassicError> {
        if self.centres == 0 || self.centres > 20_000 {
            return Err(ClassicError::new(
                "centres",
                format!("{}: must be in 1..=20000", self.centres),
            ));
        }
        positive("width-scale", self.width_scale)?;
        non_negative("ridge", self.ridge)
    }
}

/// Squared distances from each row of `x` (`n × d`) to each centre (`k × d`), `n × k`,
/// by `‖x‖² − 2x·c + ‖c‖²` (clamped at 0), one GEMM per chunk of rows.
pub fn sq_distances(x: &[f32], d: usize, centres: &[f32]) -> Vec<f32> {
    let k = centres.len() / d;
    let c = Tensor::from_vec(centres.to_vec(), &[k, d]);
    let c_sq: Vec<f32> = centres
        .chunks(d)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect();
    x.par_chunks(CHUNK * d)
        .flat_map_iter(|chunk| {
            let rows = chunk.len() / d;
            let mut xc = Tensor::from_vec(chunk.to_vec(), &[rows, d])
                .matmul_nt(&c)
                .into_vec();
            for r in 0..rows {
                let x_sq: f32 = chunk[r * d..(r + 1) * d].iter().map(|v| v * v).sum();
                for (v, cc) in xc[r * k..(r + 1) * k].iter_mut().zip(&c_sq) {
                    *v = (x_sq - 2.0 * *v + cc).max(0.0);
                }
            }
            xc
        })
        .collect()
}

fn argmin(row: &[f32]) -> (usize, f32) {
    row.iter().enumerate().fold(
        (0, f32::INFINITY),
        |a, (i, &v)| if v < a.1 { (i, v) } else { a },
    )
}

/// k-means with the k-means++ start: returns the centres (`k × d`). Empty clusters keep
/// their previous centre.
///
/// # Panics
/// If there are fewer samples than centres.
pub fn kmeans(x: &[f32], d: usize, k: usize, iterations: usize, seed: u64) -> Vec<f32> {
    let n = x.len() / d;
    assert!(n >= k, "kmeans: {n} samples for {k} centres");
    let mut rng = Rng::seed(seed);
    // k-means++: each next centre drawn with probability ∝ squared distance to the nearest
    let first = rng.below(n);
    let mut centres = x[first * d..(first + 1) * d].to_vec();
    let mut nearest: Vec<f32> = sq_distances(x, d, &centres);
    while centres.len() / d < k {
        let total: f64 = nearest.iter().map(|&v| f64::from(v)).sum();
        let mut r = rng.uniform() * total;
        let mut pick = n - 1;
        for (i, &v) in nearest.iter().enumerate() {
            r -= f64::from(v);
            if r <= 0.0 {
                pick = i;
                break;
            }
        }
        let c = &x[pick * d..(pick + 1) * d];
        let dist = sq_distances(x, d, c);
        nearest
            .iter_mut()
            .zip(dist)
            .for_each(|(a, b)| *a = a.min(b));
        centres.extend_from_slice(c);
    }
    for _ in 0..iterations {
        let dist = sq_distances(x, d, &centres);
        let mut sums = vec![0.0f64; k * d];
        let mut counts = vec![0usize; k];
        for i in 0..n {
            let (j, _) = argmin(&dist[i * k..(i + 1) * k]);
            counts[j] += 1;
            for (s, &v) in sums[j * d..(j + 1) * d]
                .iter_mut()
                .zip(&x[i * d..(i + 1) * d])
            {
                *s += f64::from(v);
            }
        }
        for j in 0..k {
            if counts[j] > 0 {
                for f in 0..d {
                    centres[j * d + f] = (sums[j * d + f] / counts[j] as f64) as f32;
                }
            }
        }
    }
    centres
}

/// A trained RBF network.
#[derive(Debug, Clone)]
pub struct RbfNet {
    dim: usize,
    /// `k × d`.
    pub centres: Vec<f32>,
    /// σⱼ, `k`.
    pub widths: Vec<f32>,
    /// `(k + 1) × outputs`, the bias row first.
    pub w_out: Vec<f64>,
    outputs: usize,
}

impl RbfNet {
    /// Two-stage training of a classifier on `x` (`n × d`) with `labels < classes`: k-means
    /// centres, RMS-radius widths, ridge output weights fitted to one-hot targets.
    ///
    /// # Errors
    /// A bad setting, mismatched or non-finite data, fewer samples than centres.
    pub fn fit_classifier(
        x: &[f32],
        d: usize,
        labels: &[usize],
        classes: usize,
        cfg: &RbfConfig,
    ) -> Result<RbfNet, ClassicError> {
        if labels.iter().any(|&l| l >= classes) {
            return Err(ClassicError::new(
                "dataset",
                format!("a label is not below {classes}"),
            ));
        }
        let mut net = RbfNet::centres_and_widths(x, d, labels.len(), classes, cfg)?;
        net.fit_output(
            x,
            labels.len(),
            |i, o| if labels[i] == o { 1.0 } else { 0.0 },
            cfg.ridge,
        )?;
        Ok(net)
    }

    /// Two-stage training of a regressor on `x` (`n × d`) with targets `y` (`n × outputs`,
    /// row-major): k-means centres, RMS-radius widths, ridge output weights fitted to `y`.
    ///
    /// # Errors
    /// A bad setting, mismatched or non-finite data, fewer samples than centres.
    pub fn fit_regressor(
        x: &[f32],
        d: usize,
        y: &[f32],
        outputs: usize,
        cfg: &RbfConfig,
    ) -> Result<RbfNet, ClassicError> {
        if outputs == 0 || y.len() % outputs != 0 || y.iter().any(|v| !v.is_finite()) {
            return Err(ClassicError::new(
                "dataset",
                format!("{} target values are not finite rows of {outputs}", y.len()),
            ));
        }
        let n = y.len() / outputs;
        let mut net = RbfNet::centres_and_widths(x, d, n, outputs, cfg)?;
        net.fit_output(x, n, |i, o| f64::from(y[i * outputs + o]), cfg.ridge)?;
        Ok(net)
    }

    /// The first two stages on `n` samples: checks, k-means centres, widths.
    fn centres_and_widths(
        x: &[f32],
        d: usize,
        n: usize,
        outputs: usize,
        cfg: &RbfConfig,
    ) -> Result<RbfNet, ClassicError> {
        cfg.validate()?;
        if d == 0 || x.len() != n * d || n == 0 {
            return Err(ClassicError::new(
                "dataset",
                format!("{} values for {n} targets of {d} features", x.len()),
            ));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(ClassicError::new(
                "dataset",
                "the samples hold NaN or infinite values",
            ));
        }
        if n < cfg.centres {
            return Err(ClassicError::new(
                "centres",
                format!("{}: more than the {n} samples", cfg.centres),
            ));
        }
        let sub = subset(x, d, n, cfg);
        let centres = kmeans(&sub, d, cfg.centres, cfg.kmeans_iterations, cfg.seed);
        let widths = rms_widths(&sub, d, &centres, cfg.width_scale);
        Ok(RbfNet {
            dim: d,
            centres,
            widths,
            w_out: Vec::new(),
            outputs,
        })
    }

    /// Input features.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Outputs (classes for a classifier).
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// The basis activations `[1; φ(x)]` of every row, `n × (k + 1)`.
    pub fn features(&self, x: &[f32]) -> Vec<f32> {
        let k = self.widths.len();
        let dist = sq_distances(x, self.dim, &self.centres);
        let inv: Vec<f32> = self.widths.iter().map(|s| 1.0 / (2.0 * s * s)).collect();
        dist.par_chunks(k)
            .flat_map_iter(|row| {
                std::iter::once(1.0)
                    .chain(row.iter().zip(&inv).map(|(d2, a)| (-d2 * a).exp()))
                    .collect::<Vec<f32>>()
            })
            .collect()
    }

    /// Solves the ridge normal equations `(ΦᵀΦ + λI)W = ΦᵀY`, accumulating `ΦᵀΦ` chunk by
    /// chunk (f32 GEMM, f64 sums) so that Φ is never held whole.
    fn fit_output(
        &mut self,
        x: &[f32],
        n: usize,
        target: impl Fn(usize, usize) -> f64,
        ridge: f64,
    ) -> Result<(), ClassicError> {
        let (d, p, q) = (self.dim, self.widths.len() + 1, self.outputs);
        let mut g = vec![0.0f64; p * p];
        let mut b = vec![0.0f64; p * q];
        for start in (0..n).step_by(CHUNK * 4) {
            let end = (start + CHUNK * 4).min(n);
            let rows = end - start;
            let phi = Tensor::from_vec(self.features(&x[start * d..end * d]), &[rows, p]);
            let gc = phi.matmul_tn(&phi).into_vec();
            g.iter_mut().zip(gc).for_each(|(a, v)| *a += f64::from(v));
            let y: Vec<f32> = (start..end)
                .flat_map(|i| (0..q).map(move |o| (i, o)))
                .map(|(i, o)| target(i, o) as f32)
                .collect();
            let bc = phi.matmul_tn(&Tensor::from_vec(y, &[rows, q])).into_vec();
            b.iter_mut().zip(bc).for_each(|(a, v)| *a += f64::from(v));
        }
        for i in 1..p {
            g[i * p + i] += ridge * n as f64;
        }
        g[0] += 1e-9 * n as f64; // keeps the bias row solvable when every φ is tiny
        self.w_out = cholesky_solve(g, b, p, q)?;
        Ok(())
    }

    /// The outputs `W·[1; φ(x)]`, `n × outputs`.
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        let p = self.widths.len() + 1;
        let phi = Tensor::from_vec(self.features(x), &[x.len() / self.dim, p]);
        let w = Tensor::from_vec(
            self.w_out.iter().map(|&v| v as f32).collect(),
            &[p, self.outputs],
        );
        phi.matmul(&w).into_vec()
    }

    /// The class with the largest output, per row.
    pub fn classify(&self, x: &[f32]) -> Vec<usize> {
        self.predict(x)
            .chunks(self.outputs)
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |a, (i, &v)| if v > a.1 { (i, v) } else { a },
                    )
                    .0
            })
            .collect()
    }
}

fn subset(x: &[f32], d: usize, n: usize, cfg: &RbfConfig) -> Vec<f32> {
    if cfg.kmeans_samples == 0 || cfg.kmeans_samples >= n {
        return x.to_vec();
    }
    let mut idx: Vec<usize> = (0..n).collect();
    Rng::seed(cfg.seed ^ 0x5AB).shuffle(&mut idx);
    idx[..cfg.kmeans_samples.max(cfg.centres)]
        .iter()
        .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
        .collect()
}

/// σⱼ = scale × RMS distance of centre j's cluster members (median of the others for
/// clusters of fewer than two).
fn rms_widths(x: &[f32], d: usize, centres: &[f32], scale: f64) -> Vec<f32> {
    let k = centres.len() / d;
    let dist = sq_distances(x, d, centres);
    let mut sum = vec![0.0f64; k];
    let mut count = vec![0usize; k];
    for row in dist.chunks(k) {
        let (j, v) = argmin(row);
        sum[j] += f64::from(v);
        count[j] += 1;
    }
    let mut known: Vec<f64> = (0..k)
        .filter(|&j| count[j] >= 2)
        .map(|j| (sum[j] / count[j] as f64).sqrt())
        .collect();
    known.sort_by(f64::total_cmp);
    let median = known.get(known.len() / 2).copied().unwrap_or(1.0).max(1e-6);
    (0..k)
        .map(|j| {
            let r = if count[j] >= 2 {
                (sum[j] / count[j] as f64).sqrt().max(1e-6)
            } else {
                median
            };
            (r * scale) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmeans_finds_three_clusters() {
        let mut rng = Rng::seed(4);
        let means = [(0.0, 0.0), (5.0, 5.0), (-5.0, 5.0)];
        let x: Vec<f32> = (0..300)
            .flat_map(|i| {
                let (a, b) = means[i % 3];
                [a + 0.3 * rng.normal() as f32, b + 0.3 * rng.normal() as f32]
            })
            .collect();
        let c = kmeans(&x, 2, 3, 10, 1);
        for (a, b) in means {
            assert!(
                c.chunks(2)
                    .any(|r| (r[0] - a as f32).abs() < 0.2 && (r[1] - b as f32).abs() < 0.2),
                "{c:?}"
            );
        }
        let w = rms_widths(&x, 2, &c, 1.0);
        // a 2-D Gaussian of std 0.3 has RMS radius 0.3·√2 ≈ 0.42
        assert!(w.iter().all(|&s| (s - 0.42).abs() < 0.06), "{w:?}");
    }

    #[test]
    fn distances_by_gemm_match_direct_ones() {
        let x = [1.0f32, 2.0, 3.0, -1.0, 0.5, 0.0];
        let c = [0.0f32, 0.0, 1.0, 1.0];
        let d = sq_distances(&x, 2, &c);
        assert_eq!(d, vec![5.0, 1.0, 10.0, 8.0, 0.25, 1.25]);
    }

    #[test]
    fn a_regressor_fits_a_smooth_curve() {
        // y = sin(3x) on [−1, 1]: 15 centres, each about 0.13 wide, overlap enough at three
        // times their clusters' RMS radius (≈ 0.04) to fit it closely between the samples
        let x: Vec<f32> = (0..200).map(|i| -1.0 + 2.0 * i as f32 / 199.0).collect();
        let y: Vec<f32> = x.iter().map(|v| (3.0 * v).sin()).collect();
        let cfg = RbfConfig {
            centres: 15,
            width_scale: 3.0,
            ridge: 1e-8,
            ..RbfConfig::default()
        };
        let net = RbfNet::fit_regressor(&x, 1, &y, 1, &cfg).unwrap();
        let probe: Vec<f32> = (0..50).map(|i| -0.9 + 1.8 * i as f32 / 49.0).collect();
        for (p, v) in probe.iter().zip(net.predict(&probe)) {
            assert!((v - (3.0 * p).sin()).abs() < 0.02, "{p}: {v}");
        }
        assert_eq!((net.dim(), net.outputs()), (1, 1));
        assert_eq!(
            RbfNet::fit_regressor(&x, 1, &y[..199], 1, &cfg)
                .unwrap_err()
                .field,
            "dataset"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let x = [0.0f32, 1.0];
        let e = |c: RbfConfig| {
            RbfNet::fit_classifier(&x, 1, &[0, 1], 2, &c)
                .unwrap_err()
                .field
        };
        assert_eq!(
            e(RbfConfig {
                centres: 0,
                ..RbfConfig::default()
            }),
            "centres"
        );
        assert_eq!(
            e(RbfConfig {
                centres: 3,
                ..RbfConfig::default()
            }),
            "centres"
        );
        assert_eq!(
            e(RbfConfig {
                centres: 2,
                width_scale: 0.0,
                ..RbfConfig::default()
            }),
            "width-scale"
        );
        assert_eq!(
            RbfNet::fit_classifier(
                &x,
                1,
                &[0, 2],
                2,
                &RbfConfig {
                    centres: 2,
                    ..RbfConfig::default()
                }
            )
            .unwrap_err()
            .field,
            "dataset"
        );
    }
}
