//! The [`Module`] trait, [`Sequential`] and [`Residual`].

use backprop_autograd::{is_grad_disabled, Var};
use backprop_tensor::Element;

use crate::activation::Activation;
use crate::conv::Conv2d;
use crate::layers::Linear;

/// Whether a forward pass is for training or evaluation. Dropout and batch normalization
/// behave differently in the two; every other layer ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: dropout drops, batch norm uses batch statistics and updates running ones.
    Train,
    /// Evaluation: dropout is the identity, batch norm uses its running statistics.
    Eval,
}

/// A layer or a network: a forward pass and named parameters.
///
/// Parameter names are stable and PyTorch-style (`weight`, `bias`; a container prefixes
/// its children's names: `fc1.weight`), so checkpoints keep their keys. Weights are laid out
/// `(out, in)` as in PyTorch.
///
/// Implement it for your own struct to compose any DAG of `Var` operations:
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Linear, Mode, Module};
/// use backprop_tensor::{Rng, Tensor};
///
/// /// Two branches of the same input, added: y = relu(A·x) + tanh(B·x).
/// struct TwoBranch { a: Linear, b: Linear }
/// impl Module for TwoBranch {
///     fn forward(&self, x: &Var, mode: Mode) -> Var {
///         self.a.forward(x, mode).relu().add(&self.b.forward(x, mode).tanh())
///     }
///     fn params(&self) -> Vec<(String, Var)> {
///         let mut p = backprop_nn::prefixed("a", self.a.params());
///         p.extend(backprop_nn::prefixed("b", self.b.params()));
///         p
///     }
///     fn kind(&self) -> String { "TwoBranch".into() }
/// }
/// let mut rng = Rng::seed(0);
/// let m = TwoBranch { a: Linear::new(3, 2, &mut rng), b: Linear::new(3, 2, &mut rng) };
/// let y = m.forward(&Var::constant(Tensor::ones(&[5, 3])), Mode::Train);
/// assert_eq!(y.shape(), vec![5, 2]);
/// assert_eq!(m.params()[0].0, "a.weight");
/// assert_eq!(m.num_params(), 16);
/// ```
pub trait Module<E: Element = f32>: Send + Sync {
    /// The forward pass.
    fn forward(&self, x: &Var<E>, mode: Mode) -> Var<E>;

    /// Learnable parameters with their names, in a stable order.
    fn params(&self) -> Vec<(String, Var<E>)> {
        Vec::new()
    }

    /// Non-learnable state that a checkpoint must keep (batch norm's running statistics).
    fn buffers(&self) -> Vec<(String, Var<E>)> {
        Vec::new()
    }

    /// A short description for summaries, e.g. `Linear(784 → 256)`.
    fn kind(&self) -> String;

    /// The number of learnable scalars.
    fn num_params(&self) -> usize {
        self.params()
            .iter()
            .map(|(_, p)| p.with_value(|v| v.numel()))
            .sum()
    }

    /// The direct children with their names, for summaries (empty for a plain layer).
    fn children(&self) -> Vec<(String, &dyn Module<E>)> {
        Vec::new()
    }

    /// Restarts every random stream inside (dropout masks) from `seed`. A trainer calls it
    /// at the start of each epoch with a seed derived from the run's seed and the epoch, so
    /// a resumed run draws the same masks as an uninterrupted one.
    fn reseed(&self, _seed: u64) {}

    /// Forgets any state carried from one forward pass to the next (a stateful recurrent
    /// layer's). A trainer calls it at the start of each epoch and before evaluating. The
    /// default passes it on to the children.
    fn reset_state(&self) {
        for (_, c) in self.children() {
            c.reset_state();
        }
    }

    /// True if each sample's output depends on that sample alone and the layer draws no
    /// random numbers, so a batch may be split and its halves computed apart. False for
    /// dropout (random masks) and batch norm (batch statistics); a container is sample
    /// independent if all its children are (the default).
    ///
    /// ```
    /// use backprop_nn::{BatchNorm, Dropout, Linear, Module, Residual, Sequential};
    /// use backprop_tensor::Rng;
    /// let mut rng = Rng::seed(0);
    /// let plain = Sequential::<f32>::new().add("fc1", Linear::new(2, 2, &mut rng));
    /// assert!(plain.sample_independent());
    /// let nested = Sequential::<f32>::new().add("res", Residual::new(
    ///     Sequential::new().add("bn", BatchNorm::new(2))));
    /// assert!(!nested.sample_independent());
    /// assert!(!Module::<f32>::sample_independent(&Dropout::new(0.5, 1)));
    /// ```
    fn sample_independent(&self) -> bool {
        self.children()
            .into_iter()
            .all(|(_, c)| c.sample_independent())
    }

    /// As [`Module::sample_independent`], in evaluation mode, where batch norm uses its
    /// running statistics and dropout is the identity: false only for layers that carry
    /// state from one forward pass to the next (a stateful recurrent layer) or whose first
    /// input axis is not the batch (a time-major sequence layer). A container is if all its
    /// children are (the default); a layer without children, if it is sample independent in
    /// training. A container whose own forward pass mixes samples must override this and
    /// [`Module::sample_independent`] alike.
    ///
    /// ```
    /// use backprop_nn::{BatchNorm, Dropout, Linear, Module, Sequential};
    /// use backprop_tensor::Rng;
    /// let mut rng = Rng::seed(0);
    /// let m = Sequential::<f32>::new()
    ///     .add("fc1", Linear::new(2, 2, &mut rng))
    ///     .add("bn1", BatchNorm::new(2))
    ///     .add("drop1", Dropout::new(0.5, 1));
    /// assert!(!m.sample_independent());
    /// assert!(m.sample_independent_in_eval());
    /// ```
    fn sample_independent_in_eval(&self) -> bool {
        let children = self.children();
        if children.is_empty() {
            self.sample_independent()
        } else {
            children.iter().all(|(_, c)| c.sample_independent_in_eval())
        }
    }

    /// The layer as a [`Linear`], if it is one.
    fn as_linear(&self) -> Option<&Linear<E>> {
        None
    }

    /// The layer as a [`Conv2d`], if it is one.
    fn as_conv2d(&self) -> Option<&Conv2d<E>> {
        None
    }

    /// The activation, if the layer is a parameter-free [`Activation`].
    fn activation(&self) -> Option<Activation> {
        None
    }

    /// The layer as [`Any`](std::any::Any), so that a reader of whole networks (the ONNX
    /// exporter) can ask for its concrete type with `downcast_ref::<MaxPool2d>()`. Every
    /// layer of this crate returns `Some(self)`; the default is `None` (the layer cannot be
    /// inspected).
    ///
    /// ```
    /// use backprop_nn::{MaxPool2d, Module};
    /// let pool: Box<dyn Module<f32>> = Box::new(MaxPool2d::new(2));
    /// let any = pool.as_any().unwrap();
    /// assert_eq!(any.downcast_ref::<MaxPool2d>().unwrap().0.kernel, (2, 2));
    /// ```
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }

    /// True if in evaluation the layer only rearranges or passes on its input, with no
    /// arithmetic and no parameters: flatten, reshape, and dropout (the identity in
    /// evaluation).
    fn is_shape_only(&self) -> bool {
        false
    }
}

/// Mixes a seed with an index (SplitMix64 finaliser), for deriving per-layer and
/// per-epoch seeds.
pub fn mix_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Prefixes parameter names with a child's name: `weight` → `fc1.weight`.
pub fn prefixed<E: Element>(prefix: &str, params: Vec<(String, Var<E>)>) -> Vec<(String, Var<E>)> {
    params
        .into_iter()
        .map(|(n, p)| (format!("{prefix}.{n}"), p))
        .collect()
}

/// Layers applied in order: `y = f_n(... f_2(f_1(x)))`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Activation, Linear, Mode, Module, Sequential};
/// use backprop_tensor::{Rng, Tensor};
/// let mut rng = Rng::seed(1);
/// let net = Sequential::<f32>::new()
///     .add("fc1", Linear::new(3, 4, &mut rng))
///     .add("act1", Activation::Sigmoid)
///     .add("fc2", Linear::new(4, 2, &mut rng));
/// let names: Vec<String> = net.params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
/// assert_eq!(net.num_params(), 26);
/// let y = net.forward(&Var::constant(Tensor::zeros(&[7, 3])), Mode::Eval);
/// assert_eq!(y.shape(), vec![7, 2]);
/// ```
pub struct Sequential<E: Element = f32> {
    pub(crate) layers: Vec<(String, Box<dyn Module<E>>)>,
}

impl<E: Element> Default for Sequential<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Element> Sequential<E> {
    /// An empty container.
    pub fn new() -> Self {
        Sequential { layers: Vec::new() }
    }

    /// Appends a layer under a name (its parameters become `name.weight`, ...).
    ///
    /// # Panics
    /// If the name is empty, contains a `.`, or is already used.
    pub fn add(mut self, name: &str, layer: impl Module<E> + 'static) -> Self {
        self.push(name, Box::new(layer));
        self
    }

    /// Appends a boxed layer under a name.
    ///
    /// # Panics
    /// If the name is empty, contains a `.`, or is already used.
    pub fn push(&mut self, name: &str, layer: Box<dyn Module<E>>) {
        assert!(
            !name.is_empty() && !name.contains('.'),
            "Sequential: layer name {name:?} must be non-empty and without '.'"
        );
        assert!(
            self.layers.iter().all(|(n, _)| n != name),
            "Sequential: layer name {name:?} is used twice"
        );
        self.layers.push((name.to_string(), layer));
    }

    /// Appends a layer named by its position (`0`, `1`, ...), as PyTorch does.
    pub fn then(self, layer: impl Module<E> + 'static) -> Self {
        let name = self.layers.len().to_string();
        self.add(&name, layer)
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True if there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layers with their names.
    pub fn layers(&self) -> impl Iterator<Item = (&str, &dyn Module<E>)> {
        self.layers.iter().map(|(n, l)| (n.as_str(), l.as_ref()))
    }
}

impl<E: Element> Module<E> for Sequential<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    /// Runs the layers in order. In evaluation with no graph recorded (inference), a
    /// convolution followed by a batch norm (and a ReLU) runs as one convolution with the
    /// batch norm folded into its weights; in training, a batch norm followed by a ReLU (and
    /// a max pooling) runs as one op, with the convolution before them too when its input is
    /// one channel of data, and so does a ReLU followed by a max pooling (see
    /// [`crate::fuse`]).
    fn forward(&self, x: &Var<E>, mode: Mode) -> Var<E> {
        let inference = mode == Mode::Eval && is_grad_disabled();
        let mut h = x.clone();
        let mut i = 0;
        while i < self.layers.len() {
            let fused = if inference {
                crate::fuse::conv_bn(&self.layers[i..], &h)
            } else {
                crate::fuse::conv_bn_relu_pool(&self.layers[i..], &h, mode)
                    .or_else(|| crate::fuse::bn_relu(&self.layers[i..], &h, mode))
                    .or_else(|| crate::fuse::relu_pool(&self.layers[i..], &h, mode))
            };
            if let Some((y, used)) = fused {
                h = y;
                i += used;
                continue;
            }
            h = self.layers[i].1.forward(&h, mode);
            i += 1;
        }
        h
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        self.layers
            .iter()
            .flat_map(|(n, l)| prefixed(n, l.params()))
            .collect()
    }
    fn buffers(&self) -> Vec<(String, Var<E>)> {
        self.layers
            .iter()
            .flat_map(|(n, l)| prefixed(n, l.buffers()))
            .collect()
    }
    fn kind(&self) -> String {
        format!("Sequential({} layers)", self.layers.len())
    }
    fn reseed(&self, seed: u64) {
        for (i, (_, l)) in self.layers.iter().enumerate() {
            l.reseed(mix_seed(seed, i as u64));
        }
    }
    fn children(&self) -> Vec<(String, &dyn Module<E>)> {
        self.layers
            .iter()
            .map(|(n, l)| (n.clone(), l.as_ref()))
            .collect()
    }
}

/// A residual connection: `Res(z) = z + f(z)`. The lecture's block is
/// `Res(z) = z + σ(MM(σ(MM(z))))`, i.e. `Residual::new(Sequential` of two linear layers with
/// activations`)`. `f` must keep the shape of `z`.
///
/// ```
/// use backprop_autograd::Var;
/// use backprop_nn::{Activation, Linear, Mode, Module, Residual, Sequential};
/// use backprop_tensor::{Rng, Tensor};
/// let mut rng = Rng::seed(2);
/// let block = Residual::new(
///     Sequential::<f32>::new()
///         .add("mm1", Linear::new(4, 4, &mut rng)).add("s1", Activation::Sigmoid)
///         .add("mm2", Linear::new(4, 4, &mut rng)).add("s2", Activation::Sigmoid),
/// );
/// let z = Var::constant(Tensor::ones(&[2, 4]));
/// assert_eq!(block.forward(&z, Mode::Train).shape(), vec![2, 4]);
/// assert_eq!(block.params()[0].0, "f.mm1.weight");
/// ```
pub struct Residual<E: Element = f32> {
    f: Box<dyn Module<E>>,
}

impl<E: Element> Residual<E> {
    /// Wraps `f` as `z + f(z)`.
    pub fn new(f: impl Module<E> + 'static) -> Self {
        Residual { f: Box::new(f) }
    }
}

impl<E: Element> Module<E> for Residual<E> {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn forward(&self, x: &Var<E>, mode: Mode) -> Var<E> {
        let fx = self.f.forward(x, mode);
        assert_eq!(
            fx.shape(),
            x.shape(),
            "Residual: f changed the shape from {:?} to {:?}",
            x.shape(),
            fx.shape()
        );
        x.add(&fx)
    }
    fn params(&self) -> Vec<(String, Var<E>)> {
        prefixed("f", self.f.params())
    }
    fn buffers(&self) -> Vec<(String, Var<E>)> {
        prefixed("f", self.f.buffers())
    }
    fn kind(&self) -> String {
        format!("Residual(z + {})", self.f.kind())
    }
    fn reseed(&self, seed: u64) {
        self.f.reseed(seed)
    }
    fn children(&self) -> Vec<(String, &dyn Module<E>)> {
        vec![("f".to_string(), self.f.as_ref())]
    }
}
