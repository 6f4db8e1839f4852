//! Each optimizer's first three steps on the fixed quadratic L(θ) = ½·Σθ² (so ∂L/∂θ = θ),
//! from θ₀ = (1, −2) with η = 0.1, against values worked by hand from its update rule.

use backprop_autograd::{Grads, Var};
use backprop_optim::{Adagrad, Adam, AdamW, Optimizer, Regularization, RmsProp, Sgd};
use backprop_tensor::Tensor;

fn quadratic_grads(theta: &Var<f64>) -> Grads<f64> {
    theta.mul(theta).mul_scalar(0.5).sum().backward()
}

fn theta0() -> Var<f64> {
    Var::parameter(Tensor::from_vec(vec![1.0, -2.0], &[2]))
}

#[track_caller]
fn three_steps(mut opt: impl Optimizer<f64>, theta: &Var<f64>, want: [[f64; 2]; 3]) {
    for (k, w) in want.iter().enumerate() {
        opt.step(&quadratic_grads(theta));
        let got = theta.value().to_vec();
        assert!(
            (got[0] - w[0]).abs() < 1e-9 && (got[1] - w[1]).abs() < 1e-9,
            "step {}: got {got:?}, want {w:?}",
            k + 1
        );
    }
    assert_eq!(opt.steps(), 3);
}

fn params(theta: &Var<f64>) -> Vec<(String, Var<f64>)> {
    vec![("theta".into(), theta.clone())]
}

#[test]
fn sgd() {
    // θ ← θ − ηθ = 0.9θ: 1 → 0.9 → 0.81 → 0.729 (and −2 → −1.8 → −1.62 → −1.458)
    let t = theta0();
    three_steps(
        Sgd::new(params(&t), 0.1),
        &t,
        [[0.9, -1.8], [0.81, -1.62], [0.729, -1.458]],
    );
}

#[test]
fn momentum() {
    // v ← 0.9v + g, θ ← θ − 0.1v, for θ₀ = 1:
    // v₁ = 1,                θ₁ = 1 − 0.1 = 0.9
    // v₂ = 0.9 + 0.9 = 1.8,  θ₂ = 0.9 − 0.18 = 0.72
    // v₃ = 1.62 + 0.72 = 2.34, θ₃ = 0.72 − 0.234 = 0.486   (θ₀ = −2 scales by −2: the rule is linear)
    let t = theta0();
    three_steps(
        Sgd::new(params(&t), 0.1).momentum(0.9),
        &t,
        [[0.9, -1.8], [0.72, -1.44], [0.486, -0.972]],
    );
}

#[test]
fn nesterov() {
    // v ← 0.9v + g, θ ← θ − 0.1(g + 0.9v), for θ₀ = 1:
    // g = 1:      v₁ = 1,               θ₁ = 1 − 0.1(1 + 0.9) = 0.81
    // g = 0.81:   v₂ = 0.9 + 0.81 = 1.71,  θ₂ = 0.81 − 0.1(0.81 + 1.539) = 0.5751
    // g = 0.5751: v₃ = 1.539 + 0.5751 = 2.1141, θ₃ = 0.5751 − 0.1(0.5751 + 1.90269) = 0.327321
    let t = theta0();
    three_steps(
        Sgd::new(params(&t), 0.1).momentum(0.9).nesterov(true),
        &t,
        [[0.81, -1.62], [0.5751, -1.1502], [0.327321, -0.654642]],
    );
}

#[test]
fn adagrad() {
    // G ← G + g², θ ← θ − 0.1·g/(√G + 1e-10), for θ₀ = 1:
    // G₁ = 1,                 θ₁ = 1 − 0.1·1/1 = 0.9
    // G₂ = 1 + 0.81 = 1.81,   θ₂ = 0.9 − 0.09/√1.81 = 0.833103526852
    // G₃ = 1.81 + 0.694061… = 2.504061…, θ₃ = θ₂ − 0.1·θ₂/√G₃ = 0.780456181366
    // for θ₀ = −2: G₁ = 4, θ₁ = −2 + 0.1·2/2 = −1.9; G₂ = 7.61, θ₂ = −1.831125053816; θ₃ = −1.775821515018
    let t = theta0();
    three_steps(
        Adagrad::new(params(&t), 0.1),
        &t,
        [
            [0.9, -1.9],
            [0.833103526852, -1.831125053816],
            [0.780456181366, -1.775821515018],
        ],
    );
}

#[test]
fn rmsprop() {
    // s ← 0.9s + 0.1g², θ ← θ − 0.1·g/(√s + 1e-8), for θ₀ = 1:
    // s₁ = 0.1,                       θ₁ = 1 − 0.1/√0.1 = 1 − 0.316227766 = 0.683772243983
    // s₂ = 0.09 + 0.1·0.467544… = 0.136754…, θ₂ = θ₁ − 0.1·θ₁/√s₂ = 0.498870620117
    // s₃ = 0.9·s₂ + 0.1·θ₂²,          θ₃ = θ₂ − 0.1·θ₂/√s₃ = 0.369180567428
    // for θ₀ = −2 the first step is again η/√0.1 in size (scale-free): −1.683772238983, …
    let t = theta0();
    three_steps(
        RmsProp::new(params(&t), 0.1),
        &t,
        [
            [0.683772243983, -1.683772238983],
            [0.498870620117, -1.473875320766],
            [0.369180567428, -1.308717875633],
        ],
    );
}

#[test]
fn adam() {
    // m ← 0.9m + 0.1g, v ← 0.999v + 0.001g², m̂ = m/(1−0.9ᵗ), v̂ = v/(1−0.999ᵗ),
    // θ ← θ − 0.1·m̂/(√v̂ + 1e-8), for θ₀ = 1:
    // t=1: m = 0.1, v = 0.001, m̂ = 1, v̂ = 1, θ₁ = 1 − 0.1·1/(1 + 1e-8) = 0.900000001
    // t=2: g = 0.9, m = 0.18, v = 0.001809, m̂ = 0.18/0.19 = 0.947368…, v̂ = 0.001809/0.001999
    //      = 0.904952…, θ₂ = 0.9 − 0.1·0.947368/0.951290 = 0.800412229712
    // t=3: likewise, θ₃ = 0.701586274504
    let t = theta0();
    three_steps(
        Adam::new(params(&t), 0.1),
        &t,
        [
            [0.900000001, -1.9000000005],
            [0.800412229712, -1.800166486621],
            [0.701586274504, -1.700623392812],
        ],
    );
}

#[test]
fn adamw() {
    // θ ← θ − 0.1·0.1·θ (decoupled decay, λ = 0.1), then the Adam step, for θ₀ = 1:
    // t=1: θ = 1 − 0.01 = 0.99, then − 0.1·1/(1 + 1e-8): θ₁ = 0.890000001
    // t=2: θ = 0.89·0.99 = 0.8811…, m̂ and v̂ from g = 0.89: θ₂ = 0.781571856954
    // t=3: θ₃ = 0.675101223189
    let t = theta0();
    three_steps(
        AdamW::new(params(&t), 0.1, 0.1).regularization(Regularization {
            exclude_bias: false,
            ..Default::default()
        }),
        &t,
        [
            [0.890000001, -1.8800000005],
            [0.781571856954, -1.761408951089],
            [0.675101223189, -1.644368684322],
        ],
    );
}

#[test]
fn l2_sgd_step_is_weight_decay() {
    // θ ← (1 − ηλ)θ − η·∂L/∂θ, with L = Σ c⊙θ (gradient c)
    let (eta, lambda) = (0.1, 0.5);
    let theta = Var::parameter(Tensor::<f64>::from_vec(vec![1.0, -2.0, 0.0], &[3]));
    let c = Tensor::from_vec(vec![0.3, 0.7, -1.1], &[3]);
    let want: Vec<f64> = theta
        .value()
        .data()
        .iter()
        .zip(c.data())
        .map(|(t, g)| (1.0 - eta * lambda) * t - eta * g)
        .collect();
    let reg = Regularization {
        l2: lambda,
        ..Default::default()
    };
    let mut opt = Sgd::new(vec![("w".into(), theta.clone())], eta).regularization(reg);
    opt.step(&theta.mul(&Var::constant(c)).sum().backward());
    assert!(theta
        .value()
        .allclose(&Tensor::from_vec(want, &[3]), 1e-14, 1e-15));
}

#[test]
fn l1_sgd_step_subtracts_the_sign() {
    // θ ← θ − ηλ·sgn(θ) − η·∂L/∂θ, sgn(0) = 0
    let (eta, lambda) = (0.1, 0.5);
    let theta = Var::parameter(Tensor::<f64>::from_vec(vec![1.0, -2.0, 0.0], &[3]));
    let c = Tensor::from_vec(vec![0.3, 0.7, -1.1], &[3]);
    let want = [1.0 - 0.05 - 0.03, -2.0 + 0.05 - 0.07, 0.0 - 0.0 + 0.11];
    let reg = Regularization {
        l1: lambda,
        ..Default::default()
    };
    let mut opt = Sgd::new(vec![("w".into(), theta.clone())], eta).regularization(reg);
    opt.step(&theta.mul(&Var::constant(c)).sum().backward());
    assert!(theta
        .value()
        .allclose(&Tensor::from_vec(want.to_vec(), &[3]), 1e-14, 1e-15));
}

#[test]
fn biases_can_be_excluded_from_penalties() {
    let w = Var::parameter(Tensor::<f64>::from_vec(vec![1.0], &[1]));
    let b = Var::parameter(Tensor::<f64>::from_vec(vec![1.0], &[1]));
    let ps = vec![
        ("fc.weight".to_string(), w.clone()),
        ("fc.bias".to_string(), b.clone()),
    ];
    let mut opt = Sgd::new(ps.clone(), 0.1).regularization(Regularization {
        l2: 1.0,
        l1: 0.0,
        exclude_bias: true,
    });
    opt.step(&w.add(&b).mul_scalar(0.0).sum().backward());
    assert_eq!((w.item(), b.item()), (0.9, 1.0));
    let mut opt = Sgd::new(ps, 0.1).regularization(Regularization {
        l2: 1.0,
        l1: 0.0,
        exclude_bias: false,
    });
    opt.step(&w.add(&b).mul_scalar(0.0).sum().backward());
    assert_eq!(b.item(), 0.9);
}

#[test]
fn state_round_trip_continues_exactly() {
    // 3 steps, save, 2 more steps == 5 uninterrupted steps
    let a = theta0();
    let mut opt_a = Adam::new(params(&a), 0.1);
    for _ in 0..5 {
        opt_a.step(&quadratic_grads(&a));
    }
    let b = theta0();
    let mut opt_b = Adam::new(params(&b), 0.1);
    for _ in 0..3 {
        opt_b.step(&quadratic_grads(&b));
    }
    let saved = opt_b.state();
    assert!(saved.iter().any(|(n, _)| n == "theta.exp_avg_sq"));
    let c = Var::parameter(b.value());
    let mut opt_c = Adam::new(params(&c), 0.1);
    opt_c.load_state(&saved).unwrap();
    assert_eq!(opt_c.steps(), 3);
    for _ in 0..2 {
        opt_c.step(&quadratic_grads(&c));
    }
    assert_eq!(c.value(), a.value());
    let bad = vec![("nope.exp_avg".to_string(), Tensor::zeros(&[2]))];
    assert!(opt_c.load_state(&bad).unwrap_err().contains("nope.exp_avg"));
    let bad = vec![("theta.exp_avg".to_string(), Tensor::zeros(&[3]))];
    assert!(opt_c.load_state(&bad).unwrap_err().contains("shape"));
}

#[test]
fn parameters_without_a_gradient_are_left_alone() {
    let a = Var::parameter(Tensor::<f64>::ones(&[1]));
    let unused = Var::parameter(Tensor::<f64>::ones(&[1]));
    let mut opt = Sgd::new(
        vec![("a".into(), a.clone()), ("unused".into(), unused.clone())],
        0.5,
    )
    .momentum(0.9);
    opt.step(&a.sum().backward());
    assert_eq!((a.item(), unused.item()), (0.5, 1.0));
}

/// Two gradient stores for the same parameters, one large enough for the parallel update.
fn two_halves(big: &Var<f64>, small: &Var<f64>, seed: u64) -> (Grads<f64>, Grads<f64>) {
    let mut rng = backprop_tensor::Rng::seed(seed);
    let mut a = Grads::new();
    let mut b = Grads::new();
    for v in [big, small] {
        let shape = v.shape();
        a.insert(v, Tensor::rand_normal(&shape, 0.0, 1.0, &mut rng));
        b.insert(v, Tensor::rand_normal(&shape, 0.0, 1.0, &mut rng));
    }
    (a, b)
}

#[test]
fn step_blend_equals_a_step_on_the_blended_gradients() {
    type Make = fn(Vec<(String, Var<f64>)>) -> Box<dyn Optimizer<f64>>;
    let makers: [(&str, Make); 4] = [
        ("momentum", |p| Box::new(Sgd::new(p, 0.05).momentum(0.9))),
        ("nesterov", |p| {
            Box::new(Sgd::new(p, 0.05).momentum(0.9).nesterov(true))
        }),
        ("momentum + l2", |p| {
            Box::new(
                Sgd::new(p, 0.05)
                    .momentum(0.9)
                    .regularization(Regularization {
                        l2: 0.01,
                        ..Default::default()
                    }),
            )
        }),
        ("adam", |p| Box::new(Adam::new(p, 0.01))),
    ];
    for (name, make) in makers {
        let mut rng = backprop_tensor::Rng::seed(1);
        let init_big = Tensor::<f64>::rand_normal(&[300, 300], 0.0, 1.0, &mut rng);
        let init_small = Tensor::<f64>::rand_normal(&[7], 0.0, 1.0, &mut rng);
        let run = |fused: bool| {
            let big = Var::parameter(init_big.clone());
            let small = Var::parameter(init_small.clone());
            let mut opt = make(vec![
                ("big".into(), big.clone()),
                ("small".into(), small.clone()),
            ]);
            for step in 0..3 {
                let (a, b) = two_halves(&big, &small, 10 + step);
                let (wa, wb) = (0.4, 0.6);
                if fused {
                    opt.step_blend(&a, wa, &b, wb);
                } else {
                    opt.step(&backprop_optim::blend(&a, wa, &b, wb));
                }
            }
            assert_eq!(opt.steps(), 3);
            (big.value(), small.value())
        };
        let (fb, fs) = run(true);
        let (sb, ss) = run(false);
        assert!(fb.allclose(&sb, 1e-12, 1e-12), "{name}: large parameter");
        assert!(fs.allclose(&ss, 1e-12, 1e-12), "{name}: small parameter");
        assert!(
            !fb.allclose(&init_big, 1e-3, 1e-3),
            "{name}: the update moved"
        );
    }
}

/// NAdam against PyTorch's `torch.optim.NAdam(lr=0.1)` (defaults otherwise) on
/// L(w) = Σ ½w³ + w², from w = (1, −2, 0.5): the parameters after each of three steps, as
/// PyTorch 2.15 printed them in f64. PyTorch keeps the step count as an f32 tensor, so its
/// μ_t = β₁(1 − ½·0.96^{0.004t}) is rounded at about 1e-8; agreement is to that.
#[test]
fn nadam_matches_pytorch() {
    use backprop_optim::Nadam;
    let w = Var::parameter(Tensor::<f64>::from_vec(vec![1.0, -2.0, 0.5], &[3]));
    let mut opt = Nadam::new(vec![("w".into(), w.clone())], 0.1);
    let expected = [
        [0.8943548211683644, -2.1056451786052532, 0.39435482163484953],
        [0.8216837430420229, -2.190468080340638, 0.3269371350058972],
        [0.7567801705972352, -2.2729988814061257, 0.2697395978740715],
    ];
    for want in expected {
        let loss = w.powf(3.0).mul_scalar(0.5).add(&w.mul(&w)).sum();
        opt.step(&loss.backward());
        for (got, want) in w.value().data().iter().zip(want) {
            assert!((got - want).abs() < 1e-8, "{got} vs {want}");
        }
    }
}
