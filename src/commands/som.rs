//! `backprop som`: flags → [`SomConfig`] → data → trained map → errors and pictures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use backprop_classic::plot::{component_planes_png, hit_map_png, u_matrix_png, unit_images_png};
use backprop_classic::som::{Som, SomConfig, TrainMode};
use backprop_data::{Dataset, Targets};
use serde_json::json;

use super::{load_data, set_threads};
use crate::args::SomArgs;

/// `10x12` → (10, 12).
pub fn parse_grid(s: &str) -> Result<(usize, usize)> {
    let bad = || anyhow!("--grid {s}: expected ROWSxCOLS, e.g. 10x10");
    let (r, c) = s
        .to_ascii_lowercase()
        .split_once('x')
        .map(|(r, c)| (r.trim().to_string(), c.trim().to_string()))
        .ok_or_else(bad)?;
    let (r, c) = (
        r.parse::<usize>().map_err(|_| bad())?,
        c.parse::<usize>().map_err(|_| bad())?,
    );
    if r == 0 || c == 0 {
        bail!("--grid {s}: both sides must be at least 1");
    }
    Ok((r, c))
}

fn som_config(a: &SomArgs) -> Result<SomConfig> {
    let (rows, cols) = parse_grid(&a.grid)?;
    let c = SomConfig {
        rows,
        cols,
        sigma: a.sigma,
        learning_rate: a.lr,
        topology: a.topology,
        neighborhood: a.neighborhood,
        distance: a.distance,
        lr_decay: a.lr_decay,
        sigma_decay: a.sigma_decay,
        init: a.init,
        seed: a.seed,
    };
    c.validate().map_err(|e| anyhow!("--{e}"))?;
    Ok(c)
}

/// CPU seconds used by this process so far (all threads), or NaN where unsupported. On a
/// shared machine this measures the work better than the wall clock does.
pub fn cpu_seconds() -> f64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
        }
    }
    f64::NAN
}

/// What the map measured, for the report.
struct Measures {
    init_seconds: f64,
    train_seconds: f64,
    train_cpu_seconds: f64,
    iterations: usize,
    train_qe: f64,
    train_te: f64,
    test: Option<(f64, f64)>,
    pictures: Vec<PathBuf>,
}

pub fn som(a: SomArgs) -> Result<ExitCode> {
    set_threads(a.threads)?;
    let config = som_config(&a)?;
    if a.iterations == Some(0) {
        bail!("--iterations 0: must be at least 1");
    }
    let data = load_data(&a.data, a.seed, None, true)?;
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/som-{}",
            data.train.name.replace(['/', '\\'], "_")
        ))
    });
    std::fs::create_dir_all(&out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    let train = &data.train;
    let x = train.x.data();
    let mut map = Som::new(&config, train.features()).map_err(|e| anyhow!("--{e}"))?;
    let iterations = a.iterations.unwrap_or(match a.mode {
        TrainMode::Online => train.len(),
        TrainMode::Batch => 20,
    });
    let started = Instant::now();
    map.init_weights(x).map_err(|e| anyhow!("--{e}"))?;
    let init_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let cpu = cpu_seconds();
    map.train(x, iterations, a.mode, a.random_order)
        .map_err(|e| anyhow!("--{e}"))?;
    let train_seconds = started.elapsed().as_secs_f64();
    let train_cpu_seconds = cpu_seconds() - cpu;
    let m = Measures {
        init_seconds,
        train_seconds,
        train_cpu_seconds,
        iterations,
        train_qe: map.quantization_error(x),
        train_te: map.topographic_error(x),
        test: data.test.as_ref().map(|t| {
            (
                map.quantization_error(t.x.data()),
                map.topographic_error(t.x.data()),
            )
        }),
        pictures: pictures(&map, train, &out)?,
    };
    report(&a, &config, &map, &m, &out)?;
    Ok(ExitCode::SUCCESS)
}

fn pictures(map: &Som, train: &Dataset, out: &Path) -> Result<Vec<PathBuf>> {
    let c = map.config();
    let what = format!(
        "{}×{} {} SOM on {}",
        c.rows,
        c.cols,
        c.topology.name(),
        train.name
    );
    let mut written = Vec::new();
    let mut add = |name: &str, r: Result<(), String>| -> Result<()> {
        r.map_err(|e| anyhow!(e))?;
        written.push(out.join(name));
        Ok(())
    };
    add(
        "u_matrix.png",
        u_matrix_png(&out.join("u_matrix.png"), &format!("U-matrix, {what}"), map),
    )?;
    if let Targets::Classes { labels, names } = &train.targets {
        let lm = map.labels_map(train.x.data(), labels, names.len());
        add(
            "hit_map.png",
            hit_map_png(
                &out.join("hit_map.png"),
                &format!("Hits and majority label, {what}"),
                map,
                &lm,
                names,
            ),
        )?;
    }
    add(
        "component_planes.png",
        component_planes_png(
            &out.join("component_planes.png"),
            &format!("Component planes, {what}"),
            map,
            &[],
            64,
        ),
    )?;
    if let Some([1, h, w]) = train.image_shape {
        add(
            "unit_weights.png",
            unit_images_png(
                &out.join("unit_weights.png"),
                &format!("Unit weights, {what}"),
                map,
                h,
                w,
            ),
        )?;
    }
    Ok(written)
}

fn report(a: &SomArgs, c: &SomConfig, map: &Som, m: &Measures, out: &Path) -> Result<()> {
    let j = json!({
        "grid": [c.rows, c.cols],
        "topology": c.topology.name(),
        "neighborhood": c.neighborhood.name(),
        "distance": c.distance.name(),
        "sigma": c.sigma, "lr": c.learning_rate,
        "lr_decay": c.lr_decay.name(), "sigma_decay": c.sigma_decay.name(),
        "init": c.init.name(), "mode": a.mode.name(), "iterations": m.iterations,
        "units": map.units(),
        "init_seconds": m.init_seconds,
        "train_seconds": m.train_seconds,
        "train_cpu_seconds": m.train_cpu_seconds,
        "train": {"quantization_error": m.train_qe, "topographic_error": m.train_te},
        "test": m.test.map(|(q, t)| json!({"quantization_error": q, "topographic_error": t})),
        "pictures": m.pictures.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&j)? + "\n")
        .with_context(|| format!("{}: cannot write", path.display()))?;
    if a.json {
        println!("{j}");
        return Ok(());
    }
    println!(
        "{}×{} {} map, {} neighbourhood, {} iterations ({}) in {:.3} s (initialisation {:.3} s)",
        c.rows,
        c.cols,
        c.topology.name(),
        c.neighborhood.name(),
        m.iterations,
        a.mode.name(),
        m.train_seconds,
        m.init_seconds
    );
    println!(
        "train: quantization error {:.4}, topographic error {:.4}",
        m.train_qe, m.train_te
    );
    if let Some((q, t)) = m.test {
        println!("test:  quantization error {q:.4}, topographic error {t:.4}");
    }
    for p in &m.pictures {
        println!("wrote {}", p.display());
    }
    Ok(())
}
