//! `backprop summary`: layers, output shapes and parameter counts.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use backprop_nn::Summary;
use backprop_train::ModelChoice;
use serde_json::{json, Value};

use backprop_train::DataSource;

use super::{data_config, flag_error, load_data, load_saved_model, model_choice};
use crate::args::{DataArgs, ModelArgs, SummaryArgs};

/// Input width, output width and image shape: from the flags, else from a spec file that
/// states its input width (when no dataset is named), else from the dataset.
pub fn dims_for(
    model: &ModelArgs,
    data: &DataArgs,
    inputs: Option<usize>,
    outputs: Option<usize>,
) -> Result<(usize, usize, Option<[usize; 3]>)> {
    for (flag, v) in [("--inputs", inputs), ("--outputs", outputs)] {
        if v == Some(0) {
            bail!("{flag} 0: a layer needs at least one unit");
        }
    }
    let no_data = data.dataset.is_none() && data.data_dir.is_none();
    if let (None, true, ModelChoice::SpecFile(_)) = (inputs, no_data, model_choice(model)?) {
        let spec = model_choice(model)?.spec(0).map_err(flag_error)?;
        if let Some(i) = spec.stated_inputs() {
            let o = match outputs {
                Some(o) => o,
                None => spec
                    .plan(i, None, None)
                    .map_err(|e| anyhow!("--model {}: {e}", model.model))?
                    .outputs(),
            };
            return Ok((i, o, None));
        }
    }
    if let (Some(i), Some(o)) = (inputs, outputs) {
        // a square single-channel image if the width is a square number
        let side = (i as f64).sqrt().round() as usize;
        return Ok((
            i,
            o,
            (side * side == i && side > 1).then_some([1, side, side]),
        ));
    }
    let loaded = load_data(data, 0, None, false)?;
    Ok((
        inputs.unwrap_or(loaded.train.features()),
        outputs.unwrap_or(loaded.train.outputs()),
        loaded.train.image_shape,
    ))
}

pub fn summary(a: SummaryArgs) -> Result<ExitCode> {
    let (model, inputs) = if let Some(p) = &a.model_path {
        let s = load_saved_model(p)?;
        (s.model, s.inputs)
    } else {
        let (inputs, outputs, image) = dims_for(&a.model, &a.data, a.inputs, a.outputs)?;
        let table = matches!(data_config(&a.data)?.source, DataSource::Csv { .. });
        let spec = model_choice(&a.model)?
            .spec_for(outputs, table)
            .map_err(flag_error)?;
        let built = spec
            .build_shaped::<f32>(inputs, image, Some(outputs), 0)
            .map_err(|e| anyhow!("--model {}: {e}", a.model.model))?;
        (built.model, inputs)
    };
    let s = Summary::of_sequential(&model, &[1, inputs]);
    if a.json {
        let layers: Vec<Value> = s.rows.iter().map(|r| json!({"name": r.name, "type": r.kind, "output_shape": r.output_shape, "params": r.params})).collect();
        println!(
            "{}",
            json!({"input_shape": s.input_shape, "layers": layers, "total_params": s.total_params, "weights": s.weights, "biases": s.biases})
        );
    } else {
        println!("{s}");
    }
    Ok(ExitCode::SUCCESS)
}
