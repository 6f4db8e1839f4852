//! The subcommands, one file each. Each is a short pipeline: parse → config → run → report.
//! This module holds what they share: flags into typed settings, saved models and their
//! test data, number formatting.

mod datasets;
mod esn;
mod eval;
mod gradcheck;
mod predict;
mod som;
mod summary;
mod trace;
mod train;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use backprop_data::{Dataset, Task, SYNTHETIC};
use backprop_train::run::{DataConfig, DataSource, LoadedData};
use backprop_train::{ConfigError, Field, ModelChoice, SavedModel};
use serde_json::{json, Value};

use crate::args::{DataArgs, ModelArgs};

pub use datasets::datasets;
pub use esn::esn;
pub use eval::eval;
pub use gradcheck::gradcheck;
pub use predict::predict;
pub use som::som;
pub use summary::summary;
pub use trace::trace;
pub use train::train;

/// The CLI flag of a setting: `batch_size` → `--batch-size`.
pub fn flag(field: Field) -> String {
    format!("--{}", field.name().replace('_', "-"))
}

/// A setting's error as the user typed it: `--lr: -1: must be ...`.
pub fn flag_error(e: ConfigError) -> anyhow::Error {
    anyhow!("{}: {}", flag(e.field), e.message)
}

/// Sizes the global thread pool.
pub fn set_threads(n: Option<usize>) -> Result<()> {
    if let Some(n) = n {
        if n == 0 {
            bail!("--threads 0: must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow!("--threads {n}: {e}"))?;
    }
    Ok(())
}

/// Where the data flags point.
pub fn data_config(d: &DataArgs) -> Result<DataConfig> {
    let name = match (&d.dataset, &d.data_dir) {
        (Some(n), _) => n.clone(),
        (None, Some(_)) => "idx".into(),
        (None, None) => "mnist".into(),
    };
    let source = match name.as_str() {
        "mnist" if d.data_dir.is_none() => DataSource::Mnist,
        "mnist" | "idx" => match &d.data_dir {
            Some(dir) => DataSource::Idx(dir.clone()),
            None => bail!("--dataset idx needs --data-dir DIR with train-/t10k- IDX files"),
        },
        n if SYNTHETIC.contains(&n) => DataSource::Synthetic {
            name: n.to_string(),
            samples: d.samples,
            noise: d.noise,
        },
        n if n.ends_with(".csv") || Path::new(n).is_file() => DataSource::Csv {
            path: PathBuf::from(n),
            label_column: d.label_column.clone(),
            task: match d.task.as_str() {
                "classification" => Task::Classification,
                "regression" => Task::Regression,
                other => bail!("--task {other}: choose classification or regression"),
            },
        },
        n => bail!(
            "--dataset {n}: unknown dataset; use mnist, idx (with --data-dir), one of {}, or a .csv file (see `backprop datasets`)",
            SYNTHETIC.join(", ")
        ),
    };
    Ok(DataConfig {
        source,
        encoding: Some(d.encoding.clone()),
        limit: d.limit,
    })
}

/// Reads the data the flags name (`recorded`: a saved model's input encoding).
pub fn load_data(
    d: &DataArgs,
    seed: u64,
    recorded: Option<&Value>,
    need_train: bool,
) -> Result<LoadedData> {
    data_config(d)?
        .load(seed, recorded, need_train)
        .map_err(flag_error)
}

/// The model the flags describe.
pub fn model_choice(m: &ModelArgs) -> Result<ModelChoice> {
    let quick = m.hidden.is_some() || m.activation.is_some() || m.dropout > 0.0;
    if m.model == "mlp" {
        if !quick {
            return Ok(ModelChoice::Preset("mlp".into()));
        }
        let activation = m.activation.clone().unwrap_or_else(|| "relu".into());
        return Ok(ModelChoice::Mlp {
            hidden: m.hidden.clone().unwrap_or_else(|| vec![256, 128]),
            activation,
            dropout: m.dropout,
        });
    }
    if quick {
        bail!(
            "--hidden, --activation and --dropout shape the mlp preset; they cannot be combined with --model {}",
            m.model
        );
    }
    let path = Path::new(&m.model);
    if path.extension().is_some_and(|e| e == "json" || e == "toml") || path.exists() {
        return Ok(ModelChoice::SpecFile(path.to_path_buf()));
    }
    Ok(ModelChoice::Preset(m.model.clone()))
}

/// Loads and rebuilds a model saved by `train` (a file or its run directory).
pub fn load_saved_model(path: &Path) -> Result<SavedModel> {
    SavedModel::load(path).map_err(|e| anyhow!("--model-path {e}"))
}

/// The data flags, filled from a saved model where the user gave none.
fn data_for(saved: &SavedModel, d: &DataArgs) -> DataArgs {
    let mut d = d.clone();
    if d.dataset.is_none() && d.data_dir.is_none() {
        match saved.meta.get("backprop.dataset").map(String::as_str) {
            Some("idx") => d.data_dir = saved.meta.get("backprop.data_dir").map(PathBuf::from),
            Some(name) => d.dataset = Some(name.to_string()),
            None => {}
        }
    }
    d
}

/// The test split of the data a saved model was trained on (or of the data the flags name),
/// encoded as in training.
pub fn saved_test_set(saved: &SavedModel, flags: &DataArgs) -> Result<(String, Dataset)> {
    let d = data_for(saved, flags);
    let enc = (saved.encoding.get("encoding").and_then(|e| e.as_str()) != Some("none"))
        .then_some(&saved.encoding);
    let loaded = load_data(&d, 0, enc, false)?;
    let test = loaded
        .test
        .ok_or_else(|| anyhow!("the dataset has no test split"))?;
    Ok((loaded.name, test))
}

/// `0.9826` → `98.26%`.
pub fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

/// A number, or JSON null when it is not finite.
pub fn num_or_null(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}
