//! Every differentiable op passes an f64 central-difference gradcheck with relative error
//! below 1e-6. Each check uses its input more than once, and drives backward through a
//! random weighting so the upstream gradient is not all ones.

use backprop_autograd::{gradcheck, GradcheckOptions, Var};
use backprop_tensor::{Pool2dParams, Rng, Tensor};

/// `Σ y ⊙ c` for a fixed random `c`: the upstream gradient of `y` is `c`, not ones.
fn drive(y: &Var<f64>) -> Var<f64> {
    let c = Tensor::rand_uniform(&y.shape(), 0.5, 1.5, &mut Rng::seed(99));
    y.mul(&Var::constant(c)).sum()
}

fn normal(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_normal(shape, 0.0, 1.0, &mut Rng::seed(seed))
}

fn positive(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, 0.5, 2.0, &mut Rng::seed(seed))
}

#[track_caller]
fn check(name: &str, f: impl Fn(&[Var<f64>]) -> Var<f64>, inputs: &[Tensor<f64>]) {
    let r = gradcheck(f, inputs, GradcheckOptions::default());
    assert!(r.passed() && r.max_rel_err() < 1e-6, "{name}:\n{r}");
}

#[test]
fn binary_ops_with_broadcasting() {
    let a = normal(&[3, 4], 1);
    let b = normal(&[4], 2);
    let col = positive(&[3, 1], 3);
    check(
        "add",
        |v| drive(&v[0].add(&v[1]).mul(&v[0])),
        &[a.clone(), b.clone()],
    );
    check(
        "sub",
        |v| drive(&v[0].sub(&v[1]).mul(&v[1])),
        &[a.clone(), b.clone()],
    );
    check(
        "mul",
        |v| drive(&v[0].mul(&v[1]).mul(&v[0])),
        &[a.clone(), col.clone()],
    );
    check(
        "div",
        |v| drive(&v[0].div(&v[1]).add(&v[1])),
        &[a.clone(), col.clone()],
    );
    check(
        "div self",
        |v| drive(&v[0].div(&v[0].add_scalar(3.0))),
        &[positive(&[5], 4)],
    );
    check(
        "maximum",
        |v| drive(&v[0].maximum(&v[1]).mul(&v[0])),
        &[a.clone(), b.clone()],
    );
    check(
        "minimum",
        |v| drive(&v[0].minimum(&v[1]).mul(&v[1])),
        &[a.clone(), b.clone()],
    );
    check(
        "operators",
        |v| drive(&(&(&v[0] * &v[1]) - &(&v[0] / &v[1].add_scalar(4.0)))),
        &[a.clone(), b.clone()],
    );
}

#[test]
fn scalar_forms() {
    let x = normal(&[2, 5], 5);
    check(
        "add_scalar",
        |v| drive(&v[0].add_scalar(0.7).mul(&v[0])),
        &[x.clone()],
    );
    check(
        "mul_scalar",
        |v| drive(&v[0].mul_scalar(-1.3).mul(&v[0])),
        &[x.clone()],
    );
    check(
        "maximum_scalar",
        |v| drive(&v[0].maximum_scalar(0.2).mul(&v[0])),
        &[x.clone()],
    );
    check(
        "minimum_scalar",
        |v| drive(&v[0].minimum_scalar(-0.1).mul(&v[0])),
        &[x.clone()],
    );
}

#[test]
fn unary_functions() {
    let x = normal(&[3, 4], 6);
    let p = positive(&[3, 4], 7);
    check("neg", |v| drive(&v[0].neg().mul(&v[0])), &[x.clone()]);
    check("exp", |v| drive(&v[0].exp().mul(&v[0])), &[x.clone()]);
    check("log", |v| drive(&v[0].log().mul(&v[0])), &[p.clone()]);
    check("sqrt", |v| drive(&v[0].sqrt().mul(&v[0])), &[p.clone()]);
    check("powf", |v| drive(&v[0].powf(2.5).mul(&v[0])), &[p.clone()]);
    check("abs", |v| drive(&v[0].abs().mul(&v[0])), &[x.clone()]);
    check("sign", |v| drive(&v[0].sign().mul(&v[0])), &[x.clone()]);
    check("relu", |v| drive(&v[0].relu().mul(&v[0])), &[x.clone()]);
    check(
        "sigmoid",
        |v| drive(&v[0].sigmoid().mul(&v[0])),
        &[x.clone()],
    );
    check("tanh", |v| drive(&v[0].tanh().mul(&v[0])), &[x.clone()]);
    check(
        "exp.mean (design guide's driver)",
        |v| v[0].mul(&v[0]).exp().mean(),
        &[x.clone()],
    );
}

#[test]
fn reductions() {
    let x = normal(&[2, 3, 4], 8);
    check("sum", |v| v[0].sum().mul(&v[0].sum()), &[x.clone()]);
    check("mean", |v| v[0].mean().mul(&v[0].sum()), &[x.clone()]);
    for ax in [0isize, 1, -1] {
        check(
            "sum_axis",
            |v| drive(&v[0].sum_axis(ax, false).exp()).add(&v[0].mean()),
            &[x.clone()],
        );
        check(
            "sum_axis keepdim",
            |v| drive(&v[0].sum_axis(ax, true).mul(&v[0])),
            &[x.clone()],
        );
        check(
            "mean_axis",
            |v| drive(&v[0].mean_axis(ax, true).mul(&v[0])),
            &[x.clone()],
        );
        check(
            "max_axis",
            |v| drive(&v[0].max_axis(ax, true).mul(&v[0])),
            &[x.clone()],
        );
        check(
            "min_axis",
            |v| drive(&v[0].min_axis(ax, false)).mul(&v[0].sum()),
            &[x.clone()],
        );
    }
    check("max", |v| v[0].max().mul(&v[0].sum()), &[x.clone()]);
    check("min", |v| v[0].min().mul(&v[0].sum()), &[x.clone()]);
}

#[test]
fn matrix_products() {
    let a = normal(&[3, 4], 9);
    let b = normal(&[4, 5], 10);
    check(
        "matmul",
        |v| drive(&v[0].matmul(&v[1]).matmul(&v[1].transpose(0, 1))),
        &[a.clone(), b.clone()],
    );
    check(
        "matmul self",
        |v| drive(&v[0].matmul(&v[0].transpose(0, 1))),
        &[a.clone()],
    );
    let ba = normal(&[2, 3, 4], 11);
    let bb = normal(&[2, 4, 2], 12);
    check(
        "batched matmul",
        |v| drive(&v[0].matmul(&v[1]).mul(&v[0].sum_axis(2, true))),
        &[ba.clone(), bb.clone()],
    );
    check(
        "batched x shared",
        |v| drive(&v[0].matmul(&v[1]).add(&v[0].sum_axis(2, true))),
        &[ba.clone(), b.clone()],
    );
    check(
        "shared x batched",
        |v| drive(&v[0].matmul(&v[1]).add(&v[0].sum_axis(1, true))),
        &[a.clone(), bb.clone()],
    );
    let w = normal(&[5, 4], 13);
    let bias = normal(&[5], 14);
    check(
        "linear",
        |v| drive(&v[0].linear(&v[1], Some(&v[2])).mul(&v[0].sum_axis(1, true))),
        &[a.clone(), w.clone(), bias.clone()],
    );
    check(
        "linear, 3-D input, no bias",
        |v| drive(&v[0].linear(&v[1], None).tanh()).add(&v[0].mean()),
        &[ba.clone(), w.clone()],
    );
    // Mostly-zero inputs (like image pixels) take the sparse-input kernels.
    let mut sx = normal(&[10, 12], 16);
    for (i, v) in sx.data_mut().iter_mut().enumerate() {
        if i % 4 != 1 {
            *v = 0.0;
        }
    }
    let sp = backprop_tensor::ops::sparse::MAX_DENSITY_WEIGHT_GRAD;
    assert!(backprop_tensor::ops::sparse::worth_it(sx.data(), 10, sp));
    let sw = normal(&[5, 12], 17);
    check(
        "linear, sparse input",
        |v| drive(&v[0].linear(&v[1], Some(&v[2])).tanh()),
        &[sx, sw, bias.clone()],
    );
}

#[test]
fn movement_and_indexing() {
    let x = normal(&[2, 3, 4], 15);
    check(
        "reshape",
        |v| drive(&v[0].reshape(&[6, 4]).mul(&v[0].reshape(&[6, 4]).exp())),
        &[x.clone()],
    );
    check(
        "permute",
        |v| drive(&v[0].permute(&[2, 0, 1]).mul(&v[0].permute(&[2, 0, 1]))),
        &[x.clone()],
    );
    check(
        "transpose",
        |v| drive(&v[0].transpose(0, 2).tanh()).mul(&v[0].sum()),
        &[x.clone()],
    );
    check(
        "narrow",
        |v| drive(&v[0].narrow(1, 1, 2).mul(&v[0].narrow(1, 0, 2))),
        &[x.clone()],
    );
    check(
        "concat",
        |v| drive(&Var::concat(&[&v[0], &v[0].exp(), &v[1]], 1)),
        &[x.clone(), normal(&[2, 1, 4], 16)],
    );
    check(
        "stack",
        |v| drive(&Var::stack(&[&v[0], &v[0].tanh()], 1)),
        &[x.clone()],
    );
    check(
        "index_select repeats",
        |v| {
            drive(
                &v[0]
                    .index_select(1, &[2, 0, 2, 2])
                    .mul(&v[0].index_select(1, &[0, 1, 1, 2])),
            )
        },
        &[x.clone()],
    );
    let m = normal(&[4, 3], 17);
    check(
        "gather",
        |v| {
            drive(
                &v[0]
                    .gather(1, &[2, 0, 1, 2])
                    .mul(&v[0].gather(1, &[2, 2, 0, 0])),
            )
        },
        &[m.clone()],
    );
}

#[test]
fn softmax_family_and_where() {
    let x = normal(&[3, 5], 18);
    for ax in [0isize, 1] {
        check(
            "softmax",
            |v| drive(&v[0].softmax(ax).mul(&v[0])),
            &[x.clone()],
        );
        check(
            "log_softmax",
            |v| drive(&v[0].log_softmax(ax).mul(&v[0])),
            &[x.clone()],
        );
    }
    let cond = normal(&[3, 5], 19).gt_scalar(0.0);
    let b = normal(&[5], 20);
    check(
        "where",
        |v| drive(&Var::where_(&cond, &v[0], &v[1]).mul(&v[0])),
        &[x.clone(), b.clone()],
    );
}

#[test]
fn a_whole_mlp_loss_and_every_parameter() {
    // 5-4-3 MLP with tanh and softmax cross-entropy on 6 samples.
    let x = normal(&[6, 5], 21);
    let labels = [0usize, 2, 1, 1, 0, 2];
    let params = [
        normal(&[4, 5], 22),
        normal(&[4], 23),
        normal(&[3, 4], 24),
        normal(&[3], 25),
    ];
    check(
        "mlp",
        |v| {
            let xv = Var::constant(x.clone());
            let h = xv.linear(&v[0], Some(&v[1])).tanh();
            let logits = h.linear(&v[2], Some(&v[3]));
            logits.log_softmax(1).gather(1, &labels).mean().neg()
        },
        &params,
    );
}

#[test]
fn convolution_and_pooling() {
    use backprop_tensor::{Conv2dParams, Pool2dParams};
    // stride 2, padding 1, dilation 2, a non-square kernel, several channels in and out
    let p = Conv2dParams {
        stride: (2, 2),
        padding: (1, 1),
        dilation: (2, 2),
        groups: 1,
    };
    let x = normal(&[2, 3, 9, 8], 30);
    let w = normal(&[4, 3, 3, 2], 31);
    let b = normal(&[4], 32);
    check(
        "conv2d",
        |v| drive(&v[0].conv2d(&v[1], Some(&v[2]), p).tanh()).add(&v[0].mean()),
        &[x.clone(), w.clone(), b.clone()],
    );
    // groups, no bias
    let pg = Conv2dParams {
        stride: (1, 2),
        padding: (2, 0),
        dilation: (1, 1),
        groups: 2,
    };
    check(
        "conv2d groups",
        |v| drive(&v[0].conv2d(&v[1], None, pg)).mul(&v[1].sum()),
        &[normal(&[2, 4, 6, 7], 33), normal(&[6, 2, 3, 3], 34)],
    );
    // padding wider than the single output column, dilated: most kernel taps read padding
    let pw = Conv2dParams {
        stride: (1, 1),
        padding: (2, 2),
        dilation: (2, 2),
        groups: 1,
    };
    check(
        "conv2d wide padding",
        |v| drive(&v[0].conv2d(&v[1], None, pw)),
        &[normal(&[2, 3, 3, 3], 36), normal(&[2, 3, 4, 4], 37)],
    );
    let xp = normal(&[2, 3, 7, 6], 35);
    check(
        "max_pool2d",
        |v| {
            drive(
                &v[0]
                    .max_pool2d(Pool2dParams::square(2))
                    .mul(&v[0].max_pool2d(Pool2dParams::square(2))),
            )
        },
        &[xp.clone()],
    );
    let pp = Pool2dParams {
        kernel: (3, 2),
        stride: (2, 1),
        padding: (1, 1),
    };
    check(
        "max_pool2d padded",
        |v| drive(&v[0].max_pool2d(pp)).add(&v[0].mean()),
        &[xp.clone()],
    );
    for p in [Pool2dParams::square(2), pp] {
        check(
            "relu_max_pool2d",
            |v| drive(&v[0].relu_max_pool2d(p)).add(&v[0].mean()),
            &[xp.clone()],
        );
    }
    check(
        "avg_pool2d",
        |v| drive(&v[0].avg_pool2d(pp).exp()).add(&v[0].mean()),
        &[xp.clone()],
    );
}

#[test]
fn fused_batch_norm_and_channel_affine() {
    let x4 = normal(&[3, 2, 4, 3], 50);
    let x2 = normal(&[5, 3], 51);
    for x in [x4, x2] {
        let c = x.shape()[1];
        check(
            "batch_norm",
            |v| drive(&v[0].batch_norm(&v[1], &v[2], 1e-5).0.mul(&v[0])),
            &[x.clone(), normal(&[c], 52), normal(&[c], 53)],
        );
        // about half the outputs are clamped; none lies within the step of the kink
        check(
            "batch_norm_relu",
            |v| drive(&v[0].batch_norm_relu(&v[1], &v[2], 1e-5).0.mul(&v[0])),
            &[x.clone(), normal(&[c], 56), normal(&[c], 57)],
        );
        if x.shape().len() == 4 {
            // windows that tile the plane, and overlapping padded ones
            let padded = Pool2dParams {
                kernel: (3, 3),
                stride: (2, 2),
                padding: (1, 1),
            };
            for p in [Pool2dParams::square(2), padded] {
                check(
                    "batch_norm_relu_max_pool",
                    |v| {
                        let (y, _, _) = v[0].batch_norm_relu_max_pool(&v[1], &v[2], 1e-5, p);
                        drive(&y.mul(&y)).add(&v[0].mean())
                    },
                    &[x.clone(), normal(&[c], 58), normal(&[c], 59)],
                );
            }
        }
        check(
            "channel_affine",
            |v| drive(&v[0].channel_affine(&v[1], &v[2]).mul(&v[0])),
            &[x.clone(), normal(&[c], 54), normal(&[c], 55)],
        );
    }
}

#[test]
fn a_frozen_first_layer_weight_takes_the_two_ops_and_gets_no_gradient() {
    use backprop_tensor::Conv2dParams;
    let cp = Conv2dParams {
        padding: (1, 1),
        ..Default::default()
    };
    let p = Pool2dParams::square(2);
    let x = Var::constant(normal(&[3, 1, 6, 6], 70));
    let (g, b) = (
        Var::parameter(normal(&[2], 71)),
        Var::parameter(normal(&[2], 72)),
    );
    let w = normal(&[2, 1, 3, 3], 73);
    let (trained, frozen) = (Var::parameter(w.clone()), Var::constant(w));
    let (y1, m1, v1) = x.conv2d_batch_norm_relu_max_pool(&trained, None, &g, &b, 1e-5, (cp, p));
    let (y2, m2, v2) = x.conv2d_batch_norm_relu_max_pool(&frozen, None, &g, &b, 1e-5, (cp, p));
    assert_eq!(y1.op_name(), Some("conv2d_batch_norm_relu_max_pool"));
    // the two ops: batch norm, ReLU and max pooling after the convolution
    assert_eq!(y2.op_name(), Some("batch_norm_relu_max_pool"));
    assert_eq!(y1.value().to_vec(), y2.value().to_vec());
    assert_eq!((m1.to_vec(), v1.to_vec()), (m2.to_vec(), v2.to_vec()));
    let (g1, g2) = (y1.mul(&y1).sum().backward(), y2.mul(&y2).sum().backward());
    assert!(g1.get(&trained).is_some() && g2.get(&frozen).is_none());
    for v in [&g, &b] {
        assert_eq!(g1.get(v).unwrap().to_vec(), g2.get(v).unwrap().to_vec());
    }
}

#[test]
fn the_first_layers_fused_convolution_batch_norm_relu_and_max_pool() {
    use backprop_tensor::Conv2dParams;
    // the input is data (needs no gradient): the fused backward pass; one input channel on
    // a "same" padding, and two without padding, with and without a bias
    let same = Conv2dParams {
        padding: (1, 1),
        ..Default::default()
    };
    for (x_shape, w_shape, cp) in [
        ([3, 1, 6, 6], [3, 1, 3, 3], same),
        ([2, 2, 7, 6], [2, 2, 2, 3], Conv2dParams::default()),
    ] {
        let x = Var::constant(normal(&x_shape, 60));
        let c = w_shape[0];
        let p = Pool2dParams::square(2);
        check(
            "conv2d_batch_norm_relu_max_pool",
            |v| {
                let (y, _, _) =
                    x.conv2d_batch_norm_relu_max_pool(&v[0], None, &v[1], &v[2], 1e-5, (cp, p));
                drive(&y.mul(&y))
            },
            &[normal(&w_shape, 61), normal(&[c], 62), normal(&[c], 63)],
        );
        check(
            "conv2d_batch_norm_relu_max_pool with a bias",
            |v| {
                let (y, _, _) = x.conv2d_batch_norm_relu_max_pool(
                    &v[0],
                    Some(&v[3]),
                    &v[1],
                    &v[2],
                    1e-5,
                    (cp, p),
                );
                drive(&y.mul(&y))
            },
            &[
                normal(&w_shape, 64),
                normal(&[c], 65),
                normal(&[c], 66),
                normal(&[c], 67),
            ],
        );
    }
}
