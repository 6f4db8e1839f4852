//! Pictures: line charts of the training curves (SVG) and the decision boundary of a 2-D
//! classifier with its data points (PNG), like the lectures' "classification problem,
//! 500 epochs" figure, and captioned tile grids of filters and feature maps (PNG).
//!
//! Charts are drawn with `plotters` (SVG needs no font; PNG text uses its pure-Rust
//! `ab_glyph` path with a small DejaVu Sans subset compiled in, see `font.rs`). Tick
//! positions come from `ticks.rs`, so every axis follows one rule: whole epochs, 1-2-5 steps,
//! decades on log axes.

use std::io::Write;
use std::path::Path;

use crate::checkpoint::atomic_write;

mod boundary;
mod caption;
mod chart;
mod curves;
mod font;
mod ticks;

pub use boundary::{decision_boundary_png, Labelled, DECISION_BOUNDARY_SIZE, TITLE_STRIP};
pub use caption::{captioned_tile_grid, CAPTION_STRIP};
pub use chart::{Chart, YAxis};
use chart::{LineChart, XAxis};
pub use curves::{accuracy_chart, loss_chart, training_curves, LOG_LOSS_RATIO};
pub use font::{ensure_font, FAMILY};

/// An SVG line chart of named series over epochs 1..=n (NaN points are skipped), with
/// whole-number epoch ticks. For a run's own curves use [`training_curves`].
///
/// # Panics
/// Only if the compiled-in font is broken.
pub fn line_chart_svg(title: &str, y_label: &str, series: &[(&str, Vec<f64>)]) -> String {
    let xy: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, v)| {
            (
                *n,
                v.iter()
                    .enumerate()
                    .map(|(i, &y)| ((i + 1) as f64, y))
                    .collect(),
            )
        })
        .collect();
    chart_svg(title, "epoch", y_label, &xy, XAxis::Integer, YAxis::Linear)
}

/// An SVG chart of named `(x, y)` series (NaN or non-finite points are skipped), with a
/// logarithmic y axis if `log_y` (non-positive values are then skipped).
///
/// # Panics
/// Only if the compiled-in font is broken.
///
/// ```
/// use backprop_train::plot::xy_chart_svg;
/// let svg = xy_chart_svg("f", "x", "y", &[("square", (0..10).map(|i| (i as f64, (i * i) as f64)).collect())], false);
/// assert!(svg.starts_with("<svg") && svg.contains("square"));
/// ```
pub fn xy_chart_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    log_y: bool,
) -> String {
    let y_axis = if log_y { YAxis::Log } else { YAxis::Linear };
    chart_svg(title, x_label, y_label, series, XAxis::Real, y_axis)
}

fn chart_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
    x_axis: XAxis,
    y_axis: YAxis,
) -> String {
    LineChart {
        title,
        x_label,
        y_label,
        series,
        x_axis,
        y_axis,
        last_in_legend: false,
    }
    .render()
    .map(|c| c.svg)
    .expect("the compiled-in plot font draws")
}

/// A heatmap of `f` over `[x0, x1] × [y0, y1]` (log-scaled, darker is lower) with polyline
/// paths drawn over it, e.g. gradient-descent trajectories. Returns RGB pixels, `size²`.
pub fn contour_paths(
    f: impl Fn(f64, f64) -> f64,
    bounds: (f64, f64, f64, f64),
    paths: &[Vec<(f64, f64)>],
    size: usize,
) -> Vec<u8> {
    let (x0, x1, y0, y1) = bounds;
    let vals: Vec<f64> = (0..size * size)
        .map(|k| {
            let (i, j) = (k % size, k / size);
            f(
                x0 + (x1 - x0) * (i as f64 + 0.5) / size as f64,
                y1 - (y1 - y0) * (j as f64 + 0.5) / size as f64,
            )
        })
        .collect();
    let (lo, hi) = vals
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let mut img = vec![0u8; size * size * 3];
    for (k, &v) in vals.iter().enumerate() {
        let u = ((v - lo) / (hi - lo).max(1e-300)).max(0.0);
        let u = (1.0 + 99.0 * u).log10() / 2.0; // log scale 0..1
                                                // iso-bands every tenth make the contours visible
        let band = if ((u * 20.0).fract()) < 0.08 {
            0.8
        } else {
            1.0
        };
        let g = (40.0 + 200.0 * u) * band;
        img[k * 3..k * 3 + 3].copy_from_slice(&[
            (g * 0.85) as u8,
            (g * 0.9) as u8,
            g.min(255.0) as u8,
        ]);
    }
    let to_px = |(x, y): (f64, f64)| {
        (
            (x - x0) / (x1 - x0) * size as f64,
            (y1 - y) / (y1 - y0) * size as f64,
        )
    };
    for (pi, path) in paths.iter().enumerate() {
        let rgb = CLASS_RGB[(pi + 1) % CLASS_RGB.len()];
        for seg in path.windows(2) {
            let (a, b) = (to_px(seg[0]), to_px(seg[1]));
            let steps =
                ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).clamp(1, 4 * size);
            for s in 0..=steps {
                let t = s as f64 / steps as f64;
                let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (xi, yi) = (x as i64 + dx, y as i64 + dy);
                    if xi >= 0 && yi >= 0 && (xi as usize) < size && (yi as usize) < size {
                        let idx = (yi as usize * size + xi as usize) * 3;
                        img[idx..idx + 3].copy_from_slice(&rgb);
                    }
                }
            }
        }
    }
    img
}

/// Writes an SVG file atomically.
///
/// # Errors
/// If it cannot be written; the message names the file.
pub fn write_svg(path: &Path, svg: &str) -> Result<(), String> {
    atomic_write(path, |f| std::io::Write::write_all(f, svg.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

const CLASS_RGB: [[u8; 3]; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];

/// Renders a decision boundary: `predict` maps a batch of 2-D points (row-major `[m, 2]`)
/// to class probabilities (`[m, classes]`); the background is tinted by the winning class
/// and its confidence, and the points are drawn as dots in their true class's colour.
///
/// Returns RGB pixels of a `size × size` image over the points' bounding box (padded).
pub fn decision_boundary(
    points: &[[f32; 2]],
    labels: &[usize],
    size: usize,
    mut predict: impl FnMut(&[f32]) -> Vec<Vec<f32>>,
) -> Vec<u8> {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::INFINITY,
        f32::NEG_INFINITY,
    );
    for p in points {
        x0 = x0.min(p[0]);
        x1 = x1.max(p[0]);
        y0 = y0.min(p[1]);
        y1 = y1.max(p[1]);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (-1.0, 1.0, -1.0, 1.0);
    }
    let (px, py) = ((x1 - x0).max(1e-3) * 0.1, (y1 - y0).max(1e-3) * 0.1);
    let (x0, x1, y0, y1) = (x0 - px, x1 + px, y0 - py, y1 + py);
    let mut grid = Vec::with_capacity(size * size * 2);
    for j in 0..size {
        for i in 0..size {
            grid.push(x0 + (x1 - x0) * (i as f32 + 0.5) / size as f32);
            grid.push(y1 - (y1 - y0) * (j as f32 + 0.5) / size as f32);
        }
    }
    let probs = predict(&grid);
    let mut img = vec![255u8; size * size * 3];
    for (k, p) in probs.iter().enumerate() {
        let (c, conf) =
            p.iter().enumerate().fold(
                (0, f32::MIN),
                |(bc, bv), (i, &v)| if v > bv { (i, v) } else { (bc, bv) },
            );
        let classes = p.len().max(2) as f32;
        // confidence 1/classes (undecided) → white, 1 → a light tint of the class colour
        let strength = ((conf - 1.0 / classes) / (1.0 - 1.0 / classes)).clamp(0.0, 1.0) * 0.55;
        let rgb = CLASS_RGB[c % CLASS_RGB.len()];
        for ch in 0..3 {
            img[k * 3 + ch] = (255.0 - (255.0 - rgb[ch] as f32) * strength) as u8;
        }
    }
    let r = (size as f32 / 160.0).max(1.5);
    for (p, &l) in points.iter().zip(labels) {
        let cx = (p[0] - x0) / (x1 - x0) * size as f32;
        let cy = (y1 - p[1]) / (y1 - y0) * size as f32;
        let rgb = CLASS_RGB[l % CLASS_RGB.len()];
        let ri = r.ceil() as i64 + 1;
        for dy in -ri..=ri {
            for dx in -ri..=ri {
                let (x, y) = (cx as i64 + dx, cy as i64 + dy);
                if x < 0 || y < 0 || x >= size as i64 || y >= size as i64 {
                    continue;
                }
                let d = ((dx * dx + dy * dy) as f32).sqrt();
                let idx = (y as usize * size + x as usize) * 3;
                if d <= r {
                    img[idx..idx + 3].copy_from_slice(&rgb);
                } else if d <= r + 1.0 {
                    img[idx..idx + 3].copy_from_slice(&[40, 40, 40]);
                }
            }
        }
    }
    img
}

/// Writes RGB pixels as a PNG atomically.
///
/// # Errors
/// If it cannot be written; the message names the file.
pub fn write_png(path: &Path, rgb: &[u8], width: usize, height: usize) -> Result<(), String> {
    let bytes = encode_png(rgb, width, height).map_err(|e| format!("{}: {e}", path.display()))?;
    atomic_write(path, |f| f.write_all(&bytes)).map_err(|e| format!("{}: {e}", path.display()))
}

/// Encodes an RGB image (`width × height`, 3 bytes per pixel) as PNG in memory.
///
/// # Errors
/// If `rgb` does not hold `width × height` pixels.
pub fn encode_png(rgb: &[u8], width: usize, height: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| e.to_string())?;
    w.write_image_data(rgb).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// Lays greyscale tiles (each `tile_h × tile_w` values, row-major) out in a grid, each tile
/// scaled to its own min–max range (so sign and contrast within a filter show), magnified
/// `scale` times, with 1-pixel dark borders. Returns `(rgb, width, height)`.
///
/// ```
/// use backprop_train::plot::tile_grid;
/// let tiles = vec![vec![0.0, 1.0, 2.0, 3.0]; 5];
/// let (rgb, w, h) = tile_grid(&tiles, 2, 2, 4, 3);
/// assert_eq!((w, h), (3 * (2 * 4 + 1) + 1, 2 * (2 * 4 + 1) + 1));
/// assert_eq!(rgb.len(), w * h * 3);
/// ```
pub fn tile_grid(
    tiles: &[Vec<f32>],
    tile_h: usize,
    tile_w: usize,
    scale: usize,
    columns: usize,
) -> (Vec<u8>, usize, usize) {
    let cols = columns.max(1).min(tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols).max(1);
    let (cw, ch) = (tile_w * scale + 1, tile_h * scale + 1);
    let (w, h) = (cols * cw + 1, rows * ch + 1);
    let mut img = vec![40u8; w * h * 3];
    for (k, t) in tiles.iter().enumerate() {
        let (lo, hi) = t
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let range = if hi > lo { hi - lo } else { 1.0 };
        let (ox, oy) = ((k % cols) * cw + 1, (k / cols) * ch + 1);
        for y in 0..tile_h * scale {
            for x in 0..tile_w * scale {
                let v = t[(y / scale) * tile_w + x / scale];
                let g = (((v - lo) / range) * 255.0).round().clamp(0.0, 255.0) as u8;
                let i = ((oy + y) * w + ox + x) * 3;
                img[i..i + 3].copy_from_slice(&[g, g, g]);
            }
        }
    }
    (img, w, h)
}
