//! Hopfield capacity: store P random patterns in N units by the Hebbian rule and count how
//! many are retrieved (asynchronous updates from the pattern itself end within 1.5% of it,
//! overlap ≥ 0.97). Retrieval collapses near P ≈ 0.138·N (Amit, Gutfreund & Sompolinsky
//! 1985). Then modern Hopfield retrieval stores 10·N patterns and recovers them in one step.
//!
//! `cargo run --release --example hopfield_capacity` → capacity.svg

use std::path::Path;

use backprop::classic::hopfield::{capacity_curve, modern_retrieve, random_patterns};
use backprop::train::plot::{write_svg, xy_chart_svg};
use backprop::Rng;

type Figures = Vec<(&'static str, f64)>;

/// The load at which the retrieved fraction first falls through 50% (linear interpolation).
fn half_point(alphas: &[f64], frac: &[f64]) -> f64 {
    for k in 1..alphas.len() {
        if frac[k - 1] >= 0.5 && frac[k] < 0.5 {
            let t = (frac[k - 1] - 0.5) / (frac[k - 1] - frac[k]);
            return alphas[k - 1] + t * (alphas[k] - alphas[k - 1]);
        }
    }
    f64::NAN
}

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    let sizes: &[usize] = if quick { &[200] } else { &[200, 500, 1000] };
    let alphas: Vec<f64> = (2..=25).map(|k| k as f64 * 0.01).collect();
    let mut series = Vec::new();
    let mut figures = Vec::new();
    for &n in sizes {
        let trials = if quick { 2 } else { (4000 / n).max(3) };
        let frac = capacity_curve(n, &alphas, trials, 0.97, n as u64);
        let half = half_point(&alphas, &frac);
        println!("N = {n}: half the patterns retrieved up to P/N = {half:.3} ({trials} memories per load)");
        series.push((
            format!("N = {n}"),
            alphas.iter().copied().zip(frac).collect::<Vec<_>>(),
        ));
        if n == 200 {
            figures.push(("half_point_n200", half));
        } else {
            figures.push((
                if n == 500 {
                    "half_point_n500"
                } else {
                    "half_point_n1000"
                },
                half,
            ));
        }
    }
    let named: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    let svg = xy_chart_svg(
        "Hebbian Hopfield network: patterns retrieved against load P/N (α_c ≈ 0.138)",
        "P / N",
        "fraction retrieved (overlap ≥ 0.97)",
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
