//! Weights written elsewhere, into a model built here: a safetensors state dict (as
//! PyTorch's `safetensors.torch.save_file(model.state_dict(), path)` writes it) is checked
//! name by name and shape by shape against a model built from a spec, and copied in.
//!
//! - Every parameter and buffer of the model must be in the file (PyTorch's names:
//!   `fc1.weight`, `bn1.running_var`), and nothing else may be: missing, unexpected and
//!   mis-shaped tensors are all listed by name in one error.
//! - F64, F16 and BF16 tensors are converted to `f32`; integer or boolean tensors are
//!   refused by name, except PyTorch's batch-norm counter `num_batches_tracked`, which
//!   backprop does not keep and skips.
//! - Training state in the file (`optimizer.*`, `best.*`, as an older backprop checkpoint
//!   holds) is ignored, so a backprop model file imports too.

use std::fmt;
use std::path::Path;

use backprop_nn::Module;

use crate::checkpoint::{is_training_tensor, Checkpoint};

/// The suffix of PyTorch's batch-norm step counter (an `int64` scalar), which is skipped.
pub const NUM_BATCHES_TRACKED: &str = "num_batches_tracked";

/// Why a state dict does not fit a model; every problem is listed, each naming its tensor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportError {
    /// The file.
    pub file: String,
    /// The file is unreadable or not safetensors (then the lists are empty).
    pub unreadable: Option<String>,
    /// Tensors of a dtype that is not floating point: `"fc1.weight" (I32)`.
    pub dtypes: Option<String>,
    /// The model's tensors that the file lacks.
    pub missing: Vec<String>,
    /// The file's tensors that the model has no place for.
    pub unexpected: Vec<String>,
    /// `(name, shape in the file, shape in the model)`.
    pub mis_shaped: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            write!(f, "{}: ", self.file)?;
        }
        if let Some(e) = self.unreadable.as_ref().or(self.dtypes.as_ref()) {
            return f.write_str(e);
        }
        f.write_str("the state dict does not fit the model spec:")?;
        if !self.missing.is_empty() {
            write!(f, " missing {}", quoted(&self.missing))?;
            f.write_str(";")?;
        }
        if !self.unexpected.is_empty() {
            write!(f, " unexpected {}", quoted(&self.unexpected))?;
            f.write_str(";")?;
        }
        for (n, file, model) in &self.mis_shaped {
            write!(
                f,
                " {n:?} has shape {file:?} in the file but {model:?} in the model;"
            )?;
        }
        f.write_str(" (`backprop summary` with the same model flags lists the names and shapes the spec builds)")
    }
}
impl std::error::Error for ImportError {}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What an import did besides copying.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// Tensors copied.
    pub tensors: usize,
    /// Tensors skipped (`num_batches_tracked`, training state).
    pub skipped: Vec<String>,
}

/// Reads the safetensors state dict at `path` into `model`'s parameters and buffers.
/// Nothing is copied unless every tensor fits.
///
/// # Errors
/// An [`ImportError`] listing every missing, unexpected, mis-shaped or non-float tensor.
pub fn import_state_dict(
    model: &dyn Module<f32>,
    path: &Path,
) -> Result<ImportReport, ImportError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ImportError {
        file: file.clone(),
        unreadable: Some(format!("cannot read the state dict: {e}")),
        ..Default::default()
    })?;
    import_bytes(model, &bytes).map_err(|e| ImportError { file, ..e })
}

/// As [`import_state_dict`], from the file's bytes (the error's `file` is empty).
///
/// # Errors
/// As [`import_state_dict`].
pub fn import_bytes(model: &dyn Module<f32>, bytes: &[u8]) -> Result<ImportReport, ImportError> {
    let skip = |n: &str| n.rsplit('.').next() == Some(NUM_BATCHES_TRACKED) || is_training_tensor(n);
    let ck = Checkpoint::from_bytes_skipping(bytes, skip).map_err(|e| {
        if e.starts_with("tensors of a dtype") {
            ImportError {
                dtypes: Some(e),
                ..Default::default()
            }
        } else {
            ImportError {
                unreadable: Some(format!("not a safetensors file: {e}")),
                ..Default::default()
            }
        }
    })?;
    let wanted: Vec<(String, backprop_autograd::Var<f32>)> =
        model.params().into_iter().chain(model.buffers()).collect();
    let mut err = ImportError::default();
    for (name, v) in &wanted {
        match ck.get(name) {
            None => err.missing.push(name.clone()),
            Some(t) if t.shape() != v.shape().as_slice() => {
                err.mis_shaped
                    .push((name.clone(), t.shape().to_vec(), v.shape()))
            }
            Some(_) => {}
        }
    }
    for (name, _) in &ck.tensors {
        if wanted.iter().all(|(n, _)| n != name) {
            err.unexpected.push(name.clone());
        }
    }
    if !(err.missing.is_empty() && err.unexpected.is_empty() && err.mis_shaped.is_empty()) {
        return Err(err);
    }
    for (name, v) in &wanted {
        v.set_value(ck.get(name).expect("checked above").clone());
    }
    let all = safetensors_names(bytes);
    let skipped = all.into_iter().filter(|n| skip(n)).collect();
    Ok(ImportReport {
        tensors: wanted.len(),
        skipped,
    })
}

fn safetensors_names(bytes: &[u8]) -> Vec<String> {
    safetensors::SafeTensors::read_metadata(bytes)
        .map(|(_, m)| m.offset_keys())
        .unwrap_or_default()
}
