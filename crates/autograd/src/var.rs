//! [`Var`]: a tensor that remembers how it was made, so gradients can flow back through it.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use backprop_tensor::{Element, Tensor};

/// A stable identity for a variable, used as the key of [`Grads`](crate::Grads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub(crate) u64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> VarId {
    VarId(NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// A backward rule: given the gradient of the op's output and which parents need a
/// gradient, returns one gradient per parent (`None` where none is needed). Consumed when
/// run, which frees whatever the op saved for backward.
pub(crate) type BackwardFn<E> =
    Box<dyn FnOnce(&Tensor<E>, &[bool]) -> Vec<Option<Tensor<E>>> + Send>;

pub(crate) struct GradFn<E: Element> {
    pub(crate) op: &'static str,
    pub(crate) parents: Vec<Var<E>>,
    pub(crate) backward: BackwardFn<E>,
}

pub(crate) struct Node<E: Element> {
    pub(crate) id: VarId,
    pub(crate) requires_grad: bool,
    pub(crate) retain_grad: AtomicBool,
    pub(crate) value: RwLock<Tensor<E>>,
    /// `None` for leaves; for op results, taken (and so freed) by backward.
    pub(crate) grad_fn: Mutex<Option<GradFn<E>>>,
    pub(crate) is_leaf: bool,
    /// Bumped by every write to `value` ([`Var::set_value`], [`Var::update`]).
    pub(crate) version: AtomicU64,
}

/// A node of the computation graph: a tensor value plus, for results of operations, the
/// rule that sends gradients back to its inputs.
///
/// Leaves are made with [`Var::parameter`] (gradients wanted) or [`Var::constant`] (no
/// gradients). Every operation on a `Var` records itself (define-by-run) unless it runs
/// under [`no_grad`] or none of its inputs requires a gradient; then it records nothing.
/// [`Var::backward`] returns the gradient of a scalar with respect to every leaf that
/// requires one.
///
/// Cloning a `Var` is cheap and yields the same node (same [`VarId`]).
///
/// # Example
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let x = Var::parameter(Tensor::<f64>::from_vec(vec![3.0], &[1]));
/// let y = x.mul(&x).add(&x); // y = x² + x, used twice: gradients accumulate
/// let g = y.sum().backward();
/// assert_eq!(g.get(&x).unwrap().to_vec(), vec![7.0]); // dy/dx = 2x + 1
/// ```
pub struct Var<E: Element = f32> {
    pub(crate) node: Arc<Node<E>>,
}

impl<E: Element> Clone for Var<E> {
    fn clone(&self) -> Self {
        Var {
            node: Arc::clone(&self.node),
        }
    }
}

impl<E: Element> std::fmt::Debug for Var<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = self.node.grad_fn.lock().unwrap().as_ref().map(|g| g.op);
        write!(
            f,
            "Var(id={}, requires_grad={}, op={:?}, {:?})",
            self.node.id.0,
            self.node.requires_grad,
            op,
            *self.node.value.read().unwrap()
        )
    }
}

impl<E: Element> Var<E> {
    fn leaf(value: Tensor<E>, requires_grad: bool) -> Self {
        Var {
            node: Arc::new(Node {
                id: next_id(),
                requires_grad,
                retain_grad: AtomicBool::new(false),
                value: RwLock::new(value),
                grad_fn: Mutex::new(None),
                is_leaf: true,
                version: AtomicU64::new(0),
            }),
        }
    }

    /// A leaf whose gradient [`Var::backward`] reports: a weight, a bias, or an input you
    /// want the gradient of. Its buffer is moved onto a cache line
    /// ([`Tensor::align_storage`]), since hot loops read parameters again and again.
    pub fn parameter(mut value: Tensor<E>) -> Self {
        value.align_storage();
        Self::leaf(value, true)
    }

    /// A leaf that never receives a gradient: data, targets, masks.
    pub fn constant(value: Tensor<E>) -> Self {
        Self::leaf(value, false)
    }

    /// Records the result of an operation. `backward` receives the output gradient and
    /// which parents need a gradient. Nothing is recorded under [`no_grad`] or when no
    /// parent requires a gradient: the result is then a constant leaf.
    pub fn from_op(
        op: &'static str,
        value: Tensor<E>,
        parents: Vec<Var<E>>,
        backward: impl FnOnce(&Tensor<E>, &[bool]) -> Vec<Option<Tensor<E>>> + Send + 'static,
    ) -> Self {
        if is_grad_disabled() || !parents.iter().any(|p| p.node.requires_grad) {
            return Self::leaf(value, false);
        }
        Var {
            node: Arc::new(Node {
                id: next_id(),
                requires_grad: true,
                retain_grad: AtomicBool::new(false),
                value: RwLock::new(value),
                grad_fn: Mutex::new(Some(GradFn {
                    op,
                    parents,
                    backward: Box::new(backward),
                })),
                is_leaf: false,
                version: AtomicU64::new(0),
            }),
        }
    }

    /// This variable's identity.
    pub fn id(&self) -> VarId {
        self.node.id
    }

    /// How many times the value has been replaced or updated in place ([`Var::set_value`],
    /// [`Var::update`]). With [`Var::id`] it tells a cache whether what it derived from
    /// this variable's value is still current.
    pub fn version(&self) -> u64 {
        self.node.version.load(Ordering::Acquire)
    }

    /// The current value (a cheap clone sharing the buffer).
    pub fn value(&self) -> Tensor<E> {
        self.node.value.read().unwrap().clone()
    }

    /// Runs `f` on the value without cloning it.
    pub fn with_value<R>(&self, f: impl FnOnce(&Tensor<E>) -> R) -> R {
        f(&self.node.value.read().unwrap())
    }

    /// The value's shape.
    pub fn shape(&self) -> Vec<usize> {
        self.node.value.read().unwrap().shape().to_vec()
    }

    /// The value of a one-element variable, e.g. a loss.
    pub fn item(&self) -> E {
        self.node.value.read().unwrap().item()
    }

    /// Whether gradients flow into this variable.
    pub fn requires_grad(&self) -> bool {
        self.node.requires_grad
    }

    /// True for parameters and constants, false for results of recorded operations.
    pub fn is_leaf(&self) -> bool {
        self.node.is_leaf
    }

    /// The name of the operation that made this variable, if it was recorded.
    pub fn op_name(&self) -> Option<&'static str> {
        self.node.grad_fn.lock().unwrap().as_ref().map(|g| g.op)
    }

    /// The inputs of the operation that made this variable (constants included), in the
    /// op's order; empty for leaves and once backward has consumed the op. With
    /// [`Var::op_name`] and [`Var::id`] this is enough to walk and draw the graph.
    ///
    /// ```
    /// use backprop_autograd::Var;
    /// use backprop_tensor::Tensor;
    /// let a = Var::parameter(Tensor::<f32>::ones(&[1]));
    /// let c = Var::constant(Tensor::ones(&[1]));
    /// let y = a.mul(&c);
    /// assert_eq!(y.inputs().iter().map(|v| v.id()).collect::<Vec<_>>(), vec![a.id(), c.id()]);
    /// assert!(a.inputs().is_empty());
    /// ```
    pub fn inputs(&self) -> Vec<Var<E>> {
        self.node
            .grad_fn
            .lock()
            .unwrap()
            .as_ref()
            .map(|g| g.parents.clone())
            .unwrap_or_default()
    }

    /// True while this variable still holds its backward rule (and what it saved).
    /// Backward consumes the rule, so this turns false once backward has passed through.
    pub fn holds_backward_state(&self) -> bool {
        self.node.grad_fn.lock().unwrap().is_some()
    }

    /// Replaces a leaf's value (how optimizers and initializers write parameters).
    ///
    /// # Panics
    /// If this is not a leaf or the shape changes.
    pub fn set_value(&self, mut value: Tensor<E>) {
        assert!(
            self.node.is_leaf,
            "set_value: only a leaf variable can be assigned"
        );
        let mut v = self.node.value.write().unwrap();
        assert_eq!(
            v.shape(),
            value.shape(),
            "set_value: shape {:?} replaced by {:?}",
            v.shape(),
            value.shape()
        );
        if self.node.requires_grad {
            value.align_storage();
        }
        *v = value;
        self.node.version.fetch_add(1, Ordering::Release);
    }

    /// Updates a leaf's value in place (copy-free when nothing else shares the buffer).
    ///
    /// # Panics
    /// If this is not a leaf.
    pub fn update(&self, f: impl FnOnce(&mut [E])) {
        assert!(
            self.node.is_leaf,
            "update: only a leaf variable can be updated in place"
        );
        let mut v = self.node.value.write().unwrap();
        f(v.data_mut());
        self.node.version.fetch_add(1, Ordering::Release);
    }

    /// A constant with the same value: gradients stop here.
    pub fn detach(&self) -> Var<E> {
        Var::constant(self.value())
    }

    /// Asks [`Var::backward`] to report this non-leaf variable's gradient too (for
    /// inspecting δ = ∂C/∂z in a trace). Leaves that require a gradient always report it.
    pub fn retain_grad(&self) {
        self.node.retain_grad.store(true, Ordering::Relaxed);
    }
}

thread_local! {
    static NO_GRAD_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// True while a [`no_grad`] scope is active on this thread.
pub fn is_grad_disabled() -> bool {
    NO_GRAD_DEPTH.with(|d| d.get() > 0)
}

/// Runs `f` without recording: every operation inside returns a constant, and nothing is
/// kept for backward. Use it for evaluation and inference.
///
/// ```
/// use backprop_autograd::{no_grad, Var};
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f32>::ones(&[2]));
/// let y = no_grad(|| w.mul(&w));
/// assert!(!y.requires_grad() && y.op_name().is_none());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard::new();
    f()
}

/// Runs `f` recording (`disabled` false) or not (`disabled` true) whatever this thread's
/// state is, then restores that state (also when `f` panics). For work handed to another
/// thread, which should record as the thread that handed it over: pass that thread's
/// [`is_grad_disabled`]. A pool worker that is itself inside [`no_grad`] may run such work
/// while it waits for its own.
///
/// ```
/// use backprop_autograd::{is_grad_disabled, no_grad, with_grad_state, Var};
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f32>::ones(&[2]));
/// let y = no_grad(|| with_grad_state(false, || w.mul(&w)));
/// assert!(y.requires_grad() && !is_grad_disabled());
/// ```
pub fn with_grad_state<R>(disabled: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            NO_GRAD_DEPTH.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(NO_GRAD_DEPTH.with(|d| d.replace(usize::from(disabled))));
    f()
}

/// Disables recording on this thread until dropped (the guard form of [`no_grad`]).
pub struct NoGradGuard(());

impl NoGradGuard {
    /// Starts a no-grad scope.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NO_GRAD_DEPTH.with(|d| d.set(d.get() + 1));
        NoGradGuard(())
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        NO_GRAD_DEPTH.with(|d| d.set(d.get() - 1));
    }
}
