//! Differentiable operations on [`Var`](crate::Var), grouped by family: each op's forward
//! and its backward rule sit together, a few lines each. (The design guide's habit is one op
//! per file; the rules here are short enough that a family per file reads better, and each
//! op's gradient test lives in `tests/gradcheck_ops.rs`.)
//!
//! Conventions, the same in every file:
//! - backward rules receive `g` (the output's gradient) and `needs` (which inputs need one);
//! - an input used twice gets the sum of both contributions (the engine accumulates);
//! - a broadcast input's gradient is summed back to its shape with `sum_to`.

pub mod arith;
pub mod conv;
pub mod matmul;
pub mod movement;
pub mod norm;
pub mod recurrent;
pub mod reduce;
pub mod softmax;
pub mod unary;
