//! Hopfield networks (Hopfield 1982): `N` binary units `sᵢ = ±1`, symmetric weights with a
//! zero diagonal, and an energy `E = −½ Σᵢⱼ wᵢⱼ sᵢ sⱼ` that asynchronous updates
//! `sᵢ ← sign(Σⱼ wᵢⱼ sⱼ)` never increase, so the state slides into a local minimum: a
//! stored pattern, if the memory is not overloaded (Hebbian storage holds about 0.138·N
//! random patterns, Amit, Gutfreund & Sompolinsky 1985).
//!
//! Also the modern (continuous) Hopfield retrieval of Ramsauer et al. (2020),
//! `ξ_new = X·softmax(β Xᵀ ξ)`, whose capacity is exponential in `N`.
//!
//! # Shapes
//! Patterns are row-major `P × N` slices of ±1 (`i8`); weights `N × N` f32.
//!
//! ```
//! use backprop_classic::hopfield::{Hopfield, Storage};
//! let p = [1i8, -1, 1, -1, 1, -1, 1, -1, 1, 1, -1, -1, 1, 1, -1, -1];
//! let net = Hopfield::store(&p, 8, Storage::Hebbian).unwrap();
//! let mut s = [1i8, -1, 1, -1, 1, -1, 1, 1]; // the first pattern, one unit flipped
//! net.run_async(&mut s, 10, 0);
//! assert_eq!(&s, &p[..8]);
//! ```

use backprop_tensor::{Rng, Tensor};

use crate::ClassicError;

/// How the weights are built from the patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `W = (1/N) Σ_μ ξ^μ ξ^μᵀ`, diagonal zeroed.
    Hebbian,
    /// The projection rule (Personnaz et al. 1985): `W = X (XᵀX)⁻¹ Xᵀ` with the patterns as
    /// the columns of `X`, diagonal zeroed. Every linearly independent set of patterns, even
    /// correlated ones, becomes a set of fixed points (for `P < N/2`).
    PseudoInverse,
}

/// A Hopfield network.
#[derive(Debug, Clone)]
pub struct Hopfield {
    n: usize,
    w: Vec<f32>,
}

fn check_patterns(patterns: &[i8], n: usize) -> Result<usize, ClassicError> {
    if n == 0 || patterns.is_empty() || patterns.len() % n != 0 {
        return Err(ClassicError::new(
            "patterns",
            format!(
                "{} values are not whole patterns of {n} units",
                patterns.len()
            ),
        ));
    }
    if patterns.iter().any(|&v| v != 1 && v != -1) {
        return Err(ClassicError::new("patterns", "every unit must be +1 or −1"));
    }
    Ok(patterns.len() / n)
}

impl Hopfield {
    /// Stores `P` patterns of `n` units.
    ///
    /// # Errors
    /// Patterns that are not ±1 or not whole, or (pseudo-inverse) linearly dependent ones.
    pub fn store(patterns: &[i8], n: usize, storage: Storage) -> Result<Hopfield, ClassicError> {
        let p = check_patterns(patterns, n)?;
        let x: Vec<f64> = patterns.iter().map(|&v| f64::from(v)).collect();
        let xt = Tensor::from_vec(x, &[p, n]); // rows are patterns
        let mut w: Vec<f64> = match storage {
            Storage::Hebbian => xt
                .matmul_tn(&xt)
                .into_vec()
                .into_iter()
                .map(|v| v / n as f64)
                .collect(),
            Storage::PseudoInverse => {
                // W = Xᵀ_rows · (X X_rowsᵀ)⁻¹ · X_rows  (X_rows: P × N)
                let c = xt.matmul_nt(&xt).into_vec(); // P × P
                let inv_x = crate::linalg::cholesky_solve(c, xt.to_vec(), p, n).map_err(|_| {
                    ClassicError::new("patterns", "the patterns are linearly dependent")
                })?;
                xt.matmul_tn(&Tensor::from_vec(inv_x, &[p, n])).into_vec()
            }
        };
        for i in 0..n {
            w[i * n + i] = 0.0;
        }
        Ok(Hopfield {
            n,
            w: w.into_iter().map(|v| v as f32).collect(),
        })
    }

    /// Units.
    pub fn units(&self) -> usize {
        self.n
    }
    /// The weights, `N × N`.
    pub fn weights(&self) -> &[f32] {
        &self.w
    }

    fn field(&self, s: &[i8], i: usize) -> f32 {
        self.w[i * self.n..(i + 1) * self.n]
            .iter()
            .zip(s)
            .map(|(w, &s)| w * f32::from(s))
            .sum()
    }

    /// `E = −½ Σᵢⱼ wᵢⱼ sᵢ sⱼ`.
    ///
    /// # Panics
    /// If `s` has not `N` units.
    pub fn energy(&self, s: &[i8]) -> f64 {
        assert_eq!(
            s.len(),
            self.n,
            "Hopfield::energy: {} units for {}",
            s.len(),
            self.n
        );
        -0.5 * (0..self.n)
            .map(|i| f64::from(s[i]) * f64::from(self.field(s, i)))
            .sum::<f64>()
    }

    /// One asynchronous sweep: every unit once, in a random order, `sᵢ ← sign(hᵢ)` (a zero
    /// field leaves the unit as it is). Returns the number of units that flipped.
    pub fn sweep_async(&self, s: &mut [i8], rng: &mut Rng) -> usize {
        let mut order: Vec<usize> = (0..self.n).collect();
        rng.shuffle(&mut order);
        order
            .into_iter()
            .filter(|&i| self.update_unit(s, i))
            .count()
    }

    /// Updates unit `i` asynchronously; whether it flipped.
    pub fn update_unit(&self, s: &mut [i8], i: usize) -> bool {
        let h = self.field(s, i);
        let new = if h > 0.0 {
            1
        } else if h < 0.0 {
            -1
        } else {
            s[i]
        };
        let flipped = new != s[i];
        s[i] = new;
        flipped
    }

    /// One synchronous step: every unit from the same old state (may oscillate between two
    /// states instead of settling).
    pub fn step_sync(&self, s: &[i8]) -> Vec<i8> {
        (0..self.n)
            .map(|i| {
                let h = self.field(s, i);
                if h > 0.0 {
                    1
                } else if h < 0.0 {
                    -1
                } else {
                    s[i]
                }
            })
            .collect()
    }

    /// Asynchronous sweeps until nothing flips (or `max_sweeps`); the energy after each
    /// sweep, starting with the cue's.
    pub fn run_async(&self, s: &mut [i8], max_sweeps: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng::seed(seed);
        let mut energies = vec![self.energy(s)];
        for _ in 0..max_sweeps {
            let flips = self.sweep_async(s, &mut rng);
            energies.push(self.energy(s));
            if flips == 0 {
                break;
            }
        }
        energies
    }
}

/// The overlap `m = (1/N) Σ aᵢbᵢ` of two ±1 states (1: equal; −1: opposite).
pub fn overlap(a: &[i8], b: &[i8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x * y))
        .sum::<f64>()
        / a.len().max(1) as f64
}

/// `P` random ±1 patterns of `n` units.
pub fn random_patterns(p: usize, n: usize, rng: &mut Rng) -> Vec<i8> {
    (0..p * n)
        .map(|_| if rng.uniform() < 0.5 { -1 } else { 1 })
        .collect()
}

/// Modern Hopfield retrieval (Ramsauer et al. 2020), one step:
/// `ξ_new = Xᵀ softmax(β X ξ)` with the stored patterns as the rows of `X` (`P × N`).
///
/// # Panics
/// If `xi` has not `N` values or `patterns` is not whole patterns.
pub fn modern_retrieve(patterns: &[f32], n: usize, xi: &[f32], beta: f32) -> Vec<f32> {
    assert_eq!(
        xi.len(),
        n,
        "modern_retrieve: query of {} for {n} units",
        xi.len()
    );
    assert_eq!(
        patterns.len() % n,
        0,
        "modern_retrieve: patterns are not whole"
    );
    let x = Tensor::from_vec(patterns.to_vec(), &[patterns.len() / n, n]);
    let scores = x.matmul(&Tensor::from_vec(xi.to_vec(), &[n, 1])).into_vec();
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = scores.iter().map(|&v| (beta * (v - max)).exp()).collect();
    let z: f32 = e.iter().sum();
    let p = Tensor::from_vec(
        e.into_iter().map(|v| v / z).collect(),
        &[1, patterns.len() / n],
    );
    p.matmul(&x).into_vec()
}

/// The capacity experiment: for each load `P/N` in `alphas`, store `P` random patterns by
/// the Hebbian rule, start from each stored pattern and run asynchronous updates to rest;
/// a pattern counts as retrieved when the final overlap is at least `min_overlap` (the
/// retrieval state of the theory keeps ~1–2% of units wrong below α_c ≈ 0.138). Returns
/// the retrieved fraction per load, averaged over `trials` independent memories.
pub fn capacity_curve(
    n: usize,
    alphas: &[f64],
    trials: usize,
    min_overlap: f64,
    seed: u64,
) -> Vec<f64> {
    let mut rng = Rng::seed(seed);
    alphas
        .iter()
        .map(|&a| {
            let p = ((a * n as f64).round() as usize).max(1);
            let mut ok = 0usize;
            for _ in 0..trials {
                let pats = random_patterns(p, n, &mut rng);
                let net = Hopfield::store(&pats, n, Storage::Hebbian).expect("valid patterns");
                let seeds: Vec<u64> = (0..p).map(|_| rng.next_u64()).collect();
                ok += pats
                    .chunks(n)
                    .zip(&seeds)
                    .filter(|(xi, &sd)| {
                        let mut s = xi.to_vec();
                        net.run_async(&mut s, 50, sd);
                        overlap(&s, xi) >= min_overlap
                    })
                    .count();
            }
            ok as f64 / (p * trials) as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_never_increases_under_asynchronous_updates() {
        let mut rng = Rng::seed(3);
        for storage in [Storage::Hebbian, Storage::PseudoInverse] {
            // overloaded on purpose (P = 0.3 N), so that the state wanders before resting
            let (n, p) = (60, 18);
            let net = Hopfield::store(&random_patterns(p, n, &mut rng), n, storage).unwrap();
            for _ in 0..5 {
                let mut s = random_patterns(1, n, &mut rng);
                let mut e = net.energy(&s);
                for _ in 0..5 {
                    for i in 0..n {
                        net.update_unit(&mut s, (i * 7) % n);
                        let e2 = net.energy(&s);
                        // the fields are f32 sums: allow their rounding, nothing more
                        assert!(e2 <= e + 1e-5 * e.abs().max(1.0), "{storage:?}: {e} → {e2}");
                        e = e2;
                    }
                }
            }
        }
    }

    #[test]
    fn stored_patterns_are_fixed_points_below_capacity() {
        let mut rng = Rng::seed(5);
        let n = 200;
        // Hebbian: P = 0.05 N is far below the exact-recall limit N / (2 ln N) ≈ 19
        let pats = random_patterns(10, n, &mut rng);
        let net = Hopfield::store(&pats, n, Storage::Hebbian).unwrap();
        for xi in pats.chunks(n) {
            assert_eq!(net.step_sync(xi), xi.to_vec());
        }
        // pseudo-inverse: P = 0.4 N patterns, even correlated ones (sharing a block)
        let mut pats = random_patterns(80, n, &mut rng);
        for row in pats.chunks_mut(n) {
            row[..40].iter_mut().for_each(|v| *v = 1);
        }
        let net = Hopfield::store(&pats, n, Storage::PseudoInverse).unwrap();
        for xi in pats.chunks(n) {
            assert_eq!(net.step_sync(xi), xi.to_vec());
        }
    }

    #[test]
    fn recall_from_a_corrupted_cue_and_the_energy_by_hand() {
        // two patterns of 4 units: W = (1/4)(ξ¹ξ¹ᵀ + ξ²ξ²ᵀ), zero diagonal
        let p = [1i8, 1, -1, -1, 1, -1, 1, -1];
        let net = Hopfield::store(&p, 4, Storage::Hebbian).unwrap();
        // w₀₁ = (1·1 + 1·(−1))/4 = 0, w₀₂ = (−1 + 1)/4 = 0, w₀₃ = (−1 − 1)/4 = −½
        assert_eq!(&net.weights()[..4], &[0.0, 0.0, 0.0, -0.5]);
        // E(ξ¹) = −½ Σ wᵢⱼ ξᵢξⱼ: only w₀₃ = w₃₀ = w₁₂ = w₂₁ = −½ are non-zero, each pair
        // ξᵢξⱼ = −1 → E = −½ · 4 · (−½)(−1) = −1
        assert!((net.energy(&p[..4]) + 1.0).abs() < 1e-12);
        let mut rng = Rng::seed(1);
        let n = 100;
        let pats = random_patterns(5, n, &mut rng);
        let net = Hopfield::store(&pats, n, Storage::Hebbian).unwrap();
        let mut cue = pats[..n].to_vec();
        for i in (0..n).step_by(5) {
            cue[i] = -cue[i]; // 20% flipped
        }
        let energies = net.run_async(&mut cue, 20, 9);
        assert_eq!(&cue, &pats[..n]);
        assert!(energies.windows(2).all(|e| e[1] <= e[0]));
    }

    #[test]
    fn modern_retrieval_recovers_ten_times_n_patterns_in_one_step() {
        let mut rng = Rng::seed(2);
        let (n, p, beta) = (32, 320, 1.0);
        let pats: Vec<f32> = random_patterns(p, n, &mut rng)
            .into_iter()
            .map(f32::from)
            .collect();
        let mut recovered = 0;
        for (k, xi) in pats.chunks(n).enumerate() {
            let mut q = xi.to_vec();
            for i in 0..3 {
                q[(k + 5 * i) % n] *= -1.0; // 3 of 32 units flipped
            }
            let out = modern_retrieve(&pats, n, &q, beta);
            if out.iter().zip(xi).all(|(a, b)| a.signum() == *b) {
                recovered += 1;
            }
        }
        assert_eq!(recovered, p);
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert!(Hopfield::store(&[1, 0, 1, -1], 2, Storage::Hebbian).is_err());
        assert!(Hopfield::store(&[1, 1, 1], 2, Storage::Hebbian).is_err());
        assert_eq!(
            Hopfield::store(&[1, 1, 1, 1], 2, Storage::PseudoInverse)
                .unwrap_err()
                .field,
            "patterns"
        );
    }
}
