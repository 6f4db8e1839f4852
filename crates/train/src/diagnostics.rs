//! Training diagnostics: what each layer's gradients, weights, updates and units are doing,
//! recorded once per epoch (or every N steps), with warnings naming the likely cause and a
//! hint when a pattern is clear.
//!
//! Per layer with parameters: the gradient norm `‖∂C/∂θ‖`, the weight norm `‖θ‖` and the
//! update-to-weight ratio `‖Δθ‖/‖θ‖` (about 1e-3 is healthy, Karpathy's rule of thumb). Per
//! ReLU layer the fraction of dead units (zero for every sample of a fixed probe batch); per
//! sigmoid or tanh layer the fraction of saturated outputs (σ < 0.01 or > 0.99, |tanh| >
//! 0.99), where the local gradient is almost 0.
//!
//! Warnings (each kind once per run):
//! - **vanishing gradients**: layers whose gradient norm is below 1/100 of the last layer's;
//! - **exploding gradients**, checked at every step so that it comes before the divergence
//!   guard: a layer's update larger than its weights (`‖Δθ‖/‖θ‖ > 1`), a gradient norm 100×
//!   the median of the first steps, or a non-finite gradient;
//! - **dead ReLUs**: most units of a ReLU layer dead;
//! - **saturation**: most outputs of a sigmoid/tanh layer saturated;
//! - **update ratios** far from 1e-3 (median over layers above 0.1 or below 1e-5 while η is
//!   not being annealed).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use backprop_autograd::{no_grad, Grads, Var};
use backprop_nn::{Activation, Mode, Module};
use backprop_tensor::Tensor;
use serde::Serialize;

use crate::checkpoint::atomic_write;
use crate::plot::xy_chart_svg;
use crate::trainer::StepProbe;

/// Gradient norm below this fraction of the last layer's: vanishing.
pub const VANISHING_RATIO: f64 = 1e-2;
/// A dead or saturated share above this: a warning.
pub const MOSTLY: f64 = 0.5;

/// One layer's figures at one recorded step (NaN where a figure does not apply).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRecord {
    /// Optimizer step (from 1).
    pub step: usize,
    /// Epoch (from 1).
    pub epoch: usize,
    /// The layer's name (`fc1`, `relu1`).
    pub layer: String,
    /// `‖∂C/∂θ‖` over the layer's parameters.
    pub grad_norm: f64,
    /// `‖θ‖` after the update.
    pub weight_norm: f64,
    /// `‖Δθ‖/‖θ‖` of the update.
    pub update_ratio: f64,
    /// Share of ReLU units zero for every probe sample.
    pub dead_relu: f64,
    /// Share of sigmoid/tanh outputs saturated.
    pub saturated: f64,
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum WarningKind {
    /// Early layers' gradients far below the last's.
    Vanishing,
    /// Updates or gradients blowing up.
    Exploding,
    /// Most ReLU units dead.
    DeadRelu,
    /// Most sigmoid/tanh outputs saturated.
    Saturated,
    /// Update ratios far from 1e-3.
    UpdateRatio,
}

/// A warning with the step it was raised at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// Optimizer step (from 1).
    pub step: usize,
    /// Epoch (from 1).
    pub epoch: usize,
    /// Cause and hint, one line.
    pub message: String,
}

/// Everything recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DiagnosticsLog {
    /// Per layer per recorded step.
    pub records: Vec<LayerRecord>,
    /// Warnings in the order raised.
    pub warnings: Vec<Warning>,
}

/// The probe the trainer calls (see [`StepProbe`]); read the results from [`Diagnostics::log`].
pub struct Diagnostics {
    every: usize,
    probe_x: Tensor<f32>,
    base_lr: f64,
    log: Arc<Mutex<DiagnosticsLog>>,
    on_warning: Box<dyn FnMut(&Warning) + Send>,
    warned: BTreeSet<WarningKind>,
    early_norms: Vec<f64>,
    /// Per layer: name, its parameters' values before the update, the gradient norm.
    pending: Vec<(String, Vec<Tensor<f32>>, f64)>,
    record_now: bool,
    steps_per_epoch: usize,
    lr: f64,
}

/// The layers with parameters, in order, with their parameters (grouped by the name before
/// the last dot: `fc1.weight`, `fc1.bias` → `fc1`).
fn param_layers(model: &dyn Module<f32>) -> Vec<(String, Vec<Var<f32>>)> {
    let mut out: Vec<(String, Vec<Var<f32>>)> = Vec::new();
    for (name, p) in model.params() {
        let layer = name
            .rsplit_once('.')
            .map_or(name.as_str(), |(l, _)| l)
            .to_string();
        match out.last_mut() {
            Some((l, ps)) if *l == layer => ps.push(p),
            _ => out.push((layer, vec![p])),
        }
    }
    out
}

fn norm(t: &Tensor<f32>) -> f64 {
    t.data()
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
}

impl Diagnostics {
    /// Records every `every` steps (0: at the last step of each epoch), measuring dead and
    /// saturated units on `probe_x` (a fixed batch of training inputs, e.g. the first 256).
    /// `on_warning` sees each warning as it is raised; `base_lr` is the configured η.
    pub fn new(
        every: usize,
        probe_x: Tensor<f32>,
        base_lr: f64,
        on_warning: Box<dyn FnMut(&Warning) + Send>,
    ) -> Self {
        Diagnostics {
            every,
            probe_x,
            base_lr,
            log: Arc::new(Mutex::new(DiagnosticsLog::default())),
            on_warning,
            warned: BTreeSet::new(),
            early_norms: Vec::new(),
            pending: Vec::new(),
            record_now: false,
            steps_per_epoch: 1,
            lr: base_lr,
        }
    }

    /// The shared log (read it after training).
    pub fn log(&self) -> Arc<Mutex<DiagnosticsLog>> {
        Arc::clone(&self.log)
    }

    fn warn(&mut self, kind: WarningKind, step: usize, message: String) {
        if !self.warned.insert(kind) {
            return;
        }
        let w = Warning {
            kind,
            step: step + 1,
            epoch: step / self.steps_per_epoch.max(1) + 1,
            message,
        };
        (self.on_warning)(&w);
        self.log.lock().unwrap().warnings.push(w);
    }

    /// The share of dead ReLU units and saturated sigmoid/tanh outputs, per activation
    /// layer, on the probe batch (layer by layer through the model's children).
    fn unit_stats(&self, model: &dyn Module<f32>) -> Vec<(String, f64, f64)> {
        let children = model.children();
        if children.is_empty() || self.probe_x.numel() == 0 {
            return Vec::new();
        }
        no_grad(|| {
            let mut a = Var::constant(self.probe_x.clone());
            let mut out = Vec::new();
            for (name, layer) in children {
                a = layer.forward(&a, Mode::Eval);
                let act = layer.activation();
                let v = a.value();
                let d = v.data();
                let units = *v.shape().last().unwrap_or(&1);
                match act {
                    Some(Activation::Relu) if units > 0 => {
                        let dead = (0..units)
                            .filter(|&j| d.iter().skip(j).step_by(units).all(|&x| x <= 0.0))
                            .count();
                        out.push((name, dead as f64 / units as f64, f64::NAN));
                    }
                    Some(Activation::Sigmoid) => {
                        let s = d.iter().filter(|&&x| !(0.01..=0.99).contains(&x)).count();
                        out.push((name, f64::NAN, s as f64 / d.len().max(1) as f64));
                    }
                    Some(Activation::Tanh) => {
                        let s = d.iter().filter(|&&x| x.abs() > 0.99).count();
                        out.push((name, f64::NAN, s as f64 / d.len().max(1) as f64));
                    }
                    _ => {}
                }
            }
            out
        })
    }

    fn check_explosion(&mut self, step: usize, total: f64, ratios: &[(String, f64)]) {
        let epoch_step = format!("step {}", step + 1);
        if !total.is_finite() {
            self.warn(WarningKind::Exploding, step, format!("exploding gradients at {epoch_step}: the gradient is not finite. Likely cause: a learning rate too large for this model. Hint: lower --lr (by 10×), or add --clip 1"));
            return;
        }
        if let Some((layer, r)) = ratios
            .iter()
            .filter(|(_, r)| *r > 1.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
        {
            let (layer, r) = (layer.clone(), *r);
            self.warn(WarningKind::Exploding, step, format!("exploding updates at {epoch_step}: {layer}'s update is {r:.3} times its weights (healthy is about 1e-3). Likely cause: a learning rate too large (--lr {}). Hint: lower --lr by 10× or more, or add --clip 1", self.base_lr));
            return;
        }
        if self.early_norms.len() < 20 {
            self.early_norms.push(total);
        } else {
            let mut e = self.early_norms.clone();
            e.sort_by(f64::total_cmp);
            let median = e[e.len() / 2];
            if total > 100.0 * median {
                self.warn(WarningKind::Exploding, step, format!("exploding gradients at {epoch_step}: the gradient norm {total:.3e} is {:.0} times its median over the first 20 steps. Likely cause: a learning rate too large or a deep net without normalisation. Hint: lower --lr, add --clip 1", total / median));
            }
        }
    }

    fn record(&mut self, step: usize, model: &dyn Module<f32>, ratios: &[(String, f64, f64, f64)]) {
        let epoch = step / self.steps_per_epoch.max(1) + 1;
        let mut rows: Vec<LayerRecord> = ratios
            .iter()
            .map(|(layer, g, w, r)| LayerRecord {
                step: step + 1,
                epoch,
                layer: layer.clone(),
                grad_norm: *g,
                weight_norm: *w,
                update_ratio: *r,
                dead_relu: f64::NAN,
                saturated: f64::NAN,
            })
            .collect();
        let units = self.unit_stats(model);
        for (layer, dead, sat) in &units {
            rows.push(LayerRecord {
                step: step + 1,
                epoch,
                layer: layer.clone(),
                grad_norm: f64::NAN,
                weight_norm: f64::NAN,
                update_ratio: f64::NAN,
                dead_relu: *dead,
                saturated: *sat,
            });
        }
        self.judge(step, ratios, &units);
        self.log.lock().unwrap().records.extend(rows);
    }

    fn judge(
        &mut self,
        step: usize,
        layers: &[(String, f64, f64, f64)],
        units: &[(String, f64, f64)],
    ) {
        let at = format!(
            "epoch {}, step {}",
            step / self.steps_per_epoch.max(1) + 1,
            step + 1
        );
        // with most ReLUs dead, tiny early gradients are the dead units' doing: say that
        // instead of blaming saturation
        let dead = units.iter().any(|u| u.1 > MOSTLY);
        if let Some((last_name, last, _, _)) = layers.last().filter(|_| !dead) {
            let low: Vec<String> = layers[..layers.len() - 1]
                .iter()
                .filter(|(_, g, _, _)| *g < VANISHING_RATIO * last)
                .map(|(n, g, _, _)| format!("{n} ({:.1e})", g / last))
                .collect();
            if !low.is_empty() && *last > 0.0 {
                self.warn(WarningKind::Vanishing, step, format!("vanishing gradients at {at}: the gradient norms of {} are below 1/100 of the last layer's ({last_name}; ratio in brackets), so these layers hardly learn. Likely cause: saturating activations (sigmoid/tanh) stacked deep, or a too small initialisation. Hint: --activation relu (He initialisation), fewer layers, or batch_norm layers", low.join(", ")));
            }
        }
        for (name, dead, sat) in units {
            if *dead > MOSTLY {
                self.warn(WarningKind::DeadRelu, step, format!("dead ReLUs at {at}: {:.0}% of {name}'s units output 0 for every probe sample and get no gradient. Likely cause: a learning rate too large or a negative bias drift. Hint: lower --lr, or --activation leaky_relu", dead * 100.0));
            }
            if *sat > MOSTLY {
                self.warn(WarningKind::Saturated, step, format!("saturated units at {at}: {:.0}% of {name}'s outputs are saturated, where the local gradient is nearly 0. Likely cause: large weights or inputs. Hint: scale the inputs, a smaller initialisation, or --activation relu", sat * 100.0));
            }
        }
        let mut r: Vec<f64> = layers
            .iter()
            .map(|l| l.3)
            .filter(|r| r.is_finite())
            .collect();
        if r.is_empty() {
            return;
        }
        r.sort_by(f64::total_cmp);
        let median = r[r.len() / 2];
        if median > 0.1 {
            self.warn(WarningKind::UpdateRatio, step, format!("update ratios at {at}: the median update-to-weight ratio is {median:.1e}, far above the healthy 1e-3. Hint: lower --lr"));
        } else if median < 1e-5 && self.lr >= 0.5 * self.base_lr {
            if !dead {
                self.warn(WarningKind::UpdateRatio, step, format!("update ratios at {at}: the median update-to-weight ratio is {median:.1e}, far below the healthy 1e-3: training barely moves the weights. Hint: raise --lr"));
            }
        }
    }
}

impl StepProbe for Diagnostics {
    fn after_backward(
        &mut self,
        step: usize,
        steps_per_epoch: usize,
        model: &dyn Module<f32>,
        grads: &Grads<f32>,
        lr: f64,
    ) {
        self.steps_per_epoch = steps_per_epoch;
        self.lr = lr;
        self.record_now = if self.every == 0 {
            (step + 1) % steps_per_epoch.max(1) == 0
        } else {
            (step + 1) % self.every == 0
        };
        self.pending = param_layers(model)
            .into_iter()
            .map(|(name, ps)| {
                let g2: f64 = ps.iter().filter_map(|p| grads.get(p)).map(norm).sum();
                let before = ps.iter().map(Var::value).collect();
                (name, before, g2.sqrt())
            })
            .collect();
    }

    fn after_update(&mut self, step: usize, model: &dyn Module<f32>) {
        let pending = std::mem::take(&mut self.pending);
        let layers: Vec<(String, f64, f64, f64)> = param_layers(model)
            .into_iter()
            .zip(pending)
            .map(|((name, ps), (_, before, g))| {
                let (mut w2, mut d2) = (0.0, 0.0);
                for (p, b) in ps.iter().zip(&before) {
                    p.with_value(|v| {
                        for (&x, &y) in v.data().iter().zip(b.data()) {
                            w2 += f64::from(x) * f64::from(x);
                            d2 += f64::from(x - y) * f64::from(x - y);
                        }
                    });
                }
                let w = w2.sqrt();
                (name, g, w, if w > 0.0 { d2.sqrt() / w } else { f64::NAN })
            })
            .collect();
        let total = layers.iter().map(|l| l.1 * l.1).sum::<f64>().sqrt();
        let ratios: Vec<(String, f64)> = layers.iter().map(|l| (l.0.clone(), l.3)).collect();
        self.check_explosion(step, total, &ratios);
        if self.record_now {
            self.record(step, model, &layers);
        }
    }
}

impl DiagnosticsLog {
    /// CSV: one row per layer per recorded step; empty cells where a figure does not apply.
    pub fn to_csv(&self) -> String {
        let cell = |v: f64| {
            if v.is_nan() {
                String::new()
            } else {
                format!("{v}")
            }
        };
        let mut s = String::from(
            "step,epoch,layer,grad_norm,weight_norm,update_ratio,dead_relu,saturated\n",
        );
        for r in &self.records {
            s += &format!(
                "{},{},{},{},{},{},{},{}\n",
                r.step,
                r.epoch,
                r.layer,
                cell(r.grad_norm),
                cell(r.weight_norm),
                cell(r.update_ratio),
                cell(r.dead_relu),
                cell(r.saturated)
            );
        }
        s
    }

    /// The series of one figure per layer over steps (layers in first-seen order).
    fn series(&self, f: impl Fn(&LayerRecord) -> f64) -> Vec<(String, Vec<(f64, f64)>)> {
        let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for r in &self.records {
            let v = f(r);
            if v.is_nan() {
                continue;
            }
            match out.iter_mut().find(|(n, _)| *n == r.layer) {
                Some((_, pts)) => pts.push((r.step as f64, v)),
                None => out.push((r.layer.clone(), vec![(r.step as f64, v)])),
            }
        }
        out
    }

    /// Writes `diagnostics.csv`, `diagnostics.json` and the plots `gradient_norms.svg`,
    /// `update_ratios.svg` and (with activation layers) `units.svg` into `dir`.
    ///
    /// # Errors
    /// If a file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        let put = |name: &str, text: String| -> Result<PathBuf, String> {
            let p = dir.join(name);
            atomic_write(&p, |f| std::io::Write::write_all(f, text.as_bytes()))
                .map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(p)
        };
        let mut written = vec![put("diagnostics.csv", self.to_csv())?];
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        written.push(put("diagnostics.json", json)?);
        let chart = |title: &str, y: &str, s: Vec<(String, Vec<(f64, f64)>)>, log: bool| {
            let refs: Vec<(&str, Vec<(f64, f64)>)> =
                s.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
            xy_chart_svg(title, "step", y, &refs, log)
        };
        let g = self.series(|r| r.grad_norm);
        if !g.is_empty() {
            written.push(put(
                "gradient_norms.svg",
                chart("gradient norm per layer", "‖∂C/∂θ‖", g, true),
            )?);
            let u = self.series(|r| r.update_ratio);
            written.push(put(
                "update_ratios.svg",
                chart(
                    "update-to-weight ratio per layer (healthy ≈ 1e-3)",
                    "‖Δθ‖/‖θ‖",
                    u,
                    true,
                ),
            )?);
        }
        let d = self.series(|r| {
            if r.dead_relu.is_nan() {
                r.saturated
            } else {
                r.dead_relu
            }
        });
        if !d.is_empty() {
            written.push(put(
                "units.svg",
                chart(
                    "dead ReLU units / saturated sigmoid-tanh outputs",
                    "share",
                    d,
                    false,
                ),
            )?);
        }
        Ok(written)
    }
}
