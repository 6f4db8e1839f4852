//! A playground set-up: the data, the network and the training settings, as the page sends
//! them, with every number bounded.

use backprop_optim::OptimizerKind;
use backprop_train::{Field, LossKind};
use serde::{Deserialize, Serialize};

/// The input features a network can be given, computed from a point (x₁, x₂).
pub const FEATURES: [&str; 7] = ["x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"];

/// The hidden-layer activations on offer: every elementwise activation with a gradient,
/// from the library's one list.
pub fn activations() -> impl Iterator<Item = backprop_nn::Activation> {
    backprop_nn::Activation::ALL
        .iter()
        .copied()
        .filter(|a| a.has_gradient() && a.is_elementwise())
}

/// Whether `name` is an activation on offer.
fn activation_offered(name: &str) -> bool {
    backprop_nn::Activation::from_name(name)
        .is_some_and(|a| activations().any(|b| b.name() == a.name()))
}

/// The classification sets with two classes.
pub const BINARY_SETS: [&str; 4] = ["circle", "xor", "gauss", "spiral"];
/// The classification sets with a settable number of classes.
pub const MULTICLASS_SETS: [&str; 2] = ["blobs", "spirals"];
/// The regression sets.
pub const REGRESSION_SETS: [&str; 2] = ["plane", "multigauss"];

/// Bounds on what one request may ask for.
pub mod limits {
    /// Hidden layers.
    pub const MAX_LAYERS: usize = 6;
    /// Neurons per hidden layer.
    pub const MAX_NEURONS: usize = 8;
    /// Generated points.
    pub const MIN_POINTS: usize = 10;
    /// Generated points.
    pub const MAX_POINTS: usize = 2000;
    /// Rows of an uploaded CSV.
    pub const MAX_UPLOAD_ROWS: usize = 5000;
    /// Bytes of any request body (an uploaded CSV included).
    pub const MAX_BODY_BYTES: usize = 1 << 20;
    /// Classes of a multiclass set or an upload.
    pub const MAX_CLASSES: usize = 8;
    /// Epochs per animation frame.
    pub const MAX_SPEED: usize = 20;
    /// Epochs one `step` request may run.
    pub const MAX_STEP_EPOCHS: usize = 2000;
    /// Sample passes (epochs × training points) one `step` request may run.
    pub const MAX_STEP_WORK: usize = 1_000_000;
    /// Samples per mini-batch.
    pub const MAX_BATCH: usize = 500;
}

/// One hidden layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerConfig {
    /// Its width.
    pub neurons: usize,
    /// Its activation, one of [`activations`].
    pub activation: String,
}

/// A whole set-up. Every field has TensorFlow Playground's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A generated set ([`BINARY_SETS`], [`MULTICLASS_SETS`], [`REGRESSION_SETS`]) or
    /// `upload` for the session's uploaded CSV.
    pub dataset: String,
    /// Classes of a multiclass set.
    pub classes: usize,
    /// Points generated.
    pub points: usize,
    /// Noise, 0 to 0.5.
    pub noise: f64,
    /// The share of points used for training, 0.1 to 0.9.
    pub train_fraction: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Seeds the data, the initial weights, the shuffles and dropout.
    pub seed: u32,
    /// Input features, from [`FEATURES`].
    pub features: Vec<String>,
    /// Hidden layers.
    pub layers: Vec<LayerConfig>,
    /// Dropout probability after each hidden layer, 0 to 0.9.
    pub dropout: f64,
    /// η.
    pub learning_rate: f64,
    /// `none`, `l1` or `l2`.
    pub regularization: String,
    /// λ.
    pub regularization_rate: f64,
    /// `classification` or `regression`.
    pub problem: String,
    /// The loss, one of [`LossKind::ALL`].
    pub loss: LossKind,
    /// The optimizer, one of [`OptimizerKind::ALL`].
    pub optimizer: OptimizerKind,
    /// Momentum, 0 to 0.99 (SGD and Nesterov).
    pub momentum: f64,
    /// Epochs per frame while playing.
    pub speed: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dataset: "circle".into(),
            classes: 3,
            points: 500,
            noise: 0.0,
            train_fraction: 0.5,
            batch_size: 10,
            seed: 1,
            features: vec!["x1".into(), "x2".into()],
            layers: vec![
                LayerConfig {
                    neurons: 4,
                    activation: "tanh".into(),
                },
                LayerConfig {
                    neurons: 2,
                    activation: "tanh".into(),
                },
            ],
            dropout: 0.0,
            learning_rate: 0.03,
            regularization: "none".into(),
            regularization_rate: 0.0,
            problem: "classification".into(),
            loss: LossKind::CrossEntropy,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.0,
            speed: 1,
        }
    }
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{field}: {value:?} is not one of {}",
            allowed.join(", ")
        ))
    }
}

fn within(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), String> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(format!("{field}: {value} is outside {lo}..={hi}"))
    }
}

fn count(field: &str, value: usize, lo: usize, hi: usize) -> Result<(), String> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(format!("{field}: {value} is outside {lo}..={hi}"))
    }
}

impl Config {
    /// Whether the task is regression.
    pub fn is_regression(&self) -> bool {
        self.problem == "regression"
    }

    /// Checks every field against its bounds; `upload_rows` is the size of the session's
    /// uploaded set, if it has one.
    ///
    /// # Errors
    /// The first problem, naming the field.
    pub fn validate(&self, upload_rows: Option<usize>) -> Result<(), String> {
        use limits::*;
        let mut sets: Vec<&str> = BINARY_SETS.to_vec();
        sets.extend(MULTICLASS_SETS);
        sets.extend(REGRESSION_SETS);
        sets.push("upload");
        one_of("dataset", &self.dataset, &sets)?;
        one_of("problem", &self.problem, &["classification", "regression"])?;
        one_of(
            "regularization",
            &self.regularization,
            &["none", "l1", "l2"],
        )?;
        let regression_set = REGRESSION_SETS.contains(&self.dataset.as_str());
        if self.dataset != "upload" && regression_set != self.is_regression() {
            return Err(format!(
                "problem: the {} set is a {} task",
                self.dataset,
                if regression_set {
                    "regression"
                } else {
                    "classification"
                }
            ));
        }
        if self.is_regression() && self.loss.needs_classes() {
            return Err(format!(
                "loss: {} needs classes; use squared or absolute for regression",
                self.loss
            ));
        }
        count("classes", self.classes, 2, MAX_CLASSES)?;
        let points = match (self.dataset.as_str(), upload_rows) {
            ("upload", Some(rows)) => rows,
            ("upload", None) => {
                return Err("dataset: upload a CSV file for this session first".into())
            }
            _ => {
                count("points", self.points, MIN_POINTS, MAX_POINTS)?;
                self.points
            }
        };
        within("noise", self.noise, 0.0, 0.5)?;
        within("train_fraction", self.train_fraction, 0.1, 0.9)?;
        let train = ((points as f64 * self.train_fraction).round() as usize).max(1);
        count("batch_size", self.batch_size, 1, MAX_BATCH.min(train))?;
        if self.features.is_empty() {
            return Err("features: choose at least one input feature".into());
        }
        for (i, f) in self.features.iter().enumerate() {
            one_of("features", f, &FEATURES)?;
            if self.features[..i].contains(f) {
                return Err(format!("features: {f} is listed twice"));
            }
        }
        count("layers", self.layers.len(), 0, MAX_LAYERS)?;
        for (i, l) in self.layers.iter().enumerate() {
            count(&format!("layers[{i}].neurons"), l.neurons, 1, MAX_NEURONS)?;
            if !activation_offered(&l.activation) {
                let names: Vec<&str> = activations().map(|a| a.name()).collect();
                return Err(format!(
                    "layers[{i}].activation: {:?} is not one of {}",
                    l.activation,
                    names.join(", ")
                ));
            }
        }
        within("dropout", self.dropout, 0.0, 0.9)?;
        if !(self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.learning_rate <= 10.0)
        {
            return Err(format!(
                "learning_rate: {} must be in (0, 10]",
                self.learning_rate
            ));
        }
        within("regularization_rate", self.regularization_rate, 0.0, 10.0)?;
        within("momentum", self.momentum, 0.0, 0.99)?;
        count("speed", self.speed, 1, MAX_SPEED)?;
        Ok(())
    }
}

/// The JSON field of a run setting, for errors the trainer's checks return.
pub fn config_field(f: Field) -> &'static str {
    match f {
        Field::Lr => "learning_rate",
        Field::L1 | Field::L2 => "regularization_rate",
        Field::Activation => "layers",
        other => other.name(),
    }
}

fn activation_label(name: &str) -> String {
    match name {
        "relu" => "ReLU".into(),
        "elu" => "ELU".into(),
        "leaky_relu" => "Leaky ReLU".into(),
        "gelu" => "GELU".into(),
        "silu" => "SiLU".into(),
        other => {
            let mut c = other.chars();
            c.next()
                .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
        }
    }
}

/// The menus the page offers, read from the library's own lists.
pub fn options() -> serde_json::Value {
    let optimizers: Vec<_> = OptimizerKind::ALL
        .iter()
        .map(|o| serde_json::json!({"name": o, "label": o.label(), "momentum": o.uses_momentum()}))
        .collect();
    let losses: Vec<_> = LossKind::ALL
        .iter()
        .map(|l| serde_json::json!({"name": l, "label": l.label(), "needs_classes": l.needs_classes()}))
        .collect();
    let activations: Vec<_> = activations()
        .map(|a| serde_json::json!({"name": a.name(), "label": activation_label(a.name()), "formula": a.formula()}))
        .collect();
    serde_json::json!({"optimizers": optimizers, "losses": losses, "activations": activations})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_hold() {
        assert_eq!(Config::default().validate(None), Ok(()));
        let bad = |f: fn(&mut Config), field: &str| {
            let mut c = Config::default();
            f(&mut c);
            let e = c.validate(None).unwrap_err();
            assert!(e.starts_with(field), "{e}");
        };
        bad(|c| c.dataset = "moons".into(), "dataset");
        bad(|c| c.points = 1_000_000, "points");
        bad(|c| c.layers = vec![c.layers[0].clone(); 7], "layers");
        bad(|c| c.layers[0].neurons = 9, "layers[0].neurons");
        bad(
            |c| c.layers[1].activation = "swoosh".into(),
            "layers[1].activation",
        );
        bad(|c| c.learning_rate = f64::NAN, "learning_rate");
        bad(|c| c.features.clear(), "features");
        bad(|c| c.features = vec!["x1".into(), "x1".into()], "features");
        bad(|c| c.batch_size = 0, "batch_size");
        bad(|c| c.problem = "regression".into(), "problem");
        bad(|c| c.dataset = "upload".into(), "dataset");
        bad(|c| c.dropout = 1.0, "dropout");
        bad(|c| c.speed = 100, "speed");
        let mut c = Config {
            dataset: "plane".into(),
            problem: "regression".into(),
            ..Config::default()
        };
        assert!(c.validate(None).unwrap_err().starts_with("loss"));
        c.loss = LossKind::Squared;
        assert_eq!(c.validate(None), Ok(()));
    }
}
