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

use rayon::prelude::*;

use crate::element::Element;
use crate::tensor::Tensor;

fn dims(s: &[usize]) -> (usize, usize, usize) {
    match s.len() {
        2 => (s[0], s[1], 1),
        4 => (s[0], s[1], s[2] * s[3]),
        _ => panic!("batch norm: expects [N, C] or [N, C, H, W], got {s:?}"),
    }
}

/// Per-channel sums of `f(x, dy)` over batch and space, in parallel over channels.
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
    let (n, c, hw) = dims(x.shape());
    assert!(
        gamma.shape() == [c] && beta.shape() == [c],
        "batch norm: gamma {:?} and beta {:?} for {c} channels",
        gamma.shape(),
        beta.shape()
    );
    let m = E::from_usize(n * hw);
    let xd = x.data();
    let mean: Vec<E> = channel_sums(x.shape(), |i, _| xd[i])
        .into_iter()
        .map(|s| s / m)
        .collect();
    let var: Vec<E> = channel_sums(x.shape(), |i, ch| {
        let d = xd[i] - mean[ch];
        d * d
    })
    .into_iter()
    .map(|s| s / m)
    .collect();
    let invstd: Vec<E> = var.iter().map(|&v| E::ONE / (v + eps).sqrt()).collect();
    let (g, b) = (gamma.data(), beta.data());
    let y = map_planes(x.shape(), |i, ch| {
        g[ch] * (xd[i] - mean[ch]) * invstd[ch] + b[ch]
    });
    (
        Tensor::from_parts(y, x.shape().to_vec()),
        Tensor::from_parts(mean, vec![c]),
        Tensor::from_parts(var, vec![c]),
    )
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
    let (n, c, hw) = dims(x.shape());
    let m = E::from_usize(n * hw);
    let (xd, gd, mu) = (x.data(), dy.data(), mean.data());
    let invstd: Vec<E> = var
        .data()
        .iter()
        .map(|&v| E::ONE / (v + eps).sqrt())
        .collect();
    let dbeta = channel_sums(x.shape(), |i, _| gd[i]);
    let dgamma = channel_sums(x.shape(), |i, ch| gd[i] * (xd[i] - mu[ch]) * invstd[ch]);
    let g = gamma.data();
    let dx = map_planes(x.shape(), |i, ch| {
        let xhat = (xd[i] - mu[ch]) * invstd[ch];
        g[ch] * invstd[ch] / m * (m * gd[i] - dbeta[ch] - xhat * dgamma[ch])
    });
    (
        Tensor::from_parts(dx, x.shape().to_vec()),
        Tensor::from_parts(dgamma, vec![c]),
        Tensor::from_parts(dbeta, vec![c]),
    )
}

/// The per-channel affine map `y = s_c·x + t_c`.
pub fn channel_affine_forward<E: Element>(
    x: &Tensor<E>,
    s: &Tensor<E>,
    t: &Tensor<E>,
) -> Tensor<E> {
    let (_, c, _) = dims(x.shape());
    assert!(
        s.shape() == [c] && t.shape() == [c],
        "channel affine: scale {:?} and shift {:?} for {c} channels",
        s.shape(),
        t.shape()
    );
    let (xd, sd, td) = (x.data(), s.data(), t.data());
    Tensor::from_parts(
        map_planes(x.shape(), |i, ch| sd[ch] * xd[i] + td[ch]),
        x.shape().to_vec(),
    )
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
