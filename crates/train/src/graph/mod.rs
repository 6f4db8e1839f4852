//! Drawing the computation graph the engine differentiates, with every node's forward value
//! and gradient and every edge's local gradient, so that "upstream × local" can be checked by
//! hand at each node.
//!
//! Two sources:
//! - an expression a learner types ([`parse_expr`], [`evaluate_expr`]):
//!   `sigmoid(w1*x1 + w2*x2 + b)` with values for its names, every node a scalar;
//! - one training step of a model ([`step_graph`]): the engine's own ops (`linear`,
//!   `sigmoid`, `sub`, `mul`, `sum`...) with tensor values, grouped by layer; small models are
//!   drawn op by op, large ones one box per layer, with chosen layers expanded.
//!
//! Both become a [`Graph`] (boxes with lines of text, labelled edges), laid out left to right
//! in layers by this module's own layered layout (longest-path ranks, barycentre ordering; no
//! external program) and written as SVG ([`Graph::to_svg`]), PNG ([`Graph::to_png`], with the
//! compiled-in font) or Graphviz DOT ([`Graph::to_dot`], for `dot -Tsvg` when Graphviz is
//! installed).

mod expr;
mod layout;
mod render;
mod step;

pub use expr::{
    evaluate_expr, parse_assignments, parse_expr, Expr, ExprError, ExprGraph, ExprNode, ExprOp,
    FUNCTIONS,
};
pub use layout::{layout, layout_with_gaps, Placement};
pub use step::{step_graph, Level, OpNode, StepGraph, Summary};

/// What a box stands for (its colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// The data fed in (`x`).
    Input,
    /// A leaf that takes a gradient: a weight, a bias, an expression's variable.
    Parameter,
    /// A leaf that takes none: a number, a target.
    Constant,
    /// An operation.
    Op,
    /// A whole layer drawn as one box.
    Layer,
    /// The value differentiated (the cost, the expression's result).
    Output,
}

/// A box: a title (the op or name) and lines under it (value, gradient).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Its kind.
    pub kind: NodeKind,
    /// The first line.
    pub title: String,
    /// The lines under the title.
    pub lines: Vec<String>,
}

/// An arrow from an input to the node that uses it, labelled (with the local gradient).
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// The input's index.
    pub from: usize,
    /// The user's index.
    pub to: usize,
    /// The label drawn at the middle of the arrow.
    pub label: String,
}

/// A drawable graph: boxes and labelled arrows, with a title and a legend line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// The heading.
    pub title: String,
    /// Lines under the heading saying how to read the picture.
    pub legend: Vec<String>,
    /// The boxes.
    pub nodes: Vec<Node>,
    /// The arrows.
    pub edges: Vec<Edge>,
}

/// A number for a box: up to 6 significant digits, scientific when tiny or huge.
///
/// ```
/// use backprop_train::graph::fmt_num;
/// assert_eq!(fmt_num(0.6902834), "0.690283");
/// assert_eq!(fmt_num(-4.0), "-4");
/// assert_eq!(fmt_num(1.5e-7), "1.5e-7");
/// ```
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if (1e-4..1e6).contains(&a) {
        let digits = (5 - a.log10().floor() as i32).clamp(0, 9) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        let s = format!("{v:.3e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        format!("{m}e{e}")
    }
}

impl ExprGraph {
    /// The drawing: a box per variable, number and op showing its value and gradient
    /// `∂out/∂node`, and on each edge the local gradient `∂node/∂input`.
    pub fn to_graph(&self, source: &str) -> Graph {
        let out = self.output();
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let kind = match (n.op, k == out) {
                    (_, true) => NodeKind::Output,
                    (Some(_), false) => NodeKind::Op,
                    (None, _) if n.grad.is_some() => NodeKind::Parameter,
                    (None, _) => NodeKind::Constant,
                };
                let mut lines = vec![format!("value {}", fmt_num(n.value))];
                if let Some(g) = n.grad {
                    lines.push(format!("grad {}", fmt_num(g)));
                }
                Node {
                    kind,
                    title: n.name.clone(),
                    lines,
                }
            })
            .collect();
        let edges = self
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(to, n)| {
                n.inputs.iter().zip(&n.local).map(move |(&from, &l)| Edge {
                    from,
                    to,
                    label: format!("local {}", fmt_num(l)),
                })
            })
            .collect();
        Graph {
            title: format!("out = {source}"),
            legend: vec![
                "box: op or name, forward value, grad = derivative of out with respect to the box".into(),
                "arrow: local gradient = derivative of the box it enters with respect to the box it leaves".into(),
                "chain rule: a box's grad = sum over its outgoing arrows of (grad where the arrow ends) × local".into(),
            ],
            nodes,
            edges,
        }
    }
}

impl Graph {
    /// Graphviz DOT, left to right, with the same text (for `dot -Tsvg` when installed).
    ///
    /// ```
    /// use backprop_train::graph::{evaluate_expr, parse_assignments, parse_expr};
    /// let e = parse_expr("a*b").unwrap();
    /// let g = evaluate_expr(&e, &parse_assignments("a=2,b=3").unwrap()).unwrap().to_graph("a*b");
    /// let dot = g.to_dot();
    /// assert!(dot.starts_with("digraph") && dot.contains("rankdir=LR") && dot.contains("n0 -> n2"));
    /// ```
    pub fn to_dot(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut s = String::from("digraph backprop {\n  rankdir=LR;\n");
        s += "  node [shape=box, style=\"rounded,filled\", fontname=\"DejaVu Sans\", fontsize=11];\n";
        s += "  edge [fontname=\"DejaVu Sans\", fontsize=10, fontcolor=\"#1f5fa8\"];\n";
        s += &format!("  labelloc=t; label=\"{}\";\n", esc(&self.title));
        for (k, n) in self.nodes.iter().enumerate() {
            let mut label = esc(&n.title);
            for l in &n.lines {
                label += "\\n";
                label += &esc(l);
            }
            s += &format!(
                "  n{k} [label=\"{label}\", fillcolor=\"{}\"];\n",
                render::fill(n.kind)
            );
        }
        for e in &self.edges {
            s += &format!(
                "  n{} -> n{} [label=\"{}\"];\n",
                e.from,
                e.to,
                esc(&e.label)
            );
        }
        s + "}\n"
    }

    /// The picture as SVG (left to right; see [`layout`]).
    pub fn to_svg(&self) -> String {
        render::svg(self)
    }

    /// The picture as PNG bytes.
    ///
    /// # Errors
    /// If the picture would exceed 100 million pixels (draw such a graph at layer level), or
    /// the compiled-in font is broken.
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        render::png(self)
    }
}
