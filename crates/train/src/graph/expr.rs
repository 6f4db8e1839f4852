//! A small expression language for computation graphs a learner types, evaluated on the
//! autodiff engine: `sigmoid(w1*x1 + w2*x2 + b)`, `(a + b) * c`, `max(0, x)^2 / 2`.
//!
//! Grammar (usual precedence; `^` binds tighter than a unary minus and associates to the
//! right, so `-x^2 = -(x^2)` and `2^3^2 = 2^9`):
//!
//! ```text
//! expr  := term (('+' | '-' | '−') term)*
//! term  := unary (('*' | '×' | '·' | '/' | '÷') unary)*
//! unary := ('-' | '−') unary | power
//! power := atom ('^' unary)?           the exponent must be a number: x^2, x^-1, x^0.5
//! atom  := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
//! ```
//!
//! Functions: `exp`, `log` (natural; also `ln`), `tanh`, `sigmoid`, `relu` (one argument)
//! and `max` (two). Names are letters, digits and `_`, starting with a letter.
//!
//! Every node becomes one engine op on `f64` scalars (variables are parameters, so each gets
//! a gradient); the values and gradients of the drawing are the engine's. Each edge's local
//! gradient `∂node/∂input` is the engine's too: the node's op run again on fresh leaves
//! holding its inputs' values, and differentiated.

use std::collections::BTreeMap;
use std::fmt;

use backprop_autograd::Var;
use backprop_tensor::Tensor;

/// A parse or evaluation error, with the 1-based character column it refers to (0 when it
/// concerns no position, e.g. a variable without a value).
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    /// 1-based character column in the expression, 0 if none.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column > 0 {
            write!(f, "at column {}: {}", self.column, self.message)
        } else {
            write!(f, "{}", self.message)
        }
    }
}

impl std::error::Error for ExprError {}

/// The operations of the language.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExprOp {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a × b`.
    Mul,
    /// `a ÷ b`.
    Div,
    /// `−a`.
    Neg,
    /// `a^p` for a number `p`.
    Pow(f64),
    /// `eᵃ`.
    Exp,
    /// `ln a`.
    Log,
    /// `tanh a`.
    Tanh,
    /// `σ(a)`.
    Sigmoid,
    /// `max(a, 0)`.
    Relu,
    /// `max(a, b)`.
    Max,
}

impl ExprOp {
    /// The name drawn in the node.
    pub fn label(&self) -> String {
        match self {
            ExprOp::Add => "+".into(),
            ExprOp::Sub => "−".into(),
            ExprOp::Mul => "×".into(),
            ExprOp::Div => "/".into(),
            ExprOp::Neg => "neg".into(),
            ExprOp::Pow(p) => format!("^{}", num(*p)),
            ExprOp::Exp => "exp".into(),
            ExprOp::Log => "log".into(),
            ExprOp::Tanh => "tanh".into(),
            ExprOp::Sigmoid => "sigmoid".into(),
            ExprOp::Relu => "relu".into(),
            ExprOp::Max => "max".into(),
        }
    }

    /// Runs the op on the engine.
    fn apply(&self, a: &[Var<f64>]) -> Var<f64> {
        match self {
            ExprOp::Add => a[0].add(&a[1]),
            ExprOp::Sub => a[0].sub(&a[1]),
            ExprOp::Mul => a[0].mul(&a[1]),
            ExprOp::Div => a[0].div(&a[1]),
            ExprOp::Neg => a[0].neg(),
            ExprOp::Pow(p) => a[0].powf(*p),
            ExprOp::Exp => a[0].exp(),
            ExprOp::Log => a[0].log(),
            ExprOp::Tanh => a[0].tanh(),
            ExprOp::Sigmoid => a[0].sigmoid(),
            ExprOp::Relu => a[0].relu(),
            ExprOp::Max => a[0].maximum(&a[1]),
        }
    }

    fn function(name: &str) -> Option<(ExprOp, usize)> {
        Some(match name {
            "exp" => (ExprOp::Exp, 1),
            "log" | "ln" => (ExprOp::Log, 1),
            "tanh" => (ExprOp::Tanh, 1),
            "sigmoid" => (ExprOp::Sigmoid, 1),
            "relu" => (ExprOp::Relu, 1),
            "max" => (ExprOp::Max, 2),
            _ => return None,
        })
    }
}

/// The function names the language knows, for messages and docs.
pub const FUNCTIONS: [&str; 6] = ["exp", "log", "tanh", "sigmoid", "relu", "max"];

fn num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Number(f64),
    /// A variable, with the column where it first appears.
    Var(String, usize),
    /// An operation on sub-expressions.
    Op(ExprOp, Vec<Expr>),
}

impl Expr {
    /// The variable names, each once, in order of first appearance, with its column.
    pub fn variables(&self) -> Vec<(String, usize)> {
        fn walk(e: &Expr, out: &mut Vec<(String, usize)>) {
            match e {
                Expr::Number(_) => {}
                Expr::Var(n, c) => {
                    if !out.iter().any(|(m, _)| m == n) {
                        out.push((n.clone(), *c));
                    }
                }
                Expr::Op(_, args) => args.iter().for_each(|a| walk(a, out)),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Sym(char),
    End,
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        column,
        message: message.into(),
    })
}

fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // an exponent: 1e-3, 2.5E4
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            match text.parse::<f64>() {
                Ok(v) => out.push((Tok::Num(v), col)),
                Err(_) => return err(col, format!("'{text}' is not a number")),
            }
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), col));
        } else {
            let sym = match c {
                '−' => '-',
                '×' | '·' => '*',
                '÷' => '/',
                c => c,
            };
            if !"+-*/^(),".contains(sym) {
                return err(
                    col,
                    format!("unexpected character '{c}' (the language has + − × ÷ ^, ( ), numbers, names and {})", FUNCTIONS.join(", ")),
                );
            }
            out.push((Tok::Sym(sym), col));
            i += 1;
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn col(&self) -> usize {
        self.toks[self.pos].1
    }
    fn eat(&mut self, c: char) -> bool {
        if *self.peek() == Tok::Sym(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn describe(&self) -> String {
        match self.peek() {
            Tok::Num(v) => format!("the number {}", num(*v)),
            Tok::Name(n) => format!("'{n}'"),
            Tok::Sym(c) => format!("'{c}'"),
            Tok::End => "the end of the expression".into(),
        }
    }
    fn expect(&mut self, c: char, what: &str) -> Result<(), ExprError> {
        if self.eat(c) {
            Ok(())
        } else {
            err(
                self.col(),
                format!("expected '{c}' {what}, found {}", self.describe()),
            )
        }
    }

    fn expr(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.term()?;
        loop {
            let op = if self.eat('+') {
                ExprOp::Add
            } else if self.eat('-') {
                ExprOp::Sub
            } else {
                return Ok(lhs);
            };
            lhs = Expr::Op(op, vec![lhs, self.term()?]);
        }
    }

    fn term(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.unary()?;
        loop {
            let op = if self.eat('*') {
                ExprOp::Mul
            } else if self.eat('/') {
                ExprOp::Div
            } else {
                return Ok(lhs);
            };
            lhs = Expr::Op(op, vec![lhs, self.unary()?]);
        }
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.eat('-') {
            return Ok(match self.unary()? {
                Expr::Number(v) => Expr::Number(-v),
                e => Expr::Op(ExprOp::Neg, vec![e]),
            });
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr, ExprError> {
        let base = self.atom()?;
        if !self.eat('^') {
            return Ok(base);
        }
        let col = self.col();
        match (base, self.unary()?) {
            // a power of numbers is a number (so 2^3^2 = 2^9 stays a number exponent)
            (Expr::Number(b), Expr::Number(p)) => Ok(Expr::Number(b.powf(p))),
            (base, Expr::Number(p)) => Ok(Expr::Op(ExprOp::Pow(p), vec![base])),
            _ => err(
                col,
                "the exponent after '^' must be a number (x^2, x^-1, x^0.5); for a^b write exp(b*log(a))",
            ),
        }
    }

    fn atom(&mut self) -> Result<Expr, ExprError> {
        let col = self.col();
        match self.peek().clone() {
            Tok::Num(v) => {
                self.pos += 1;
                Ok(Expr::Number(v))
            }
            Tok::Name(n) => {
                self.pos += 1;
                if !self.eat('(') {
                    if ExprOp::function(&n).is_some() {
                        return err(col, format!("{n} is a function: write {n}(...)"));
                    }
                    return Ok(Expr::Var(n, col));
                }
                let Some((op, arity)) = ExprOp::function(&n) else {
                    return err(
                        col,
                        format!("unknown function '{n}' (known: {})", FUNCTIONS.join(", ")),
                    );
                };
                let mut args = vec![self.expr()?];
                while self.eat(',') {
                    args.push(self.expr()?);
                }
                self.expect(')', &format!("to close {n}("))?;
                if args.len() != arity {
                    return err(
                        col,
                        format!("{n} takes {arity} argument(s), not {}", args.len()),
                    );
                }
                Ok(Expr::Op(op, args))
            }
            Tok::Sym('(') => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect(')', "to close '('")?;
                Ok(e)
            }
            _ => err(
                col,
                format!(
                    "expected a number, a name or '(', found {}",
                    self.describe()
                ),
            ),
        }
    }
}

/// Parses an expression.
///
/// # Errors
/// An [`ExprError`] naming the column and what was expected.
///
/// ```
/// use backprop_train::graph::parse_expr;
/// assert!(parse_expr("sigmoid(w1*x1 + w2*x2 + b)").is_ok());
/// let e = parse_expr("(a + b) * ").unwrap_err();
/// assert_eq!(e.column, 11);
/// ```
pub fn parse_expr(src: &str) -> Result<Expr, ExprError> {
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
    };
    if *p.peek() == Tok::End {
        return err(0, "the expression is empty");
    }
    let e = p.expr()?;
    if *p.peek() != Tok::End {
        return err(
            p.col(),
            format!("expected an operator or the end, found {}", p.describe()),
        );
    }
    Ok(e)
}

/// Parses `name=value,name=value` (the `--set` list). Errors name the item by its position.
///
/// # Errors
/// An item without `=`, a bad name, a value that is not a finite number, a name given twice.
///
/// ```
/// use backprop_train::graph::parse_assignments;
/// let v = parse_assignments("x1=1, w1=-0.5").unwrap();
/// assert_eq!(v["w1"], -0.5);
/// assert!(parse_assignments("x1=1,x2").unwrap_err().contains("item 2"));
/// ```
pub fn parse_assignments(s: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut out = BTreeMap::new();
    for (k, item) in s.split(',').enumerate() {
        let item = item.trim();
        let Some((name, value)) = item.split_once('=') else {
            return Err(format!("item {} ('{item}') is not name=value", k + 1));
        };
        let (name, value) = (name.trim(), value.trim());
        let valid = name.chars().next().is_some_and(char::is_alphabetic)
            && name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "item {} ('{item}'): '{name}' is not a name (letters, digits, _; a letter first)",
                k + 1
            ));
        }
        let v: f64 = value
            .replace('−', "-")
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                format!(
                    "item {} ('{item}'): '{value}' is not a finite number",
                    k + 1
                )
            })?;
        if out.insert(name.to_string(), v).is_some() {
            return Err(format!("item {} ('{item}'): {name} is given twice", k + 1));
        }
    }
    Ok(out)
}

/// One node of an evaluated expression.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprNode {
    /// `None` for a variable or a number; the op otherwise.
    pub op: Option<ExprOp>,
    /// The variable's name or the number, for leaves.
    pub name: String,
    /// The forward value.
    pub value: f64,
    /// `∂out/∂node` (`None` for numbers, which take no gradient).
    pub grad: Option<f64>,
    /// The input nodes (indices into [`ExprGraph::nodes`]).
    pub inputs: Vec<usize>,
    /// `∂node/∂input` for each input: the edge's local gradient.
    pub local: Vec<f64>,
}

/// An expression evaluated and differentiated on the engine. Nodes are in evaluation order
/// (inputs first); the last is the output.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprGraph {
    /// The nodes; one per variable (however often it is used), per number and per op.
    pub nodes: Vec<ExprNode>,
}

impl ExprGraph {
    /// The output node's index.
    pub fn output(&self) -> usize {
        self.nodes.len() - 1
    }

    /// The node of a variable.
    pub fn variable(&self, name: &str) -> Option<&ExprNode> {
        self.nodes.iter().find(|n| n.op.is_none() && n.name == name)
    }
}

/// Evaluates `expr` with `values` for its variables, forward and backward on the engine.
///
/// # Errors
/// A variable without a value, a value for a name the expression does not use, or a
/// non-finite result (e.g. `log` of a negative number), naming the column of the op.
///
/// ```
/// use backprop_train::graph::{evaluate_expr, parse_assignments, parse_expr};
/// let e = parse_expr("(a + b) * c").unwrap();
/// let g = evaluate_expr(&e, &parse_assignments("a=1,b=2,c=3").unwrap()).unwrap();
/// assert_eq!(g.nodes[g.output()].value, 9.0);
/// assert_eq!(g.variable("a").unwrap().grad, Some(3.0));
/// ```
pub fn evaluate_expr(expr: &Expr, values: &BTreeMap<String, f64>) -> Result<ExprGraph, ExprError> {
    let vars = expr.variables();
    for (name, col) in &vars {
        if !values.contains_key(name) {
            return err(
                *col,
                format!("{name} has no value (give it with name=value)"),
            );
        }
    }
    if let Some(extra) = values.keys().find(|k| !vars.iter().any(|(n, _)| n == *k)) {
        let used: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        return err(
            0,
            format!(
                "{extra} is given a value but the expression does not use it (it uses: {})",
                used.join(", ")
            ),
        );
    }
    let mut b = Builder::default();
    let out = b.build(expr, values);
    for node in &b.nodes {
        if !node.value.is_finite() {
            let what = node.op.map_or(node.name.clone(), |o| o.label());
            return err(
                0,
                format!("{what} gives {} (outside its domain?)", node.value),
            );
        }
    }
    for v in b.vars.iter().filter(|v| !v.is_leaf()) {
        v.retain_grad();
    }
    let grads = out.backward();
    for (node, var) in b.nodes.iter_mut().zip(&b.vars) {
        if var.requires_grad() {
            node.grad = Some(grads.get(var).map_or(0.0, |t| t.data()[0]));
        }
    }
    Ok(ExprGraph { nodes: b.nodes })
}

fn scalar(v: f64) -> Tensor<f64> {
    Tensor::from_vec(vec![v], &[1])
}

#[derive(Default)]
struct Builder {
    nodes: Vec<ExprNode>,
    vars: Vec<Var<f64>>,
    by_name: BTreeMap<String, usize>,
}

impl Builder {
    fn push(&mut self, node: ExprNode, var: Var<f64>) -> usize {
        self.nodes.push(node);
        self.vars.push(var);
        self.nodes.len() - 1
    }

    fn build(&mut self, e: &Expr, values: &BTreeMap<String, f64>) -> Var<f64> {
        let k = self.node(e, values);
        self.vars[k].clone()
    }

    fn node(&mut self, e: &Expr, values: &BTreeMap<String, f64>) -> usize {
        let leaf = |name: String, value| ExprNode {
            op: None,
            name,
            value,
            grad: None,
            inputs: vec![],
            local: vec![],
        };
        match e {
            Expr::Number(v) => self.push(leaf(num(*v), *v), Var::constant(scalar(*v))),
            Expr::Var(n, _) => {
                if let Some(&k) = self.by_name.get(n) {
                    return k;
                }
                let v = values[n];
                let k = self.push(leaf(n.clone(), v), Var::parameter(scalar(v)));
                self.by_name.insert(n.clone(), k);
                k
            }
            Expr::Op(op, args) => {
                let inputs: Vec<usize> = args.iter().map(|a| self.node(a, values)).collect();
                let in_vars: Vec<Var<f64>> = inputs.iter().map(|&k| self.vars[k].clone()).collect();
                let y = op.apply(&in_vars);
                let local = local_gradients(*op, &in_vars);
                let node = ExprNode {
                    op: Some(*op),
                    name: op.label(),
                    value: y.item(),
                    grad: None,
                    inputs,
                    local,
                };
                self.push(node, y)
            }
        }
    }
}

/// `∂op/∂input_k` at the inputs' values, by the engine: the op on fresh leaves, backward.
fn local_gradients(op: ExprOp, inputs: &[Var<f64>]) -> Vec<f64> {
    let fresh: Vec<Var<f64>> = inputs.iter().map(|v| Var::parameter(v.value())).collect();
    let g = op.apply(&fresh).backward();
    fresh
        .iter()
        .map(|v| g.get(v).map_or(0.0, |t| t.data()[0]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str, set: &str) -> ExprGraph {
        evaluate_expr(&parse_expr(src).unwrap(), &parse_assignments(set).unwrap()).unwrap()
    }

    #[test]
    fn a_plus_b_times_c_matches_the_hand_worked_values() {
        // a = 2, b = −5, c = −4: q = a + b = −3, f = q·c = 12;
        // ∂f/∂q = c = −4, ∂f/∂c = q = −3, ∂f/∂a = ∂f/∂q · 1 = −4, ∂f/∂b = −4.
        let g = eval("(a + b) × c", "a=2,b=-5,c=-4");
        let f = &g.nodes[g.output()];
        assert_eq!(
            (f.op, f.value, f.grad),
            (Some(ExprOp::Mul), 12.0, Some(1.0))
        );
        let q = &g.nodes[f.inputs[0]];
        assert_eq!(
            (q.op, q.value, q.grad),
            (Some(ExprOp::Add), -3.0, Some(-4.0))
        );
        assert_eq!(f.local, vec![-4.0, -3.0]); // ∂f/∂q = c, ∂f/∂c = q
        assert_eq!(q.local, vec![1.0, 1.0]);
        assert_eq!(g.variable("a").unwrap().grad, Some(-4.0));
        assert_eq!(g.variable("b").unwrap().grad, Some(-4.0));
        assert_eq!(g.variable("c").unwrap().grad, Some(-3.0));
    }

    #[test]
    fn a_sigmoid_neuron_matches_the_hand_worked_values() {
        // z = w1·x1 + w2·x2 + b = 0.5·1 + (−1)(−2) + 0.1 = 2.6; a = σ(2.6) = 0.9308616;
        // σ'(z) = a(1 − a) = 0.0643582; ∂a/∂w1 = σ'·x1, ∂a/∂w2 = σ'·x2, ∂a/∂x1 = σ'·w1,
        // ∂a/∂b = σ'.
        let g = eval(
            "sigmoid(w1*x1 + w2*x2 + b)",
            "x1=1,x2=-2,w1=0.5,w2=-1,b=0.1",
        );
        let out = &g.nodes[g.output()];
        let a = 1.0 / (1.0 + (-2.6f64).exp());
        assert!((out.value - 0.930_861_7).abs() < 1e-6 && (out.value - a).abs() < 1e-15);
        let s = a * (1.0 - a);
        assert!((s - 0.064_358_2).abs() < 1e-6);
        assert!((out.local[0] - s).abs() < 1e-15);
        let grad = |n: &str| g.variable(n).unwrap().grad.unwrap();
        for (name, want) in [
            ("w1", s),
            ("w2", -2.0 * s),
            ("x1", 0.5 * s),
            ("x2", -s),
            ("b", s),
        ] {
            assert!(
                (grad(name) - want).abs() < 1e-15,
                "{name}: {} vs {want}",
                grad(name)
            );
        }
        // upstream × local: every node's gradient is the sum over its uses
        for (k, n) in g.nodes.iter().enumerate() {
            let Some(gk) = n.grad else { continue };
            if k == g.output() {
                continue;
            }
            let sum: f64 = g
                .nodes
                .iter()
                .flat_map(|m| {
                    m.inputs
                        .iter()
                        .zip(&m.local)
                        .map(move |(i, l)| (i, l, m.grad))
                })
                .filter(|(i, _, _)| **i == k)
                .map(|(_, l, up)| l * up.unwrap())
                .sum();
            assert!((sum - gk).abs() < 1e-15, "node {k}");
        }
    }

    #[test]
    fn a_variable_used_twice_accumulates_and_gets_one_node() {
        // f = x·x + x at x = 3: f' = 2x + 1 = 7
        let g = eval("x*x + x", "x=3");
        assert_eq!(g.nodes.iter().filter(|n| n.name == "x").count(), 1);
        assert_eq!(g.variable("x").unwrap().grad, Some(7.0));
        assert_eq!(g.nodes[g.output()].value, 12.0);
    }

    #[test]
    fn powers_functions_and_precedence() {
        let v = |s: &str, set: &str| {
            let g = eval(s, set);
            g.nodes[g.output()].value
        };
        assert_eq!(v("-x^2", "x=3"), -9.0);
        assert_eq!(v("2^3^2 + x", "x=0"), 512.0);
        assert_eq!(v("1 - 2 - x", "x=3"), -4.0);
        assert_eq!(v("12 / 3 / x", "x=2"), 2.0);
        assert_eq!(v("max(x, 0) + relu(-x)", "x=-1"), 1.0);
        assert!((v("exp(log(x)) + tanh(0*x)", "x=2.5") - 2.5).abs() < 1e-15);
        let g = eval("x^-1", "x=4");
        assert_eq!(g.variable("x").unwrap().grad, Some(-1.0 / 16.0));
        let g = eval("max(x, y)", "x=1,y=1");
        assert_eq!(g.nodes[g.output()].local, vec![0.5, 0.5]); // a tie halves the gradient
    }

    #[test]
    fn bad_expressions_name_the_column() {
        let e = |s: &str| parse_expr(s).unwrap_err();
        assert_eq!(e("a + * b").column, 5);
        assert!(e("a + * b").message.contains("'*'"));
        assert_eq!(e("foo(x)").column, 1);
        assert!(e("foo(x)").message.contains("unknown function 'foo'"));
        assert_eq!(e("(a + b").column, 7);
        assert!(e("(a + b").message.contains("')'"));
        assert_eq!(e("a $ b").column, 3);
        assert_eq!(e("x^y").column, 3);
        assert!(e("max(x)").message.contains("2 argument"));
        assert!(e("a b").message.contains("'b'"));
        assert!(e("sigmoid + 1").message.contains("function"));
        assert!(e("  ").message.contains("empty"));
        assert!(e("1..2").message.contains("not a number"));
    }

    #[test]
    fn bad_values_are_refused() {
        let p = |s: &str| parse_assignments(s).unwrap_err();
        assert!(p("x=1,y").contains("item 2"));
        assert!(p("x=abc").contains("'abc'"));
        assert!(p("x=inf").contains("finite"));
        assert!(p("x=1,x=2").contains("twice"));
        assert!(p("1x=2").contains("not a name"));
        let ex = parse_expr("a*b").unwrap();
        let e = evaluate_expr(&ex, &parse_assignments("a=1").unwrap()).unwrap_err();
        assert_eq!(e.column, 3);
        assert!(e.message.contains("b has no value"));
        let e = evaluate_expr(&ex, &parse_assignments("a=1,b=2,c=3").unwrap()).unwrap_err();
        assert!(e.message.contains("c is given"));
        let ex = parse_expr("log(x)").unwrap();
        let e = evaluate_expr(&ex, &parse_assignments("x=-1").unwrap()).unwrap_err();
        assert!(e.message.contains("log gives NaN"), "{e}");
    }
}
