//! The small dense linear algebra the classic networks need, in f64: principal components
//! by power iteration with deflation, ridge regression by Cholesky, and a spectral-radius
//! estimate for sparse square matrices. The big products go through the GEMM in
//! [`backprop_tensor::Tensor::matmul`].

use backprop_tensor::{Rng, Tensor};

use crate::ClassicError;

/// The mean and the first `k` principal directions (unit vectors, by decreasing variance)
/// of `n` samples of `d` features. The covariance is formed by one GEMM; each direction by
/// 300 power iterations against the earlier ones.
pub fn principal_components(
    data: &[f32],
    n: usize,
    d: usize,
    k: usize,
    seed: u64,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut mean = vec![0.0f64; d];
    for x in data.chunks(d) {
        for (m, &v) in mean.iter_mut().zip(x) {
            *m += f64::from(v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred: Vec<f32> = data
        .chunks(d)
        .flat_map(|x| {
            x.iter()
                .zip(&mean)
                .map(|(&v, &m)| (f64::from(v) - m) as f32)
        })
        .collect();
    let c = Tensor::from_vec(centred, &[n, d]);
    let cov: Vec<f64> = c
        .matmul_tn(&c)
        .into_vec()
        .into_iter()
        .map(|v| f64::from(v) / (n.max(2) - 1) as f64)
        .collect();
    let mut rng = Rng::seed(seed ^ 0xBCA);
    let mut pcs: Vec<Vec<f64>> = Vec::with_capacity(k);
    for _ in 0..k {
        let mut v: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        for _ in 0..300 {
            let mut nv = sym_matvec(&cov, &v, d);
            for p in &pcs {
                let dot: f64 = nv.iter().zip(p).map(|(a, b)| a * b).sum();
                nv.iter_mut().zip(p).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = nv.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm < 1e-300 {
                break;
            }
            v = nv.into_iter().map(|a| a / norm).collect();
        }
        pcs.push(v);
    }
    (mean, pcs)
}

fn sym_matvec(a: &[f64], v: &[f64], d: usize) -> Vec<f64> {
    a.chunks(d)
        .map(|row| row.iter().zip(v).map(|(x, y)| x * y).sum())
        .collect()
}

/// Solves `(AᵀA + λI)·W = AᵀY` for `W` (`p × q`), `A` being `n × p` and `Y` `n × q`, both
/// row-major f64: ridge regression in closed form (Tikhonov), by Cholesky. `λ` is not
/// applied to the column `skip` (e.g. a bias column) when given.
///
/// # Errors
/// λ negative, or the system singular (λ = 0 with dependent columns).
pub fn ridge(
    a: &[f64],
    y: &[f64],
    n: usize,
    p: usize,
    q: usize,
    lambda: f64,
    skip: Option<usize>,
) -> Result<Vec<f64>, ClassicError> {
    crate::non_negative("ridge", lambda)?;
    let at = Tensor::from_vec(a.to_vec(), &[n, p]);
    let mut g = at.matmul_tn(&at).into_vec();
    let b = at
        .matmul_tn(&Tensor::from_vec(y.to_vec(), &[n, q]))
        .into_vec();
    for i in 0..p {
        if Some(i) != skip {
            g[i * p + i] += lambda;
        }
    }
    cholesky_solve(g, b, p, q)
}

/// Solves `G·X = B` for symmetric positive definite `G` (`p × p`), `B` `p × q`.
///
/// # Errors
/// If `G` is not positive definite.
pub fn cholesky_solve(
    mut g: Vec<f64>,
    mut b: Vec<f64>,
    p: usize,
    q: usize,
) -> Result<Vec<f64>, ClassicError> {
    // G = L·Lᵀ in place (lower triangle)
    for j in 0..p {
        let diag = g[j * p + j];
        let mut s = diag;
        for k in 0..j {
            s -= g[j * p + k] * g[j * p + k];
        }
        // relative to the diagonal: rounding leaves ~1e-16·diag where the matrix is singular
        if !(s > 1e-12 * diag.abs()) || !(s > 1e-300) {
            return Err(ClassicError::new(
                "ridge",
                "the normal equations are singular; use a positive ridge",
            ));
        }
        let l = s.sqrt();
        g[j * p + j] = l;
        for i in j + 1..p {
            let mut s = g[i * p + j];
            for k in 0..j {
                s -= g[i * p + k] * g[j * p + k];
            }
            g[i * p + j] = s / l;
        }
    }
    // L·Z = B, then Lᵀ·X = Z
    for i in 0..p {
        for k in 0..i {
            let l = g[i * p + k];
            for c in 0..q {
                b[i * q + c] -= l * b[k * q + c];
            }
        }
        let l = g[i * p + i];
        b[i * q..(i + 1) * q].iter_mut().for_each(|v| *v /= l);
    }
    for i in (0..p).rev() {
        for k in i + 1..p {
            let l = g[k * p + i];
            for c in 0..q {
                b[i * q + c] -= l * b[k * q + c];
            }
        }
        let l = g[i * p + i];
        b[i * q..(i + 1) * q].iter_mut().for_each(|v| *v /= l);
    }
    Ok(b)
}

/// A sparse square matrix in compressed rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    /// Rows (= columns).
    pub n: usize,
    /// Row `i`'s entries are `cols[ptr[i]..ptr[i+1]]`, `vals[..]`.
    pub ptr: Vec<usize>,
    /// Column indices.
    pub cols: Vec<usize>,
    /// Values.
    pub vals: Vec<f64>,
}

impl Csr {
    /// `out = A·v`.
    pub fn matvec_into(&self, v: &[f64], out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate() {
            let r = self.ptr[i]..self.ptr[i + 1];
            *o = self.cols[r.clone()]
                .iter()
                .zip(&self.vals[r])
                .map(|(&c, &w)| w * v[c])
                .sum();
        }
    }

    /// The spectral radius (largest eigenvalue modulus), estimated from the growth rate of
    /// `‖Aᵏv‖`: the geometric mean of `‖Av‖/‖v‖` over 4,000 steps after 1,000 steps of
    /// burn-in. Complex eigenvalue pairs make single ratios oscillate; the long mean
    /// converges to the modulus (error ≈ 1/steps relative for a generic start).
    pub fn spectral_radius(&self, seed: u64) -> f64 {
        let mut rng = Rng::seed(seed ^ 0x5EC7);
        let mut v: Vec<f64> = (0..self.n).map(|_| rng.normal()).collect();
        let mut out = vec![0.0; self.n];
        let (burn, steps) = (1000, 4000);
        let mut log_growth = 0.0;
        for t in 0..burn + steps {
            self.matvec_into(&v, &mut out);
            let norm = out.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm == 0.0 {
                return 0.0;
            }
            if t >= burn {
                log_growth += norm.ln();
            }
            for (a, b) in v.iter_mut().zip(&out) {
                *a = b / norm;
            }
        }
        (log_growth / steps as f64).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_a_linear_map_and_shrinks_with_lambda() {
        // y = 2·x₀ − x₁ + 0.5 (third column is the bias)
        let xs = [[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [1.0, 3.0], [0.5, 0.5]];
        let a: Vec<f64> = xs.iter().flat_map(|x| [x[0], x[1], 1.0]).collect();
        let y: Vec<f64> = xs.iter().map(|x| 2.0 * x[0] - x[1] + 0.5).collect();
        let w = ridge(&a, &y, 5, 3, 1, 0.0, None).unwrap();
        for (got, want) in w.iter().zip([2.0, -1.0, 0.5]) {
            assert!((got - want).abs() < 1e-9, "{w:?}");
        }
        let shrunk = ridge(&a, &y, 5, 3, 1, 10.0, Some(2)).unwrap();
        assert!(shrunk[0].abs() < 2.0 && shrunk[0] > 0.0);
        assert!(ridge(&a, &y, 5, 3, 1, -1.0, None).is_err());
    }

    #[test]
    fn spectral_radius_of_a_rotation_and_a_triangle() {
        // 0.9 × rotation by 90°: eigenvalues ±0.9i, modulus 0.9
        let rot = Csr {
            n: 2,
            ptr: vec![0, 1, 2],
            cols: vec![1, 0],
            vals: vec![-0.9, 0.9],
        };
        assert!((rot.spectral_radius(1) - 0.9).abs() < 1e-6);
        // upper triangular [[0.5, 1], [0, -0.7]]: radius 0.7
        let tri = Csr {
            n: 2,
            ptr: vec![0, 2, 3],
            cols: vec![0, 1, 1],
            vals: vec![0.5, 1.0, -0.7],
        };
        assert!((tri.spectral_radius(2) - 0.7).abs() < 1e-3);
    }

    #[test]
    fn principal_components_find_the_long_axis() {
        // points along (1, 1), each t with both ±0.1 along (1, −1)
        let data: Vec<f32> = (0..50)
            .flat_map(|i| {
                let t = i as f32 / 10.0 - 2.5;
                [t + 0.1, t - 0.1, t - 0.1, t + 0.1]
            })
            .collect();
        let (mean, pcs) = principal_components(&data, 100, 2, 2, 0);
        // t runs over −2.5, −2.4, …, 2.4: mean −0.05 on both axes
        assert!((mean[0] + 0.05).abs() < 1e-6 && (mean[1] + 0.05).abs() < 1e-6);
        let r = std::f64::consts::FRAC_1_SQRT_2;
        assert!((pcs[0][0].abs() - r).abs() < 1e-6 && (pcs[0][0] - pcs[0][1]).abs() < 1e-6);
        assert!((pcs[1][0] + pcs[1][1]).abs() < 1e-6);
    }
}
