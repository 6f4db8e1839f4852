//! Gradient clipping, applied to a [`Grads`] store between `backward()` and `step()`.

use backprop_autograd::Grads;
use backprop_tensor::Element;

/// Scales all gradients together so that their global L2 norm `√(Σ g²)` is at most
/// `max_norm`: if the norm `n` exceeds it, every gradient is multiplied by `max_norm / n`.
/// Returns the norm before clipping.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_optim::clip::clip_grad_norm;
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f64>::from_vec(vec![3.0, 4.0], &[2]));
/// let mut g = w.mul(&w).mul_scalar(0.5).sum().backward(); // gradient (3, 4), norm 5
/// assert_eq!(clip_grad_norm(&mut g, 1.0), 5.0);
/// assert!(g.get(&w).unwrap().allclose(&Tensor::from_vec(vec![0.6, 0.8], &[2]), 1e-12, 1e-12));
/// ```
pub fn clip_grad_norm<E: Element>(grads: &mut Grads<E>, max_norm: f64) -> f64 {
    let norm = grads
        .iter()
        .map(|(_, g)| {
            g.data()
                .iter()
                .map(|v| v.to_f64() * v.to_f64())
                .sum::<f64>()
        })
        .sum::<f64>()
        .sqrt();
    if norm > max_norm && norm > 0.0 {
        let s = E::from_f64(max_norm / norm);
        for (_, g) in grads.iter_mut() {
            g.data_mut().iter_mut().for_each(|v| *v *= s);
        }
    }
    norm
}

/// Clamps every gradient element to `[−clip, clip]`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_optim::clip::clip_grad_value;
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f32>::from_vec(vec![3.0, -0.2], &[2]));
/// let mut g = w.mul(&w).mul_scalar(0.5).sum().backward();
/// clip_grad_value(&mut g, 1.0);
/// assert_eq!(g.get(&w).unwrap().to_vec(), vec![1.0, -0.2]);
/// ```
pub fn clip_grad_value<E: Element>(grads: &mut Grads<E>, clip: f64) {
    let (lo, hi) = (E::from_f64(-clip), E::from_f64(clip));
    for (_, g) in grads.iter_mut() {
        g.data_mut().iter_mut().for_each(|v| {
            if *v > hi {
                *v = hi
            } else if *v < lo {
                *v = lo
            }
        });
    }
}
