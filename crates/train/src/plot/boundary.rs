//! The decision boundary of a 2-D classifier as a PNG a person can read: a title, axes x₁ and
//! x₂ with ticks on one common scale, the plane shaded by the predicted class (paler where the
//! model is less sure), training points filled and test points hollow, and a legend with the
//! classes, the two markers and both accuracies.

use std::path::Path;

use plotters::element::ComposedElement;
use plotters::prelude::*;

use super::chart::{draw_err, TickedAxis, COLOURS};
use super::font::{ensure_font, FAMILY};
use super::ticks::linear_ticks;
use super::write_png;

/// Width and height in pixels of [`decision_boundary_png`]'s picture.
pub const DECISION_BOUNDARY_SIZE: (u32, u32) = (760, 600);
/// Height of its title strip, in pixels from the top.
pub const TITLE_STRIP: u32 = 40;
const LEGEND_W: u32 = 200;
const MARGIN: u32 = 12;
const X_LABELS: u32 = 48;
const Y_LABELS: u32 = 56;

/// Points and their class labels.
pub type Labelled<'a> = (&'a [[f32; 2]], &'a [usize]);

/// The winning class of each row of probabilities.
fn argmax(rows: &[Vec<f32>]) -> Vec<usize> {
    rows.iter()
        .map(|p| {
            p.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
                .0
        })
        .collect()
}

/// Accuracy in percent of `predict` on labelled points (`None` if there are none).
fn accuracy(
    (pts, labels): Labelled,
    predict: &mut impl FnMut(&[f32]) -> Vec<Vec<f32>>,
) -> Option<f64> {
    if pts.is_empty() {
        return None;
    }
    let flat: Vec<f32> = pts.iter().flatten().copied().collect();
    let hits = argmax(&predict(&flat))
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count();
    Some(100.0 * hits as f64 / pts.len() as f64)
}

/// Data bounds `(x0, x1, y0, y1)` of all points, padded by 10 % and widened so that one unit
/// is as long on both axes of a plot area `pw × ph` pixels (circles stay round).
fn bounds(points: impl Iterator<Item = [f32; 2]>, pw: f64, ph: f64) -> (f64, f64, f64, f64) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in points.filter(|p| p[0].is_finite() && p[1].is_finite()) {
        let (x, y) = (p[0] as f64, p[1] as f64);
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (-1.0, 1.0, -1.0, 1.0);
    }
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let per_px = ((x1 - x0) / pw).max((y1 - y0) / ph).max(1e-6) * 1.2;
    let (hw, hh) = (per_px * pw / 2.0, per_px * ph / 2.0);
    (cx - hw, cx + hw, cy - hh, cy + hh)
}

/// Writes the decision boundary of a 2-D classifier as a PNG of [`DECISION_BOUNDARY_SIZE`].
///
/// `predict` maps a batch of points (row-major `[m, 2]`) to class probabilities
/// (`m` rows of `classes` values). The plane is shaded by the winning class, from white
/// (probability 1/classes) to a light tint of the class colour (probability 1); training
/// points are filled dots, test points hollow rings, both in their true class's colour, so a
/// point whose colour differs from the shade under it is misclassified.
///
/// # Errors
/// If the file cannot be written (the message names it) or drawing fails.
///
/// ```
/// use backprop_train::plot::decision_boundary_png;
/// let pts = [[0.0f32, 0.0], [1.0, 1.0]];
/// let dir = std::env::temp_dir().join(format!("db-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("decision_boundary.png");
/// decision_boundary_png(&path, "demo", (&pts, &[0, 1]), None, 2, |g| {
///     g.chunks(2).map(|p| if p[0] + p[1] > 1.0 { vec![0.1, 0.9] } else { vec![0.9, 0.1] }).collect()
/// }).unwrap();
/// assert!(path.exists());
/// ```
pub fn decision_boundary_png(
    path: &Path,
    title: &str,
    train: Labelled,
    test: Option<Labelled>,
    classes: usize,
    mut predict: impl FnMut(&[f32]) -> Vec<Vec<f32>>,
) -> Result<(), String> {
    let (w, h) = DECISION_BOUNDARY_SIZE;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    draw_boundary(&mut rgb, title, train, test, classes, &mut predict)?;
    write_png(path, &rgb, w as usize, h as usize)
}

fn draw_boundary(
    rgb: &mut [u8],
    title: &str,
    train: Labelled,
    test: Option<Labelled>,
    classes: usize,
    predict: &mut impl FnMut(&[f32]) -> Vec<Vec<f32>>,
) -> Result<(), String> {
    ensure_font()?;
    let (w, h) = DECISION_BOUNDARY_SIZE;
    let root = BitMapBackend::with_buffer(rgb, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let (top, body) = root.split_vertically(TITLE_STRIP);
    top.draw_text(
        title,
        &(FAMILY, 20).into_font().color(&BLACK),
        (MARGIN as i32, 10),
    )
    .map_err(draw_err)?;
    let (left, legend) = body.split_horizontally(w - LEGEND_W);
    let (pw, ph) = (
        w - LEGEND_W - 2 * MARGIN - Y_LABELS,
        h - TITLE_STRIP - 2 * MARGIN - X_LABELS,
    );
    let all = train
        .0
        .iter()
        .chain(test.iter().flat_map(|t| t.0.iter()))
        .copied();
    let (x0, x1, y0, y1) = bounds(all, pw as f64, ph as f64);
    let mut chart = ChartBuilder::on(&left)
        .margin(MARGIN)
        .x_label_area_size(X_LABELS)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(
            TickedAxis::new(x0, x1, linear_ticks(x0, x1, 8).0),
            TickedAxis::new(y0, y1, linear_ticks(y0, y1, 8).0),
        )
        .map_err(draw_err)?;

    // the shading: one prediction per pixel of the plot area
    let area = chart.plotting_area().strip_coord_spec();
    let (aw, ah) = area.dim_in_pixel();
    let mut grid = Vec::with_capacity((aw * ah * 2) as usize);
    for j in 0..ah {
        for i in 0..aw {
            grid.push((x0 + (x1 - x0) * (i as f64 + 0.5) / aw as f64) as f32);
            grid.push((y1 - (y1 - y0) * (j as f64 + 0.5) / ah as f64) as f32);
        }
    }
    let probs = predict(&grid);
    let k = classes.max(2) as f32;
    for (idx, (p, c)) in probs.iter().zip(argmax(&probs)).enumerate() {
        let conf = p.get(c).copied().unwrap_or(0.0);
        let strength = ((conf - 1.0 / k) / (1.0 - 1.0 / k)).clamp(0.0, 1.0) * 0.5;
        let RGBColor(r, g, b) = COLOURS[c % COLOURS.len()];
        let tint = |v: u8| (255.0 - (255.0 - v as f32) * strength) as u8;
        let (i, j) = (idx as u32 % aw, idx as u32 / aw);
        area.draw_pixel((i as i32, j as i32), &RGBColor(tint(r), tint(g), tint(b)))
            .map_err(draw_err)?;
    }
    let fmt_x = |v: &f64| format!("{v:.*}", linear_ticks(x0, x1, 8).1);
    let fmt_y = |v: &f64| format!("{v:.*}", linear_ticks(y0, y1, 8).1);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x₁")
        .y_desc("x₂")
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .axis_style(RGBColor(90, 90, 90))
        .draw()
        .map_err(draw_err)?;
    let (pts, labels) = train;
    let dots = pts
        .iter()
        .zip(labels)
        .map(|(p, &l)| train_marker((p[0] as f64, p[1] as f64), COLOURS[l % COLOURS.len()]));
    chart.draw_series(dots).map_err(draw_err)?;
    if let Some((pts, labels)) = test {
        let rings = pts
            .iter()
            .zip(labels)
            .map(|(p, &l)| test_marker((p[0] as f64, p[1] as f64), COLOURS[l % COLOURS.len()]));
        chart.draw_series(rings).map_err(draw_err)?;
    }
    let train_acc = accuracy(train, predict);
    let test_acc = test.and_then(|t| accuracy(t, predict));
    draw_legend(&legend, classes, test.is_some(), train_acc, test_acc)?;
    root.present().map_err(draw_err)
}

type Dot = Circle<(i32, i32), i32>;
type Ring<C, DB> = ComposedElement<C, DB, Dot, ComposedElement<(i32, i32), DB, Dot, Dot>>;

/// A filled dot with a dark outline.
fn train_marker<C, DB: DrawingBackend>(
    at: C,
    colour: RGBColor,
) -> ComposedElement<C, DB, Dot, Dot> {
    EmptyElement::at(at)
        + Circle::new((0, 0), 4, colour.filled())
        + Circle::new((0, 0), 4, RGBColor(40, 40, 40).stroke_width(1))
}

/// A hollow ring: white inside, the class colour around it, a dark rim outside.
fn test_marker<C, DB: DrawingBackend>(at: C, colour: RGBColor) -> Ring<C, DB> {
    EmptyElement::at(at)
        + Circle::new((0, 0), 5, WHITE.filled())
        + Circle::new((0, 0), 4, colour.stroke_width(2))
        + Circle::new((0, 0), 6, RGBColor(40, 40, 40).stroke_width(1))
}

fn draw_legend(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    classes: usize,
    has_test: bool,
    train_acc: Option<f64>,
    test_acc: Option<f64>,
) -> Result<(), String> {
    let font = (FAMILY, 15).into_font().color(&BLACK);
    let small = (FAMILY, 13).into_font().color(&RGBColor(60, 60, 60));
    let mut y = MARGIN as i32 + 8;
    let line = |text: &str, style: &TextStyle, x: i32, y: &mut i32| {
        let r = area.draw_text(text, style, (x, *y - 8)).map_err(draw_err);
        *y += 22;
        r
    };
    line("classes", &font, 8, &mut y)?;
    for c in 0..classes {
        let colour = COLOURS[c % COLOURS.len()];
        area.draw(&Rectangle::new(
            [(10, y - 7), (24, y + 7)],
            colour.mix(0.5).filled(),
        ))
        .map_err(draw_err)?;
        area.draw(&train_marker((17, y), colour))
            .map_err(draw_err)?;
        line(&format!("class {c}"), &font, 32, &mut y)?;
    }
    y += 10;
    area.draw(&train_marker((17, y), RGBColor(150, 150, 150)))
        .map_err(draw_err)?;
    line("train (filled)", &font, 32, &mut y)?;
    if has_test {
        area.draw(&test_marker((17, y), RGBColor(150, 150, 150)))
            .map_err(draw_err)?;
        line("test (hollow)", &font, 32, &mut y)?;
    }
    y += 10;
    for (name, acc) in [("train", train_acc), ("test", test_acc)] {
        if let Some(a) = acc {
            line(&format!("{name} accuracy {a:.1}%"), &small, 8, &mut y)?;
        }
    }
    y += 10;
    line("shade: predicted class,", &small, 8, &mut y)?;
    line("paler where less sure", &small, 8, &mut y)?;
    Ok(())
}
