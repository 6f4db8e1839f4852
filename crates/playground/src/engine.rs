//! One playground session's model: its data, network, optimizer and training state, with
//! the frames the page draws and the lecture quantities of a single neuron.
//!
//! The network is a [`ModelSpec`] built like any other, and it trains through the same
//! [`Trainer`] step as `backprop train` (same optimizer builder, same losses, same
//! regularization); the math panel's f′(z) and δ come from the autodiff engine.

use backprop_autograd::{no_grad, Var};
use backprop_data::{synthetic, synthetic_multiclass, BatchTargets, Dataset, Targets};
use backprop_nn::{Mode, Module};
use backprop_tensor::Tensor;
use backprop_train::{
    batch_loss, evaluate, EpochOutcome, LossKind, ModelSpec, Quiet, TrainConfig, Trainer,
};
use serde_json::{json, Value};

use crate::config::{config_field, Config, MULTICLASS_SETS};

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
    /// The training split as the trainer reads it.
    train_set: Dataset,
    /// The test split, for measuring.
    test_set: Dataset,
    domain: [f32; 4],
    grid: Tensor<f32>,
    /// The trainer, owning the network: `backprop train`'s step and loop.
    trainer: Trainer<'static>,
    history: Vec<[f64; 3]>,
    /// Seconds of training so far (for the page's rate figure).
    train_seconds: f64,
    /// Loss and accuracy on the train and test points for the current weights, once
    /// measured (training measures them for the history; frames reuse them).
    measured: Option<[(f64, Option<f64>); 2]>,
}

/// The model spec of a set-up: per hidden layer a linear layer, its activation and (if set)
/// dropout; then the linear output layer.
fn model_spec(cfg: &Config, outputs: usize) -> Result<ModelSpec, String> {
    let mut layers = Vec::new();
    for l in &cfg.layers {
        layers.push(json!({"type": "linear", "out": l.neurons}));
        let act =
            backprop_train::spec::activation_spec(&l.activation).map_err(|e| e.to_string())?;
        layers.push(serde_json::to_value(act).map_err(|e| e.to_string())?);
        if cfg.dropout > 0.0 {
            layers.push(json!({"type": "dropout", "p": cfg.dropout}));
        }
    }
    layers.push(json!({"type": "linear", "out": outputs}));
    ModelSpec::from_json(&json!({ "layers": layers }).to_string()).map_err(|e| e.to_string())
}

/// The training settings of a set-up: constant η, no momentum unless chosen, L1 or L2.
fn train_config(cfg: &Config) -> TrainConfig {
    let rate = |which: &str| {
        if cfg.regularization == which {
            cfg.regularization_rate
        } else {
            0.0
        }
    };
    TrainConfig {
        epochs: 1,
        batch_size: cfg.batch_size,
        optimizer: cfg.optimizer,
        lr: cfg.learning_rate,
        momentum: if cfg.optimizer.uses_momentum() {
            cfg.momentum
        } else {
            0.0
        },
        weight_decay: 0.0,
        l1: rate("l1"),
        l2: rate("l2"),
        restore_best: false,
        seed: u64::from(cfg.seed),
        loss: cfg.loss,
        ..TrainConfig::default()
    }
}

/// The lecture's formula for an activation, for the math panel, from the activation's own
/// definition.
fn formula(name: &str) -> String {
    backprop_nn::Activation::from_name(name).map_or_else(String::new, |a| a.formula().to_string())
}

/// f′(z) of an elementwise activation layer, by the autodiff engine: ∂a/∂z at z.
fn derivative(act: &dyn Module<f32>, z: f32) -> (f64, f64) {
    let zv = Var::parameter(Tensor::from_vec(vec![z], &[1, 1]));
    let a = act.forward(&zv, Mode::Eval);
    let value = f64::from(a.item());
    let g = a.sum().backward();
    let fp = g.get(&zv).map_or(0.0, |t| f64::from(t.data()[0]));
    (value, fp)
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
        let outputs = classes.unwrap_or(1);
        let spec = model_spec(&cfg, outputs)?;
        let built = spec
            .build_shaped::<f32>(cfg.features.len(), None, Some(outputs), seed)
            .map_err(|e| format!("layers: {e}"))?;
        let train_split = split(&train);
        let test_split = split(&test);
        let as_set = |d: &Dataset, s: &Split| Dataset {
            x: s.x.clone(),
            ..d.clone()
        };
        let trainer = Trainer::owning(Box::new(built.model), train_config(&cfg))
            .map_err(|e| format!("{}: {}", config_field(e.field), e.message))?;
        Ok(Engine {
            train_set: as_set(&train, &train_split),
            test_set: as_set(&test, &test_split),
            train: train_split,
            test: test_split,
            grid: features(&grid_pts, &cfg.features),
            classes,
            domain,
            trainer,
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
        self.trainer.epochs_done
    }

    /// Layers per hidden layer in the model: linear, activation, and dropout if set.
    fn per_hidden(&self) -> usize {
        2 + usize::from(self.cfg.dropout > 0.0)
    }

    /// The model's layers in order.
    fn layers(&self) -> Vec<(String, &dyn Module<f32>)> {
        self.trainer.model().children()
    }

    /// Linear layers, the output layer included.
    fn depth(&self) -> usize {
        self.cfg.layers.len() + 1
    }

    /// The linear layer of layer `l` (from 1; the output layer last).
    fn linear(&self, l: usize) -> &dyn Module<f32> {
        self.layers()[(l - 1) * self.per_hidden()].1
    }

    /// Weight `[out, in]` and bias of layer `l`.
    fn weights(&self, l: usize) -> (Tensor<f32>, Tensor<f32>) {
        let p = self.linear(l).params();
        (p[0].1.value(), p[1].1.value())
    }

    fn forward(&self, x: &Tensor<f32>, mode: Mode) -> Pass {
        let layers = self.layers();
        let per = self.per_hidden();
        let mut h = Var::constant(x.clone());
        let mut pass = Pass {
            z: Vec::new(),
            a: Vec::new(),
        };
        for l in 0..self.cfg.layers.len() {
            let z = layers[l * per].1.forward(&h, mode);
            h = layers[l * per + 1].1.forward(&z, mode);
            if per == 3 {
                h = layers[l * per + 2].1.forward(&h, mode);
            }
            pass.z.push(z);
            pass.a.push(h.clone());
        }
        let out = layers[self.cfg.layers.len() * per].1.forward(&h, mode);
        pass.z.push(out);
        pass
    }

    /// `‖∂C/∂W‖` of each layer's weights (hidden layers, then the output layer) on all the
    /// training points at the current weights: the page's gradient-flow bars, which show a
    /// deep sigmoid stack's early layers starving.
    fn gradient_norms(&self) -> Vec<f64> {
        let n = self.train_set.len();
        let Some(b) = self.train_set.batches(n.max(1), None).next() else {
            return Vec::new();
        };
        let out = self
            .trainer
            .model()
            .forward(&Var::constant(b.x), Mode::Eval);
        let grads = batch_loss(self.cfg.loss, &out, &b.targets).backward();
        (1..=self.depth())
            .map(|l| {
                let p = &self.linear(l).params()[0].1;
                grads.get(p).map_or(0.0, |g| {
                    g.data()
                        .iter()
                        .map(|&v| f64::from(v) * f64::from(v))
                        .sum::<f64>()
                        .sqrt()
                })
            })
            .collect()
    }

    /// Loss and accuracy (classification) on a split, in evaluation mode.
    fn measure(&self, d: &Dataset) -> (f64, Option<f64>) {
        let e = evaluate(self.trainer.model(), d, self.cfg.loss);
        (e.loss, self.classes.map(|_| e.accuracy))
    }

    fn measurements(&self) -> [(f64, Option<f64>); 2] {
        [self.measure(&self.train_set), self.measure(&self.test_set)]
    }

    /// The training sample the math panel shows: it moves on with every epoch.
    fn math_sample(&self) -> usize {
        self.trainer.epochs_done % self.train.len().max(1)
    }

    /// Trains `epochs` epochs through the trainer's shared step, each over the training
    /// points in a fresh seeded order. A diverged loss stops the request (the weights are
    /// kept as they were before the bad step).
    pub fn train_epochs(&mut self, epochs: usize) {
        let started = std::time::Instant::now();
        for _ in 0..epochs {
            match self.trainer.train_epoch(&self.train_set, &mut Quiet) {
                Ok(EpochOutcome::Done(_)) => {}
                Ok(EpochOutcome::Diverged(_)) | Err(_) => break,
            }
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
        self.history.push([self.trainer.epochs_done as f64, tr, te]);
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
        let weights: Vec<Value> = (1..=self.depth())
            .map(|l| {
                let (w, b) = self.weights(l);
                let cols = w.shape()[1];
                let rows: Vec<Vec<f64>> = w
                    .data()
                    .chunks(cols)
                    .map(|r| r.iter().map(|&v| round3(v)).collect())
                    .collect();
                json!({"w": rows, "b": rounded(&b)})
            })
            .collect();
        let nan = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
        json!({
            "epoch": self.epoch(),
            "steps": self.trainer.steps(),
            "train_loss": nan(train_loss),
            "test_loss": nan(test_loss),
            "train_accuracy": train_acc,
            "test_accuracy": test_acc,
            "samples_per_second": if self.train_seconds > 0.0 {
                (self.epoch() * self.train.len()) as f64 / self.train_seconds
            } else { 0.0 },
            "output": output,
            "output_class": output_class,
            "neurons": neurons,
            "layers": weights,
            "history": self.history.last(),
            "grad_norms": self.gradient_norms(),
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
        let depth = self.depth();
        if layer == 0 || layer > depth {
            return Err(format!(
                "layer: {layer} is outside 1..={depth} (layer {depth} is the output)"
            ));
        }
        let (w, b) = self.weights(layer);
        let width = w.shape()[0];
        if neuron >= width {
            return Err(format!(
                "neuron: layer {layer} has {width} neurons (0..={})",
                width - 1
            ));
        }
        let s = self.math_sample();
        let x = self.train.x.index_select(0, &[s]);
        let y = self.train.y.index_select(0, &[s]);
        let targets = match self.classes {
            Some(_) => BatchTargets::Classes(vec![self.train.labels[s]]),
            None => BatchTargets::Values(y.clone()),
        };
        let pass = self.forward(&x, Mode::Eval);
        for z in &pass.z {
            z.retain_grad();
        }
        let out = pass.z.last().expect("an output layer");
        let loss = backprop_train::batch_loss(self.cfg.loss, out, &targets);
        let cost = f64::from(loss.item());
        let grads = loss.backward();
        let delta = |l: usize| -> Vec<f64> {
            let n = pass.z[l - 1].shape()[1];
            grads
                .get(&pass.z[l - 1])
                .map(|g| g.data().iter().map(|&v| f64::from(v)).collect())
                .unwrap_or_else(|| vec![0.0; n])
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
        let k = w.shape()[1];
        let wj: Vec<f64> = w.data()[neuron * k..(neuron + 1) * k]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        let bj = f64::from(b.data()[neuron]);
        let z = pass.z[layer - 1].value().data()[neuron];
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
            "bias": bj,
            "z": f64::from(z),
            "z_check": inputs.iter().zip(&wj).map(|(a, w)| a * w).sum::<f64>() + bj,
            "delta": dj,
            "dC_db": dj,
            "dC_dw": inputs.iter().map(|a| a * dj).collect::<Vec<f64>>(),
            "learning_rate": self.cfg.learning_rate,
        });
        if layer < depth {
            let act = self.layers()[(layer - 1) * self.per_hidden() + 1].1;
            let (a, fp) = derivative(act, z);
            let (next, _) = self.weights(layer + 1);
            let nk = next.shape()[1];
            let w_next: Vec<f64> = (0..next.shape()[0])
                .map(|i| f64::from(next.data()[i * nk + neuron]))
                .collect();
            let d_next = delta(layer + 1);
            let back: f64 = w_next.iter().zip(&d_next).map(|(w, d)| w * d).sum();
            let name = &self.cfg.layers[layer - 1].activation;
            v["activation"] = json!(name);
            v["formula"] = json!(formula(name));
            v["a"] = json!(a);
            v["fprime"] = json!(fp);
            v["w_next"] = json!(w_next);
            v["delta_next"] = json!(d_next);
            v["delta_bp2"] = json!(back * fp);
        } else {
            let o = out.value();
            let (a, rule) = match (self.classes, self.cfg.loss) {
                (Some(_), LossKind::CrossEntropy) => (
                    f64::from(o.softmax(-1).data()[neuron]),
                    "softmax output, cross-entropy: δ = a − y (a = softmax(z))",
                ),
                (Some(_), _) => (
                    f64::from(z),
                    "linear output, squared error on the one-hot target: δ = a − y (a = z)",
                ),
                (None, _) => (
                    f64::from(z),
                    "linear output, squared error: δ = a − y (a = z)",
                ),
            };
            let target = match self.classes {
                Some(_) => f64::from(u8::from(self.train.labels[s] == neuron)),
                None => f64::from(y.data()[neuron]),
            };
            v["a"] = json!(a);
            v["y"] = json!(target);
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
        let before = e.measure(&e.train_set).0;
        e.train_epochs(30);
        let (after, acc) = e.measure(&e.train_set);
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
            optimizer: backprop_optim::OptimizerKind::Adam,
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
