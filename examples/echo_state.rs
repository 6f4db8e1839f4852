//! Echo state networks: a fixed random reservoir of 100 leaky tanh units, only the linear
//! readout trained (ridge regression, one solve). One-step prediction of the Mackey-Glass
//! series, then closed loop: the network's output fed back as its next input generates the
//! series on its own. NARMA10 shows the reservoir's memory.
//!
//! `cargo run --release --example echo_state` → forecast.svg

use std::path::Path;

use backprop::classic::esn::{mackey_glass, narma10, nrmse, Esn, EsnConfig};
use backprop::train::plot::{write_svg, xy_chart_svg};

type Figures = Vec<(&'static str, f64)>;

pub fn run(quick: bool, out: &Path) -> Result<Figures, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out)?;
    // reservoirpy's README settings: 100 units, ρ = 1.25, leak 0.3, ridge 1e-5, 2,000 points
    let s = mackey_glass(2000, 17.0, 0);
    let (u, y) = (&s[..1999], &s[1..]);
    let train = 1599;
    let mut esn = Esn::new(&EsnConfig::default(), 1)?;
    esn.fit(&u[..train], &y[..train], 1)?;
    let mut closed = esn.clone();
    let pred = esn.predict(&u[train..]);
    let one_step = nrmse(&y[train..], &pred);
    let horizon = if quick { 100 } else { 400 };
    let gen = closed.generate(&u[train..train + 1], horizon);
    let closed_err = nrmse(&y[train..train + horizon], &gen);
    println!("Mackey-Glass: one-step NRMSE {one_step:.5}; closed loop over {horizon} steps NRMSE {closed_err:.3}");
    let line = |v: &[f64]| {
        v.iter()
            .enumerate()
            .map(|(t, &x)| (t as f64, x))
            .collect::<Vec<_>>()
    };
    let svg = xy_chart_svg(
        "Echo state network on Mackey-Glass (τ = 17): closed-loop forecast",
        "steps after the training part",
        "x(t)",
        &[
            ("truth", line(&y[train..train + horizon])),
            ("closed loop (output fed back)", line(&gen)),
        ],
        false,
    );
    write_svg(&out.join("forecast.svg"), &svg)?;
    // NARMA10: 200 units, no leak, inputs to every unit
    let (nu, ny) = narma10(if quick { 1500 } else { 5000 }, 0);
    let split = nu.len() * 4 / 5;
    let cfg = EsnConfig {
        units: 200,
        spectral_radius: 0.9,
        leak_rate: 1.0,
        input_scaling: 0.5,
        input_connectivity: 1.0,
        bias_scaling: 0.5,
        ridge: 1e-7,
        ..EsnConfig::default()
    };
    let mut esn = Esn::new(&cfg, 1)?;
    esn.fit(&nu[..split], &ny[..split], 1)?;
    let narma = nrmse(&ny[split..], &esn.predict(&nu[split..]));
    println!("NARMA10: test NRMSE {narma:.3}");
    Ok(vec![
        ("mackey_glass_nrmse", one_step),
        ("closed_loop_nrmse", closed_err),
        ("narma10_nrmse", narma),
    ])
}

#[path = "common/args.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (quick, out) = common::args("echo_state");
    run(quick, &out)?;
    println!("wrote {}", out.join("forecast.svg").display());
    Ok(())
}
