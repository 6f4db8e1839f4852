//! The classic networks' pictures (PNG): maps of a SOM's units as squares or hexagons
//! coloured by a value (U-matrix) or by the majority label with the hit count (hit map),
//! component planes, and units' weights as images. Text uses the font of
//! [`backprop_train::plot`].

use std::path::Path;

use backprop_train::plot::{captioned_tile_grid, ensure_font, write_png, FAMILY};
use plotters::prelude::*;

use crate::rbf::RbfNet;
use crate::som::{Som, Topology};

/// matplotlib's viridis at 0, ¼, ½, ¾, 1, interpolated linearly.
const VIRIDIS: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

/// matplotlib's "tab10", the class colours of every picture in the project.
pub const TAB10: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Viridis colour of `v` in [0, 1] (clamped).
pub fn viridis(v: f64) -> RGBColor {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (v.floor() as usize).min(3);
    let f = v - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn err(e: impl std::fmt::Display) -> String {
    format!("drawing failed: {e}")
}

/// One cell of a map picture.
pub struct Cell {
    /// Fill colour.
    pub colour: RGBColor,
    /// Text in the middle (may be empty).
    pub text: String,
}

const TITLE_H: u32 = 34;
const MARGIN: u32 = 10;

/// Draws a SOM's units as cells (squares, or hexagons on a hexagonal grid) at their plane
/// positions: unit `(i, j)` in row `i` from the top, column `j` from the left.
///
/// # Errors
/// If the file cannot be written (named in the message) or drawing fails.
pub fn unit_map_png(path: &Path, title: &str, som: &Som, cells: &[Cell]) -> Result<(), String> {
    ensure_font()?;
    let cfg = som.config();
    let hex = cfg.topology == Topology::Hexagonal;
    // screen x from the column (plane y), screen y from the row (plane x)
    let (cw, ch) = if hex {
        (3f64.sqrt() / 2.0, 1.0)
    } else {
        (1.0, 1.0)
    };
    let span_x = (cfg.cols as f64 - 1.0) * cw + if hex { 2.0 / 3f64.sqrt() } else { 1.0 };
    let span_y = cfg.rows as f64 + if hex { 0.5 } else { 0.0 };
    let cell = (900.0 / span_x.max(span_y)).clamp(6.0, 48.0);
    let (w, h) = (
        ((span_x * cell) as u32 + 2 * MARGIN).max(260),
        (span_y * cell) as u32 + 2 * MARGIN + TITLE_H,
    );
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        root.draw_text(
            title,
            &(FAMILY, 16).into_font().color(&BLACK),
            (MARGIN as i32, 9),
        )
        .map_err(err)?;
        let x0 = MARGIN as f64 + if hex { cell / 3f64.sqrt() } else { cell / 2.0 };
        let y0 = (MARGIN + TITLE_H) as f64 + cell / 2.0 + if hex { cell / 2.0 } else { 0.0 };
        let font_px = (cell * 0.38).clamp(7.0, 15.0) as u32;
        for (k, c) in cells.iter().enumerate().take(som.units()) {
            let (px, py) = som.position(k);
            let (cx, cy) = (x0 + py / ch * cell, y0 + px * cell);
            let corners: Vec<(i32, i32)> = if hex {
                let r = cell / 3f64.sqrt();
                (0..6)
                    .map(|a| {
                        let t = std::f64::consts::PI / 3.0 * a as f64;
                        ((cx + r * t.cos()) as i32, (cy + r * t.sin()) as i32)
                    })
                    .collect()
            } else {
                let r = cell / 2.0;
                vec![
                    ((cx - r) as i32, (cy - r) as i32),
                    ((cx + r) as i32, (cy - r) as i32),
                    ((cx + r) as i32, (cy + r) as i32),
                    ((cx - r) as i32, (cy + r) as i32),
                ]
            };
            root.draw(&Polygon::new(corners.clone(), c.colour.filled()))
                .map_err(err)?;
            let mut outline = corners;
            outline.push(outline[0]);
            root.draw(&PathElement::new(
                outline,
                RGBColor(255, 255, 255).stroke_width(1),
            ))
            .map_err(err)?;
            if !c.text.is_empty() && cell >= 14.0 {
                let lum =
                    0.3 * c.colour.0 as f64 + 0.59 * c.colour.1 as f64 + 0.11 * c.colour.2 as f64;
                let ink = if lum > 140.0 { BLACK } else { WHITE };
                let style = (FAMILY, font_px).into_font().color(&ink).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                );
                root.draw_text(&c.text, &style, (cx as i32, cy as i32))
                    .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    write_png(path, &rgb, w as usize, h as usize)
}

/// The U-matrix picture: each unit coloured by its normalised distance to its neighbours
/// (dark: close, inside a cluster; bright: a border between clusters).
///
/// # Errors
/// As [`unit_map_png`].
pub fn u_matrix_png(path: &Path, title: &str, som: &Som) -> Result<(), String> {
    let cells: Vec<Cell> = som
        .u_matrix(false)
        .into_iter()
        .map(|v| Cell {
            colour: viridis(v),
            text: String::new(),
        })
        .collect();
    unit_map_png(path, title, som, &cells)
}

/// The hit map: each unit coloured by the majority label of the samples it wins (lighter
/// when it wins fewer), labelled with that class's name; empty units grey.
///
/// # Errors
/// As [`unit_map_png`].
pub fn hit_map_png(
    path: &Path,
    title: &str,
    som: &Som,
    labels_map: &[Vec<usize>],
    class_names: &[String],
) -> Result<(), String> {
    let hits: Vec<usize> = labels_map.iter().map(|c| c.iter().sum()).collect();
    let max = hits.iter().copied().max().unwrap_or(0).max(1) as f64;
    let cells = labels_map
        .iter()
        .zip(&hits)
        .map(|(counts, &n)| {
            if n == 0 {
                return Cell {
                    colour: RGBColor(235, 235, 235),
                    text: String::new(),
                };
            }
            let (best, _) =
                counts
                    .iter()
                    .enumerate()
                    .fold((0, 0), |a, (i, &c)| if c > a.1 { (i, c) } else { a });
            let (r, g, b) = TAB10[best % 10];
            // lighten towards white for units that win few samples
            let f = 0.35 + 0.65 * (n as f64 / max).sqrt();
            let mix = |c: u8| (255.0 - (255.0 - c as f64) * f).round() as u8;
            let name = class_names
                .get(best)
                .cloned()
                .unwrap_or_else(|| best.to_string());
            Cell {
                colour: RGBColor(mix(r), mix(g), mix(b)),
                text: name,
            }
        })
        .collect::<Vec<_>>();
    unit_map_png(path, title, som, &cells)
}

/// Component planes: one small map per feature (at most `max` features; with more, those
/// whose weights vary most across the units), each scaled to its own range.
///
/// # Errors
/// If the file cannot be written or drawing fails.
pub fn component_planes_png(
    path: &Path,
    title: &str,
    som: &Som,
    feature_names: &[String],
    max: usize,
) -> Result<(), String> {
    let (d, m) = (som.dim(), som.units());
    let w = som.weights();
    let mut order: Vec<(f64, usize)> = (0..d)
        .map(|f| {
            let vals = (0..m).map(|k| f64::from(w[k * d + f]));
            let mean = vals.clone().sum::<f64>() / m as f64;
            (vals.map(|v| (v - mean).powi(2)).sum::<f64>(), f)
        })
        .collect();
    if d > max {
        order.sort_by(|a, b| b.0.total_cmp(&a.0));
        order.truncate(max);
        order.sort_by_key(|o| o.1);
    }
    let tiles: Vec<Vec<f32>> = order
        .iter()
        .map(|&(_, f)| (0..m).map(|k| w[k * d + f]).collect())
        .collect();
    let names: Vec<String> = order
        .iter()
        .map(|&(_, f)| {
            feature_names
                .get(f)
                .cloned()
                .unwrap_or_else(|| format!("x{f}"))
        })
        .collect();
    let cfg = som.config();
    let scale = (96 / cfg.rows.max(cfg.cols)).max(2);
    let columns = (tiles.len() as f64).sqrt().ceil() as usize;
    let (rgb, pw, ph) =
        captioned_tile_grid(title, &tiles, &names, cfg.rows, cfg.cols, scale, columns)?;
    write_png(path, &rgb, pw, ph)
}

/// Each unit's weights drawn as an image (`height × width`, one channel), in the map's
/// grid layout.
///
/// # Errors
/// If the file cannot be written or drawing fails.
pub fn unit_images_png(
    path: &Path,
    title: &str,
    som: &Som,
    height: usize,
    width: usize,
) -> Result<(), String> {
    let d = som.dim();
    let tiles: Vec<Vec<f32>> = som
        .weights()
        .chunks(d)
        .map(|w| w[..height * width].to_vec())
        .collect();
    let scale = if som.config().cols * width > 900 {
        1
    } else {
        2
    };
    let (rgb, w, h) =
        captioned_tile_grid(title, &tiles, &[], height, width, scale, som.config().cols)?;
    write_png(path, &rgb, w, h)
}

/// An RBF network's centres over 2-D data: the samples as small dots (in their class's
/// colour, or grey without labels), each centre as a black cross inside a circle of radius
/// σⱼ, its width. Both axes have one scale, so the circles are round.
///
/// # Errors
/// If the network's inputs are not 2-D, the file cannot be written (named in the message)
/// or drawing fails.
pub fn rbf_centres_png(
    path: &Path,
    title: &str,
    points: &[[f32; 2]],
    labels: Option<&[usize]>,
    net: &RbfNet,
) -> Result<(), String> {
    if net.dim() != 2 {
        return Err(format!(
            "{}: the centres are drawn for 2-D data, not {}-D",
            path.display(),
            net.dim()
        ));
    }
    ensure_font()?;
    let (w, h) = (720u32, 720u32);
    let centres: Vec<(f64, f64)> = net
        .centres
        .chunks(2)
        .map(|c| (f64::from(c[0]), f64::from(c[1])))
        .collect();
    let all = points
        .iter()
        .map(|p| (f64::from(p[0]), f64::from(p[1])))
        .chain(centres.iter().copied())
        .filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in all {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (-1.0, 1.0, -1.0, 1.0);
    }
    // one square window around the data, padded by 10%
    let half = ((x1 - x0).max(y1 - y0).max(1e-6)) * 0.6;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 16))
            .margin(MARGIN)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(cx - half..cx + half, cy - half..cy + half)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x₁")
            .y_desc("x₂")
            .label_style((FAMILY, 13))
            .draw()
            .map_err(err)?;
        let colour = |i: usize| match labels {
            Some(l) => {
                let (r, g, b) = TAB10[l.get(i).copied().unwrap_or(0) % TAB10.len()];
                RGBColor(r, g, b)
            }
            None => RGBColor(150, 150, 150),
        };
        chart
            .draw_series(points.iter().enumerate().map(|(i, p)| {
                Circle::new(
                    (f64::from(p[0]), f64::from(p[1])),
                    2,
                    colour(i).mix(0.6).filled(),
                )
            }))
            .map_err(err)?;
        for (&(x, y), &s) in centres.iter().zip(&net.widths) {
            let ring: Vec<(f64, f64)> = (0..=64)
                .map(|a| {
                    let t = std::f64::consts::TAU * a as f64 / 64.0;
                    (x + f64::from(s) * t.cos(), y + f64::from(s) * t.sin())
                })
                .collect();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    ring,
                    RGBColor(60, 60, 60).mix(0.7).stroke_width(1),
                )))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Cross::new(
                    (x, y),
                    5,
                    BLACK.stroke_width(2),
                )))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    write_png(path, &rgb, w as usize, h as usize)
}

/// An RBF network's centres as images (`height × width`, one channel), at most `max` of
/// them, 20 to a row.
///
/// # Errors
/// If the file cannot be written or drawing fails.
pub fn rbf_centre_images_png(
    path: &Path,
    title: &str,
    net: &RbfNet,
    height: usize,
    width: usize,
    max: usize,
) -> Result<(), String> {
    let tiles: Vec<Vec<f32>> = net
        .centres
        .chunks(net.dim())
        .take(max)
        .map(|c| c[..height * width].to_vec())
        .collect();
    let (rgb, w, h) = captioned_tile_grid(title, &tiles, &[], height, width, 2, 20)?;
    write_png(path, &rgb, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::som::SomConfig;

    #[test]
    fn the_map_pictures_are_written() {
        let dir = std::env::temp_dir().join(format!("classic-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for topology in [Topology::Rectangular, Topology::Hexagonal] {
            let cfg = SomConfig {
                rows: 3,
                cols: 4,
                topology,
                ..SomConfig::default()
            };
            let som = Som::new(&cfg, 4).unwrap();
            let p = dir.join("u.png");
            u_matrix_png(&p, "U-matrix", &som).unwrap();
            assert!(std::fs::metadata(&p).unwrap().len() > 100);
            let lm: Vec<Vec<usize>> = (0..12).map(|k| vec![k % 3, 1]).collect();
            hit_map_png(
                &dir.join("hits.png"),
                "hits",
                &som,
                &lm,
                &["a".into(), "b".into()],
            )
            .unwrap();
            component_planes_png(&dir.join("c.png"), "planes", &som, &[], 3).unwrap();
            unit_images_png(&dir.join("w.png"), "weights", &som, 2, 2).unwrap();
        }
        assert!((viridis(0.0).0, viridis(1.0).2) == (68, 37));
        // an RBF network's centres, over 2-D points and as images
        let x: Vec<f32> = (0..40).map(|i| (i as f32 * 0.7).sin()).collect();
        let labels: Vec<usize> = (0..20).map(|i| i % 2).collect();
        let cfg = crate::rbf::RbfConfig {
            centres: 4,
            ..Default::default()
        };
        let net = RbfNet::fit_classifier(&x, 2, &labels, 2, &cfg).unwrap();
        let pts: Vec<[f32; 2]> = x.chunks(2).map(|p| [p[0], p[1]]).collect();
        let p = dir.join("centres.png");
        rbf_centres_png(&p, "centres", &pts, Some(&labels), &net).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > 100);
        rbf_centre_images_png(&dir.join("ci.png"), "centres", &net, 1, 2, 10).unwrap();
        let one_d = RbfNet::fit_classifier(&x, 1, &[0; 40], 1, &cfg).unwrap();
        assert!(rbf_centres_png(&p, "1-D", &[], None, &one_d).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
