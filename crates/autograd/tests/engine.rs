//! The engine's behaviour: accumulation, DAGs, no_grad, broadcasting backward, freeing,
//! detach, kinks, and error messages.

use backprop_autograd::{gradcheck, no_grad, GradcheckOptions, Var};
use backprop_tensor::Tensor;

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

fn t(v: &[f64], s: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), s)
}

#[test]
fn gradients_accumulate_over_every_use() {
    // f = x·x·x + 2x, used four times: df/dx = 3x² + 2
    let x = Var::parameter(t(&[2.0, -1.0], &[2]));
    let f = x.mul(&x).mul(&x).add(&x.mul_scalar(2.0)).sum();
    let g = f.backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![14.0, 5.0]);
}

#[test]
fn a_residual_dag_gets_both_paths() {
    // r = z + tanh(w·z); dr/dz = 1 + w·(1 − tanh²(w·z)), dr/dw = z·(1 − tanh²(w·z))
    let z = Var::parameter(t(&[0.5], &[1]));
    let w = Var::parameter(t(&[1.5], &[1]));
    let r = z.add(&w.mul(&z).tanh()).sum();
    let g = r.backward();
    let s = 1.0 - (0.75f64).tanh().powi(2);
    assert!((g.get(&z).unwrap().item() - (1.0 + 1.5 * s)).abs() < 1e-15);
    assert!((g.get(&w).unwrap().item() - 0.5 * s).abs() < 1e-15);
}

#[test]
fn no_grad_records_nothing() {
    let w = Var::parameter(t(&[1.0, 2.0], &[2]));
    let y = no_grad(|| w.mul(&w).exp().sum());
    assert!(!y.requires_grad());
    assert!(y.is_leaf());
    assert!(y.op_name().is_none());
    assert!(y.backward().is_empty());
    // recording resumes after the scope
    let y = w.mul(&w).sum();
    assert_eq!(y.op_name(), Some("sum"));
}

#[test]
fn constants_are_pruned_from_the_graph() {
    let a = Var::constant(t(&[1.0], &[1]));
    let b = Var::constant(t(&[2.0], &[1]));
    let c = a.mul(&b);
    assert!(!c.requires_grad() && c.op_name().is_none());
}

#[test]
fn broadcasting_backward_reduces_to_the_input_shape() {
    let a = Var::parameter(Tensor::<f64>::ones(&[2, 3, 4]));
    let row = Var::parameter(Tensor::<f64>::ones(&[4]));
    let col = Var::parameter(Tensor::<f64>::ones(&[3, 1]));
    let s = Var::parameter(Tensor::<f64>::scalar(2.0));
    let g = a.mul(&row).add(&col).mul(&s).sum().backward();
    assert_eq!(g.get(&a).unwrap().shape(), &[2, 3, 4]);
    assert_eq!(g.get(&row).unwrap().shape(), &[4]);
    assert_eq!(g.get(&row).unwrap().to_vec(), vec![12.0; 4]); // 2·3 entries ·s=2
    assert_eq!(g.get(&col).unwrap().shape(), &[3, 1]);
    assert_eq!(g.get(&col).unwrap().to_vec(), vec![16.0; 3]); // 2·4 entries ·s=2
    assert_eq!(g.get(&s).unwrap().shape(), &[] as &[usize]);
    assert_eq!(g.get(&s).unwrap().item(), 48.0); // Σ (1 + 1) over 24 entries
}

#[test]
fn intermediates_are_freed_by_backward() {
    let w = Var::parameter(t(&[1.0, 2.0], &[2]));
    let h = w.exp();
    let y = h.mul(&w).sum();
    assert!(h.holds_backward_state() && y.holds_backward_state());
    let _ = y.backward();
    assert!(!h.holds_backward_state() && !y.holds_backward_state());
    // a second backward through the freed graph is refused with a clear message
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward()));
    let msg = panic_message(r.unwrap_err());
    assert!(msg.contains("already differentiated"), "{msg}");
}

#[test]
fn detach_stops_gradients_and_retain_grad_reports_deltas() {
    let x = Var::parameter(t(&[3.0], &[1]));
    let y = x.mul(&x.detach()).sum(); // d/dx of x·c with c = 3 is 3, not 6
    assert_eq!(y.backward().get(&x).unwrap().item(), 3.0);
    let z = x.mul_scalar(2.0);
    z.retain_grad();
    let g = z.exp().sum().backward();
    assert!((g.get(&z).unwrap().item() - 6f64.exp()).abs() < 1e-9);
}

#[test]
fn kinks_have_their_documented_gradients() {
    let x = Var::parameter(t(&[0.0, -1.0, 2.0], &[3]));
    let g = x.relu().sum().backward();
    assert_eq!(
        g.get(&x).unwrap().to_vec(),
        vec![0.0, 0.0, 1.0],
        "relu'(0) = 0"
    );
    let x = Var::parameter(t(&[0.0, -1.0, 2.0], &[3]));
    let g = x.abs().sum().backward();
    assert_eq!(
        g.get(&x).unwrap().to_vec(),
        vec![0.0, -1.0, 1.0],
        "abs'(0) = 0"
    );
    let x = Var::parameter(t(&[0.0, -1.0, 2.0], &[3]));
    let g = x.sign().sum().backward();
    assert_eq!(
        g.get(&x).unwrap().to_vec(),
        vec![0.0, 0.0, 0.0],
        "sign' = 0"
    );
    // max ties: the gradient is split evenly
    let x = Var::parameter(t(&[2.0, 2.0, 1.0], &[3]));
    let g = x.max().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![0.5, 0.5, 0.0]);
    let x = Var::parameter(t(&[1.0, 1.0, 1.0, 0.0], &[2, 2]));
    let g = x.min_axis(1, false).sum().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), vec![0.5, 0.5, 0.0, 1.0]);
    // elementwise maximum at a tie: half to each side
    let a = Var::parameter(t(&[1.0], &[1]));
    let b = Var::parameter(t(&[1.0], &[1]));
    let g = a.maximum(&b).sum().backward();
    assert_eq!(
        (g.get(&a).unwrap().item(), g.get(&b).unwrap().item()),
        (0.5, 0.5)
    );
    let g = a.maximum_scalar(1.0).sum().backward();
    assert_eq!(g.get(&a).unwrap().item(), 0.5);
}

#[test]
fn max_tie_split_is_what_a_central_difference_measures() {
    let r = gradcheck(
        |v| v[0].max(),
        &[t(&[2.0, 2.0, 1.0], &[3])],
        GradcheckOptions::default(),
    );
    assert!(r.passed(), "{r}");
}

#[test]
fn gradcheck_catches_a_wrong_backward_rule() {
    // square with a deliberately wrong derivative (x instead of 2x)
    let bad_square = |x: &Var<f64>| {
        let v = x.value();
        Var::from_op("bad_square", v.mul(&v), vec![x.clone()], move |g, _| {
            vec![Some(g.mul(&v))]
        })
    };
    let r = gradcheck(
        |v| bad_square(&v[0]).sum(),
        &[t(&[1.0, 2.0], &[2])],
        GradcheckOptions::default(),
    );
    assert!(!r.passed());
    assert!((r.inputs[0].max_rel_err - 0.5).abs() < 1e-6, "{r}");
    assert!(r.to_string().contains("FAIL"));
}

#[test]
fn shape_mismatch_panics_name_the_op_and_both_shapes() {
    let a = Var::parameter(Tensor::<f32>::zeros(&[2, 3]));
    let b = Var::parameter(Tensor::<f32>::zeros(&[4, 5]));
    for (op, f) in [
        ("add", Box::new(|| drop(a.add(&b))) as Box<dyn Fn()>),
        ("mul", Box::new(|| drop(a.mul(&b)))),
        ("matmul", Box::new(|| drop(a.matmul(&b)))),
        ("linear", Box::new(|| drop(a.linear(&b, None)))),
    ] {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let msg = panic_message(r.unwrap_err());
        assert!(
            msg.starts_with(op) && msg.contains("[2, 3]") && msg.contains("[4, 5]"),
            "{op}: {msg}"
        );
    }
}

/// Negative axes mean the same in every op of the autograd layer as in the tensor layer
/// (one normaliser), and an axis out of range panics naming the op.
#[test]
fn negative_axes_count_from_the_end_and_bad_axes_name_the_op() {
    let x = Var::parameter(t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]));
    let same = |a: &Var<f64>, b: &Var<f64>| {
        assert_eq!(a.shape(), b.shape());
        assert_eq!(a.value().to_vec(), b.value().to_vec());
    };
    same(&x.sum_axis(-1, false), &x.sum_axis(1, false));
    same(&x.mean_axis(-2, true), &x.mean_axis(0, true));
    same(&x.max_axis(-1, false), &x.max_axis(1, false));
    same(&x.min_axis(-2, false), &x.min_axis(0, false));
    same(&x.transpose(-1, -2), &x.transpose(0, 1));
    same(&x.narrow(-1, 1, 2), &x.narrow(1, 1, 2));
    same(&Var::concat(&[&x, &x], -1), &Var::concat(&[&x, &x], 1));
    // the gradients travel back to the right axis too
    let g = x.narrow(-1, 1, 2).exp().mean().backward();
    let want = x.narrow(1, 1, 2).exp().mean().backward();
    assert_eq!(g.get(&x).unwrap().to_vec(), want.get(&x).unwrap().to_vec());
    assert_eq!(g.get(&x).unwrap().to_vec()[0], 0.0);
    for (op, f) in [
        (
            "sum_axis",
            Box::new(|| drop(x.sum_axis(2, false))) as Box<dyn Fn()>,
        ),
        ("mean_axis", Box::new(|| drop(x.mean_axis(-3, false)))),
        ("max_axis", Box::new(|| drop(x.max_axis(2, false)))),
        ("min_axis", Box::new(|| drop(x.min_axis(-3, false)))),
        ("transpose", Box::new(|| drop(x.transpose(0, 2)))),
        ("narrow", Box::new(|| drop(x.narrow(-3, 0, 1)))),
        ("concat", Box::new(|| drop(Var::concat(&[&x, &x], 2)))),
    ] {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let msg = panic_message(r.unwrap_err());
        assert!(
            msg.starts_with(op) && msg.contains("out of range for a tensor of rank 2"),
            "{op}: {msg}"
        );
    }
}

#[test]
fn parameters_can_be_updated_in_place_without_copying_after_backward() {
    let w = Var::parameter(Tensor::<f32>::ones(&[1000]));
    let before = w.with_value(|v| v.data().as_ptr());
    let g = w.mul(&w).sum().backward();
    let gw = g.get(&w).unwrap().clone();
    w.update(|d| d.iter_mut().zip(gw.data()).for_each(|(p, g)| *p -= 0.1 * g));
    assert_eq!(
        w.with_value(|v| v.data().as_ptr()),
        before,
        "the buffer was copied"
    );
    assert!((w.value().data()[0] - 0.8).abs() < 1e-6);
}
