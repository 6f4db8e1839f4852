//! SVG and PNG of a [`Graph`]: one scene (boxes, curved arrows, labels) computed once from
//! the layout and drawn by two small back ends, so that both pictures are the same.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::layout::layout_with_gaps;
use super::{Graph, NodeKind};
use crate::plot::{encode_png, ensure_font, FAMILY};

const TEXT_PX: f64 = 12.0;
const LABEL_PX: f64 = 11.0;
const TITLE_PX: f64 = 16.0;
const LINE_H: f64 = 15.0;
const PAD: f64 = 6.0;
const MARGIN: f64 = 16.0;
const ROW_GAP: f64 = 22.0;
const MAX_PIXELS: f64 = 40e6;
/// Space between an edge's label and the box the edge enters.
const LABEL_MARGIN: f64 = 14.0;

/// The box colour of a kind.
pub(super) fn fill(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Input => "#dbe9f6",
        NodeKind::Parameter => "#e2f0d9",
        NodeKind::Constant => "#eeeeee",
        NodeKind::Op => "#fff2cc",
        NodeKind::Layer => "#e8dff5",
        NodeKind::Output => "#fde2e1",
    }
}

fn rgb(hex: &str) -> RGBColor {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0);
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// Width of `text` at `px` in the compiled-in font (an estimate if the font is unusable).
fn text_width(text: &str, px: f64) -> f64 {
    if ensure_font().is_ok() {
        if let Ok((w, _)) = (FAMILY, px).into_font().box_size(text) {
            return f64::from(w);
        }
    }
    text.chars().count() as f64 * px * 0.6
}

struct BoxShape {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    fill: &'static str,
    title: String,
    lines: Vec<String>,
}

struct Arrow {
    /// The cubic Bézier's points.
    p: [(f64, f64); 4],
    label: String,
    /// The label's centre.
    at: (f64, f64),
    label_w: f64,
    /// The left edge of the target's column (labels before one column may collide).
    column: f64,
}

struct Scene {
    w: f64,
    h: f64,
    title: String,
    legend: Vec<String>,
    boxes: Vec<BoxShape>,
    arrows: Vec<Arrow>,
}

fn bezier(p: &[(f64, f64); 4], t: f64) -> (f64, f64) {
    let u = 1.0 - t;
    let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
    (
        a * p[0].0 + b * p[1].0 + c * p[2].0 + d * p[3].0,
        a * p[0].1 + b * p[1].1 + c * p[2].1 + d * p[3].1,
    )
}

fn scene(g: &Graph) -> Scene {
    let sizes: Vec<(f64, f64)> = g
        .nodes
        .iter()
        .map(|n| {
            let w = std::iter::once(text_width(&n.title, TEXT_PX) + 4.0)
                .chain(n.lines.iter().map(|l| text_width(l, TEXT_PX)))
                .fold(0.0, f64::max);
            (
                w + 2.0 * PAD,
                2.0 * PAD + LINE_H * (1 + n.lines.len()) as f64,
            )
        })
        .collect();
    let gaps: Vec<f64> = g
        .edges
        .iter()
        .map(|e| (text_width(&e.label, LABEL_PX) + 2.0 * LABEL_MARGIN + 20.0).max(60.0))
        .collect();
    let pairs: Vec<(usize, usize)> = g.edges.iter().map(|e| (e.from, e.to)).collect();
    let place = layout_with_gaps(&sizes, &pairs, &gaps, ROW_GAP);
    let top = MARGIN + TITLE_PX + 8.0 + 14.0 * g.legend.len() as f64 + 12.0;
    let boxes: Vec<BoxShape> = g
        .nodes
        .iter()
        .zip(&place)
        .map(|(n, p)| BoxShape {
            x: MARGIN + p.x,
            y: top + p.y,
            w: p.w,
            h: p.h,
            fill: fill(n.kind),
            title: n.title.clone(),
            lines: n.lines.clone(),
        })
        .collect();
    let arrows = arrows(g, &boxes);
    let content_w = boxes.iter().map(|b| b.x + b.w).fold(0.0, f64::max);
    let heading_w = std::iter::once(text_width(&g.title, TITLE_PX))
        .chain(g.legend.iter().map(|l| text_width(l, LABEL_PX)))
        .fold(0.0, f64::max)
        + MARGIN;
    let w = content_w.max(heading_w) + MARGIN;
    let h = boxes.iter().map(|b| b.y + b.h).fold(top, f64::max) + MARGIN;
    Scene {
        w: w.ceil(),
        h: h.ceil(),
        title: g.title.clone(),
        legend: g.legend.clone(),
        boxes,
        arrows,
    }
}

/// The arrows: each leaves its source's right side and enters its target's left side at a
/// point spread by the other end's height (so arrows into one box do not cross); labels sit
/// in the gap before the target and are pushed apart where they would overlap.
fn arrows(g: &Graph, boxes: &[BoxShape]) -> Vec<Arrow> {
    let n = boxes.len();
    let cy = |k: usize| boxes[k].y + boxes[k].h / 2.0;
    let mut ins: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut outs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, e) in g.edges.iter().enumerate() {
        ins[e.to].push(k);
        outs[e.from].push(k);
    }
    let mut end_y = vec![0.0; g.edges.len()];
    let mut start_y = vec![0.0; g.edges.len()];
    for v in 0..n {
        ins[v].sort_by(|&a, &b| cy(g.edges[a].from).total_cmp(&cy(g.edges[b].from)));
        outs[v].sort_by(|&a, &b| cy(g.edges[a].to).total_cmp(&cy(g.edges[b].to)));
        let b = &boxes[v];
        for (i, &k) in ins[v].iter().enumerate() {
            end_y[k] = b.y + b.h * (i + 1) as f64 / (ins[v].len() + 1) as f64;
        }
        for (i, &k) in outs[v].iter().enumerate() {
            start_y[k] = b.y + b.h * (i + 1) as f64 / (outs[v].len() + 1) as f64;
        }
    }
    let mut out: Vec<Arrow> = g
        .edges
        .iter()
        .enumerate()
        .map(|(k, e)| {
            let (s, t) = (&boxes[e.from], &boxes[e.to]);
            let (x1, x2) = (s.x + s.w, t.x);
            let label_w = text_width(&e.label, LABEL_PX);
            let dx = ((x2 - x1) / 2.0).max(20.0);
            let p = [
                (x1, start_y[k]),
                (x1 + dx, start_y[k]),
                (x2 - dx.min(label_w + 2.0 * LABEL_MARGIN), end_y[k]),
                (x2, end_y[k]),
            ];
            // the label's centre: just before the target, on the curve
            let want_x = x2 - LABEL_MARGIN - label_w / 2.0;
            let at = (0..=48)
                .map(|i| bezier(&p, i as f64 / 48.0))
                .min_by(|a, b| (a.0 - want_x).abs().total_cmp(&(b.0 - want_x).abs()))
                .unwrap_or(p[0]);
            Arrow {
                p,
                label: e.label.clone(),
                at,
                label_w,
                column: t.x,
            }
        })
        .collect();
    // push apart labels that share a gap (same x) and would overlap
    let mut order: Vec<usize> = (0..out.len())
        .filter(|&k| !out[k].label.is_empty())
        .collect();
    order.sort_by(|&a, &b| {
        (out[a].column, out[a].at.1)
            .partial_cmp(&(out[b].column, out[b].at.1))
            .unwrap()
    });
    for i in 1..order.len() {
        let b = order[i];
        // the nearest label above in the same gap that overlaps horizontally
        for &a in order[..i].iter().rev() {
            if out[a].column != out[b].column {
                break;
            }
            let overlap_x =
                (out[a].at.0 - out[b].at.0).abs() * 2.0 < out[a].label_w + out[b].label_w;
            if overlap_x {
                if out[b].at.1 - out[a].at.1 < LABEL_PX + 3.0 {
                    out[b].at.1 = out[a].at.1 + LABEL_PX + 3.0;
                }
                break;
            }
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The colour of a box's line: gradients in red, everything else black.
fn line_colour(line: &str) -> &'static str {
    if line.starts_with("grad") {
        "#b03030"
    } else {
        "#222222"
    }
}

pub(super) fn svg(g: &Graph) -> String {
    let s = scene(g);
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"DejaVu Sans, Verdana, sans-serif\">\n",
        w = s.w,
        h = s.h
    );
    o += "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#666\"/></marker></defs>\n";
    o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    o += &format!(
        "<text x=\"{MARGIN}\" y=\"{}\" font-size=\"{TITLE_PX}\" font-weight=\"bold\">{}</text>\n",
        MARGIN + TITLE_PX * 0.8,
        esc(&s.title)
    );
    for (i, l) in s.legend.iter().enumerate() {
        o += &format!(
            "<text x=\"{MARGIN}\" y=\"{:.1}\" font-size=\"{LABEL_PX}\" fill=\"#555\">{}</text>\n",
            MARGIN + TITLE_PX + 8.0 + 14.0 * i as f64 + LABEL_PX * 0.8,
            esc(l)
        );
    }
    for a in &s.arrows {
        let [p0, p1, p2, p3] = a.p;
        o += &format!(
            "<path d=\"M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" stroke=\"#777\" fill=\"none\" marker-end=\"url(#arrow)\"/>\n",
            p0.0, p0.1, p1.0, p1.1, p2.0, p2.1, p3.0, p3.1
        );
    }
    for a in s.arrows.iter().filter(|a| !a.label.is_empty()) {
        o += &format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"white\" fill-opacity=\"0.85\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{LABEL_PX}\" fill=\"#1f5fa8\" text-anchor=\"middle\">{}</text>\n",
            a.at.0 - a.label_w / 2.0 - 2.0,
            a.at.1 - LABEL_PX / 2.0 - 2.0,
            a.label_w + 4.0,
            LABEL_PX + 3.0,
            a.at.0,
            a.at.1 + LABEL_PX * 0.35,
            esc(&a.label)
        );
    }
    for b in &s.boxes {
        o += &format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"6\" fill=\"{}\" stroke=\"#555\"/>\n",
            b.x, b.y, b.w, b.h, b.fill
        );
        o += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{TEXT_PX}\" font-weight=\"bold\">{}</text>\n",
            b.x + PAD,
            b.y + PAD + TEXT_PX * 0.85,
            esc(&b.title)
        );
        for (i, l) in b.lines.iter().enumerate() {
            o += &format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{TEXT_PX}\" fill=\"{}\">{}</text>\n",
                b.x + PAD,
                b.y + PAD + LINE_H * (i + 1) as f64 + TEXT_PX * 0.85,
                line_colour(l),
                esc(l)
            );
        }
    }
    o + "</svg>\n"
}

fn draw_err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing the graph failed: {e:?}")
}

pub(super) fn png(g: &Graph) -> Result<Vec<u8>, String> {
    let s = scene(g);
    if s.w * s.h > MAX_PIXELS {
        return Err(format!(
            "the picture would be {}×{} pixels, too large for a PNG; draw it at layer level or use the SVG",
            s.w, s.h
        ));
    }
    ensure_font()?;
    let (w, h) = (s.w as usize, s.h as usize);
    let mut img = vec![255u8; w * h * 3];
    {
        let root = BitMapBackend::with_buffer(&mut img, (w as u32, h as u32)).into_drawing_area();
        let font = |px: f64, c: RGBColor| {
            (FAMILY, px)
                .into_font()
                .color(&c)
                .pos(Pos::new(HPos::Left, VPos::Top))
        };
        let pt = |x: f64, y: f64| (x.round() as i32, y.round() as i32);
        root.draw_text(&s.title, &font(TITLE_PX, BLACK), pt(MARGIN, MARGIN))
            .map_err(draw_err)?;
        for (i, l) in s.legend.iter().enumerate() {
            let y = MARGIN + TITLE_PX + 8.0 + 14.0 * i as f64;
            root.draw_text(l, &font(LABEL_PX, rgb("#555555")), pt(MARGIN, y))
                .map_err(draw_err)?;
        }
        let grey = rgb("#777777");
        for a in &s.arrows {
            let pts: Vec<(i32, i32)> = (0..=24)
                .map(|i| bezier(&a.p, i as f64 / 24.0))
                .map(|(x, y)| pt(x, y))
                .collect();
            root.draw(&PathElement::new(pts, grey.stroke_width(1)))
                .map_err(draw_err)?;
            let (x, y) = a.p[3];
            let head = vec![pt(x, y), pt(x - 7.0, y - 3.5), pt(x - 7.0, y + 3.5)];
            root.draw(&Polygon::new(head, grey.filled()))
                .map_err(draw_err)?;
        }
        for a in s.arrows.iter().filter(|a| !a.label.is_empty()) {
            let (x0, y0) = (
                a.at.0 - a.label_w / 2.0 - 2.0,
                a.at.1 - LABEL_PX / 2.0 - 2.0,
            );
            root.draw(&Rectangle::new(
                [pt(x0, y0), pt(x0 + a.label_w + 4.0, y0 + LABEL_PX + 3.0)],
                WHITE.filled(),
            ))
            .map_err(draw_err)?;
            root.draw_text(
                &a.label,
                &font(LABEL_PX, rgb("#1f5fa8")),
                pt(x0 + 2.0, y0 + 1.0),
            )
            .map_err(draw_err)?;
        }
        for b in &s.boxes {
            let corners = [pt(b.x, b.y), pt(b.x + b.w, b.y + b.h)];
            root.draw(&Rectangle::new(corners, rgb(b.fill).filled()))
                .map_err(draw_err)?;
            root.draw(&Rectangle::new(corners, rgb("#555555").stroke_width(1)))
                .map_err(draw_err)?;
            root.draw_text(&b.title, &font(TEXT_PX, BLACK), pt(b.x + PAD, b.y + PAD))
                .map_err(draw_err)?;
            for (i, l) in b.lines.iter().enumerate() {
                let y = b.y + PAD + LINE_H * (i + 1) as f64;
                root.draw_text(l, &font(TEXT_PX, rgb(line_colour(l))), pt(b.x + PAD, y))
                    .map_err(draw_err)?;
            }
        }
        root.present().map_err(draw_err)?;
    }
    encode_png(&img, w, h)
}
