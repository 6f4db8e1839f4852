//! # backprop-train
//!
//! Training on top of the library: model specs ([`spec`]), the [`Trainer`] loop with
//! validation, schedules, early stopping, a divergence guard and exact resume, metrics
//! ([`metrics`]), warnings for a run that did not learn ([`diagnose`]), safetensors
//! [`checkpoint`]s written atomically, [`history`] as CSV and JSON, and [`plot`]s (training
//! curves, decision boundaries), and [`graph`]: drawings of the computation graph with its
//! values and gradients.

#![warn(missing_docs)]

pub mod checkpoint;
mod config;
pub mod diagnose;
pub mod diagnostics;
pub mod graph;
pub mod history;
pub mod import;
pub mod lr_find;
pub mod metrics;
pub mod parallel;
pub mod plot;
pub mod run;
pub mod saved;
pub mod spec;
pub mod trace;
pub mod trace_bptt;
mod trainer;

pub use backprop_optim::{OptimizerKind, ScheduleKind};
pub use checkpoint::Checkpoint;
pub use config::{ConfigError, Field, LossKind, TrainConfig};
pub use history::{EpochRecord, History};
pub use parallel::{Collective, DataParallel};
pub use run::{
    DataConfig, DataSource, LoadedData, ModelChoice, PreparedRun, RunConfig, SequenceTask,
};
pub use saved::SavedModel;
pub use spec::{LayerSpec, ModelSpec, SpecError};
pub use trainer::{
    batch_loss, evaluate, load_weights, predict_outputs, predict_proba, regression_scores,
    EpochOutcome, EpochStats, Evaluation, Observer, Quiet, StepProbe, Stop, Trainer,
};
