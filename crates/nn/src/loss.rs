//! Loss functions.
//!
//! Every loss first computes a per-sample loss `ℓ_i` (summing over the sample's output
//! components), then reduces over the batch (axis 0) with [`Reduction`]: `Mean` gives
//! `(1/n) Σ_i ℓ_i`, `Sum` gives `Σ_i ℓ_i`. So `half_squared_error` with `Mean` is the
//! lecture's `C = 1/(2n) Σ_x ‖y(x) − a‖²`, and with `Sum` it is `½ Σ (y − a)²`.
//!
//! | loss | ℓ_i | ∂ℓ_i/∂(prediction) |
//! |---|---|---|
//! | [`half_squared_error`] | ½‖y_i − a_i‖² | a − y |
//! | [`mse`] | (PyTorch's) mean of (y − a)² over all elements | 2(a − y)/N |
//! | [`absolute_error`] | Σ_j \|y_ij − a_ij\| | sgn(a − y) (0 at a tie) |
//! | [`hinge`] | max(0, 1 − t_i s_i), t ∈ {−1, +1} | −t_i where t_i s_i < 1 |
//! | [`multiclass_hinge`] | Σ_{j≠y_i} max(0, s_j − s_{y_i} + Δ) (Weston–Watkins) | |
//! | [`bce_with_logits`] | −[y log σ(z) + (1−y) log(1−σ(z))] | σ(z) − y |
//! | [`binary_cross_entropy`] | −[y log p + (1−y) log(1−p)] on probabilities | |
//! | [`cross_entropy`] | −log softmax(z_i)_{y_i} | p_i − onehot(y_i) |
//! | [`cross_entropy_probs`] | −Σ_j q_ij log softmax(z_i)_j | p_i − q_i (for Σq = 1) |
//! | [`nll_loss`] | −(log-probabilities)_{i, y_i} | |
//! | [`zero_one_loss`] | 1 if the prediction is wrong, else 0 (a metric, no gradient) | |

use backprop_autograd::Var;
use backprop_tensor::{Element, Tensor};

/// How per-sample losses combine over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// `(1/n) Σ_i ℓ_i`.
    #[default]
    Mean,
    /// `Σ_i ℓ_i`.
    Sum,
}

/// Sums all axes after the first: `[n, ...] → [n]` (a rank-1 input is already per sample).
fn per_sample<E: Element>(x: &Var<E>) -> Var<E> {
    let s = x.shape();
    if s.len() <= 1 {
        return x.clone();
    }
    let n = s[0];
    x.reshape(&[n, s[1..].iter().product()]).sum_axis(1, false)
}

fn reduce<E: Element>(per: &Var<E>, reduction: Reduction) -> Var<E> {
    match reduction {
        Reduction::Mean => per.mean(),
        Reduction::Sum => per.sum(),
    }
}

#[track_caller]
fn same_shape(op: &str, a: &[usize], b: &[usize]) {
    assert!(
        a == b,
        "{op}: prediction shape {a:?} and target shape {b:?} differ"
    );
}

/// Squared error in the lectures' form, `ℓ_i = ½‖y_i − a_i‖²`; with `Mean` this is
/// `C = 1/(2n) Σ ‖y − a‖²`. Its gradient with respect to `a` is `(a − y)/n`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::loss::{half_squared_error, Reduction};
/// use backprop_tensor::Tensor;
/// let a = Var::constant(Tensor::<f64>::from_vec(vec![0.69], &[1, 1]));
/// let y = Tensor::from_vec(vec![0.5], &[1, 1]);
/// let c = half_squared_error(&a, &y, Reduction::Sum);
/// assert!((c.item() - 0.5 * 0.19f64.powi(2)).abs() < 1e-12);
/// ```
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn half_squared_error<E: Element>(a: &Var<E>, y: &Tensor<E>, reduction: Reduction) -> Var<E> {
    same_shape("half_squared_error", &a.shape(), y.shape());
    let d = a.sub(&Var::constant(y.clone()));
    reduce(
        &per_sample(&d.mul(&d)).mul_scalar(E::from_f64(0.5)),
        reduction,
    )
}

/// PyTorch's `MSELoss`: the mean of `(a − y)²` over every element.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let a = Var::constant(Tensor::<f32>::from_vec(vec![1.0, 3.0], &[2]));
/// assert_eq!(backprop_nn::loss::mse(&a, &Tensor::from_vec(vec![0.0, 0.0], &[2])).item(), 5.0);
/// ```
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn mse<E: Element>(a: &Var<E>, y: &Tensor<E>) -> Var<E> {
    same_shape("mse", &a.shape(), y.shape());
    let d = a.sub(&Var::constant(y.clone()));
    d.mul(&d).mean()
}

/// Absolute error `ℓ_i = Σ_j |y_ij − a_ij|` (gradient `sgn(a − y)`, 0 at a tie).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::loss::{absolute_error, Reduction};
/// use backprop_tensor::Tensor;
/// let a = Var::constant(Tensor::<f32>::from_vec(vec![1.0, -1.0], &[2, 1]));
/// let y = Tensor::from_vec(vec![0.0, 0.0], &[2, 1]);
/// assert_eq!(absolute_error(&a, &y, Reduction::Mean).item(), 1.0);
/// ```
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn absolute_error<E: Element>(a: &Var<E>, y: &Tensor<E>, reduction: Reduction) -> Var<E> {
    same_shape("absolute_error", &a.shape(), y.shape());
    reduce(
        &per_sample(&a.sub(&Var::constant(y.clone())).abs()),
        reduction,
    )
}

/// Binary hinge loss `ℓ_i = max(0, 1 − t_i·s_i)` for scores `s` and labels `t ∈ {−1, +1}`
/// (the gradient at the hinge point `t·s = 1` is 0).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::loss::{hinge, Reduction};
/// use backprop_tensor::Tensor;
/// let s = Var::constant(Tensor::<f32>::from_vec(vec![2.0, 0.5, -1.0], &[3]));
/// let t = Tensor::from_vec(vec![1.0, 1.0, 1.0], &[3]);
/// assert_eq!(hinge(&s, &t, Reduction::Sum).item(), 0.0 + 0.5 + 2.0);
/// ```
///
/// # Panics
/// If the shapes differ or a label is not ±1.
#[track_caller]
pub fn hinge<E: Element>(scores: &Var<E>, targets: &Tensor<E>, reduction: Reduction) -> Var<E> {
    same_shape("hinge", &scores.shape(), targets.shape());
    assert!(
        targets.data().iter().all(|&t| t == E::ONE || t == -E::ONE),
        "hinge: labels must be -1 or +1"
    );
    let margin = scores
        .mul(&Var::constant(targets.clone()))
        .neg()
        .add_scalar(E::ONE);
    reduce(&per_sample(&margin.relu()), reduction)
}

/// Multiclass hinge loss (Weston & Watkins 1999, the "SVM loss" of CS231n):
/// `ℓ_i = Σ_{j≠y_i} max(0, s_ij − s_{i,y_i} + Δ)`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::loss::{multiclass_hinge, Reduction};
/// use backprop_tensor::Tensor;
/// // CS231n's example: scores (3.2, 5.1, −1.7), correct class 0: max(0, 2.9) + max(0, −3.9) = 2.9
/// let s = Var::constant(Tensor::<f64>::from_vec(vec![3.2, 5.1, -1.7], &[1, 3]));
/// assert!((multiclass_hinge(&s, &[0], 1.0, Reduction::Sum).item() - 2.9).abs() < 1e-12);
/// ```
///
/// # Panics
/// If `scores` is not `[n, classes]` or a label is out of range.
#[track_caller]
pub fn multiclass_hinge<E: Element>(
    scores: &Var<E>,
    labels: &[usize],
    margin: f64,
    reduction: Reduction,
) -> Var<E> {
    let s = scores.shape();
    assert!(
        s.len() == 2 && s[0] == labels.len(),
        "multiclass_hinge: scores {s:?} for {} labels",
        labels.len()
    );
    let correct = scores.gather(1, labels).reshape(&[s[0], 1]);
    let m = E::from_f64(margin);
    let margins = scores.sub(&correct).add_scalar(m).relu();
    // the j = y_i term is max(0, Δ) = Δ (for Δ ≥ 0): take it out again
    let per = margins.sum_axis(1, false).add_scalar(-m.maximum_zero());
    reduce(&per, reduction)
}

trait MaxZero {
    fn maximum_zero(self) -> Self;
}
impl<E: Element> MaxZero for E {
    fn maximum_zero(self) -> Self {
        if self > E::ZERO {
            self
        } else {
            E::ZERO
        }
    }
}

/// Logistic loss / binary cross-entropy from logits, computed stably as
/// `ℓ = max(z, 0) − z·y + log(1 + e^{−|z|})`, with targets `y ∈ [0, 1]`. One fused op whose
/// gradient is exactly `σ(z) − y`, so logistic regression's gradient is `(ŷ − y)x`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::loss::{bce_with_logits, Reduction};
/// use backprop_tensor::Tensor;
/// let z = Var::parameter(Tensor::<f64>::from_vec(vec![0.0], &[1]));
/// let loss = bce_with_logits(&z, &Tensor::from_vec(vec![1.0], &[1]), Reduction::Sum);
/// assert!((loss.item() - 2f64.ln()).abs() < 1e-12);
/// assert_eq!(loss.backward().get(&z).unwrap().to_vec(), vec![-0.5]); // σ(0) − 1
/// ```
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn bce_with_logits<E: Element>(
    logits: &Var<E>,
    targets: &Tensor<E>,
    reduction: Reduction,
) -> Var<E> {
    same_shape("bce_with_logits", &logits.shape(), targets.shape());
    let z = logits.value();
    let y = targets.clone();
    let l: Vec<E> = z
        .data()
        .iter()
        .zip(y.data())
        .map(|(&z, &t)| {
            let relu = if z > E::ZERO { z } else { E::ZERO };
            relu - z * t + (E::ONE + (-z.abs()).exp()).ln()
        })
        .collect();
    let value = Tensor::from_vec(l, z.shape());
    let per_elem = Var::from_op(
        "bce_with_logits",
        value,
        vec![logits.clone()],
        move |g, _| vec![Some(g.mul(&z.sigmoid().sub(&y)))],
    );
    reduce(&per_sample(&per_elem), reduction)
}

/// Binary cross-entropy on probabilities, `ℓ = −[y log p + (1−y) log(1−p)]`. Prefer
/// [`bce_with_logits`], which is stable for saturated outputs; this form is for networks
/// that end in a sigmoid, as in the lectures. `p` must lie in (0, 1).
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::loss::{binary_cross_entropy, Reduction};
/// use backprop_tensor::Tensor;
/// let p = Var::constant(Tensor::<f64>::from_vec(vec![0.8, 0.25], &[2, 1]));
/// let y = Tensor::from_vec(vec![1.0, 0.0], &[2, 1]);
/// let want = -(0.8f64.ln() + 0.75f64.ln()) / 2.0;
/// assert!((binary_cross_entropy(&p, &y, Reduction::Mean).item() - want).abs() < 1e-12);
/// ```
///
/// # Panics
/// If the shapes differ.
#[track_caller]
pub fn binary_cross_entropy<E: Element>(
    p: &Var<E>,
    targets: &Tensor<E>,
    reduction: Reduction,
) -> Var<E> {
    same_shape("binary_cross_entropy", &p.shape(), targets.shape());
    let y = Var::constant(targets.clone());
    let one_minus_y = Var::constant(targets.neg().add_scalar(E::ONE));
    let l = y
        .mul(&p.log())
        .add(&one_minus_y.mul(&p.neg().add_scalar(E::ONE).log()))
        .neg();
    reduce(&per_sample(&l), reduction)
}

/// Softmax cross-entropy from logits with class indices, fused and stable:
/// `ℓ_i = log Σ_j e^{z_ij} − z_{i,y_i}`. Its gradient with respect to the logits is
/// `p_i − onehot(y_i)` (scaled by `1/n` for `Mean`).
///
/// # Shapes
/// `logits: [n, classes]`, `labels: n` indices.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::loss::{cross_entropy, Reduction};
/// use backprop_tensor::Tensor;
/// let z = Var::constant(Tensor::<f32>::from_vec(vec![0.0, 0.0, 1000.0, 0.0], &[2, 2]));
/// let l = cross_entropy(&z, &[1, 0], Reduction::Mean).item();
/// assert!((l - 2f32.ln() / 2.0).abs() < 1e-6); // ln 2 for row 0, 0 for row 1
/// ```
///
/// # Panics
/// If `logits` is not `[n, classes]` for `n` labels, or a label is out of range.
#[track_caller]
pub fn cross_entropy<E: Element>(
    logits: &Var<E>,
    labels: &[usize],
    reduction: Reduction,
) -> Var<E> {
    let s = logits.shape();
    assert!(
        s.len() == 2 && s[0] == labels.len(),
        "cross_entropy: logits {s:?} for {} labels",
        labels.len()
    );
    if let Some(&bad) = labels.iter().find(|&&l| l >= s[1]) {
        panic!(
            "cross_entropy: label {bad} is out of range for {} classes",
            s[1]
        );
    }
    let logp = logits.with_value(|z| z.log_softmax(1));
    let per = logp.gather(1, labels).neg();
    let labels = labels.to_vec();
    let per = Var::from_op("cross_entropy", per, vec![logits.clone()], move |g, _| {
        // (p − onehot) scaled row by row by the upstream gradient
        let mut d = logp.exp();
        let c = d.shape()[1];
        let gd = g.data().to_vec();
        let dd = d.data_mut();
        for (i, &l) in labels.iter().enumerate() {
            dd[i * c + l] -= E::ONE;
            for v in &mut dd[i * c..(i + 1) * c] {
                *v *= gd[i];
            }
        }
        vec![Some(d)]
    });
    reduce(&per, reduction)
}

/// Softmax cross-entropy from logits against target distributions `q` (one-hot or soft):
/// `ℓ_i = −Σ_j q_ij log softmax(z_i)_j`, fused; gradient `p_i·Σ_j q_ij − q_i`, which is
/// `p − q` when each row of `q` sums to 1.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::loss::{cross_entropy_probs, Reduction};
/// use backprop_tensor::Tensor;
/// let z = Var::constant(Tensor::<f32>::from_vec(vec![0.0, 0.0], &[1, 2]));
/// let q = Tensor::from_vec(vec![0.5, 0.5], &[1, 2]);
/// assert!((cross_entropy_probs(&z, &q, Reduction::Sum).item() - 2f32.ln()).abs() < 1e-6);
/// ```
///
/// # Panics
/// If the shapes differ or are not `[n, classes]`.
#[track_caller]
pub fn cross_entropy_probs<E: Element>(
    logits: &Var<E>,
    q: &Tensor<E>,
    reduction: Reduction,
) -> Var<E> {
    let s = logits.shape();
    assert!(
        s.len() == 2,
        "cross_entropy_probs: logits must be [n, classes], got {s:?}"
    );
    same_shape("cross_entropy_probs", &s, q.shape());
    let logp = logits.with_value(|z| z.log_softmax(1));
    let per = q.mul(&logp).sum_axis(1, false).neg();
    let q = q.clone();
    let per = Var::from_op(
        "cross_entropy_probs",
        per,
        vec![logits.clone()],
        move |g, _| {
            let qsum = q.sum_axis(1, true);
            let d = logp.exp().mul(&qsum).sub(&q);
            vec![Some(d.mul(&g.reshape(&[g.numel(), 1])))]
        },
    );
    reduce(&per, reduction)
}

/// Negative log-likelihood of log-probabilities: `ℓ_i = −logp_{i, y_i}`. With
/// `log_softmax` in front it equals [`cross_entropy`].
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::loss::{nll_loss, Reduction};
/// use backprop_tensor::Tensor;
/// let lp = Var::constant(Tensor::<f32>::from_vec(vec![-0.1, -2.0, -3.0, -0.5], &[2, 2]));
/// assert_eq!(nll_loss(&lp, &[0, 1], Reduction::Sum).item(), 0.6);
/// ```
///
/// # Panics
/// If the shapes or labels do not fit.
#[track_caller]
pub fn nll_loss<E: Element>(log_probs: &Var<E>, labels: &[usize], reduction: Reduction) -> Var<E> {
    reduce(&log_probs.gather(1, labels).neg(), reduction)
}

/// The zero-one loss, a metric: the fraction of rows of `scores` (`[n, classes]`) whose
/// highest score is not the label. With a single column, a score above `0` means class 1
/// (so it works on logits of a binary classifier).
///
/// ```
/// use backprop_tensor::Tensor;
/// let s = Tensor::<f32>::from_vec(vec![0.9, 0.1, 0.2, 0.8, 0.6, 0.4], &[3, 2]);
/// assert_eq!(backprop_nn::loss::zero_one_loss(&s, &[0, 1, 1]), 1.0 / 3.0);
/// ```
///
/// # Panics
/// If the row count differs from the label count.
pub fn zero_one_loss<E: Element>(scores: &Tensor<E>, labels: &[usize]) -> f64 {
    let pred = predictions(scores);
    assert_eq!(
        pred.len(),
        labels.len(),
        "zero_one_loss: {} predictions for {} labels",
        pred.len(),
        labels.len()
    );
    if labels.is_empty() {
        return 0.0;
    }
    pred.iter().zip(labels).filter(|(p, l)| p != l).count() as f64 / labels.len() as f64
}

/// The predicted class of each row: the argmax, or for a single column `score > 0`.
///
/// ```
/// use backprop_tensor::Tensor;
/// let s = Tensor::<f32>::from_vec(vec![0.1, 0.7, 0.2, 0.5, 0.3, 0.2], &[2, 3]);
/// assert_eq!(backprop_nn::loss::predictions(&s), vec![1, 0]);
/// ```
pub fn predictions<E: Element>(scores: &Tensor<E>) -> Vec<usize> {
    let s = scores.shape();
    if s.len() == 1 || s[1] == 1 {
        scores
            .data()
            .iter()
            .map(|&v| usize::from(v > E::ZERO))
            .collect()
    } else {
        scores.argmax(1)
    }
}
