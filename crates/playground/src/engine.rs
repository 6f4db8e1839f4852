//! One playground session's model: its data, network, optimizer and training state, with
//! the frames the page draws and the lecture quantities of a single neuron.
//!
//! The network is built from the library's own pieces ([`Linear`], [`Activation`],
//! [`Dropout`], the losses and optimizers), so what the page shows is what the CLI trains.

use backprop_autograd::{no_grad, Var};
use backprop_data::{synthetic, synthetic_multiclass, Dataset, Targets};
use backprop_nn::loss::{cross_entropy, half_squared_error};
use backprop_nn::{mix_seed, Activation, Dropout, Linear, Mode, Module, Reduction};
use backprop_optim::{Adam, Optimizer, Regularization, Sgd};
use backprop_tensor::{Rng, Tensor};
use serde_json::{json, Value};

use crate::config::{Config, MULTICLASS_SETS};

/// Grid points per side of the output heatmap.
pub const GRID: usize = 50;
/// Every `NEURON_STRIDE`-th grid point per side makes a neuron's mini heatmap.
pub const NEURON_STRIDE: usize = 2;
/// Loss-history points kept (older ones are thinned out).
const HISTORY: usize = 1000;

/// Generated points lie in about [−1, 1]²; the playground shows them in [−6, 6]², as
/// TensorFlow Playground does, so that x² and sin x are interesting features.
const SCALE: f32 = 5.0;

/// One side of the split.
struct Split {
    /// Raw 2-D points.
    raw: Vec<[f32; 2]>,
    /// `[n, features]`.
    x: Tensor<f32>,
    /// Class indices (classification).
    labels: Vec<usize>,
    /// `[n, outputs]`: one-hot classes or regression targets.
    y: Tensor<f32>,
}

impl Split {
    fn len(&self) -> usize {
        self.raw.len()
    }
}

/// A network's forward pass, kept for inspection.
struct Pass {
    /// Pre-activations z of every layer, the output layer last.
    z: Vec<Var<f32>>,
    /// Activations a of every hidden layer (after dropout in training).
    a: Vec<Var<f32>>,
}

/// The state of one session.
pub struct Engine {
    cfg: Config,
    classes: Option<usize>,
    train: Split,
    test: Split,
    domain: [f32; 4],
    grid: Tensor<f32>,
    layers: Vec<Linear<f32>>,
    acts: Vec<Activation>,
    dropout: Vec<Dropout>,
    opt: Box<dyn Optimizer<f32>>,
    order: Rng,
    epoch: usize,
    last_sample: Option<usize>,
    history: Vec<[f64; 3]>,
    /// Seconds of training so far (for the page's rate figure).
    train_seconds: f64,
    /// Loss and accuracy on the train and test points for the current weights, once
    /// measured (training measures them for the history; frames reuse them).
    measured: Option<[(f64, Option<f64>); 2]>,
}

fn activation(name: &str) -> Activation {
    match name {
        "relu" => Activation::Relu,
        "tanh" => Activation::Tanh,
        "sigmoid" => Activation::Sigmoid,
        "leaky_relu" => Activation::LeakyRelu(0.01),
        "elu" => Activation::Elu(1.0),
        _ => Activation::Identity,
    }
}

/// f′(z) of a hidden activation, for the math panel (the engine's δ does not use it).
fn derivative(act: Activation, z: f64) -> f64 {
    match act {
        Activation::Relu => f64::from(u8::from(z > 0.0)),
        Activation::Tanh => 1.0 - z.tanh().powi(2),
        Activation::Sigmoid => {
            let s = 1.0 / (1.0 + (-z).exp());
            s * (1.0 - s)
        }
        Activation::LeakyRelu(a) => {
            if z > 0.0 {
                1.0
            } else {
                a
            }
        }
        Activation::Elu(a) => {
            if z > 0.0 {
                1.0
            } else {
                a * z.exp()
            }
        }
        _ => 1.0,
    }
}

/// The lecture's formula for an activation, for the math panel.
fn formula(act: Activation) -> &'static str {
    match act {
        Activation::Relu => "a = max(0, z),  f′(z) = 1 if z > 0 else 0",
        Activation::Tanh => "a = tanh z,  f′(z) = 1 − tanh² z",
        Activation::Sigmoid => "a = σ(z) = 1/(1 + e^−z),  f′(z) = σ(z)(1 − σ(z))",
        Activation::LeakyRelu(_) => "a = z if z > 0 else 0.01z,  f′(z) = 1 or 0.01",
        Activation::Elu(_) => "a = z if z > 0 else e^z − 1,  f′(z) = 1 or e^z",
        _ => "a = z,  f′(z) = 1",
    }
}

fn feature_values(p: [f32; 2], names: &[String], out: &mut Vec<f32>) {
    let [x1, x2] = p;
    for n in names {
        out.push(match n.as_str() {
            "x1" => x1,
            "x2" => x2,
            "x1sq" => x1 * x1,
            "x2sq" => x2 * x2,
            "x1x2" => x1 * x2,
            "sinx1" => x1.sin(),
            _ => x2.sin(),
        });
    }
}

fn features(raw: &[[f32; 2]], names: &[String]) -> Tensor<f32> {
    let mut v = Vec::with_capacity(raw.len() * names.len());
    for &p in raw {
        feature_values(p, names, &mut v);
    }
    Tensor::from_vec(v, &[raw.len(), names.len()])
}

/// Three decimals are plenty for drawing and keep frames small.
fn round3(v: f32) -> f64 {
    if v.is_finite() {
        (f64::from(v) * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

fn rounded(t: &Tensor<f32>) -> Vec<f64> {
    t.data().iter().map(|&v| round3(v)).collect()
}

impl Engine {
    /// A fresh session: data generated (or the upload split), network initialized, epoch 0.
    ///
    /// # Errors
    /// If the config is invalid (see [`Config::validate`]) or the upload does not fit it.
    pub fn new(cfg: Config, upload: Option<&Dataset>) -> Result<Engine, String> {
        cfg.validate(upload.map(Dataset::len))?;
        let seed = u64::from(cfg.seed);
        let scaled = |d: Dataset| -> Dataset {
            let x = d.x.data().iter().map(|v| v * SCALE).collect();
            Dataset {
                x: Tensor::from_vec(x, d.x.shape()),
                ..d
            }
        };
        let data = match cfg.dataset.as_str() {
            "upload" => {
                let d = upload.expect("validated").clone();
                let is_values = matches!(d.targets, Targets::Values(_));
                if is_values != cfg.is_regression() {
                    return Err(format!(
                        "problem: the uploaded data is a {} task; upload it again as {}",
                        if is_values {
                            "regression"
                        } else {
                            "classification"
                        },
                        cfg.problem
                    ));
                }
                d
            }
            name if MULTICLASS_SETS.contains(&name) => scaled(
                synthetic_multiclass(name, cfg.points, cfg.classes, cfg.noise, seed)
                    .map_err(|e| e.to_string())?,
            ),
            name => {
                scaled(synthetic(name, cfg.points, cfg.noise, seed).map_err(|e| e.to_string())?)
            }
        };
        let test_count = data.len()
            - ((data.len() as f64 * cfg.train_fraction).round() as usize).clamp(1, data.len() - 1);
        let (train, test) = data
            .split(test_count, seed)
            .map_err(|e| format!("train_fraction: {}", e.message))?;
        let classes = match &data.targets {
            Targets::Classes { names, .. } => Some(names.len()),
            Targets::Values(_) => None,
        };
        let raw =
            |d: &Dataset| -> Vec<[f32; 2]> { d.x.data().chunks(2).map(|c| [c[0], c[1]]).collect() };
        let domain = if cfg.dataset == "upload" {
            let pts = raw(&data);
            let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
            for p in &pts {
                for k in 0..2 {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
            let pad = |k: usize| ((hi[k] - lo[k]) * 0.1).max(1e-3);
            [
                lo[0] - pad(0),
                hi[0] + pad(0),
                lo[1] - pad(1),
                hi[1] + pad(1),
            ]
        } else {
            [-6.0, 6.0, -6.0, 6.0]
        };
        let split = |d: &Dataset| -> Split {
            let r = raw(d);
            let x = features(&r, &cfg.features);
            let (labels, y) = match &d.targets {
                Targets::Classes { labels, names } => {
                    let mut y = vec![0f32; labels.len() * names.len()];
                    for (i, &l) in labels.iter().enumerate() {
                        y[i * names.len() + l] = 1.0;
                    }
                    (
                        labels.clone(),
                        Tensor::from_vec(y, &[labels.len(), names.len()]),
                    )
                }
                Targets::Values(v) => (Vec::new(), v.clone()),
            };
            Split {
                raw: r,
                x,
                labels,
                y,
            }
        };
        let mut grid_pts = Vec::with_capacity(GRID * GRID);
        for row in 0..GRID {
            // row 0 is the top of the picture: the largest x₂
            let y = domain[3] - (domain[3] - domain[2]) * (row as f32 + 0.5) / GRID as f32;
            for col in 0..GRID {
                let x = domain[0] + (domain[1] - domain[0]) * (col as f32 + 0.5) / GRID as f32;
                grid_pts.push([x, y]);
            }
        }
        let mut init = Rng::seed(mix_seed(seed, 1));
        let mut layers = Vec::new();
        let mut width = cfg.features.len();
        for l in &cfg.layers {
            layers.push(Linear::new(width, l.neurons, &mut init));
            width = l.neurons;
        }
        let outputs = classes.unwrap_or(1);
        layers.push(Linear::new(width, outputs, &mut init));
        let params: Vec<(String, Var<f32>)> = layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| {
                l.params()
                    .into_iter()
                    .map(move |(n, v)| (format!("layer{}.{n}", i + 1), v))
            })
            .collect();
        let reg = Regularization {
            l1: if cfg.regularization == "l1" {
                cfg.regularization_rate
            } else {
                0.0
            },
            l2: if cfg.regularization == "l2" {
                cfg.regularization_rate
            } else {
                0.0
            },
            exclude_bias: true,
        };
        let lr = cfg.learning_rate;
        let opt: Box<dyn Optimizer<f32>> = match cfg.optimizer.as_str() {
            "adam" => Box::new(Adam::new(params, lr).regularization(reg)),
            "momentum" => Box::new(Sgd::new(params, lr).momentum(0.9).regularization(reg)),
            _ => Box::new(Sgd::new(params, lr).regularization(reg)),
        };
        let dropout = (0..cfg.layers.len())
            .map(|i| Dropout::new(cfg.dropout, mix_seed(seed, 10 + i as u64)))
            .collect();
        Ok(Engine {
            acts: cfg
                .layers
                .iter()
                .map(|l| activation(&l.activation))
                .collect(),
            train: split(&train),
            test: split(&test),
            grid: features(&grid_pts, &cfg.features),
            classes,
            domain,
            layers,
            dropout,
            opt,
            order: Rng::seed(mix_seed(seed, 2)),
            epoch: 0,
            last_sample: None,
            history: Vec::new(),
            train_seconds: 0.0,
            measured: None,
            cfg,
        })
    }

    /// The set-up.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Training points.
    pub fn train_len(&self) -> usize {
        self.train.len()
    }

    /// Epochs trained.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    fn forward(&self, x: &Tensor<f32>, mode: Mode) -> Pass {
        let mut h = Var::constant(x.clone());
        let mut pass = Pass {
            z: Vec::new(),
            a: Vec::new(),
        };
        let hidden = self.layers.len() - 1;
        for l in 0..hidden {
            let z = self.layers[l].forward(&h, mode);
            let a = self.acts[l].forward(&z, mode);
            h = self.dropout[l].forward(&a, mode);
            pass.z.push(z);
            pass.a.push(h.clone());
        }
        pass.z.push(self.layers[hidden].forward(&h, mode));
        pass
    }

    fn loss(&self, out: &Var<f32>, labels: &[usize], y: &Tensor<f32>) -> Var<f32> {
        match (self.classes, self.cfg.loss.as_str()) {
            (Some(_), "cross_entropy") => cross_entropy(out, labels, Reduction::Mean),
            (Some(_), _) => half_squared_error(&out.softmax(-1), y, Reduction::Mean),
            (None, _) => half_squared_error(out, y, Reduction::Mean),
        }
    }

    /// Loss and accuracy (classification) on a split, in evaluation mode.
    fn measure(&self, s: &Split) -> (f64, Option<f64>) {
        no_grad(|| {
            let pass = self.forward(&s.x, Mode::Eval);
            let out = pass.z.last().expect("an output layer");
            let loss = f64::from(self.loss(out, &s.labels, &s.y).item());
            let acc = self.classes.map(|_| {
                let pred = backprop_nn::loss::predictions(&out.value());
                let right = pred.iter().zip(&s.labels).filter(|(p, l)| p == l).count();
                right as f64 / s.len().max(1) as f64
            });
            (loss, acc)
        })
    }

    fn measurements(&self) -> [(f64, Option<f64>); 2] {
        [self.measure(&self.train), self.measure(&self.test)]
    }

    /// Trains `epochs` epochs of mini-batch updates, each over the training points in a
    /// fresh seeded order.
    pub fn train_epochs(&mut self, epochs: usize) {
        let started = std::time::Instant::now();
        for _ in 0..epochs {
            let seed = mix_seed(u64::from(self.cfg.seed), 1000 + self.epoch as u64);
            for (i, d) in self.dropout.iter().enumerate() {
                Module::<f32>::reseed(d, mix_seed(seed, i as u64));
            }
            let mut idx: Vec<usize> = (0..self.train.len()).collect();
            self.order.shuffle(&mut idx);
            for chunk in idx.chunks(self.cfg.batch_size) {
                let x = self.train.x.index_select(0, chunk);
                let y = self.train.y.index_select(0, chunk);
                let labels: Vec<usize> = if self.classes.is_some() {
                    chunk.iter().map(|&i| self.train.labels[i]).collect()
                } else {
                    Vec::new()
                };
                let pass = self.forward(&x, Mode::Train);
                let loss = self.loss(pass.z.last().expect("an output layer"), &labels, &y);
                let grads = loss.backward();
                self.opt.step(&grads);
                self.last_sample = Some(chunk[0]);
            }
            self.epoch += 1;
        }
        self.train_seconds += started.elapsed().as_secs_f64();
        let m = self.measurements();
        self.measured = Some(m);
        let (tr, te) = (m[0].0, m[1].0);
        if self.history.len() >= HISTORY {
            // keep every other point: the chart spans the whole run at half the density
            let mut k = 0;
            self.history.retain(|_| {
                k += 1;
                k % 2 == 1
            });
        }
        self.history.push([self.epoch as f64, tr, te]);
    }

    /// The points and the fixed facts of the set-up, sent once per reset.
    pub fn setup(&self) -> Value {
        let pts = |s: &Split| -> Vec<Value> {
            s.raw
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let t = if self.classes.is_some() {
                        json!(s.labels[i])
                    } else {
                        json!(round3(s.y.data()[i]))
                    };
                    json!([round3(p[0]), round3(p[1]), t])
                })
                .collect()
        };
        json!({
            "config": self.cfg,
            "classes": self.classes,
            "domain": self.domain,
            "grid": GRID,
            "neuron_grid": GRID / NEURON_STRIDE,
            "train": pts(&self.train),
            "test": pts(&self.test),
        })
    }

    /// What the page draws after each update: losses, accuracies, the output over the
    /// grid, every hidden neuron's activation over a coarser grid, weights and biases.
    pub fn frame(&self) -> Value {
        let [(train_loss, train_acc), (test_loss, test_acc)] =
            self.measured.unwrap_or_else(|| self.measurements());
        let (output, output_class, neurons) = no_grad(|| {
            let pass = self.forward(&self.grid, Mode::Eval);
            let out = pass.z.last().expect("an output layer").value();
            let (output, class) = match self.classes {
                Some(2) => {
                    let p = out.softmax(-1);
                    let v: Vec<f64> = p
                        .data()
                        .chunks(2)
                        .map(|c| round3(2.0 * c[1] - 1.0))
                        .collect();
                    (v, None)
                }
                Some(k) => {
                    let p = out.softmax(-1);
                    let mut conf = Vec::with_capacity(GRID * GRID);
                    let mut class = Vec::with_capacity(GRID * GRID);
                    for row in p.data().chunks(k) {
                        let (c, &m) = row
                            .iter()
                            .enumerate()
                            .max_by(|a, b| a.1.total_cmp(b.1))
                            .expect("classes");
                        conf.push(round3(m));
                        class.push(c);
                    }
                    (conf, Some(class))
                }
                None => (rounded(&out), None),
            };
            let side = GRID / NEURON_STRIDE;
            let neurons: Vec<Vec<Vec<f64>>> = pass
                .a
                .iter()
                .map(|a| {
                    let a = a.value();
                    let w = a.shape()[1];
                    (0..w)
                        .map(|j| {
                            let mut v = Vec::with_capacity(side * side);
                            for r in 0..side {
                                for c in 0..side {
                                    let p = (r * NEURON_STRIDE) * GRID + c * NEURON_STRIDE;
                                    v.push(round3(a.data()[p * w + j]));
                                }
                            }
                            v
                        })
                        .collect()
                })
                .collect();
            (output, class, neurons)
        });
        let weights: Vec<Value> = self
            .layers
            .iter()
            .map(|l| {
                let w = l.weight.value();
                let cols = w.shape()[1];
                let rows: Vec<Vec<f64>> = w
                    .data()
                    .chunks(cols)
                    .map(|r| r.iter().map(|&v| round3(v)).collect())
                    .collect();
                let b = l
                    .bias
                    .as_ref()
                    .map(|b| rounded(&b.value()))
                    .unwrap_or_default();
                json!({"w": rows, "b": b})
            })
            .collect();
        let nan = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        json!({
            "epoch": self.epoch,
            "steps": self.opt.steps(),
            "train_loss": nan(train_loss),
            "test_loss": nan(test_loss),
            "train_accuracy": train_acc,
            "test_accuracy": test_acc,
            "samples_per_second": if self.train_seconds > 0.0 {
                (self.epoch * self.train.len()) as f64 / self.train_seconds
            } else { 0.0 },
            "output": output,
            "output_class": output_class,
            "neurons": neurons,
            "layers": weights,
            "history": self.history.last(),
        })
    }

    /// The loss history, `[epoch, train loss, test loss]` per point.
    pub fn history(&self) -> &[[f64; 3]] {
        &self.history
    }

    /// The lecture's quantities for neuron `neuron` (from 0) of layer `layer` (from 1; the
    /// output layer is the last) on one training sample, the first of the latest mini-batch
    /// (sample 0 before any training): the inputs a⁽ˡ⁻¹⁾, weights, bias, z, a, f′(z),
    /// δ = ∂C/∂z from the engine's backward pass, BP2's Σ w δ f′(z) for comparison,
    /// ∂C/∂b and ∂C/∂w. Dropout is off (evaluation mode) so the numbers can be checked by
    /// hand.
    ///
    /// # Errors
    /// If the layer or neuron does not exist.
    pub fn neuron_math(&self, layer: usize, neuron: usize) -> Result<Value, String> {
        let depth = self.layers.len();
        if layer == 0 || layer > depth {
            return Err(format!(
                "layer: {layer} is outside 1..={depth} (layer {depth} is the output)"
            ));
        }
        let width = self.layers[layer - 1].out_features();
        if neuron >= width {
            return Err(format!(
                "neuron: layer {layer} has {width} neurons (0..={})",
                width - 1
            ));
        }
        let s = self.last_sample.unwrap_or(0);
        let x = self.train.x.index_select(0, &[s]);
        let y = self.train.y.index_select(0, &[s]);
        let labels: Vec<usize> = if self.classes.is_some() {
            vec![self.train.labels[s]]
        } else {
            Vec::new()
        };
        let pass = self.forward(&x, Mode::Eval);
        for z in &pass.z {
            z.retain_grad();
        }
        let out = pass.z.last().expect("an output layer");
        let loss = self.loss(out, &labels, &y);
        let cost = f64::from(loss.item());
        let grads = loss.backward();
        let delta = |l: usize| -> Vec<f64> {
            grads
                .get(&pass.z[l - 1])
                .map(|g| g.data().iter().map(|&v| f64::from(v)).collect())
                .unwrap_or_else(|| vec![0.0; self.layers[l - 1].out_features()])
        };
        let (inputs, input_names): (Vec<f64>, Vec<String>) = if layer == 1 {
            (
                x.data().iter().map(|&v| f64::from(v)).collect(),
                self.cfg.features.clone(),
            )
        } else {
            let a = pass.a[layer - 2].value();
            (
                a.data().iter().map(|&v| f64::from(v)).collect(),
                (0..a.data().len())
                    .map(|k| format!("a{}_{}", layer - 1, k + 1))
                    .collect(),
            )
        };
        let lin = &self.layers[layer - 1];
        let w = lin.weight.value();
        let k = w.shape()[1];
        let wj: Vec<f64> = w.data()[neuron * k..(neuron + 1) * k]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let b = lin
            .bias
            .as_ref()
            .map_or(0.0, |b| f64::from(b.value().data()[neuron]));
        let z = f64::from(pass.z[layer - 1].value().data()[neuron]);
        let dj = delta(layer)[neuron];
        let mut v = json!({
            "sample": {
                "index": s,
                "point": self.train.raw[s],
                "target": if self.classes.is_some() { json!(self.train.labels[s]) } else { json!(self.train.y.data()[s]) },
            },
            "layer": layer,
            "neuron": neuron,
            "output_layer": layer == depth,
            "cost": cost,
            "input_names": input_names,
            "inputs": inputs,
            "weights": wj,
            "bias": b,
            "z": z,
            "z_check": inputs.iter().zip(&wj).map(|(a, w)| a * w).sum::<f64>() + b,
            "delta": dj,
            "dC_db": dj,
            "dC_dw": inputs.iter().map(|a| a * dj).collect::<Vec<f64>>(),
            "learning_rate": self.cfg.learning_rate,
        });
        if layer < depth {
            let act = self.acts[layer - 1];
            let a = f64::from(
                self.acts[layer - 1]
                    .forward(
                        &Var::constant(Tensor::from_vec(vec![z as f32], &[1, 1])),
                        Mode::Eval,
                    )
                    .item(),
            );
            let fp = derivative(act, z);
            let next = self.layers[layer].weight.value();
            let nk = next.shape()[1];
            let w_next: Vec<f64> = (0..next.shape()[0])
                .map(|i| f64::from(next.data()[i * nk + neuron]))
                .collect();
            let d_next = delta(layer + 1);
            let back: f64 = w_next.iter().zip(&d_next).map(|(w, d)| w * d).sum();
            v["activation"] = json!(self.cfg.layers[layer - 1].activation);
            v["formula"] = json!(formula(act));
            v["a"] = json!(a);
            v["fprime"] = json!(fp);
            v["w_next"] = json!(w_next);
            v["delta_next"] = json!(d_next);
            v["delta_bp2"] = json!(back * fp);
        } else {
            let o = out.value();
            let (a, rule) = match (self.classes, self.cfg.loss.as_str()) {
                (Some(_), "cross_entropy") => {
                    let p = o.softmax(-1);
                    (
                        f64::from(p.data()[neuron]),
                        "softmax output, cross-entropy: δ = a − y (a = softmax(z))",
                    )
                }
                (Some(_), _) => (
                    f64::from(o.softmax(-1).data()[neuron]),
                    "softmax output, squared error: δ = Σ_i (a_i − y_i) ∂a_i/∂z",
                ),
                (None, _) => (z, "linear output, squared error: δ = a − y (a = z)"),
            };
            v["a"] = json!(a);
            v["y"] = json!(f64::from(y.data()[neuron]));
            v["formula"] = json!(rule);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LayerConfig;

    #[test]
    fn trains_xor_and_reports_lecture_quantities() {
        let cfg = Config {
            dataset: "xor".into(),
            features: vec!["x1".into(), "x2".into(), "x1x2".into()],
            learning_rate: 0.03,
            ..Config::default()
        };
        let mut e = Engine::new(cfg, None).unwrap();
        let before = e.measure(&e.train).0;
        e.train_epochs(30);
        let (after, acc) = e.measure(&e.train);
        assert!(after < before * 0.5, "{before} → {after}");
        assert!(acc.unwrap() > 0.9, "{acc:?}");
        // the engine's δ agrees with BP2 and z with Σ w a + b
        for layer in 1..=3 {
            let m = e.neuron_math(layer, 0).unwrap();
            let z = m["z"].as_f64().unwrap();
            assert!((z - m["z_check"].as_f64().unwrap()).abs() < 1e-4 * (1.0 + z.abs()));
            if layer < 3 {
                let d = m["delta"].as_f64().unwrap();
                let bp2 = m["delta_bp2"].as_f64().unwrap();
                assert!((d - bp2).abs() < 1e-5 * (1.0 + d.abs()), "{d} vs {bp2}");
            } else {
                // softmax + cross-entropy: δ = a − y
                let d = m["delta"].as_f64().unwrap();
                let a = m["a"].as_f64().unwrap();
                let y = m["y"].as_f64().unwrap();
                assert!((d - (a - y)).abs() < 1e-5, "{d} vs {a} − {y}");
            }
        }
        assert!(e.neuron_math(4, 0).is_err());
        assert!(e.neuron_math(1, 4).is_err());
    }

    #[test]
    fn same_seed_same_run_and_frames_have_the_grid() {
        let cfg = Config {
            dataset: "spirals".into(),
            classes: 3,
            dropout: 0.2,
            optimizer: "adam".into(),
            layers: vec![LayerConfig {
                neurons: 6,
                activation: "relu".into(),
            }],
            ..Config::default()
        };
        let mut a = Engine::new(cfg.clone(), None).unwrap();
        let mut b = Engine::new(cfg, None).unwrap();
        a.train_epochs(3);
        b.train_epochs(3);
        let (mut fa, mut fb) = (a.frame(), b.frame());
        // everything but the timing agrees
        fa["samples_per_second"] = Value::Null;
        fb["samples_per_second"] = Value::Null;
        assert!(fa == fb, "two runs of one set-up differ");
        assert_eq!(fa["output"].as_array().unwrap().len(), GRID * GRID);
        assert_eq!(fa["output_class"].as_array().unwrap().len(), GRID * GRID);
        assert_eq!(fa["neurons"][0].as_array().unwrap().len(), 6);
        assert_eq!(fa["layers"][1]["w"].as_array().unwrap().len(), 3);
    }
}
