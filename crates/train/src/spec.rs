//! Model specifications. They live in [`backprop_nn::spec`], beside the layers whose
//! configurations they list; this module re-exports them for the trainer's callers.

pub use backprop_nn::spec::*;
pub use backprop_nn::{
    AvgPool2dConfig, BatchNormConfig, Conv2dConfig, DropoutConfig, FlattenConfig,
    GlobalAvgPoolConfig, LayerNormConfig, LinearConfig, MaxPool2dConfig, MaxoutConfig, PReluConfig,
    Pair, ReshapeConfig,
};
