//! The classic neurons: the McCulloch–Pitts threshold unit (1943) and Rosenblatt's
//! perceptron (1958) with its learning rule. They work on plain `f64` slices: they predate
//! gradients, and their step output has none.

/// A McCulloch–Pitts threshold unit: it fires (outputs 1) when the weighted sum of its
/// inputs reaches the threshold θ, `y = 1 if Σ wᵢxᵢ ≥ θ else 0`.
///
/// ```
/// use backprop_nn::classic::ThresholdUnit;
/// let and = ThresholdUnit::new(vec![1.0, 1.0], 2.0);
/// assert_eq!([and.fire(&[0.0, 0.0]), and.fire(&[0.0, 1.0]), and.fire(&[1.0, 0.0]), and.fire(&[1.0, 1.0])], [0.0, 0.0, 0.0, 1.0]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdUnit {
    /// One weight per input.
    pub weights: Vec<f64>,
    /// θ.
    pub threshold: f64,
}

impl ThresholdUnit {
    /// A unit with the given weights and threshold.
    pub fn new(weights: Vec<f64>, threshold: f64) -> Self {
        ThresholdUnit { weights, threshold }
    }

    /// 1 if `Σ wᵢxᵢ ≥ θ`, else 0.
    ///
    /// # Panics
    /// If the input length differs from the number of weights.
    pub fn fire(&self, x: &[f64]) -> f64 {
        assert_eq!(
            x.len(),
            self.weights.len(),
            "ThresholdUnit: {} inputs for {} weights",
            x.len(),
            self.weights.len()
        );
        let s: f64 = self.weights.iter().zip(x).map(|(w, x)| w * x).sum();
        if s >= self.threshold {
            1.0
        } else {
            0.0
        }
    }
}

/// Rosenblatt's perceptron: `ŷ = 1 if w·x + b > 0 else 0`, trained one sample at a time by
/// `w ← w + η(y − ŷ)x`, `b ← b + η(y − ŷ)`. On linearly separable data it converges (the
/// perceptron convergence theorem); on XOR it cannot.
///
/// ```
/// use backprop_nn::classic::Perceptron;
/// let x = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
/// let mut p = Perceptron::zeros(2);
/// let report = p.train(&x, &[0.0, 1.0, 1.0, 1.0], 0.1, 100); // OR
/// assert!(report.converged);
/// assert_eq!(x.iter().map(|v| p.predict(v)).collect::<Vec<_>>(), vec![0.0, 1.0, 1.0, 1.0]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Perceptron {
    /// w.
    pub weights: Vec<f64>,
    /// b.
    pub bias: f64,
}

/// What a perceptron's training did.
#[derive(Debug, Clone, PartialEq)]
pub struct PerceptronReport {
    /// True if an epoch passed with no error.
    pub converged: bool,
    /// Epochs run (including the error-free one, if any).
    pub epochs: usize,
    /// Misclassified samples in each epoch.
    pub errors_per_epoch: Vec<usize>,
}

impl std::fmt::Display for PerceptronReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.converged {
            write!(
                f,
                "converged after {} epochs (errors per epoch: {:?})",
                self.epochs, self.errors_per_epoch
            )
        } else {
            write!(
                f,
                "did not converge: stopped at the limit of {} epochs with {} errors in the last (the data is not linearly separable, or needs more epochs)",
                self.epochs,
                self.errors_per_epoch.last().copied().unwrap_or(0)
            )
        }
    }
}

impl Perceptron {
    /// All weights and the bias zero.
    pub fn zeros(inputs: usize) -> Self {
        Perceptron {
            weights: vec![0.0; inputs],
            bias: 0.0,
        }
    }

    /// Hand-set weights and bias.
    pub fn new(weights: Vec<f64>, bias: f64) -> Self {
        Perceptron { weights, bias }
    }

    /// `w·x + b`.
    pub fn net(&self, x: &[f64]) -> f64 {
        assert_eq!(
            x.len(),
            self.weights.len(),
            "Perceptron: {} inputs for {} weights",
            x.len(),
            self.weights.len()
        );
        self.weights.iter().zip(x).map(|(w, x)| w * x).sum::<f64>() + self.bias
    }

    /// 1 if `w·x + b > 0`, else 0.
    pub fn predict(&self, x: &[f64]) -> f64 {
        if self.net(x) > 0.0 {
            1.0
        } else {
            0.0
        }
    }

    /// One pass of Rosenblatt's rule over the data, in order; returns the number of
    /// samples that were misclassified (and so caused an update).
    pub fn epoch(&mut self, xs: &[impl AsRef<[f64]>], ys: &[f64], eta: f64) -> usize {
        let mut errors = 0;
        for (x, &y) in xs.iter().zip(ys) {
            let x = x.as_ref();
            let e = y - self.predict(x);
            if e != 0.0 {
                errors += 1;
                for (w, xi) in self.weights.iter_mut().zip(x) {
                    *w += eta * e * xi;
                }
                self.bias += eta * e;
            }
        }
        errors
    }

    /// Trains until an epoch has no error or `max_epochs` is reached.
    pub fn train(
        &mut self,
        xs: &[impl AsRef<[f64]>],
        ys: &[f64],
        eta: f64,
        max_epochs: usize,
    ) -> PerceptronReport {
        let mut errors_per_epoch = Vec::new();
        for _ in 0..max_epochs {
            let e = self.epoch(xs, ys, eta);
            errors_per_epoch.push(e);
            if e == 0 {
                return PerceptronReport {
                    converged: true,
                    epochs: errors_per_epoch.len(),
                    errors_per_epoch,
                };
            }
        }
        PerceptronReport {
            converged: false,
            epochs: errors_per_epoch.len(),
            errors_per_epoch,
        }
    }
}

/// The four inputs of a two-input truth table, in the order (0,0), (0,1), (1,0), (1,1).
pub const TRUTH_TABLE_INPUTS: [[f64; 2]; 4] = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];

/// Hand-set perceptrons for the gates: AND `w = (1, 1), b = −1.5`; OR `w = (1, 1),
/// b = −0.5`; NAND `w = (−1, −1), b = 1.5`.
pub fn hand_set_gate(name: &str) -> Option<Perceptron> {
    match name {
        "and" => Some(Perceptron::new(vec![1.0, 1.0], -1.5)),
        "or" => Some(Perceptron::new(vec![1.0, 1.0], -0.5)),
        "nand" => Some(Perceptron::new(vec![-1.0, -1.0], 1.5)),
        _ => None,
    }
}
