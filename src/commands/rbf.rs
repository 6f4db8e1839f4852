//! `backprop rbf`: flags → [`RbfConfig`] → data → two-stage training (k-means++ centres,
//! widths from the clusters' radii, ridge output weights) → scores and pictures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use backprop_classic::plot::{rbf_centre_images_png, rbf_centres_png};
use backprop_classic::rbf::{RbfConfig, RbfNet};
use backprop_data::{Dataset, Targets};
use backprop_train::plot::decision_boundary_png;
use serde_json::{json, Value};

use super::som::cpu_seconds;
use super::{load_data, num_or_null, pct, set_threads};
use crate::args::RbfArgs;

/// Centres drawn as images at most.
const MAX_CENTRE_IMAGES: usize = 200;

fn rbf_config(a: &RbfArgs) -> Result<RbfConfig> {
    let c = RbfConfig {
        centres: a.centres,
        kmeans_iterations: a.kmeans_iterations,
        kmeans_samples: a.kmeans_samples,
        width_scale: a.width_scale,
        ridge: a.ridge,
        seed: a.seed,
    };
    c.validate().map_err(|e| anyhow!("--{e}"))?;
    if a.kmeans_samples != 0 && a.kmeans_samples < a.centres {
        bail!(
            "--kmeans-samples {}: fewer than the {} centres (0 runs k-means on every training sample)",
            a.kmeans_samples,
            a.centres
        );
    }
    Ok(c)
}

/// Trains on `train`: a classifier on class labels, a regressor on target values.
fn fit(train: &Dataset, cfg: &RbfConfig) -> Result<RbfNet> {
    let (x, d) = (train.x.data(), train.features());
    if train.len() < cfg.centres {
        bail!(
            "--centres {}: more than the {} training samples",
            cfg.centres,
            train.len()
        );
    }
    let net = match &train.targets {
        Targets::Classes { labels, names } => {
            RbfNet::fit_classifier(x, d, labels, names.len(), cfg)
        }
        Targets::Values(y) => {
            let outputs = y.shape().get(1).copied().unwrap_or(1);
            RbfNet::fit_regressor(x, d, y.data(), outputs, cfg)
        }
    };
    net.map_err(|e| anyhow!("--{e}"))
}

/// Accuracy (classification) or root-mean-square error (regression) on `data`.
fn score(net: &RbfNet, data: &Dataset) -> Value {
    let x = data.x.data();
    match &data.targets {
        Targets::Classes { labels, .. } => {
            let hits = net
                .classify(x)
                .iter()
                .zip(labels)
                .filter(|(p, l)| p == l)
                .count();
            json!({"accuracy": hits as f64 / labels.len().max(1) as f64})
        }
        Targets::Values(y) => {
            let pred = net.predict(x);
            let se: f64 = pred
                .iter()
                .zip(y.data())
                .map(|(p, t)| f64::from(p - t).powi(2))
                .sum();
            json!({"rmse": num_or_null((se / pred.len().max(1) as f64).sqrt())})
        }
    }
}

/// The outputs as class weights for shading: clamped to [0, 1] and normalised to sum 1
/// (the ridge fit to one-hot targets gives values near 0 and 1, not probabilities).
fn shading(net: &RbfNet, grid: &[f32]) -> Vec<Vec<f32>> {
    let k = net.outputs();
    net.predict(grid)
        .chunks(k)
        .map(|r| {
            let c: Vec<f32> = r.iter().map(|v| v.clamp(0.0, 1.0)).collect();
            let s: f32 = c.iter().sum();
            if s > 0.0 {
                c.iter().map(|v| v / s).collect()
            } else {
                vec![1.0 / k as f32; k]
            }
        })
        .collect()
}

fn points(d: &Dataset) -> Vec<[f32; 2]> {
    d.x.data().chunks(2).map(|p| [p[0], p[1]]).collect()
}

/// The centres over 2-D data and the decision boundary (classification), or the centres as
/// images for image data; nothing for other data.
fn pictures(
    net: &RbfNet,
    train: &Dataset,
    test: Option<&Dataset>,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    let what = format!("{} Gaussian centres on {}", net.widths.len(), train.name);
    let mut written = Vec::new();
    let centres = out.join("centres.png");
    let labels = |d: &Dataset| match &d.targets {
        Targets::Classes { labels, .. } => Some(labels.clone()),
        Targets::Values(_) => None,
    };
    if net.dim() == 2 {
        let (pts, lab) = (points(train), labels(train));
        let title = format!("RBF network: {what} (circles: width σ)");
        rbf_centres_png(&centres, &title, &pts, lab.as_deref(), net).map_err(|e| anyhow!(e))?;
        written.push(centres);
        if let Some(lab) = lab {
            let test_pts = test.map(|t| (points(t), labels(t).unwrap_or_default()));
            let path = out.join("decision_boundary.png");
            decision_boundary_png(
                &path,
                &format!("RBF network, {what}"),
                (&pts, &lab),
                test_pts.as_ref().map(|(p, l)| (p.as_slice(), l.as_slice())),
                net.outputs(),
                |g| shading(net, g),
            )
            .map_err(|e| anyhow!(e))?;
            written.push(path);
        }
    } else if let Some([1, h, w]) = train.image_shape {
        let shown = net.widths.len().min(MAX_CENTRE_IMAGES);
        let title = format!("RBF centres as images ({shown} of {})", net.widths.len());
        rbf_centre_images_png(&centres, &title, net, h, w, shown).map_err(|e| anyhow!(e))?;
        written.push(centres);
    }
    Ok(written)
}

pub fn rbf(a: RbfArgs) -> Result<ExitCode> {
    set_threads(a.threads)?;
    let cfg = rbf_config(&a)?;
    let data = load_data(&a.data, a.seed, None, true)?;
    let out = a.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/rbf-{}",
            data.train.name.replace(['/', '\\'], "_")
        ))
    });
    std::fs::create_dir_all(&out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let net = fit(&data.train, &cfg)?;
    let (seconds, cpu_seconds) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    let (train_score, test_score) = (
        score(&net, &data.train),
        data.test.as_ref().map(|t| score(&net, t)),
    );
    let written = pictures(&net, &data.train, data.test.as_ref(), &out)?;
    let mut widths = net.widths.clone();
    widths.sort_by(f32::total_cmp);
    let j = json!({
        "dataset": data.name, "features": net.dim(), "outputs": net.outputs(),
        "centres": cfg.centres, "kmeans_iterations": cfg.kmeans_iterations,
        "kmeans_samples": cfg.kmeans_samples, "width_scale": cfg.width_scale,
        "ridge": cfg.ridge, "seed": cfg.seed,
        "widths": {"min": widths[0], "median": widths[widths.len() / 2], "max": widths[widths.len() - 1]},
        "train_seconds": seconds, "train_cpu_seconds": cpu_seconds,
        "train": train_score, "test": test_score,
        "pictures": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&j)? + "\n")
        .with_context(|| format!("--out {}: cannot write report.json", out.display()))?;
    if a.json {
        println!("{j}");
        return Ok(ExitCode::SUCCESS);
    }
    let show = |v: &Value| match (v["accuracy"].as_f64(), v["rmse"].as_f64()) {
        (Some(acc), _) => format!("accuracy {}", pct(acc)),
        (None, Some(e)) => format!("RMSE {e:.4}"),
        _ => "no score".into(),
    };
    println!(
        "RBF network with {} centres on {} ({} features): trained in {seconds:.3} s",
        cfg.centres,
        data.name,
        net.dim()
    );
    println!("train: {}", show(&j["train"]));
    if let Some(t) = j.get("test").filter(|t| !t.is_null()) {
        println!("test:  {}", show(t));
    }
    for p in &written {
        println!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
