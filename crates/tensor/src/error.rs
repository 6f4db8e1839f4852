//! Errors of the `try_` forms of tensor operations.

use std::fmt;

/// What went wrong in a tensor operation. The panicking forms of each operation panic with
/// this error's message; the `try_` forms return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorError {
    /// Two shapes that the operation cannot combine.
    ShapeMismatch {
        /// The operation, e.g. `"add"` or `"matmul"`.
        op: &'static str,
        /// The left operand's shape.
        lhs: Vec<usize>,
        /// The right operand's shape.
        rhs: Vec<usize>,
        /// Why they do not fit.
        reason: String,
    },
    /// A single argument that does not fit the operation (an axis out of range, an index
    /// past the end, a data length that does not match the shape...).
    Invalid {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl TensorError {
    pub(crate) fn shapes(
        op: &'static str,
        lhs: &[usize],
        rhs: &[usize],
        reason: impl Into<String>,
    ) -> Self {
        TensorError::ShapeMismatch {
            op,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            reason: reason.into(),
        }
    }
    pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        TensorError::Invalid {
            op,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorError::ShapeMismatch {
                op,
                lhs,
                rhs,
                reason,
            } => {
                write!(f, "{op}: shapes {lhs:?} and {rhs:?} do not fit: {reason}")
            }
            TensorError::Invalid { op, reason } => write!(f, "{op}: {reason}"),
        }
    }
}

impl std::error::Error for TensorError {}

/// Result of a `try_` tensor operation.
pub type Result<T> = std::result::Result<T, TensorError>;

/// Unwraps a `try_` result, panicking with the error's message (no `Debug` noise).
#[track_caller]
pub(crate) fn or_panic<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
