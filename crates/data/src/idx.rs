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
    decode_idx(&raw).map_err(|m| DataError::new(path, m))
}

/// The most a deflate stream can expand: 258 bytes from every 2 bits, plus slack for the
/// gzip header. A gzipped file whose IDX header promises more than this many times its size
/// is truncated, whatever it holds, and is refused before anything is allocated.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Parses the bytes of an IDX file, gunzipping them if they start with the gzip magic bytes;
/// the error is a message without the file name.
///
/// A gzipped file is read as a stream: its IDX header first, then exactly the bytes that
/// header promises, which are checked before they are allocated against what the
/// compressed size can hold and the memory available. A small file that promises
/// terabytes is refused, not obeyed.
///
/// # Errors
/// As [`read_idx`].
pub fn decode_idx(raw: &[u8]) -> std::result::Result<IdxArray, String> {
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return parse_idx(raw);
    }
    let corrupt = |e: std::io::Error| {
        format!("is gzipped but cannot be decompressed (truncated or corrupt?): {e}")
    };
    let mut gz = flate2::read::GzDecoder::new(raw);
    let mut head = vec![0u8; 4];
    let got = read_full(&mut gz, &mut head).map_err(corrupt)?;
    head.truncate(got);
    if got == 4 {
        let mut dims = vec![0u8; 4 * head[3] as usize];
        let got = read_full(&mut gz, &mut dims).map_err(corrupt)?;
        head.extend_from_slice(&dims[..got]);
    }
    // the header alone says whether it is well formed and what it promises
    let (dims, n) = check_header(&head)?;
    let most = (raw.len() as u64).saturating_mul(MAX_DEFLATE_RATIO);
    if n as u64 > most {
        return Err(format!(
            "is truncated: the header promises {dims:?} = {n} bytes of data, more than a gzipped file of {} bytes can hold",
            raw.len()
        ));
    }
    if let Some(available) = backprop_tensor::memory::available_bytes() {
        if n as u64 > available {
            return Err(format!(
                "promises {dims:?} = {n} bytes of data, more than the {available} bytes of memory available"
            ));
        }
    }
    let mut data = vec![0u8; n];
    let got = read_full(&mut gz, &mut data).map_err(corrupt)?;
    if got < n {
        return Err(format!(
            "is truncated: the header promises {dims:?} = {n} bytes of data but only {got} follow"
        ));
    }
    let mut extra = [0u8; 1];
    if read_full(&mut gz, &mut extra).map_err(corrupt)? > 0 {
        let mut rest = 1u64;
        let mut sink = [0u8; 8192];
        loop {
            match gz.read(&mut sink).map_err(corrupt)? {
                0 => break,
                k => rest += k as u64,
            }
        }
        return Err(format!(
            "has {rest} bytes after the {n} bytes its header {dims:?} describes"
        ));
    }
    Ok(IdxArray { dims, data })
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match r.read(&mut buf[at..]) {
            Ok(0) => break,
            Ok(k) => at += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// Checks an IDX header (magic, type, rank, dimensions) at the start of `bytes`; returns the
/// dimensions and the element count they promise.
fn check_header(bytes: &[u8]) -> std::result::Result<(Vec<usize>, usize), String> {
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
        .ok_or_else(|| format!("the dimensions {dims:?} overflow"))?;
    Ok((dims, n))
}

/// Parses IDX bytes; the error is a message without the file name.
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    let (dims, n) = check_header(bytes)?;
    let header = 4 + 4 * dims.len();
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
