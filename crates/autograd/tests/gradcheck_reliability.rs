//! The gradient checker itself: it must not fail correct rules at kinks (ReLU at 0, max-pool
//! ties), and it must catch a wrong rule, on smooth stretches and next to kinks alike.

use backprop_autograd::{gradcheck, GradcheckOptions, Var};
use backprop_tensor::{Pool2dParams, Tensor};

fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), s)
}

/// ReLU with a deliberately wrong backward rule: the slope is 1.01 instead of 1.
fn planted_relu(x: &Var<f64>) -> Var<f64> {
    let xv = x.value();
    Var::from_op("planted_relu", xv.relu(), vec![x.clone()], move |g, _| {
        let d = g
            .data()
            .iter()
            .zip(xv.data())
            .map(|(&g, &x)| if x > 0.0 { 1.01 * g } else { 0.0 })
            .collect();
        vec![Some(Tensor::from_vec(d, xv.shape()))]
    })
}

#[test]
fn a_relu_input_exactly_at_zero_is_a_kink_not_a_failure() {
    // at x = 0 the right derivative is 1, the left 0: the central difference gives 0.5
    let x = t(&[0.0, 1.5, -0.7, 0.0], &[4]);
    let report = gradcheck(|v| v[0].relu().sum(), &[x], GradcheckOptions::default());
    assert!(report.passed(), "{report}");
    assert_eq!(report.kinks(), 2, "{report}");
}

#[test]
fn a_max_pool_tie_is_a_kink_not_a_failure() {
    // a window whose two largest values are equal: moving either one changes the maximum
    let x = t(&[1.0, 1.0, 0.2, -0.3], &[1, 1, 2, 2]);
    let p = Pool2dParams {
        kernel: (2, 2),
        stride: (2, 2),
        padding: (0, 0),
    };
    let report = gradcheck(
        |v| v[0].max_pool2d(p).mul_scalar(3.0).sum(),
        &[x],
        GradcheckOptions::default(),
    );
    assert!(report.passed(), "{report}");
    assert_eq!(report.kinks(), 2, "{report}");
}

#[test]
fn a_slope_that_is_continuous_but_not_smooth_passes() {
    // relu(z)² at z = 0: differentiable (slope 0 from both sides) with a kinked slope, which
    // spoils the central differences' error bound but not the rule
    let x = t(&[0.0, 0.8], &[2]);
    let report = gradcheck(
        |v| {
            let r = v[0].relu();
            r.mul(&r).sum()
        },
        &[x],
        GradcheckOptions::default(),
    );
    assert!(report.passed(), "{report}");
    assert_eq!(report.kinks(), 0, "{report}");
}

#[test]
fn a_wrong_backward_rule_is_caught_on_smooth_inputs() {
    let x = t(&[0.4, 1.5, -0.7, 2.0], &[4]);
    let ok = gradcheck(
        |v| {
            let r = v[0].relu();
            r.mul(&r).sum()
        },
        &[x.clone()],
        GradcheckOptions::default(),
    );
    assert!(ok.passed(), "{ok}");
    let bad = gradcheck(
        |v| {
            let r = planted_relu(&v[0]);
            r.mul(&r).sum()
        },
        &[x],
        GradcheckOptions::default(),
    );
    assert!(!bad.passed(), "the planted 1% error went unnoticed:\n{bad}");
    assert!(bad.max_rel_err() > 5e-3, "{bad}");
}

#[test]
fn a_wrong_backward_rule_is_caught_even_beside_kinks() {
    // a layer: z = W x with some pre-activations at exactly 0 (kinks) and the rest smooth;
    // the planted rule must still fail on the smooth elements
    let w = t(&[1.0, -1.0, 0.5, 0.3, -0.2, 0.8], &[3, 2]);
    let x = Var::constant(t(&[1.0, 1.0, -0.4, 2.0], &[2, 2]));
    let layer = |w: &Var<f64>, relu: fn(&Var<f64>) -> Var<f64>| {
        // r + r²: a kink of slope 1 where z = 0, smooth elsewhere
        let r = relu(&x.matmul(&w.transpose(0, 1)));
        r.add(&r.mul(&r)).sum()
    };
    let ok = gradcheck(
        |v| layer(&v[0], |z| z.relu()),
        &[w.clone()],
        GradcheckOptions::default(),
    );
    assert!(ok.passed(), "{ok}");
    assert!(
        ok.kinks() > 0,
        "the first row of W meets x = (1, 1) at z = 0: {ok}"
    );
    let bad = gradcheck(
        |v| layer(&v[0], planted_relu),
        &[w],
        GradcheckOptions::default(),
    );
    assert!(!bad.passed(), "{bad}");
}
