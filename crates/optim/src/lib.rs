//! # backprop-optim
//!
//! Optimizers that read a [`Grads`](backprop_autograd::Grads) store and update parameters
//! in place ([`Sgd`] with momentum and Nesterov, [`Adagrad`], [`RmsProp`], [`Adam`],
//! [`AdamW`]), coupled L1/L2 penalties ([`Regularization`]), gradient clipping ([`clip`]),
//! and learning-rate schedules ([`schedule`]).
//!
//! ```
//! use backprop_autograd::Var;
//! use backprop_optim::{Optimizer, Sgd};
//! use backprop_tensor::Tensor;
//! // minimise L(θ) = ½θ²: gradient θ
//! let theta = Var::parameter(Tensor::<f64>::from_vec(vec![1.0], &[1]));
//! let mut opt = Sgd::new(vec![("theta".into(), theta.clone())], 0.1);
//! for _ in 0..3 {
//!     let g = theta.mul(&theta).mul_scalar(0.5).sum().backward();
//!     opt.step(&g);
//! }
//! assert!((theta.item() - 0.729).abs() < 1e-12); // 0.9³
//! ```

#![warn(missing_docs)]

mod choice;
pub mod clip;
mod optimizer;
pub mod schedule;

pub use choice::{OptimizerKind, OptimizerSettings, ScheduleKind, UnknownName};
pub use optimizer::{blend, Adagrad, Adam, AdamW, Nadam, Optimizer, Regularization, RmsProp, Sgd};
pub use schedule::LrSchedule;
