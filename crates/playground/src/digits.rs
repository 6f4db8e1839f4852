//! The digits page's model: an MNIST checkpoint written by `backprop train`, loaded on
//! first use, or, when the file does not exist yet, trained there first (the CLI's default
//! MLP), with progress the page shows.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use backprop_data::{digit_names, load_idx_pair, normalize_digit, Encoding};
use backprop_nn::Module;
use backprop_tensor::Tensor;
use backprop_train::plot::{encode_png, tile_grid};
use backprop_train::saved::{encoding_to_json, model_metadata};
use backprop_train::{
    evaluate, predict_proba, EpochRecord, LossKind, ModelSpec, Observer, SavedModel, ScheduleKind,
    TrainConfig, Trainer,
};
use serde_json::{json, Value};

/// Where the model comes from.
#[derive(Debug, Clone)]
pub struct DigitsOptions {
    /// The checkpoint; trained there on first use when it does not exist.
    pub model: PathBuf,
    /// The MNIST IDX files for that training.
    pub mnist_dir: PathBuf,
    /// Epochs of that training.
    pub epochs: usize,
}

/// A loaded model, ready to classify drawings.
pub struct DigitsModel {
    saved: SavedModel,
    encoding: Encoding,
    weights_png: Vec<u8>,
    units: usize,
}

enum State {
    Idle,
    Working { progress: f64, message: String },
    Ready(Arc<DigitsModel>),
    Failed(String),
}

/// The page's model and how far it is from ready.
pub struct Digits {
    opts: DigitsOptions,
    state: Mutex<State>,
}

/// Drawings may be at most this many pixels per side.
pub const MAX_SIDE: usize = 560;

struct Progress<'a> {
    digits: &'a Digits,
    epochs: usize,
    epoch: usize,
    batches: usize,
    done: usize,
}

impl Observer for Progress<'_> {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, batches: usize) {
        (self.epoch, self.epochs, self.batches, self.done) = (epoch, epochs, batches, 0);
    }
    fn step(&mut self, loss: f64, _accuracy: f64, _samples: usize) {
        self.done += 1;
        if self.done.is_multiple_of(20) || self.done == self.batches {
            let p = (self.epoch as f64 + self.done as f64 / self.batches.max(1) as f64)
                / self.epochs.max(1) as f64;
            self.digits.set_working(
                p,
                format!(
                    "training on MNIST: epoch {}/{}, step {}/{}, loss {loss:.3}",
                    self.epoch + 1,
                    self.epochs,
                    self.done,
                    self.batches
                ),
            );
        }
    }
    fn epoch_end(&mut self, _record: &EpochRecord) {}
}

impl Digits {
    /// Nothing loaded yet; [`Digits::start`] begins.
    pub fn new(opts: DigitsOptions) -> Digits {
        Digits {
            opts,
            state: Mutex::new(State::Idle),
        }
    }

    fn set_working(&self, progress: f64, message: String) {
        *self.state.lock().expect("digits state") = State::Working { progress, message };
    }

    /// Starts loading (or training, then loading) in the background, once.
    pub fn start(self: &Arc<Self>) {
        {
            let mut s = self.state.lock().expect("digits state");
            if !matches!(*s, State::Idle) {
                return;
            }
            *s = State::Working {
                progress: 0.0,
                message: "loading".into(),
            };
        }
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            let result = me.prepare();
            *me.state.lock().expect("digits state") = match result {
                Ok(m) => State::Ready(Arc::new(m)),
                Err(e) => State::Failed(e),
            };
        });
    }

    fn prepare(&self) -> Result<DigitsModel, String> {
        if !self.opts.model.exists() {
            self.train()?;
        }
        self.set_working(1.0, format!("loading {}", self.opts.model.display()));
        let saved = SavedModel::load(&self.opts.model)?;
        let shown = saved.path.display().to_string();
        if saved.inputs != 784 || saved.classes.len() != 10 {
            return Err(format!(
                "{shown}: the digits page needs a 28×28 (784-input), 10-class model; this one has {} inputs and {} classes",
                saved.inputs,
                saved.classes.len()
            ));
        }
        let encoding = saved
            .input_encoding()
            .map_err(|e| format!("{shown}: {e}"))?;
        // the first layer that has a weight matrix: linear [units, 784] or conv [c, 1, kh, kw]
        let first = saved
            .model
            .params()
            .into_iter()
            .find(|(n, _)| n.ends_with("weight"))
            .ok_or_else(|| format!("{shown}: the model has no weights"))?
            .1
            .value();
        let (units, h, w) = match first.shape() {
            [u, 784] => (*u, 28, 28),
            [c, 1, kh, kw] => (*c, *kh, *kw),
            s => return Err(format!("{shown}: cannot show a first layer of shape {s:?}")),
        };
        let per = h * w;
        let tiles: Vec<Vec<f32>> = first.data().chunks(per).map(<[f32]>::to_vec).collect();
        let scale = if per == 784 { 2 } else { 8 };
        let columns = (units as f64).sqrt().ceil() as usize;
        let (rgb, pw, ph) = tile_grid(&tiles, h, w, scale, columns.min(32));
        let weights_png = encode_png(&rgb, pw, ph)?;
        Ok(DigitsModel {
            saved,
            encoding,
            weights_png,
            units,
        })
    }

    /// Trains the CLI's default MNIST model into the model path.
    fn train(&self) -> Result<(), String> {
        let dir = &self.opts.mnist_dir;
        self.set_working(0.0, format!("reading MNIST from {}", dir.display()));
        let train_raw = load_idx_pair(dir, "train").map_err(|e| e.to_string())?;
        let test_raw = load_idx_pair(dir, "t10k").map_err(|e| e.to_string())?;
        let enc = Encoding::Grey;
        let train = train_raw
            .into_dataset("mnist", enc, digit_names(10))
            .map_err(|e| e.to_string())?;
        let test = test_raw
            .into_dataset("mnist", enc, digit_names(10))
            .map_err(|e| e.to_string())?;
        let spec = ModelSpec::preset("mlp", 10).map_err(|e| e.to_string())?;
        let built = spec
            .build_shaped::<f32>(784, train.image_shape, Some(10), 0)
            .map_err(|e| e.to_string())?;
        let config = TrainConfig {
            epochs: self.opts.epochs,
            schedule: ScheduleKind::Cosine,
            ..TrainConfig::default()
        };
        let mut trainer = Trainer::new(&built.model, config).map_err(|e| e.to_string())?;
        let mut progress = Progress {
            digits: self,
            epochs: self.opts.epochs,
            epoch: 0,
            batches: 1,
            done: 0,
        };
        trainer.fit(&train, None, &mut progress, |_| Ok(()))?;
        let acc = evaluate(&built.model, &test, LossKind::CrossEntropy).accuracy;
        let mut meta = model_metadata(
            &spec,
            "mnist",
            &train,
            &encoding_to_json(&enc),
            Some(dir.as_path()),
        );
        meta.insert("backprop.test_accuracy".into(), format!("{acc:.4}"));
        if let Some(parent) = self.opts.model.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
        }
        trainer.checkpoint(meta).save(&self.opts.model)
    }

    /// `{state, progress, message}`; with the model's facts once ready.
    pub fn status(&self) -> Value {
        match &*self.state.lock().expect("digits state") {
            State::Idle => json!({"state": "idle", "progress": 0.0, "message": "not started"}),
            State::Working { progress, message } => {
                json!({"state": "working", "progress": progress, "message": message})
            }
            State::Failed(e) => json!({"state": "failed", "progress": 0.0, "message": e}),
            State::Ready(m) => json!({
                "state": "ready",
                "progress": 1.0,
                "message": format!("model {}", m.saved.path.display()),
                "model": m.saved.path.display().to_string(),
                "first_layer_units": m.units,
                "test_accuracy": m.saved.meta.get("backprop.test_accuracy").and_then(|s| s.parse::<f64>().ok()),
            }),
        }
    }

    fn ready(&self) -> Result<Arc<DigitsModel>, String> {
        match &*self.state.lock().expect("digits state") {
            State::Ready(m) => Ok(Arc::clone(m)),
            State::Failed(e) => Err(e.clone()),
            _ => Err("the digits model is not ready yet; see /api/digits/status".into()),
        }
    }

    /// The first layer's weights as a PNG.
    ///
    /// # Errors
    /// If the model is not ready.
    pub fn weights_png(&self) -> Result<Vec<u8>, String> {
        Ok(self.ready()?.weights_png.clone())
    }

    /// Classifies a drawing (`width × height` grey levels, bright ink on dark), normalized
    /// as MNIST's digits were. Returns the probabilities, the prediction and the 28×28
    /// image the network saw.
    ///
    /// # Errors
    /// If the model is not ready or the drawing has a bad size.
    pub fn predict(&self, width: usize, height: usize, pixels: &[u8]) -> Result<Value, String> {
        check_drawing(width, height, pixels)?;
        let m = self.ready()?;
        let Some(digit) = normalize_digit(pixels, width, height) else {
            return Ok(json!({"empty": true}));
        };
        let x: Vec<f32> = digit.iter().map(|&b| m.encoding.encode(b)).collect();
        let p = predict_proba(&m.saved.model, &Tensor::from_vec(x, &[1, 784]));
        let probs: Vec<f64> = p.data().iter().map(|&v| f64::from(v)).collect();
        let best = probs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        Ok(json!({
            "empty": false,
            "probabilities": probs,
            "prediction": m.saved.classes[best],
            "input": digit,
        }))
    }
}

/// Checks a drawing's size before any work is done for it.
///
/// # Errors
/// If a side is 0 or above [`MAX_SIDE`], or the pixel count does not match.
pub fn check_drawing(width: usize, height: usize, pixels: &[u8]) -> Result<(), String> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(format!(
            "width, height: {width}×{height} must each be 1..={MAX_SIDE}"
        ));
    }
    if pixels.len() != width * height {
        return Err(format!(
            "pixels: {} values for a {width}×{height} drawing (need {})",
            pixels.len(),
            width * height
        ));
    }
    Ok(())
}

/// The default checkpoint path: the run directory `backprop train` uses for MNIST.
pub fn default_model_path() -> PathBuf {
    Path::new("runs")
        .join("mnist-mlp")
        .join("model.safetensors")
}
