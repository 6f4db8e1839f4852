//! LeNet-5 benchmark: one forward+backward step at batch 64 through the library, against
//! the raw GEMM crate running the same matrix products, timed in alternating rounds of one
//! run (the best round of each side), and each round's own ratio (their minimum, maximum and
//! median: each pairs the two sides of one round, run moments apart, where the best rounds
//! of the two sides may fall in different phases of a host whose speed moves).
//!
//! The products are derived from the library's own rules by walking the built network on the
//! step's input (`common::Setup::products`): each convolution unfolds chunks of images side
//! by side (1 image for conv1's 784 positions, 8 for conv2's 100) and makes one GEMM per
//! chunk for the forward pass (`[6×25]·[25×784]`, `[16×150]·[150×800]`), one for the
//! transposed weight gradient `col·dYᵀ` and (but for conv1, whose input needs no gradient)
//! one for the unfolded input gradient `Wᵀ·dY`, the chunks spread over the pool with each
//! product on one thread; the three linear layers make `x·wᵀ`, `g·w` and `gᵀ·x` on the
//! calling thread, split over the pool from 48³ multiply-adds. The raw step makes every one
//! of these products as a dense GEMM, phase after phase in the step's order, with the same
//! operand layouts and threads, each thread reusing one set of operands per phase (warm in
//! cache, as the library's freshly unfolded columns are). A linear layer whose input is
//! sparse enough (after ReLU and pooling; on this bench's input the 120 → 84 layer's, at
//! density 0.494) makes its forward on the library's sparse kernel instead of the GEMM
//! crate: the raw step still makes that product as a dense GEMM, since it is part of the
//! step's arithmetic; the bench prints each linear layer's input density and which path the
//! library took, and checks its list against the calls and FLOPs the library's GEMM profile
//! counted.
//!
//! The step here is the whole batch from the calling thread; the trainer instead runs
//! LeNet's two half-batches side by side (its samples are independent), which this bench
//! does not. Run with `cargo bench --bench lenet`; `BENCH_LIBRARY_ONLY=N` times only the
//! library step, `N` times (for `perf record -g`).

use backprop::train::ModelSpec;

mod common;
use common::library_against_raw;

fn main() {
    library_against_raw("LeNet-5", &ModelSpec::lenet5(10), 25);
}
