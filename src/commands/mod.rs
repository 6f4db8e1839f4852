//! The subcommands, one file each. Each is a short pipeline: parse → config → run → report.
//! This module holds what they share: flags into typed settings, saved models and their
//! test data, number formatting.

mod datasets;
mod esn;
mod eval;
mod export;
mod generate;
mod gradcheck;
mod graph;
mod import;
mod lr_find;
mod predict;
mod rbf;
mod som;
mod summary;
mod trace;
mod train;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use backprop_data::{Dataset, LabelColumn, TableOptions, TableSchema, SYNTHETIC};
use backprop_train::run::{DataConfig, DataSource, LoadedData, SequenceTask};
use backprop_train::{ConfigError, Field, ModelChoice, SavedModel};
use serde_json::{json, Value};

use crate::args::{DataArgs, ModelArgs};

pub use datasets::datasets;
pub use esn::esn;
pub use eval::eval;
pub use export::export;
pub use generate::generate;
pub use gradcheck::gradcheck;
pub use graph::graph;
pub use import::import;
pub use lr_find::lr_find;
pub use predict::predict;
pub use rbf::rbf;
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

/// The stack of each pool thread: a training step runs on one (`Trainer::step`), and the
/// graph of a long unrolled sequence is dropped recursively, so the workers get the main
/// thread's usual 8 MiB rather than rayon's 2 MiB (address space; pages are used only as
/// touched).
pub const POOL_STACK: usize = 8 << 20;

/// Sizes the global thread pool (`n` threads, or rayon's default count) and its stacks.
pub fn set_threads(n: Option<usize>) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new().stack_size(POOL_STACK);
    match n {
        Some(0) => bail!("--threads 0: must be at least 1"),
        Some(n) => pool
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow!("--threads {n}: {e}"))?,
        // the default count: if the pool already exists, it stays as it is
        None => drop(pool.build_global()),
    }
    Ok(())
}

/// Refuses an unknown `--encoding`, and one given for data that is not images: a setting is
/// never silently dropped.
fn check_encoding(d: &DataArgs, source: &DataSource) -> Result<()> {
    let images = matches!(source, DataSource::Mnist | DataSource::Idx(_));
    if let Some(e) = &d.encoding {
        if backprop_data::Encoding::parse(e).is_none() {
            bail!("--encoding {e}: choose grey, standardized or binary");
        }
        if !images {
            bail!("--encoding {e}: applies to images (mnist, idx); a CSV table's columns are scaled with --scale, a 2-D set's are used as they are");
        }
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
        n if SequenceTask::parse(n).is_some() => DataSource::Sequence {
            task: SequenceTask::parse(n).expect("parsed"),
            steps: d.steps,
            samples: d.samples,
        },
        n if n.ends_with(".csv") || Path::new(n).is_file() => DataSource::Csv {
            path: PathBuf::from(n),
            table: TableOptions {
                label: d
                    .label_column
                    .as_deref()
                    .map_or(LabelColumn::Last, LabelColumn::parse),
                header: None,
                task: d.task,
                scale: d.scale.unwrap_or_default(),
                missing: d.missing.unwrap_or_default(),
                split_seed: d.split_seed.unwrap_or(0),
            },
        },
        n => bail!(
            "--dataset {n}: unknown dataset; use mnist, idx (with --data-dir), one of {}, a .csv file, or a sequence task ({}) (see `backprop datasets`)",
            SYNTHETIC.join(", "),
            SequenceTask::FORMS
        ),
    };
    if let (Some(s), false) = (d.steps, matches!(source, DataSource::Sequence { .. })) {
        bail!(
            "--steps {s}: applies to sequence tasks ({}); the dataset {name} is not one",
            SequenceTask::FORMS
        );
    }
    check_encoding(d, &source)?;
    if !matches!(source, DataSource::Csv { .. }) {
        table_flags_unused(d, &name)?;
    }
    Ok(DataConfig {
        source,
        encoding: d.encoding.clone(),
        limit: d.limit,
    })
}

/// The CSV flags are refused for other data rather than ignored.
fn table_flags_unused(d: &DataArgs, dataset: &str) -> Result<()> {
    let given = [
        ("--label-column", d.label_column.is_some()),
        ("--task", d.task.is_some()),
        ("--scale", d.scale.is_some()),
        ("--missing", d.missing.is_some()),
        ("--split-seed", d.split_seed.is_some()),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
        bail!("{flag} applies to CSV files; the dataset {dataset} is not one");
    }
    Ok(())
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
    // a sequence task's steps follow from the model's input length
    if let (None, Some(task)) = (d.steps, d.dataset.as_deref().and_then(SequenceTask::parse)) {
        let length = saved
            .meta
            .get("backprop.image_shape")
            .and_then(|s| serde_json::from_str::<[usize; 3]>(s).ok())
            .map(|s| s[1]);
        d.steps = length.map(|t| task.steps_from_length(t));
    }
    d
}

/// The test split of the data a saved model was trained on (or of the data the flags name),
/// encoded as in training.
pub fn saved_test_set(saved: &SavedModel, flags: &DataArgs) -> Result<(String, Dataset)> {
    if let Some(schema) = saved.table().map_err(|e| anyhow!("--model-path {e}"))? {
        return table_test_set(saved, &schema, flags);
    }
    let d = data_for(saved, flags);
    if matches!(data_config(&d)?.source, DataSource::Csv { .. }) {
        bail!(
            "--model-path {}: the model records no table contract (it was not trained on a CSV file, or by an older backprop that did not scale tables); train it again to evaluate it on a CSV file",
            saved.path.display()
        );
    }
    let enc = (saved.encoding.get("encoding").and_then(|e| e.as_str()) != Some("none"))
        .then_some(&saved.encoding);
    let loaded = load_data(&d, 0, enc, false)?;
    let mut test = loaded
        .test
        .ok_or_else(|| anyhow!("the dataset has no test split"))?;
    if let Some(n) = flags.limit {
        test = test.subset(&(0..n.min(test.len())).collect::<Vec<_>>());
    }
    Ok((loaded.name, test))
}

/// The rows a table model is evaluated on: the test split of its training file (the same
/// rows as in training), or every row of another file given with `--dataset`. The model's
/// data contract fixes the label column, task, scaling and classes, so the flags that set
/// them are refused.
fn table_test_set(
    saved: &SavedModel,
    schema: &TableSchema,
    flags: &DataArgs,
) -> Result<(String, Dataset)> {
    let fixed = [
        ("--label-column", flags.label_column.is_some()),
        ("--task", flags.task.is_some()),
        ("--scale", flags.scale.is_some()),
        ("--missing", flags.missing.is_some()),
        ("--split-seed", flags.split_seed.is_some()),
        ("--encoding", flags.encoding.is_some()),
        ("--data-dir", flags.data_dir.is_some()),
    ];
    if let Some((flag, _)) = fixed.iter().find(|(_, g)| *g) {
        bail!("{flag}: the model was trained on a CSV file and records its data contract (label column {:?}, task, scaling, classes); this flag cannot change it", schema.label);
    }
    let trained_on = saved
        .meta
        .get("backprop.dataset")
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("--model-path {}: no dataset recorded", saved.path.display()))?;
    let same = |p: &Path| {
        p == trained_on
            || matches!((p.canonicalize(), trained_on.canonicalize()), (Ok(a), Ok(b)) if a == b)
    };
    let (path, split) = match &flags.dataset {
        None => (trained_on.clone(), true),
        Some(p) => (PathBuf::from(p), same(Path::new(p))),
    };
    let data = schema
        .labelled(&path, split)
        .map_err(|e| anyhow!("--dataset {e}"))?;
    let name = if split {
        format!("{} (test split)", path.display())
    } else {
        format!("{} (all rows)", path.display())
    };
    Ok((name, data))
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
