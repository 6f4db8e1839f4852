//! # backprop-nn
//!
//! The building blocks of neural networks on top of `backprop-autograd`: the [`Module`]
//! trait and containers ([`Sequential`], [`Residual`]), layers ([`Linear`], [`Dropout`],
//! [`LayerNorm`], [`BatchNorm`], [`Maxout`], [`Flatten`], [`Conv2d`], ...), each with its
//! configuration beside it ([`LinearConfig`], ...), [`activation`]s, [`loss`]es, seeded
//! initializers ([`Init`]), the model [`spec`] ([`ModelSpec`]) and a per-layer [`Summary`].
//!
//! Everything is generic over the element type (`f32` by default, `f64` for gradient
//! checks), and every layer's gradients are checked in `f64` in `tests/gradcheck_layers.rs`.
//!
//! ```
//! use backprop_autograd::Var;
//! use backprop_nn::{loss, Activation, Linear, Mode, Module, Sequential};
//! use backprop_tensor::{Rng, Tensor};
//! let mut rng = Rng::seed(0);
//! let net = Sequential::<f32>::new()
//!     .add("fc1", Linear::new(2, 8, &mut rng))
//!     .add("relu", Activation::Relu)
//!     .add("fc2", Linear::new(8, 3, &mut rng));
//! let x = Var::constant(Tensor::rand_normal(&[4, 2], 0.0, 1.0, &mut rng));
//! let loss = loss::cross_entropy(&net.forward(&x, Mode::Train), &[0, 2, 1, 0], loss::Reduction::Mean);
//! let grads = loss.backward();
//! assert_eq!(grads.len(), 4); // two weights, two biases
//! ```

#![warn(missing_docs)]

pub mod activation;
pub mod classic;
pub mod conv;
pub mod conv1d;
pub mod fuse;
pub mod init;
pub mod jordan;
pub mod layers;
pub mod loss;
pub mod module;
pub mod rbf;
pub mod recurrent;
pub mod spec;
pub mod summary;

pub use activation::{Activation, PRelu, PReluConfig};
pub use backprop_tensor::CellKind;
pub use conv::{
    AvgPool2d, AvgPool2dConfig, Conv2d, Conv2dConfig, GlobalAvgPool2d, GlobalAvgPoolConfig,
    MaxPool2d, MaxPool2dConfig, Pair, Reshape, ReshapeConfig,
};
pub use conv1d::{Conv1d, Conv1dConfig, Conv1dLayout};
pub use init::Init;
pub use jordan::{Jordan, JordanConfig};
pub use layers::{
    BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig, Dropout, DropoutConfig, Flatten,
    FlattenConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, Maxout, MaxoutConfig,
};
pub use loss::Reduction;
pub use module::{mix_seed, prefixed, Mode, Module, Residual, Sequential};
pub use rbf::{Rbf, RbfConfig};
pub use recurrent::{
    GruConfig, LstmConfig, Recurrent, RecurrentOptions, RecurrentState, RnnConfig, RnnReluConfig,
    SequenceOutput,
};
pub use spec::{
    Built, InputKind, LayerConfig, LayerError, LayerPlan, LayerSpec, ModelPlan, ModelSpec,
    PlannedLayer, SpecError,
};
pub use summary::{Summary, SummaryRow};
