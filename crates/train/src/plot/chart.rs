//! Line charts drawn with `plotters` into SVG: a title, axis labels, ticks chosen by
//! [`super::ticks`], one coloured line (with dots when there are few points) per series, and
//! a legend outside the plot area on the right, so that it never hides a curve.

use plotters::prelude::*;

use super::font::{ensure_font, FAMILY};
use super::ticks::{integer_ticks, linear_ticks, log_label, log_ticks};

/// Series colours (matplotlib's "tab10" order; the decision boundary uses the same).
pub(crate) const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// How the x axis is labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XAxis {
    /// Whole numbers only (epochs).
    Integer,
    /// Any real numbers.
    Real,
}

/// How the y axis maps and labels values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YAxis {
    /// Linear; a non-negative quantity's axis never goes below zero.
    Linear,
    /// Logarithmic (base 10); values ≤ 0 are left out.
    Log,
    /// Fractions in [0, 1] shown as percent, on an axis inside 0–100 %.
    Percent,
}

/// What a chart function drew: the SVG text and its axes, so that callers and tests can see
/// the ticks without parsing SVG.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The picture, a complete SVG document.
    pub svg: String,
    /// The x axis tick labels, left to right.
    pub x_ticks: Vec<String>,
    /// The y axis tick labels, bottom to top.
    pub y_ticks: Vec<String>,
    /// The y axis range in the units of the labels (percent for [`YAxis::Percent`]).
    pub y_range: (f64, f64),
    /// The y axis scale.
    pub y_axis: YAxis,
    /// The legend's entries, one per drawn series.
    pub legend: Vec<String>,
}

/// Everything a line chart needs.
pub(crate) struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: &'a [(&'a str, Vec<(f64, f64)>)],
    pub x_axis: XAxis,
    pub y_axis: YAxis,
    /// Append each series' last value to its legend entry.
    pub last_in_legend: bool,
}

const PLOT_W: u32 = 720;
const PLOT_H: u32 = 440;

/// `(lo, hi)` of the finite values, or `None`.
fn extent(v: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    v.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((a, b)) => Some((a.min(v), b.max(v))),
    })
}

/// Pads `(lo, hi)` by 5 % of its span (or a little around a single value).
fn padded((lo, hi): (f64, f64), min_pad: f64) -> (f64, f64) {
    let pad = ((hi - lo) * 0.05).max(if hi > lo {
        0.0
    } else {
        min_pad.max(hi.abs() * 0.05)
    });
    (lo - pad, hi + pad)
}

impl LineChart<'_> {
    /// Draws the chart.
    ///
    /// # Errors
    /// Only if drawing fails (the font cannot be loaded), never for odd data: non-finite
    /// points are left out and an empty chart still has axes.
    pub(crate) fn render(&self) -> Result<Chart, String> {
        ensure_font()?;
        let y_axis = self.y_axis;
        // map values into axis units: log10 for a log axis, percent for accuracy
        let ty = move |y: f64| match y_axis {
            YAxis::Log if y > 0.0 => y.log10(),
            YAxis::Log => f64::NAN,
            YAxis::Percent => 100.0 * y,
            YAxis::Linear => y,
        };
        let runs: Vec<Vec<Vec<(f64, f64)>>> = self
            .series
            .iter()
            .map(|(_, pts)| {
                pts.split(|&(x, y)| !(x.is_finite() && ty(y).is_finite()))
                    .filter(|r| !r.is_empty())
                    .map(|r| r.iter().map(|&(x, y)| (x, ty(y))).collect())
                    .collect()
            })
            .collect();
        let all = || runs.iter().flatten().flatten();
        let (dx0, dx1) = extent(all().map(|p| p.0)).unwrap_or((0.0, 1.0));
        let (x0, x1) = match self.x_axis {
            XAxis::Integer => {
                let pad = ((dx1 - dx0) * 0.02).max(0.3);
                (dx0 - pad, dx1 + pad)
            }
            XAxis::Real => padded((dx0, dx1), 0.5),
        };
        let data = extent(all().map(|p| p.1));
        let (lo, hi) = match (y_axis, data) {
            (_, None) => (0.0, 1.0),
            (YAxis::Percent, Some((a, b))) => {
                let pad = ((b - a) * 0.05).max(1.0);
                ((a - pad).max(0.0), (b + pad).min(100.0))
            }
            (YAxis::Linear, Some((a, b))) => {
                let (l, h) = padded((a, b), 0.05);
                (if a >= 0.0 { l.max(0.0) } else { l }, h)
            }
            (YAxis::Log, Some(e)) => padded(e, 0.1),
        };
        let x_ticks: Vec<f64> = match self.x_axis {
            // ticks only where there is data: no epoch 0 on a padded axis
            XAxis::Integer => integer_ticks(dx0.ceil() as i64, dx1.floor() as i64, 10)
                .into_iter()
                .map(|t| t as f64)
                .collect(),
            XAxis::Real => linear_ticks(x0, x1, 8).0,
        };
        let x_dec = match self.x_axis {
            XAxis::Integer => 0,
            XAxis::Real => linear_ticks(x0, x1, 8).1,
        };
        let (y_ticks, y_dec) = match y_axis {
            YAxis::Log => (
                log_ticks(10f64.powf(lo), 10f64.powf(hi))
                    .into_iter()
                    .map(f64::log10)
                    .collect(),
                0,
            ),
            _ => linear_ticks(lo, hi, 6),
        };
        let x_fmt = move |v: &f64| format!("{v:.x_dec$}");
        let y_fmt = move |v: &f64| match y_axis {
            YAxis::Log => log_label(10f64.powf(*v)),
            YAxis::Percent => format!("{v:.y_dec$}%"),
            YAxis::Linear => format!("{v:.y_dec$}"),
        };

        let dotted = |r: &Vec<Vec<(f64, f64)>>| r.iter().map(Vec::len).sum::<usize>() <= 60;
        let legend: Vec<(usize, String)> = self
            .series
            .iter()
            .zip(&runs)
            .enumerate()
            .filter(|(_, (_, r))| !r.is_empty())
            .map(|(k, ((name, _), r))| {
                let last = r.last().and_then(|r| r.last()).map(|p| p.1);
                let text = match (self.last_in_legend, last) {
                    (true, Some(v)) => format!("{name} (last {})", y_fmt_exact(y_axis, v)),
                    _ => name.to_string(),
                };
                (k, text)
            })
            .collect();
        let label_font = (FAMILY, 15).into_font();
        let legend_w = {
            let chars = legend.iter().map(|(_, t)| t.chars().count()).max();
            chars.map_or(0, |c| 7 * c as u32 + 48)
        };

        let mut svg = String::new();
        {
            let root =
                SVGBackend::with_string(&mut svg, (PLOT_W + legend_w, PLOT_H)).into_drawing_area();
            root.fill(&WHITE).map_err(draw_err)?;
            let (left, right) = root.split_horizontally(PLOT_W);
            let mut chart = ChartBuilder::on(&left)
                .caption(self.title, (FAMILY, 20))
                .margin(12)
                .x_label_area_size(48)
                .y_label_area_size(72)
                .build_cartesian_2d(
                    TickedAxis::new(x0, x1, x_ticks.clone()),
                    TickedAxis::new(lo, hi, y_ticks.clone()),
                )
                .map_err(draw_err)?;
            chart
                .configure_mesh()
                .x_desc(self.x_label)
                .y_desc(self.y_label)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .label_style((FAMILY, 14))
                .axis_desc_style((FAMILY, 15))
                .bold_line_style(RGBColor(225, 225, 225))
                .axis_style(RGBColor(90, 90, 90))
                .draw()
                .map_err(draw_err)?;
            for (k, r) in runs.iter().enumerate() {
                let colour = COLOURS[k % COLOURS.len()];
                chart
                    .draw_series(
                        r.iter()
                            .map(|run| PathElement::new(run.clone(), colour.stroke_width(2))),
                    )
                    .map_err(draw_err)?;
                let dots = r.iter().flatten().filter(|_| dotted(r)).copied();
                let lone = r.iter().filter(|run| run.len() == 1).flatten().copied();
                chart
                    .draw_series(dots.chain(lone).map(|p| Circle::new(p, 3, colour.filled())))
                    .map_err(draw_err)?;
            }
            // the legend, outside the plot area
            for (row, (k, text)) in legend.iter().enumerate() {
                let colour = COLOURS[k % COLOURS.len()];
                let y = 60 + 24 * row as i32;
                right
                    .draw(&PathElement::new(
                        vec![(4, y), (28, y)],
                        colour.stroke_width(2),
                    ))
                    .map_err(draw_err)?;
                if dotted(&runs[*k]) {
                    right
                        .draw(&Circle::new((16, y), 3, colour.filled()))
                        .map_err(draw_err)?;
                }
                right
                    .draw_text(text, &label_font.color(&BLACK), (36, y - 8))
                    .map_err(draw_err)?;
            }
            root.present().map_err(draw_err)?;
        }
        Ok(Chart {
            svg,
            x_ticks: x_ticks.iter().map(x_fmt).collect(),
            y_ticks: y_ticks.iter().map(y_fmt).collect(),
            y_range: match y_axis {
                YAxis::Log => (10f64.powf(lo), 10f64.powf(hi)),
                _ => (lo, hi),
            },
            y_axis,
            legend: legend.into_iter().map(|(_, t)| t).collect(),
        })
    }
}

/// A value (in axis units) with enough digits to read off: 3 significant digits, `%` on a
/// percent axis.
fn y_fmt_exact(y_axis: YAxis, v: f64) -> String {
    match y_axis {
        YAxis::Percent => format!("{v:.1}%"),
        YAxis::Log => sig3(10f64.powf(v)),
        YAxis::Linear => sig3(v),
    }
}

fn sig3(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let mag = v.abs().log10().floor() as i32;
    if !(-4..6).contains(&mag) {
        return format!("{v:.2e}");
    }
    let decimals = (2 - mag).max(0) as usize;
    format!("{v:.decimals$}")
}

/// A linear `f64` axis over `lo..hi` whose ticks are exactly the given values (plotters'
/// own `with_key_points` does not take a label formatter).
#[derive(Debug, Clone)]
pub(crate) struct TickedAxis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl TickedAxis {
    pub(crate) fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Self {
        TickedAxis { lo, hi, ticks }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let t = (v - self.lo) / (self.hi - self.lo);
        (limit.0 as f64 + t * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

pub(crate) fn draw_err(e: impl std::fmt::Display) -> String {
    format!("drawing a picture: {e}")
}
