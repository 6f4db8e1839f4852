//! Gradient checking: analytic gradients from [`Var::backward`] against central
//! differences, in `f64`.

use std::fmt;

use backprop_tensor::Tensor;

use crate::var::{no_grad, Var};

/// Settings of a gradient check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradcheckOptions {
    /// Step `h` of the fourth-order central difference
    /// `(8(f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h))) / 12h`.
    pub eps: f64,
    /// An element passes if its absolute error is at most `atol`...
    pub atol: f64,
    /// ...or its relative error `|a − n| / max(|a|, |n|, rel_floor)` is at most `rtol`.
    pub rtol: f64,
    /// The smallest denominator of the relative error. A central difference in f64 carries
    /// an absolute error near `1e-16·|f|/eps` (about 1e-10 here) however small the gradient
    /// is, so the relative error of a gradient far below 1e-3 measures that noise, not the
    /// backward rule; with the floor it becomes the absolute error times `1/rel_floor`.
    pub rel_floor: f64,
    /// Check at most this many elements of each input, evenly spaced (all if `None`):
    /// large layers have too many weights to perturb one by one.
    pub max_elements: Option<usize>,
}

impl Default for GradcheckOptions {
    /// `eps = 1e-4`, `atol = 1e-8`, `rtol = 1e-6`, `rel_floor = 1e-3`, every element. In
    /// f64 the fourth-order difference's error is about `h⁴·|f⁽⁵⁾|` (truncation) plus
    /// `1e-16·|f|/h` (round-off); `h = 1e-4` keeps both near 1e-12·|f|.
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-4,
            atol: 1e-8,
            rtol: 1e-6,
            rel_floor: 1e-3,
            max_elements: None,
        }
    }
}

/// The outcome for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputReport {
    /// Position of the input in the list given to the check.
    pub index: usize,
    /// The input's shape.
    pub shape: Vec<usize>,
    /// Largest `|analytic − numeric|` over the input's elements.
    pub max_abs_err: f64,
    /// Largest `|analytic − numeric| / max(|analytic|, |numeric|, rel_floor)` over the
    /// input's elements.
    pub max_rel_err: f64,
    /// Flat index of the worst element (by the pass criterion).
    pub worst_element: usize,
    /// Analytic gradient at the worst element.
    pub analytic: f64,
    /// Numeric gradient at the worst element.
    pub numeric: f64,
    /// Elements where `f` is not differentiable within the difference's reach (a ReLU input
    /// or a max-pool tie at a kink): their difference quotients disagree with each other as
    /// the step shrinks, so they say nothing about the backward rule and are not judged.
    pub kinks: usize,
    /// Whether every judged element passed.
    pub passed: bool,
}

/// The outcome of [`gradcheck`] / [`gradcheck_vars`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradcheckReport {
    /// One entry per input, in order.
    pub inputs: Vec<InputReport>,
    /// The settings used.
    pub options: GradcheckOptions,
}

impl GradcheckReport {
    /// True if every input passed.
    pub fn passed(&self) -> bool {
        self.inputs.iter().all(|i| i.passed)
    }
    /// The largest relative error over all inputs.
    pub fn max_rel_err(&self) -> f64 {
        self.inputs
            .iter()
            .map(|i| i.max_rel_err)
            .fold(0.0, f64::max)
    }
    /// The largest absolute error over all inputs.
    pub fn max_abs_err(&self) -> f64 {
        self.inputs
            .iter()
            .map(|i| i.max_abs_err)
            .fold(0.0, f64::max)
    }
}

impl GradcheckReport {
    /// Elements not judged because they sit at a kink, over all inputs.
    pub fn kinks(&self) -> usize {
        self.inputs.iter().map(|i| i.kinks).sum()
    }
}

impl GradcheckOptions {
    /// Whether an analytic gradient `a` matches a numeric one `n`.
    fn agrees(&self, a: f64, n: f64) -> bool {
        let abs = (a - n).abs();
        abs <= self.atol || abs / a.abs().max(n.abs()).max(self.rel_floor) <= self.rtol
    }
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:>5}  {:<14} {:>12} {:>12}  {:>12} {:>12}  result",
            "input", "shape", "max abs err", "max rel err", "analytic", "numeric"
        )?;
        for i in &self.inputs {
            writeln!(
                f,
                "{:>5}  {:<14} {:>12.3e} {:>12.3e}  {:>12.6} {:>12.6}  {}{}",
                i.index,
                format!("{:?}", i.shape),
                i.max_abs_err,
                i.max_rel_err,
                i.analytic,
                i.numeric,
                if i.passed { "ok" } else { "FAIL" },
                if i.kinks > 0 {
                    format!(" ({} at a kink, not judged)", i.kinks)
                } else {
                    String::new()
                }
            )?;
        }
        write!(
            f,
            "{}",
            if self.passed() {
                "gradcheck passed"
            } else {
                "gradcheck FAILED"
            }
        )
    }
}

/// Checks the gradients of a scalar function of `inputs`. Each input becomes a
/// [`Var::parameter`]; `f` receives them in order and returns a one-element `Var`.
///
/// ```
/// use backprop_autograd::{gradcheck, GradcheckOptions};
/// use backprop_tensor::Tensor;
/// let x = Tensor::<f64>::from_vec(vec![0.3, -1.2, 2.0], &[3]);
/// let report = gradcheck(|v| v[0].mul(&v[0]).exp().mean(), &[x], GradcheckOptions::default());
/// assert!(report.passed(), "{report}");
/// assert!(report.max_rel_err() < 1e-6);
/// ```
///
/// # Panics
/// If `f` does not return a one-element variable.
pub fn gradcheck(
    f: impl Fn(&[Var<f64>]) -> Var<f64>,
    inputs: &[Tensor<f64>],
    options: GradcheckOptions,
) -> GradcheckReport {
    let vars: Vec<Var<f64>> = inputs.iter().map(|t| Var::parameter(t.clone())).collect();
    gradcheck_vars(|| f(&vars), &vars, options)
}

/// Checks the gradients of a scalar function with respect to existing leaf variables
/// (e.g. a layer's parameters): `f` is re-run with each element of each variable moved
/// by ±ε, and the variables are restored afterwards.
///
/// # Panics
/// If `f` does not return a one-element variable, or a variable is not a leaf.
pub fn gradcheck_vars(
    f: impl Fn() -> Var<f64>,
    vars: &[Var<f64>],
    options: GradcheckOptions,
) -> GradcheckReport {
    let out = f();
    let grads = out.backward();
    let mut inputs = Vec::with_capacity(vars.len());
    for (index, var) in vars.iter().enumerate() {
        let original = var.value();
        let analytic = grads
            .get(var)
            .cloned()
            .unwrap_or_else(|| original.zeros_like());
        let mut report = InputReport {
            index,
            shape: original.shape().to_vec(),
            max_abs_err: 0.0,
            max_rel_err: 0.0,
            worst_element: 0,
            analytic: 0.0,
            numeric: 0.0,
            kinks: 0,
            passed: true,
        };
        let mut worst_score = f64::NEG_INFINITY;
        let n = original.numel();
        let stride = options
            .max_elements
            .map_or(1, |m| n.div_ceil(m.max(1)).max(1));
        for j in (0..n).step_by(stride) {
            let eval = |delta: f64| {
                let mut t = original.clone();
                t.data_mut()[j] += delta;
                var.set_value(t);
                no_grad(|| f().item())
            };
            // fourth-order central difference: error O(h⁴) from truncation, so the step can
            // be large enough to keep round-off (≈ 1e-16·|f|/h) small
            let difference = |h: f64| {
                (8.0 * (eval(h) - eval(-h)) - (eval(2.0 * h) - eval(-2.0 * h))) / (12.0 * h)
            };
            let a = analytic.data()[j];
            let mut numeric = difference(options.eps);
            if !options.agrees(a, numeric) {
                // A kink (a ReLU input or a max-pool tie within ±2h) breaks the difference,
                // not the rule. Smaller steps step off a kink that is near but not at x: a
                // match there settles it.
                let h = options.eps / 100.0;
                let finer = [difference(options.eps / 10.0), difference(h)];
                if let Some(&n) = finer.iter().find(|&&n| options.agrees(a, n)) {
                    numeric = n;
                } else {
                    // Still apart: compare the one-sided derivatives (second order). Where
                    // they differ, f has a kink within 2h of x, and a correct rule gives one
                    // side's slope (ReLU'(0) = 0, a pool tie's first element): such an
                    // element is not judged. A rule matching neither side, or a mismatch
                    // where both sides agree (smooth f), fails.
                    let f0 = eval(0.0);
                    let right = (-3.0 * f0 + 4.0 * eval(h) - eval(2.0 * h)) / (2.0 * h);
                    let left = (3.0 * f0 - 4.0 * eval(-h) + eval(-2.0 * h)) / (2.0 * h);
                    let (on_left, on_right) = (options.agrees(a, left), options.agrees(a, right));
                    if on_left && on_right {
                        // both sides have the analytic slope: f is differentiable here but
                        // its slope is not (relu(z)² at z = 0), which spoils the central
                        // formulas' error bound, not the rule
                        numeric = right;
                    } else if !options.agrees(left, right) && (on_left || on_right) {
                        report.kinks += 1;
                        continue;
                    } else {
                        numeric = finer[1];
                    }
                }
            }
            let abs = (a - numeric).abs();
            let scale = a.abs().max(numeric.abs()).max(options.rel_floor);
            let rel = if scale > 0.0 { abs / scale } else { 0.0 };
            let ok = abs <= options.atol || rel <= options.rtol;
            report.max_abs_err = report.max_abs_err.max(abs);
            report.max_rel_err = report.max_rel_err.max(rel);
            report.passed &= ok;
            // the worst element: failing ones first, then by relative error
            let score = if ok {
                rel.min(abs / options.atol.max(f64::MIN_POSITIVE))
            } else {
                1e300 + rel
            };
            if score > worst_score {
                worst_score = score;
                report.worst_element = j;
                report.analytic = a;
                report.numeric = numeric;
            }
        }
        var.set_value(original);
        inputs.push(report);
    }
    GradcheckReport { inputs, options }
}
