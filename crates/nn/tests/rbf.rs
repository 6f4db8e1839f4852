//! The Gaussian RBF layer: f64 gradcheck of input, centres and widths; PyTorch's values and
//! gradients from a committed fixture (`fixtures/make_rbf_fixture.py`); use from a spec.

use backprop_autograd::{gradcheck_vars, GradcheckOptions, Var};
use backprop_nn::{Mode, ModelSpec, Module, Rbf};
use backprop_tensor::{Rng, Tensor};
use serde_json::Value;

#[test]
fn rbf_gradcheck_in_f64() {
    let layer = Rbf::<f64>::new(3, 4, &mut Rng::seed(1));
    layer
        .widths
        .set_value(Tensor::from_vec(vec![0.8, 1.3, 2.0, 1.1], &[4]));
    let x = Var::parameter(Tensor::rand_normal(&[5, 3], 0.0, 1.0, &mut Rng::seed(2)));
    let c = Tensor::rand_uniform(&[5, 4], 0.5, 1.5, &mut Rng::seed(3));
    let vars = vec![x.clone(), layer.centres.clone(), layer.widths.clone()];
    let r = gradcheck_vars(
        // x is used twice: through the layer and through a skip term
        || {
            layer
                .forward(&x, Mode::Train)
                .mul(&Var::constant(c.clone()))
                .exp()
                .mean()
                .add(&x.mul(&x).mean())
        },
        &vars,
        GradcheckOptions::default(),
    );
    assert!(r.passed() && r.max_rel_err() < 1e-6, "{r}");
}

fn vec_of(j: &Value, k: &str) -> Vec<f64> {
    j[k].as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn rbf_matches_pytorch() {
    let j: Value = serde_json::from_str(include_str!("fixtures/rbf_torch.json")).unwrap();
    let layer = Rbf::<f64>::new(3, 5, &mut Rng::seed(0));
    layer
        .centres
        .set_value(Tensor::from_vec(vec_of(&j, "centres"), &[5, 3]));
    layer
        .widths
        .set_value(Tensor::from_vec(vec_of(&j, "widths"), &[5]));
    let x = Var::parameter(Tensor::from_vec(vec_of(&j, "x"), &[4, 3]));
    let phi = layer.forward(&x, Mode::Train);
    let up = Var::constant(Tensor::from_vec(vec_of(&j, "upstream"), &[4, 5]));
    let grads = phi.mul(&up).sum().backward();
    let close = |got: Vec<f64>, key: &str| {
        for (a, b) in got.iter().zip(vec_of(&j, key)) {
            assert!((a - b).abs() < 1e-10 * (1.0 + b.abs()), "{key}: {a} vs {b}");
        }
    };
    close(phi.value().to_vec(), "phi");
    close(grads.get(&x).unwrap().to_vec(), "dx");
    close(grads.get(&layer.centres).unwrap().to_vec(), "dcentres");
    close(grads.get(&layer.widths).unwrap().to_vec(), "dwidths");
}

#[test]
fn rbf_in_a_spec() {
    let spec = ModelSpec::from_json(
        r#"{"layers": [{"type": "rbf", "centres": 6}, {"type": "linear", "out": 2}]}"#,
    )
    .unwrap();
    let built = spec.build::<f32>(4, Some(2), 0).unwrap();
    let names: Vec<String> = built.model.params().into_iter().map(|(n, _)| n).collect();
    assert!(
        names.contains(&"rbf1.centres".to_string()) && names.contains(&"rbf1.widths".to_string()),
        "{names:?}"
    );
    let bad = ModelSpec::from_json(r#"{"layers": [{"type": "rbf", "centres": 0}]}"#);
    assert!(bad.is_err() || bad.unwrap().build::<f32>(4, None, 0).is_err());
}
