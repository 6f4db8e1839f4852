//! The [`Optimizer`] trait, coupled regularization, and the optimizers.
//!
//! Every optimizer first forms the effective gradient
//! `g = ∂L/∂θ + λ₂·θ + λ₁·sgn(θ)` (the gradients of the penalties `λ₂/2·‖θ‖²` and
//! `λ₁·‖θ‖₁`, the latter with the sign subgradient, `sgn(0) = 0`), skipping the penalties for
//! parameters named `*bias` when asked, then applies its update rule elementwise.

use backprop_autograd::{Grads, Var};
use backprop_tensor::{Element, Tensor};

/// Penalties added to the loss, applied through the gradient.
///
/// - L2: `λ₂/2·‖θ‖²` adds `λ₂θ`; for plain SGD a step is then
///   `θ ← θ − η(∂L/∂θ + λ₂θ) = (1 − ηλ₂)θ − η∂L/∂θ`, i.e. weight decay.
/// - L1: `λ₁·‖θ‖₁` adds `λ₁·sgn(θ)`; for SGD `θ ← θ − ηλ₁·sgn(θ) − η∂L/∂θ`.
///
/// ```
/// use backprop_optim::Regularization;
/// let r = Regularization { l2: 1e-4, ..Default::default() };
/// assert!(r.exclude_bias);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regularization {
    /// λ₁ of the L1 penalty.
    pub l1: f64,
    /// λ₂ of the L2 penalty.
    pub l2: f64,
    /// Leave parameters whose name ends in `bias` unpenalised (and undecayed in AdamW).
    pub exclude_bias: bool,
}

impl Default for Regularization {
    /// No penalty; biases excluded once a penalty is set.
    fn default() -> Self {
        Regularization {
            l1: 0.0,
            l2: 0.0,
            exclude_bias: true,
        }
    }
}

/// Updates parameters from gradients.
pub trait Optimizer<E: Element = f32>: Send {
    /// One update of every parameter that has a gradient in `grads` (others are left alone).
    fn step(&mut self, grads: &Grads<E>);
    /// One update from the weighted sum `wa·a + wb·b` of two gradient stores (the trainer's
    /// two half-batches), the same as [`Optimizer::step`] on [`blend`]`(a, wa, b, wb)`.
    /// SGD with momentum fuses the sum into its update, so each gradient is read once.
    fn step_blend(&mut self, a: &Grads<E>, wa: E, b: &Grads<E>, wb: E) {
        self.step(&blend(a, wa, b, wb));
    }
    /// The learning rate η.
    fn lr(&self) -> f64;
    /// Sets η (schedules call this).
    fn set_lr(&mut self, lr: f64);
    /// Number of steps taken.
    fn steps(&self) -> u64;
    /// The optimizer's state (moment estimates and the step count) under stable names such
    /// as `fc1.weight.momentum`, for checkpoints.
    fn state(&self) -> Vec<(String, Tensor<E>)>;
    /// Restores a state saved by [`Optimizer::state`].
    ///
    /// # Errors
    /// If a name is unknown or a shape does not match its parameter.
    fn load_state(&mut self, state: &[(String, Tensor<E>)]) -> Result<(), String>;
}

/// `wa·a + wb·b` for every gradient in `a` (a gradient missing from `b` counts as zero).
/// Large gradients are summed over the thread pool in fixed chunks; the sum is elementwise,
/// so the result does not depend on the thread count.
pub fn blend<E: Element>(a: &Grads<E>, wa: E, b: &Grads<E>, wb: E) -> Grads<E> {
    let mut out = a.clone();
    for (id, g) in out.iter_mut() {
        let data = g.data_mut();
        match b.get_id(*id) {
            Some(other) => {
                let mix = |x: &mut [E], y: &[E]| {
                    for (x, &y) in x.iter_mut().zip(y) {
                        *x = wa * *x + wb * y;
                    }
                };
                if data.len() >= PARALLEL_UPDATE {
                    use rayon::prelude::*;
                    data.par_chunks_mut(UPDATE_CHUNK)
                        .zip(other.data().par_chunks(UPDATE_CHUNK))
                        .for_each(|(x, y)| mix(x, y));
                } else {
                    mix(data, other.data());
                }
            }
            None => data.iter_mut().for_each(|x| *x = wa * *x),
        }
    }
    out
}

/// The scalars of one blended momentum update: the two gradients' weights, μ, η, Nesterov.
#[derive(Clone, Copy)]
struct Blend<E> {
    wa: E,
    wb: E,
    mu: E,
    lr: E,
    nesterov: bool,
}

/// `g = wa·a + wb·b; v ← μ·v + g; θ ← θ − η·v` (or Nesterov's `θ ← θ − η·(g + μ·v)`),
/// elementwise; with AVX-512 when the CPU has it (the loop is the same, compiled wider).
fn blended_momentum<E: Element>(theta: &mut [E], a: &[E], b: &[E], v: &mut [E], k: Blend<E>) {
    #[inline(always)]
    fn body<E: Element>(theta: &mut [E], a: &[E], b: &[E], v: &mut [E], k: Blend<E>) {
        let Blend {
            wa,
            wb,
            mu,
            lr,
            nesterov,
        } = k;
        let it = theta.iter_mut().zip(a).zip(b).zip(v.iter_mut());
        if nesterov {
            for (((t, &x), &y), v) in it {
                let g = wa * x + wb * y;
                *v = mu * *v + g;
                *t -= lr * (g + mu * *v);
            }
        } else {
            for (((t, &x), &y), v) in it {
                *v = mu * *v + (wa * x + wb * y);
                *t -= lr * *v;
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn wide<E: Element>(theta: &mut [E], a: &[E], b: &[E], v: &mut [E], k: Blend<E>) {
            body(theta, a, b, v, k)
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            unsafe { wide(theta, a, b, v, k) };
            return;
        }
    }
    body(theta, a, b, v, k)
}

/// Parameters with at least this many elements are updated by several threads.
const PARALLEL_UPDATE: usize = 1 << 16;
/// Elements per thread-pool task in such an update.
const UPDATE_CHUNK: usize = 1 << 14;

/// One parameter with its per-parameter state slots.
struct Slot<E: Element> {
    name: String,
    var: Var<E>,
    penalised: bool,
    state: Vec<Vec<E>>,
}

/// The bookkeeping every optimizer shares: parameters, penalties, state, step count.
struct Core<E: Element> {
    slots: Vec<Slot<E>>,
    slot_names: &'static [&'static str],
    reg: Regularization,
    lr: f64,
    t: u64,
}

impl<E: Element> Core<E> {
    fn new(params: Vec<(String, Var<E>)>, lr: f64, slot_names: &'static [&'static str]) -> Self {
        assert!(
            lr.is_finite() && lr >= 0.0,
            "optimizer: learning rate {lr} must be finite and non-negative"
        );
        let slots = params
            .into_iter()
            .map(|(name, var)| {
                let n = var.with_value(|v| v.numel());
                Slot {
                    penalised: true,
                    state: slot_names.iter().map(|_| vec![E::ZERO; n]).collect(),
                    name,
                    var,
                }
            })
            .collect();
        let mut c = Core {
            slots,
            slot_names,
            reg: Regularization::default(),
            lr,
            t: 0,
        };
        c.set_reg(Regularization::default());
        c
    }

    fn set_reg(&mut self, reg: Regularization) {
        self.reg = reg;
        for s in &mut self.slots {
            s.penalised = !(reg.exclude_bias && s.name.ends_with("bias"));
        }
    }

    /// Runs `rule(θ, g_eff, state, penalised)` for every parameter with a gradient.
    fn step(
        &mut self,
        grads: &Grads<E>,
        mut rule: impl FnMut(&mut [E], &[E], &mut [Vec<E>], bool),
    ) {
        self.t += 1;
        let (l1, l2) = (E::from_f64(self.reg.l1), E::from_f64(self.reg.l2));
        let penalties = self.reg.l1 != 0.0 || self.reg.l2 != 0.0;
        for s in &mut self.slots {
            let Some(g) = grads.get(&s.var) else { continue };
            let state = &mut s.state;
            let penalised = s.penalised;
            s.var.update(|theta| {
                assert_eq!(
                    theta.len(),
                    g.numel(),
                    "optimizer: gradient of {} has {} elements, the parameter {}",
                    s.name,
                    g.numel(),
                    theta.len()
                );
                if penalties && penalised {
                    let geff: Vec<E> = theta
                        .iter()
                        .zip(g.data())
                        .map(|(&th, &gi)| {
                            let sgn = if th > E::ZERO {
                                E::ONE
                            } else if th < E::ZERO {
                                -E::ONE
                            } else {
                                E::ZERO
                            };
                            gi + l2 * th + l1 * sgn
                        })
                        .collect();
                    rule(theta, &geff, state, penalised);
                } else {
                    rule(theta, g.data(), state, penalised);
                }
            });
        }
    }

    fn state(&self) -> Vec<(String, Tensor<E>)> {
        let mut out = vec![(
            "step".to_string(),
            Tensor::scalar(E::from_f64(self.t as f64)),
        )];
        for s in &self.slots {
            let shape = s.var.shape();
            for (k, name) in self.slot_names.iter().enumerate() {
                out.push((
                    format!("{}.{}", s.name, name),
                    Tensor::from_vec(s.state[k].clone(), &shape),
                ));
            }
        }
        out
    }

    fn load_state(&mut self, state: &[(String, Tensor<E>)]) -> Result<(), String> {
        for (name, t) in state {
            if name == "step" {
                self.t = t.item().to_f64() as u64;
                continue;
            }
            let found = self.slots.iter_mut().find_map(|s| {
                let k = self.slot_names.iter().position(|sn| {
                    name.strip_prefix(&s.name).and_then(|r| r.strip_prefix('.')) == Some(sn)
                })?;
                Some((s, k))
            });
            let (s, k) = found.ok_or_else(|| {
                format!("optimizer state {name:?} belongs to no parameter of this optimizer")
            })?;
            if t.shape() != s.var.shape().as_slice() {
                return Err(format!(
                    "optimizer state {name:?} has shape {:?}, the parameter has {:?}",
                    t.shape(),
                    s.var.shape()
                ));
            }
            s.state[k] = t.to_vec();
        }
        Ok(())
    }
}

macro_rules! common_methods {
    () => {
        /// Sets the coupled L1/L2 penalties.
        pub fn regularization(mut self, reg: Regularization) -> Self {
            self.core.set_reg(reg);
            self
        }
    };
}

macro_rules! impl_optimizer {
    ($t:ident fused) => {
        impl_optimizer!(@impl $t, ; fn step_blend(&mut self, a: &Grads<E>, wa: E, b: &Grads<E>, wb: E) {
            self.do_step_blend(a, wa, b, wb)
        });
    };
    ($t:ident $(, $inner:ident)?) => {
        impl_optimizer!(@impl $t, $($inner)? ;);
    };
    (@impl $t:ident, $($inner:ident)? ; $($extra:item)*) => {
        impl<E: Element> Optimizer<E> for $t<E> {
            fn step(&mut self, grads: &Grads<E>) {
                self.do_step(grads)
            }
            $($extra)*
            fn lr(&self) -> f64 {
                self$(.$inner)?.core.lr
            }
            fn set_lr(&mut self, lr: f64) {
                self$(.$inner)?.core.lr = lr;
            }
            fn steps(&self) -> u64 {
                self$(.$inner)?.core.t
            }
            fn state(&self) -> Vec<(String, Tensor<E>)> {
                self$(.$inner)?.core.state()
            }
            fn load_state(&mut self, state: &[(String, Tensor<E>)]) -> Result<(), String> {
                self$(.$inner)?.core.load_state(state)
            }
        }
    };
}

/// Stochastic gradient descent, with optional momentum (Polyak 1964; Sutskever et al. 2013)
/// and Nesterov's accelerated gradient (Nesterov 1983), in PyTorch's form:
///
/// - plain: `θ ← θ − η·g`
/// - momentum μ: `v ← μ·v + g`, `θ ← θ − η·v`
/// - Nesterov: `v ← μ·v + g`, `θ ← θ − η·(g + μ·v)`
///
/// With a constant η the momentum form equals the lectures' `v ← μv − ηg, θ ← θ + v`.
/// Which of SGD, mini-batch or full-batch gradient descent this is depends only on the batch
/// the gradient was computed on.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_optim::{Optimizer, Sgd};
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f32>::from_vec(vec![1.0], &[1]));
/// let mut opt = Sgd::new(vec![("w".into(), w.clone())], 0.1).momentum(0.9);
/// opt.step(&w.sum().backward()); // g = 1: v = 1, θ = 0.9
/// opt.step(&w.sum().backward()); // v = 1.9, θ = 0.71
/// assert!((w.item() - 0.71).abs() < 1e-6);
/// ```
pub struct Sgd<E: Element = f32> {
    core: Core<E>,
    momentum: f64,
    nesterov: bool,
}

impl<E: Element> Sgd<E> {
    /// Plain SGD with learning rate `lr`.
    ///
    /// # Panics
    /// If `lr` is negative or not finite.
    pub fn new(params: Vec<(String, Var<E>)>, lr: f64) -> Self {
        Sgd {
            core: Core::new(params, lr, &["momentum"]),
            momentum: 0.0,
            nesterov: false,
        }
    }
    /// Sets the momentum μ (0 disables it).
    pub fn momentum(mut self, mu: f64) -> Self {
        self.momentum = mu;
        self
    }
    /// Uses Nesterov's update (needs momentum > 0).
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }
    common_methods!();

    /// Momentum SGD on `wa·a + wb·b` without materialising the sum: per element,
    /// `g = wa·a + wb·b`, then the usual update. Falls back to [`blend`] + step when
    /// penalties are set or there is no momentum.
    fn do_step_blend(&mut self, a: &Grads<E>, wa: E, b: &Grads<E>, wb: E) {
        let r = &self.core.reg;
        if r.l1 != 0.0 || r.l2 != 0.0 || self.momentum == 0.0 {
            return self.do_step(&blend(a, wa, b, wb));
        }
        let (lr, mu, nesterov) = (
            E::from_f64(self.core.lr),
            E::from_f64(self.momentum),
            self.nesterov,
        );
        self.core.t += 1;
        for s in &mut self.core.slots {
            let Some(ga) = a.get(&s.var) else { continue };
            let zeros;
            let (gb, wb) = match b.get(&s.var) {
                Some(g) => (g.data(), wb),
                None => {
                    zeros = vec![E::ZERO; ga.numel()];
                    (zeros.as_slice(), E::ZERO)
                }
            };
            let v = &mut s.state[0];
            let name = &s.name;
            s.var.update(|theta| {
                assert!(
                    theta.len() == ga.numel() && theta.len() == gb.len(),
                    "optimizer: gradients of {name} do not match the parameter's {} elements",
                    theta.len()
                );
                let k = Blend {
                    wa,
                    wb,
                    mu,
                    lr,
                    nesterov,
                };
                let update = |theta: &mut [E], ga: &[E], gb: &[E], v: &mut [E]| {
                    blended_momentum(theta, ga, gb, v, k)
                };
                if theta.len() >= PARALLEL_UPDATE {
                    use rayon::prelude::*;
                    theta
                        .par_chunks_mut(UPDATE_CHUNK)
                        .zip(ga.data().par_chunks(UPDATE_CHUNK))
                        .zip(gb.par_chunks(UPDATE_CHUNK))
                        .zip(v.par_chunks_mut(UPDATE_CHUNK))
                        .for_each(|(((t, x), y), v)| update(t, x, y, v));
                } else {
                    update(theta, ga.data(), gb, v);
                }
            });
        }
    }

    fn do_step(&mut self, grads: &Grads<E>) {
        let (lr, mu, nesterov) = (
            E::from_f64(self.core.lr),
            E::from_f64(self.momentum),
            self.nesterov,
        );
        let use_v = self.momentum != 0.0;
        self.core.step(grads, |theta, g, st, _| {
            if !use_v {
                theta.iter_mut().zip(g).for_each(|(t, &g)| *t -= lr * g);
                return;
            }
            let update = |theta: &mut [E], g: &[E], v: &mut [E]| {
                let it = theta.iter_mut().zip(g).zip(v.iter_mut());
                if nesterov {
                    for ((t, &g), v) in it {
                        *v = mu * *v + g;
                        *t -= lr * (g + mu * *v);
                    }
                } else {
                    for ((t, &g), v) in it {
                        *v = mu * *v + g;
                        *t -= lr * *v;
                    }
                }
            };
            // elementwise, so splitting large parameters across threads changes nothing
            if theta.len() >= PARALLEL_UPDATE {
                use rayon::prelude::*;
                theta
                    .par_chunks_mut(UPDATE_CHUNK)
                    .zip(g.par_chunks(UPDATE_CHUNK))
                    .zip(st[0].par_chunks_mut(UPDATE_CHUNK))
                    .for_each(|((t, g), v)| update(t, g, v));
            } else {
                update(theta, g, &mut st[0]);
            }
        });
    }
}
impl_optimizer!(Sgd fused);

/// Adagrad (Duchi, Hazan & Singer 2011): per-parameter rates that shrink with the sum of
/// squared gradients. `G ← G + g²`, `θ ← θ − η·g / (√G + ε)`, ε = 1e-10.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_optim::{Adagrad, Optimizer};
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f64>::from_vec(vec![1.0], &[1]));
/// let mut opt = Adagrad::new(vec![("w".into(), w.clone())], 0.1);
/// opt.step(&w.mul_scalar(3.0).sum().backward()); // g = 3: θ = 1 − 0.1·3/3
/// assert!((w.item() - 0.9).abs() < 1e-9);
/// ```
pub struct Adagrad<E: Element = f32> {
    core: Core<E>,
    eps: f64,
}

impl<E: Element> Adagrad<E> {
    /// Adagrad with learning rate `lr`.
    pub fn new(params: Vec<(String, Var<E>)>, lr: f64) -> Self {
        Adagrad {
            core: Core::new(params, lr, &["sum_sq"]),
            eps: 1e-10,
        }
    }
    /// Sets ε.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    common_methods!();

    fn do_step(&mut self, grads: &Grads<E>) {
        let (lr, eps) = (E::from_f64(self.core.lr), E::from_f64(self.eps));
        self.core.step(grads, |theta, g, st, _| {
            for ((t, &g), s) in theta.iter_mut().zip(g).zip(st[0].iter_mut()) {
                *s += g * g;
                *t -= lr * g / (s.sqrt() + eps);
            }
        });
    }
}
impl_optimizer!(Adagrad);

/// RMSprop (Tieleman & Hinton 2012, Coursera lecture 6.5): divide by a running RMS of recent
/// gradients. `s ← ρ·s + (1 − ρ)·g²`, `θ ← θ − η·g / (√s + ε)`, with ρ = 0.9 (the lecture's
/// value; PyTorch's default is 0.99) and ε = 1e-8.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_optim::{Optimizer, RmsProp};
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f64>::from_vec(vec![1.0], &[1]));
/// let mut opt = RmsProp::new(vec![("w".into(), w.clone())], 0.01);
/// opt.step(&w.sum().backward()); // s = 0.1, θ = 1 − 0.01/√0.1
/// assert!((w.item() - (1.0 - 0.01 / 0.1f64.sqrt())).abs() < 1e-9);
/// ```
pub struct RmsProp<E: Element = f32> {
    core: Core<E>,
    rho: f64,
    eps: f64,
}

impl<E: Element> RmsProp<E> {
    /// RMSprop with learning rate `lr`, ρ = 0.9, ε = 1e-8.
    pub fn new(params: Vec<(String, Var<E>)>, lr: f64) -> Self {
        RmsProp {
            core: Core::new(params, lr, &["square_avg"]),
            rho: 0.9,
            eps: 1e-8,
        }
    }
    /// Sets the decay ρ.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }
    /// Sets ε.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    common_methods!();

    fn do_step(&mut self, grads: &Grads<E>) {
        let (lr, rho, eps) = (
            E::from_f64(self.core.lr),
            E::from_f64(self.rho),
            E::from_f64(self.eps),
        );
        self.core.step(grads, |theta, g, st, _| {
            for ((t, &g), s) in theta.iter_mut().zip(g).zip(st[0].iter_mut()) {
                *s = rho * *s + (E::ONE - rho) * g * g;
                *t -= lr * g / (s.sqrt() + eps);
            }
        });
    }
}
impl_optimizer!(RmsProp);

/// Adam (Kingma & Ba 2015): `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`, `θ ← θ − η·m̂/(√v̂ + ε)`; β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_optim::{Adam, Optimizer};
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f64>::from_vec(vec![1.0], &[1]));
/// let mut opt = Adam::new(vec![("w".into(), w.clone())], 0.1);
/// opt.step(&w.mul_scalar(5.0).sum().backward()); // the first step is ±η whatever g's size
/// assert!((w.item() - 0.9).abs() < 1e-8);
/// ```
pub struct Adam<E: Element = f32> {
    core: Core<E>,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Decoupled weight decay λ (non-zero only for AdamW).
    decoupled: f64,
}

impl<E: Element> Adam<E> {
    /// Adam with learning rate `lr` and the paper's defaults.
    pub fn new(params: Vec<(String, Var<E>)>, lr: f64) -> Self {
        Adam {
            core: Core::new(params, lr, &["exp_avg", "exp_avg_sq"]),
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            decoupled: 0.0,
        }
    }
    /// Sets β₁ and β₂.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }
    /// Sets ε.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    common_methods!();

    fn do_step(&mut self, grads: &Grads<E>) {
        let t = self.core.t as i32 + 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let lr = E::from_f64(self.core.lr);
        let decay = E::from_f64(self.core.lr * self.decoupled);
        let (b1, b2, eps) = (E::from_f64(b1), E::from_f64(b2), E::from_f64(self.eps));
        let (c1, c2) = (E::from_f64(c1), E::from_f64(c2));
        let decoupled = self.decoupled != 0.0;
        self.core.step(grads, |theta, g, st, penalised| {
            let (m, v) = st.split_at_mut(1);
            for (((t, &g), m), v) in theta
                .iter_mut()
                .zip(g)
                .zip(m[0].iter_mut())
                .zip(v[0].iter_mut())
            {
                if decoupled && penalised {
                    *t -= decay * *t;
                }
                *m = b1 * *m + (E::ONE - b1) * g;
                *v = b2 * *v + (E::ONE - b2) * g * g;
                *t -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            }
        });
    }
}
impl_optimizer!(Adam);

/// AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay,
/// `θ ← θ − ηλθ` and then the Adam step (the decay does not pass through the moment
/// estimates). Biases are not decayed unless [`Regularization::exclude_bias`] is false.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_optim::{AdamW, Optimizer};
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f64>::from_vec(vec![1.0], &[1]));
/// let mut opt = AdamW::new(vec![("w".into(), w.clone())], 0.1, 0.1);
/// opt.step(&w.sum().backward()); // θ = 1 − 0.1·0.1·1 − 0.1
/// assert!((w.item() - 0.89).abs() < 1e-8);
/// ```
pub struct AdamW<E: Element = f32> {
    inner: Adam<E>,
}

impl<E: Element> AdamW<E> {
    /// AdamW with learning rate `lr` and decoupled weight decay `weight_decay` (λ).
    pub fn new(params: Vec<(String, Var<E>)>, lr: f64, weight_decay: f64) -> Self {
        let mut inner = Adam::new(params, lr);
        inner.decoupled = weight_decay;
        AdamW { inner }
    }
    /// Sets β₁ and β₂.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.inner = self.inner.betas(beta1, beta2);
        self
    }
    /// Sets which parameters are decayed (and any coupled penalties on top).
    pub fn regularization(mut self, reg: Regularization) -> Self {
        self.inner = self.inner.regularization(reg);
        self
    }
}

impl<E: Element> AdamW<E> {
    fn do_step(&mut self, grads: &Grads<E>) {
        self.inner.do_step(grads)
    }
}
impl_optimizer!(AdamW, inner);
