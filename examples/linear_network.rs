//! An all-linear network collapses to one linear map: three linear layers without
//! activations compute exactly x ↦ W3·W2·W1·x, the lectures' exercise on linear neurons.
//! Training it on a nonlinear target can therefore do no better than the best single
//! linear map.
//!
//! `cargo run --release --example linear_network`

use std::path::Path;

use backprop::nn::{Linear, Mode, Module, Sequential};
use backprop::{Rng, Tensor, Var};

type Figures = Vec<(&'static str, f64)>;

pub fn run(_quick: bool, _out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    let mut rng = Rng::seed(3);
    let l1 = Linear::<f64>::with_init(4, 5, backprop::nn::Init::XavierNormal, false, &mut rng);
    let l2 = Linear::<f64>::with_init(5, 3, backprop::nn::Init::XavierNormal, false, &mut rng);
    let l3 = Linear::<f64>::with_init(3, 2, backprop::nn::Init::XavierNormal, false, &mut rng);
    let (w1, w2, w3) = (l1.weight.value(), l2.weight.value(), l3.weight.value());
    let net = Sequential::<f64>::new()
        .add("l1", l1)
        .add("l2", l2)
        .add("l3", l3);
    // the product W = W3·W2·W1, a single 2×4 matrix
    let w = w3.matmul(&w2).matmul(&w1);
    println!("W = W3·W2·W1 =\n{w:.4}");
    let x = Tensor::<f64>::rand_normal(&[6, 4], 0.0, 1.0, &mut rng);
    let through_net = net.forward(&Var::constant(x.clone()), Mode::Eval).value();
    let through_w = x.matmul(&w.t());
    let diff = through_net.sub(&through_w).abs().max_all();
    println!("largest difference between the network and the single map W on 6 inputs: {diff:.2e}");
    println!("(rank of the composed map is at most min(4, 5, 3, 2) = 2: depth adds no power without nonlinearity)");
    Ok(vec![("max_difference", diff)])
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("linear_network");
    run(quick, &out).map(|_| ())
}
