//! # backprop-onnx
//!
//! Export a network to ONNX, the exchange format that ONNX Runtime, tract, TensorRT and
//! most serving stacks read. [`export`] walks a [`Module`](backprop_nn::Module) (a
//! [`Sequential`](backprop_nn::Sequential) as a spec builds it, or one assembled by hand
//! with [`Residual`](backprop_nn::Residual) blocks) and writes one graph of standard
//! operators against opset [`OPSET`], with a named input [`INPUT`], a named output
//! [`LOGITS`] (and optionally [`PROBABILITIES`]) and a symbolic batch dimension. The
//! protobuf is encoded by `prost` from the ONNX message definitions in [`proto`].
//!
//! The layers with an export are listed in the table in [`export`]'s module; the recurrent
//! layers (Elman RNN, LSTM, GRU) become ONNX's `RNN`, `LSTM` and `GRU` operators
//! ([`recurrent`]). A layer without an exact ONNX form (a Jordan layer, a stateful recurrent
//! layer) is refused with an error naming it. `tests/runtime.rs` runs the exported models in
//! tract and compares with our forward pass.

#![warn(missing_docs)]

mod export;
pub mod proto;
pub mod recurrent;

pub use export::{
    export, to_bytes, ExportError, ExportOptions, BATCH, INPUT, IR_VERSION, LOGITS, OPSET,
    PROBABILITIES,
};
