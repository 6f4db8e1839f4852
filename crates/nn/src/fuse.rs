//! Inference with batch norm folded into the convolution before it; in training, batch
//! norm and the ReLU after it as one op, with a max pooling after them too ([`bn_relu`]),
//! a network's first layer (convolution, batch norm, ReLU, max pooling on data that needs
//! no gradient) as one op whose backward pass never writes the convolution's output
//! gradient out ([`conv_bn_relu_pool`]), and a ReLU with the max pooling after it as one
//! op ([`relu_pool`]).
//!
//! In evaluation a batch norm is the per-channel affine map `y = s_c·x + t_c` with
//! `s_c = γ_c/√(running_var_c + ε)` and `t_c = β_c − running_mean_c·s_c`. After a
//! convolution `x ⋆ w + b` that is the convolution with weights `s_o·w_o` and bias
//! `s_o·b_o + t_o`, so conv → batch norm (→ ReLU) runs as one convolution whose ReLU is
//! applied to each image's output while it is still in cache: one pass over the
//! activations instead of three. A max pooling right after joins them: one image's
//! channels are then computed and pooled together (in two halves on two threads inside
//! `backprop_tensor::team::scope`, as `predict_outputs` runs one sample). [`Sequential`](crate::Sequential) takes this path when it
//! runs in [`Mode::Eval`](crate::Mode) with no graph recorded (inside
//! [`no_grad`](backprop_autograd::no_grad)); results equal the unfused layers up to
//! floating-point rounding.

use std::sync::Mutex;

use backprop_autograd::{Var, VarId};
use backprop_tensor::{
    conv2d_output_shape, pool2d_output_shape, runs_plane_weight_grad, try_conv2d_forward_relu,
    try_conv2d_forward_relu_maxpool, Element, Tensor,
};

use crate::activation::Activation;
use crate::conv::{Conv2d, MaxPool2d};
use crate::layers::BatchNorm;
use crate::module::{Mode, Module};

/// If `layers` starts with a convolution followed by a batch norm (and perhaps a ReLU),
/// runs them on `x` folded into one convolution: the output and how many layers it used.
pub(crate) fn conv_bn<E: Element>(
    layers: &[(String, Box<dyn Module<E>>)],
    x: &Var<E>,
) -> Option<(Var<E>, usize)> {
    let conv = layers.first()?.1.as_conv2d()?;
    let bn = layers.get(1)?.1.as_any()?.downcast_ref::<BatchNorm<E>>()?;
    let relu = layers.get(2).and_then(|l| l.1.activation()) == Some(Activation::Relu);
    let (w, b) = bn.folded.get(conv, bn)?;
    let used = if relu { 3 } else { 2 };
    let pool = layers
        .get(used)
        .and_then(|l| l.1.as_any()?.downcast_ref::<MaxPool2d>());
    let x = x.value();
    let y = match pool {
        Some(pool) => try_conv2d_forward_relu_maxpool(&x, &w, Some(&b), conv.params, relu, pool.0),
        None => try_conv2d_forward_relu(&x, &w, Some(&b), conv.params, relu),
    }
    .unwrap_or_else(|e| panic!("{e}"));
    Some((Var::constant(y), used + usize::from(pool.is_some())))
}

/// If `layers` starts with a convolution, a batch norm, a ReLU and a max pooling, and `x`
/// needs no gradient (a network's first layer, on its data), runs the four in training as
/// one op ([`BatchNorm::forward_conv_relu_max_pool`]): the output and how many layers it
/// used (4). Only where the convolution's weight gradient by output channel runs on its plane
/// kernel (`backprop_tensor::runs_plane_weight_grad`: one input channel, unit steps, as
/// wide out as in, `f32` on AVX-512F); elsewhere its plain loop would cost more than the
/// layers' own kernels, and anything the layers would refuse goes through them one by one,
/// which report it as they always have.
pub(crate) fn conv_bn_relu_pool<E: Element>(
    layers: &[(String, Box<dyn Module<E>>)],
    x: &Var<E>,
    mode: Mode,
) -> Option<(Var<E>, usize)> {
    if mode != Mode::Train || x.requires_grad() {
        return None;
    }
    let conv = layers.first()?.1.as_conv2d()?;
    let bn = layers.get(1)?.1.as_any()?.downcast_ref::<BatchNorm<E>>()?;
    if layers.get(2)?.1.activation() != Some(Activation::Relu) {
        return None;
    }
    let pool = layers.get(3)?.1.as_any()?.downcast_ref::<MaxPool2d>()?;
    let shape = x.shape();
    let out = conv2d_output_shape(&shape, &conv.weight.shape(), conv.params).ok()?;
    let fits = shape.len() == 4
        && runs_plane_weight_grad::<E>(&shape, &conv.weight.shape(), conv.params)
        && bn.takes_images()
        && out[1] == bn.weight.shape()[0]
        && pool2d_output_shape(&out, pool.0).is_ok();
    fits.then(|| (bn.forward_conv_relu_max_pool(x, conv, pool.0), 4))
}

/// If `layers` starts with a batch norm followed by a ReLU, runs the two on `x` in training
/// as one op ([`BatchNorm::forward_relu`]): the output and how many layers it used (2). A
/// max pooling right after, on images its window fits, joins them
/// ([`BatchNorm::forward_relu_max_pool`], 3 layers).
pub(crate) fn bn_relu<E: Element>(
    layers: &[(String, Box<dyn Module<E>>)],
    x: &Var<E>,
    mode: Mode,
) -> Option<(Var<E>, usize)> {
    if mode != Mode::Train || layers.get(1)?.1.activation() != Some(Activation::Relu) {
        return None;
    }
    let bn = layers.first()?.1.as_any()?.downcast_ref::<BatchNorm<E>>()?;
    let pool = layers
        .get(2)
        .and_then(|l| l.1.as_any()?.downcast_ref::<MaxPool2d>());
    let shape = x.shape();
    match pool {
        // anything the pooling would refuse goes through the layers one by one, which
        // report it as they always have
        Some(pool)
            if shape.len() == 4
                && bn.takes_images()
                && shape[1] == bn.weight.shape()[0]
                && pool2d_output_shape(&shape, pool.0).is_ok() =>
        {
            Some((bn.forward_relu_max_pool(x, pool.0), 3))
        }
        _ => Some((bn.forward_relu(x, mode), 2)),
    }
}

/// If `layers` starts with a ReLU followed by a max pooling whose window fits `x`, runs the
/// two in training as one op ([`Var::relu_max_pool2d`]): the output and how many layers it
/// used (2).
pub(crate) fn relu_pool<E: Element>(
    layers: &[(String, Box<dyn Module<E>>)],
    x: &Var<E>,
    mode: Mode,
) -> Option<(Var<E>, usize)> {
    if mode != Mode::Train || layers.first()?.1.activation() != Some(Activation::Relu) {
        return None;
    }
    let pool = layers.get(1)?.1.as_any()?.downcast_ref::<MaxPool2d>()?;
    let shape = x.shape();
    // anything the pooling would refuse goes through the layers one by one
    if shape.len() != 4 || pool2d_output_shape(&shape, pool.0).is_err() {
        return None;
    }
    Some((x.relu_max_pool2d(pool.0), 2))
}

/// The folded weight and bias a batch norm last gave the convolution before it, with the
/// identities and versions ([`Var::version`]) of the five or six variables they came from
/// (the convolution's bias, if it has one) and ε: a one-image pass then reuses them
/// instead of copying and scaling the weights again. Any write to a weight or statistic,
/// or another convolution, folds afresh.
pub(crate) struct FoldCache<E: Element>(Mutex<Option<Folded<E>>>);

/// One entry of a [`FoldCache`]: its key (the variables' ids and versions, ε's bits) and
/// the folded weight and bias.
type Folded<E> = ((Vec<(VarId, u64)>, u64), Tensor<E>, Tensor<E>);

impl<E: Element> Default for FoldCache<E> {
    fn default() -> Self {
        FoldCache(Mutex::new(None))
    }
}

impl<E: Element> FoldCache<E> {
    /// [`fold`]`(conv, bn)`, from the cache when nothing it came from has changed.
    fn get(&self, conv: &Conv2d<E>, bn: &BatchNorm<E>) -> Option<(Tensor<E>, Tensor<E>)> {
        // versions are read before the values, so a write in between makes the stored key
        // stale (a refold next time), never a stale fold under a current key
        let vars: Vec<(VarId, u64)> = [&conv.weight, &bn.weight, &bn.bias]
            .into_iter()
            .chain([&bn.running_mean, &bn.running_var])
            .chain(conv.bias.as_ref())
            .map(|v| (v.id(), v.version()))
            .collect();
        let key = (vars, bn.eps().to_bits());
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, w, b)) = cached.as_ref() {
            if *k == key {
                return Some((w.clone(), b.clone()));
            }
        }
        let (w, b) = fold(conv, bn)?;
        *cached = Some((key, w.clone(), b.clone()));
        Some((w, b))
    }
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
    use backprop_tensor::{team, Rng};

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

    /// A training-mode forward pass of `net` on `x` (fused, or the layers one by one) and
    /// the gradient of the mean square of its output: the output and each parameter's
    /// gradient.
    fn train_step(
        net: &Sequential<f64>,
        x: &Tensor<f64>,
        fused: bool,
    ) -> (Vec<f64>, Vec<Vec<f64>>) {
        let (y, g, _) = first_layer_step(net, x, fused, false);
        (y, g)
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
    fn a_max_pooling_after_joins_the_fold_for_one_image_and_for_a_batch() {
        let mut rng = Rng::seed(14);
        // 2 → 4 channels (the partner's threshold not reached) and 16 → 33 on 14×14 (split
        // over two threads, uneven halves)
        for (c, o, side) in [(2, 4, 6), (16, 33, 14)] {
            let conv = Conv2d::<f64>::new(c, o, (3, 3), &mut rng).padding(1, 1);
            let bn = BatchNorm::<f64>::for_images(o);
            bn.running_mean
                .set_value(Tensor::rand_normal(&[o], 0.3, 1.0, &mut rng));
            bn.running_var
                .set_value(Tensor::rand_uniform(&[o], 0.5, 2.0, &mut rng));
            let net = Sequential::new()
                .add("conv1", conv)
                .add("bn1", bn)
                .add("relu1", Activation::Relu)
                .add("pool1", MaxPool2d::new(2));
            for n in [1, 3] {
                let x = Var::constant(Tensor::rand_normal(&[n, c, side, side], 0.0, 1.0, &mut rng));
                let slow = net.forward(&x, Mode::Eval).value();
                let (fast, used) =
                    team::scope(|| no_grad(|| conv_bn(&net.layers, &x))).expect("fused");
                assert_eq!(used, 4);
                assert_eq!(fast.shape(), slow.shape());
                assert!(
                    fast.value().allclose(&slow, 1e-12, 1e-12),
                    "{c}→{o}, {n} images"
                );
            }
        }
    }

    #[test]
    fn the_cached_fold_follows_every_write_to_the_weights_and_statistics() {
        let mut rng = Rng::seed(15);
        let net = net(true, &mut rng);
        let x = Var::constant(Tensor::rand_normal(&[1, 2, 6, 6], 0.0, 1.0, &mut rng));
        // the fused pass (from the cache when it is current) against the layers one by one
        let check = || {
            let slow = net.forward(&x, Mode::Eval).value();
            let fast = no_grad(|| net.forward(&x, Mode::Eval).value());
            assert!(fast.allclose(&slow, 1e-12, 1e-12));
            fast
        };
        let conv = net.layers[0].1.as_conv2d().unwrap();
        let bn = net.layers[1].1.as_any().unwrap();
        let bn = bn.downcast_ref::<BatchNorm<f64>>().unwrap();
        let mut last = check();
        assert_eq!(
            check().to_vec(),
            last.to_vec(),
            "nothing written, the same fold"
        );
        let bias = conv.bias.as_ref().unwrap();
        let writes: [(&str, &dyn Fn()); 6] = [
            ("conv weight", &|| conv.weight.update(|w| w[0] += 0.5)),
            ("conv bias", &|| {
                bias.set_value(bias.value().add_scalar(0.25))
            }),
            ("gamma", &|| bn.weight.update(|g| g[1] *= 1.5)),
            ("beta", &|| bn.bias.update(|b| b[2] -= 0.5)),
            ("running mean", &|| bn.running_mean.update(|m| m[3] += 1.0)),
            ("running var", &|| bn.running_var.update(|v| v[0] *= 3.0)),
        ];
        for (what, write) in writes {
            write();
            let now = check();
            assert!(!now.allclose(&last, 1e-9, 1e-9), "{what}: the output moved");
            last = now;
        }
        // a training step's statistics (written by the layer itself) also refold
        no_grad(|| net.forward(&Var::constant(x.value().add_scalar(3.0)), Mode::Train));
        assert!(!check().allclose(&last, 1e-9, 1e-9), "running statistics");
    }

    #[test]
    fn in_training_batch_norm_relu_and_max_pool_run_fused_with_the_same_values_and_gradients() {
        let mut rng = Rng::seed(13);
        let x = Tensor::rand_normal(&[4, 2, 6, 6], 0.0, 1.0, &mut rng);
        let net = net(true, &mut rng);
        let run = |fused: bool| {
            let (y, g) = train_step(&net, &x, fused);
            (y, g, net.buffers()[0].1.value().to_vec())
        };
        let r0 = net.buffers()[0].1.value().to_vec();
        let (y1, g1, r1) = run(false);
        let (y2, g2, r2) = run(true);
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(p, q)| (p - q).abs() < 1e-12);
        assert!(close(&y1, &y2));
        for (a, b) in g1.iter().zip(&g2) {
            assert!(a.len() == b.len() && close(a, b));
        }
        // the running mean moved by the same batch mean m both times (momentum 0.1):
        // r1 = 0.9·r0 + 0.1·m and r2 = 0.9·r1 + 0.1·m, so r2 = 1.9·r1 − 0.9·r0
        let want: Vec<f64> = r1.iter().zip(&r0).map(|(a, b)| 1.9 * a - 0.9 * b).collect();
        assert!(
            close(&r2, &want) && !close(&r1, &r0),
            "{r0:?} {r1:?} {r2:?}"
        );
        let (_, used) = bn_relu(
            &net.layers[1..],
            &Var::constant(Tensor::zeros(&[1, 4, 2, 2])),
            Mode::Train,
        )
        .expect("batch norm then ReLU");
        // the max pooling after them joins
        assert_eq!(used, 3);
        // unless its window does not fit: then the pooling reports that itself
        let (_, used) = bn_relu(
            &net.layers[1..],
            &Var::constant(Tensor::zeros(&[1, 4, 1, 1])),
            Mode::Train,
        )
        .expect("batch norm then ReLU");
        assert_eq!(used, 2);
        let (_, used) = bn_relu(
            &net.layers[1..3],
            &Var::constant(Tensor::zeros(&[1, 4, 2, 2])),
            Mode::Train,
        )
        .expect("batch norm then ReLU");
        assert_eq!(used, 2);
        assert!(bn_relu(
            &net.layers[1..],
            &Var::constant(Tensor::zeros(&[1, 4, 2, 2])),
            Mode::Eval
        )
        .is_none());
    }

    #[test]
    fn in_training_relu_and_max_pool_run_fused_with_the_same_values_and_gradients() {
        let mut rng = Rng::seed(14);
        let conv =
            Conv2d::<f64>::with_groups(2, 4, (3, 3), 1, crate::Init::HeUniform, true, &mut rng);
        let net = Sequential::new()
            .add("conv1", conv)
            .add("relu1", Activation::Relu)
            .add("pool1", MaxPool2d::new(2));
        let x = Tensor::rand_normal(&[3, 2, 7, 8], 0.0, 1.0, &mut rng);
        assert_eq!(train_step(&net, &x, true), train_step(&net, &x, false));
        let h = net.layers[0]
            .1
            .forward(&Var::constant(x.clone()), Mode::Train);
        assert_eq!(
            relu_pool(&net.layers[1..], &h, Mode::Train).map(|r| r.1),
            Some(2)
        );
        // not in evaluation, not when the window does not fit
        assert!(relu_pool(&net.layers[1..], &h, Mode::Eval).is_none());
        let one = Var::constant(Tensor::zeros(&[1, 4, 1, 1]));
        assert!(relu_pool(&net.layers[1..], &one, Mode::Train).is_none());
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

    /// A first layer (one input channel) in `E`, with batch norm's affine map not the
    /// identity: conv (3×3, "same" padding) → batch norm → ReLU → 2×2 max pool.
    fn first_layer<E: Element>(bias: bool, rng: &mut Rng) -> Sequential<E> {
        let conv = Conv2d::<E>::with_groups(1, 4, (3, 3), 1, crate::Init::HeUniform, bias, rng)
            .padding(1, 1);
        let bn = BatchNorm::<E>::for_images(4);
        bn.weight
            .set_value(Tensor::rand_normal(&[4], 1.0, 0.5, rng));
        bn.bias.set_value(Tensor::rand_normal(&[4], 0.0, 0.5, rng));
        Sequential::new()
            .add("conv1", conv)
            .add("bn1", bn)
            .add("relu1", Activation::Relu)
            .add("pool1", MaxPool2d::new(2))
    }

    /// A training-mode forward pass of `net` on `x` (fused, or the layers one by one), with
    /// the input a constant (data) or a parameter (needing its gradient), and the gradient of
    /// the mean square of its output: the output, each parameter's gradient and the output's
    /// op.
    fn first_layer_step<E: Element>(
        net: &Sequential<E>,
        x: &Tensor<E>,
        fused: bool,
        x_param: bool,
    ) -> (Vec<E>, Vec<Vec<E>>, Option<&'static str>) {
        let x = if x_param {
            Var::parameter(x.clone())
        } else {
            Var::constant(x.clone())
        };
        let y = if fused {
            net.forward(&x, Mode::Train)
        } else {
            net.layers
                .iter()
                .fold(x, |h, (_, l)| l.forward(&h, Mode::Train))
        };
        let op = y.op_name();
        let grads = y.mul(&y).mean().backward();
        let g = net
            .params()
            .iter()
            .map(|(_, p)| grads.get(p).expect("a gradient").to_vec())
            .collect();
        (y.value().to_vec(), g, op)
    }

    fn first_layer_fused_matches<E: Element>(seed: u64, tol: f64) {
        let mut rng = Rng::seed(seed);
        let x = Tensor::<E>::rand_normal(&[5, 1, 28, 28], 0.0, 1.0, &mut rng);
        for bias in [false, true] {
            let net = first_layer::<E>(bias, &mut rng);
            // the running mean and variance
            let stats = || -> Vec<Vec<E>> {
                net.buffers()
                    .iter()
                    .take(2)
                    .map(|b| b.1.value().to_vec())
                    .collect()
            };
            let r0 = stats();
            let (y1, g1, op1) = first_layer_step(&net, &x, false, false);
            let r1 = stats();
            let (y2, g2, op2) = first_layer_step(&net, &x, true, false);
            let r2 = stats();
            assert_eq!(op1, Some("max_pool2d"));
            // fused where the weight gradient by channel runs on its plane kernel (`f32` on
            // AVX-512F), else batch norm, ReLU and max pooling as one op after the convolution
            let fuses = runs_plane_weight_grad::<E>(
                &x.shape(),
                &[4, 1, 3, 3],
                net.layers[0].1.as_conv2d().unwrap().params,
            );
            let want = if fuses {
                "conv2d_batch_norm_relu_max_pool"
            } else {
                "batch_norm_relu_max_pool"
            };
            assert_eq!(op2, Some(want));
            // the forward pass is the same arithmetic; the weight's gradient is summed in
            // another order
            assert_eq!(y1, y2, "bias {bias}");
            for (a, b) in g1.iter().zip(&g2) {
                let scale = a.iter().map(|v| v.to_f64().abs()).fold(0.0, f64::max);
                assert!(a.len() == b.len() && scale > 0.0);
                for (p, q) in a.iter().zip(b) {
                    assert!((p.to_f64() - q.to_f64()).abs() <= tol * scale, "{p} {q}");
                }
            }
            // the running mean and variance moved by the same batch statistic m both times
            // (momentum 0.1): r1 = 0.9·r0 + 0.1·m and r2 = 0.9·r1 + 0.1·m, so
            // r2 = 1.9·r1 − 0.9·r0
            assert_eq!(r0.len(), 2);
            for ((r2, r1), r0) in r2.iter().zip(&r1).zip(&r0) {
                for ((a, b), c) in r2.iter().zip(r1).zip(r0) {
                    let want = 1.9 * b.to_f64() - 0.9 * c.to_f64();
                    assert!((a.to_f64() - want).abs() < 1e-5 && b != c, "{a} {b} {c}");
                }
            }
            // an input that needs its gradient runs the layers as two ops, with the same
            // values
            let (y3, g3, op3) = first_layer_step(&net, &x, true, true);
            assert_eq!(op3, Some("batch_norm_relu_max_pool"));
            assert_eq!(y3, y1);
            assert_eq!(g3.len(), g1.len());
            for (a, b) in g1.iter().zip(&g3) {
                let scale = a.iter().map(|v| v.to_f64().abs()).fold(0.0, f64::max);
                for (p, q) in a.iter().zip(b) {
                    assert!((p.to_f64() - q.to_f64()).abs() <= tol * scale, "{p} {q}");
                }
            }
        }
    }

    #[test]
    fn in_training_a_first_layers_convolution_joins_its_batch_norm_relu_and_max_pool() {
        first_layer_fused_matches::<f64>(31, 1e-12);
        first_layer_fused_matches::<f32>(32, 1e-5);
        let mut rng = Rng::seed(33);
        let net = first_layer::<f32>(false, &mut rng);
        let data = Var::constant(Tensor::zeros(&[1, 1, 4, 4]));
        let pad = net.layers[0].1.as_conv2d().unwrap().params;
        if runs_plane_weight_grad::<f32>(&[1, 1, 4, 4], &[4, 1, 3, 3], pad) {
            let (_, used) = conv_bn_relu_pool(&net.layers, &data, Mode::Train).expect("fused");
            assert_eq!(used, 4);
        }
        // never in f64 (the plain loop), in evaluation, for an input that needs its
        // gradient, for two input channels, nor for a pooling window the convolution's
        // output does not fit
        let net64 = first_layer::<f64>(false, &mut rng);
        let data64 = Var::constant(Tensor::<f64>::zeros(&[1, 1, 4, 4]));
        assert!(conv_bn_relu_pool(&net64.layers, &data64, Mode::Train).is_none());
        assert!(conv_bn_relu_pool(&net.layers, &data, Mode::Eval).is_none());
        let param = Var::parameter(Tensor::zeros(&[1, 1, 4, 4]));
        assert!(conv_bn_relu_pool(&net.layers, &param, Mode::Train).is_none());
        let two_in = Sequential::<f32>::new()
            .add(
                "conv1",
                Conv2d::<f32>::with_groups(
                    2,
                    4,
                    (3, 3),
                    1,
                    crate::Init::HeUniform,
                    false,
                    &mut rng,
                )
                .padding(1, 1),
            )
            .add("bn1", BatchNorm::<f32>::for_images(4))
            .add("relu1", Activation::Relu)
            .add("pool1", MaxPool2d::new(2));
        let two = Var::constant(Tensor::zeros(&[1, 2, 4, 4]));
        assert!(conv_bn_relu_pool(&two_in.layers, &two, Mode::Train).is_none());
        let tiny = Var::constant(Tensor::zeros(&[1, 1, 1, 1]));
        assert!(conv_bn_relu_pool(&net.layers, &tiny, Mode::Train).is_none());
        assert!(conv_bn_relu_pool(&net.layers[..3], &data, Mode::Train).is_none());
    }
}
