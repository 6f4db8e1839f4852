//! f64 gradcheck of every layer (parameters included, train and eval modes where they
//! differ), every activation (away from its documented kinks) and every loss.

use backprop_autograd::{gradcheck, gradcheck_vars, GradcheckOptions, Var};
use backprop_nn::activation as act;
use backprop_nn::loss::{self, Reduction};
use backprop_nn::{
    Activation, BatchNorm1d, Dropout, Flatten, LayerNorm, Linear, Maxout, Mode, Module, PRelu,
    Residual, Sequential,
};
use backprop_tensor::{Rng, Tensor};

/// Σ y ⊙ c with a fixed random c, so the upstream gradient is not all ones.
fn drive(y: &Var<f64>) -> Var<f64> {
    let c = Tensor::rand_uniform(&y.shape(), 0.5, 1.5, &mut Rng::seed(77));
    y.mul(&Var::constant(c)).sum()
}

fn normal(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_normal(shape, 0.0, 1.0, &mut Rng::seed(seed))
}

/// Checks a module's gradient with respect to its input and all its parameters, in `mode`.
/// The input is used twice (through the layer and through a skip term).
#[track_caller]
fn check_module(
    name: &str,
    make: impl Fn() -> Box<dyn Module<f64>>,
    input_shape: &[usize],
    mode: Mode,
) {
    let m = make();
    let x = Var::parameter(normal(input_shape, 5));
    let mut vars = vec![x.clone()];
    vars.extend(m.params().into_iter().map(|(_, p)| p));
    let r = gradcheck_vars(
        || {
            let y = m.forward(&x, mode);
            drive(&y).add(&x.mul(&x).mean())
        },
        &vars,
        GradcheckOptions::default(),
    );
    assert!(
        r.passed() && r.max_rel_err() < 1e-6,
        "{name} ({mode:?}):\n{r}"
    );
}

#[test]
fn every_layer_in_both_modes() {
    for mode in [Mode::Train, Mode::Eval] {
        check_module(
            "linear",
            || Box::new(Linear::<f64>::new(4, 3, &mut Rng::seed(1))),
            &[5, 4],
            mode,
        );
        check_module(
            "linear, no bias",
            || {
                Box::new(Linear::<f64>::with_init(
                    4,
                    3,
                    backprop_nn::Init::XavierNormal,
                    false,
                    &mut Rng::seed(1),
                ))
            },
            &[5, 4],
            mode,
        );
        // a fresh dropout with a fixed seed per evaluation, so every evaluation sees one mask
        let x = Var::parameter(normal(&[6, 5], 3));
        let r = gradcheck_vars(
            || drive(&Module::<f64>::forward(&Dropout::new(0.4, 11), &x, mode).mul(&x)),
            &[x.clone()],
            GradcheckOptions::default(),
        );
        assert!(r.passed(), "dropout ({mode:?}):\n{r}");
        check_module(
            "layernorm",
            || Box::new(scrambled(LayerNorm::<f64>::new(4))),
            &[3, 4],
            mode,
        );
        check_module(
            "batchnorm1d",
            || Box::new(batchnorm_with_stats()),
            &[6, 3],
            mode,
        );
        check_module(
            "maxout",
            || Box::new(Maxout::<f64>::new(4, 3, 3, &mut Rng::seed(2))),
            &[5, 4],
            mode,
        );
        check_module("flatten", || Box::new(Flatten), &[2, 3, 2], mode);
        check_module(
            "prelu shared",
            || Box::new(PRelu::<f64>::shared(0.25)),
            &[4, 3],
            mode,
        );
        check_module(
            "prelu per channel",
            || Box::new(PRelu::<f64>::per_channel(3, 0.1)),
            &[4, 3, 2],
            mode,
        );
        check_module(
            "residual",
            || {
                let mut rng = Rng::seed(3);
                Box::new(Residual::new(
                    Sequential::new()
                        .add("mm1", Linear::<f64>::new(4, 4, &mut rng))
                        .add("s1", Activation::Sigmoid)
                        .add("mm2", Linear::new(4, 4, &mut rng))
                        .add("s2", Activation::Sigmoid),
                ))
            },
            &[3, 4],
            mode,
        );
    }
}

/// A LayerNorm whose γ and β are not 1 and 0, so their gradients are exercised generally.
fn scrambled(ln: LayerNorm<f64>) -> LayerNorm<f64> {
    ln.weight.set_value(normal(&[4], 8));
    ln.bias.set_value(normal(&[4], 9));
    ln
}

/// A BatchNorm1d with non-trivial γ, β and running statistics.
fn batchnorm_with_stats() -> BatchNorm1d<f64> {
    let bn = BatchNorm1d::<f64>::new(3);
    bn.weight.set_value(normal(&[3], 10));
    bn.bias.set_value(normal(&[3], 11));
    bn.running_mean.set_value(normal(&[3], 12));
    bn.running_var
        .set_value(Tensor::rand_uniform(&[3], 0.5, 2.0, &mut Rng::seed(13)));
    bn
}

#[test]
fn every_activation_away_from_kinks() {
    // every activation in the one list (a new one is checked without touching this test),
    // and the parametrised ones at a non-default parameter too
    let acts = Activation::ALL
        .iter()
        .copied()
        .chain([Activation::LeakyRelu(0.3), Activation::Elu(1.3)]);
    for a in acts {
        check_module(&format!("{a:?}"), move || Box::new(a), &[4, 5], Mode::Train);
    }
}

#[test]
fn every_loss() {
    let opts = GradcheckOptions::default();
    let pred = normal(&[4, 3], 20);
    let target = normal(&[4, 3], 21);
    let probs = Tensor::rand_uniform(&[4, 3], 0.05, 0.95, &mut Rng::seed(22));
    let bits = Tensor::rand_uniform(&[4, 3], 0.0, 1.0, &mut Rng::seed(23)).gt_scalar(0.5);
    let pm1 = bits.mul_scalar(2.0).add_scalar(-1.0);
    let labels = [2usize, 0, 1, 2];
    let q = normal(&[4, 3], 24).softmax(1);
    for red in [Reduction::Mean, Reduction::Sum] {
        let cases: Vec<(&str, Box<dyn Fn(&[Var<f64>]) -> Var<f64>>, Tensor<f64>)> = vec![
            (
                "half_squared_error",
                Box::new(|v| loss::half_squared_error(&v[0].tanh(), &target, red).mul(&v[0].sum())),
                pred.clone(),
            ),
            (
                "mse",
                Box::new(|v| loss::mse(&v[0], &target).mul(&v[0].sum())),
                pred.clone(),
            ),
            (
                "absolute_error",
                Box::new(|v| loss::absolute_error(&v[0].mul(&v[0]), &target, red)),
                pred.clone(),
            ),
            (
                "hinge",
                Box::new(|v| loss::hinge(&v[0].mul_scalar(0.7), &pm1, red).mul(&v[0].mean())),
                pred.clone(),
            ),
            (
                "multiclass_hinge",
                Box::new(|v| loss::multiclass_hinge(&v[0].mul(&v[0]), &labels, 1.0, red)),
                pred.clone(),
            ),
            (
                "bce_with_logits",
                Box::new(|v| loss::bce_with_logits(&v[0], &bits, red).mul(&v[0].sum())),
                pred.clone(),
            ),
            (
                "binary_cross_entropy",
                Box::new(|v| loss::binary_cross_entropy(&v[0], &bits, red).mul(&v[0].sum())),
                probs.clone(),
            ),
            (
                "cross_entropy",
                Box::new(|v| loss::cross_entropy(&v[0].mul(&v[0]), &labels, red).mul(&v[0].sum())),
                pred.clone(),
            ),
            (
                "cross_entropy_probs",
                Box::new(|v| loss::cross_entropy_probs(&v[0], &q, red).mul(&v[0].sum())),
                pred.clone(),
            ),
            (
                "nll_loss",
                Box::new(|v| loss::nll_loss(&v[0].log_softmax(1), &labels, red).mul(&v[0].sum())),
                pred.clone(),
            ),
        ];
        for (name, f, x) in cases {
            let r = gradcheck(f, &[x], opts);
            assert!(
                r.passed() && r.max_rel_err() < 1e-6,
                "{name} ({red:?}):\n{r}"
            );
        }
    }
}

#[test]
fn activation_functions_match_their_formulas() {
    let xs = [-2.0, -0.5, 0.0, 0.5, 2.0];
    let x = Var::constant(Tensor::<f64>::from_vec(xs.to_vec(), &[5]));
    let sig = |t: f64| 1.0 / (1.0 + (-t).exp());
    let cases: Vec<(&str, Var<f64>, Box<dyn Fn(f64) -> f64>)> = vec![
        (
            "step",
            act::step(&x),
            Box::new(|t| {
                if t > 0.0 {
                    1.0
                } else if t < 0.0 {
                    0.0
                } else {
                    0.5
                }
            }),
        ),
        (
            "sign",
            act::sign(&x),
            Box::new(|t: f64| if t == 0.0 { 0.0 } else { t.signum() }),
        ),
        ("sigmoid", act::sigmoid(&x), Box::new(sig)),
        ("tanh", act::tanh(&x), Box::new(f64::tanh)),
        ("relu", act::relu(&x), Box::new(|t: f64| t.max(0.0))),
        (
            "leaky",
            act::leaky_relu(&x, 0.1),
            Box::new(|t| if t > 0.0 { t } else { 0.1 * t }),
        ),
        (
            "elu",
            act::elu(&x, 1.0),
            Box::new(|t: f64| if t > 0.0 { t } else { t.exp() - 1.0 }),
        ),
        ("silu", act::silu(&x), Box::new(move |t| t * sig(t))),
        (
            "gelu",
            act::gelu(&x),
            Box::new(|t: f64| {
                0.5 * t
                    * (1.0
                        + ((2.0 / std::f64::consts::PI).sqrt() * (t + 0.044715 * t.powi(3))).tanh())
            }),
        ),
    ];
    for (name, y, f) in cases {
        for (i, &t) in xs.iter().enumerate() {
            assert!((y.value().data()[i] - f(t)).abs() < 1e-12, "{name}({t})");
        }
    }
    let p = act::softmax(&Var::constant(Tensor::<f64>::from_vec(
        vec![1.0, 2.0],
        &[1, 2],
    )))
    .value();
    assert!((p.data()[1] - sig(1.0)).abs() < 1e-12);
}

#[test]
fn kinks_of_activations_have_their_documented_gradients() {
    let x = Var::parameter(Tensor::<f64>::from_vec(vec![0.0, 0.0], &[2]));
    let g = act::leaky_relu(&x, 0.1).sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![0.1, 0.1], "leaky'(0) = α");
    let g = act::step(&x).sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![0.0, 0.0], "step' = 0");
    let g = act::relu(&x).sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![0.0, 0.0], "relu'(0) = 0");
}

#[test]
fn convolutional_layers_in_both_modes() {
    use backprop_nn::{AvgPool2d, BatchNorm2d, Conv2d, GlobalAvgPool2d, MaxPool2d, Reshape};
    use backprop_tensor::Pool2dParams;
    for mode in [Mode::Train, Mode::Eval] {
        // stride 2, padding 1, dilation 2, a non-square kernel, several channels in and out
        check_module(
            "conv2d",
            || {
                Box::new(
                    Conv2d::<f64>::new(3, 4, (3, 2), &mut Rng::seed(1))
                        .stride(2, 2)
                        .padding(1, 1)
                        .dilation(2, 2),
                )
            },
            &[2, 3, 9, 8],
            mode,
        );
        check_module(
            "conv2d groups",
            || {
                Box::new(
                    Conv2d::<f64>::with_groups(
                        4,
                        6,
                        (3, 3),
                        2,
                        backprop_nn::Init::HeNormal,
                        true,
                        &mut Rng::seed(2),
                    )
                    .padding(1, 1),
                )
            },
            &[2, 4, 5, 5],
            mode,
        );
        check_module(
            "maxpool2d",
            || Box::new(MaxPool2d::new(2)),
            &[2, 3, 6, 7],
            mode,
        );
        check_module(
            "maxpool2d padded",
            || {
                Box::new(MaxPool2d(Pool2dParams {
                    kernel: (3, 3),
                    stride: (2, 2),
                    padding: (1, 1),
                }))
            },
            &[2, 2, 7, 6],
            mode,
        );
        check_module(
            "avgpool2d",
            || {
                Box::new(AvgPool2d(Pool2dParams {
                    kernel: (2, 3),
                    stride: (1, 2),
                    padding: (1, 1),
                }))
            },
            &[2, 2, 5, 6],
            mode,
        );
        check_module(
            "global avg pool",
            || Box::new(GlobalAvgPool2d),
            &[3, 4, 3, 5],
            mode,
        );
        check_module(
            "reshape",
            || Box::new(Reshape(vec![2, 3, 2])),
            &[2, 12],
            mode,
        );
        check_module(
            "batchnorm2d",
            || {
                let bn = BatchNorm2d::<f64>::new(3);
                bn.weight.set_value(normal(&[3], 40));
                bn.bias.set_value(normal(&[3], 41));
                bn.running_mean.set_value(normal(&[3], 42));
                bn.running_var
                    .set_value(Tensor::rand_uniform(&[3], 0.5, 2.0, &mut Rng::seed(43)));
                Box::new(bn)
            },
            &[4, 3, 3, 2],
            mode,
        );
    }
}

/// softplus′(x) = σ(x), also at 0 where the stable form max(x, 0) + ln(1 + e^{−|x|}) has
/// kinks that cancel, and for large |x| where the naive ln(1 + eˣ) overflows.
#[test]
fn softplus_gradient_is_the_sigmoid() {
    use backprop_autograd::Var;
    let xs = vec![-40.0, -3.0, -0.5, 0.0, 0.5, 3.0, 800.0];
    let x = Var::parameter(Tensor::<f64>::from_vec(xs.clone(), &[7]));
    let y = backprop_nn::activation::softplus(&x);
    let g = y.sum().backward();
    let g = g.get(&x).unwrap();
    for (xi, gi) in xs.iter().zip(g.data()) {
        let s = 1.0 / (1.0 + (-xi).exp());
        assert!((gi - s).abs() < 1e-15, "softplus'({xi}) = {gi}, σ = {s}");
    }
    assert_eq!(y.value().data()[6], 800.0);
}
