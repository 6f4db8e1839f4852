//! Hopfield capacity: store P random patterns in N units by the Hebbian rule and count how
//! many are retrieved, against the load P/N. Retrieved means: from a cue (the pattern
//! itself, or the pattern with 10% of its units flipped), asynchronous updates run until a
//! sweep flips nothing, and the final state differs from the pattern in at most 1% of the
//! units ([`Retrieval`]). Retrieval collapses near P ≈ 0.138·N in the limit of large N
//! (Amit, Gutfreund & Sompolinsky 1985); at finite N the collapse is smeared and sits
//! higher, approaching 0.138 roughly as 1/√N. Then modern Hopfield retrieval stores 10·N
//! patterns and recovers them in one step.
//!
//! `cargo run --release --example hopfield_capacity` → capacity.svg

use std::path::Path;

use backprop::classic::hopfield::{
    capacity_curve, half_point, modern_retrieve, random_patterns, Retrieval,
};
use backprop::train::plot::{write_svg, xy_chart_svg};
use backprop::Rng;

type Figures = Vec<(&'static str, f64)>;

/// The figure names of the 50% points, by cue and size.
fn figure_name(noisy: bool, n: usize) -> &'static str {
    match (noisy, n) {
        (false, 200) => "half_point_n200",
        (false, 400) => "half_point_n400",
        (false, _) => "half_point_n1000",
        (true, 200) => "half_point_noisy_n200",
        (true, 400) => "half_point_noisy_n400",
        (true, _) => "half_point_noisy_n1000",
    }
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let sizes: &[usize] = if quick { &[200] } else { &[200, 400, 1000] };
    let alphas: Vec<f64> = (4..=25).map(|k| k as f64 * 0.01).collect();
    let mut series = Vec::new();
    let mut figures = Vec::new();
    for (noisy, cue) in [(false, "pattern"), (true, "10% flipped")] {
        let criterion = Retrieval {
            cue_noise: if noisy { 0.1 } else { 0.0 },
            ..Retrieval::default()
        };
        for &n in sizes {
            let trials = if quick { 6 } else { (8000 / n).max(8) };
            let frac = capacity_curve(n, &alphas, trials, &criterion, n as u64);
            let half = half_point(&alphas, &frac);
            println!(
                "N = {n}, cue = {cue}: half the patterns retrieved up to P/N = {half:.3} ({trials} memories per load)"
            );
            series.push((
                format!("N = {n}, cue {cue}"),
                alphas.iter().copied().zip(frac).collect::<Vec<_>>(),
            ));
            figures.push((figure_name(noisy, n), half));
        }
    }
    // the theory's limit, as a vertical line
    series.push(("α_c = 0.138".to_string(), vec![(0.138, 0.0), (0.138, 1.0)]));
    let named: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    let svg = xy_chart_svg(
        "Hebbian Hopfield network: patterns retrieved against load P/N",
        "P / N",
        "fraction retrieved (≤ 1% of units wrong after convergence)",
        &named,
        false,
    );
    write_svg(&out.join("capacity.svg"), &svg)?;

    // modern Hopfield: P = 10·N patterns, 10% of the query flipped, β = 1, one step
    let (n, beta) = (64, 1.0f32);
    let p = 10 * n;
    let mut rng = Rng::seed(1);
    let pats: Vec<f32> = random_patterns(p, n, &mut rng)
        .into_iter()
        .map(f32::from)
        .collect();
    let mut ok = 0;
    for xi in pats.chunks(n) {
        let mut q = xi.to_vec();
        for _ in 0..n / 10 {
            let i = rng.below(n);
            q[i] = -xi[i];
        }
        let out = modern_retrieve(&pats, n, &q, beta);
        ok += usize::from(out.iter().zip(xi).all(|(a, b)| a.signum() == *b));
    }
    println!("modern Hopfield, N = {n}, P = {p} = 10·N, β = {beta}: {ok}/{p} recovered in one step from 10%-corrupted cues");
    figures.push(("modern_recovered_fraction", ok as f64 / p as f64));
    Ok(figures)
}

#[path = "common/args.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("hopfield_capacity");
    run(quick, &out)?;
    println!("wrote {}", out.join("capacity.svg").display());
    Ok(())
}
