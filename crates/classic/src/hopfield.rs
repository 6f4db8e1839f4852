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

/// When the capacity experiment counts a stored pattern as retrieved.
///
/// The cue is the pattern with `round(cue_noise·N)` distinct units flipped (0: the pattern
/// itself); asynchronous updates run until a sweep flips nothing; the pattern is retrieved
/// if at most `max_wrong·N` units of the final state differ from it. The retrieval states of
/// the theory (Amit, Gutfreund & Sompolinsky 1985) keep under 1.7% of the units wrong up to
/// α_c ≈ 0.138 and vanish above it, leaving spurious states some 25–35% away, so the
/// criterion separates the two outcomes rather than measuring the small error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retrieval {
    /// The fraction of units flipped in the cue.
    pub cue_noise: f64,
    /// The fraction of units allowed to differ from the pattern after convergence.
    pub max_wrong: f64,
    /// Sweeps allowed before giving up on convergence (asynchronous updates with symmetric
    /// weights always converge; this only bounds the work).
    pub max_sweeps: usize,
}

impl Default for Retrieval {
    /// From the pattern itself, at most 1% of the units wrong, 100 sweeps.
    fn default() -> Self {
        Retrieval {
            cue_noise: 0.0,
            max_wrong: 0.01,
            max_sweeps: 100,
        }
    }
}

/// Hebbian weights times `N` (integers, so the fields below are exact), diagonal zeroed.
fn hebbian_integer_weights(patterns: &[i8], n: usize) -> Vec<i32> {
    let p = patterns.len() / n;
    let x = Tensor::from_vec(patterns.iter().map(|&v| f32::from(v)).collect(), &[p, n]);
    // sums of P terms ±1: exact in f32 while P < 2²⁴
    let mut w: Vec<i32> = x
        .matmul_tn(&x)
        .into_vec()
        .into_iter()
        .map(|v| v as i32)
        .collect();
    for i in 0..n {
        w[i * n + i] = 0;
    }
    w
}

/// Asynchronous updates from `s` until a sweep flips nothing (or `max_sweeps`), with the
/// weights `w` as integers (`N·wᵢⱼ`) and the local fields kept up to date as units flip,
/// so a sweep costs `O(N)` plus `O(N)` per flip. Same visiting order and rule as
/// [`Hopfield::run_async`] with the same seed. Returns the sweeps run.
pub fn settle_hebbian(w: &[i32], s: &mut [i8], max_sweeps: usize, seed: u64) -> usize {
    let n = s.len();
    assert_eq!(w.len(), n * n, "settle_hebbian: weights for {n} units");
    let mut h: Vec<i32> = (0..n)
        .map(|i| {
            w[i * n..(i + 1) * n]
                .iter()
                .zip(s.iter())
                .map(|(&a, &b)| a * i32::from(b))
                .sum()
        })
        .collect();
    let mut rng = Rng::seed(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for sweep in 1..=max_sweeps {
        order.iter_mut().enumerate().for_each(|(k, o)| *o = k);
        rng.shuffle(&mut order);
        let mut flips = 0;
        for &i in &order {
            if h[i] * i32::from(s[i]) < 0 {
                s[i] = -s[i];
                flips += 1;
                let twice = 2 * i32::from(s[i]);
                // w is symmetric: column i is row i
                for (hj, &wij) in h.iter_mut().zip(&w[i * n..(i + 1) * n]) {
                    *hj += twice * wij;
                }
            }
        }
        if flips == 0 {
            return sweep;
        }
    }
    max_sweeps
}

/// The capacity experiment: for each load `P/N` in `alphas`, store `P = round(αN)` random
/// patterns by the Hebbian rule and count the patterns retrieved as `criterion` defines it,
/// over `trials` independent memories. Returns the retrieved fraction per load.
pub fn capacity_curve(
    n: usize,
    alphas: &[f64],
    trials: usize,
    criterion: &Retrieval,
    seed: u64,
) -> Vec<f64> {
    use rayon::prelude::*;
    let mut rng = Rng::seed(seed);
    let flips = (criterion.cue_noise * n as f64).round() as usize;
    let allowed = (criterion.max_wrong * n as f64).floor() as usize;
    alphas
        .iter()
        .map(|&a| {
            let p = ((a * n as f64).round() as usize).max(1);
            let mut ok = 0usize;
            for _ in 0..trials {
                let pats = random_patterns(p, n, &mut rng);
                let w = hebbian_integer_weights(&pats, n);
                let seeds: Vec<u64> = (0..p).map(|_| rng.next_u64()).collect();
                ok += pats
                    .par_chunks(n)
                    .zip(&seeds)
                    .filter(|(xi, &sd)| {
                        let mut s = xi.to_vec();
                        let mut cue_rng = Rng::seed(sd ^ 0xC0E);
                        let mut units: Vec<usize> = (0..n).collect();
                        cue_rng.shuffle(&mut units);
                        units[..flips].iter().for_each(|&i| s[i] = -s[i]);
                        settle_hebbian(&w, &mut s, criterion.max_sweeps, sd);
                        s.iter().zip(xi.iter()).filter(|(a, b)| a != b).count() <= allowed
                    })
                    .count();
            }
            ok as f64 / (p * trials) as f64
        })
        .collect()
}

/// The load at which a retrieved fraction measured at increasing `alphas` first falls
/// through one half, by linear interpolation between the two loads around it (NaN if it
/// never does).
pub fn half_point(alphas: &[f64], fraction: &[f64]) -> f64 {
    for k in 1..alphas.len().min(fraction.len()) {
        if fraction[k - 1] >= 0.5 && fraction[k] < 0.5 {
            let t = (fraction[k - 1] - 0.5) / (fraction[k - 1] - fraction[k]);
            return alphas[k - 1] + t * (alphas[k] - alphas[k - 1]);
        }
    }
    f64::NAN
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
    fn settling_with_integer_fields_matches_the_plain_dynamics() {
        let mut rng = Rng::seed(8);
        let n = 80;
        // overloaded (P = 0.25 N), so that many units flip on the way
        let pats = random_patterns(20, n, &mut rng);
        let net = Hopfield::store(&pats, n, Storage::Hebbian).unwrap();
        let w = hebbian_integer_weights(&pats, n);
        for (k, xi) in pats.chunks(n).enumerate() {
            let mut a = xi.to_vec();
            a[k] = -a[k];
            let mut b = a.clone();
            let sweeps = settle_hebbian(&w, &mut a, 50, k as u64);
            let energies = net.run_async(&mut b, 50, k as u64);
            assert_eq!(a, b, "pattern {k}");
            assert_eq!(sweeps, energies.len() - 1, "pattern {k}");
        }
    }

    #[test]
    fn the_capacity_curve_falls_through_one_half_between_light_and_heavy_loads() {
        // small and quick: N = 100, a few memories; retrieval is near certain at α = 0.05
        // and rare at α = 0.3 whatever the finite-size shift of the transition
        let alphas = [0.05, 0.1, 0.2, 0.3];
        let f = capacity_curve(100, &alphas, 4, &Retrieval::default(), 1);
        assert!(f[0] > 0.95 && f[3] < 0.3, "{f:?}");
        let half = half_point(&alphas, &f);
        assert!(half > 0.1 && half < 0.3, "{f:?}");
        // 0.9 → 0.4 between 0.1 and 0.2: one half is 0.4/0.5 of the way
        assert!((half_point(&[0.1, 0.2], &[0.9, 0.4]) - 0.18).abs() < 1e-12);
        assert!(half_point(&[0.1, 0.2], &[0.9, 0.8]).is_nan());
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
