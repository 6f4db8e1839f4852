//! Behaviour of layers and losses: the lectures' closed forms, LayerNorm's invariance,
//! dropout's agreement with the lecture's test-time scaling, batch norm's modes, summaries.

use backprop_autograd::{no_grad, Var};
use backprop_nn::loss::{self, Reduction};
use backprop_nn::{
    Activation, BatchNorm1d, Dropout, LayerNorm, Linear, Mode, Module, Sequential, Summary,
};
use backprop_tensor::{Rng, Tensor};

fn normal(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_normal(shape, 0.0, 1.0, &mut Rng::seed(seed))
}

#[test]
fn softmax_cross_entropy_gradient_is_p_minus_q() {
    let z = normal(&[5, 4], 1);
    let labels = [3usize, 0, 1, 1, 2];
    let p = z.softmax(1);
    let q = Tensor::<f64>::one_hot(&labels, 4);
    let want = p.sub(&q);
    // with indices (sum reduction: no 1/n)
    let zv = Var::parameter(z.clone());
    let g = loss::cross_entropy(&zv, &labels, Reduction::Sum).backward();
    assert!(g.get(&zv).unwrap().allclose(&want, 1e-12, 1e-14));
    // with one-hot targets, mean reduction: (p − q)/n
    let zv = Var::parameter(z.clone());
    let g = loss::cross_entropy_probs(&zv, &q, Reduction::Mean).backward();
    assert!(g
        .get(&zv)
        .unwrap()
        .allclose(&want.mul_scalar(1.0 / 5.0), 1e-12, 1e-14));
    // with soft targets
    let soft = normal(&[5, 4], 2).softmax(1);
    let zv = Var::parameter(z.clone());
    let g = loss::cross_entropy_probs(&zv, &soft, Reduction::Sum).backward();
    assert!(g.get(&zv).unwrap().allclose(&p.sub(&soft), 1e-12, 1e-14));
    // the fused loss equals log_softmax + nll
    let a = loss::cross_entropy(&Var::constant(z.clone()), &labels, Reduction::Mean).item();
    let b = loss::nll_loss(&Var::constant(z.log_softmax(1)), &labels, Reduction::Mean).item();
    assert!((a - b).abs() < 1e-14);
}

#[test]
fn sigmoid_with_logistic_loss_gives_yhat_minus_y() {
    // logistic regression: ŷ = σ(w·x + b); ∂ℓ/∂z = ŷ − y and so ∂ℓ/∂w = (ŷ − y)x
    let x = normal(&[6, 3], 3);
    let y = Tensor::<f64>::from_vec(vec![1., 0., 1., 1., 0., 0.], &[6, 1]);
    let w = Var::parameter(normal(&[1, 3], 4));
    let b = Var::parameter(Tensor::zeros(&[1]));
    let z = Var::constant(x.clone()).linear(&w, Some(&b));
    let yhat = z.value().sigmoid();
    let g = loss::bce_with_logits(&z, &y, Reduction::Sum).backward();
    let err = yhat.sub(&y); // [6, 1]
    assert!(g
        .get(&w)
        .unwrap()
        .allclose(&err.matmul_tn(&x), 1e-12, 1e-14));
    assert!(g
        .get(&b)
        .unwrap()
        .allclose(&err.sum_axis(0, false), 1e-12, 1e-14));
    // and the probability form through an explicit sigmoid agrees
    let w2 = Var::parameter(w.value());
    let p = Var::constant(x.clone()).linear(&w2, None).sigmoid();
    let g2 = loss::binary_cross_entropy(&p, &y, Reduction::Sum).backward();
    assert!(g2
        .get(&w2)
        .unwrap()
        .allclose(&err.matmul_tn(&x), 1e-9, 1e-12));
}

#[test]
fn squared_error_has_the_lecture_forms() {
    let a = Var::parameter(Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 5.0], &[2, 2]));
    let y = Tensor::from_vec(vec![0.0, 0.0, 1.0, 1.0], &[2, 2]);
    // ½ Σ (y − a)² = ½(1 + 4 + 4 + 16) = 12.5; mean over n = 2 samples: 6.25 = 1/(2n) Σ‖y−a‖²
    assert_eq!(
        loss::half_squared_error(&a, &y, Reduction::Sum).item(),
        12.5
    );
    let c = loss::half_squared_error(&a, &y, Reduction::Mean);
    assert_eq!(c.item(), 6.25);
    // ∂C/∂a = (a − y)/n
    assert_eq!(
        c.backward().get(&a).unwrap().to_vec(),
        vec![0.5, 1.0, 1.0, 2.0]
    );
}

#[test]
fn hinge_and_zero_one() {
    let s = Var::parameter(Tensor::<f64>::from_vec(vec![2.0, 0.5, -1.0], &[3]));
    let t = Tensor::from_vec(vec![1.0, 1.0, -1.0], &[3]);
    let l = loss::hinge(&s, &t, Reduction::Sum);
    assert_eq!(l.item(), 0.5); // 0 + 0.5 + 0 (t·s = 1 sits at the hinge: loss 0)
    assert_eq!(l.backward().get(&s).unwrap().to_vec(), vec![0.0, -1.0, 0.0]);
    let scores = Tensor::<f64>::from_vec(vec![0.3, -0.2, 1.5], &[3, 1]);
    assert_eq!(loss::zero_one_loss(&scores, &[1, 0, 0]), 1.0 / 3.0);
}

#[test]
fn layer_norm_is_invariant_to_scaling_the_affine_map() {
    // LN(MM_{αW,αb}(z)) = LN(MM_{W,b}(z)) for α > 0
    let mut rng = Rng::seed(5);
    let lin = Linear::<f64>::new(6, 5, &mut rng);
    let z = Var::constant(normal(&[4, 6], 8));
    let (gamma, beta) = (normal(&[5], 6), normal(&[5], 7));
    let make = |eps: f64| {
        let ln = LayerNorm::<f64>::with_eps(5, eps);
        ln.weight.set_value(gamma.clone());
        ln.bias.set_value(beta.clone());
        ln
    };
    let scaled = |alpha: f64| {
        Linear::from_tensors(
            lin.weight.value().mul_scalar(alpha),
            Some(lin.bias.as_ref().unwrap().value().mul_scalar(alpha)),
        )
    };
    // with ε = 0 the invariance is exact
    let ln = make(0.0);
    let base = ln.forward(&lin.forward(&z, Mode::Eval), Mode::Eval).value();
    for alpha in [0.01, 0.5, 3.0, 250.0] {
        let y = ln
            .forward(&scaled(alpha).forward(&z, Mode::Eval), Mode::Eval)
            .value();
        assert!(y.allclose(&base, 1e-12, 1e-12), "alpha = {alpha}");
    }
    // with ε > 0, scaling by α is the same as using ε/α²: LN_ε(αu) = LN_{ε/α²}(u)
    for alpha in [0.01, 0.5, 3.0, 250.0] {
        let y = make(1e-5)
            .forward(&scaled(alpha).forward(&z, Mode::Eval), Mode::Eval)
            .value();
        let want = make(1e-5 / (alpha * alpha))
            .forward(&lin.forward(&z, Mode::Eval), Mode::Eval)
            .value();
        assert!(y.allclose(&want, 1e-10, 1e-10), "alpha = {alpha}");
    }
    // and with a different α the output of MM alone does change
    let changed = Linear::from_tensors(lin.weight.value().mul_scalar(2.0), None)
        .forward(&z, Mode::Eval)
        .value();
    assert!(!changed.allclose(
        &Linear::from_tensors(lin.weight.value(), None)
            .forward(&z, Mode::Eval)
            .value(),
        1e-3,
        1e-3
    ));
}

#[test]
fn inverted_dropout_agrees_with_test_time_weight_scaling_in_expectation() {
    let p = 0.3;
    let mut rng = Rng::seed(9);
    let w = normal(&[2, 8], 10);
    let x = Var::constant(Tensor::rand_uniform(&[1, 8], 0.0, 1.0, &mut rng));
    let lin = Linear::from_tensors(w.clone(), None);
    let drop = Dropout::new(p, 11);
    // Monte Carlo mean of the training-time output of W·dropout(x)
    let trials = 20_000;
    let mut sum = Tensor::<f64>::zeros(&[1, 2]);
    no_grad(|| {
        for _ in 0..trials {
            sum = sum.add(
                &lin.forward(&Module::<f64>::forward(&drop, &x, Mode::Train), Mode::Train)
                    .value(),
            );
        }
    });
    let mean = sum.mul_scalar(1.0 / trials as f64);
    // ours: eval is the plain network
    let eval = lin
        .forward(&Module::<f64>::forward(&drop, &x, Mode::Eval), Mode::Eval)
        .value();
    assert!(mean.allclose(&eval, 0.02, 0.02), "{mean} vs {eval}");
    // the lecture's: train without scaling (= ours·(1−p)), test with weights·(1−p)
    let lecture_test = Linear::from_tensors(w.mul_scalar(1.0 - p), None)
        .forward(&x, Mode::Eval)
        .value();
    assert!(mean.mul_scalar(1.0 - p).allclose(&lecture_test, 0.02, 0.02));
    // and the exact relation: our network with W equals the lecture's with W/(1−p)
    let lecture_net = Linear::from_tensors(w.mul_scalar(1.0 / (1.0 - p)), None);
    let lecture_eval = Linear::from_tensors(lecture_net.weight.value().mul_scalar(1.0 - p), None)
        .forward(&x, Mode::Eval)
        .value();
    assert!(lecture_eval.allclose(&eval, 1e-12, 1e-12));
}

#[test]
fn dropout_drops_about_p_and_is_seeded() {
    let x = Var::constant(Tensor::<f32>::ones(&[1, 10_000]));
    let a = Module::<f32>::forward(&Dropout::new(0.25, 1), &x, Mode::Train).value();
    let b = Module::<f32>::forward(&Dropout::new(0.25, 1), &x, Mode::Train).value();
    assert_eq!(a, b);
    let dropped = a.data().iter().filter(|&&v| v == 0.0).count() as f64 / 10_000.0;
    assert!((dropped - 0.25).abs() < 0.02, "{dropped}");
    assert!(a
        .data()
        .iter()
        .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
}

#[test]
fn batch_norm_train_and_eval_modes() {
    let bn = BatchNorm1d::<f64>::new(3).with_momentum(0.5);
    let x = Var::constant(normal(&[8, 3], 12).mul_scalar(3.0).add_scalar(2.0));
    let y = bn.forward(&x, Mode::Train).value();
    // training output: zero mean, unit (biased) variance per feature
    let m = y.mean_axis(0, false);
    assert!(m.data().iter().all(|v| v.abs() < 1e-12));
    let v = y.mul(&y).mean_axis(0, false);
    assert!(v.data().iter().all(|v| (v - 1.0).abs() < 1e-5));
    // running stats moved halfway to the batch stats (variance unbiased)
    let bm = x.value().mean_axis(0, false);
    assert!(bn
        .running_mean
        .value()
        .allclose(&bm.mul_scalar(0.5), 1e-12, 1e-12));
    let c = x.value().sub(&bm);
    let unbiased = c.mul(&c).sum_axis(0, false).mul_scalar(1.0 / 7.0);
    assert!(bn.running_var.value().allclose(
        &unbiased.mul_scalar(0.5).add_scalar(0.5),
        1e-12,
        1e-12
    ));
    // eval uses the running stats and changes nothing
    let before = bn.running_mean.value();
    let e = bn.forward(&x, Mode::Eval).value();
    let want = x
        .value()
        .sub(&bn.running_mean.value())
        .div(&bn.running_var.value().add_scalar(1e-5).sqrt());
    assert!(e.allclose(&want, 1e-12, 1e-12));
    assert_eq!(bn.running_mean.value(), before);
    assert_eq!(bn.buffers().len(), 2);
}

#[test]
fn summary_of_a_3_4_2_network_counts_26_parameters() {
    let mut rng = Rng::seed(0);
    let net = Sequential::<f32>::new()
        .add("fc1", Linear::new(3, 4, &mut rng))
        .add("act1", Activation::Sigmoid)
        .add("fc2", Linear::new(4, 2, &mut rng))
        .add("act2", Activation::Sigmoid);
    let s = Summary::of_sequential(&net, &[1, 3]);
    assert_eq!(s.total_params, 26);
    assert_eq!(s.weights, 20);
    assert_eq!(s.biases, 6);
    assert_eq!(s.rows.len(), 4);
    assert_eq!(s.rows[0].params, 16);
    assert_eq!(s.rows[0].output_shape, vec![1, 4]);
    assert_eq!(s.rows[2].kind, "Linear(4 → 2)");
    let text = s.to_string();
    assert!(
        text.contains("total parameters: 26 (weights 20, biases 6)"),
        "{text}"
    );
}

#[test]
fn parameter_names_are_stable_and_pytorch_shaped() {
    let mut rng = Rng::seed(0);
    let net = Sequential::<f32>::new()
        .then(Linear::new(3, 4, &mut rng))
        .then(Activation::Relu)
        .then(Linear::new(4, 2, &mut rng));
    let names: Vec<(String, Vec<usize>)> = net
        .params()
        .into_iter()
        .map(|(n, p)| (n, p.shape()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("0.weight".to_string(), vec![4, 3]),
            ("0.bias".to_string(), vec![4]),
            ("2.weight".to_string(), vec![2, 4]),
            ("2.bias".to_string(), vec![2])
        ]
    );
}
