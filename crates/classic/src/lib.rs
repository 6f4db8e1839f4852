//! The classic networks the course lists beside the perceptron, each with the algorithms that
//! made it known rather than backpropagation:
//!
//! - [`som`]: Kohonen's self-organizing maps (1982): rectangular and hexagonal grids, four
//!   neighbourhoods, decay schedules, online and batch training, and the map's diagnostics
//!   (quantization and topographic error, U-matrix, hit map, labels map).
//! - [`esn`]: Jaeger's echo state networks (2001): a sparse random reservoir, a ridge readout
//!   in closed form, closed-loop generation; the Mackey-Glass and NARMA10 series.
//! - [`hopfield`]: Hopfield networks (1982) with Hebbian and pseudo-inverse storage, their
//!   energy, and modern (continuous) Hopfield retrieval (Ramsauer et al. 2020).
//! - [`rbf`]: radial basis function networks (Broomhead & Lowe 1988) trained in two stages:
//!   k-means++ centres, a width heuristic, ridge output weights.
//! - [`plot`]: the pictures of the above (PNG).
//!
//! Everything works on plain row-major slices; the dense products go through
//! [`backprop_tensor::Tensor::matmul`] (a GEMM crate), the rest through rayon where it pays.
//! Settings a user supplies are validated by `validate()` methods returning a
//! [`ClassicError`] that names the setting.

pub mod esn;
pub mod hopfield;
pub mod linalg;
pub mod plot;
pub mod rbf;
pub mod som;

use std::fmt;

/// A setting out of range: which one and why, e.g. `sigma: 0: must be positive`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicError {
    /// The setting's name as a flag would spell it, without dashes (`sigma`, `grid`).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ClassicError {
    /// An error about `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        ClassicError {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for ClassicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ClassicError {}

/// Checks that `v` is finite and positive.
pub(crate) fn positive(field: &'static str, v: f64) -> Result<(), ClassicError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(ClassicError::new(
            field,
            format!("{v}: must be a positive number"),
        ))
    }
}

/// Checks that `v` is finite and at least zero.
pub(crate) fn non_negative(field: &'static str, v: f64) -> Result<(), ClassicError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(ClassicError::new(
            field,
            format!("{v}: must be a number ≥ 0"),
        ))
    }
}
