//! Reading a number: splitting an image of handwritten digits written side by side into
//! single digits, each normalized the way MNIST's digits were (NIST's preprocessing): the
//! ink's bounding box scaled to fit a 20×20 box (keeping the aspect ratio), then placed in a
//! 28×28 field with its centre of mass at the centre.

/// One digit found in an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// First column of the digit in the source image.
    pub x0: usize,
    /// One past its last column.
    pub x1: usize,
    /// First row of its ink.
    pub y0: usize,
    /// One past its last row.
    pub y1: usize,
    /// The digit normalized to 28×28, bright ink on a dark background, row-major.
    pub pixels: Vec<u8>,
}

/// A pixel counts as ink above this value (of 255).
const INK: u8 = 40;

/// Splits `pixels` (`width × height`, bright ink on a dark background) into digits, left to
/// right. Digits are separated by columns without ink; a run of ink much wider than it is
/// tall is split at its thinnest column (digits that touch).
///
/// ```
/// use backprop_data::segment_digits;
/// // two 3-pixel-wide bars 4 columns apart in a 12×6 image
/// let mut img = vec![0u8; 12 * 6];
/// for y in 1..5 { for x in [1, 2, 3, 8, 9, 10] { img[y * 12 + x] = 255; } }
/// let s = segment_digits(&img, 12, 6);
/// assert_eq!(s.len(), 2);
/// assert_eq!((s[0].x0, s[0].x1, s[1].x0, s[1].x1), (1, 4, 8, 11));
/// assert_eq!(s[0].pixels.len(), 784);
/// ```
pub fn segment_digits(pixels: &[u8], width: usize, height: usize) -> Vec<Segment> {
    assert_eq!(
        pixels.len(),
        width * height,
        "segment_digits: {} pixels for {width}×{height}",
        pixels.len()
    );
    let col_ink: Vec<u32> = (0..width)
        .map(|x| {
            (0..height)
                .map(|y| u32::from(pixels[y * width + x] > INK))
                .sum()
        })
        .collect();
    // runs of columns with ink
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut x = 0;
    while x < width {
        if col_ink[x] == 0 {
            x += 1;
            continue;
        }
        let start = x;
        while x < width && col_ink[x] > 0 {
            x += 1;
        }
        runs.push((start, x));
    }
    // the digits of one number have about the same height; a run much wider than the
    // median height holds touching digits, and a narrow run that is also short and close to
    // a neighbour is a broken piece of that neighbour (a "1" is narrow but full height)
    let height_of = |&(a, b): &(usize, usize)| {
        let (y0, y1) = ink_rows(pixels, width, height, a, b);
        (y1 - y0).max(1)
    };
    let mut heights: Vec<usize> = runs.iter().map(height_of).collect();
    heights.sort_unstable();
    let typical = heights.get(heights.len() / 2).copied().unwrap_or(1).max(1) as f64;
    let fragment = |r: &(usize, usize)| {
        let (w, h) = ((r.1 - r.0) as f64, height_of(r) as f64);
        (h < 0.5 * typical && w <= 0.7 * typical) || (w <= 0.45 * typical && h < 0.75 * typical)
    };
    let mut joined: Vec<(usize, usize)> = Vec::new();
    for r in runs {
        if let Some(last) = joined.last_mut() {
            let gap = (r.0 - last.1) as f64;
            let fits = ((r.1 - last.0) as f64) <= 1.25 * typical;
            let piece = fragment(&r) || fragment(last);
            // a 1–2 pixel sliver right next to a run is part of its stroke, whatever its height
            let sliver = gap <= 2.0 && ((r.1 - r.0) <= 2 || (last.1 - last.0) <= 2);
            if fits && (sliver || (piece && gap <= 0.4 * typical)) {
                last.1 = r.1;
                continue;
            }
        }
        joined.push(r);
    }
    let mut out = Vec::new();
    for (a, b) in joined {
        let tall = typical as usize;
        let pieces = ((b - a) as f64 / (typical * 1.1)).round().max(1.0) as usize;
        let mut cuts = vec![a];
        for k in 1..pieces {
            let centre = a + (b - a) * k / pieces;
            let lo = centre.saturating_sub(tall / 4).max(a + 1);
            let hi = (centre + tall / 4).min(b - 1);
            let cut = (lo..=hi.max(lo))
                .min_by_key(|&c| (col_ink[c], c.abs_diff(centre)))
                .unwrap_or(centre);
            cuts.push(cut);
        }
        cuts.push(b);
        for w in cuts.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b <= a {
                continue;
            }
            let (y0, y1) = ink_rows(pixels, width, height, a, b);
            let ink: u32 = col_ink[a..b].iter().sum();
            if ink < 4 {
                continue; // specks
            }
            // take in the faint anti-aliased fringe around the ink (up to 2 pixels), but
            // nothing of a neighbour: outside [a, b) only pixels below the ink threshold
            let (ca, cb) = (a.saturating_sub(2), (b + 2).min(width));
            let (cy0, cy1) = (y0.saturating_sub(2), (y1 + 2).min(height));
            // the digit's box with a margin, its neighbours' ink in the margin removed
            // (a copy of the box only: a copy of the whole image per digit made a long
            // line of digits quadratic)
            let (cw, ch) = (cb - ca, cy1 - cy0);
            let mut own = Vec::with_capacity(cw * ch);
            for y in cy0..cy1 {
                own.extend_from_slice(&pixels[y * width + ca..y * width + cb]);
            }
            for row in own.chunks_exact_mut(cw) {
                for x in (0..a - ca).chain(b - ca..cw) {
                    if row[x] > INK {
                        row[x] = 0;
                    }
                }
            }
            out.push(Segment {
                x0: a,
                x1: b,
                y0,
                y1,
                pixels: normalize(&own, cw, 0, cw, 0, ch),
            });
        }
    }
    out
}

/// The rows `[y0, y1)` holding ink between columns `a` and `b`.
/// Normalizes one drawn digit (`width × height`, bright ink on a dark background) the way
/// MNIST's digits were: the ink's box scaled so the stroke fits 20×20, centre of mass at the
/// centre of 28×28. `None` if there is no ink.
///
/// ```
/// use backprop_data::normalize_digit;
/// let mut img = vec![0u8; 100 * 100];
/// for y in 10..90 { for x in 45..55 { img[y * 100 + x] = 255; } } // a "1"
/// let d = normalize_digit(&img, 100, 100).unwrap();
/// assert_eq!(d.len(), 784);
/// assert!(d[14 * 28 + 14] > 200 && d[14 * 28 + 2] == 0);
/// assert!(normalize_digit(&vec![0u8; 64], 8, 8).is_none());
/// ```
pub fn normalize_digit(pixels: &[u8], width: usize, height: usize) -> Option<Vec<u8>> {
    assert_eq!(
        pixels.len(),
        width * height,
        "normalize_digit: {} pixels for {width}×{height}",
        pixels.len()
    );
    let inked = |x: usize| (0..height).any(|y| pixels[y * width + x] > INK);
    let x0 = (0..width).find(|&x| inked(x))?;
    let x1 = (0..width)
        .rev()
        .find(|&x| inked(x))
        .map_or(width, |x| x + 1);
    let (y0, y1) = ink_rows(pixels, width, height, x0, x1);
    // the faint fringe around the ink, as for a segmented digit
    let (cx0, cx1) = (x0.saturating_sub(2), (x1 + 2).min(width));
    let (cy0, cy1) = (y0.saturating_sub(2), (y1 + 2).min(height));
    Some(normalize(pixels, width, cx0, cx1, cy0, cy1))
}

fn ink_rows(pixels: &[u8], width: usize, height: usize, a: usize, b: usize) -> (usize, usize) {
    let has = |y: usize| (a..b).any(|x| pixels[y * width + x] > INK);
    let y0 = (0..height).find(|&y| has(y)).unwrap_or(0);
    let y1 = (0..height)
        .rev()
        .find(|&y| has(y))
        .map_or(height, |y| y + 1);
    (y0, y1)
}

/// Pixels at least this bright are the stroke's core; MNIST scaled the binary NIST
/// stroke to fit 20×20, and the anti-aliased fringe lies outside that box.
const CORE: u8 = 128;

/// Crops the box, scales it so the stroke's core fits 20×20 (bilinear, aspect kept; no
/// resampling when that scale is already about 1), and centres its centre of mass in 28×28.
fn normalize(pixels: &[u8], width: usize, x0: usize, x1: usize, y0: usize, y1: usize) -> Vec<u8> {
    let (bw, bh) = (x1 - x0, y1 - y0);
    let core = |horizontal: bool| -> usize {
        let lines: Vec<usize> = if horizontal {
            (x0..x1)
                .filter(|&x| (y0..y1).any(|y| pixels[y * width + x] >= CORE))
                .collect()
        } else {
            (y0..y1)
                .filter(|&y| (x0..x1).any(|x| pixels[y * width + x] >= CORE))
                .collect()
        };
        lines.last().map_or(0, |l| l - lines[0] + 1)
    };
    let core_side = core(true).max(core(false));
    let core_side = if core_side == 0 {
        bw.max(bh)
    } else {
        core_side
    };
    let scale = if (core_side as f64 - 20.0).abs() <= 1.0 {
        1.0
    } else {
        20.0 / core_side as f64
    };
    let (sw, sh) = (
        ((bw as f64 * scale).round() as usize).max(1),
        ((bh as f64 * scale).round() as usize).max(1),
    );
    let src = |x: f64, y: f64| -> f64 {
        // bilinear sample at continuous (x, y) of the box, clamped to it
        let (x, y) = (x.clamp(0.0, (bw - 1) as f64), y.clamp(0.0, (bh - 1) as f64));
        let (xi, yi) = (x.floor() as usize, y.floor() as usize);
        let (fx, fy) = (x - xi as f64, y - yi as f64);
        let at = |xx: usize, yy: usize| {
            pixels[(y0 + yy.min(bh - 1)) * width + x0 + xx.min(bw - 1)] as f64
        };
        at(xi, yi) * (1.0 - fx) * (1.0 - fy)
            + at(xi + 1, yi) * fx * (1.0 - fy)
            + at(xi, yi + 1) * (1.0 - fx) * fy
            + at(xi + 1, yi + 1) * fx * fy
    };
    let mut small = vec![0.0f64; sw * sh];
    for y in 0..sh {
        for x in 0..sw {
            small[y * sw + x] = if scale == 1.0 {
                pixels[(y0 + y) * width + x0 + x] as f64
            } else {
                // sample at the centre of the target pixel, mapped back into the box
                src(
                    (x as f64 + 0.5) / scale - 0.5,
                    (y as f64 + 0.5) / scale - 0.5,
                )
            };
        }
    }
    let mass: f64 = small.iter().sum::<f64>().max(1e-9);
    let cx = small
        .iter()
        .enumerate()
        .map(|(i, v)| (i % sw) as f64 * v)
        .sum::<f64>()
        / mass;
    let cy = small
        .iter()
        .enumerate()
        .map(|(i, v)| (i / sw) as f64 * v)
        .sum::<f64>()
        / mass;
    // MNIST's digits have their centre of mass at (14.0, 14.0) in pixel-index units
    // (measured over its test set: 14.00, 13.99)
    let (ox, oy) = ((14.0 - cx).round() as isize, (14.0 - cy).round() as isize);
    let mut out = vec![0u8; 784];
    for y in 0..sh {
        for x in 0..sw {
            let (tx, ty) = (x as isize + ox, y as isize + oy);
            if (0..28).contains(&tx) && (0..28).contains(&ty) {
                out[ty as usize * 28 + tx as usize] =
                    small[y * sw + x].round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w`×`h` dark image with bright filled rectangles `(x0, x1, y0, y1)`.
    fn image(w: usize, h: usize, boxes: &[(usize, usize, usize, usize)]) -> Vec<u8> {
        let mut px = vec![0u8; w * h];
        for &(x0, x1, y0, y1) in boxes {
            for y in y0..y1 {
                for x in x0..x1 {
                    // a diagonal shade, so that a wrong crop shows in the pixels
                    px[y * w + x] = 150 + ((x + 2 * y) % 100) as u8;
                }
            }
        }
        px
    }

    #[test]
    fn each_segment_is_that_digit_normalised_alone() {
        let (w, h) = (200, 40);
        let boxes = [(10, 22, 5, 33), (60, 75, 8, 30), (120, 134, 3, 35)];
        let px = image(w, h, &boxes);
        let segments = segment_digits(&px, w, h);
        assert_eq!(segments.len(), boxes.len());
        for (s, &b) in segments.iter().zip(&boxes) {
            assert_eq!((s.x0, s.x1, s.y0, s.y1), b);
            let alone = normalize_digit(&image(w, h, &[b]), w, h).expect("ink");
            assert_eq!(s.pixels, alone);
        }
    }

    #[test]
    fn a_neighbour_inside_the_margin_is_removed_from_a_digit() {
        // two digits one column apart: the columns between them split the run, and each
        // digit's margin holds the other's ink, which is cleared before normalising
        let (w, h) = (80, 40);
        let boxes = [(10, 30, 5, 33), (31, 51, 5, 33)];
        let px = image(w, h, &boxes);
        let segments = segment_digits(&px, w, h);
        assert_eq!(segments.len(), 2);
        for (s, &b) in segments.iter().zip(&boxes) {
            let alone = normalize_digit(&image(w, h, &[b]), w, h).expect("ink");
            assert_eq!(s.pixels, alone);
        }
    }
}
