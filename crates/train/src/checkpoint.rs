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
//! flushed to disk, then renamed over the target. A write that fails midway (a full disk)
//! leaves the old files as they were, byte for byte, and says which file could not be
//! written.
//!
//! # Surviving a crash
//!
//! A process killed at any moment of [`Checkpoint::save`] leaves a checkpoint that loads and
//! resumes: before the new training file replaces the old one, the old one is kept as
//! `model.training.prev.safetensors` ([`previous_training_path`]) until the model file is
//! written too. A pair torn by a crash between the two writes (new training state, old
//! weights) is then completed from the kept file, whose digest matches the weights on disk.
//!
//! # Checksums
//!
//! Each file records a digest of its own tensors (names, shapes and values) in its metadata
//! (`backprop.checksum`, see [`Checkpoint::digest`]); reading a file whose tensors do not
//! match it (a flipped bit on disk, a file patched by hand) is an error that names the file,
//! never silently wrong weights. Files written by other tools, or before checksums were
//! recorded, carry no checksum and load as before.

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

/// Every file's record of its own tensors (see [`Checkpoint::digest`]).
pub const CHECKSUM_KEY: &str = "backprop.checksum";

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

/// Where [`Checkpoint::save`] keeps the previous training file while it replaces the pair:
/// `run/model.safetensors` → `run/model.training.prev.safetensors`. It exists only while a
/// save is under way, or after a save was interrupted.
///
/// ```
/// use std::path::Path;
/// let p = backprop_train::checkpoint::previous_training_path(Path::new("run/model.safetensors"));
/// assert_eq!(p, Path::new("run/model.training.prev.safetensors"));
/// ```
pub fn previous_training_path(model: &Path) -> PathBuf {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    model.with_file_name(format!("{stem}.training.prev.safetensors"))
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

/// [`Checkpoint::digest`] of named tensors in any order.
fn digest_of<'a>(tensors: impl Iterator<Item = (&'a str, &'a Tensor<f32>)>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    let mut sorted: Vec<(&str, &Tensor<f32>)> = tensors.collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
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
    /// whether a training file belongs to a model file and whether a file's tensors are the
    /// ones it was written with (not a cryptographic hash).
    pub fn digest(&self) -> String {
        digest_of(self.tensors.iter().map(|(n, t)| (n.as_str(), t)))
    }

    /// Serialises to safetensors bytes (all tensors as F32), with the tensors' digest
    /// recorded as [`CHECKSUM_KEY`].
    ///
    /// # Panics
    /// If two tensors share a name.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_with_digest(&self.digest())
    }

    /// [`Checkpoint::to_bytes`] with the digest already computed.
    fn to_bytes_with_digest(&self, digest: &str) -> Vec<u8> {
        let views = self.tensors.iter().map(|(n, t)| {
            let bytes = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
            let view = F32View {
                shape: t.shape().to_vec(),
                bytes,
            };
            (n.clone(), view)
        });
        let mut meta: HashMap<String, String> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        meta.insert(CHECKSUM_KEY.into(), digest.into());
        safetensors::serialize(views, Some(meta))
            .expect("f32 tensors with distinct names serialise")
    }

    /// Parses safetensors bytes; the error says what is wrong (without the file name).
    /// F64, F16 and BF16 tensors are converted to `f32`; any other dtype is an error naming
    /// the tensors.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, String> {
        Self::from_bytes_skipping(bytes, |_| false)
    }

    /// As [`Checkpoint::from_bytes`], leaving out the tensors for which `skip(name)` holds
    /// (whatever their dtype), e.g. PyTorch's integer `num_batches_tracked`.
    ///
    /// A file that records a checksum ([`CHECKSUM_KEY`]) is checked against it, all its
    /// tensors included, and refused if they differ; the checksum is not part of the
    /// returned metadata.
    pub fn from_bytes_skipping(
        bytes: &[u8],
        skip: impl Fn(&str) -> bool,
    ) -> Result<Checkpoint, String> {
        let (n, header) = SafeTensors::read_metadata(bytes).map_err(describe)?;
        let data = &bytes[8 + n..];
        let mut metadata: BTreeMap<String, String> = header
            .metadata()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let checksum = metadata.remove(CHECKSUM_KEY);
        let mut tensors = Vec::new();
        let mut skipped = Vec::new();
        let mut refused = Vec::new();
        for name in header.offset_keys() {
            let info = header.info(&name).expect("offset_keys names a tensor");
            let (a, b) = info.data_offsets;
            let wanted = !skip(&name);
            if !wanted && checksum.is_none() {
                continue;
            }
            match floats(info.dtype, &data[a..b]) {
                Some(vals) => {
                    let t = (name, Tensor::from_vec(vals, &info.shape));
                    if wanted {
                        tensors.push(t)
                    } else {
                        skipped.push(t)
                    }
                }
                None if wanted => refused.push(format!("{name:?} ({})", info.dtype)),
                None => {}
            }
        }
        if !refused.is_empty() {
            return Err(format!(
                "tensors of a dtype that is not floating point: {}; only F32, F64, F16 and BF16 tensors can be read",
                refused.join(", ")
            ));
        }
        if let Some(want) = checksum {
            let all = tensors.iter().chain(&skipped).map(|(n, t)| (n.as_str(), t));
            let got = digest_of(all);
            if got != want {
                return Err(format!(
                    "the tensors do not match the checksum recorded in the file ({got} instead of {want}): the file is corrupted"
                ));
            }
        }
        Ok(Checkpoint { tensors, metadata })
    }

    /// Writes the checkpoint atomically: the model part to `path`, the training part (if
    /// any) to [`training_path`]`(path)`, tagged with the model part's digest. A stale
    /// training file from an earlier run is removed when there is no training part.
    ///
    /// The old training file is kept at [`previous_training_path`] until both new files are
    /// in place, so a process killed at any point leaves a pair that [`Checkpoint::load`]
    /// reads; a write that fails (a full disk) puts the old files back as they were.
    ///
    /// # Errors
    /// If the directory cannot be written; the message names the file.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let (model, mut training) = self.split();
        let (tpath, prev) = (training_path(path), previous_training_path(path));
        remove_stale_temps(path);
        let digest = model.digest();
        if training.tensors.is_empty() && training.metadata.is_empty() {
            write_file(path, &model.to_bytes_with_digest(&digest))?;
            for p in [&tpath, &prev] {
                remove_if_there(p, "stale training state")?;
            }
            return Ok(());
        }
        training.metadata.insert(DIGEST_KEY.into(), digest.clone());
        // the old training file stays (as `prev`) until the new pair is complete
        settle(path);
        if tpath.is_file() {
            fs::rename(&tpath, &prev).map_err(|e| {
                format!(
                    "{}: cannot keep the previous training state: {e}",
                    tpath.display()
                )
            })?;
        }
        let written = write_file(&tpath, &training.to_bytes())
            .and_then(|()| write_file(path, &model.to_bytes_with_digest(&digest)));
        if let Err(e) = written {
            // the old pair, as it was: the model file was not replaced
            if prev.is_file() {
                let _ = fs::rename(&prev, &tpath);
            } else {
                let _ = fs::remove_file(&tpath);
            }
            return Err(e);
        }
        remove_if_there(&prev, "previous training state")
    }

    /// Reads a checkpoint: the model file and, when it exists, the training file beside it
    /// (or the previous one an interrupted save left, if that is the one that matches).
    ///
    /// # Errors
    /// If a file cannot be read, is not a valid checkpoint or fails its checksum, or the
    /// training file belongs to other weights; the message names the file.
    pub fn load(path: &Path) -> Result<Checkpoint, String> {
        let mut ck = Self::load_model(path)?;
        let (tpath, prev) = (training_path(path), previous_training_path(path));
        if !tpath.is_file() && !prev.is_file() {
            return Ok(ck);
        }
        let weights = ck.split().0.digest();
        let mut refusal = None;
        for p in [&tpath, &prev] {
            if !p.is_file() {
                continue;
            }
            let mut training = match read_file(p) {
                Ok(t) => t,
                Err(e) => {
                    refusal.get_or_insert(e);
                    continue;
                }
            };
            if training.metadata.remove(DIGEST_KEY).as_deref() == Some(weights.as_str()) {
                ck.tensors.extend(training.tensors);
                ck.metadata.extend(training.metadata);
                return Ok(ck);
            }
            refusal.get_or_insert(format!(
                "{}: this training state belongs to other weights than {} (a save was interrupted, or one file was replaced); train without --resume, or remove the training file",
                p.display(),
                path.display()
            ));
        }
        Err(refusal.expect("a training file was there"))
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

/// The metadata entry `key` of a safetensors file, read from its header alone.
fn recorded(path: &Path, key: &str) -> Option<String> {
    use std::io::Read;
    let mut f = File::open(path).ok()?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let n = usize::try_from(u64::from_le_bytes(len)).ok()?;
    if n > 100 << 20 {
        return None;
    }
    let mut header = vec![0u8; n];
    f.read_exact(&mut header).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
    Some(v.get("__metadata__")?.get(key)?.as_str()?.to_string())
}

/// After an interrupted save, makes the training file the one that belongs to the weights
/// on disk again (the kept previous one, or the new one if the save got that far) and
/// removes the other, so the next save starts from one consistent pair.
fn settle(path: &Path) {
    let (tpath, prev) = (training_path(path), previous_training_path(path));
    if !prev.is_file() {
        return;
    }
    let weights = recorded(path, CHECKSUM_KEY)
        .or_else(|| Checkpoint::load_model(path).ok().map(|m| m.digest()));
    let belongs = |p: &Path| weights.is_some() && recorded(p, DIGEST_KEY) == weights;
    if tpath.is_file() && belongs(&tpath) {
        let _ = fs::remove_file(&prev);
    } else if belongs(&prev) {
        let _ = fs::rename(&prev, &tpath);
    }
}

fn remove_if_there(path: &Path, what: &str) -> Result<(), String> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(format!("{}: cannot remove the {what}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

fn temp_path(path: &Path) -> PathBuf {
    path.with_file_name(format!("{}{}", temp_prefix(path), std::process::id()))
}

/// Removes the temporary files that killed processes left beside `path` and its training
/// files (those of a process that is no longer running; Linux only, elsewhere they stay).
fn remove_stale_temps(path: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefixes = [path, &training_path(path)].map(temp_prefix);
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = prefixes.iter().find_map(|p| name.strip_prefix(p.as_str()));
        if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_file(e.path());
            }
        }
    }
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

    /// The offset of the tensor data in safetensors bytes.
    fn data_start(bytes: &[u8]) -> usize {
        8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
    }

    #[test]
    fn a_flipped_bit_in_a_tensor_is_refused_by_its_checksum() {
        let d = tmp("flip");
        let path = d.join("model.safetensors");
        sample().save(&path).unwrap();
        for file in [path.clone(), training_path(&path)] {
            let good = fs::read(&file).unwrap();
            let mut bad = good.clone();
            let at = data_start(&bad) + 5;
            bad[at] ^= 0x01;
            fs::write(&file, &bad).unwrap();
            let e = Checkpoint::load(&path).unwrap_err();
            assert!(
                e.contains(&file.display().to_string()) && e.contains("corrupted"),
                "{e}"
            );
            fs::write(&file, &good).unwrap();
        }
        // the checksum is checked, not returned
        let back = Checkpoint::load(&path).unwrap();
        assert!(!back.metadata.contains_key(CHECKSUM_KEY));
        // a file without a checksum (another tool's) still loads
        let plain = safetensors::serialize(
            [("w", Raw(Dtype::F32, vec![1], 2.0f32.to_le_bytes().to_vec()))],
            None,
        )
        .unwrap();
        assert_eq!(Checkpoint::from_bytes(&plain).unwrap().tensors.len(), 1);
        let _ = fs::remove_dir_all(d);
    }

    /// Another checkpoint of the same model: other weights and optimizer state.
    fn later() -> Checkpoint {
        let mut ck = sample();
        ck.tensors[0].1 = Tensor::from_vec(vec![7.0, 6.0, 5.0, 4.0], &[2, 2]);
        ck.tensors[1].1 = Tensor::from_vec(vec![0.75; 4], &[2, 2]);
        ck.metadata
            .insert("backprop.training".into(), "{\"step\":6}".into());
        ck
    }

    fn sorted(mut ck: Checkpoint) -> Checkpoint {
        ck.tensors.sort_by(|a, b| a.0.cmp(&b.0));
        ck
    }

    #[test]
    fn a_save_interrupted_at_any_point_leaves_a_pair_that_loads() {
        let d = tmp("interrupted");
        let path = d.join("model.safetensors");
        let (tpath, prev) = (training_path(&path), previous_training_path(&path));
        let (old, new) = (sorted(sample()), sorted(later()));
        // the files a complete save of `new` writes, to replay its steps one by one
        let nd = tmp("interrupted-new");
        new.save(&nd.join("model.safetensors")).unwrap();
        let new_model = fs::read(nd.join("model.safetensors")).unwrap();
        let new_training = fs::read(training_path(&nd.join("model.safetensors"))).unwrap();
        // killed after keeping the old training file, after writing the new one, after
        // writing the new model file (before removing the kept one)
        for (stage, want) in [(1, &old), (2, &old), (3, &new)] {
            old.save(&path).unwrap();
            fs::rename(&tpath, &prev).unwrap();
            if stage >= 2 {
                fs::write(&tpath, &new_training).unwrap();
            }
            if stage >= 3 {
                fs::write(&path, &new_model).unwrap();
            }
            assert_eq!(
                &sorted(Checkpoint::load(&path).unwrap()),
                want,
                "stage {stage}"
            );
            // and the next save starts from a consistent pair
            later().save(&path).unwrap();
            assert!(!prev.exists(), "stage {stage}");
            assert_eq!(
                sorted(Checkpoint::load(&path).unwrap()),
                new,
                "stage {stage}"
            );
        }
        let _ = fs::remove_dir_all(d);
        let _ = fs::remove_dir_all(nd);
    }

    #[test]
    fn a_failed_write_leaves_the_previous_checkpoint_as_it_was() {
        let d = tmp("full");
        let path = d.join("model.safetensors");
        sample().save(&path).unwrap();
        let before = [
            fs::read(&path).unwrap(),
            fs::read(training_path(&path)).unwrap(),
        ];
        // a directory where a temporary file must go: the write fails, as on a full disk,
        // for the training file (written first) and then for the model file
        for target in [training_path(&path), path.clone()] {
            let squat = temp_path(&target);
            fs::create_dir(&squat).unwrap();
            let e = later().save(&path).unwrap_err();
            assert!(
                e.contains(&target.display().to_string()) && e.contains("cannot write"),
                "{e}"
            );
            fs::remove_dir(&squat).unwrap();
            let after = [
                fs::read(&path).unwrap(),
                fs::read(training_path(&path)).unwrap(),
            ];
            assert!(
                after == before,
                "the old pair changed ({})",
                target.display()
            );
            assert!(!previous_training_path(&path).exists());
            assert_eq!(sorted(Checkpoint::load(&path).unwrap()), sorted(sample()));
        }
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
