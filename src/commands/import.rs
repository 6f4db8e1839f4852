//! `backprop import`: a safetensors state dict written elsewhere (PyTorch) and the model
//! spec it belongs to → a backprop model directory that `eval`, `predict`, `export` and
//! `train --init-from` accept.

use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use backprop_train::import::import_state_dict;
use backprop_train::{evaluate, Checkpoint, RunConfig};
use serde_json::json;

use super::{data_config, flag_error, model_choice, num_or_null, pct};
use crate::args::ImportArgs;

pub fn import(a: ImportArgs) -> Result<ExitCode> {
    let config = RunConfig {
        data: data_config(&a.data)?,
        model: model_choice(&a.model)?,
        validation: Some(0),
        out: a.out.clone(),
        seed: a.seed,
        ..Default::default()
    };
    config.validate().map_err(flag_error)?;
    let run = config.prepare().map_err(flag_error)?;
    let report =
        import_state_dict(run.module(), &a.weights).map_err(|e| anyhow!("--weights {e}"))?;
    std::fs::create_dir_all(&run.out)
        .with_context(|| format!("--out {}: cannot create the directory", run.out.display()))?;
    let mut meta = run.metadata.clone();
    meta.insert("backprop.loss".into(), json!(run.config.loss).to_string());
    meta.insert(
        "backprop.imported_from".into(),
        a.weights.display().to_string(),
    );
    let path = run.model_path();
    Checkpoint::of_model(run.module(), meta)
        .save(&path)
        .map_err(|e| anyhow!("--out {e}"))?;
    let test = run
        .data
        .test
        .as_ref()
        .map(|t| evaluate(run.module(), t, run.config.loss));
    if a.json {
        let mut o = json!({"model": path.display().to_string(), "tensors": report.tensors, "skipped": report.skipped});
        if let Some(e) = &test {
            o["test_loss"] = num_or_null(e.loss);
            o["test_accuracy"] = num_or_null(e.accuracy);
        }
        println!("{o}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "imported {} tensors from {} into {}{}",
        report.tensors,
        a.weights.display(),
        path.display(),
        if report.skipped.is_empty() {
            String::new()
        } else {
            format!(" (skipped {})", report.skipped.join(", "))
        }
    );
    if let Some(e) = test.filter(|e| e.accuracy.is_finite()) {
        println!("test accuracy {} (loss {:.4})", pct(e.accuracy), e.loss);
    }
    Ok(ExitCode::SUCCESS)
}
