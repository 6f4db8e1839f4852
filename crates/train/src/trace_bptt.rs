//! One step of backpropagation through time for a small Elman network, in the lectures'
//! notation.
//!
//! For a network `x_1..x_T → h_t = tanh(z_t)`, `z_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh`
//! (`h_0 = 0`) `→ z^o = W_o h_T + b_o` (a `rnn` layer passing on its last state, then a
//! linear layer), one input sequence and a target, [`bptt_trace`] records every step's
//! `z_t`, `h_t` and `δ_t = ∂C/∂z_t` (taken from the autodiff engine on the unrolled
//! network), and checks the lecture's equations against them:
//!
//! - the output layer: `δ^o = ∇_{z^o} C`, and `δ_T = (W_oᵀ δ^o) ⊙ (1 − h_T²)`;
//! - back through time: `δ_t = (W_hhᵀ δ_{t+1}) ⊙ (1 − h_t²)` — the same matrix at every step,
//!   which is why δ shrinks or grows geometrically with the lag;
//! - the weights shared by all steps collect a sum over time: `∂C/∂W_hh = Σ_t δ_t h_{t−1}ᵀ`,
//!   `∂C/∂W_ih = Σ_t δ_t x_tᵀ`, `∂C/∂b_ih = ∂C/∂b_hh = Σ_t δ_t`;
//!
//! and that the fused recurrent kernel the layer trains with gives the same gradients.

use std::fmt;

use backprop_autograd::Var;
use backprop_nn::{CellKind, Mode, Module, Recurrent, SequenceOutput, Sequential};
use backprop_tensor::Tensor;
use serde::Serialize;

use crate::trace::TraceCost;

/// One time step of a [`BpttTrace`].
#[derive(Debug, Clone, Serialize)]
pub struct BpttStep {
    /// `t`, from 1.
    pub t: usize,
    /// `x_t`.
    pub x: Vec<f64>,
    /// `z_t`.
    pub z: Vec<f64>,
    /// `h_t = tanh(z_t)`.
    pub h: Vec<f64>,
    /// `δ_t = ∂C/∂z_t`.
    pub delta: Vec<f64>,
    /// `‖δ_t‖`.
    pub delta_norm: f64,
}

/// A whole trace of one BPTT step (see the module docs).
#[derive(Debug, Clone, Serialize)]
pub struct BpttTrace {
    /// The cost's formula and target.
    pub cost: String,
    /// `C`.
    pub cost_value: f64,
    /// η.
    pub eta: f64,
    /// The steps, `t = 1..T`.
    pub steps: Vec<BpttStep>,
    /// `z^o`.
    pub output: Vec<f64>,
    /// `δ^o = ∂C/∂z^o`.
    pub delta_output: Vec<f64>,
    /// Each parameter: name, value, gradient, value after the step (rows of a matrix).
    pub params: Vec<(String, Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<Vec<f64>>)>,
    /// Largest `|δ_t − (W_hhᵀ δ_{t+1}) ⊙ (1 − h_t²)|` (and the output step's equation).
    pub recursion_error: f64,
    /// Largest difference between the sums over time (`Σ_t δ_t h_{t−1}ᵀ`, ...) and the
    /// engine's weight gradients.
    pub sum_error: f64,
    /// Largest difference between the fused kernel's gradients and the unrolled network's.
    pub fused_error: f64,
}

fn rows(t: &Tensor<f64>) -> Vec<Vec<f64>> {
    let c = if t.shape().len() > 1 {
        t.shape()[1]
    } else {
        t.numel()
    };
    t.data().chunks(c.max(1)).map(<[f64]>::to_vec).collect()
}

/// The Elman layer and the linear layer after it, if the model is one.
fn elman(model: &Sequential<f64>) -> Result<(&Recurrent<f64>, &backprop_nn::Linear<f64>), String> {
    let mut rnn = None;
    let mut lin = None;
    for (name, l) in model.layers() {
        let r = l.as_any().and_then(|a| a.downcast_ref::<Recurrent<f64>>());
        match (r, l.as_linear()) {
            (Some(r), _) if rnn.is_none() => rnn = Some(r),
            (_, Some(li)) if rnn.is_some() && lin.is_none() => lin = Some(li),
            _ if l.is_shape_only() && rnn.is_none() => {}
            _ => return Err(format!("layer {name} ({}): a BPTT trace works on an Elman `rnn` layer then one linear layer", l.kind())),
        }
    }
    let (Some(r), Some(li)) = (rnn, lin) else {
        return Err("the model needs an Elman `rnn` layer then a linear layer".into());
    };
    let o = r.options();
    if o.kind != CellKind::RnnTanh
        || o.num_layers != 1
        || o.bidirectional
        || o.output != SequenceOutput::Last
        || !o.bias
    {
        return Err(format!("{}: a BPTT trace works on one tanh Elman layer, one direction, with biases, passing on its last state", r.kind()));
    }
    Ok((r, li))
}

/// Traces one gradient step of an Elman `model` on the sequence `x` (`T·I` values, step by
/// step) and `cost`, with rate `eta`. The model itself is not changed.
///
/// # Errors
/// If the model is not an Elman layer then a linear layer, or the sizes do not fit.
pub fn bptt_trace(
    model: &Sequential<f64>,
    x: &[f64],
    cost: &TraceCost,
    eta: f64,
) -> Result<BpttTrace, String> {
    let (rnn, lin) = elman(model)?;
    let (i, h) = (rnn.options().input_size, rnn.options().hidden_size);
    if x.is_empty() || x.len() % i != 0 {
        return Err(format!(
            "the input has {} values; the sequence needs a multiple of the {i} features per step",
            x.len()
        ));
    }
    let t_len = x.len() / i;
    let p: Vec<Var<f64>> = rnn.params().into_iter().map(|(_, v)| v).collect();
    let (w_ih, w_hh, b_ih, b_hh) = (&p[0], &p[1], &p[2], &p[3]);
    // the unrolled network, step by step
    let mut hs = vec![Var::constant(Tensor::zeros(&[1, h]))];
    let mut zs = Vec::new();
    for t in 0..t_len {
        let xt = Var::constant(Tensor::from_vec(x[t * i..(t + 1) * i].to_vec(), &[1, i]));
        let z = xt
            .linear(w_ih, Some(b_ih))
            .add(&hs[t].linear(w_hh, Some(b_hh)));
        z.retain_grad();
        hs.push(z.tanh());
        zs.push(z);
    }
    let zo = lin.forward(&hs[t_len], Mode::Eval);
    zo.retain_grad();
    let (c, cost_name) = cost_of(&zo, cost)?;
    let g = c.backward();
    let val = |v: &Var<f64>| v.value().to_vec();
    let grad = |v: &Var<f64>| {
        g.get(v)
            .map_or_else(|| vec![0.0; v.value().numel()], |t| t.to_vec())
    };
    let steps: Vec<BpttStep> = (0..t_len)
        .map(|t| {
            let delta = grad(&zs[t]);
            BpttStep {
                t: t + 1,
                x: x[t * i..(t + 1) * i].to_vec(),
                z: val(&zs[t]),
                h: val(&hs[t + 1]),
                delta_norm: delta.iter().map(|d| d * d).sum::<f64>().sqrt(),
                delta,
            }
        })
        .collect();
    let delta_output = grad(&zo);
    let (whh, wo) = (w_hh.value(), lin.weight.value());
    let recursion_error = recursion_error(&steps, &delta_output, &whh, &wo);
    // the sums over time against the engine's gradients
    let mut sums = [vec![0.0; h * i], vec![0.0; h * h], vec![0.0; h]];
    for (t, s) in steps.iter().enumerate() {
        let prev = if t == 0 {
            vec![0.0; h]
        } else {
            steps[t - 1].h.clone()
        };
        for r in 0..h {
            (0..i).for_each(|k| sums[0][r * i + k] += s.delta[r] * s.x[k]);
            (0..h).for_each(|k| sums[1][r * h + k] += s.delta[r] * prev[k]);
            sums[2][r] += s.delta[r];
        }
    }
    let engine = [grad(w_ih), grad(w_hh), grad(b_ih), grad(b_hh)];
    let max_diff = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f64::max)
    };
    let sum_error = [(0, 0), (1, 1), (2, 2), (2, 3)]
        .iter()
        .map(|&(s, e)| max_diff(&sums[s], &engine[e]))
        .fold(0.0, f64::max);
    // the fused kernel, through the model as it trains
    let xs = Var::constant(Tensor::from_vec(x.to_vec(), &[1, x.len()]));
    let (fused_cost, _) = cost_of(&model.forward(&xs, Mode::Eval), cost)?;
    let fg = fused_cost.backward();
    let mut fused_error = (fused_cost.item() - c.item()).abs();
    let all: Vec<(String, Var<f64>)> = rnn
        .params()
        .into_iter()
        .map(|(n, v)| (format!("rnn.{n}"), v))
        .chain(
            lin.params()
                .into_iter()
                .map(|(n, v)| (format!("out.{n}"), v)),
        )
        .collect();
    let mut params = Vec::new();
    for (name, v) in &all {
        let (value, gv) = (
            v.value(),
            g.get(v).cloned().unwrap_or_else(|| v.value().zeros_like()),
        );
        if let Some(f) = fg.get(v) {
            fused_error = fused_error.max(max_diff(f.data(), gv.data()));
        }
        params.push((
            name.clone(),
            rows(&value),
            rows(&gv),
            rows(&value.sub(&gv.mul_scalar(eta))),
        ));
    }
    Ok(BpttTrace {
        cost: cost_name,
        cost_value: c.item(),
        eta,
        output: val(&zo),
        delta_output,
        steps,
        params,
        recursion_error,
        sum_error,
        fused_error,
    })
}

fn cost_of(zo: &Var<f64>, cost: &TraceCost) -> Result<(Var<f64>, String), String> {
    let n = zo.shape()[1];
    match cost {
        TraceCost::Squared(y) if y.len() == n => {
            let d = zo.sub(&Var::constant(Tensor::from_vec(y.clone(), &[1, n])));
            Ok((
                d.mul(&d).sum().mul_scalar(0.5),
                format!("C = ½‖z^o − y‖², y = {y:?}"),
            ))
        }
        TraceCost::Squared(y) => Err(format!(
            "the target has {} values but the network has {n} outputs",
            y.len()
        )),
        TraceCost::CrossEntropy(k) if *k < n => Ok((
            zo.log_softmax(1).gather(1, &[*k]).neg().sum(),
            format!("C = −log softmax(z^o)_y, y = class {k}"),
        )),
        TraceCost::CrossEntropy(k) => Err(format!("class {k} is out of range for {n} outputs")),
    }
}

/// The largest violation of `δ_T = (W_oᵀ δ^o) ⊙ (1 − h_T²)` and
/// `δ_t = (W_hhᵀ δ_{t+1}) ⊙ (1 − h_t²)`.
fn recursion_error(
    steps: &[BpttStep],
    delta_o: &[f64],
    whh: &Tensor<f64>,
    wo: &Tensor<f64>,
) -> f64 {
    let h = whh.shape()[1];
    let back = |w: &Tensor<f64>, d: &[f64], j: usize| -> f64 {
        d.iter()
            .enumerate()
            .map(|(r, dr)| w.get(&[r, j]) * dr)
            .sum()
    };
    let mut err = 0.0f64;
    for (t, s) in steps.iter().enumerate() {
        let (w, upstream): (&Tensor<f64>, &[f64]) = match steps.get(t + 1) {
            Some(next) => (whh, &next.delta),
            None => (wo, delta_o),
        };
        for j in 0..h {
            let want = back(w, upstream, j) * (1.0 - s.h[j] * s.h[j]);
            err = err.max((s.delta[j] - want).abs());
        }
    }
    err
}

fn fmt_vec(v: &[f64]) -> String {
    let shown: Vec<String> = v.iter().take(8).map(|x| format!("{x:+.5}")).collect();
    let more = if v.len() > 8 {
        format!(", … ({} values)", v.len())
    } else {
        String::new()
    };
    format!("[{}{more}]", shown.join(", "))
}

impl fmt::Display for BpttTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t_len = self.steps.len();
        writeln!(f, "Elman network unrolled over T = {t_len} steps, h_0 = 0:")?;
        writeln!(
            f,
            "  z_t = W_ih x_t + b_ih + W_hh h_(t−1) + b_hh,  h_t = tanh(z_t),  z^o = W_o h_T + b_o"
        )?;
        writeln!(f, "\nforward pass")?;
        for s in &self.steps {
            writeln!(f, "  t = {:<3} x_t = {}", s.t, fmt_vec(&s.x))?;
            writeln!(f, "          z_t = {}", fmt_vec(&s.z))?;
            writeln!(f, "          h_t = {}", fmt_vec(&s.h))?;
        }
        writeln!(f, "  z^o = {}", fmt_vec(&self.output))?;
        writeln!(f, "\ncost {}\n  C = {:.6}", self.cost, self.cost_value)?;
        writeln!(f, "\nbackward through time (δ_t = ∂C/∂z_t)")?;
        writeln!(f, "  δ^o = ∇_(z^o) C = {}", fmt_vec(&self.delta_output))?;
        for s in self.steps.iter().rev() {
            let rule = if s.t == t_len {
                "(W_oᵀ δ^o) ⊙ (1 − h_T²)".to_string()
            } else {
                format!("(W_hhᵀ δ_{}) ⊙ (1 − h_{}²)", s.t + 1, s.t)
            };
            writeln!(
                f,
                "  δ_{:<3} = {rule:<26} = {}   ‖δ‖ = {:.3e}",
                s.t,
                fmt_vec(&s.delta),
                s.delta_norm
            )?;
        }
        writeln!(
            f,
            "  (the engine's δ agrees with the recursion to {:.1e})",
            self.recursion_error
        )?;
        writeln!(
            f,
            "\ngradients: shared weights sum over time, and the step with η = {}",
            self.eta
        )?;
        writeln!(f, "  ∂C/∂W_ih = Σ_t δ_t x_tᵀ,  ∂C/∂W_hh = Σ_t δ_t h_(t−1)ᵀ,  ∂C/∂b_ih = ∂C/∂b_hh = Σ_t δ_t,  ∂C/∂W_o = δ^o h_Tᵀ")?;
        for (name, _, grad, new) in &self.params {
            writeln!(f, "  {name}")?;
            for (g, n) in grad.iter().zip(new).take(6) {
                writeln!(
                    f,
                    "    ∂C/∂· {}   after the step {}",
                    fmt_vec(g),
                    fmt_vec(n)
                )?;
            }
        }
        writeln!(f, "  (the sums over time agree with the engine to {:.1e}; the fused BPTT kernel the layer trains with agrees to {:.1e})", self.sum_error, self.fused_error)
    }
}
