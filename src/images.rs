//! Reading single greyscale images (PNG or PGM) for `backprop predict`.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// A greyscale image as bytes, white = 255.
#[derive(Debug)]
pub struct Grey {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Reads a PNG (any bit depth or colour type, converted to luminance) or a PGM (P2/P5).
pub fn read_image(path: &Path) -> Result<Grey> {
    let bytes =
        fs::read(path).with_context(|| format!("{}: cannot read the image", path.display()))?;
    decode_image(&bytes).with_context(|| path.display().to_string())
}

/// Decodes the bytes of a PNG or PGM file (what [`read_image`] read); the error does not
/// name the file.
pub fn decode_image(bytes: &[u8]) -> Result<Grey> {
    if bytes.starts_with(b"\x89PNG") {
        read_png(bytes).context("not a readable PNG")
    } else if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
        read_pgm(bytes).context("not a readable PGM")
    } else {
        bail!("not a PNG or PGM image (unrecognised first bytes)")
    }
}

/// The most pixels an image may have (8192 × 8192): a header is checked against it before
/// anything is allocated, so a small file promising a huge image is refused, not obeyed.
const MAX_PIXELS: usize = 1 << 26;

/// Checks an image's stated size before its pixels are read.
fn check_size(w: usize, h: usize) -> Result<()> {
    match w.checked_mul(h) {
        Some(0) => bail!("the image is {w}×{h}: it has no pixels"),
        Some(n) if n <= MAX_PIXELS => Ok(()),
        _ => bail!(
            "the header says {w}×{h} pixels; images up to {MAX_PIXELS} pixels (8192×8192) are read"
        ),
    }
}

/// Checks the chunks before the image data that the decoder trusts: a palette (`PLTE`) must
/// be 1 to 256 whole RGB entries. The PNG decoder panics on one whose length is not a
/// multiple of 3 (found by the image fuzz target), so such a file is refused here first.
/// A truncated or malformed chunk list is left to the decoder to report.
fn check_png_chunks(bytes: &[u8]) -> Result<()> {
    let mut at = 8; // past the signature
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"PLTE" if len == 0 || len % 3 != 0 || len > 768 => bail!(
                "its palette (PLTE chunk) has {len} bytes; a palette is 1 to 256 RGB entries of 3 bytes each"
            ),
            b"IDAT" | b"IEND" => break,
            _ => {}
        }
        // length, type, data and CRC
        at = match at.checked_add(12).and_then(|a| a.checked_add(len)) {
            Some(next) => next,
            None => break,
        };
    }
    Ok(())
}

fn read_png(bytes: &[u8]) -> Result<Grey> {
    check_png_chunks(bytes)?;
    let mut dec = png::Decoder::new(bytes);
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let header = dec.read_header_info()?;
    check_size(header.width as usize, header.height as usize)?;
    let mut reader = dec.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf)?;
    let (w, h) = (info.width as usize, info.height as usize);
    let ch = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => bail!("indexed colour was not expanded"),
    };
    let mut pixels = Vec::with_capacity(w * h);
    for px in buf[..w * h * ch].chunks_exact(ch) {
        let v = match ch {
            1 | 2 => px[0] as f32,
            _ => 0.299 * px[0] as f32 + 0.587 * px[1] as f32 + 0.114 * px[2] as f32,
        };
        // transparent pixels count as background (black)
        let a = if ch == 2 || ch == 4 {
            px[ch - 1] as f32 / 255.0
        } else {
            1.0
        };
        pixels.push((v * a).round().clamp(0.0, 255.0) as u8);
    }
    Ok(Grey {
        width: w,
        height: h,
        pixels,
    })
}

fn read_pgm(bytes: &[u8]) -> Result<Grey> {
    // header: magic, width, height, maxval, separated by whitespace, '#' comments allowed
    let mut fields = Vec::new();
    let mut i = 2;
    while fields.len() < 3 {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'#' {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            bail!("malformed header");
        }
        fields.push(std::str::from_utf8(&bytes[start..i])?.parse::<usize>()?);
    }
    let (w, h, maxval) = (fields[0], fields[1], fields[2]);
    check_size(w, h)?;
    if maxval == 0 || maxval > 255 {
        bail!("maximum value {maxval} is not supported (1..=255)");
    }
    let scale = |v: usize| -> Result<u8> {
        if v > maxval {
            bail!("pixel value {v} exceeds the maximum value {maxval} of the header");
        }
        Ok(((v * 255) / maxval) as u8)
    };
    let pixels = if bytes.starts_with(b"P5") {
        let data = bytes
            .get(i + 1..i + 1 + w * h)
            .context("truncated pixel data")?;
        data.iter()
            .map(|&v| scale(v as usize))
            .collect::<Result<_>>()?
    } else {
        let text = std::str::from_utf8(&bytes[i..])?;
        let v: Vec<u8> = text
            .split_ascii_whitespace()
            .take(w * h)
            .map(|t| scale(t.parse::<usize>()?))
            .collect::<Result<_>>()?;
        if v.len() < w * h {
            bail!("truncated pixel data");
        }
        v[..w * h].to_vec()
    };
    Ok(Grey {
        width: w,
        height: h,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgm_values_above_the_maximum_are_refused_not_wrapped() {
        // found by fuzzing: a P2 value near 2^64 overflowed the scaling
        let e = decode_image(b"P2\n2 1\n255\n18446744073709551615 3\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("exceeds the maximum value 255"),
            "{e:#}"
        );
        let e = decode_image(b"P5\n2 1\n15\n\x10\x03").unwrap_err();
        assert!(format!("{e:#}").contains("pixel value 16"), "{e:#}");
        let ok = decode_image(b"P2\n2 1\n15\n15 3\n").unwrap();
        assert_eq!(ok.pixels, vec![255, 51]);
        let e = decode_image(b"P5 4294967296 4294967296 255\n\x00").unwrap_err();
        assert!(format!("{e:#}").contains("pixels"), "{e:#}");
    }

    #[test]
    fn an_indexed_png_reads_and_a_palette_of_partial_entries_is_refused() {
        let mut png_bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png_bytes, 2, 1);
            enc.set_color(png::ColorType::Indexed);
            enc.set_depth(png::BitDepth::Eight);
            enc.set_palette(vec![0, 0, 0, 255, 255, 255]);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&[1, 0]).unwrap();
        }
        let ok = decode_image(&png_bytes).unwrap();
        assert_eq!((ok.width, ok.height, ok.pixels), (2, 1, vec![255, 0]));
        // the palette's length made 7 (found by fuzzing: the decoder panicked on it)
        let at = png_bytes.windows(4).position(|w| w == b"PLTE").unwrap() - 4;
        png_bytes[at..at + 4].copy_from_slice(&7u32.to_be_bytes());
        let e = decode_image(&png_bytes).unwrap_err();
        assert!(
            format!("{e:#}").contains("PLTE chunk) has 7 bytes"),
            "{e:#}"
        );
    }
}
