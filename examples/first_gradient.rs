//! A 2-2-1 sigmoid network's gradients, checked against central differences.
//!
//! Run with `cargo run --release --example first_gradient`.

use backprop::autograd::GradcheckOptions;
use backprop::{gradcheck, Tensor, Var};

fn main() {
    // The lecture's worked example: inputs (0.35, 0.9), hidden weights (0.1, 0.8) and
    // (0.4, 0.6), output weights (0.3, 0.9), target 0.5, C = ½(y − t)², no biases.
    let x = Var::constant(Tensor::<f64>::from_vec(vec![0.35, 0.9], &[1, 2]));
    let w1 = Var::parameter(Tensor::from_vec(vec![0.1, 0.8, 0.4, 0.6], &[2, 2]));
    let w2 = Var::parameter(Tensor::from_vec(vec![0.3, 0.9], &[1, 2]));
    let forward = |w1: &Var<f64>, w2: &Var<f64>| {
        let a1 = x.linear(w1, None).sigmoid();
        let y = a1.linear(w2, None).sigmoid();
        let c = y.add_scalar(-0.5).powf(2.0).mul_scalar(0.5).sum();
        (y, c)
    };
    let (y, c) = forward(&w1, &w2);
    println!("output y = {:.6}, cost C = {:.6}", y.item(), c.item());
    let grads = c.backward();
    println!("dC/dW1 = {:.6}", grads.get(&w1).unwrap());
    println!("dC/dW2 = {:.6}", grads.get(&w2).unwrap());
    let w2_new = w2.value().sub(&grads.get(&w2).unwrap().mul_scalar(1.0));
    println!("W2 after one step with eta = 1: {:.6}", w2_new);

    let report = gradcheck(
        |v| forward(&v[0], &v[1]).1,
        &[w1.value(), w2.value()],
        GradcheckOptions::default(),
    );
    println!("\n{report}");
}
