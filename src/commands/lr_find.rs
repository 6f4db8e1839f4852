//! `backprop lr-find`: the learning-rate range test (Smith 2017) on the run the `train`
//! flags describe: loss against an exponentially growing rate, the plot, a suggestion, and
//! optionally a sweep of short trainings to check it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use backprop_train::lr_find::{lr_find as range_test, lr_find_svg, LrFindSettings};
use backprop_train::{Quiet, RunConfig, Trainer};

use super::{flag_error, set_threads};
use crate::args::LrFindArgs;

pub fn lr_find(a: LrFindArgs) -> Result<ExitCode> {
    set_threads(a.train.threads)?;
    let config = super::train::run_config(&a.train)?;
    config.validate().map_err(flag_error)?;
    let settings = LrFindSettings {
        start: a.start_lr,
        end: a.end_lr,
        steps: a.iterations,
        ..LrFindSettings::default()
    };
    if let Some(bad) = a.sweep.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
        bail!("--sweep {bad}: each rate must be a positive number");
    }
    let out = a
        .train
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}-lr-find", config.out_dir().display())));
    std::fs::create_dir_all(&out)
        .with_context(|| format!("--out {}: cannot create the directory", out.display()))?;
    let run = config.prepare().map_err(flag_error)?;
    let r = range_test(run.module(), &run.train, &run.config, &settings)
        .map_err(|e| anyhow!("--start-lr/--end-lr/--iterations: {e}"))?;
    let svg = out.join("lr_find.svg");
    let title = format!(
        "learning-rate range test: suggested η = {:.3}",
        r.suggestion
    );
    std::fs::write(&svg, lr_find_svg(&r, &title))
        .with_context(|| format!("--out {}: cannot write", svg.display()))?;
    let mut csv = String::from("lr,loss,smoothed\n");
    for ((l, x), s) in r.lrs.iter().zip(&r.losses).zip(&r.smoothed) {
        csv += &format!("{l},{x},{s}\n");
    }
    std::fs::write(out.join("lr_find.csv"), csv)
        .with_context(|| format!("--out {}: cannot write lr_find.csv", out.display()))?;
    println!(
        "{} steps from η = {} to {}: smoothed loss lowest at η = {:.4}, falling fastest at η = {:.4}",
        r.lrs.len(),
        r.lrs[0],
        r.lrs.last().copied().unwrap_or(0.0),
        r.min_loss_lr,
        r.steepest_lr
    );
    println!(
        "suggested learning rate: {:.4}  (--lr {:.3})",
        r.suggestion, r.suggestion
    );
    println!(
        "plot: {}\ndata: {}",
        svg.display(),
        out.join("lr_find.csv").display()
    );
    if !a.sweep.is_empty() {
        sweep(&config, &a.sweep, r.suggestion)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Trains a fresh model with each rate (the run's schedule and epochs, 1 by default) and
/// prints the validation loss and accuracy of each.
fn sweep(config: &RunConfig, rates: &[f64], suggestion: f64) -> Result<()> {
    let mut results = Vec::new();
    for &lr in rates {
        let mut c = config.clone();
        c.lr = Some(lr);
        c.epochs = Some(config.epochs.unwrap_or(1));
        let run = c.prepare().map_err(flag_error)?;
        let mut t = Trainer::new(run.module(), run.config.clone()).map_err(flag_error)?;
        t.fit(&run.train, run.validation.as_ref(), &mut Quiet, |_| Ok(()))
            .map_err(|e| anyhow!(e))?;
        let last = t.history.epochs.last();
        let (vl, va) = last.map_or((f64::NAN, f64::NAN), |r| (r.val_loss, r.val_accuracy));
        println!(
            "sweep: η = {lr:<8} {} epoch(s): validation loss {vl:.4}, accuracy {:.2}%",
            run.config.epochs,
            va * 100.0
        );
        results.push((lr, vl));
    }
    if let Some((best, _)) = results
        .iter()
        .filter(|r| r.1.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
    {
        let factor = (suggestion / best).max(best / suggestion);
        println!(
            "best of the sweep: η = {best}; the suggestion {suggestion:.4} is within {factor:.2}× of it"
        );
    }
    Ok(())
}
