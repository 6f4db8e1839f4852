//! W6 benchmark: one forward+backward step of the `cnn` preset (conv-BN-ReLU blocks of 16, 32
//! and 64 channels, batch norm in training mode) at batch 64 through the library, against
//! the raw GEMM crate running the same matrix products, timed in alternating rounds of one
//! run (the best round of each side), and each round's own ratio (their minimum, maximum and
//! median: each pairs the two sides of one round, run moments apart, where the best rounds
//! of the two sides may fall in different phases of a host whose speed moves).
//!
//! The products are derived from the library's own rules by walking the built network on the
//! step's input (`common::Setup::products`), not written out by hand (the library runs
//! conv1's forward pass on its direct kernel and, batch norm, ReLU and max pooling following
//! it, its weight gradient inside batch norm's backward pass on the plane kernel; the raw
//! step makes both as GEMMs of the unfolded images): each convolution
//! unfolds chunks of images side by side (1 image for conv1's 784 positions, 4 for conv2's
//! 196, 8 for conv3's 49) and makes one GEMM per chunk for the forward pass
//! (`[16×9]·[9×784]`, `[32×144]·[144×784]`, `[64×288]·[288×392]`), one for the transposed
//! weight gradient `col·dYᵀ` and (but for conv1, whose input needs no gradient) one for the
//! unfolded input gradient `Wᵀ·dY`, the chunks spread over the pool with each product on one
//! thread; the linear layers make `x·wᵀ`, `g·w` and `gᵀ·x` on the calling thread, split over
//! the pool from 48³ multiply-adds. The raw step makes every one of these products as a dense
//! GEMM, phase after phase in the step's order, with the same operand layouts and threads;
//! each thread reuses one set of operands per phase, so they are warm in cache, as the
//! library's freshly unfolded columns and gathered gradients are (with a fresh set per
//! product the raw step ran from memory and took 10–13 ms instead of 6).
//! A linear layer whose input is sparse enough (`sparse::max_density_forward`: at most half
//! nonzeros, or 0.3 for a layer 16 times wider at its input than at its output) makes its
//! forward product on the library's sparse kernel instead of the GEMM crate (after ReLU about
//! half are: on this bench's input `fc2`'s forward goes sparse at density 0.486, while
//! `fc1`'s, at 0.499, takes the GEMM, and on other data either may differ): the raw step
//! still makes a sparse product as a dense GEMM, since
//! it is part of the step's arithmetic and a dense GEMM is the baseline for it; the bench
//! prints each linear layer's input density and which path the library took, and checks its
//! list against the calls and FLOPs the library's GEMM profile counted.
//!
//! The ratio is how close the whole step (batch norm, pooling, ReLU, im2col and the chunk
//! copies, the loss, the graph) comes to the bare products. Run with
//! `cargo bench --bench cnn`; `BENCH_LIBRARY_ONLY=200 cargo bench --bench cnn` times only
//! the library step, 200 times (for `perf record -g`).

use backprop::train::ModelSpec;

mod common;
use common::library_against_raw;

fn main() {
    library_against_raw("cnn (W6)", &ModelSpec::cnn(10), 10);
}
