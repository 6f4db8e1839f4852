//! Echo state networks (Jaeger 2001): a fixed, sparse, random recurrent "reservoir" driven
//! by the input, whose states a linear readout maps to the output. Only the readout is
//! trained, by ridge regression in closed form.
//!
//! # The update (leaky-integrator units, as reservoirpy's `Reservoir`)
//!
//! `x(t) = (1 − a)·x(t−1) + a·tanh(W·x(t−1) + W_in·u(t) + b)`, `y(t) = W_out·[1; x(t)]`
//!
//! with leak rate `a`, `W` (`units × units`) sparse normal scaled to the requested spectral
//! radius, `W_in` sparse ±`input_scaling`, `b` uniform in ±`bias_scaling`.
//!
//! # Shapes
//! Series are row-major `T × features` f64 slices.
//!
//! ```
//! use backprop_classic::esn::{mackey_glass, nrmse, Esn, EsnConfig};
//! let s = mackey_glass(1200, 17.0, 0);
//! let (u, y) = (&s[..999], &s[1..1000]);
//! let mut esn = Esn::new(&EsnConfig::default(), 1).unwrap();
//! esn.fit(u, y, 1).unwrap();
//! let pred = esn.predict(&s[999..1199]);
//! assert!(nrmse(&s[1000..1200], &pred) < 0.05);
//! ```

use backprop_tensor::Rng;

use crate::linalg::{ridge, Csr};
use crate::{non_negative, positive, ClassicError};

/// The reservoir's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EsnConfig {
    /// Reservoir units.
    pub units: usize,
    /// The spectral radius `W` is scaled to.
    pub spectral_radius: f64,
    /// Leak rate `a` in (0, 1].
    pub leak_rate: f64,
    /// Input weights are ±this.
    pub input_scaling: f64,
    /// Fraction of non-zero recurrent weights.
    pub connectivity: f64,
    /// Fraction of non-zero input weights.
    pub input_connectivity: f64,
    /// Biases are uniform in ±this (0: none).
    pub bias_scaling: f64,
    /// The readout's ridge (Tikhonov) coefficient.
    pub ridge: f64,
    /// Initial states left out of the fit.
    pub washout: usize,
    /// Seeds all the random weights.
    pub seed: u64,
}

impl Default for EsnConfig {
    /// reservoirpy's README example: 100 units, spectral radius 1.25, leak 0.3, ridge 1e-5,
    /// 100 steps of washout, with reservoirpy's connectivities (0.1) and unit input scaling.
    fn default() -> Self {
        EsnConfig {
            units: 100,
            spectral_radius: 1.25,
            leak_rate: 0.3,
            input_scaling: 1.0,
            connectivity: 0.1,
            input_connectivity: 0.1,
            bias_scaling: 0.0,
            ridge: 1e-5,
            washout: 100,
            seed: 0,
        }
    }
}

/// The largest reservoir accepted.
pub const MAX_UNITS: usize = 20_000;

impl EsnConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// The first bad one, named as the CLI spells it.
    pub fn validate(&self) -> Result<(), ClassicError> {
        if self.units == 0 || self.units > MAX_UNITS {
            return Err(ClassicError::new(
                "units",
                format!("{}: must be in 1..={MAX_UNITS}", self.units),
            ));
        }
        non_negative("spectral-radius", self.spectral_radius)?;
        positive("leak-rate", self.leak_rate)?;
        if self.leak_rate > 1.0 {
            return Err(ClassicError::new(
                "leak-rate",
                format!("{}: must be at most 1", self.leak_rate),
            ));
        }
        non_negative("input-scaling", self.input_scaling)?;
        non_negative("bias-scaling", self.bias_scaling)?;
        non_negative("ridge", self.ridge)?;
        for (f, v) in [
            ("connectivity", self.connectivity),
            ("input-connectivity", self.input_connectivity),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(ClassicError::new(f, format!("{v}: must be in (0, 1]")));
            }
        }
        Ok(())
    }
}

/// An echo state network: the reservoir, its current state and (once fitted) the readout.
#[derive(Debug, Clone)]
pub struct Esn {
    config: EsnConfig,
    inputs: usize,
    w: Csr,
    /// `units × inputs`.
    w_in: Vec<f64>,
    bias: Vec<f64>,
    /// `outputs × (1 + units)`: bias column first.
    w_out: Vec<f64>,
    outputs: usize,
    state: Vec<f64>,
}

/// `k` distinct indices below `n`, by partial Fisher–Yates.
fn choose(n: usize, k: usize, rng: &mut Rng, scratch: &mut Vec<usize>) -> Vec<usize> {
    scratch.clear();
    scratch.extend(0..n);
    for i in 0..k.min(n) {
        let j = i + rng.below(n - i);
        scratch.swap(i, j);
    }
    let mut out = scratch[..k.min(n)].to_vec();
    out.sort_unstable();
    out
}

impl Esn {
    /// A reservoir for `inputs` input features, drawn from the seed.
    ///
    /// # Errors
    /// A bad setting or `inputs` zero.
    pub fn new(config: &EsnConfig, inputs: usize) -> Result<Esn, ClassicError> {
        config.validate()?;
        if inputs == 0 {
            return Err(ClassicError::new("series", "no input features"));
        }
        let n = config.units;
        let mut rng = Rng::seed(config.seed);
        let mut scratch = Vec::new();
        let per_row = ((config.connectivity * n as f64).round() as usize).clamp(1, n);
        let mut w = Csr {
            n,
            ptr: vec![0],
            cols: Vec::new(),
            vals: Vec::new(),
        };
        for _ in 0..n {
            for c in choose(n, per_row, &mut rng, &mut scratch) {
                w.cols.push(c);
                w.vals.push(rng.normal());
            }
            w.ptr.push(w.cols.len());
        }
        let rho = w.spectral_radius(config.seed);
        if rho > 1e-12 {
            w.vals
                .iter_mut()
                .for_each(|v| *v *= config.spectral_radius / rho);
        }
        let in_rows = ((config.input_connectivity * n as f64).round() as usize).clamp(1, n);
        let mut w_in = vec![0.0; n * inputs];
        for f in 0..inputs {
            for r in choose(n, in_rows, &mut rng, &mut scratch) {
                let sign = if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
                w_in[r * inputs + f] = sign * config.input_scaling;
            }
        }
        let bias = (0..n)
            .map(|_| rng.uniform_range(-1.0, 1.0) * config.bias_scaling)
            .collect();
        Ok(Esn {
            config: config.clone(),
            inputs,
            w,
            w_in,
            bias,
            w_out: Vec::new(),
            outputs: 0,
            state: vec![0.0; n],
        })
    }

    /// The settings.
    pub fn config(&self) -> &EsnConfig {
        &self.config
    }
    /// The reservoir's current state.
    pub fn state(&self) -> &[f64] {
        &self.state
    }
    /// The recurrent weights.
    pub fn reservoir(&self) -> &Csr {
        &self.w
    }
    /// Sets the state to zero.
    pub fn reset(&mut self) {
        self.state.iter_mut().for_each(|s| *s = 0.0);
    }

    /// One step of the reservoir driven by input `u` (`inputs` values).
    pub fn step(&mut self, u: &[f64], pre: &mut [f64]) {
        let a = self.config.leak_rate;
        self.w.matvec_into(&self.state, pre);
        for (i, p) in pre.iter_mut().enumerate() {
            let drive: f64 = self.w_in[i * self.inputs..(i + 1) * self.inputs]
                .iter()
                .zip(u)
                .map(|(w, u)| w * u)
                .sum();
            let s = &mut self.state[i];
            *s = (1.0 - a) * *s + a * (*p + drive + self.bias[i]).tanh();
        }
    }

    /// Drives the reservoir with the series `u` (`T × inputs`) from its current state and
    /// returns the states (`T × units`).
    ///
    /// # Panics
    /// If `u` is not whole steps.
    pub fn run(&mut self, u: &[f64]) -> Vec<f64> {
        assert_eq!(
            u.len() % self.inputs,
            0,
            "Esn::run: the series is not whole steps"
        );
        let n = self.config.units;
        let mut pre = vec![0.0; n];
        let mut states = Vec::with_capacity(u.len() / self.inputs * n);
        for x in u.chunks(self.inputs) {
            self.step(x, &mut pre);
            states.extend_from_slice(&self.state);
        }
        states
    }

    /// Teacher-forced training: runs the reservoir on `u` from its current state, drops the
    /// first `washout` states and fits `W_out` to `y` (`T × outputs`) by ridge regression
    /// on `[1; x(t)]` (the bias is not penalised). The state is left at the end of `u`.
    ///
    /// # Errors
    /// Mismatched lengths, too few steps after the washout, or a singular system.
    pub fn fit(&mut self, u: &[f64], y: &[f64], outputs: usize) -> Result<(), ClassicError> {
        let steps = self.check_series(u)?;
        if outputs == 0 || y.len() != steps * outputs {
            return Err(ClassicError::new(
                "series",
                format!("{} targets for {steps} steps of {outputs} outputs", y.len()),
            ));
        }
        let wash = self.config.washout;
        if steps <= wash + 1 {
            return Err(ClassicError::new(
                "washout",
                format!("{wash}: leaves no steps of the {steps} to fit"),
            ));
        }
        let states = self.run(u);
        let (n, p) = (self.config.units, self.config.units + 1);
        let rows = steps - wash;
        let mut a = Vec::with_capacity(rows * p);
        for t in wash..steps {
            a.push(1.0);
            a.extend_from_slice(&states[t * n..(t + 1) * n]);
        }
        let w = ridge(
            &a,
            &y[wash * outputs..],
            rows,
            p,
            outputs,
            self.config.ridge,
            Some(0),
        )?;
        // ridge returns p × outputs; store outputs × p
        self.w_out = (0..outputs)
            .flat_map(|o| (0..p).map(move |j| (o, j)))
            .map(|(o, j)| w[j * outputs + o])
            .collect();
        self.outputs = outputs;
        Ok(())
    }

    fn check_series(&self, u: &[f64]) -> Result<usize, ClassicError> {
        if u.is_empty() || u.len() % self.inputs != 0 {
            return Err(ClassicError::new(
                "series",
                format!(
                    "{} values are not whole steps of {} inputs",
                    u.len(),
                    self.inputs
                ),
            ));
        }
        if u.iter().any(|v| !v.is_finite()) {
            return Err(ClassicError::new(
                "series",
                "the series holds NaN or infinite values",
            ));
        }
        Ok(u.len() / self.inputs)
    }

    /// The readout of the current state.
    fn readout(&self, out: &mut [f64]) {
        let p = self.config.units + 1;
        for (o, v) in out.iter_mut().enumerate() {
            let w = &self.w_out[o * p..(o + 1) * p];
            *v = w[0]
                + w[1..]
                    .iter()
                    .zip(&self.state)
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
        }
    }

    /// Drives the reservoir with `u` from its current state and returns the readout at every
    /// step (`T × outputs`).
    ///
    /// # Panics
    /// If the readout was not fitted.
    pub fn predict(&mut self, u: &[f64]) -> Vec<f64> {
        assert!(self.outputs > 0, "Esn::predict before fit");
        let mut pre = vec![0.0; self.config.units];
        let mut out = vec![0.0; self.outputs];
        let mut all = Vec::with_capacity(u.len() / self.inputs * self.outputs);
        for x in u.chunks(self.inputs) {
            self.step(x, &mut pre);
            self.readout(&mut out);
            all.extend_from_slice(&out);
        }
        all
    }

    /// Closed-loop generation: feeds each output back as the next input for `steps` steps,
    /// starting from input `first` (usually the last true value).
    ///
    /// # Panics
    /// If the readout was not fitted or inputs and outputs differ in number.
    pub fn generate(&mut self, first: &[f64], steps: usize) -> Vec<f64> {
        assert!(
            self.outputs == self.inputs,
            "Esn::generate needs as many outputs as inputs"
        );
        let mut u = first.to_vec();
        let mut pre = vec![0.0; self.config.units];
        let mut all = Vec::with_capacity(steps * self.outputs);
        for _ in 0..steps {
            self.step(&u, &mut pre);
            self.readout(&mut u);
            all.extend_from_slice(&u);
        }
        all
    }
}

/// The Mackey-Glass delay differential equation `dx/dt = 0.2·x(t−τ)/(1 + x(t−τ)¹⁰) − 0.1·x(t)`
/// integrated by classic RK4 with step 0.1 (the delayed term at the half step is the mean
/// of the two stored neighbours), sampled every time unit; the history before t = 0 is 1.2
/// plus a small seeded perturbation. τ = 17 gives the usual mildly chaotic series in about
/// [0.4, 1.4].
pub fn mackey_glass(n: usize, tau: f64, seed: u64) -> Vec<f64> {
    let h = 0.1;
    let sub = 10; // steps per time unit
    let lag = (tau / h).round().max(1.0) as usize;
    let mut rng = Rng::seed(seed);
    let mut x: Vec<f64> = (0..=lag)
        .map(|_| 1.2 + 0.02 * (rng.uniform() - 0.5))
        .collect();
    let f = |x: f64, xt: f64| 0.2 * xt / (1.0 + xt.powi(10)) - 0.1 * x;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        for _ in 0..sub {
            let k = x.len() - 1;
            let (xt0, xt1) = (x[k - lag], x[k + 1 - lag]);
            let xth = 0.5 * (xt0 + xt1);
            let xc = x[k];
            let k1 = f(xc, xt0);
            let k2 = f(xc + 0.5 * h * k1, xth);
            let k3 = f(xc + 0.5 * h * k2, xth);
            let k4 = f(xc + h * k3, xt1);
            x.push(xc + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4));
        }
        out.push(*x.last().expect("non-empty"));
    }
    out
}

/// NARMA10 (Atiya & Parlos 2000): inputs `u(t)` uniform in [0, 0.5] and
/// `y(t+1) = 0.3·y(t) + 0.05·y(t)·Σ_{i=0..9} y(t−i) + 1.5·u(t−9)·u(t) + 0.1`.
/// Returns `(u, y)`, each `n` long.
pub fn narma10(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::seed(seed);
    let u: Vec<f64> = (0..n).map(|_| 0.5 * rng.uniform()).collect();
    let mut y = vec![0.0; n];
    for t in 9..n.saturating_sub(1) {
        let s: f64 = y[t - 9..=t].iter().sum();
        y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * s + 1.5 * u[t - 9] * u[t] + 0.1;
    }
    (u, y)
}

/// Normalised root mean square error: `RMSE / std(target)` (0: perfect; 1: no better than
/// predicting the mean).
///
/// # Panics
/// If the lengths differ.
pub fn nrmse(target: &[f64], pred: &[f64]) -> f64 {
    assert_eq!(target.len(), pred.len(), "nrmse: lengths differ");
    let n = target.len().max(1) as f64;
    let mean = target.iter().sum::<f64>() / n;
    let var = target.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / n;
    let mse = target
        .iter()
        .zip(pred)
        .map(|(t, p)| (t - p).powi(2))
        .sum::<f64>()
        / n;
    (mse / var).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reservoir_has_the_requested_spectral_radius_and_sparsity() {
        let cfg = EsnConfig {
            units: 60,
            spectral_radius: 0.9,
            ..EsnConfig::default()
        };
        let esn = Esn::new(&cfg, 2).unwrap();
        assert_eq!(esn.reservoir().vals.len(), 60 * 6);
        assert!((esn.reservoir().spectral_radius(99) - 0.9).abs() < 0.01);
        // the seed fixes everything
        let again = Esn::new(&cfg, 2).unwrap();
        assert_eq!(esn.w_in, again.w_in);
        assert_eq!(esn.reservoir(), again.reservoir());
    }

    #[test]
    fn one_step_by_hand() {
        // one unit: W = [ρ] scaled to 0.5, W_in = ±1, no bias, leak 0.5
        let cfg = EsnConfig {
            units: 1,
            spectral_radius: 0.5,
            leak_rate: 0.5,
            ..EsnConfig::default()
        };
        let mut esn = Esn::new(&cfg, 1).unwrap();
        let w = esn.reservoir().vals[0];
        assert!((w.abs() - 0.5).abs() < 1e-9);
        let win = esn.w_in[0];
        let s = esn.run(&[0.4, -0.2]);
        let x1 = 0.5 * (win * 0.4f64).tanh();
        let x2 = 0.5 * x1 + 0.5 * (w * x1 + win * -0.2).tanh();
        assert!((s[0] - x1).abs() < 1e-12 && (s[1] - x2).abs() < 1e-12);
    }

    #[test]
    fn mackey_glass_and_narma_look_right() {
        let s = mackey_glass(1500, 17.0, 0);
        let (lo, hi) = s[300..]
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(lo > 0.2 && lo < 0.6 && hi > 1.1 && hi < 1.5, "{lo} {hi}");
        let (u, y) = narma10(500, 1);
        assert!(u.iter().all(|&v| (0.0..0.5).contains(&v)));
        // y(11) from its definition
        let s10: f64 = y[1..=10].iter().sum();
        assert!(
            (y[11] - (0.3 * y[10] + 0.05 * y[10] * s10 + 1.5 * u[1] * u[10] + 0.1)).abs() < 1e-12
        );
        assert_eq!(nrmse(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        assert!((nrmse(&[1.0, 3.0], &[2.0, 2.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_esn_learns_one_step_mackey_glass_and_narma10() {
        let s = mackey_glass(2000, 17.0, 0);
        let mut esn = Esn::new(&EsnConfig::default(), 1).unwrap();
        esn.fit(&s[..1599], &s[1..1600], 1).unwrap();
        let pred = esn.predict(&s[1599..1999]);
        let e = nrmse(&s[1600..2000], &pred);
        assert!(e < 0.02, "mackey-glass nrmse {e}");
        // a short closed-loop forecast stays close at first
        let gen = esn.generate(&[s[1999]], 1);
        assert!(gen[0].is_finite());
        let (u, y) = narma10(3000, 0);
        let cfg = EsnConfig {
            units: 200,
            spectral_radius: 0.9,
            leak_rate: 1.0,
            input_connectivity: 1.0,
            input_scaling: 0.5,
            bias_scaling: 0.5,
            ridge: 1e-7,
            ..EsnConfig::default()
        };
        let mut esn = Esn::new(&cfg, 1).unwrap();
        esn.fit(&u[..2000], &y[..2000], 1).unwrap();
        let e = nrmse(&y[2000..], &esn.predict(&u[2000..]));
        assert!(e < 0.5, "narma10 nrmse {e}");
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = |f: fn(&mut EsnConfig)| {
            let mut c = EsnConfig::default();
            f(&mut c);
            Esn::new(&c, 1).unwrap_err().field
        };
        assert_eq!(bad(|c| c.units = 0), "units");
        assert_eq!(bad(|c| c.leak_rate = 1.5), "leak-rate");
        assert_eq!(bad(|c| c.connectivity = 0.0), "connectivity");
        assert_eq!(bad(|c| c.ridge = -1.0), "ridge");
        let mut e = Esn::new(&EsnConfig::default(), 1).unwrap();
        assert_eq!(
            e.fit(&[0.0; 50], &[0.0; 50], 1).unwrap_err().field,
            "washout"
        );
        assert_eq!(
            e.fit(&[0.0; 500], &[0.0; 499], 1).unwrap_err().field,
            "series"
        );
        assert_eq!(
            e.fit(&[f64::NAN; 500], &[0.0; 500], 1).unwrap_err().field,
            "series"
        );
    }
}
