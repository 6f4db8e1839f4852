//! backprop
