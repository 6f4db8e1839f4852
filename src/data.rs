//! Resolving `--dataset` / `--data-dir` into training and test sets.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use backprop_data::{
    digit_names, load_csv, load_idx_pair, synthetic, CsvOptions, Dataset, Encoding, LabelColumn,
    Task, SYNTHETIC,
};
use serde_json::{json, Value};

use crate::DataArgs;

/// What `load` found.
pub struct Loaded {
    pub name: String,
    pub train: Dataset,
    pub test: Option<Dataset>,
    /// How inputs were encoded, as recorded in checkpoints.
    pub encoding: Value,
    /// Where IDX files came from, if anywhere.
    pub data_dir: Option<PathBuf>,
}

/// The shipped MNIST: `data/mnist` under the working directory, else under the source tree.
pub fn default_mnist_dir() -> PathBuf {
    let local = PathBuf::from("data/mnist");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
    }
}

/// The encoding recorded in a model's metadata.
pub fn encoding_from(v: &Value) -> Result<Encoding> {
    backprop_train::saved::encoding_from_json(v).map_err(|e| anyhow!(e))
}

fn encoding_json(e: &Encoding) -> Value {
    backprop_train::saved::encoding_to_json(e)
}

/// Loads the data `args` name. `recorded` is the encoding saved with a model, which then
/// takes precedence so a model sees inputs encoded as in training.
pub fn load(
    args: &DataArgs,
    seed: u64,
    recorded: Option<&Value>,
    need_train: bool,
) -> Result<Loaded> {
    let name = match (&args.dataset, &args.data_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(_)) => "idx".to_string(),
        (None, None) => "mnist".to_string(),
    };
    let mut loaded = if name == "mnist" || name == "idx" {
        let dir = match (&args.data_dir, name.as_str()) {
            (Some(d), _) => d.clone(),
            (None, "mnist") => default_mnist_dir(),
            (None, _) => bail!("--dataset idx needs --data-dir DIR with train-/t10k- IDX files"),
        };
        if !dir.is_dir() {
            bail!("--data-dir {}: no such directory", dir.display());
        }
        let test_raw = load_idx_pair(&dir, "t10k")?;
        let train_raw = if need_train {
            Some(load_idx_pair(&dir, "train")?)
        } else {
            None
        };
        let classes = train_raw
            .as_ref()
            .map_or(0, |t| t.num_classes())
            .max(test_raw.num_classes())
            .max(2);
        let encoding = match recorded {
            Some(v) => encoding_from(v)?,
            None => match Encoding::parse(&args.encoding) {
                Some("grey") => Encoding::Grey,
                Some("binary") => Encoding::Binary,
                Some(_) => {
                    Encoding::standardized_from(&train_raw.as_ref().unwrap_or(&test_raw).pixels)
                }
                None => bail!(
                    "--encoding {}: choose grey, standardized or binary",
                    args.encoding
                ),
            },
        };
        let dname = if name == "mnist" {
            "mnist".to_string()
        } else {
            dir.display().to_string()
        };
        let train = match train_raw {
            Some(r) => r.into_dataset(&dname, encoding, digit_names(classes))?,
            None => test_raw
                .clone()
                .into_dataset(&dname, encoding, digit_names(classes))?,
        };
        let test = test_raw.into_dataset(&dname, encoding, digit_names(classes))?;
        Loaded {
            name: if name == "mnist" { name } else { "idx".into() },
            train,
            test: Some(test),
            encoding: encoding_json(&encoding),
            data_dir: Some(dir),
        }
    } else if SYNTHETIC.contains(&name.as_str()) {
        if args.samples < 2 {
            bail!(
                "--samples {}: a synthetic set needs at least 2 samples",
                args.samples
            );
        }
        if !(args.noise.is_finite() && args.noise >= 0.0) {
            bail!("--noise {}: must be a non-negative number", args.noise);
        }
        let train = synthetic(&name, args.samples, args.noise, seed)?;
        let test = synthetic(
            &name,
            args.samples,
            args.noise,
            seed.wrapping_add(1_000_003),
        )?;
        Loaded {
            name,
            train,
            test: Some(test),
            encoding: json!({"encoding": "none"}),
            data_dir: None,
        }
    } else if name.ends_with(".csv") || Path::new(&name).is_file() {
        let task = match args.task.as_str() {
            "classification" => Task::Classification,
            "regression" => Task::Regression,
            other => bail!("--task {other}: choose classification or regression"),
        };
        let opts = CsvOptions {
            label: args
                .label_column
                .as_deref()
                .map_or(LabelColumn::Last, LabelColumn::parse),
            header: None,
            task,
        };
        let all = load_csv(Path::new(&name), &opts)?;
        if all.len() < 5 {
            bail!(
                "{name}: {} rows are too few to train and test on (at least 5)",
                all.len()
            );
        }
        // hold out a fifth as the test set
        let (train, test) = all
            .split(all.len() / 5, seed ^ 0x7E57)
            .context("cannot hold out a test set")?;
        Loaded {
            name: name.clone(),
            train,
            test: Some(test),
            encoding: json!({"encoding": "none"}),
            data_dir: None,
        }
    } else {
        bail!("--dataset {name}: unknown dataset; use mnist, idx (with --data-dir), one of {}, or a .csv file (see `backprop datasets`)", SYNTHETIC.join(", "));
    };
    if let Some(n) = args.limit {
        if n == 0 {
            bail!("--limit must be at least 1");
        }
        let n = n.min(loaded.train.len());
        loaded.train = loaded.train.subset(&(0..n).collect::<Vec<_>>());
    }
    Ok(loaded)
}
