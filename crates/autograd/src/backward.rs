//! Reverse-mode differentiation: [`Var::backward`] and the gradient store [`Grads`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use backprop_tensor::{Element, Tensor};

use crate::var::{Var, VarId};

/// Gradients from one backward pass, keyed by variable identity. Optimizers take a
/// `&Grads` in their `step`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_tensor::Tensor;
/// let w = Var::parameter(Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2]));
/// let grads = w.mul(&w).sum().backward();
/// assert_eq!(grads.get(&w).unwrap().to_vec(), vec![2.0, 4.0]);
/// assert_eq!(grads.len(), 1);
/// ```
#[derive(Clone, Default, Debug)]
pub struct Grads<E: Element = f32> {
    map: HashMap<VarId, Tensor<E>>,
}

impl<E: Element> Grads<E> {
    /// An empty store.
    pub fn new() -> Self {
        Grads {
            map: HashMap::new(),
        }
    }
    /// The gradient of `var`, if it received one.
    pub fn get(&self, var: &Var<E>) -> Option<&Tensor<E>> {
        self.map.get(&var.id())
    }
    /// The gradient under an id.
    pub fn get_id(&self, id: VarId) -> Option<&Tensor<E>> {
        self.map.get(&id)
    }
    /// Takes a gradient out of the store.
    pub fn remove(&mut self, var: &Var<E>) -> Option<Tensor<E>> {
        self.map.remove(&var.id())
    }
    /// Sets (replaces) a gradient, e.g. after clipping.
    pub fn insert(&mut self, var: &Var<E>, grad: Tensor<E>) {
        self.map.insert(var.id(), grad);
    }
    /// Number of gradients held.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// True if no gradient is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// All `(id, gradient)` pairs, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&VarId, &Tensor<E>)> {
        self.map.iter()
    }
    /// Mutable access to every gradient (for clipping in place).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&VarId, &mut Tensor<E>)> {
        self.map.iter_mut()
    }
}

fn accumulate<E: Element>(slot: &mut HashMap<VarId, Tensor<E>>, id: VarId, g: Tensor<E>) {
    match slot.get_mut(&id) {
        None => {
            slot.insert(id, g);
        }
        Some(acc) => {
            // Gradients add up over every use of a value: never assign.
            for (a, &b) in acc.data_mut().iter_mut().zip(g.data()) {
                *a += b;
            }
        }
    }
}

impl<E: Element> Var<E> {
    /// Differentiates this scalar (one-element) variable with respect to every leaf that
    /// requires a gradient and reaches it. Each op's saved state is freed as soon as its
    /// backward rule has run, so a graph can be differentiated once.
    ///
    /// # Panics
    /// If the variable has more than one element (use [`Var::backward_with`]), or if part of
    /// the graph was already consumed by an earlier backward.
    pub fn backward(&self) -> Grads<E> {
        let shape = self.shape();
        assert!(
            shape.iter().product::<usize>() == 1,
            "backward: the output has shape {shape:?}; backward starts from a scalar (reduce it first, or use backward_with)"
        );
        self.backward_with(Tensor::ones(&shape))
    }

    /// Backward from a non-scalar output with an explicit upstream gradient of its shape.
    ///
    /// # Panics
    /// If `seed`'s shape differs from the output's, or part of the graph was consumed.
    pub fn backward_with(&self, seed: Tensor<E>) -> Grads<E> {
        self.backward_inner(seed, None)
    }

    /// [`Var::backward`] that also reports every gradient sent along an edge of the graph:
    /// `on_edge(input, output, g)` is called once per (output, input) pair of a recorded
    /// op with `g` the part of `∂C/∂input` that flows through `output`, i.e. upstream ×
    /// local gradient. An input used by several ops is reported once per op, and its
    /// gradient is the sum of those parts. Drawings of the graph use it to label edges.
    ///
    /// ```
    /// use backprop_autograd::Var;
    /// use backprop_tensor::Tensor;
    /// let x = Var::parameter(Tensor::<f64>::from_vec(vec![3.0], &[1]));
    /// let y = x.mul(&x).add(&x).sum(); // y = x² + x
    /// let mut edges = Vec::new();
    /// let g = y.backward_observed(&mut |input, output, g| edges.push((input, output, g.to_vec())));
    /// let into_x: f64 = edges.iter().filter(|e| e.0 == x.id()).map(|e| e.2[0]).sum();
    /// assert_eq!(into_x, g.get(&x).unwrap().to_vec()[0]); // 3 + 3 + 1 = 7
    /// ```
    ///
    /// # Panics
    /// As [`Var::backward`].
    pub fn backward_observed(&self, on_edge: &mut dyn FnMut(VarId, VarId, &Tensor<E>)) -> Grads<E> {
        let shape = self.shape();
        assert!(
            shape.iter().product::<usize>() == 1,
            "backward_observed: the output has shape {shape:?}; backward starts from a scalar"
        );
        self.backward_inner(Tensor::ones(&shape), Some(on_edge))
    }

    fn backward_inner(
        &self,
        seed: Tensor<E>,
        mut on_edge: Option<&mut dyn FnMut(VarId, VarId, &Tensor<E>)>,
    ) -> Grads<E> {
        assert_eq!(
            seed.shape(),
            self.shape().as_slice(),
            "backward_with: seed shape differs from the output's"
        );
        let mut out = Grads::new();
        if !self.requires_grad() {
            return out;
        }
        let order = topo_order(self);
        let mut pending: HashMap<VarId, Tensor<E>> = HashMap::new();
        pending.insert(self.id(), seed);
        for var in order.iter().rev() {
            let Some(grad) = pending.remove(&var.id()) else {
                continue;
            };
            if var.is_leaf() {
                out.map.insert(var.id(), grad);
                continue;
            }
            let grad_fn = var
                .node
                .grad_fn
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| panic!("backward: this graph was already differentiated and its saved values freed; run the forward pass again"));
            if var.node.retain_grad.load(Ordering::Relaxed) {
                out.map.insert(var.id(), grad.clone());
            }
            let needs: Vec<bool> = grad_fn.parents.iter().map(|p| p.requires_grad()).collect();
            let parent_grads = (grad_fn.backward)(&grad, &needs);
            debug_assert_eq!(parent_grads.len(), grad_fn.parents.len());
            for (p, g) in grad_fn.parents.iter().zip(parent_grads) {
                if let (true, Some(g)) = (p.requires_grad(), g) {
                    let ps = p.shape();
                    assert_eq!(
                        g.shape(),
                        ps.as_slice(),
                        "backward of {}: gradient shape {:?} for an input of shape {:?}",
                        grad_fn.op,
                        g.shape(),
                        ps
                    );
                    if let Some(f) = on_edge.as_mut() {
                        f(p.id(), var.id(), &g);
                    }
                    accumulate(&mut pending, p.id(), g);
                }
            }
        }
        out
    }
}

/// Post-order (inputs before outputs) of the nodes that require a gradient.
fn topo_order<E: Element>(root: &Var<E>) -> Vec<Var<E>> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // Iterative DFS: (node, children already pushed?)
    let mut stack = vec![(root.clone(), false)];
    while let Some((v, expanded)) = stack.pop() {
        if expanded {
            order.push(v);
            continue;
        }
        if !seen.insert(v.id()) {
            continue;
        }
        let parents: Vec<Var<E>> = match v.node.grad_fn.lock().unwrap().as_ref() {
            Some(g) => g
                .parents
                .iter()
                .filter(|p| p.requires_grad())
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        stack.push((v, true));
        for p in parents {
            if !seen.contains(&p.id()) {
                stack.push((p, false));
            }
        }
    }
    order
}
