//! One step of backpropagation in the lectures' notation.
//!
//! For a network of layers `z^l = W^l a^{l−1} + b^l`, `a^l = σ(z^l)` (a linear layer and the
//! elementwise activation after it; none means the identity; the printed trace names each
//! layer's own activation, `a^l = relu(z^l)`, instead of σ), one input `x = a^0` and a
//! target `y`, [`trace`] records the forward pass (`z^l`, `a^l`), the errors
//! `δ^l = ∂C/∂z^l` taken from the autodiff engine, `σ'(z^l)`, the gradients `∂C/∂b^l = δ^l`
//! (BP3) and `∂C/∂W^l = δ^l (a^{l−1})ᵀ` (BP4), and the parameters after one gradient step
//! with rate η. It also checks the lectures' equations against the engine's numbers:
//! BP1 `δ^L = ∇_a C ⊙ σ'(z^L)` and BP2 `δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l)`.

use std::fmt;

use backprop_autograd::Var;
use backprop_nn::{Activation, Mode, Module, Sequential};
use backprop_tensor::Tensor;
use serde::Serialize;

/// The cost a trace differentiates.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceCost {
    /// `C = ½‖a^L − y‖²`, the lectures' quadratic cost for one sample.
    Squared(Vec<f64>),
    /// `C = −log softmax(z^L)_y` for class `y` (the last layer should have no activation).
    CrossEntropy(usize),
}

/// One lecture layer of a trace.
#[derive(Debug, Clone, Serialize)]
pub struct TraceLayer {
    /// `l`, from 1.
    pub index: usize,
    /// The linear layer's name, e.g. `fc1`.
    pub linear: String,
    /// The activation's name as a spec writes it (`relu`, `sigmoid`; `identity` when none
    /// follows).
    pub activation: String,
    /// `z^l`.
    pub z: Vec<f64>,
    /// `a^l = f(z^l)`, with `f` the layer's activation.
    pub a: Vec<f64>,
    /// `f′(z^l)` (the lectures' `σ'(z^l)`).
    pub sigma_prime: Vec<f64>,
    /// `δ^l = ∂C/∂z^l`.
    pub delta: Vec<f64>,
    /// `W^l`, `[out][in]`.
    pub weight: Vec<Vec<f64>>,
    /// `b^l`, if the layer has a bias.
    pub bias: Option<Vec<f64>>,
    /// `∂C/∂W^l = δ^l (a^{l−1})ᵀ`.
    pub grad_weight: Vec<Vec<f64>>,
    /// `∂C/∂b^l = δ^l`.
    pub grad_bias: Option<Vec<f64>>,
    /// `W^l − η ∂C/∂W^l`.
    pub new_weight: Vec<Vec<f64>>,
    /// `b^l − η ∂C/∂b^l`.
    pub new_bias: Option<Vec<f64>>,
}

/// A whole trace.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// `a^0 = x`.
    pub input: Vec<f64>,
    /// The cost's name and target.
    pub cost: String,
    /// `C`.
    pub cost_value: f64,
    /// η.
    pub eta: f64,
    /// `∇_a C` at the output.
    pub grad_output: Vec<f64>,
    /// The layers, input side first.
    pub layers: Vec<TraceLayer>,
    /// Largest `|δ^L − ∇_a C ⊙ σ'(z^L)|` (BP1; for cross-entropy from logits, δ^L = p − y).
    pub bp1_error: f64,
    /// Largest `|δ^l − ((W^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l)|` over the hidden layers (BP2).
    pub bp2_error: f64,
}

/// Builds the cost of an output `[1, n]` on the engine and its description, e.g.
/// `C = ½‖a^L − y‖², y = [0.5]` (used by [`trace`] and by the graph of a step).
///
/// # Errors
/// If the target does not fit the output.
pub fn cost_var(out: &Var<f64>, cost: &TraceCost) -> Result<(Var<f64>, String), String> {
    let n_out = out.shape()[1];
    Ok(match cost {
        TraceCost::Squared(y) => {
            if y.len() != n_out {
                return Err(format!(
                    "the target has {} values but the network has {n_out} outputs",
                    y.len()
                ));
            }
            let d = out.sub(&Var::constant(Tensor::from_vec(y.clone(), &[1, n_out])));
            (
                d.mul(&d).sum().mul_scalar(0.5),
                format!("C = ½‖a^L − y‖², y = {y:?}"),
            )
        }
        TraceCost::CrossEntropy(k) => {
            if *k >= n_out {
                return Err(format!("class {k} is out of range for {n_out} outputs"));
            }
            (
                out.log_softmax(1).gather(1, &[*k]).neg().sum(),
                format!("C = −log softmax(a^L)_y, y = class {k}"),
            )
        }
    })
}

fn rows(t: &Tensor<f64>) -> Vec<Vec<f64>> {
    let c = *t.shape().last().unwrap_or(&1);
    t.data().chunks(c.max(1)).map(<[f64]>::to_vec).collect()
}

/// Traces one gradient step of `model` on `(x, cost)` with rate `eta`. The model itself is
/// not changed.
///
/// # Errors
/// If the model is not a chain of linear layers with elementwise activations, or the sizes
/// do not fit.
pub fn trace(
    model: &Sequential<f64>,
    x: &[f64],
    cost: &TraceCost,
    eta: f64,
) -> Result<Trace, String> {
    // group the layers into (linear, activation) pairs
    let layers: Vec<(&str, &dyn Module<f64>)> = model.layers().collect();
    let mut groups: Vec<(usize, Option<usize>)> = Vec::new();
    for (i, (name, l)) in layers.iter().enumerate() {
        if l.as_linear().is_some() {
            groups.push((i, None));
        } else if l.activation().is_some_and(|a| a.is_elementwise()) {
            match groups.last_mut() {
                Some((_, act @ None)) => *act = Some(i),
                _ => return Err(format!("layer {name} ({}) does not follow a linear layer; trace works on linear layers each followed by at most one activation", l.kind())),
            }
        } else if !l.is_shape_only() {
            return Err(format!("layer {name} ({}) is not a linear layer or an elementwise activation; trace works on MLPs", l.kind()));
        }
    }
    if groups.is_empty() {
        return Err("the model has no linear layer to trace".into());
    }
    let linear = |li: usize| layers[li].1.as_linear().expect("grouped as linear");
    let inputs = linear(groups[0].0).in_features();
    if x.len() != inputs {
        return Err(format!(
            "the input has {} values but the model takes {inputs}",
            x.len()
        ));
    }
    // forward, keeping z^l and a^l
    let mut a = Var::constant(Tensor::from_vec(x.to_vec(), &[1, inputs]));
    let mut zs = Vec::new();
    let mut acts = vec![a.clone()];
    for &(li, ai) in &groups {
        let z = layers[li].1.forward(&a, Mode::Eval);
        z.retain_grad();
        a = match ai {
            Some(k) => layers[k].1.forward(&z, Mode::Eval),
            None => z.clone(),
        };
        a.retain_grad();
        zs.push(z);
        acts.push(a.clone());
    }
    let out = acts.last().unwrap().clone();
    let (c, cost_name) = cost_var(&out, cost)?;
    let grads = c.backward();
    let vec_of = |v: &Var<f64>| {
        grads
            .get(v)
            .map(|t| t.to_vec())
            .unwrap_or_else(|| vec![0.0; v.with_value(|t| t.numel())])
    };
    // σ'(z) of each activation, by differentiating it elementwise
    let sigma_prime = |ai: Option<usize>, z: &Var<f64>| -> Vec<f64> {
        let zl = Var::parameter(z.value());
        let g = match ai {
            Some(k) => layers[k].1.forward(&zl, Mode::Eval).sum().backward(),
            None => zl.sum().backward(),
        };
        g.get(&zl)
            .map(|t| t.to_vec())
            .unwrap_or_else(|| vec![0.0; zl.with_value(|t| t.numel())])
    };
    let mut out_layers = Vec::new();
    for (l, (&(li, ai), z)) in groups.iter().zip(&zs).enumerate() {
        let lin = linear(li);
        let w = lin.weight.value();
        let b = lin.bias.as_ref().map(|b| b.value());
        let gw = grads
            .get(&lin.weight)
            .cloned()
            .unwrap_or_else(|| w.zeros_like());
        let gb = lin.bias.as_ref().map(|p| {
            grads
                .get(p)
                .cloned()
                .unwrap_or_else(|| p.value().zeros_like())
        });
        out_layers.push(TraceLayer {
            index: l + 1,
            linear: layers[li].0.to_string(),
            activation: ai
                .and_then(|k| layers[k].1.activation())
                .unwrap_or(Activation::Identity)
                .name()
                .to_string(),
            z: z.value().to_vec(),
            a: acts[l + 1].value().to_vec(),
            sigma_prime: sigma_prime(ai, z),
            delta: vec_of(z),
            weight: rows(&w),
            bias: b.as_ref().map(|b| b.to_vec()),
            grad_weight: rows(&gw),
            grad_bias: gb.as_ref().map(|g| g.to_vec()),
            new_weight: rows(&w.sub(&gw.mul_scalar(eta))),
            new_bias: b
                .as_ref()
                .zip(gb.as_ref())
                .map(|(b, g)| b.sub(&g.mul_scalar(eta)).to_vec()),
        });
    }
    let grad_output = vec_of(&out);
    // BP1 (for cross-entropy from logits with no activation, δ^L = ∇_a C = p − y)
    let last = out_layers.last().unwrap();
    let bp1_error = last
        .delta
        .iter()
        .zip(&grad_output)
        .zip(&last.sigma_prime)
        .map(|((d, g), s)| (d - g * s).abs())
        .fold(0.0, f64::max);
    // BP2
    let mut bp2_error = 0.0f64;
    for l in 0..out_layers.len().saturating_sub(1) {
        let (cur, next) = (&out_layers[l], &out_layers[l + 1]);
        for (j, (&d, &sp)) in cur.delta.iter().zip(&cur.sigma_prime).enumerate() {
            let back: f64 = next
                .weight
                .iter()
                .zip(&next.delta)
                .map(|(row, dn)| row[j] * dn)
                .sum();
            bp2_error = bp2_error.max((d - back * sp).abs());
        }
    }
    Ok(Trace {
        input: x.to_vec(),
        cost: cost_name,
        cost_value: c.item(),
        eta,
        grad_output,
        layers: out_layers,
        bp1_error,
        bp2_error,
    })
}

fn fmt_vec(v: &[f64]) -> String {
    let shown: Vec<String> = v.iter().take(10).map(|x| format!("{x:.6}")).collect();
    if v.len() > 10 {
        format!("[{}, ... ({} values)]", shown.join(", "), v.len())
    } else {
        format!("[{}]", shown.join(", "))
    }
}

fn fmt_mat(m: &[Vec<f64>], indent: &str) -> String {
    let mut s = String::new();
    for (k, r) in m.iter().enumerate() {
        if k == 8 && m.len() > 9 {
            s += &format!("{indent}... ({} rows)\n", m.len());
            break;
        }
        s += &format!("{indent}{}\n", fmt_vec(r));
    }
    s
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "input a^0 = {}", fmt_vec(&self.input))?;
        writeln!(f, "\nforward pass")?;
        for l in &self.layers {
            writeln!(
                f,
                "  layer {} ({} then {})",
                l.index, l.linear, l.activation
            )?;
            let rhs = if l.bias.is_some() {
                format!("W^{} a^{} + b^{}", l.index, l.index - 1, l.index)
            } else {
                format!("W^{} a^{}", l.index, l.index - 1)
            };
            writeln!(f, "    z^{} = {rhs} = {}", l.index, fmt_vec(&l.z))?;
            writeln!(
                f,
                "    a^{} = {}(z^{}) = {}",
                l.index,
                l.activation,
                l.index,
                fmt_vec(&l.a)
            )?;
        }
        writeln!(f, "\ncost {}\n  C = {:.6}", self.cost, self.cost_value)?;
        let last = self.layers.last().unwrap();
        writeln!(f, "\nbackward pass")?;
        let (act, l) = (&last.activation, last.index);
        writeln!(f, "  BP1  δ^{l} = ∇_a C ⊙ {act}′(z^{l})")?;
        writeln!(f, "       ∇_a C     = {}", fmt_vec(&self.grad_output))?;
        let sp = fmt_vec(&last.sigma_prime);
        writeln!(f, "       {act}′(z^{l}) = {sp}")?;
        writeln!(
            f,
            "       δ^{}       = {}",
            last.index,
            fmt_vec(&last.delta)
        )?;
        for l in self.layers.iter().rev().skip(1) {
            let (act, k, next) = (&l.activation, l.index, l.index + 1);
            writeln!(f, "  BP2  δ^{k} = ((W^{next})ᵀ δ^{next}) ⊙ {act}′(z^{k})")?;
            let sp = fmt_vec(&l.sigma_prime);
            writeln!(f, "       {act}′(z^{k}) = {sp}")?;
            writeln!(f, "       δ^{}       = {}", l.index, fmt_vec(&l.delta))?;
        }
        writeln!(
            f,
            "  (the engine's δ agrees with BP1 to {:.1e} and with BP2 to {:.1e})",
            self.bp1_error, self.bp2_error
        )?;
        writeln!(f, "\ngradients and the step with η = {}", self.eta)?;
        for l in &self.layers {
            if let Some(gb) = &l.grad_bias {
                writeln!(
                    f,
                    "  BP3  ∂C/∂b^{} = δ^{} = {}",
                    l.index,
                    l.index,
                    fmt_vec(gb)
                )?;
            }
            write!(
                f,
                "  BP4  ∂C/∂W^{} = δ^{} (a^{})ᵀ =\n{}",
                l.index,
                l.index,
                l.index - 1,
                fmt_mat(&l.grad_weight, "         ")
            )?;
            write!(
                f,
                "       W^{} − η ∂C/∂W^{} =\n{}",
                l.index,
                l.index,
                fmt_mat(&l.new_weight, "         ")
            )?;
            if let Some(nb) = &l.new_bias {
                writeln!(
                    f,
                    "       b^{} − η ∂C/∂b^{} = {}",
                    l.index,
                    l.index,
                    fmt_vec(nb)
                )?;
            }
        }
        Ok(())
    }
}
