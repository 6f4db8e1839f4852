//! Kohonen's self-organizing map (1982): a grid of units, each with a weight vector in the
//! data space; every sample pulls its best-matching unit (BMU) and, less, the BMU's grid
//! neighbours towards itself, so that nearby units come to represent nearby data.
//!
//! The map follows MiniSom's definitions (grid coordinates, neighbourhoods, decays,
//! quantization and topographic error, distance map), so results compare one to one.
//!
//! ```
//! use backprop_classic::som::{Som, SomConfig, TrainMode};
//! // two clusters in 2-D
//! let data: Vec<f32> = (0..40).flat_map(|i| {
//!     let c = if i % 2 == 0 { 0.0 } else { 5.0 };
//!     [c + 0.01 * i as f32, c]
//! }).collect();
//! let cfg = SomConfig { rows: 3, cols: 3, ..SomConfig::default() };
//! let mut som = Som::new(&cfg, 2).unwrap();
//! som.init_weights(&data).unwrap();
//! som.train(&data, 200, TrainMode::Online, false).unwrap();
//! assert!(som.quantization_error(&data) < 1.0);
//! ```

mod config;
pub mod kernels;
mod metrics;

pub use config::{Decay, Distance, Init, Neighborhood, SomConfig, Topology, TrainMode, MAX_UNITS};
pub use kernels::Kernels;
pub use metrics::BmuPair;

use backprop_tensor::{Rng, Tensor};
use rayon::prelude::*;

use crate::ClassicError;

/// Units × features above which one BMU search is split across threads.
const PARALLEL_SEARCH: usize = 1 << 20;

/// A self-organizing map: the settings, the unit positions and the weights.
#[derive(Debug, Clone)]
pub struct Som {
    config: SomConfig,
    dim: usize,
    /// Weights, unit-major: unit `k = i·cols + j` owns `weights[k·dim..(k+1)·dim]`.
    weights: Vec<f32>,
    /// Each unit's position in the plane (hexagonal grids shift every other column).
    pos: Vec<(f64, f64)>,
    kernels: Kernels,
}

impl Som {
    /// A map for `dim`-dimensional data with the weights drawn as [`Init::Random`] does
    /// (call [`Som::init_weights`] for the configured initialisation).
    ///
    /// # Errors
    /// A bad setting (see [`SomConfig::validate`]) or `dim` zero.
    pub fn new(config: &SomConfig, dim: usize) -> Result<Som, ClassicError> {
        config.validate()?;
        if dim == 0 {
            return Err(ClassicError::new("dataset", "the samples have no features"));
        }
        let m = config.units();
        if m.saturating_mul(dim) > 1 << 31 {
            return Err(ClassicError::new(
                "grid",
                format!("{m} units × {dim} features do not fit in memory"),
            ));
        }
        let hex = config.topology == Topology::Hexagonal;
        let pos = (0..m)
            .map(|k| {
                let (i, j) = (k / config.cols, k % config.cols);
                let shift = if hex && (config.cols - 1 - j) % 2 == 0 {
                    0.5
                } else {
                    0.0
                };
                let y = if hex { 3f64.sqrt() / 2.0 } else { 1.0 };
                (i as f64 - shift, j as f64 * y)
            })
            .collect();
        let mut som = Som {
            config: config.clone(),
            dim,
            weights: vec![0.0; m * dim],
            pos,
            kernels: Kernels::detect(),
        };
        som.random_init(&mut Rng::seed(config.seed));
        Ok(som)
    }

    /// The settings.
    pub fn config(&self) -> &SomConfig {
        &self.config
    }
    /// Features per sample.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Units on the map.
    pub fn units(&self) -> usize {
        self.pos.len()
    }
    /// The weights, unit-major (`units × dim`).
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
    /// Replaces the weights.
    ///
    /// # Panics
    /// If `w` does not hold `units × dim` values.
    pub fn set_weights(&mut self, w: &[f32]) {
        assert_eq!(
            w.len(),
            self.weights.len(),
            "Som::set_weights: wrong length"
        );
        self.weights.copy_from_slice(w);
    }
    /// Unit `k`'s position in the plane (the coordinates the neighbourhood uses).
    pub fn position(&self, k: usize) -> (f64, f64) {
        self.pos[k]
    }
    /// Unit `k`'s grid indices `(i, j)`.
    pub fn grid_index(&self, k: usize) -> (usize, usize) {
        (k / self.config.cols, k % self.config.cols)
    }

    fn random_init(&mut self, rng: &mut Rng) {
        for w in self.weights.chunks_mut(self.dim) {
            for v in w.iter_mut() {
                *v = rng.uniform_range(-1.0, 1.0) as f32;
            }
            let n = w.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            w.iter_mut().for_each(|v| *v /= n);
        }
    }

    /// Draws the initial weights as the configuration says ([`Init`]).
    ///
    /// # Errors
    /// No data, data whose length is not a multiple of `dim`, or PCA on 1-D data.
    pub fn init_weights(&mut self, data: &[f32]) -> Result<(), ClassicError> {
        let n = self.check_data(data)?;
        let mut rng = Rng::seed(self.config.seed);
        match self.config.init {
            Init::Random => self.random_init(&mut rng),
            Init::Sample => {
                let d = self.dim;
                for w in self.weights.chunks_mut(d) {
                    let s = rng.below(n);
                    w.copy_from_slice(&data[s * d..(s + 1) * d]);
                }
            }
            Init::Pca => self.pca_init(data, n)?,
        }
        Ok(())
    }

    fn pca_init(&mut self, data: &[f32], n: usize) -> Result<(), ClassicError> {
        if self.dim < 2 {
            return Err(ClassicError::new("init", "pca needs at least 2 features"));
        }
        let (mean, pcs) =
            crate::linalg::principal_components(data, n, self.dim, 2, self.config.seed);
        let (rows, cols) = (self.config.rows, self.config.cols);
        let lin = |k: usize, len: usize| {
            if len < 2 {
                -1.0
            } else {
                -1.0 + 2.0 * k as f64 / (len - 1) as f64
            }
        };
        let d = self.dim;
        for (k, w) in self.weights.chunks_mut(d).enumerate() {
            let (a, b) = (lin(k / cols, rows), lin(k % cols, cols));
            for f in 0..d {
                w[f] = (mean[f] + a * pcs[0][f] + b * pcs[1][f]) as f32;
            }
        }
        Ok(())
    }

    /// The number of samples in `data`.
    pub(crate) fn check_data(&self, data: &[f32]) -> Result<usize, ClassicError> {
        if data.is_empty() {
            return Err(ClassicError::new("dataset", "no samples"));
        }
        if data.len() % self.dim != 0 {
            return Err(ClassicError::new(
                "dataset",
                format!(
                    "{} values are not whole samples of {} features",
                    data.len(),
                    self.dim
                ),
            ));
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(ClassicError::new(
                "dataset",
                "the samples hold NaN or infinite values",
            ));
        }
        Ok(data.len() / self.dim)
    }

    /// The neighbourhood weight of every unit around `winner` at radius `sigma`, into `out`.
    pub fn neighborhood_into(&self, winner: usize, sigma: f64, out: &mut [f32]) {
        self.gains_into(winner, sigma, 1.0, out, &mut Tables::default());
    }

    /// `eta ×` the neighbourhood weights (as f32, the product rounded as the training applies
    /// it), with the Gaussian's factor tables kept in `t` between calls.
    fn gains_into(&self, winner: usize, sigma: f64, eta: f64, out: &mut [f32], t: &mut Tables) {
        let (rows, cols) = (self.config.rows, self.config.cols);
        let (cx, cy) = self.pos[winner];
        let (ci, cj) = self.grid_index(winner);
        let d = 2.0 * sigma * sigma;
        let eta = eta as f32;
        match self.config.neighborhood {
            Neighborhood::Gaussian | Neighborhood::MexicanHat => {
                // separable: exp(−Δx²/d)·exp(−Δy²/d). Rows sit 1 apart, a hexagonal
                // column is shifted by ½ or not, so every Δx is a multiple of ½ (of 1 on a
                // rectangular grid) and every Δy a multiple of the column spacing: one
                // table each, filled with one exp (see `Tables::fill`).
                let hex = self.config.topology == Topology::Hexagonal;
                let (sx, sy) = if hex {
                    (0.5, 3f64.sqrt() / 2.0)
                } else {
                    (1.0, 1.0)
                };
                t.fill(sx, sy, rows, cols, d);
                // Δ / step is a whole number up to rounding: add ½ and truncate
                let index = |delta: f64, step: f64| (delta.abs() / step + 0.5) as usize;
                t.ex.clear();
                t.ex.extend((0..rows).map(|i| {
                    [0.0, 0.5].map(|s| t.x[index(i as f64 - s - cx, sx).min(t.x.len() - 1)])
                }));
                // per column: its factor and whether it is shifted (row 0 holds the columns)
                t.ey.clear();
                t.ey.extend(self.pos[..cols].iter().map(|&(x0, y)| {
                    (
                        t.y[index(y - cy, sy).min(t.y.len() - 1)],
                        usize::from(x0 != 0.0),
                    )
                }));
                let mexican = self.config.neighborhood == Neighborhood::MexicanHat;
                for (i, row) in out.chunks_exact_mut(cols).enumerate() {
                    let ex = t.ex[i];
                    for (j, (o, &(ey, shifted))) in row.iter_mut().zip(&t.ey).enumerate() {
                        let mut v = ex[shifted] * ey;
                        if mexican {
                            let (x, y) = self.pos[i * cols + j];
                            let p = (x - cx).powi(2) + (y - cy).powi(2);
                            v *= 1.0 - 2.0 / d * p;
                        }
                        *o = v as f32 * eta;
                    }
                }
            }
            Neighborhood::Bubble => {
                let inside = |a: usize, c: usize| (a as f64 - c as f64).abs() < sigma;
                for (k, o) in out.iter_mut().enumerate() {
                    *o = f32::from(u8::from(inside(k / cols, ci) && inside(k % cols, cj))) * eta;
                }
            }
            Neighborhood::Triangle => {
                let t = |a: usize, c: usize| (sigma - (a as f64 - c as f64).abs()).max(0.0);
                for (k, o) in out.iter_mut().enumerate() {
                    *o = (t(k / cols, ci) * t(k % cols, cj)) as f32 * eta;
                }
            }
        }
    }

    /// [`Som::neighborhood_into`] as a new vector.
    pub fn neighborhood(&self, winner: usize, sigma: f64) -> Vec<f32> {
        let mut out = vec![0.0; self.units()];
        self.neighborhood_into(winner, sigma, &mut out);
        out
    }

    /// The activation distance from `x` to unit `k`'s weights (squared for Euclidean).
    #[inline]
    fn unit_distance(&self, x: &[f32], k: usize, x_norm: f32) -> f32 {
        let w = &self.weights[k * self.dim..(k + 1) * self.dim];
        match self.config.distance {
            Distance::Euclidean => self.kernels.sq_dist(x, w),
            Distance::Manhattan => self.kernels.l1_dist(x, w),
            Distance::Chebyshev => self.kernels.linf_dist(x, w),
            Distance::Cosine => {
                let (dot, ww) = self.kernels.dot_norm(x, w);
                1.0 - dot / (ww.sqrt() * x_norm + 1e-8)
            }
        }
    }

    /// The best-matching unit of one sample under the configured distance (ties: the
    /// lowest index). Large maps search in parallel.
    ///
    /// # Panics
    /// If `x` does not have `dim` values.
    pub fn bmu(&self, x: &[f32]) -> usize {
        assert_eq!(
            x.len(),
            self.dim,
            "Som::bmu: {} features for a map of {}",
            x.len(),
            self.dim
        );
        let x_norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
        let best = |r: std::ops::Range<usize>| {
            r.map(|k| (self.unit_distance(x, k, x_norm), k)).fold(
                (f32::INFINITY, usize::MAX),
                |a, b| if b.0 < a.0 { b } else { a },
            )
        };
        let m = self.units();
        if m * self.dim < PARALLEL_SEARCH || rayon::current_num_threads() < 2 {
            return best(0..m).1;
        }
        let chunk = m.div_ceil(rayon::current_num_threads() * 2).max(8);
        let parts: Vec<(f32, usize)> = (0..m.div_ceil(chunk))
            .into_par_iter()
            .map(|c| best(c * chunk..((c + 1) * chunk).min(m)))
            .collect();
        parts
            .into_iter()
            .fold(
                (f32::INFINITY, usize::MAX),
                |a, b| if b.0 < a.0 { b } else { a },
            )
            .1
    }

    /// Trains for `iterations` iterations. Online: iteration `t` takes sample `t mod n`
    /// (or a random sample if `random_order`), decays η and σ over `iterations`; batch:
    /// each iteration visits every sample once.
    ///
    /// # Errors
    /// Bad data or zero iterations.
    pub fn train(
        &mut self,
        data: &[f32],
        iterations: usize,
        mode: TrainMode,
        random_order: bool,
    ) -> Result<(), ClassicError> {
        let n = self.check_data(data)?;
        if iterations == 0 {
            return Err(ClassicError::new("iterations", "0: must be at least 1"));
        }
        match mode {
            TrainMode::Online => self.train_online(data, n, iterations, random_order),
            TrainMode::Batch => self.train_batch(data, iterations),
        }
        Ok(())
    }

    /// Online training. Iteration `t`'s best-matching unit comes from the distances the
    /// previous iteration's pass measured ([`Kernels::sweep`]: move every unit towards
    /// sample `t − 1`, then measure it against sample `t`), so each iteration reads and
    /// writes the weights once; the arithmetic is that of [`Som::bmu`] and
    /// [`Kernels::pull`], unit by unit, so the result is the same.
    fn train_online(&mut self, data: &[f32], n: usize, iterations: usize, random_order: bool) {
        let mut rng = Rng::seed(self.config.seed ^ 0x50_4D);
        let mut pick = |t: usize| if random_order { rng.below(n) } else { t % n };
        let (d, m) = (self.dim, self.units());
        let sample = |s: usize| &data[s * d..(s + 1) * d];
        let cosine = self.config.distance == Distance::Cosine;
        let norm = |x: &[f32]| {
            if cosine {
                x.iter().map(|v| v * v).sum::<f32>().sqrt()
            } else {
                0.0
            }
        };
        let (mut gains, mut dist) = (vec![0.0f32; m], vec![0.0f32; m]);
        let mut tables = Tables::default();
        let mut x = sample(pick(0));
        self.sweep(&[], &[], x, norm(x), &mut dist);
        for t in 0..iterations {
            let win = argmin(&dist);
            let eta = self
                .config
                .lr_decay
                .at(self.config.learning_rate, t, iterations);
            let sig = self.config.sigma_decay.at(self.config.sigma, t, iterations);
            self.gains_into(win, sig, eta, &mut gains, &mut tables);
            let next: &[f32] = if t + 1 < iterations {
                sample(pick(t + 1))
            } else {
                &[]
            };
            self.sweep(x, &gains, next, norm(next), &mut dist);
            x = next;
        }
    }

    /// [`Kernels::sweep`] over the whole map, split across threads on large maps.
    fn sweep(&mut self, x: &[f32], gains: &[f32], next: &[f32], next_norm: f32, dist: &mut [f32]) {
        let (d, metric, kernels) = (self.dim, self.config.distance, self.kernels);
        if self.weights.len() < PARALLEL_SEARCH || rayon::current_num_threads() < 2 {
            kernels.sweep(
                &mut self.weights,
                d,
                x,
                gains,
                next,
                next_norm,
                metric,
                dist,
            );
            return;
        }
        let m = self.units();
        let chunk = m.div_ceil(rayon::current_num_threads() * 2).max(8);
        let gains: Vec<&[f32]> = if gains.is_empty() {
            vec![&[] as &[f32]; m.div_ceil(chunk)]
        } else {
            gains.chunks(chunk).collect()
        };
        self.weights
            .par_chunks_mut(chunk * d)
            .zip(dist.par_chunks_mut(chunk))
            .zip(gains)
            .for_each(|((w, dist), g)| {
                kernels.sweep(w, d, x, g, next, next_norm, metric, dist);
            });
    }

    fn train_batch(&mut self, data: &[f32], iterations: usize) {
        let (m, d) = (self.units(), self.dim);
        for t in 0..iterations {
            let eta = self
                .config
                .lr_decay
                .at(self.config.learning_rate, t, iterations);
            let sig = self.config.sigma_decay.at(self.config.sigma, t, iterations);
            let bmus = self.bmus(data);
            // per-unit sums and counts of the samples it wins
            let mut sums = vec![0.0f64; m * d];
            let mut counts = vec![0.0f64; m];
            for (i, &b) in bmus.iter().enumerate() {
                counts[b] += 1.0;
                let row = &mut sums[b * d..(b + 1) * d];
                for (acc, &x) in row.iter_mut().zip(&data[i * d..(i + 1) * d]) {
                    *acc += f64::from(x);
                }
            }
            // G[k][b] = h_b(k): numerator = G·sums, denominator = G·counts
            let mut g = vec![0.0f64; m * m];
            let mut h = vec![0.0f32; m];
            for b in 0..m {
                self.neighborhood_into(b, sig, &mut h);
                for k in 0..m {
                    g[k * m + b] = f64::from(h[k]);
                }
            }
            let g = Tensor::from_vec(g, &[m, m]);
            let num = g.matmul(&Tensor::from_vec(sums, &[m, d])).into_vec();
            let den = g.matmul(&Tensor::from_vec(counts, &[m, 1])).into_vec();
            for k in 0..m {
                if den[k] > 0.0 {
                    let w = &mut self.weights[k * d..(k + 1) * d];
                    for (f, w) in w.iter_mut().enumerate() {
                        let new = num[k * d + f] / den[k];
                        *w = ((1.0 - eta) * f64::from(*w) + eta * new) as f32;
                    }
                }
            }
        }
    }
}

/// The first index of the smallest value (ties: the lowest index, as `argmin` in NumPy).
fn argmin(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((usize::MAX, f32::INFINITY), |a, (k, &d)| {
            if d < a.1 {
                (k, d)
            } else {
                a
            }
        })
        .0
        .min(v.len().saturating_sub(1))
}

/// The Gaussian neighbourhood's factor tables, `x[δ] = exp(−(δ·sx)²/d)` and
/// `y[δ] = exp(−(δ·sy)²/d)`, and the per-row factors (unshifted, shifted column) and
/// per-column factors (with the column's shift) of one call.
#[derive(Debug, Default)]
struct Tables {
    x: Vec<f64>,
    y: Vec<f64>,
    ex: Vec<[f64; 2]>,
    ey: Vec<(f64, usize)>,
}

impl Tables {
    /// Fills the tables for steps `sx`, `sy` over a `rows × cols` grid, `d = 2σ²`, by the
    /// recurrence `e(δ+1) = e(δ)·q^(2δ+1)`, `q = exp(−s²/d)`: one exp per table (the
    /// products drift by a few f64 ulps, far below the f32 the weights are kept in).
    fn fill(&mut self, sx: f64, sy: f64, rows: usize, cols: usize, d: f64) {
        fn table(out: &mut Vec<f64>, step: f64, len: usize, d: f64) {
            out.clear();
            let q = (-step * step / d).exp();
            let (mut e, mut r) = (1.0f64, q);
            for _ in 0..len {
                out.push(e);
                e *= r;
                r *= q * q;
            }
        }
        table(&mut self.x, sx, (rows as f64 / sx).ceil() as usize + 2, d);
        table(&mut self.y, sy, cols + 1, d);
    }
}

#[cfg(test)]
mod tests;
