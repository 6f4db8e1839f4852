//! Checkpoints in the safetensors format, read and written with the `safetensors` crate (the
//! format's reference implementation). Tensors are stored under PyTorch's names
//! (`fc1.weight`, `bn1.running_mean`), so other tools read them as they are.
//!
//! # Two files
//!
//! A checkpoint at `model.safetensors` is split on disk:
//!
//! - `model.safetensors` is a plain state dict: the model's parameters and buffers and
//!   nothing else, which PyTorch's `load_state_dict(strict=True)` accepts as it is. Its
//!   string metadata (`__metadata__`, which PyTorch's loaders ignore) describes the model:
//!   `backprop.spec`, `backprop.inputs`, `backprop.classes`, ... — a plain string map, so a
//!   new entry is one more key.
//! - `model.training.safetensors` beside it ([`training_path`]) holds what only a resumed
//!   run needs: the optimizer's state (`optimizer.*`), the best epoch's weights (`best.*`),
//!   and the training state and history as metadata ([`TRAINING_METADATA_KEYS`]). It
//!   records a digest of the weights it belongs to, so a pair torn by a crash between the
//!   two writes is detected instead of resumed from.
//!
//! In memory a [`Checkpoint`] is still one map of tensors and one of metadata; which file an
//! entry goes to follows from its name ([`is_training_tensor`], [`is_training_key`]). An
//! older single-file checkpoint, with `optimizer.*` tensors inside `model.safetensors`,
//! still loads and resumes; saving it again splits it.
//!
//! Writes are atomic: each file is written under a temporary name in the same directory,
//! flushed to disk, then renamed over the target. A write that fails midway leaves the old
//! file as it was.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use backprop_tensor::Tensor;
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, View};

/// Name prefixes of the tensors that belong to the training state, not to the model.
pub const TRAINING_TENSOR_PREFIXES: &[&str] = &["optimizer.", "best."];

/// Metadata keys of the training state (kept beside the model, not in it).
pub const TRAINING_METADATA_KEYS: &[&str] = &["backprop.training", "backprop.history"];

/// The training file's record of the weights it belongs to.
const DIGEST_KEY: &str = "backprop.model_digest";

/// True if a tensor of this name is training state (optimizer moments, best weights).
pub fn is_training_tensor(name: &str) -> bool {
    TRAINING_TENSOR_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// True if a metadata key is training state.
pub fn is_training_key(key: &str) -> bool {
    TRAINING_METADATA_KEYS.contains(&key) || key == DIGEST_KEY
}

/// The file beside a model file that holds its training state:
/// `run/model.safetensors` → `run/model.training.safetensors`.
///
/// ```
/// use std::path::Path;
/// let p = backprop_train::checkpoint::training_path(Path::new("run/model.safetensors"));
/// assert_eq!(p, Path::new("run/model.training.safetensors"));
/// ```
pub fn training_path(model: &Path) -> PathBuf {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    model.with_file_name(format!("{stem}.training.safetensors"))
}

/// Named `f32` tensors and string metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// Tensors in file order.
    pub tensors: Vec<(String, Tensor<f32>)>,
    /// The `__metadata__` map.
    pub metadata: BTreeMap<String, String>,
}

/// One `f32` tensor as the `safetensors` crate writes it.
struct F32View {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for F32View {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Reads little-endian values of `dtype` as `f32`; `None` for a dtype that is not a float
/// type this reader knows (F32, F64, F16, BF16).
fn floats(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

fn describe(e: SafeTensorError) -> String {
    match e {
        SafeTensorError::InvalidHeaderLength
        | SafeTensorError::MetadataIncompleteBuffer
        | SafeTensorError::HeaderTooSmall => {
            format!("{e} (the file is truncated, or not a safetensors file)")
        }
        other => other.to_string(),
    }
}

impl Checkpoint {
    /// The tensor under `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<f32>> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// A model's parameters and buffers under their names, with `metadata` (no training
    /// state): what `backprop import` saves.
    pub fn of_model(
        model: &dyn backprop_nn::Module<f32>,
        metadata: BTreeMap<String, String>,
    ) -> Checkpoint {
        let vars = model.params().into_iter().chain(model.buffers());
        Checkpoint {
            tensors: vars.map(|(n, v)| (n, v.value())).collect(),
            metadata,
        }
    }

    /// The model part (a plain state dict and the model's metadata) and the training part.
    pub fn split(&self) -> (Checkpoint, Checkpoint) {
        let (train_t, model_t) = self
            .tensors
            .iter()
            .cloned()
            .partition(|(n, _)| is_training_tensor(n));
        let (train_m, model_m) = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .partition(|(k, _)| is_training_key(k));
        let model = Checkpoint {
            tensors: model_t,
            metadata: model_m,
        };
        let training = Checkpoint {
            tensors: train_t,
            metadata: train_m,
        };
        (model, training)
    }

    /// A digest of the tensors (names, shapes and values, in name order): FNV-1a, to tell
    /// whether a training file belongs to a model file (not a cryptographic hash).
    pub fn digest(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        let mut sorted: Vec<&(String, Tensor<f32>)> = self.tensors.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (n, t) in sorted {
            eat(n.as_bytes());
            for d in t.shape() {
                eat(&(*d as u64).to_le_bytes());
            }
            for v in t.data() {
                eat(&v.to_bits().to_le_bytes());
            }
        }
        format!("{h:016x}")
    }

    /// Serialises to safetensors bytes (all tensors as F32).
    ///
    /// # Panics
    /// If two tensors share a name.
    pub fn to_bytes(&self) -> Vec<u8> {
        let views = self.tensors.iter().map(|(n, t)| {
            let bytes = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
            let view = F32View {
                shape: t.shape().to_vec(),
                bytes,
            };
            (n.clone(), view)
        });
        let meta: HashMap<String, String> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let meta = (!meta.is_empty()).then_some(meta);
        safetensors::serialize(views, meta).expect("f32 tensors with distinct names serialise")
    }

    /// Parses safetensors bytes; the error says what is wrong (without the file name).
    /// F64, F16 and BF16 tensors are converted to `f32`; any other dtype is an error naming
    /// the tensors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, String> {
        Self::from_bytes_skipping(bytes, |_| false)
    }

    /// As [`Checkpoint::from_bytes`], leaving out the tensors for which `skip(name)` holds
    /// (whatever their dtype), e.g. PyTorch's integer `num_batches_tracked`.
    pub fn from_bytes_skipping(
        bytes: &[u8],
        skip: impl Fn(&str) -> bool,
    ) -> Result<Checkpoint, String> {
        let (n, header) = SafeTensors::read_metadata(bytes).map_err(describe)?;
        let data = &bytes[8 + n..];
        let mut tensors = Vec::new();
        let mut refused = Vec::new();
        for name in header.offset_keys() {
            let info = header.info(&name).expect("offset_keys names a tensor");
            if skip(&name) {
                continue;
            }
            let (a, b) = info.data_offsets;
            match floats(info.dtype, &data[a..b]) {
                Some(vals) => tensors.push((name, Tensor::from_vec(vals, &info.shape))),
                None => refused.push(format!("{name:?} ({})", info.dtype)),
            }
        }
        if !refused.is_empty() {
            return Err(format!(
                "tensors of a dtype that is not floating point: {}; only F32, F64, F16 and BF16 tensors can be read",
                refused.join(", ")
            ));
        }
        let metadata = header
            .metadata()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Checkpoint { tensors, metadata })
    }

    /// Writes the checkpoint atomically: the model part to `path`, the training part (if
    /// any) to [`training_path`]`(path)`, tagged with the model part's digest. A stale
    /// training file from an earlier run is removed when there is no training part.
    ///
    /// # Errors
    /// If the directory cannot be written; the message names the path.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let (model, mut training) = self.split();
        let tpath = training_path(path);
        if training.tensors.is_empty() && training.metadata.is_empty() {
            write_file(path, &model.to_bytes())?;
            return match fs::remove_file(&tpath) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(format!(
                    "{}: cannot remove the stale training state: {e}",
                    tpath.display()
                )),
                _ => Ok(()),
            };
        }
        training.metadata.insert(DIGEST_KEY.into(), model.digest());
        // the training file first: a crash between the writes leaves a pair whose digests
        // disagree, which `load` reports
        write_file(&tpath, &training.to_bytes())?;
        write_file(path, &model.to_bytes())
    }

    /// Reads a checkpoint: the model file and, when it exists, the training file beside it.
    ///
    /// # Errors
    /// If a file cannot be read or is not a valid checkpoint, or the training file belongs
    /// to other weights; the message names the file.
    pub fn load(path: &Path) -> Result<Checkpoint, String> {
        let mut ck = Self::load_model(path)?;
        let tpath = training_path(path);
        if !tpath.is_file() {
            return Ok(ck);
        }
        let mut training = read_file(&tpath)?;
        match training.metadata.remove(DIGEST_KEY) {
            Some(d) if d == ck.split().0.digest() => {}
            _ => {
                return Err(format!(
                    "{}: this training state belongs to other weights than {} (a save was interrupted, or one file was replaced); train without --resume, or remove the training file",
                    tpath.display(),
                    path.display()
                ))
            }
        }
        ck.tensors.extend(training.tensors);
        ck.metadata.extend(training.metadata);
        Ok(ck)
    }

    /// Reads only the model file (weights and the model's metadata), for evaluation,
    /// prediction and export.
    ///
    /// # Errors
    /// If the file cannot be read or is not a valid checkpoint; the message names the file.
    pub fn load_model(path: &Path) -> Result<Checkpoint, String> {
        read_file(path)
    }
}

fn read_file(path: &Path) -> Result<Checkpoint, String> {
    let bytes = fs::read(path)
        .map_err(|e| format!("{}: cannot read the checkpoint: {e}", path.display()))?;
    Checkpoint::from_bytes(&bytes)
        .map_err(|e| format!("{}: not a valid checkpoint: {e}", path.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    atomic_write(path, |f| f.write_all(bytes))
        .map_err(|e| format!("{}: cannot write the checkpoint: {e}", path.display()))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes a file atomically: `write` fills a temporary file next to `path`, which is then
/// synced and renamed over `path`. If `write` (or anything else) fails, the temporary file
/// is removed and `path` is untouched.
///
/// # Errors
/// Whatever creating, writing, syncing or renaming returned.
pub fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        write(&mut f)?;
        f.flush()?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("backprop-ck-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn sample() -> Checkpoint {
        let mut ck = Checkpoint::default();
        ck.tensors.push((
            "fc1.weight".into(),
            Tensor::from_vec(vec![1.0, -2.5, 3.0, 0.25], &[2, 2]),
        ));
        ck.tensors.push((
            "optimizer.m.fc1.weight".into(),
            Tensor::from_vec(vec![0.5; 4], &[2, 2]),
        ));
        ck.metadata.insert("backprop.spec".into(), "{}".into());
        ck.metadata
            .insert("backprop.training".into(), "{\"step\":3}".into());
        ck
    }

    #[test]
    fn save_splits_the_state_dict_from_the_training_state_and_load_joins_them() {
        let d = tmp("split");
        let path = d.join("model.safetensors");
        let ck = sample();
        ck.save(&path).unwrap();
        let model = Checkpoint::load_model(&path).unwrap();
        let names: Vec<&str> = model.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["fc1.weight"]);
        assert!(model.metadata.contains_key("backprop.spec"));
        assert!(!model.metadata.contains_key("backprop.training"));
        let mut back = Checkpoint::load(&path).unwrap();
        back.tensors.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back, ck);
        // saving a model without training state removes the stale training file
        model.save(&path).unwrap();
        assert!(!training_path(&path).exists());
        let _ = fs::remove_dir_all(d);
    }

    #[test]
    fn a_training_file_of_other_weights_is_refused_by_name() {
        let d = tmp("torn");
        let path = d.join("model.safetensors");
        sample().save(&path).unwrap();
        let training = fs::read(training_path(&path)).unwrap();
        let mut other = sample();
        other.tensors[0].1 = Tensor::from_vec(vec![9.0; 4], &[2, 2]);
        other.save(&path).unwrap();
        fs::write(training_path(&path), training).unwrap();
        let e = Checkpoint::load(&path).unwrap_err();
        assert!(
            e.contains("model.training.safetensors") && e.contains("other weights"),
            "{e}"
        );
        assert!(Checkpoint::load_model(&path).is_ok());
        let _ = fs::remove_dir_all(d);
    }

    #[test]
    fn an_old_single_file_checkpoint_still_loads_whole() {
        let d = tmp("old");
        let path = d.join("model.safetensors");
        let ck = sample();
        fs::write(&path, ck.to_bytes()).unwrap();
        let mut back = Checkpoint::load(&path).unwrap();
        back.tensors.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back, ck);
        let _ = fs::remove_dir_all(d);
    }

    struct Raw(Dtype, Vec<usize>, Vec<u8>);
    impl View for Raw {
        fn dtype(&self) -> Dtype {
            self.0
        }
        fn shape(&self) -> &[usize] {
            &self.1
        }
        fn data(&self) -> Cow<'_, [u8]> {
            Cow::Borrowed(&self.2)
        }
        fn data_len(&self) -> usize {
            self.2.len()
        }
    }

    #[test]
    fn f64_f16_and_bf16_are_read_as_f32_and_integers_are_refused_by_name() {
        let vals = [1.5f32, -0.25, 3.0];
        let f64b = vals
            .iter()
            .flat_map(|v| (*v as f64).to_le_bytes())
            .collect();
        let f16b = vals
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16b = vals
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        let bytes = safetensors::serialize(
            [
                ("a", Raw(Dtype::F64, vec![3], f64b)),
                ("b", Raw(Dtype::F16, vec![3], f16b)),
                ("c", Raw(Dtype::BF16, vec![3], bf16b)),
                (
                    "bn.num_batches_tracked",
                    Raw(Dtype::I64, vec![], vec![0; 8]),
                ),
            ],
            None,
        )
        .unwrap();
        let e = Checkpoint::from_bytes(&bytes).unwrap_err();
        assert!(e.contains("\"bn.num_batches_tracked\" (I64)"), "{e}");
        let ck = Checkpoint::from_bytes_skipping(&bytes, |n| n.ends_with("num_batches_tracked"))
            .unwrap();
        for n in ["a", "b", "c"] {
            assert_eq!(ck.get(n).unwrap().to_vec(), vals, "{n}");
        }
    }
}
