#![doc = include_str!("../README.md")]
//!
//! ## Crate map
//!
//! This crate re-exports the layers of the workspace under short names, so one dependency
//! gives the whole library:
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`tensor`] | `backprop-tensor` | storage, shapes, CPU kernels |
//! | [`autograd`] | `backprop-autograd` | `Var`, backward, `no_grad`, gradcheck |
//! | [`nn`] | `backprop-nn` | `Module`, layers, activations, losses, initializers, summary |
//! | [`optim`] | `backprop-optim` | optimizers, regularization, clipping, schedules |
//! | [`data`] | `backprop-data` | IDX, CSV and synthetic datasets, batching |
//! | [`train`] | `backprop-train` | model specs, the trainer, checkpoints, history, plots |
//! | [`classic`] | `backprop-classic` | self-organizing maps, echo state networks, Hopfield and RBF networks |
//! | [`onnx`] | `backprop-onnx` | ONNX export of a network (prost-encoded protobuf) |

pub use backprop_autograd as autograd;
pub use backprop_classic as classic;
pub use backprop_data as data;
pub use backprop_nn as nn;
pub use backprop_onnx as onnx;
pub use backprop_optim as optim;
pub use backprop_tensor as tensor;
pub use backprop_train as train;

pub use backprop_autograd::{gradcheck, no_grad, Grads, Var};
pub use backprop_tensor::{Rng, Tensor};
