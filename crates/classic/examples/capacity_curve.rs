//! Prints the Hebbian Hopfield capacity curve (retrieved fraction against P/N: at most 1% of
//! the units wrong after asynchronous updates converge, from the pattern itself and from the
//! pattern with 10% of its units flipped) and its 50% point for the sizes given on the
//! command line (default 200).
//!
//! `cargo run --release -p backprop-classic --example capacity_curve -- 200 400`

use backprop_classic::hopfield::{capacity_curve, half_point, Retrieval};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() { vec![200] } else { sizes };
    let alphas: Vec<f64> = (4..=25).map(|k| k as f64 * 0.01).collect();
    for n in sizes {
        let trials = (8000 / n).max(8);
        for cue_noise in [0.0, 0.1] {
            let criterion = Retrieval {
                cue_noise,
                ..Retrieval::default()
            };
            let frac = capacity_curve(n, &alphas, trials, &criterion, n as u64);
            let half = half_point(&alphas, &frac);
            let curve: Vec<String> = alphas
                .iter()
                .zip(&frac)
                .map(|(a, f)| format!("{a:.2}:{f:.3}"))
                .collect();
            println!(
                "N = {n}, {:.0}% of the cue flipped ({trials} memories per load): {}",
                100.0 * cue_noise,
                curve.join(" ")
            );
            println!(
                "RESULT hopfield N={n} cue_noise={cue_noise}: 50% retrieval at P/N = {half:.3}"
            );
        }
    }
}
