//! Checkpoints in the safetensors format: an 8-byte little-endian header length, a JSON
//! header (`__metadata__` of string pairs, and for each tensor its `dtype`, `shape` and
//! `data_offsets`), then the raw little-endian data. Tensors are stored under PyTorch-style
//! names (`fc1.weight`), so other tools can read them.
//!
//! Writes are atomic: the file is written under a temporary name in the same directory,
//! flushed to disk, then renamed over the target. A write that fails midway leaves the old
//! file as it was.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use backprop_tensor::Tensor;
use serde_json::{json, Map, Value};

/// Named `f32` tensors and string metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// Tensors in file order.
    pub tensors: Vec<(String, Tensor<f32>)>,
    /// The `__metadata__` map.
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The tensor under `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<f32>> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut header = Map::new();
        if !self.metadata.is_empty() {
            header.insert("__metadata__".into(), json!(self.metadata));
        }
        let mut offset = 0usize;
        for (name, t) in &self.tensors {
            let len = t.numel() * 4;
            header.insert(
                name.clone(),
                json!({"dtype": "F32", "shape": t.shape(), "data_offsets": [offset, offset + len]}),
            );
            offset += len;
        }
        let mut h = serde_json::to_vec(&Value::Object(header)).expect("a JSON map serialises");
        while !h.len().is_multiple_of(8) {
            h.push(b' ');
        }
        let mut out = Vec::with_capacity(8 + h.len() + offset);
        out.extend((h.len() as u64).to_le_bytes());
        out.extend(h);
        for (_, t) in &self.tensors {
            for v in t.data() {
                out.extend(v.to_le_bytes());
            }
        }
        out
    }

    /// Parses safetensors bytes; the error says what is wrong (without the file name).
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, String> {
        if bytes.len() < 8 {
            return Err("too short to be a safetensors file".into());
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        if n > bytes.len() - 8 {
            return Err(format!("the header claims {n} bytes but the file has {} after the length (truncated, or not a checkpoint)", bytes.len() - 8));
        }
        let header: Value = serde_json::from_slice(&bytes[8..8 + n])
            .map_err(|e| format!("the header is not valid JSON: {e}"))?;
        let obj = header
            .as_object()
            .ok_or("the header is not a JSON object")?;
        let data = &bytes[8 + n..];
        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::new();
        for (name, v) in obj {
            if name == "__metadata__" {
                for (k, val) in v.as_object().ok_or("__metadata__ is not an object")? {
                    metadata.insert(
                        k.clone(),
                        val.as_str()
                            .ok_or_else(|| format!("metadata {k:?} is not a string"))?
                            .to_string(),
                    );
                }
                continue;
            }
            let dtype = v
                .get("dtype")
                .and_then(|d| d.as_str())
                .ok_or_else(|| format!("tensor {name:?} has no dtype"))?;
            if dtype != "F32" {
                return Err(format!(
                    "tensor {name:?} has dtype {dtype}; only F32 is supported"
                ));
            }
            let shape: Vec<usize> =
                serde_json::from_value(v.get("shape").cloned().unwrap_or(Value::Null))
                    .map_err(|_| format!("tensor {name:?} has no valid shape"))?;
            let offs: [usize; 2] =
                serde_json::from_value(v.get("data_offsets").cloned().unwrap_or(Value::Null))
                    .map_err(|_| format!("tensor {name:?} has no valid data_offsets"))?;
            let want = shape.iter().product::<usize>() * 4;
            if offs[1] < offs[0] || offs[1] - offs[0] != want || offs[1] > data.len() {
                return Err(format!("tensor {name:?}: offsets {offs:?} do not fit shape {shape:?} and {} data bytes (truncated?)", data.len()));
            }
            let vals = data[offs[0]..offs[1]]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            tensors.push((offs[0], name.clone(), Tensor::from_vec(vals, &shape)));
        }
        tensors.sort_by_key(|(o, n, _)| (*o, n.clone()));
        Ok(Checkpoint {
            tensors: tensors.into_iter().map(|(_, n, t)| (n, t)).collect(),
            metadata,
        })
    }

    /// Writes the checkpoint atomically.
    ///
    /// # Errors
    /// If the directory cannot be written; the message names the path.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let bytes = self.to_bytes();
        atomic_write(path, |f| f.write_all(&bytes))
            .map_err(|e| format!("{}: cannot write the checkpoint: {e}", path.display()))
    }

    /// Reads a checkpoint.
    ///
    /// # Errors
    /// If the file cannot be read or is not a valid checkpoint; the message names the file.
    pub fn load(path: &Path) -> Result<Checkpoint, String> {
        let bytes = fs::read(path)
            .map_err(|e| format!("{}: cannot read the checkpoint: {e}", path.display()))?;
        Self::from_bytes(&bytes)
            .map_err(|e| format!("{}: not a valid checkpoint: {e}", path.display()))
    }
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
