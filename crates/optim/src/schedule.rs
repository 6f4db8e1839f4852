//! Learning-rate schedules. `t` counts from 0 and is whatever unit the caller steps in
//! (optimizer steps or epochs); the trainer documents which it uses.
//!
//! | schedule | η(t) |
//! |---|---|
//! | [`Constant`] | η₀ |
//! | [`StepDecay`] | η₀·γ^⌊t/s⌋ |
//! | [`Exponential`] | η₀·γᵗ |
//! | [`InvSqrt`] | η₀/√(t+1) (the lectures' 1/√t decay) |
//! | [`Cosine`] | η_min + ½(η₀ − η_min)(1 + cos(π·min(t,T)/T)) |
//! | [`Warmup`] | η_inner(0)·(t+1)/w for t < w, then η_inner(t − w) |
//! | [`ReduceOnPlateau`] | η₀, times `factor` whenever the observed metric has not improved for `patience` observations |

/// A learning-rate schedule.
pub trait LrSchedule: Send {
    /// The learning rate at step (or epoch) `t`, counted from 0.
    fn lr(&self, t: usize) -> f64;
    /// Tells the schedule a validation metric (lower is better); only [`ReduceOnPlateau`]
    /// uses it.
    fn observe(&mut self, _metric: f64) {}
    /// A short description, e.g. `step(30, 0.1)`.
    fn describe(&self) -> String;
}

/// η(t) = η₀.
///
/// ```
/// use backprop_optim::schedule::{Constant, LrSchedule};
/// assert_eq!(Constant(0.1).lr(1000), 0.1);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Constant(pub f64);

impl LrSchedule for Constant {
    fn lr(&self, _t: usize) -> f64 {
        self.0
    }
    fn describe(&self) -> String {
        format!("constant({})", self.0)
    }
}

/// η(t) = η₀·γ^⌊t/step_size⌋.
///
/// ```
/// use backprop_optim::schedule::{LrSchedule, StepDecay};
/// let s = StepDecay { lr: 1.0, step_size: 2, gamma: 0.5 };
/// assert_eq!([s.lr(0), s.lr(1), s.lr(2), s.lr(4)], [1.0, 1.0, 0.5, 0.25]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StepDecay {
    /// η₀.
    pub lr: f64,
    /// Steps between decays.
    pub step_size: usize,
    /// Factor per decay.
    pub gamma: f64,
}

impl LrSchedule for StepDecay {
    fn lr(&self, t: usize) -> f64 {
        self.lr * self.gamma.powi((t / self.step_size.max(1)) as i32)
    }
    fn describe(&self) -> String {
        format!(
            "step({}, every {}, ×{})",
            self.lr, self.step_size, self.gamma
        )
    }
}

/// η(t) = η₀·γᵗ.
///
/// ```
/// use backprop_optim::schedule::{Exponential, LrSchedule};
/// let s = Exponential { lr: 1.0, gamma: 0.9 };
/// assert!((s.lr(2) - 0.81).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Exponential {
    /// η₀.
    pub lr: f64,
    /// Factor per step.
    pub gamma: f64,
}

impl LrSchedule for Exponential {
    fn lr(&self, t: usize) -> f64 {
        self.lr * self.gamma.powi(t as i32)
    }
    fn describe(&self) -> String {
        format!("exponential({}, ×{})", self.lr, self.gamma)
    }
}

/// The lectures' decay η(t) = η₀/√(t+1).
///
/// ```
/// use backprop_optim::schedule::{InvSqrt, LrSchedule};
/// let s = InvSqrt(0.1);
/// assert_eq!(s.lr(0), 0.1);
/// assert!((s.lr(3) - 0.05).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct InvSqrt(pub f64);

impl LrSchedule for InvSqrt {
    fn lr(&self, t: usize) -> f64 {
        self.0 / ((t + 1) as f64).sqrt()
    }
    fn describe(&self) -> String {
        format!("inv-sqrt({})", self.0)
    }
}

/// Cosine annealing (Loshchilov & Hutter 2017) from η₀ down to η_min over `period` steps,
/// then constant at η_min.
///
/// ```
/// use backprop_optim::schedule::{Cosine, LrSchedule};
/// let s = Cosine { lr: 1.0, min_lr: 0.0, period: 10 };
/// assert_eq!(s.lr(0), 1.0);
/// assert!((s.lr(5) - 0.5).abs() < 1e-12);
/// assert!(s.lr(10).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Cosine {
    /// η₀.
    pub lr: f64,
    /// η_min.
    pub min_lr: f64,
    /// T, the length of the descent.
    pub period: usize,
}

impl LrSchedule for Cosine {
    fn lr(&self, t: usize) -> f64 {
        let frac = t.min(self.period) as f64 / self.period.max(1) as f64;
        self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * frac).cos())
    }
    fn describe(&self) -> String {
        format!(
            "cosine({} → {}, {} steps)",
            self.lr, self.min_lr, self.period
        )
    }
}

/// Linear warm-up in front of any schedule: η(t) = η_inner(0)·(t+1)/w for t < w, then the
/// inner schedule shifted by w.
///
/// ```
/// use backprop_optim::schedule::{Constant, LrSchedule, Warmup};
/// let s = Warmup::new(4, Constant(0.8));
/// assert_eq!([s.lr(0), s.lr(1), s.lr(3), s.lr(4), s.lr(100)], [0.2, 0.4, 0.8, 0.8, 0.8]);
/// ```
pub struct Warmup<S: LrSchedule> {
    /// w, the warm-up length.
    pub steps: usize,
    /// The schedule after warm-up.
    pub inner: S,
}

impl<S: LrSchedule> Warmup<S> {
    /// `steps` of linear warm-up, then `inner`.
    pub fn new(steps: usize, inner: S) -> Self {
        Warmup { steps, inner }
    }
}

impl<S: LrSchedule> LrSchedule for Warmup<S> {
    fn lr(&self, t: usize) -> f64 {
        if t < self.steps {
            self.inner.lr(0) * (t + 1) as f64 / self.steps as f64
        } else {
            self.inner.lr(t - self.steps)
        }
    }
    fn observe(&mut self, metric: f64) {
        self.inner.observe(metric)
    }
    fn describe(&self) -> String {
        format!("warmup({}) then {}", self.steps, self.inner.describe())
    }
}

impl LrSchedule for Box<dyn LrSchedule> {
    fn lr(&self, t: usize) -> f64 {
        (**self).lr(t)
    }
    fn observe(&mut self, metric: f64) {
        (**self).observe(metric)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Multiplies η by `factor` when the observed metric (lower is better, e.g. validation
/// loss) has not improved by more than `threshold` (relative) for `patience` observations
/// in a row, never going below `min_lr`.
///
/// ```
/// use backprop_optim::schedule::{LrSchedule, ReduceOnPlateau};
/// let mut s = ReduceOnPlateau::new(1.0, 0.5, 1);
/// s.observe(1.0); // best so far
/// s.observe(1.0); // one observation without improvement: patience 1 exhausted
/// assert_eq!(s.lr(0), 1.0);
/// s.observe(1.0);
/// assert_eq!(s.lr(0), 0.5);
/// ```
#[derive(Debug, Clone)]
pub struct ReduceOnPlateau {
    lr: f64,
    factor: f64,
    patience: usize,
    threshold: f64,
    min_lr: f64,
    best: f64,
    bad: usize,
}

impl ReduceOnPlateau {
    /// Starts at `lr`; threshold 1e-4, min_lr 0.
    pub fn new(lr: f64, factor: f64, patience: usize) -> Self {
        ReduceOnPlateau {
            lr,
            factor,
            patience,
            threshold: 1e-4,
            min_lr: 0.0,
            best: f64::INFINITY,
            bad: 0,
        }
    }
    /// Sets the smallest learning rate.
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }
}

impl LrSchedule for ReduceOnPlateau {
    fn lr(&self, _t: usize) -> f64 {
        self.lr
    }
    fn observe(&mut self, metric: f64) {
        if metric < self.best * (1.0 - self.threshold) {
            self.best = metric;
            self.bad = 0;
        } else {
            self.bad += 1;
            if self.bad > self.patience {
                self.lr = (self.lr * self.factor).max(self.min_lr);
                self.bad = 0;
            }
        }
    }
    fn describe(&self) -> String {
        format!(
            "reduce-on-plateau(×{}, patience {})",
            self.factor, self.patience
        )
    }
}
