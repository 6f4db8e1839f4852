//! What a trained map says about the data: best-matching units for many samples (a GEMM
//! per chunk of samples), quantization and topographic error, the U-matrix, hit counts,
//! and which samples and labels each unit wins.

use backprop_tensor::Tensor;
use rayon::prelude::*;

use super::{Distance, Som, Topology};

/// Samples per GEMM when measuring distances to every unit.
const CHUNK: usize = 1024;

/// A sample's best and second-best unit under the Euclidean distance, and the distance to
/// the best.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BmuPair {
    /// The best-matching unit.
    pub best: usize,
    /// The runner-up.
    pub second: usize,
    /// `‖x − w_best‖`.
    pub distance: f32,
}

impl Som {
    /// The best-matching unit of every sample under the configured distance, in parallel.
    ///
    /// # Panics
    /// If `data` is not whole samples.
    pub fn bmus(&self, data: &[f32]) -> Vec<usize> {
        let d = self.dim;
        assert_eq!(data.len() % d, 0, "Som::bmus: data are not whole samples");
        if self.config.distance == Distance::Euclidean {
            return self.bmu_pairs(data).into_iter().map(|p| p.best).collect();
        }
        data.par_chunks(d).map(|x| self.bmu_serial(x)).collect()
    }

    fn bmu_serial(&self, x: &[f32]) -> usize {
        let x_norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
        (0..self.units())
            .map(|k| (self.unit_distance(x, k, x_norm), k))
            .fold(
                (f32::INFINITY, usize::MAX),
                |a, b| if b.0 < a.0 { b } else { a },
            )
            .1
    }

    /// Every sample's best two units under the Euclidean distance (what the error measures
    /// use whatever the training distance), from `‖x‖² − 2x·w + ‖w‖²` by GEMM.
    ///
    /// # Panics
    /// If `data` is not whole samples, or the map has one unit.
    pub fn bmu_pairs(&self, data: &[f32]) -> Vec<BmuPair> {
        let (d, m) = (self.dim, self.units());
        assert_eq!(
            data.len() % d,
            0,
            "Som::bmu_pairs: data are not whole samples"
        );
        let w = Tensor::from_vec(self.weights.clone(), &[m, d]);
        let w_sq: Vec<f32> = self
            .weights
            .chunks(d)
            .map(|w| w.iter().map(|v| v * v).sum())
            .collect();
        data.par_chunks(CHUNK * d)
            .flat_map_iter(|chunk| {
                let rows = chunk.len() / d;
                let xw = Tensor::from_vec(chunk.to_vec(), &[rows, d])
                    .matmul_nt(&w)
                    .into_vec();
                (0..rows)
                    .map(|r| {
                        let x = &chunk[r * d..(r + 1) * d];
                        let x_sq: f32 = x.iter().map(|v| v * v).sum();
                        top_two(&xw[r * m..(r + 1) * m], &w_sq, x_sq)
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The mean distance from each sample to its best-matching unit's weights (Euclidean).
    pub fn quantization_error(&self, data: &[f32]) -> f64 {
        let d = self.dim;
        let pairs = self.bmu_pairs(data);
        let total: f64 = pairs
            .par_iter()
            .enumerate()
            .map(|(i, p)| {
                let w = &self.weights[p.best * d..(p.best + 1) * d];
                f64::from(self.kernels.sq_dist(&data[i * d..(i + 1) * d], w)).sqrt()
            })
            .sum();
        total / pairs.len().max(1) as f64
    }

    /// Whether units `a` and `b` are adjacent on the grid: rectangular, within the 8
    /// surrounding units (grid distance ≤ 1.42); hexagonal, one unit apart in the plane.
    pub fn adjacent(&self, a: usize, b: usize) -> bool {
        match self.config.topology {
            Topology::Rectangular => {
                let ((ai, aj), (bi, bj)) = (self.grid_index(a), self.grid_index(b));
                let (di, dj) = (ai as f64 - bi as f64, aj as f64 - bj as f64);
                (di * di + dj * dj).sqrt() <= 1.42
            }
            Topology::Hexagonal => {
                let ((ax, ay), (bx, by)) = (self.pos[a], self.pos[b]);
                (((ax - bx).powi(2) + (ay - by).powi(2)).sqrt() - 1.0).abs() < 1e-6
            }
        }
    }

    /// The fraction of samples whose best and second-best units are not adjacent
    /// (NaN on a 1-unit map).
    pub fn topographic_error(&self, data: &[f32]) -> f64 {
        if self.units() < 2 {
            return f64::NAN;
        }
        let pairs = self.bmu_pairs(data);
        let bad = pairs
            .iter()
            .filter(|p| !self.adjacent(p.best, p.second))
            .count();
        bad as f64 / pairs.len().max(1) as f64
    }

    /// Unit `k`'s grid neighbours (8 on a rectangular grid, 6 on a hexagonal one, fewer at
    /// the border).
    pub fn neighbours(&self, k: usize) -> Vec<usize> {
        let (i, j) = self.grid_index(k);
        let (rows, cols) = (self.config.rows as isize, self.config.cols as isize);
        let mut out = Vec::with_capacity(8);
        for di in -1isize..=1 {
            for dj in -1isize..=1 {
                let (a, b) = (i as isize + di, j as isize + dj);
                if (di, dj) == (0, 0) || a < 0 || b < 0 || a >= rows || b >= cols {
                    continue;
                }
                let other = (a * cols + b) as usize;
                if self.adjacent(k, other) {
                    out.push(other);
                }
            }
        }
        out
    }

    /// The U-matrix (distance map): for each unit the sum (or, if `mean`, the mean) of the
    /// Euclidean distances to its grid neighbours' weights, divided by the largest.
    pub fn u_matrix(&self, mean: bool) -> Vec<f64> {
        let d = self.dim;
        let unit = |k: usize| &self.weights[k * d..(k + 1) * d];
        let raw: Vec<f64> = (0..self.units())
            .into_par_iter()
            .map(|k| {
                let nb = self.neighbours(k);
                let s: f64 = nb
                    .iter()
                    .map(|&o| f64::from(self.kernels.sq_dist(unit(k), unit(o))).sqrt())
                    .sum();
                if mean && !nb.is_empty() {
                    s / nb.len() as f64
                } else {
                    s
                }
            })
            .collect();
        let max = raw.iter().copied().fold(0.0, f64::max);
        raw.into_iter()
            .map(|v| if max > 0.0 { v / max } else { 0.0 })
            .collect()
    }

    /// How many samples each unit wins (the hit map).
    pub fn activation_response(&self, data: &[f32]) -> Vec<usize> {
        let mut hits = vec![0; self.units()];
        for b in self.bmus(data) {
            hits[b] += 1;
        }
        hits
    }

    /// The indices of the samples each unit wins.
    pub fn winner_map(&self, data: &[f32]) -> Vec<Vec<usize>> {
        let mut map = vec![Vec::new(); self.units()];
        for (i, b) in self.bmus(data).into_iter().enumerate() {
            map[b].push(i);
        }
        map
    }

    /// For each unit, how many samples of each class (`labels[i] < classes`) it wins.
    ///
    /// # Panics
    /// If `labels` has not one entry per sample or a label is `classes` or more.
    pub fn labels_map(&self, data: &[f32], labels: &[usize], classes: usize) -> Vec<Vec<usize>> {
        assert_eq!(
            labels.len() * self.dim,
            data.len(),
            "Som::labels_map: one label per sample"
        );
        let mut map = vec![vec![0; classes]; self.units()];
        for (i, b) in self.bmus(data).into_iter().enumerate() {
            map[b][labels[i]] += 1;
        }
        map
    }
}

/// The two smallest of `‖x‖² − 2x·w + ‖w‖²` over the units (ties: the lower index first).
fn top_two(xw: &[f32], w_sq: &[f32], x_sq: f32) -> BmuPair {
    let (mut b1, mut d1, mut b2, mut d2) = (0, f32::INFINITY, 0, f32::INFINITY);
    for (k, (&p, &ww)) in xw.iter().zip(w_sq).enumerate() {
        let dist = (x_sq - 2.0 * p + ww).max(0.0);
        if dist < d1 {
            (b2, d2) = (b1, d1);
            (b1, d1) = (k, dist);
        } else if dist < d2 {
            (b2, d2) = (k, dist);
        }
    }
    BmuPair {
        best: b1,
        second: b2,
        distance: d1.sqrt(),
    }
}
