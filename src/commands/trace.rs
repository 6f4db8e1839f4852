//! `backprop trace`: one step of backpropagation in the lectures' notation.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use backprop_data::Targets;
use backprop_nn::{Module, Sequential};
use backprop_train::trace::{trace as run_trace, TraceCost};
use backprop_train::trace_bptt::bptt_trace;
use backprop_train::{LossKind, ModelSpec, SavedModel};

use super::{flag_error, load_saved_model, model_choice, saved_test_set};
use crate::args::{ModelArgs, TraceArgs};

/// The model to trace (in f64), the input, the label of a test sample, and the loss a saved
/// model was trained with.
struct Traced {
    model: Sequential<f64>,
    input: Vec<f64>,
    label: Option<usize>,
    trained_loss: Option<LossKind>,
}

pub fn trace(a: TraceArgs) -> Result<ExitCode> {
    if !(a.lr.is_finite() && a.lr >= 0.0) {
        bail!("--lr {}: must be a non-negative number", a.lr);
    }
    let (model, input, cost) = prepare(&a)?;
    // a recurrent network is traced through time, an MLP layer by layer
    let recurrent = model.layers().any(|(_, l)| {
        l.as_any()
            .is_some_and(|m| m.is::<backprop_nn::Recurrent<f64>>())
    });
    if recurrent {
        let trace = bptt_trace(&model, &input, &cost, a.lr).map_err(|e| anyhow!(e))?;
        if a.json {
            println!("{}", serde_json::to_string(&trace)?);
        } else {
            print!("{trace}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let trace = run_trace(&model, &input, &cost, a.lr).map_err(|e| anyhow!(e))?;
    if a.json {
        println!("{}", serde_json::to_string(&trace)?);
    } else {
        print!("{trace}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The model (in f64), the input and the cost that `--model`/`--model-path`, `--input`/
/// `--index`, `--target` and `--loss` describe (shared with `backprop graph`).
pub(super) fn prepare(a: &TraceArgs) -> Result<(Sequential<f64>, Vec<f64>, TraceCost)> {
    let t = match (&a.model, &a.model_path) {
        (Some(spec), None) => from_spec(spec, a)?,
        (None, Some(path)) => from_saved(&load_saved_model(path)?, a)?,
        _ => bail!("give either --model SPEC or --model-path MODEL"),
    };
    if t.input.is_empty() {
        bail!("--input or --index: nothing to trace");
    }
    let cost = cost(a, &t)?;
    Ok((t.model, t.input, cost))
}

fn from_spec(spec_name: &str, a: &TraceArgs) -> Result<Traced> {
    if a.input.is_empty() {
        bail!("--input: give the input values, e.g. --input 0.35,0.9");
    }
    let m = ModelArgs {
        model: spec_name.to_string(),
        hidden: None,
        activation: None,
        dropout: 0.0,
    };
    let spec = model_choice(&m)?.spec(0).map_err(flag_error)?;
    // the width the spec's first layer states (through `in` or explicit weights)
    let stated = match spec.layers.first() {
        Some(backprop_train::LayerSpec::Linear(c)) => c
            .inputs
            .or_else(|| c.weight.as_ref().and_then(|w| w.first().map(Vec::len))),
        _ => None,
    };
    if let Some(k) = stated.filter(|&k| k != a.input.len()) {
        bail!(
            "--input: the input has {} values but the model's first layer takes {k}",
            a.input.len()
        );
    }
    let built = spec
        .build_shaped::<f64>(a.input.len(), None, None, 0)
        .map_err(|e| anyhow!("--model {spec_name}: {e}"))?;
    Ok(Traced {
        model: built.model,
        input: a.input.clone(),
        label: None,
        trained_loss: None,
    })
}

fn from_saved(saved: &SavedModel, a: &TraceArgs) -> Result<Traced> {
    let spec: ModelSpec = serde_json::from_str(&saved.meta["backprop.spec"])?;
    let built = spec
        .build_shaped::<f64>(saved.inputs, saved.image_shape, None, 0)
        .map_err(|e| anyhow!("--model-path: {e}"))?;
    for ((_, p64), (_, p32)) in built.model.params().iter().zip(saved.model.params()) {
        p64.set_value(p32.value().cast());
    }
    let (input, label) = match a.index {
        Some(i) => {
            let (_, test) = saved_test_set(saved, &a.data)?;
            if i >= test.len() {
                bail!("--index {i}: the test split has {} samples", test.len());
            }
            let f = test.features();
            let label = match &test.targets {
                Targets::Classes { labels, .. } => Some(labels[i]),
                Targets::Values(_) => None,
            };
            let x = test.x.data()[i * f..(i + 1) * f]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            (x, label)
        }
        None => (a.input.clone(), None),
    };
    Ok(Traced {
        model: built.model,
        input,
        label,
        trained_loss: saved.loss(),
    })
}

/// The cost: `--loss`, else the model's own, else the lectures' squared cost.
fn cost(a: &TraceArgs, t: &Traced) -> Result<TraceCost> {
    let loss = a.loss.or(t.trained_loss).unwrap_or(LossKind::Squared);
    Ok(match loss {
        LossKind::Squared => {
            let target = if !a.target.is_empty() {
                a.target.clone()
            } else if let Some(k) = t.label {
                let outputs = t
                    .model
                    .params()
                    .iter()
                    .rev()
                    .find(|(n, _)| n.ends_with("weight"))
                    .map_or(0, |(_, p)| p.shape()[0]);
                (0..outputs).map(|j| f64::from(u8::from(j == k))).collect()
            } else {
                bail!("--target: give the target values for the squared cost");
            };
            TraceCost::Squared(target)
        }
        LossKind::CrossEntropy => {
            let k = match (a.target.as_slice(), t.label) {
                ([t], _) if *t >= 0.0 && t.fract() == 0.0 => *t as usize,
                ([], Some(k)) => k,
                _ => bail!("--target: cross-entropy needs one class index"),
            };
            TraceCost::CrossEntropy(k)
        }
        other => bail!("--loss {other}: trace supports squared and cross-entropy"),
    })
}
