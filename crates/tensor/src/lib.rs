//! # backprop-tensor
//!
//! The bottom layer of backprop: n-dimensional row-major tensors of `f32` or `f64`, and the
//! CPU kernels that work on them. It knows nothing of graphs or training; `backprop-autograd`
//! builds differentiation on top of it.
//!
//! Shape errors are programming errors: the plain form of an op panics with a message that
//! names the op and both shapes. Every op that can fail on shapes also has a `try_` form that
//! returns a [`TensorError`] instead.
//!
//! ```
//! use backprop_tensor::{Rng, Tensor};
//! let mut rng = Rng::seed(0);
//! let x = Tensor::<f32>::rand_normal(&[4, 3], 0.0, 1.0, &mut rng);
//! let w = Tensor::<f32>::rand_normal(&[3, 2], 0.0, 1.0, &mut rng);
//! let p = x.matmul(&w).softmax(-1);
//! assert_eq!(p.shape(), &[4, 2]);
//! assert!(p.sum_axis(1, false).data().iter().all(|s| (s - 1.0).abs() < 1e-6));
//! assert!(x.try_matmul(&x).is_err());
//! ```

#![warn(missing_docs)]

mod element;
mod error;
pub mod hint;
pub mod memory;
pub mod ops;
pub mod profile;
mod rng;
pub mod shape;
mod storage;
pub mod team;
mod tensor;

pub use element::Element;
pub use error::{Result, TensorError};
pub use ops::conv::{
    conv2d_backward, conv2d_backward_unfolded, conv2d_direct, conv2d_forward, conv2d_output_shape,
    runs_plane_weight_grad, try_conv2d_forward, try_conv2d_forward_keep, try_conv2d_forward_relu,
    try_conv2d_forward_relu_maxpool, ChannelWeightGrad, Conv2dParams, Unfolded,
};
pub use ops::matmul::{
    linear_forward, linear_weight_grad, linear_weight_grad_kept, try_linear_forward,
    try_linear_forward_keep, LinearInput,
};
pub use ops::norm::{
    batch_norm_backward, batch_norm_forward, batch_norm_relu_backward, batch_norm_relu_forward,
    batch_norm_relu_max_pool_backward, batch_norm_relu_max_pool_forward, channel_affine_backward,
    channel_affine_forward, conv2d_batch_norm_relu_max_pool_backward,
};
pub use ops::pool::{
    avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
    pool2d_output_shape, relu_max_pool2d_backward, relu_max_pool2d_forward, Pool2dParams,
};
pub use ops::recurrent::{
    recurrent_backward, recurrent_forward, try_recurrent_forward, CellKind, RecurrentGrads,
    RecurrentPass, RecurrentSaved, RecurrentWant, RecurrentWeights,
};
pub use ops::softmax::{log_softmax_backward, softmax_backward};
pub use rng::Rng;
pub use tensor::Tensor;
