//! Schedules' first steps against their formulas, clipping, and a 2-2-1 network that
//! learns XOR with the library.

use backprop_autograd::{no_grad, Var};
use backprop_nn::loss::{self, Reduction};
use backprop_nn::{Activation, Linear, Mode, Module, Sequential};
use backprop_optim::clip::{clip_grad_norm, clip_grad_value};
use backprop_optim::schedule::{
    Constant, Cosine, Exponential, InvSqrt, LrSchedule, ReduceOnPlateau, StepDecay, Warmup,
};
use backprop_optim::{Optimizer, Sgd};
use backprop_tensor::{Rng, Tensor};

#[track_caller]
fn first_steps(s: &dyn LrSchedule, want: &[f64]) {
    for (t, w) in want.iter().enumerate() {
        assert!(
            (s.lr(t) - w).abs() < 1e-12,
            "{} at t = {t}: {} vs {w}",
            s.describe(),
            s.lr(t)
        );
    }
}

#[test]
fn schedules_follow_their_formulas() {
    first_steps(&Constant(0.3), &[0.3, 0.3, 0.3]);
    // η₀·γ^⌊t/2⌋
    first_steps(
        &StepDecay {
            lr: 0.4,
            step_size: 2,
            gamma: 0.5,
        },
        &[0.4, 0.4, 0.2, 0.2, 0.1],
    );
    // η₀·γᵗ
    first_steps(
        &Exponential {
            lr: 0.5,
            gamma: 0.8,
        },
        &[0.5, 0.4, 0.32, 0.256],
    );
    // η₀/√(t+1)
    first_steps(
        &InvSqrt(1.0),
        &[1.0, 1.0 / 2f64.sqrt(), 1.0 / 3f64.sqrt(), 0.5],
    );
    // η_min + ½(η₀ − η_min)(1 + cos(πt/T)), T = 4
    let c = |t: f64| 0.1 + 0.5 * 0.9 * (1.0 + (std::f64::consts::PI * t / 4.0).cos());
    first_steps(
        &Cosine {
            lr: 1.0,
            min_lr: 0.1,
            period: 4,
        },
        &[1.0, c(1.0), c(2.0), c(3.0), 0.1, 0.1],
    );
    // warm-up of 3 in front of an exponential decay: 1/3, 2/3, 1 of η₀, then η₀·γ^(t−3)
    first_steps(
        &Warmup::new(
            3,
            Exponential {
                lr: 0.6,
                gamma: 0.5,
            },
        ),
        &[0.2, 0.4, 0.6, 0.6, 0.3, 0.15],
    );
    // reduce on plateau: ×0.1 after more than 2 observations without improvement
    let mut p = ReduceOnPlateau::new(1.0, 0.1, 2);
    let mut seen = Vec::new();
    for m in [5.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0] {
        p.observe(m);
        seen.push(p.lr(0));
    }
    let want = [1.0, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1];
    for (a, b) in seen.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{seen:?}");
    }
}

#[test]
fn clipping_by_norm_and_by_value() {
    let a = Var::parameter(Tensor::<f64>::from_vec(vec![3.0], &[1]));
    let b = Var::parameter(Tensor::<f64>::from_vec(vec![0.0, 4.0], &[2]));
    let loss = |a: &Var<f64>, b: &Var<f64>| {
        a.mul(a)
            .mul_scalar(0.5)
            .sum()
            .add(&b.mul(b).mul_scalar(0.5).sum())
    };
    let mut g = loss(&a, &b).backward();
    let n = clip_grad_norm(&mut g, 2.5);
    assert_eq!(n, 5.0);
    assert!((g.get(&a).unwrap().item() - 1.5).abs() < 1e-12);
    assert!((g.get(&b).unwrap().data()[1] - 2.0).abs() < 1e-12);
    let mut g = loss(&a, &b).backward();
    assert_eq!(clip_grad_norm(&mut g, 10.0), 5.0);
    assert_eq!(
        g.get(&a).unwrap().item(),
        3.0,
        "under the limit nothing changes"
    );
    let mut g = loss(&a, &b).backward();
    clip_grad_value(&mut g, 2.0);
    assert_eq!(g.get(&b).unwrap().to_vec(), vec![0.0, 2.0]);
}

#[test]
fn a_2_2_1_network_learns_xor_from_a_fixed_seed() {
    let x = Tensor::<f32>::from_vec(vec![0., 0., 0., 1., 1., 0., 1., 1.], &[4, 2]);
    let y = Tensor::<f32>::from_vec(vec![0., 1., 1., 0.], &[4, 1]);
    // A 2-2-1 sigmoid network has local minima on XOR: with this set-up 26 of the seeds
    // 0..30 reach a solution (4 stall with two outputs near 0.5). The seed is fixed so the
    // test is deterministic.
    let mut rng = Rng::seed(7);
    let net = Sequential::<f32>::new()
        .add("hidden", Linear::new(2, 2, &mut rng))
        .add("sigma1", Activation::Sigmoid)
        .add("out", Linear::new(2, 1, &mut rng))
        .add("sigma2", Activation::Sigmoid);
    let mut opt = Sgd::new(net.params(), 2.0).momentum(0.9);
    let xv = Var::constant(x.clone());
    for _ in 0..2000 {
        let out = net.forward(&xv, Mode::Train);
        opt.step(&loss::half_squared_error(&out, &y, Reduction::Mean).backward());
    }
    let out = no_grad(|| net.forward(&xv, Mode::Eval)).value();
    let o = out.data();
    assert!(
        o[0] < 0.5 && o[1] > 0.5 && o[2] > 0.5 && o[3] < 0.5,
        "XOR outputs {o:?}"
    );
}
