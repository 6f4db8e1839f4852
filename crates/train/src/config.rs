//! The resolved settings of a training run ([`TrainConfig`]), the losses a run can choose
//! ([`LossKind`], listed once), and the typed error every setting check returns
//! ([`ConfigError`], naming its [`Field`]).
//!
//! The CLI shows a [`Field`] as its flag (`--lr`), the playground as its JSON field
//! (`learning_rate`); neither matches on message text.

use std::fmt;
use std::str::FromStr;

use backprop_optim::{OptimizerKind, OptimizerSettings, Regularization, ScheduleKind, UnknownName};
use serde::{Deserialize, Serialize};

/// A setting of a run, for errors that name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Which dataset.
    Dataset,
    /// Where IDX files are.
    DataDir,
    /// How images are encoded.
    Encoding,
    /// Points of a synthetic set.
    Samples,
    /// Noise of a synthetic set.
    Noise,
    /// Steps of a sequence task (its length, delay or window).
    Steps,
    /// The CSV label column.
    LabelColumn,
    /// Classification or regression.
    Task,
    /// Scaling of a table's numeric columns.
    Scale,
    /// Missing cells of a table.
    Missing,
    /// The seed of a table's test split.
    SplitSeed,
    /// Training samples used.
    Limit,
    /// Validation samples held out.
    Validation,
    /// The model: preset, spec file or quick MLP.
    Model,
    /// Hidden widths of the quick MLP.
    Hidden,
    /// The quick MLP's activation.
    Activation,
    /// The quick MLP's dropout.
    Dropout,
    /// The loss.
    Loss,
    /// The optimizer.
    Optimizer,
    /// The learning rate.
    Lr,
    /// Momentum.
    Momentum,
    /// AdamW's weight decay.
    WeightDecay,
    /// Samples per step.
    BatchSize,
    /// Epochs.
    Epochs,
    /// L1 penalty.
    L1,
    /// L2 penalty.
    L2,
    /// Gradient clipping.
    Clip,
    /// The learning-rate schedule.
    Schedule,
    /// Warm-up steps.
    Warmup,
    /// Early-stopping patience.
    EarlyStopping,
    /// Shift augmentation.
    Augment,
    /// The output directory.
    Out,
    /// Resuming.
    Resume,
}

impl Field {
    /// The setting's name in snake case (`batch_size`); the CLI's flag is its kebab form.
    pub fn name(self) -> &'static str {
        match self {
            Field::Dataset => "dataset",
            Field::DataDir => "data_dir",
            Field::Encoding => "encoding",
            Field::Samples => "samples",
            Field::Noise => "noise",
            Field::Steps => "steps",
            Field::LabelColumn => "label_column",
            Field::Task => "task",
            Field::Scale => "scale",
            Field::Missing => "missing",
            Field::SplitSeed => "split_seed",
            Field::Limit => "limit",
            Field::Validation => "validation",
            Field::Model => "model",
            Field::Hidden => "hidden",
            Field::Activation => "activation",
            Field::Dropout => "dropout",
            Field::Loss => "loss",
            Field::Optimizer => "optimizer",
            Field::Lr => "lr",
            Field::Momentum => "momentum",
            Field::WeightDecay => "weight_decay",
            Field::BatchSize => "batch_size",
            Field::Epochs => "epochs",
            Field::L1 => "l1",
            Field::L2 => "l2",
            Field::Clip => "clip",
            Field::Schedule => "lr_schedule",
            Field::Warmup => "warmup",
            Field::EarlyStopping => "early_stopping",
            Field::Augment => "augment",
            Field::Out => "out",
            Field::Resume => "resume",
        }
    }
}

/// A setting that cannot be used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The setting.
    pub field: Field,
    /// The problem, starting with the value where there is one (`-1: must be ...`).
    pub message: String,
}

impl ConfigError {
    /// An error about `field`.
    pub fn new(field: Field, message: impl Into<String>) -> Self {
        ConfigError {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field.name(), self.message)
    }
}
impl std::error::Error for ConfigError {}

/// The loss to train with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Softmax cross-entropy on logits (classification).
    #[serde(alias = "cross_entropy")]
    CrossEntropy,
    /// The lectures' quadratic cost `1/(2n) Σ‖y − a‖²` (one-hot targets for classes).
    Squared,
    /// Absolute error (one-hot targets for classes).
    Absolute,
    /// Multiclass hinge loss (classification).
    Hinge,
}

impl LossKind {
    /// Every loss, in the order menus list them.
    pub const ALL: &'static [LossKind] = &[
        LossKind::CrossEntropy,
        LossKind::Squared,
        LossKind::Absolute,
        LossKind::Hinge,
    ];

    /// The name flags and menus use.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::CrossEntropy => "cross-entropy",
            LossKind::Squared => "squared",
            LossKind::Absolute => "absolute",
            LossKind::Hinge => "hinge",
        }
    }

    /// A label for menus.
    pub fn label(self) -> &'static str {
        match self {
            LossKind::CrossEntropy => "Cross-entropy",
            LossKind::Squared => "Squared",
            LossKind::Absolute => "Absolute",
            LossKind::Hinge => "Hinge",
        }
    }

    /// Whether the loss needs class labels (it cannot train a regression).
    pub fn needs_classes(self) -> bool {
        matches!(self, LossKind::CrossEntropy | LossKind::Hinge)
    }
}

impl fmt::Display for LossKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LossKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let canonical = match s {
            "ce" | "cross_entropy" => "cross-entropy",
            "mse" | "quadratic" => "squared",
            "l1" => "absolute",
            other => other,
        };
        LossKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == canonical)
            .ok_or_else(|| UnknownName {
                given: s.to_string(),
                expected: LossKind::ALL
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The resolved settings of a training run, besides the model and data: what the
/// [`Trainer`](crate::Trainer) runs and what a checkpoint records. Build it from a
/// [`RunConfig`](crate::RunConfig), which owns the defaults, or directly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs to run (in total, counting resumed ones).
    pub epochs: usize,
    /// Samples per step: 1 is SGD, the dataset size is full-batch gradient descent.
    pub batch_size: usize,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// η₀, the schedule's starting point (the schedule owns the learning rate from there).
    pub lr: f64,
    /// Momentum for SGD/Nesterov.
    pub momentum: f64,
    /// Decoupled weight decay for AdamW.
    pub weight_decay: f64,
    /// L1 penalty λ₁.
    pub l1: f64,
    /// L2 penalty λ₂.
    pub l2: f64,
    /// Clip the global gradient norm to this, if set.
    pub clip: Option<f64>,
    /// The schedule.
    pub schedule: ScheduleKind,
    /// Linear warm-up, in optimizer steps.
    pub warmup: usize,
    /// Stop after this many epochs without a better validation loss.
    pub early_stopping: Option<usize>,
    /// With early stopping, end with the best epoch's weights.
    pub restore_best: bool,
    /// The run's seed (data order, dropout masks).
    pub seed: u64,
    /// The loss.
    pub loss: LossKind,
    /// Augmentation for image data: shift each training image by up to this many pixels
    /// (0 = none).
    #[serde(default)]
    pub augment_shift: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 64,
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 0.0,
            l1: 0.0,
            l2: 0.0,
            clip: None,
            schedule: ScheduleKind::Constant,
            warmup: 0,
            early_stopping: None,
            restore_best: true,
            seed: 0,
            loss: LossKind::CrossEntropy,
            augment_shift: 0,
        }
    }
}

/// `v` must be a finite number ≥ 0.
pub(crate) fn non_negative(field: Field, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("{v}: must be a non-negative number"),
        ))
    }
}

impl TrainConfig {
    /// Checks the numbers a user can get wrong.
    ///
    /// # Errors
    /// The first problem, naming its [`Field`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ConfigError::new(
                Field::Lr,
                format!("{}: the learning rate must be a positive number", self.lr),
            ));
        }
        if self.batch_size == 0 {
            return Err(ConfigError::new(Field::BatchSize, "0: must be at least 1"));
        }
        if self.epochs == 0 {
            return Err(ConfigError::new(Field::Epochs, "0: must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(ConfigError::new(
                Field::Momentum,
                format!("{}: must be in [0, 1)", self.momentum),
            ));
        }
        non_negative(Field::L1, self.l1)?;
        non_negative(Field::L2, self.l2)?;
        non_negative(Field::WeightDecay, self.weight_decay)?;
        if let Some(c) = self.clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(ConfigError::new(
                    Field::Clip,
                    format!("{c}: the clipping norm must be a positive number"),
                ));
            }
        }
        if self.early_stopping == Some(0) {
            return Err(ConfigError::new(
                Field::EarlyStopping,
                "0: the patience must be at least 1 epoch",
            ));
        }
        self.schedule
            .validate()
            .map_err(|e| ConfigError::new(Field::Schedule, format!("{}: {e}", self.schedule)))?;
        Ok(())
    }

    /// What the optimizer is built with.
    pub fn optimizer_settings(&self) -> OptimizerSettings {
        OptimizerSettings {
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            regularization: Regularization {
                l1: self.l1,
                l2: self.l2,
                exclude_bias: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_field() {
        let bad = |f: fn(&mut TrainConfig), field: Field| {
            let mut c = TrainConfig::default();
            f(&mut c);
            assert_eq!(c.validate().unwrap_err().field, field);
        };
        bad(|c| c.lr = -1.0, Field::Lr);
        bad(|c| c.lr = f64::NAN, Field::Lr);
        bad(|c| c.batch_size = 0, Field::BatchSize);
        bad(|c| c.epochs = 0, Field::Epochs);
        bad(|c| c.momentum = 1.0, Field::Momentum);
        bad(|c| c.l1 = -0.1, Field::L1);
        bad(|c| c.l2 = f64::INFINITY, Field::L2);
        bad(|c| c.clip = Some(0.0), Field::Clip);
        bad(|c| c.early_stopping = Some(0), Field::EarlyStopping);
        bad(
            |c| {
                c.schedule = ScheduleKind::Step {
                    epochs: 0,
                    gamma: 0.5,
                }
            },
            Field::Schedule,
        );
        assert_eq!(TrainConfig::default().validate(), Ok(()));
    }

    #[test]
    fn every_loss_name_parses_back() {
        for k in LossKind::ALL {
            assert_eq!(k.name().parse::<LossKind>().unwrap(), *k);
        }
        assert_eq!("mse".parse::<LossKind>().unwrap(), LossKind::Squared);
        assert!("huber".parse::<LossKind>().is_err());
    }
}
