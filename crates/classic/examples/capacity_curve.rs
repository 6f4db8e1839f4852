//! Prints the Hebbian Hopfield capacity curve (retrieved fraction against P/N, overlap ≥ 0.97)
//! and its 50% point for the sizes given on the command line (default 200).
//!
//! `cargo run --release -p backprop-classic --example capacity_curve -- 200 500`

use backprop_classic::hopfield::capacity_curve;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() { vec![200] } else { sizes };
    let alphas: Vec<f64> = (2..=25).map(|k| k as f64 * 0.01).collect();
    for n in sizes {
        let trials = (4000 / n).max(3);
        let frac = capacity_curve(n, &alphas, trials, 0.97, n as u64);
        let mut half = f64::NAN;
        for k in 1..alphas.len() {
            if frac[k - 1] >= 0.5 && frac[k] < 0.5 {
                let t = (frac[k - 1] - 0.5) / (frac[k - 1] - frac[k]);
                half = alphas[k - 1] + t * (alphas[k] - alphas[k - 1]);
                break;
            }
        }
        let curve: Vec<String> = alphas
            .iter()
            .zip(&frac)
            .map(|(a, f)| format!("{a:.2}:{f:.2}"))
            .collect();
        println!("N = {n} ({trials} memories per load): {}", curve.join(" "));
        println!("RESULT hopfield N={n}: 50% retrieval at P/N = {half:.3}");
    }
}
