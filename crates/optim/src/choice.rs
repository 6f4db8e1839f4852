//! The optimizers and learning-rate schedules a run can choose, listed once.
//!
//! Every user-facing name list reads these: the CLI's `--optimizer` and `--lr-schedule`
//! (parsing and help), the run configuration's defaults policy, and the playground's menus
//! (served to its page). Adding an optimizer means a variant here, its name, its default
//! learning rate and one arm in [`OptimizerKind::build`].
//!
//! ```
//! use backprop_optim::{OptimizerKind, ScheduleKind};
//! let k: OptimizerKind = "adam".parse().unwrap();
//! assert_eq!(k.default_lr(), 0.001);
//! assert!(OptimizerKind::ALL.iter().any(|o| o.name() == "nesterov"));
//! let s: ScheduleKind = "step:30:0.1".parse().unwrap();
//! assert_eq!(s, ScheduleKind::Step { epochs: 30, gamma: 0.1 });
//! ```

use std::fmt;
use std::str::FromStr;

use backprop_autograd::Var;
use backprop_tensor::Element;
use serde::{Deserialize, Serialize};

use crate::schedule::{
    Constant, Cosine, Exponential, InvSqrt, LrSchedule, ReduceOnPlateau, StepDecay, Warmup,
};
use crate::{Adagrad, Adam, AdamW, Nadam, Optimizer, Regularization, RmsProp, Sgd};

/// An optimizer, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    /// SGD, with momentum if the run's momentum is above 0.
    Sgd,
    /// SGD with Nesterov momentum.
    Nesterov,
    /// Adagrad.
    Adagrad,
    /// RMSprop.
    Rmsprop,
    /// Adam.
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
    /// NAdam: Adam with Nesterov momentum (Dozat 2016).
    Nadam,
}

/// The settings an optimizer is built with besides its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerSettings {
    /// The learning rate at step 0 (the schedule sets it at every step after).
    pub lr: f64,
    /// Momentum (SGD and Nesterov; ignored by the others).
    pub momentum: f64,
    /// Decoupled weight decay (AdamW; ignored by the others).
    pub weight_decay: f64,
    /// Coupled L1/L2 penalties.
    pub regularization: Regularization,
}

impl OptimizerKind {
    /// Every optimizer, in the order menus list them.
    pub const ALL: &'static [OptimizerKind] = &[
        OptimizerKind::Sgd,
        OptimizerKind::Nesterov,
        OptimizerKind::Adagrad,
        OptimizerKind::Rmsprop,
        OptimizerKind::Adam,
        OptimizerKind::Adamw,
        OptimizerKind::Nadam,
    ];

    /// The name flags, specs and menus use.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Nesterov => "nesterov",
            OptimizerKind::Adagrad => "adagrad",
            OptimizerKind::Rmsprop => "rmsprop",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adamw => "adamw",
            OptimizerKind::Nadam => "nadam",
        }
    }

    /// A label for menus.
    pub fn label(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "SGD",
            OptimizerKind::Nesterov => "Nesterov",
            OptimizerKind::Adagrad => "Adagrad",
            OptimizerKind::Rmsprop => "RMSprop",
            OptimizerKind::Adam => "Adam",
            OptimizerKind::Adamw => "AdamW",
            OptimizerKind::Nadam => "NAdam",
        }
    }

    /// The learning rate a run uses when none is given.
    pub fn default_lr(self) -> f64 {
        match self {
            OptimizerKind::Sgd | OptimizerKind::Nesterov => 0.05,
            OptimizerKind::Adam | OptimizerKind::Adamw => 0.001,
            OptimizerKind::Nadam => 0.002,
            OptimizerKind::Adagrad | OptimizerKind::Rmsprop => 0.01,
        }
    }

    /// Whether the run's momentum applies.
    pub fn uses_momentum(self) -> bool {
        matches!(self, OptimizerKind::Sgd | OptimizerKind::Nesterov)
    }

    /// Values of state it keeps per parameter at most (momentum, squared-gradient averages),
    /// for a memory estimate before anything is allocated.
    pub fn state_slots(self) -> usize {
        match self {
            OptimizerKind::Adam | OptimizerKind::Adamw | OptimizerKind::Nadam => 2,
            OptimizerKind::Rmsprop => 2,
            OptimizerKind::Sgd | OptimizerKind::Nesterov | OptimizerKind::Adagrad => 1,
        }
    }

    /// Whether the run's decoupled weight decay applies.
    pub fn uses_weight_decay(self) -> bool {
        matches!(self, OptimizerKind::Adamw)
    }

    /// The optimizer over `params`.
    pub fn build<E: Element>(
        self,
        params: Vec<(String, Var<E>)>,
        s: &OptimizerSettings,
    ) -> Box<dyn Optimizer<E>> {
        let reg = s.regularization;
        match self {
            OptimizerKind::Sgd => Box::new(
                Sgd::new(params, s.lr)
                    .momentum(s.momentum)
                    .regularization(reg),
            ),
            OptimizerKind::Nesterov => Box::new(
                Sgd::new(params, s.lr)
                    .momentum(s.momentum)
                    .nesterov(true)
                    .regularization(reg),
            ),
            OptimizerKind::Adagrad => Box::new(Adagrad::new(params, s.lr).regularization(reg)),
            OptimizerKind::Rmsprop => Box::new(RmsProp::new(params, s.lr).regularization(reg)),
            OptimizerKind::Adam => Box::new(Adam::new(params, s.lr).regularization(reg)),
            OptimizerKind::Adamw => {
                Box::new(AdamW::new(params, s.lr, s.weight_decay).regularization(reg))
            }
            OptimizerKind::Nadam => Box::new(Nadam::new(params, s.lr).regularization(reg)),
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not in a list, with the list.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownName {
    /// What was given.
    pub given: String,
    /// What is accepted, or the accepted form.
    pub expected: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: choose {}", self.given, self.expected)
    }
}
impl std::error::Error for UnknownName {}

impl FromStr for OptimizerKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = if s == "momentum" { "sgd" } else { s };
        OptimizerKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownName {
                given: s.to_string(),
                expected: OptimizerKind::ALL
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// A learning-rate schedule, in epochs (the trainer converts epochs to optimizer steps).
/// Its textual form is what `--lr-schedule` takes: `constant`, `step:EPOCHS:GAMMA`,
/// `exp:GAMMA`, `invsqrt`, `cosine`, `plateau:PATIENCE:FACTOR`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ScheduleKind {
    /// η₀ throughout.
    Constant,
    /// ×gamma every `epochs` epochs.
    Step {
        /// Epochs between decays (at least 1).
        epochs: usize,
        /// Factor, positive.
        gamma: f64,
    },
    /// ×gamma per epoch, applied smoothly per step.
    Exponential {
        /// Factor per epoch, in (0, 1].
        gamma: f64,
    },
    /// η₀/√(epoch+1), the lectures' decay.
    InvSqrt,
    /// Cosine annealing to 0 over the run.
    Cosine,
    /// ×factor when the validation loss has not improved for `patience` epochs.
    Plateau {
        /// Epochs without improvement tolerated (at least 1).
        patience: usize,
        /// Factor, in (0, 1).
        factor: f64,
    },
}

impl ScheduleKind {
    /// The forms `--lr-schedule` accepts, for help and errors.
    pub const FORMS: &'static [&'static str] = &[
        "constant",
        "step:EPOCHS:GAMMA",
        "exp:GAMMA",
        "invsqrt",
        "cosine",
        "plateau:PATIENCE:FACTOR",
    ];

    /// Checks the parameters.
    ///
    /// # Errors
    /// Names the parameter and its range.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64, open_top: bool| {
            // a factor per step may also grow (γ > 1); a plateau factor must shrink
            let ok = v.is_finite() && v > 0.0 && (!open_top || v < 1.0);
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{name} {v} must be {}",
                    if open_top {
                        "in (0, 1)"
                    } else {
                        "a positive number"
                    }
                ))
            }
        };
        match *self {
            ScheduleKind::Step { epochs, gamma } => {
                if epochs == 0 {
                    return Err("EPOCHS must be at least 1".into());
                }
                unit("GAMMA", gamma, false)
            }
            ScheduleKind::Exponential { gamma } => unit("GAMMA", gamma, false),
            ScheduleKind::Plateau { patience, factor } => {
                if patience == 0 {
                    return Err("PATIENCE must be at least 1".into());
                }
                unit("FACTOR", factor, true)
            }
            _ => Ok(()),
        }
    }

    /// The schedule over optimizer steps, for a run of `epochs` epochs of
    /// `steps_per_epoch` steps starting at `lr`, after `warmup` steps of linear warm-up.
    pub fn build(
        self,
        lr: f64,
        epochs: usize,
        steps_per_epoch: usize,
        warmup: usize,
    ) -> Box<dyn LrSchedule> {
        let spe = steps_per_epoch.max(1);
        let base: Box<dyn LrSchedule> = match self {
            ScheduleKind::Constant => Box::new(Constant(lr)),
            ScheduleKind::Step { epochs, gamma } => Box::new(StepDecay {
                lr,
                step_size: epochs.max(1) * spe,
                gamma,
            }),
            ScheduleKind::Exponential { gamma } => Box::new(Exponential {
                lr,
                gamma: gamma.powf(1.0 / spe as f64),
            }),
            ScheduleKind::InvSqrt => Box::new(PerEpoch {
                inner: InvSqrt(lr),
                steps_per_epoch: spe,
            }),
            ScheduleKind::Cosine => Box::new(Cosine {
                lr,
                min_lr: 0.0,
                period: epochs * spe,
            }),
            ScheduleKind::Plateau { patience, factor } => {
                Box::new(ReduceOnPlateau::new(lr, factor, patience))
            }
        };
        if warmup > 0 {
            Box::new(Warmup::new(warmup, base))
        } else {
            base
        }
    }
}

impl fmt::Display for ScheduleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleKind::Constant => f.write_str("constant"),
            ScheduleKind::Step { epochs, gamma } => write!(f, "step:{epochs}:{gamma}"),
            ScheduleKind::Exponential { gamma } => write!(f, "exp:{gamma}"),
            ScheduleKind::InvSqrt => f.write_str("invsqrt"),
            ScheduleKind::Cosine => f.write_str("cosine"),
            ScheduleKind::Plateau { patience, factor } => {
                write!(f, "plateau:{patience}:{factor}")
            }
        }
    }
}

impl FromStr for ScheduleKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: String| UnknownName {
            given: s.to_string(),
            expected: format!("{} ({why})", ScheduleKind::FORMS.join(", ")),
        };
        let parts: Vec<&str> = s.split(':').collect();
        let arity = |n: usize| {
            if parts.len() == n + 1 {
                Ok(())
            } else {
                Err(bad(format!("{} takes {n} number(s)", parts[0])))
            }
        };
        let num = |i: usize| -> Result<f64, UnknownName> {
            parts[i]
                .parse::<f64>()
                .map_err(|_| bad(format!("{:?} is not a number", parts[i])))
        };
        let count = |i: usize| -> Result<usize, UnknownName> {
            parts[i]
                .parse::<usize>()
                .map_err(|_| bad(format!("{:?} is not a whole number", parts[i])))
        };
        let kind = match parts[0] {
            "constant" => arity(0).map(|_| ScheduleKind::Constant)?,
            "invsqrt" | "inv-sqrt" => arity(0).map(|_| ScheduleKind::InvSqrt)?,
            "cosine" => arity(0).map(|_| ScheduleKind::Cosine)?,
            "step" => {
                arity(2)?;
                ScheduleKind::Step {
                    epochs: count(1)?,
                    gamma: num(2)?,
                }
            }
            "exp" | "exponential" => {
                arity(1)?;
                ScheduleKind::Exponential { gamma: num(1)? }
            }
            "plateau" => {
                arity(2)?;
                ScheduleKind::Plateau {
                    patience: count(1)?,
                    factor: num(2)?,
                }
            }
            _ => return Err(bad("unknown schedule".into())),
        };
        kind.validate().map_err(bad)?;
        Ok(kind)
    }
}

/// Steps an epoch-based schedule from a step count.
struct PerEpoch<S: LrSchedule> {
    inner: S,
    steps_per_epoch: usize,
}

impl<S: LrSchedule> LrSchedule for PerEpoch<S> {
    fn lr(&self, t: usize) -> f64 {
        self.inner.lr(t / self.steps_per_epoch)
    }
    fn describe(&self) -> String {
        format!("{} per epoch", self.inner.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back() {
        for k in OptimizerKind::ALL {
            assert_eq!(k.name().parse::<OptimizerKind>().unwrap(), *k);
            assert!(k.default_lr() > 0.0);
        }
        assert!("sgdd"
            .parse::<OptimizerKind>()
            .unwrap_err()
            .expected
            .contains("adamw"));
        for s in [
            "constant",
            "step:3:0.5",
            "exp:0.9",
            "invsqrt",
            "cosine",
            "plateau:2:0.5",
        ] {
            let k: ScheduleKind = s.parse().unwrap();
            assert_eq!(k.to_string().parse::<ScheduleKind>().unwrap(), k);
        }
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        for (s, why) in [
            ("step:0:0.5", "EPOCHS"),
            ("step:3", "takes 2"),
            ("step:3:0", "GAMMA"),
            ("step:x:0.5", "whole number"),
            ("exp:0", "GAMMA"),
            ("plateau:0:0.5", "PATIENCE"),
            ("plateau:2:1", "FACTOR"),
            ("cosine:3", "takes 0"),
            ("linear", "unknown"),
        ] {
            let e = s.parse::<ScheduleKind>().unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn the_schedule_owns_the_learning_rate() {
        let s = ScheduleKind::Cosine.build(0.1, 2, 5, 0);
        assert_eq!(s.lr(0), 0.1);
        assert!(s.lr(9) < 0.01);
        let w = ScheduleKind::Constant.build(0.2, 1, 1, 4);
        assert_eq!(w.lr(0), 0.05);
        let e = ScheduleKind::InvSqrt.build(1.0, 10, 4, 0);
        assert_eq!([e.lr(0), e.lr(3), e.lr(4)], [1.0, 1.0, 1.0 / 2f64.sqrt()]);
    }
}
