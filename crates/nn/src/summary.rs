//! A per-layer summary of a network: name, type, output shape and parameter count.

use std::fmt;

use backprop_autograd::{no_grad, Var};
use backprop_tensor::{Element, Tensor};

use crate::module::{Mode, Module, Sequential};

/// One row of a [`Summary`].
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// The layer's name in its container (`fc1`).
    pub name: String,
    /// The layer's description (`Linear(3 → 4)`).
    pub kind: String,
    /// The output shape for the summary's input shape.
    pub output_shape: Vec<usize>,
    /// Learnable scalars in the layer.
    pub params: usize,
}

/// What a network is made of. Weights and biases are told apart by parameter name: a
/// parameter whose name's last part starts with `bias` is a bias (β of a normalization layer
/// included, and a recurrent layer's `bias_ih_l0`).
///
/// ```
/// use backprop_nn::{Activation, Linear, Sequential, Summary};
/// use backprop_tensor::Rng;
/// let mut rng = Rng::seed(0);
/// let net = Sequential::<f32>::new()
///     .add("fc1", Linear::new(3, 4, &mut rng)).add("sig1", Activation::Sigmoid)
///     .add("fc2", Linear::new(4, 2, &mut rng));
/// let s = Summary::of_sequential(&net, &[1, 3]);
/// assert_eq!((s.total_params, s.weights, s.biases), (26, 20, 6));
/// assert_eq!(s.rows[2].output_shape, vec![1, 2]);
/// println!("{s}");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The input shape the shapes were computed for.
    pub input_shape: Vec<usize>,
    /// One row per layer.
    pub rows: Vec<SummaryRow>,
    /// All learnable scalars.
    pub total_params: usize,
    /// Scalars in parameters not named `*bias`.
    pub weights: usize,
    /// Scalars in parameters named `*bias`.
    pub biases: usize,
}

fn count<E: Element>(params: &[(String, Var<E>)]) -> (usize, usize) {
    let mut w = 0;
    let mut b = 0;
    for (n, p) in params {
        let k = p.with_value(|v| v.numel());
        if n.rsplit('.')
            .next()
            .is_some_and(|last| last.starts_with("bias"))
        {
            b += k;
        } else {
            w += k;
        }
    }
    (w, b)
}

impl Summary {
    /// One row per layer of a [`Sequential`], shapes found by a forward pass of zeros in
    /// evaluation mode (nothing is recorded and no statistics change).
    pub fn of_sequential<E: Element>(net: &Sequential<E>, input_shape: &[usize]) -> Summary {
        let mut rows = Vec::new();
        no_grad(|| {
            let mut h = Var::constant(Tensor::<E>::zeros(input_shape));
            for (name, layer) in net.layers() {
                h = layer.forward(&h, Mode::Eval);
                rows.push(SummaryRow {
                    name: name.to_string(),
                    kind: layer.kind(),
                    output_shape: h.shape(),
                    params: layer.num_params(),
                });
            }
        });
        Self::finish(input_shape, rows, &net.params())
    }

    /// A single row for any module.
    pub fn of_module<E: Element>(m: &dyn Module<E>, input_shape: &[usize]) -> Summary {
        let out = no_grad(|| {
            m.forward(&Var::constant(Tensor::<E>::zeros(input_shape)), Mode::Eval)
                .shape()
        });
        let rows = vec![SummaryRow {
            name: "model".into(),
            kind: m.kind(),
            output_shape: out,
            params: m.num_params(),
        }];
        Self::finish(input_shape, rows, &m.params())
    }

    fn finish<E: Element>(
        input_shape: &[usize],
        rows: Vec<SummaryRow>,
        params: &[(String, Var<E>)],
    ) -> Summary {
        let (weights, biases) = count(params);
        Summary {
            input_shape: input_shape.to_vec(),
            rows,
            total_params: weights + biases,
            weights,
            biases,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wn = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let wk = self
            .rows
            .iter()
            .map(|r| r.kind.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        writeln!(f, "input shape {:?}", self.input_shape)?;
        writeln!(
            f,
            "{:<wn$}  {:<wk$}  {:<16} {:>10}",
            "layer", "type", "output shape", "params"
        )?;
        for r in &self.rows {
            let pad = wk - r.kind.chars().count();
            writeln!(
                f,
                "{:<wn$}  {}{}  {:<16} {:>10}",
                r.name,
                r.kind,
                " ".repeat(pad),
                format!("{:?}", r.output_shape),
                r.params
            )?;
        }
        write!(
            f,
            "total parameters: {} (weights {}, biases {})",
            self.total_params, self.weights, self.biases
        )
    }
}
