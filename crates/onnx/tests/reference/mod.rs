//! A slow reference interpreter for the ONNX graphs the exporter writes for recurrent
//! networks, written from the ONNX operator specification (not from our kernels): the
//! `RNN`, `LSTM` and `GRU` equations with `activations`, `linear_before_reset`, both
//! directions and per-sample `sequence_lens`, and the few plain operators around them.
//! Every value is held as `f64` (booleans as 0/1, integers exactly), so the interpreter's
//! own rounding is far below the 1e-5 the tests ask for.
//!
//! It covers what tract does not run: the ReLU Elman network and `sequence_lens` computed in
//! the graph (padding).

use std::collections::HashMap;

use backprop_onnx::proto::{AttributeProto, DataType, GraphProto, NodeProto, TensorProto};

/// A tensor value: its shape and its elements, row-major.
#[derive(Clone, Debug)]
pub struct Val {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Val {
    fn scalar_like(&self) -> bool {
        self.data.len() == 1
    }
}

fn decode(t: &TensorProto) -> Val {
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let data = if t.data_type == DataType::Int64 as i32 {
        t.raw_data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect()
    } else {
        assert_eq!(t.data_type, DataType::Float as i32, "{}", t.name);
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect()
    };
    Val { shape, data }
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn int(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i)
}

/// Runs `g` on `input` (`[N, ...]`); returns the graph's outputs in order.
pub fn run(g: &GraphProto, input: Val) -> Vec<Val> {
    let mut env: HashMap<String, Val> = g
        .initializer
        .iter()
        .map(|t| (t.name.clone(), decode(t)))
        .collect();
    env.insert(g.input[0].name.clone(), input);
    for n in &g.node {
        let ins: Vec<Option<&Val>> = n
            .input
            .iter()
            .map(|s| (!s.is_empty()).then(|| &env[s]))
            .collect();
        let outs = node(n, &ins);
        for (name, v) in n.output.iter().zip(outs) {
            if !name.is_empty() {
                env.insert(name.clone(), v);
            }
        }
    }
    g.output.iter().map(|o| env[&o.name].clone()).collect()
}

fn node(n: &NodeProto, ins: &[Option<&Val>]) -> Vec<Val> {
    let x = ins[0].unwrap();
    let one = |v: Val| vec![v];
    match n.op_type.as_str() {
        "Identity" => one(x.clone()),
        "Transpose" => one(transpose(x, &attr(n, "perm").unwrap().ints)),
        "Reshape" => one(reshape(x, &ins[1].unwrap().data)),
        "Flatten" => {
            assert_eq!(int(n, "axis", 1), 1);
            let rest = x.data.len() / x.shape[0];
            one(reshape(x, &[x.shape[0] as f64, rest as f64]))
        }
        "Gemm" => one(gemm(x, ins[1].unwrap(), ins.get(2).copied().flatten())),
        "Softmax" => one(softmax_last(x)),
        "Equal" => one(zip(x, ins[1].unwrap(), |a, b| f64::from(u8::from(a == b)))),
        "Add" => one(zip(x, ins[1].unwrap(), |a, b| a + b)),
        "Mul" => one(zip(x, ins[1].unwrap(), |a, b| a * b)),
        "Not" => one(map(x, |a| 1.0 - a)),
        "Cast" => {
            let to = int(n, "to", 1);
            one(if to == DataType::Float as i64 {
                x.clone()
            } else {
                map(x, f64::trunc)
            })
        }
        "ReduceMax" => {
            let axes = &ins[1].unwrap().data;
            assert_eq!(axes.len(), 1);
            assert_eq!(int(n, "keepdims", 1), 0);
            one(reduce(x, axis(x, axes[0] as i64), |v| {
                v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            }))
        }
        "ArgMax" => {
            assert_eq!(int(n, "keepdims", 1), 0);
            let last = int(n, "select_last_index", 0) == 1;
            one(reduce(x, axis(x, int(n, "axis", 0)), |v| {
                let best = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mut idx = v.iter().enumerate().filter(|(_, &e)| e == best);
                let k = if last { idx.last() } else { idx.next() };
                k.unwrap().0 as f64
            }))
        }
        "RNN" | "LSTM" | "GRU" => recurrent(n, ins),
        op => panic!("the reference interpreter has no {op}"),
    }
}

fn axis(x: &Val, a: i64) -> usize {
    if a < 0 {
        (x.shape.len() as i64 + a) as usize
    } else {
        a as usize
    }
}

fn map(x: &Val, f: impl Fn(f64) -> f64) -> Val {
    Val {
        shape: x.shape.clone(),
        data: x.data.iter().map(|&a| f(a)).collect(),
    }
}

/// Elementwise `f(a, b)` where the shapes are equal or one side holds one element.
fn zip(a: &Val, b: &Val, f: impl Fn(f64, f64) -> f64) -> Val {
    if b.scalar_like() {
        map(a, |v| f(v, b.data[0]))
    } else if a.scalar_like() {
        map(b, |v| f(a.data[0], v))
    } else {
        assert_eq!(a.shape, b.shape, "broadcasting beyond scalars");
        Val {
            shape: a.shape.clone(),
            data: a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect(),
        }
    }
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

fn transpose(x: &Val, perm: &[i64]) -> Val {
    let perm: Vec<usize> = perm.iter().map(|&p| p as usize).collect();
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let (src, dst) = (strides(&x.shape), strides(&shape));
    let mut data = vec![0.0; x.data.len()];
    for (i, d) in data.iter_mut().enumerate() {
        // output index → input offset
        let off: usize = (0..shape.len())
            .map(|k| (i / dst[k]) % shape[k] * src[perm[k]])
            .sum();
        *d = x.data[off];
    }
    Val { shape, data }
}

fn reshape(x: &Val, spec: &[f64]) -> Val {
    let mut shape: Vec<usize> = spec
        .iter()
        .enumerate()
        .map(|(i, &d)| if d == 0.0 { x.shape[i] } else { d as usize })
        .collect();
    assert!(spec.iter().all(|&d| d >= 0.0), "-1 is not written");
    assert_eq!(shape.iter().product::<usize>(), x.data.len());
    shape.shrink_to_fit();
    Val {
        shape,
        data: x.data.clone(),
    }
}

/// `a [M, K] · bᵀ (b [N, K]) + c [N]` (the exporter writes `transB = 1`).
fn gemm(a: &Val, b: &Val, c: Option<&Val>) -> Val {
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[0]);
    assert_eq!(b.shape[1], k);
    let mut data = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k).map(|t| a.data[i * k + t] * b.data[j * k + t]).sum();
            data[i * n + j] = dot + c.map_or(0.0, |c| c.data[j]);
        }
    }
    Val {
        shape: vec![m, n],
        data,
    }
}

fn softmax_last(x: &Val) -> Val {
    let w = *x.shape.last().unwrap();
    let mut data = x.data.clone();
    for row in data.chunks_mut(w) {
        let mx = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        row.iter_mut().for_each(|v| *v = (*v - mx).exp());
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
    Val {
        shape: x.shape.clone(),
        data,
    }
}

/// `f` over axis `ax` (removed from the shape).
fn reduce(x: &Val, ax: usize, f: impl Fn(&[f64]) -> f64) -> Val {
    let outer: usize = x.shape[..ax].iter().product();
    let len = x.shape[ax];
    let inner: usize = x.shape[ax + 1..].iter().product();
    let mut data = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let v: Vec<f64> = (0..len)
                .map(|t| x.data[(o * len + t) * inner + i])
                .collect();
            data.push(f(&v));
        }
    }
    let mut shape = x.shape.clone();
    shape.remove(ax);
    Val { shape, data }
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// The ONNX `RNN`, `LSTM`, `GRU` operators (`layout = 0`, no peepholes, no clip): outputs
/// `Y` `[T, D, N, H]`, `Y_h` `[D, N, H]` (and `Y_c` for the LSTM).
fn recurrent(n: &NodeProto, ins: &[Option<&Val>]) -> Vec<Val> {
    let (x, w, r) = (ins[0].unwrap(), ins[1].unwrap(), ins[2].unwrap());
    let bias = ins.get(3).copied().flatten();
    let lens = ins.get(4).copied().flatten();
    let (t_len, nb, inp) = (x.shape[0], x.shape[1], x.shape[2]);
    let (dd, gh, h) = (w.shape[0], w.shape[1], r.shape[2]);
    assert_eq!(int(n, "hidden_size", 0) as usize, h);
    let direction = attr(n, "direction").map_or(b"forward".to_vec(), |a| a.s.clone());
    assert_eq!(dd, if direction == b"bidirectional" { 2 } else { 1 });
    let relu = |d: usize| {
        attr(n, "activations").is_some_and(|a| match a.strings[d].as_slice() {
            b"Relu" => true,
            b"Tanh" => false,
            other => panic!("activation {}", String::from_utf8_lossy(other)),
        })
    };
    let op = n.op_type.as_str();
    let lbr = int(n, "linear_before_reset", 0) == 1;
    let mut y = vec![0.0; t_len * dd * nb * h];
    let mut y_h = vec![0.0; dd * nb * h];
    let mut y_c = vec![0.0; dd * nb * h];
    for d in 0..dd {
        // gate block j's input and recurrent products plus their biases
        let wx = |j: usize, xt: &[f64]| -> Vec<f64> {
            (0..h)
                .map(|u| {
                    let row = (d * gh + j * h + u) * inp;
                    let dot: f64 = (0..inp).map(|k| w.data[row + k] * xt[k]).sum();
                    dot + bias.map_or(0.0, |b| b.data[d * 2 * gh + j * h + u])
                })
                .collect()
        };
        let rh = |j: usize, hp: &[f64]| -> Vec<f64> {
            (0..h)
                .map(|u| {
                    let row = (d * gh + j * h + u) * h;
                    let dot: f64 = (0..h).map(|k| r.data[row + k] * hp[k]).sum();
                    dot + bias.map_or(0.0, |b| b.data[d * 2 * gh + gh + j * h + u])
                })
                .collect()
        };
        for b in 0..nb {
            let len = lens.map_or(t_len, |l| l.data[b] as usize);
            let (mut hp, mut cp) = (vec![0.0; h], vec![0.0; h]);
            let steps: Vec<usize> = if d == 1 {
                (0..len).rev().collect()
            } else {
                (0..len).collect()
            };
            for t in steps {
                let xt = &x.data[(t * nb + b) * inp..][..inp];
                let add = |a: Vec<f64>, c: Vec<f64>| -> Vec<f64> {
                    a.iter().zip(&c).map(|(p, q)| p + q).collect()
                };
                let hn: Vec<f64> = match op {
                    "RNN" => add(wx(0, xt), rh(0, &hp))
                        .into_iter()
                        .map(|v| if relu(d) { v.max(0.0) } else { v.tanh() })
                        .collect(),
                    "LSTM" => {
                        let g = |j| add(wx(j, xt), rh(j, &hp));
                        let (i, o, f, c) = (g(0), g(1), g(2), g(3));
                        for u in 0..h {
                            cp[u] = sigmoid(f[u]) * cp[u] + sigmoid(i[u]) * c[u].tanh();
                        }
                        (0..h).map(|u| sigmoid(o[u]) * cp[u].tanh()).collect()
                    }
                    "GRU" => {
                        let z: Vec<f64> = add(wx(0, xt), rh(0, &hp))
                            .into_iter()
                            .map(sigmoid)
                            .collect();
                        let rg: Vec<f64> = add(wx(1, xt), rh(1, &hp))
                            .into_iter()
                            .map(sigmoid)
                            .collect();
                        let xh = wx(2, xt);
                        let hh = if lbr {
                            let rec = rh(2, &hp);
                            (0..h).map(|u| xh[u] + rg[u] * rec[u]).collect::<Vec<_>>()
                        } else {
                            let reset: Vec<f64> = (0..h).map(|u| rg[u] * hp[u]).collect();
                            add(xh, rh(2, &reset))
                        };
                        (0..h)
                            .map(|u| (1.0 - z[u]) * hh[u].tanh() + z[u] * hp[u])
                            .collect()
                    }
                    other => unreachable!("{other}"),
                };
                hp = hn;
                y[((t * dd + d) * nb + b) * h..][..h].copy_from_slice(&hp);
            }
            y_h[(d * nb + b) * h..][..h].copy_from_slice(&hp);
            y_c[(d * nb + b) * h..][..h].copy_from_slice(&cp);
        }
    }
    let val = |shape: Vec<usize>, data| Val { shape, data };
    let mut outs = vec![val(vec![t_len, dd, nb, h], y), val(vec![dd, nb, h], y_h)];
    if op == "LSTM" {
        outs.push(val(vec![dd, nb, h], y_c));
    }
    outs
}
