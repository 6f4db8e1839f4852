//! Inference with batch norm folded into the convolution before it.
//!
//! In evaluation a batch norm is the per-channel affine map `y = s_c·x + t_c` with
//! `s_c = γ_c/√(running_var_c + ε)` and `t_c = β_c − running_mean_c·s_c`. After a
//! convolution `x ⋆ w + b` that is the convolution with weights `s_o·w_o` and bias
//! `s_o·b_o + t_o`, so conv → batch norm (→ ReLU) runs as one convolution whose ReLU is
//! applied to each image's output while it is still in cache: one pass over the
//! activations instead of three. [`Sequential`](crate::Sequential) takes this path when it
//! runs in [`Mode::Eval`](crate::Mode) with no graph recorded (inside
//! [`no_grad`](backprop_autograd::no_grad)); results equal the unfused layers up to
//! floating-point rounding.

use backprop_autograd::Var;
use backprop_tensor::{try_conv2d_forward_relu, Element, Tensor};

use crate::activation::Activation;
use crate::conv::Conv2d;
use crate::layers::BatchNorm;
use crate::module::Module;

/// If `layers` starts with a convolution followed by a batch norm (and perhaps a ReLU),
/// runs them on `x` folded into one convolution: the output and how many layers it used.
pub(crate) fn conv_bn<E: Element>(
    layers: &[(String, Box<dyn Module<E>>)],
    x: &Var<E>,
) -> Option<(Var<E>, usize)> {
    let conv = layers.first()?.1.as_conv2d()?;
    let bn = layers.get(1)?.1.as_any()?.downcast_ref::<BatchNorm<E>>()?;
    let relu = layers.get(2).and_then(|l| l.1.activation()) == Some(Activation::Relu);
    let (w, b) = fold(conv, bn)?;
    let y = try_conv2d_forward_relu(&x.value(), &w, Some(&b), conv.params, relu)
        .unwrap_or_else(|e| panic!("{e}"));
    Some((Var::constant(y), if relu { 3 } else { 2 }))
}

/// The folded weight `s_o·w_o` and bias `s_o·b_o + t_o`, or `None` if the batch norm does
/// not have one channel per output of the convolution.
fn fold<E: Element>(conv: &Conv2d<E>, bn: &BatchNorm<E>) -> Option<(Tensor<E>, Tensor<E>)> {
    let w = conv.weight.value();
    let o = w.shape()[0];
    let (gamma, beta) = (bn.weight.value(), bn.bias.value());
    let (mean, var) = (bn.running_mean.value(), bn.running_var.value());
    if gamma.shape() != [o] {
        return None;
    }
    let per = w.numel() / o.max(1);
    let mut wf = w.to_vec();
    let mut bf = vec![E::ZERO; o];
    for c in 0..o {
        let s = gamma.data()[c] / (var.data()[c] + E::from_f64(bn.eps())).sqrt();
        wf[c * per..(c + 1) * per].iter_mut().for_each(|v| *v *= s);
        let b0 = conv.bias.as_ref().map_or(E::ZERO, |b| b.value().data()[c]);
        bf[c] = s * (b0 - mean.data()[c]) + beta.data()[c];
    }
    Some((Tensor::from_vec(wf, w.shape()), Tensor::from_vec(bf, &[o])))
}

#[cfg(test)]
mod tests {
    use backprop_autograd::no_grad;
    use backprop_tensor::Rng;

    use crate::{Activation, BatchNorm, Conv2d, MaxPool2d, Mode, Module, Sequential};

    use super::*;

    fn net(bias: bool, rng: &mut Rng) -> Sequential<f64> {
        let conv = Conv2d::<f64>::with_groups(2, 4, (3, 3), 1, crate::Init::HeUniform, bias, rng)
            .padding(1, 1);
        let bn = BatchNorm::<f64>::for_images(4);
        // running statistics and an affine map that are not the identity
        bn.running_mean
            .set_value(Tensor::rand_normal(&[4], 0.3, 1.0, rng));
        bn.running_var
            .set_value(Tensor::rand_uniform(&[4], 0.5, 2.0, rng));
        bn.weight
            .set_value(Tensor::rand_normal(&[4], 1.0, 0.5, rng));
        bn.bias.set_value(Tensor::rand_normal(&[4], 0.0, 0.5, rng));
        Sequential::new()
            .add("conv1", conv)
            .add("bn1", bn)
            .add("relu1", Activation::Relu)
            .add("pool1", MaxPool2d::new(2))
    }

    #[test]
    fn the_folded_layers_give_what_the_layers_give_one_by_one() {
        let mut rng = Rng::seed(11);
        for bias in [false, true] {
            let net = net(bias, &mut rng);
            let x = Var::constant(Tensor::rand_normal(&[3, 2, 6, 6], 0.0, 1.0, &mut rng));
            // with a graph recorded, the layers run one by one
            let slow = net.forward(&x, Mode::Eval).value();
            let fast = no_grad(|| net.forward(&x, Mode::Eval).value());
            assert!(fast.allclose(&slow, 1e-12, 1e-12), "bias {bias}");
            // and without the ReLU, conv → batch norm alone folds as well
            let layers: Vec<_> = net.layers().take(2).map(|(n, _)| n.to_string()).collect();
            assert_eq!(layers, ["conv1", "bn1"]);
            let (y, used) = conv_bn(&net.layers[..2], &x).expect("conv then batch norm");
            assert_eq!(used, 2);
            let conv_then_bn = net.layers[1]
                .1
                .forward(&net.layers[0].1.forward(&x, Mode::Eval), Mode::Eval);
            assert!(y.value().allclose(&conv_then_bn.value(), 1e-12, 1e-12));
        }
    }

    #[test]
    fn training_mode_is_not_folded() {
        let mut rng = Rng::seed(12);
        let net = net(false, &mut rng);
        let x = Var::constant(Tensor::rand_normal(&[4, 2, 6, 6], 0.0, 1.0, &mut rng));
        // batch statistics: the pooled output has per-channel mean over the batch that the
        // running statistics would not give
        let train = no_grad(|| net.forward(&x, Mode::Train).value());
        let eval = no_grad(|| net.forward(&x, Mode::Eval).value());
        assert!(!train.allclose(&eval, 1e-6, 1e-6));
    }
}
