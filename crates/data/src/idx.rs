//! The IDX format of MNIST and its kin (Fashion-MNIST, KMNIST, EMNIST), gzipped or raw.
//!
//! A file is a 4-byte magic number `0x00 0x00 <type> <rank>`, `rank` big-endian u32
//! dimension sizes, then the elements in row-major order. Only unsigned bytes (`type` =
//! 0x08), the type every such dataset uses, are read.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimension sizes from the header.
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file, gunzipping it if it starts with the gzip magic bytes.
///
/// # Errors
/// If the file cannot be read or decompressed, the magic number is wrong, the element
/// type is not unsigned bytes, or the data is shorter or longer than the header says. Each
/// message names the file.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw =
        fs::read(path).map_err(|e| DataError::new(path, format!("cannot read the file: {e}")))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| {
                DataError::new(
                    path,
                    format!("is gzipped but cannot be decompressed (truncated or corrupt?): {e}"),
                )
            })?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|m| DataError::new(path, m))
}

/// Parses IDX bytes; the error is a message without the file name.
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "is too short to be an IDX file ({} bytes)",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "wrong magic number {:02x} {:02x} {:02x} {:02x}: an IDX file starts with 00 00, then the type and the rank",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x} is not supported; only unsigned bytes (0x08) are",
            bytes[2]
        ));
    }
    let rank = bytes[3] as usize;
    if rank == 0 {
        return Err("rank 0 in the magic number: there are no dimensions".into());
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(format!(
            "is truncated inside its header ({} of {header} bytes)",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("dimensions overflow")?;
    let body = bytes.len() - header;
    if body < n {
        return Err(format!(
            "is truncated: the header promises {dims:?} = {n} bytes of data but only {body} follow"
        ));
    }
    if body > n {
        return Err(format!(
            "has {} bytes after the {n} bytes its header {dims:?} describes",
            body - n
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Finds `<stem>` or `<stem>.gz` in `dir`.
pub(crate) fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::new(
        dir,
        format!("has no file {stem} or {stem}.gz"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn parses_and_validates() {
        let a = parse_idx(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        assert!(parse_idx(&idx(&[2, 3], &[1, 2]))
            .unwrap_err()
            .contains("truncated"));
        assert!(parse_idx(&idx(&[1], &[1, 2]))
            .unwrap_err()
            .contains("after"));
        let mut bad = idx(&[1], &[1]);
        bad[1] = 8;
        assert!(parse_idx(&bad).unwrap_err().contains("magic"));
        let mut float = idx(&[1], &[1, 2, 3, 4]);
        float[2] = 0x0d;
        assert!(parse_idx(&float).unwrap_err().contains("0x0d"));
    }
}
