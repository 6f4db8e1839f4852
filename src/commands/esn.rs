//! `backprop esn`: flags → [`EsnConfig`] → series → fitted reservoir → one-step and
//! closed-loop NRMSE, a forecast plot.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use backprop_classic::esn::{mackey_glass, narma10, nrmse, Esn, EsnConfig};
use backprop_train::plot::{write_svg, xy_chart_svg};
use serde_json::json;

use super::som::cpu_seconds;
use crate::args::EsnArgs;

/// An input series and the target series, one value per step.
struct Series {
    name: String,
    input: Vec<f64>,
    target: Vec<f64>,
    /// Whether the target is the next input (forecasting), so closed loop makes sense.
    forecasting: bool,
}

/// The first column of a CSV file (a non-numeric first line is a header).
fn read_column(path: &Path) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--series {}: cannot read the file", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let cell = line.split(',').next().unwrap_or("").trim();
        if cell.is_empty() {
            continue;
        }
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => out.push(v),
            Ok(_) => bail!(
                "--series {}: line {}: {cell} is not a finite number",
                path.display(),
                i + 1
            ),
            Err(_) if i == 0 => {}
            Err(_) => bail!(
                "--series {}: line {}: {cell:?} is not a number",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

fn load_series(a: &EsnArgs) -> Result<Series> {
    if a.points < 10 || a.points > 10_000_000 {
        bail!("--points {}: must be in 10..=10000000", a.points);
    }
    let forecast = |name: &str, s: Vec<f64>| Series {
        name: name.to_string(),
        input: s[..s.len() - 1].to_vec(),
        target: s[1..].to_vec(),
        forecasting: true,
    };
    Ok(match a.series.as_str() {
        "mackey-glass" | "mackey_glass" => {
            if !(a.tau.is_finite() && a.tau >= 1.0 && a.tau <= 1000.0) {
                bail!("--tau {}: must be in [1, 1000]", a.tau);
            }
            forecast("mackey-glass", mackey_glass(a.points, a.tau, a.seed))
        }
        "narma10" => {
            let (u, y) = narma10(a.points, a.seed);
            Series {
                name: "narma10".into(),
                input: u,
                target: y,
                forecasting: false,
            }
        }
        other => {
            let p = Path::new(other);
            if !p.is_file() {
                bail!("--series {other}: not mackey-glass, narma10 or an existing CSV file");
            }
            let s = read_column(p)?;
            if s.len() < 10 {
                bail!(
                    "--series {other}: {} values are too few (at least 10)",
                    s.len()
                );
            }
            let stem = p
                .file_stem()
                .map_or("csv".into(), |s| s.to_string_lossy().into_owned());
            forecast(&stem, s)
        }
    })
}

fn config(a: &EsnArgs) -> Result<EsnConfig> {
    let c = EsnConfig {
        units: a.units,
        spectral_radius: a.spectral_radius,
        leak_rate: a.leak_rate,
        input_scaling: a.input_scaling,
        connectivity: a.connectivity,
        input_connectivity: a.input_connectivity,
        bias_scaling: a.bias_scaling,
        ridge: a.ridge,
        washout: a.washout,
        seed: a.seed,
    };
    c.validate().map_err(|e| anyhow!("--{e}"))?;
    if !(a.test_fraction > 0.0 && a.test_fraction < 1.0) {
        bail!("--test-fraction {}: must be in (0, 1)", a.test_fraction);
    }
    Ok(c)
}

pub fn esn(a: EsnArgs) -> Result<ExitCode> {
    let cfg = config(&a)?;
    let s = load_series(&a)?;
    let steps = s.input.len();
    let test = ((steps as f64) * a.test_fraction).round() as usize;
    let train = steps - test;
    if test == 0 || train <= cfg.washout + 1 {
        bail!("--test-fraction {} / --washout {}: {steps} steps leave {train} to train and {test} to test", a.test_fraction, cfg.washout);
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/esn-{}", s.name)));
    std::fs::create_dir_all(&out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let mut esn = Esn::new(&cfg, 1).map_err(|e| anyhow!("--{e}"))?;
    esn.fit(&s.input[..train], &s.target[..train], 1)
        .map_err(|e| anyhow!("--{e}"))?;
    let after_fit = esn.clone();
    let pred = esn.predict(&s.input[train..]);
    let (seconds, cpu_seconds) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let one_step = nrmse(&s.target[train..], &pred);
    let mut closed = None;
    if s.forecasting && a.generate > 0 {
        let n = a.generate.min(test);
        let gen = after_fit.clone().generate(&s.input[train..train + 1], n);
        let e = nrmse(&s.target[train..train + n], &gen);
        let truth: Vec<(f64, f64)> = (0..n).map(|t| (t as f64, s.target[train + t])).collect();
        let g: Vec<(f64, f64)> = gen
            .iter()
            .enumerate()
            .map(|(t, &v)| (t as f64, v))
            .collect();
        let p: Vec<(f64, f64)> = pred[..n]
            .iter()
            .enumerate()
            .map(|(t, &v)| (t as f64, v))
            .collect();
        let svg = xy_chart_svg(
            &format!(
                "ESN on {}: closed-loop forecast (NRMSE {e:.3}) vs one-step (NRMSE {one_step:.4})",
                s.name
            ),
            "steps after training",
            "value",
            &[("truth", truth), ("one step ahead", p), ("closed loop", g)],
            false,
        );
        let path = out.join("forecast.svg");
        write_svg(&path, &svg).map_err(|e| anyhow!(e))?;
        closed = Some((n, e, path));
    }
    let j = json!({
        "series": s.name, "steps": steps, "train_steps": train, "test_steps": test,
        "units": cfg.units, "spectral_radius": cfg.spectral_radius, "leak_rate": cfg.leak_rate,
        "ridge": cfg.ridge, "washout": cfg.washout,
        "seconds": seconds, "cpu_seconds": cpu_seconds,
        "one_step_nrmse": one_step,
        "closed_loop": closed.as_ref().map(|(n, e, p)| json!({"steps": n, "nrmse": e, "plot": p.display().to_string()})),
    });
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&j)? + "\n",
    )
    .with_context(|| format!("--out {}: cannot write report.json", out.display()))?;
    if a.json {
        println!("{j}");
    } else {
        println!("ESN with {} units on {} ({train} steps to train, {test} to test): built, fitted and run in {seconds:.4} s", cfg.units, s.name);
        println!("one-step NRMSE on the test steps: {one_step:.5}");
        if let Some((n, e, p)) = closed {
            println!(
                "closed loop, {n} steps: NRMSE {e:.4}; plot: {}",
                p.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
