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

/// μ, η and the Nesterov switch of one momentum update.
#[derive(Clone, Copy)]
struct Momentum<E> {
    mu: E,
    lr: E,
    nesterov: bool,
}

/// Where a momentum update reads its gradient: one store's, or the weighted sum
/// `wa·a + wb·b` of two (the trainer's half-batches), formed per element as it is read.
#[derive(Clone, Copy)]
enum Grad<'a, E> {
    One(&'a [E]),
    Blend {
        a: &'a [E],
        wa: E,
        b: &'a [E],
        wb: E,
    },
}

impl<'a, E: Element> Grad<'a, E> {
    fn len(&self) -> usize {
        match self {
            Grad::One(g) => g.len(),
            Grad::Blend { a, .. } => a.len(),
        }
    }
    /// Elements `start..start + len`.
    fn slice(self, start: usize, len: usize) -> Self {
        match self {
            Grad::One(g) => Grad::One(&g[start..start + len]),
            Grad::Blend { a, wa, b, wb } => Grad::Blend {
                a: &a[start..start + len],
                wa,
                b: &b[start..start + len],
                wb,
            },
        }
    }
}

/// The momentum rule for one element, the only place it is written:
/// `v ← μ·v + g; θ ← θ − η·v`, or with Nesterov `θ ← θ − η·(g + μ·v)`.
#[inline(always)]
fn momentum_rule<E: Element, const NESTEROV: bool>(t: &mut E, v: &mut E, g: E, k: Momentum<E>) {
    *v = k.mu * *v + g;
    *t -= k.lr * if NESTEROV { g + k.mu * *v } else { *v };
}

/// [`momentum_rule`] over slices, with the Nesterov switch and the gradient's source
/// hoisted out of the loop so each of the four loops compiles to straight vector code.
#[inline(always)]
fn momentum_portable<E: Element>(theta: &mut [E], grad: Grad<'_, E>, v: &mut [E], k: Momentum<E>) {
    // inlined all the way, so that the AVX-512 kernel's copy is compiled for AVX-512
    #[inline(always)]
    fn run<E: Element, const N: bool>(
        theta: &mut [E],
        grad: Grad<'_, E>,
        v: &mut [E],
        k: Momentum<E>,
    ) {
        let tv = theta.iter_mut().zip(v.iter_mut());
        match grad {
            Grad::One(g) => {
                for ((t, v), &g) in tv.zip(g) {
                    momentum_rule::<E, N>(t, v, g, k);
                }
            }
            Grad::Blend { a, wa, b, wb } => {
                for (((t, v), &x), &y) in tv.zip(a).zip(b) {
                    momentum_rule::<E, N>(t, v, wa * x + wb * y, k);
                }
            }
        }
    }
    if k.nesterov {
        run::<E, true>(theta, grad, v, k)
    } else {
        run::<E, false>(theta, grad, v, k)
    }
}

/// The same loops compiled for AVX-512F (the source is [`momentum_portable`], inlined here).
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn momentum_avx512<E: Element>(
    theta: &mut [E],
    grad: Grad<'_, E>,
    v: &mut [E],
    k: Momentum<E>,
) {
    momentum_portable(theta, grad, v, k)
}

/// One momentum update of a block of elements, on the widest kernel this CPU runs
/// (AVX-512F when detected at run time, the portable loops elsewhere).
fn momentum_kernel<E: Element>(theta: &mut [E], grad: Grad<'_, E>, v: &mut [E], k: Momentum<E>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was detected on this CPU just above, which is all the
        // `target_feature` function needs; its body is safe code.
        unsafe { momentum_avx512(theta, grad, v, k) };
        return;
    }
    momentum_portable(theta, grad, v, k)
}

/// The momentum update of one parameter: `θ`, its velocity `v` and its gradient, all of one
/// length. Plain and blended steps, on every CPU, go through here. Large parameters are
/// split over the thread pool in fixed chunks; the update is elementwise, so the result does
/// not depend on the thread count.
///
/// # Panics
/// If the lengths differ.
fn momentum_update<E: Element>(theta: &mut [E], grad: Grad<'_, E>, v: &mut [E], k: Momentum<E>) {
    let n = theta.len();
    let b_len = match grad {
        Grad::One(_) => n,
        Grad::Blend { b, .. } => b.len(),
    };
    assert!(
        grad.len() == n && b_len == n && v.len() == n,
        "optimizer: a momentum update of {n} elements got a gradient of {} and a velocity of {}",
        grad.len().min(b_len),
        v.len()
    );
    if n >= PARALLEL_UPDATE {
        use rayon::prelude::*;
        theta
            .par_chunks_mut(UPDATE_CHUNK)
            .zip(v.par_chunks_mut(UPDATE_CHUNK))
            .enumerate()
            .for_each(|(i, (t, v))| {
                let len = t.len();
                momentum_kernel(t, grad.slice(i * UPDATE_CHUNK, len), v, k)
            });
    } else {
        momentum_kernel(theta, grad, v, k);
    }
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
            // `fc1.bias`, and a recurrent layer's `lstm1.bias_ih_l0`
            let bias = s
                .name
                .rsplit('.')
                .next()
                .is_some_and(|l| l.starts_with("bias"));
            s.penalised = !(reg.exclude_bias && bias);
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
        let k = self.momentum_scalars();
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
                let grad = Grad::Blend {
                    a: ga.data(),
                    wa,
                    b: gb,
                    wb,
                };
                momentum_update(theta, grad, v, k);
            });
        }
    }

    fn do_step(&mut self, grads: &Grads<E>) {
        let k = self.momentum_scalars();
        let use_v = self.momentum != 0.0;
        self.core.step(grads, |theta, g, st, _| {
            if use_v {
                momentum_update(theta, Grad::One(g), &mut st[0], k);
            } else {
                theta.iter_mut().zip(g).for_each(|(t, &g)| *t -= k.lr * g);
            }
        });
    }

    fn momentum_scalars(&self) -> Momentum<E> {
        Momentum {
            mu: E::from_f64(self.momentum),
            lr: E::from_f64(self.core.lr),
            nesterov: self.nesterov,
        }
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

/// NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam"): Adam whose first-moment
/// step looks ahead as Nesterov momentum does, with the momentum schedule
/// `μ_t = β₁(1 − ½·0.96^{tψ})` (ψ = 0.004) that PyTorch's `NAdam` uses:
///
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `d = √(v/(1−β₂ᵗ)) + ε`,
/// `θ ← θ − η(1−μ_t)/(1−Π_{i≤t}μ_i)·g/d − η μ_{t+1}/(1−Π_{i≤t+1}μ_i)·m/d`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_optim::{Nadam, Optimizer};
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f64>::from_vec(vec![1.0], &[1]));
/// let mut opt = Nadam::new(vec![("w".into(), w.clone())], 0.1);
/// opt.step(&w.sum().backward()); // the first step moves θ by about η
/// assert!((w.item() - 0.9).abs() < 0.02);
/// ```
pub struct Nadam<E: Element = f32> {
    core: Core<E>,
    beta1: f64,
    beta2: f64,
    eps: f64,
    momentum_decay: f64,
    /// Π_{i≤t} μ_i after `t` steps, as `(t, product)`.
    mu_product: (u64, f64),
}

impl<E: Element> Nadam<E> {
    /// NAdam with learning rate `lr` and PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8,
    /// ψ = 0.004).
    pub fn new(params: Vec<(String, Var<E>)>, lr: f64) -> Self {
        Nadam {
            core: Core::new(params, lr, &["exp_avg", "exp_avg_sq"]),
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            momentum_decay: 0.004,
            mu_product: (0, 1.0),
        }
    }
    common_methods!();

    fn mu(&self, t: u64) -> f64 {
        self.beta1 * (1.0 - 0.5 * 0.96f64.powf(t as f64 * self.momentum_decay))
    }

    fn do_step(&mut self, grads: &Grads<E>) {
        let t = self.core.t + 1;
        if self.mu_product.0 != t - 1 {
            // resumed from a checkpoint: rebuild the product once
            self.mu_product = (t - 1, (1..t).map(|i| self.mu(i)).product());
        }
        let (mu, mu_next) = (self.mu(t), self.mu(t + 1));
        let prod = self.mu_product.1 * mu;
        self.mu_product = (t, prod);
        let c2 = 1.0 - self.beta2.powi(t as i32);
        let lr = self.core.lr;
        let kg = E::from_f64(lr * (1.0 - mu) / (1.0 - prod));
        let km = E::from_f64(lr * mu_next / (1.0 - prod * mu_next));
        let (b1, b2, eps) = (
            E::from_f64(self.beta1),
            E::from_f64(self.beta2),
            E::from_f64(self.eps),
        );
        let c2 = E::from_f64(c2);
        self.core.step(grads, |theta, g, st, _| {
            let (m, v) = st.split_at_mut(1);
            for (((t, &g), m), v) in theta
                .iter_mut()
                .zip(g)
                .zip(m[0].iter_mut())
                .zip(v[0].iter_mut())
            {
                *m = b1 * *m + (E::ONE - b1) * g;
                *v = b2 * *v + (E::ONE - b2) * g * g;
                let d = (*v / c2).sqrt() + eps;
                *t -= kg * g / d + km * *m / d;
            }
        });
    }
}
impl_optimizer!(Nadam);

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

#[cfg(test)]
mod tests {
    use super::*;
    use backprop_tensor::{Rng, Tensor};

    fn random<E: Element>(n: usize, rng: &mut Rng) -> Vec<E> {
        Tensor::<E>::rand_normal(&[n], 0.0, 1.0, rng).to_vec()
    }

    /// Three steps of the rule written out per element, the reference for the kernels.
    fn reference<E: Element>(t: &mut [E], v: &mut [E], grads: &[Vec<E>], k: Momentum<E>) {
        for g in grads {
            for i in 0..t.len() {
                v[i] = k.mu * v[i] + g[i];
                let step = if k.nesterov { g[i] + k.mu * v[i] } else { v[i] };
                t[i] -= k.lr * step;
            }
        }
    }

    fn close<E: Element>(x: &[E], y: &[E], tol: f64, what: &str) {
        assert_eq!(x.len(), y.len());
        for (i, (&p, &q)) in x.iter().zip(y).enumerate() {
            let (p, q) = (p.to_f64(), q.to_f64());
            assert!(
                (p - q).abs() <= tol * q.abs().max(1.0),
                "{what}: element {i}: {p} against {q}"
            );
        }
    }

    /// Every way through the one momentum update (a plain gradient, a blended pair, the
    /// portable loops, the AVX-512 kernel where the CPU has it, the thread-pool split)
    /// gives the reference's values to rounding, over three steps with a live velocity.
    fn paths_agree<E: Element>(n: usize, tol: f64) {
        let mut rng = Rng::seed(n as u64);
        let theta0: Vec<E> = random(n, &mut rng);
        let v0: Vec<E> = random(n, &mut rng);
        let (wa, wb) = (E::from_f64(0.25), E::from_f64(0.75));
        let pairs: Vec<(Vec<E>, Vec<E>)> = (0..3)
            .map(|_| (random(n, &mut rng), random(n, &mut rng)))
            .collect();
        let blended: Vec<Vec<E>> = pairs
            .iter()
            .map(|(a, b)| a.iter().zip(b).map(|(&x, &y)| wa * x + wb * y).collect())
            .collect();
        for nesterov in [false, true] {
            let k = Momentum {
                mu: E::from_f64(0.9),
                lr: E::from_f64(0.05),
                nesterov,
            };
            let (mut want_t, mut want_v) = (theta0.clone(), v0.clone());
            reference(&mut want_t, &mut want_v, &blended, k);
            type Kernel<E> = fn(&mut [E], Grad<'_, E>, &mut [E], Momentum<E>);
            #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
            let mut kernels: Vec<(&str, Kernel<E>)> = vec![
                ("portable", momentum_portable::<E>),
                ("dispatched and split", momentum_update::<E>),
            ];
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                kernels.push(("avx512", |t, g, v, k| {
                    // SAFETY: AVX-512F was detected just above.
                    unsafe { momentum_avx512(t, g, v, k) }
                }));
            }
            for (kernel, run) in kernels {
                for blend in [false, true] {
                    let (mut t, mut v) = (theta0.clone(), v0.clone());
                    for (g, (a, b)) in blended.iter().zip(&pairs) {
                        let grad = if blend {
                            Grad::Blend { a, wa, b, wb }
                        } else {
                            Grad::One(g)
                        };
                        run(&mut t, grad, &mut v, k);
                    }
                    let what = format!("{kernel}, blend {blend}, nesterov {nesterov}, n {n}");
                    close(&t, &want_t, tol, &what);
                    close(&v, &want_v, tol, &what);
                }
            }
        }
    }

    #[test]
    fn plain_blended_and_simd_momentum_updates_agree() {
        // an odd length (a vector tail) and one large enough to be split over the pool
        for n in [1, 37, 1003, PARALLEL_UPDATE + 37] {
            paths_agree::<f32>(n, 1e-6);
            paths_agree::<f64>(n, 1e-14);
        }
    }

    #[test]
    #[should_panic(expected = "momentum update of 4 elements")]
    fn a_short_gradient_is_refused() {
        let (mut t, mut v) = (vec![0f32; 4], vec![0f32; 4]);
        let k = Momentum {
            mu: 0.9,
            lr: 0.1,
            nesterov: false,
        };
        momentum_update(&mut t, Grad::One(&[1.0; 3]), &mut v, k);
    }
}
