//! Perceptrons learn AND, OR and NAND with Rosenblatt's rule, the hand-set weights for each
//! gate, and the perceptron's failure on XOR.
//!
//! `cargo run --release --example logic_gates`

use std::path::Path;

use backprop::nn::classic::{hand_set_gate, Perceptron, TRUTH_TABLE_INPUTS};

type Figures = Vec<(&'static str, f64)>;

pub fn run(_quick: bool, _out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    let gates: [(&str, [f64; 4]); 4] = [
        ("and", [0., 0., 0., 1.]),
        ("or", [0., 1., 1., 1.]),
        ("nand", [1., 1., 1., 0.]),
        ("xor", [0., 1., 1., 0.]),
    ];
    let mut figures = Vec::new();
    for (name, table) in gates {
        // start from zero weights; w ← w + η(y − ŷ)x, b ← b + η(y − ŷ), η = 0.1
        let mut p = Perceptron::zeros(2);
        let report = p.train(&TRUTH_TABLE_INPUTS, &table, 0.1, 100);
        println!("{:>4}: {report}", name.to_uppercase());
        println!(
            "      learned w = ({:.1}, {:.1}), b = {:.1}",
            p.weights[0], p.weights[1], p.bias
        );
        for (x, y) in TRUTH_TABLE_INPUTS.iter().zip(table) {
            println!("      {x:?} → {} (want {y})", p.predict(x));
        }
        if let Some(h) = hand_set_gate(name) {
            let ok = TRUTH_TABLE_INPUTS
                .iter()
                .zip(table)
                .all(|(x, y)| h.predict(x) == y);
            println!(
                "      hand-set w = ({}, {}), b = {}: {}",
                h.weights[0],
                h.weights[1],
                h.bias,
                if ok { "correct" } else { "WRONG" }
            );
        }
        figures.push((name, if report.converged { 1.0 } else { 0.0 }));
    }
    println!("\nXOR is not linearly separable: no line splits (0,1),(1,0) from (0,0),(1,1), so a single perceptron cannot learn it. See the xor_mlp example.");
    Ok(figures)
}

#[path = "common/args.rs"]
mod common;

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("logic_gates");
    run(quick, &out).map(|_| ())
}
