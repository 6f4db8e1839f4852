//! Pictures: line charts of the training curves (SVG) and the decision boundary of a 2-D
//! classifier with its data points (PNG), like the lectures' "classification problem,
//! 500 epochs" figure.

use std::io::BufWriter;
use std::path::Path;

use crate::checkpoint::atomic_write;

const PALETTE: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// An SVG line chart of named series over epochs 1..=n (NaN points are skipped).
pub fn line_chart_svg(title: &str, y_label: &str, series: &[(&str, Vec<f64>)]) -> String {
    let (w, h, l, r, t, b) = (640.0, 400.0, 70.0, 20.0, 40.0, 50.0);
    let pts: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    let n = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let (mut lo, mut hi) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    // never pad a non-negative quantity (a loss, an accuracy) below zero
    let (lo, hi) = (
        if lo >= 0.0 {
            (lo - pad).max(0.0)
        } else {
            lo - pad
        },
        hi + pad,
    );
    let x_of = |i: usize| {
        l + (w - l - r)
            * if n > 1 {
                i as f64 / (n - 1) as f64
            } else {
                0.5
            }
    };
    let y_of = |v: f64| t + (h - t - b) * (1.0 - (v - lo) / (hi - lo));
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    s += &format!(
        r#"<rect width="{w}" height="{h}" fill="white"/><text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    for k in 0..=5 {
        let v = lo + (hi - lo) * k as f64 / 5.0;
        let y = y_of(v);
        s += &format!(
            r##"<line x1="{l}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - r,
            l - 6.0,
            y + 4.0,
            fmt_tick(v)
        );
    }
    let step = (n as f64 / 10.0).ceil().max(1.0) as usize;
    for i in (0..n).step_by(step) {
        s += &format!(
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            x_of(i),
            h - b + 18.0,
            i + 1
        );
    }
    s += &format!(
        r#"<text x="{}" y="{}" text-anchor="middle">epoch</text>"#,
        (l + w - r) / 2.0,
        h - 10.0
    );
    s += &format!(
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"#,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
        esc(y_label)
    );
    s += &format!(
        r#"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        w - l - r,
        h - t - b
    );
    // the legend goes where the curves end up not being: bottom right if they finish high
    let ends: Vec<f64> = series
        .iter()
        .filter_map(|(_, v)| v.iter().rev().find(|x| x.is_finite()).copied())
        .collect();
    let end_high = !ends.is_empty()
        && ends.iter().map(|&v| (v - lo) / (hi - lo)).sum::<f64>() / ends.len() as f64 > 0.5;
    let legend_top = if end_high {
        h - b - 12.0 - 16.0 * series.len() as f64
    } else {
        t + 16.0
    };
    for (k, (name, vals)) in series.iter().enumerate() {
        let c = PALETTE[k % PALETTE.len()];
        let path: Vec<String> = vals
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| format!("{:.1},{:.1}", x_of(i), y_of(v)))
            .collect();
        if !path.is_empty() {
            s += &format!(
                r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
        }
        if path.len() == 1 {
            s += &format!(
                r#"<circle cx="{}" r="3" fill="{c}" cy="{}"/>"#,
                path[0].split(',').next().unwrap(),
                path[0].split(',').nth(1).unwrap()
            );
        }
        let ly = legend_top + 16.0 * k as f64;
        s += &format!(
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            w - r - 130.0,
            w - r - 110.0,
            w - r - 104.0,
            ly + 4.0,
            esc(name)
        );
    }
    s + "</svg>\n"
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
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
    atomic_write(path, |f| {
        let mut enc = png::Encoder::new(BufWriter::new(f), width as u32, height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(std::io::Error::other)?;
        w.write_image_data(rgb).map_err(std::io::Error::other)?;
        w.finish().map_err(std::io::Error::other)
    })
    .map_err(|e| format!("{}: {e}", path.display()))
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
