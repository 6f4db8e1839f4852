//! A trained model on disk: the metadata `backprop train` writes next to the weights, and
//! rebuilding the network from a checkpoint. The CLI's `eval`, `predict`, `trace` and the
//! playground's digits page all load models this way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use backprop_data::{Dataset, Encoding, TableSchema, Targets};
use backprop_nn::Sequential;
use serde_json::{json, Value};

use crate::checkpoint::Checkpoint;
use crate::spec::ModelSpec;
use crate::trainer::load_weights;

/// A model rebuilt from a checkpoint written by `backprop train`.
pub struct SavedModel {
    /// The network, with the saved weights.
    pub model: Sequential<f32>,
    /// The checkpoint's metadata.
    pub meta: BTreeMap<String, String>,
    /// Input width.
    pub inputs: usize,
    /// Class names (empty for regression).
    pub classes: Vec<String>,
    /// How inputs were encoded in training, as recorded (`{"encoding": "grey"}`...).
    pub encoding: Value,
    /// `[C, H, W]` of image inputs.
    pub image_shape: Option<[usize; 3]>,
    /// The file it came from.
    pub path: PathBuf,
}

impl SavedModel {
    /// Loads `path`: a checkpoint file, or a run directory holding `model.safetensors`.
    ///
    /// # Errors
    /// If the file is unreadable, not a checkpoint, lacks backprop's metadata, or its
    /// weights do not fit its spec; the message starts with the file's name.
    pub fn load(path: &Path) -> Result<SavedModel, String> {
        let file = if path.is_dir() {
            path.join("model.safetensors")
        } else {
            path.to_path_buf()
        };
        let ck = Checkpoint::load_model(&file)?;
        Self::from_checkpoint(ck, file)
    }

    /// Rebuilds the model of a checkpoint read from `file` (which names it in errors).
    ///
    /// # Errors
    /// As [`SavedModel::load`], after the file was read.
    pub fn from_checkpoint(ck: Checkpoint, file: PathBuf) -> Result<SavedModel, String> {
        let shown = file.display();
        let get = |k: &str| {
            ck.metadata
                .get(k)
                .ok_or_else(|| format!("{shown}: not a backprop model (no {k} metadata)"))
        };
        let spec: ModelSpec = serde_json::from_str(get("backprop.spec")?)
            .map_err(|e| format!("{shown}: unreadable model spec: {e}"))?;
        let inputs: usize = get("backprop.inputs")?
            .parse()
            .map_err(|_| format!("{shown}: bad input width"))?;
        let classes: Vec<String> =
            serde_json::from_str(get("backprop.classes")?).unwrap_or_default();
        let encoding: Value =
            serde_json::from_str(get("backprop.normalization")?).unwrap_or(Value::Null);
        let image_shape: Option<[usize; 3]> = ck
            .metadata
            .get("backprop.image_shape")
            .and_then(|s| serde_json::from_str(s).ok());
        let built = spec
            .build_shaped::<f32>(inputs, image_shape, None, 0)
            .map_err(|e| format!("{shown}: {e}"))?;
        load_weights(&built.model, &ck).map_err(|e| format!("{shown}: {e}"))?;
        Ok(SavedModel {
            model: built.model,
            meta: ck.metadata,
            inputs,
            classes,
            encoding,
            image_shape,
            path: file,
        })
    }

    /// The loss the model was trained with, if its metadata records it (`backprop.loss`, or
    /// the training state inside a checkpoint written before the state dict was split).
    pub fn loss(&self) -> Option<crate::LossKind> {
        if let Some(l) = self.meta.get("backprop.loss") {
            return serde_json::from_str(l).ok();
        }
        let state: Value = serde_json::from_str(self.meta.get("backprop.training")?).ok()?;
        serde_json::from_value(state["config"]["loss"].clone()).ok()
    }

    /// The data contract of a model trained on a table (label column, task, classes,
    /// feature columns with their scaling and categories), if it was.
    ///
    /// # Errors
    /// If the record is there but unreadable.
    pub fn table(&self) -> Result<Option<TableSchema>, String> {
        table_from_metadata(&self.meta).map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// The recorded input encoding.
    ///
    /// # Errors
    /// If the record is missing or unknown.
    pub fn input_encoding(&self) -> Result<Encoding, String> {
        encoding_from_json(&self.encoding)
    }
}

/// Reads an encoding recorded by [`encoding_to_json`].
///
/// # Errors
/// If the record names no known encoding or lacks a field.
///
/// ```
/// use backprop_data::Encoding;
/// use backprop_train::saved::{encoding_from_json, encoding_to_json};
/// let e = Encoding::Standardized { mean: 0.1, std: 0.3 };
/// assert_eq!(encoding_from_json(&encoding_to_json(&e)).unwrap(), e);
/// assert!(encoding_from_json(&serde_json::json!({"encoding": "sepia"})).is_err());
/// ```
pub fn encoding_from_json(v: &Value) -> Result<Encoding, String> {
    let field = |k: &str| {
        v.get(k)
            .and_then(Value::as_f64)
            .map(|x| x as f32)
            .ok_or_else(|| format!("standardized encoding without a {k}"))
    };
    Ok(match v.get("encoding").and_then(Value::as_str) {
        Some("grey") => Encoding::Grey,
        Some("binary") => Encoding::Binary,
        Some("standardized") => Encoding::Standardized {
            mean: field("mean")?,
            std: field("std")?,
        },
        other => return Err(format!("unknown input encoding {other:?} in the model")),
    })
}

/// The record of an encoding kept in a model's metadata.
pub fn encoding_to_json(e: &Encoding) -> Value {
    match e {
        Encoding::Grey => json!({"encoding": "grey"}),
        Encoding::Binary => json!({"encoding": "binary"}),
        Encoding::Standardized { mean, std } => {
            json!({"encoding": "standardized", "mean": mean, "std": std})
        }
    }
}

/// The metadata `backprop train` stores with a model trained on `train` (named `dataset`,
/// from `data_dir` for IDX data), so that [`SavedModel::load`] can rebuild it and `eval` or
/// `predict` can encode inputs the same way.
pub fn model_metadata(
    spec: &ModelSpec,
    dataset: &str,
    train: &Dataset,
    encoding: &Value,
    data_dir: Option<&Path>,
) -> BTreeMap<String, String> {
    let classes: Vec<String> = match &train.targets {
        Targets::Classes { names, .. } => names.clone(),
        Targets::Values(_) => Vec::new(),
    };
    let mut m = BTreeMap::new();
    m.insert("format".into(), "pt".into());
    m.insert("backprop.version".into(), env!("CARGO_PKG_VERSION").into());
    m.insert(
        "backprop.spec".into(),
        serde_json::to_string(&spec.without_values()).expect("a spec serializes"),
    );
    m.insert("backprop.inputs".into(), train.features().to_string());
    m.insert("backprop.outputs".into(), train.outputs().to_string());
    m.insert(
        "backprop.classes".into(),
        serde_json::to_string(&classes).expect("strings serialize"),
    );
    m.insert("backprop.normalization".into(), encoding.to_string());
    m.insert("backprop.dataset".into(), dataset.to_string());
    if let Some(d) = data_dir {
        m.insert("backprop.data_dir".into(), d.display().to_string());
    }
    if let Some(s) = train.image_shape {
        m.insert(
            "backprop.image_shape".into(),
            serde_json::to_string(&s).expect("numbers serialize"),
        );
    }
    m
}

/// Records a table's data contract in a model's metadata (`backprop.table`, JSON), with
/// the model inputs' names (`backprop.input_names`).
pub fn table_metadata(meta: &mut BTreeMap<String, String>, schema: &TableSchema) {
    meta.insert(
        "backprop.table".into(),
        serde_json::to_string(schema).expect("a schema serializes"),
    );
    meta.insert(
        "backprop.input_names".into(),
        serde_json::to_string(&schema.input_names()).expect("strings serialize"),
    );
}

/// Reads the data contract [`table_metadata`] recorded, if any.
///
/// # Errors
/// If the record is there but unreadable.
///
/// ```
/// use std::collections::BTreeMap;
/// use backprop_data::{load_table_split, Table, TableOptions};
/// use backprop_train::saved::{table_from_metadata, table_metadata};
/// let text = "x,colour,y\n1,red,a\n2,blue,b\n3,red,a\n4,blue,b\n5,red,a\n6,blue,b\n";
/// let table = Table::parse("t.csv".as_ref(), text.as_bytes()).unwrap();
/// let split = load_table_split(table, &TableOptions::default()).unwrap();
/// let mut meta = BTreeMap::new();
/// table_metadata(&mut meta, &split.schema);
/// assert_eq!(table_from_metadata(&meta).unwrap(), Some(split.schema));
/// ```
pub fn table_from_metadata(meta: &BTreeMap<String, String>) -> Result<Option<TableSchema>, String> {
    meta.get("backprop.table")
        .map(|s| serde_json::from_str(s).map_err(|e| format!("unreadable table record: {e}")))
        .transpose()
}
