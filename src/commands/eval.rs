//! `backprop eval`: a saved model on its dataset's test split.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use backprop_data::Targets;
use backprop_train::{evaluate, regression_scores, LossKind};
use serde_json::json;

use super::train::{scores_json, scores_line};
use super::{load_saved_model, num_or_null, pct, saved_test_set, set_threads};
use crate::args::EvalArgs;

pub fn eval(a: EvalArgs) -> Result<ExitCode> {
    set_threads(a.threads)?;
    let saved = load_saved_model(&a.model_path)?;
    let (name, test) = saved_test_set(&saved, &a.data)?;
    let test = &test;
    if test.features() != saved.inputs {
        bail!(
            "the model takes {} inputs but {} has {} features",
            saved.inputs,
            name,
            test.features()
        );
    }
    let kind = match &test.targets {
        Targets::Classes { .. } => LossKind::CrossEntropy,
        Targets::Values(_) => LossKind::Squared,
    };
    let kind = saved.loss().unwrap_or(kind);
    let e = evaluate(&saved.model, test, kind);
    let schema = saved.table().map_err(|e| anyhow!("--model-path {e}"))?;
    let scores = regression_scores(&saved.model, test, |y| {
        schema.as_ref().map_or(y, |s| s.unscale_target(y))
    });
    if a.json {
        let mut o = json!({"dataset": name, "samples": test.len(), "test_loss": num_or_null(e.loss), "test_accuracy": num_or_null(e.accuracy)});
        if let Some(s) = &scores {
            o["test_scores"] = scores_json(s);
        }
        if let Some(c) = &e.confusion {
            o["confusion_matrix"] = json!(c.counts);
            o["precision"] = json!(c.precision());
            o["recall"] = json!(c.recall());
        }
        println!("{o}");
    } else {
        if let (Some(c), Targets::Classes { names, .. }) = (&e.confusion, &test.targets) {
            if names.len() <= 12 {
                println!("{}", c.table(names));
            }
        }
        if e.accuracy.is_finite() {
            println!(
                "test accuracy {} on {} samples of {} (loss {:.4})",
                pct(e.accuracy),
                test.len(),
                name,
                e.loss
            );
        } else if let Some(s) = &scores {
            println!(
                "test {} on {} samples of {}",
                scores_line(s),
                test.len(),
                name
            );
        } else {
            println!(
                "test loss {:.5} on {} samples of {}",
                e.loss,
                test.len(),
                name
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
