//! `backprop gradcheck`: a model's gradients against central differences in f64.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use backprop_autograd::{gradcheck_vars, GradcheckOptions, GradcheckReport, Var};
use backprop_data::BatchTargets;
use backprop_nn::{Mode, Module};
use backprop_tensor::{Rng, Tensor};
use backprop_train::{batch_loss, LossKind};
use serde_json::{json, Value};

use super::summary::dims_for;
use super::{flag_error, model_choice};
use crate::args::GradcheckArgs;

pub fn gradcheck(a: GradcheckArgs) -> Result<ExitCode> {
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let (inputs, outputs, image) = dims_for(&a.model, &a.data, a.inputs, a.outputs)?;
    let spec = model_choice(&a.model)?.spec(outputs).map_err(flag_error)?;
    let built = spec
        .build_shaped::<f64>(inputs, image, Some(outputs), a.seed)
        .map_err(|e| anyhow!("--model {}: {e}", a.model.model))?;
    let model = built.model;
    let loss = a.loss.unwrap_or(if outputs == 1 {
        LossKind::Squared
    } else {
        LossKind::CrossEntropy
    });
    let mut rng = Rng::seed(a.seed ^ 0x6C);
    let x = Var::constant(Tensor::<f64>::rand_normal(
        &[a.batch, inputs],
        0.0,
        1.0,
        &mut rng,
    ));
    let labels: Vec<usize> = (0..a.batch).map(|_| rng.below(outputs.max(1))).collect();
    let params = model.params();
    let vars: Vec<Var<f64>> = params.iter().map(|(_, p)| p.clone()).collect();
    let f = || {
        model.reseed(a.seed);
        let out = model.forward(&x, Mode::Train);
        batch_loss(loss, &out, &BatchTargets::Classes(labels.clone()))
    };
    let opts = GradcheckOptions {
        max_elements: (a.max_elements > 0).then_some(a.max_elements),
        ..Default::default()
    };
    let report = gradcheck_vars(f, &vars, opts);
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    print_report(&report, &names, a.json);
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The per-parameter table (or one JSON object) and the verdict.
fn print_report(report: &GradcheckReport, names: &[&str], json: bool) {
    if json {
        let ps: Vec<Value> = report
            .inputs
            .iter()
            .zip(names)
            .map(|(r, n)| json!({"name": n, "shape": r.shape, "max_abs_err": r.max_abs_err, "max_rel_err": r.max_rel_err, "kinks": r.kinks, "passed": r.passed}))
            .collect();
        println!(
            "{}",
            json!({"passed": report.passed(), "max_abs_err": report.max_abs_err(), "max_rel_err": report.max_rel_err(), "kinks": report.kinks(), "parameters": ps})
        );
    } else {
        println!(
            "{:<16} {:<14} {:>12} {:>12} {:>6}  result",
            "parameter", "shape", "max abs err", "max rel err", "kinks"
        );
        for (r, n) in report.inputs.iter().zip(names) {
            println!(
                "{:<16} {:<14} {:>12.3e} {:>12.3e} {:>6}  {}",
                n,
                format!("{:?}", r.shape),
                r.max_abs_err,
                r.max_rel_err,
                r.kinks,
                if r.passed { "ok" } else { "FAIL" }
            );
        }
        if report.kinks() > 0 {
            println!(
                "{} element(s) sit at a kink (a ReLU input or a max-pool tie within the difference step): not judged",
                report.kinks()
            );
        }
        println!(
            "{}",
            if report.passed() {
                "gradcheck passed"
            } else {
                "gradcheck FAILED"
            }
        );
    }
}
