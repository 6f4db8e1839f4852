//! The graph of one training step of a model: forward through each layer, the cost,
//! backward, captured from the engine itself (its ops, their inputs, every node's value and
//! gradient, and the gradient sent along every edge), then drawn op by op or layer by layer.

use std::collections::{BTreeSet, HashMap};

use backprop_autograd::{Var, VarId};
use backprop_nn::{Mode, Sequential};
use backprop_tensor::Tensor;

use super::{fmt_num, Edge, Graph, Node, NodeKind};
use crate::trace::{cost_var, TraceCost};

/// Values of at most this many elements are printed in full.
const SHOW: usize = 4;
/// `Level::Auto` draws op by op up to this many nodes.
const AUTO_OP_NODES: usize = 60;
/// At layer level, more layers than this are drawn as runs of consecutive layers.
const MAX_LAYER_BOXES: usize = 120;

/// Ops whose local gradient is elementwise (`∂y_i/∂x_i` only), so that it can be printed as
/// one number per element: the edge's gradient divided by the upstream gradient.
const ELEMENTWISE: [&str; 15] = [
    "neg",
    "exp",
    "log",
    "sqrt",
    "powf",
    "abs",
    "sign",
    "relu",
    "sigmoid",
    "tanh",
    "step",
    "add_scalar",
    "mul_scalar",
    "maximum_scalar",
    "minimum_scalar",
];

/// How much detail to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Op by op up to 60 nodes, else layer by layer.
    Auto,
    /// Every op of the engine.
    Op,
    /// One box per layer (runs of layers beyond 120), chosen layers expanded.
    Layer,
}

/// A tensor in brief: its shape, its values if there are at most 4, mean and norm.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The shape.
    pub shape: Vec<usize>,
    /// Every value, if there are at most 4 (else empty).
    pub values: Vec<f64>,
    /// Mean of the values.
    pub mean: f64,
    /// Euclidean norm.
    pub norm: f64,
}

impl Summary {
    /// Summarises a tensor.
    pub fn of(t: &Tensor<f64>) -> Self {
        let d = t.data();
        let n = d.len().max(1) as f64;
        Summary {
            shape: t.shape().to_vec(),
            values: if d.len() <= SHOW {
                d.to_vec()
            } else {
                Vec::new()
            },
            mean: d.iter().sum::<f64>() / n,
            norm: d.iter().map(|v| v * v).sum::<f64>().sqrt(),
        }
    }

    fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// `[0.755, 0.68]` for small tensors, `[64×10] mean 0.012 norm 3.2` otherwise.
    pub fn text(&self) -> String {
        if self.numel() <= SHOW {
            let v: Vec<String> = self.values.iter().map(|&x| fmt_num(x)).collect();
            format!("[{}]", v.join(", "))
        } else {
            format!(
                "{} mean {} norm {}",
                shape_text(&self.shape),
                fmt_num(self.mean),
                fmt_num(self.norm)
            )
        }
    }
}

fn shape_text(shape: &[usize]) -> String {
    let s: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", s.join("×"))
}

/// One node of a captured step.
#[derive(Debug, Clone, PartialEq)]
pub struct OpNode {
    /// The engine's op name, `None` for leaves.
    pub op: Option<&'static str>,
    /// A parameter's name (`fc1.weight`), `input`, `constant`, or the op's name.
    pub name: String,
    /// What it is.
    pub kind: NodeKind,
    /// Its group: 0 the input, 1..=L the model's layers, L+1 the cost.
    pub group: usize,
    /// Its inputs (indices into [`StepGraph::nodes`]), in the op's order.
    pub inputs: Vec<usize>,
    /// The forward value.
    pub value: Summary,
    /// `∂C/∂node`, if a gradient reaches it.
    pub grad: Option<Summary>,
    /// For each input, the gradient this op sends it (upstream × local).
    pub edge_grads: Vec<Option<Summary>>,
    /// For each input of an elementwise op with at most 4 elements, the local gradient
    /// `∂y_i/∂x_i`.
    pub local: Vec<Option<Vec<f64>>>,
}

/// One training step of a model, captured from the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct StepGraph {
    /// Every node reached from the cost, inputs before their users; the last is the cost.
    pub nodes: Vec<OpNode>,
    /// Group names: `input`, each layer's name, `cost`.
    pub groups: Vec<String>,
    /// Each group's kind (`linear`, `sigmoid`...; `input`, `cost`).
    pub group_kinds: Vec<String>,
    /// The cost's value.
    pub cost: f64,
    /// The cost's formula and target.
    pub cost_text: String,
}

/// Captures one step of `model` on one input `x` (`[1, features]`) with `cost`: forward in
/// evaluation mode (as `trace` does), the cost, and backward with every gradient kept. The
/// model's weights are not changed.
///
/// # Errors
/// If the input or the target does not fit the model.
pub fn step_graph(
    model: &Sequential<f64>,
    x: &[f64],
    cost: &TraceCost,
) -> Result<StepGraph, String> {
    let mark = || Var::<f64>::constant(Tensor::scalar(0.0)).id();
    let input = Var::constant(Tensor::from_vec(x.to_vec(), &[1, x.len()]));
    let mut marks = vec![mark()];
    let mut groups = vec!["input".to_string()];
    let mut kinds = vec!["input".to_string()];
    let mut param_group: HashMap<VarId, (usize, String)> = HashMap::new();
    let mut a = input.clone();
    for (k, (name, layer)) in model.layers().enumerate() {
        for (p, v) in layer.params().into_iter().chain(layer.buffers()) {
            param_group.insert(v.id(), (k + 1, format!("{name}.{p}")));
        }
        if let Some(l) = layer.as_linear() {
            let got = *a.shape().last().unwrap_or(&0);
            if got != l.in_features() {
                return Err(format!(
                    "layer {name} takes {} inputs but receives {got}",
                    l.in_features()
                ));
            }
        }
        a = layer.forward(&a, Mode::Eval);
        groups.push(name.to_string());
        kinds.push(layer.kind());
        marks.push(mark());
    }
    let (c, cost_text) = cost_var(&a, cost)?;
    groups.push("cost".into());
    kinds.push("cost".into());
    let order = walk(&c);
    let index: HashMap<VarId, usize> = order.iter().enumerate().map(|(i, v)| (v.id(), i)).collect();
    let inputs: Vec<Vec<usize>> = order
        .iter()
        .map(|v| v.inputs().iter().map(|p| index[&p.id()]).collect())
        .collect();
    // op names go with the backward rules: read them before backward consumes those
    let ops: Vec<Option<&'static str>> = order.iter().map(Var::op_name).collect();
    for v in order.iter().filter(|v| !v.is_leaf()) {
        v.retain_grad();
    }
    let mut sent: HashMap<(VarId, VarId), Vec<Summary>> = HashMap::new();
    let grads = c.backward_observed(&mut |from, to, g| {
        sent.entry((from, to)).or_default().push(Summary::of(g));
    });
    let mut nodes = Vec::with_capacity(order.len());
    for (i, v) in order.iter().enumerate() {
        let group = param_group
            .get(&v.id())
            .map(|(g, _)| *g)
            .unwrap_or_else(|| marks.iter().filter(|m| **m < v.id()).count());
        let kind = if i + 1 == order.len() {
            NodeKind::Output
        } else if !v.is_leaf() {
            NodeKind::Op
        } else if v.id() == input.id() {
            NodeKind::Input
        } else if v.requires_grad() {
            NodeKind::Parameter
        } else {
            NodeKind::Constant
        };
        let name = match (param_group.get(&v.id()), ops[i], kind) {
            (Some((_, n)), _, _) => n.clone(),
            (None, _, NodeKind::Input) => "input x".into(),
            (None, _, NodeKind::Output) => "cost C".into(),
            (None, Some(op), _) => op.to_string(),
            _ => "constant".into(),
        };
        let grad = grads.get(v).map(Summary::of);
        let mut edge_grads = Vec::new();
        for p in &inputs[i] {
            let list = sent.get_mut(&(order[*p].id(), v.id()));
            edge_grads.push(list.and_then(|l| (!l.is_empty()).then(|| l.remove(0))));
        }
        let op = ops[i];
        let local = local_gradients(op, &grad, &edge_grads);
        nodes.push(OpNode {
            op,
            name,
            kind,
            group,
            inputs: inputs[i].clone(),
            value: Summary::of(&v.value()),
            grad,
            edge_grads,
            local,
        });
    }
    Ok(StepGraph {
        nodes,
        groups,
        group_kinds: kinds,
        cost: c.item(),
        cost_text,
    })
}

/// For elementwise ops on small tensors: edge gradient ÷ upstream gradient.
fn local_gradients(
    op: Option<&'static str>,
    grad: &Option<Summary>,
    edges: &[Option<Summary>],
) -> Vec<Option<Vec<f64>>> {
    edges
        .iter()
        .map(|e| {
            let (op, up, e) = (op?, grad.as_ref()?, e.as_ref()?);
            if !ELEMENTWISE.contains(&op) || e.numel() > SHOW || up.shape != e.shape {
                return None;
            }
            let all_nonzero = up.values.iter().all(|&u| u != 0.0);
            all_nonzero.then(|| {
                e.values
                    .iter()
                    .zip(&up.values)
                    .map(|(g, u)| g / u)
                    .collect()
            })
        })
        .collect()
}

/// Every node reached from `root` (constants included), inputs before users.
fn walk(root: &Var<f64>) -> Vec<Var<f64>> {
    let mut order = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![(root.clone(), false)];
    while let Some((v, expanded)) = stack.pop() {
        if expanded {
            order.push(v);
            continue;
        }
        if !seen.insert(v.id()) {
            continue;
        }
        let inputs = v.inputs();
        stack.push((v, true));
        for p in inputs.into_iter().rev() {
            if !seen.contains(&p.id()) {
                stack.push((p, false));
            }
        }
    }
    order
}

impl StepGraph {
    /// The level `Auto` resolves to.
    pub fn resolve(&self, level: Level) -> Level {
        match level {
            Level::Auto if self.nodes.len() <= AUTO_OP_NODES => Level::Op,
            Level::Auto => Level::Layer,
            l => l,
        }
    }

    /// The drawing at `level`; at layer level the groups named in `expand` (layer names,
    /// `input` or `cost`) are drawn op by op.
    ///
    /// # Errors
    /// If `expand` names a layer the model does not have.
    pub fn to_graph(&self, level: Level, expand: &[String]) -> Result<Graph, String> {
        for e in expand {
            if !self.groups.contains(e) {
                return Err(format!(
                    "'{e}' is not a layer of this model (its layers: {})",
                    self.groups.join(", ")
                ));
            }
        }
        let level = self.resolve(level);
        // which box each node goes to: its own (op level, or an expanded group) or its
        // group's; groups beyond MAX_LAYER_BOXES are merged into runs
        let run = self.groups.len().div_ceil(MAX_LAYER_BOXES).max(1);
        let open: BTreeSet<usize> = (0..self.groups.len())
            .filter(|&g| level == Level::Op || expand.contains(&self.groups[g]))
            .collect();
        let mut box_of = vec![0usize; self.nodes.len()];
        let mut keys: HashMap<(bool, usize), usize> = HashMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let key = if open.contains(&n.group) {
                (true, i)
            } else {
                (false, if run > 1 { n.group / run } else { n.group })
            };
            let next = members.len();
            let b = *keys.entry(key).or_insert(next);
            if b == next {
                members.push(Vec::new());
            }
            members[b].push(i);
            box_of[i] = b;
        }
        let nodes: Vec<Node> = members
            .iter()
            .map(|m| {
                if m.len() == 1 && open.contains(&self.nodes[m[0]].group) {
                    self.op_box(m[0])
                } else {
                    self.group_box(m, run)
                }
            })
            .collect();
        let mut edges = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for (k, &p) in n.inputs.iter().enumerate() {
                let (from, to) = (box_of[p], box_of[i]);
                if from == to {
                    continue;
                }
                let collapsed = !open.contains(&n.group) || !open.contains(&self.nodes[p].group);
                if collapsed && !seen.insert((from, to)) {
                    continue;
                }
                edges.push(Edge {
                    from,
                    to,
                    label: self.edge_label(i, k),
                });
            }
        }
        Ok(Graph {
            title: format!("one training step: {}, C = {}", self.cost_text_ascii(), fmt_num(self.cost)),
            legend: vec![
                "box: op or layer, forward value, grad = derivative of the cost C with respect to it".into(),
                "arrow: the gradient the box it enters sends back along it (upstream × local); local = the elementwise local gradient".into(),
            ],
            nodes,
            edges,
        })
    }

    fn cost_text_ascii(&self) -> String {
        self.cost_text
            .replace("½‖a^L − y‖²", "(1/2)|a - y|^2")
            .replace('−', "-")
    }

    fn op_box(&self, i: usize) -> Node {
        let n = &self.nodes[i];
        let mut lines = vec![format!("value {}", n.value.text())];
        if let Some(g) = &n.grad {
            lines.push(format!("grad {}", g.text()));
        }
        let title = match (n.kind, n.group) {
            (NodeKind::Op, g) if g > 0 && g + 1 < self.groups.len() => {
                format!("{} ({})", n.name, self.groups[g])
            }
            _ => n.name.clone(),
        };
        Node {
            kind: n.kind,
            title,
            lines,
        }
    }

    /// A box for a group (or a run of groups): its output's value and gradient, its
    /// parameters and their gradients' norm.
    fn group_box(&self, members: &[usize], run: usize) -> Node {
        let first = self.nodes[members[0]].group;
        let last_member = *members.iter().max().unwrap_or(&members[0]);
        let out = &self.nodes[last_member];
        let g_last = members
            .iter()
            .map(|&m| self.nodes[m].group)
            .max()
            .unwrap_or(first);
        let title = if run > 1 && g_last > first {
            format!(
                "{} … {} ({} layers)",
                self.groups[first],
                self.groups[g_last],
                g_last - first + 1
            )
        } else if self.groups[first] == self.group_kinds[first] {
            self.groups[first].clone()
        } else {
            format!("{} ({})", self.groups[first], self.group_kinds[first])
        };
        let params: Vec<&OpNode> = members
            .iter()
            .map(|&m| &self.nodes[m])
            .filter(|n| n.kind == NodeKind::Parameter)
            .collect();
        let mut lines = vec![format!("out {}", out.value.text())];
        if let Some(g) = &out.grad {
            lines.push(format!("grad {}", g.text()));
        }
        if !params.is_empty() {
            let count: usize = params.iter().map(|p| p.value.numel()).sum();
            let gn = params
                .iter()
                .filter_map(|p| p.grad.as_ref())
                .map(|g| g.norm * g.norm)
                .sum::<f64>()
                .sqrt();
            lines.push(format!("{count} parameters, grad norm {}", fmt_num(gn)));
        }
        if members.len() > 1 {
            lines.push(format!("{} nodes", members.len()));
        }
        let kind = match out.kind {
            NodeKind::Output | NodeKind::Input => out.kind,
            _ => NodeKind::Layer,
        };
        Node { kind, title, lines }
    }

    fn edge_label(&self, i: usize, k: usize) -> String {
        let n = &self.nodes[i];
        if let Some(Some(l)) = n.local.get(k) {
            let v: Vec<String> = l.iter().map(|&x| fmt_num(x)).collect();
            return format!("local [{}]", v.join(", "));
        }
        match n.edge_grads.get(k) {
            Some(Some(g)) => format!("g {}", g.text()),
            _ => String::new(),
        }
    }
}
