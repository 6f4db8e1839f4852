//! # backprop-autograd
//!
//! Reverse-mode automatic differentiation over [`backprop_tensor::Tensor`].
//!
//! - **Define by run.** Every operation on a [`Var`] records its inputs and a backward rule
//!   as it runs; there is no separate graph-building step.
//! - **Gradients accumulate.** A value used several times receives the sum of its
//!   gradients; any DAG works, a residual `z + f(z)` included.
//! - **Pruned and freed.** Only operations that reach a variable requiring a gradient are
//!   recorded; [`no_grad`] records nothing. [`Var::backward`] consumes each op's backward
//!   rule as it runs it, freeing what the op saved, and drops each intermediate gradient as
//!   soon as it has been passed on.
//! - **Gradients out, not in.** `backward()` returns a [`Grads`] store keyed by [`VarId`];
//!   optimizers read from it. Variables are never mutated by backward.
//! - **Checked.** [`gradcheck`] compares analytic gradients with central differences in
//!   `f64`; every op of this crate passes it (see `tests/gradcheck_ops.rs`).
//!
//! ```
//! use backprop_autograd::Var;
//! use backprop_tensor::Tensor;
//! // y = relu(x·W + b), loss = mean(y²)
//! let x = Var::constant(Tensor::<f32>::from_vec(vec![1.0, -2.0, 0.5, 3.0], &[2, 2]));
//! let w = Var::parameter(Tensor::from_vec(vec![0.1, -0.3, 0.8, 0.2], &[2, 2]));
//! let b = Var::parameter(Tensor::from_vec(vec![0.0, 0.1], &[2]));
//! let y = x.matmul(&w).add(&b).relu();
//! let loss = y.mul(&y).mean();
//! let grads = loss.backward();
//! assert_eq!(grads.get(&w).unwrap().shape(), &[2, 2]);
//! assert!(grads.get(&x).is_none()); // constants get no gradient
//! ```

#![warn(missing_docs)]

mod backward;
mod gradcheck;
pub mod ops;
mod var;

pub use backward::Grads;
pub use gradcheck::{gradcheck, gradcheck_vars, GradcheckOptions, GradcheckReport, InputReport};
pub use var::{is_grad_disabled, no_grad, with_grad_state, NoGradGuard, Var, VarId};
