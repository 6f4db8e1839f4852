//! Helpers the benchmarks share: timing, one call of the raw GEMM crate, and (for the LeNet
//! and W6 benches) the list of matrix products a library training step makes, derived from
//! the library's own rules, so the raw crate can be timed on exactly those products.
#![allow(dead_code)] // each bench uses part of this

use std::time::Instant;

use backprop::autograd::Var;
use backprop::nn::{loss, Activation, BatchNorm, Linear, MaxPool2d, Mode, Module, Sequential};
use backprop::tensor::ops::conv::{runs_direct, runs_implicit, runs_plane_weight_grad};
use backprop::tensor::ops::sparse;
use backprop::tensor::{conv2d_output_shape, profile, Rng, Tensor};
use rayon::prelude::*;

/// Best seconds per call of `f` over `rounds` rounds of `reps` calls.
pub fn best_of(rounds: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// (m, n, k): dst[m×n] = a[m×k]·b[k×n].
pub type Shape = (usize, usize, usize);

/// One call of the raw GEMM crate: `c = a·b`, all row-major.
pub fn gemm_once(s: Shape, a: &[f32], b: &[f32], c: &mut [f32], par: gemm::Parallelism) {
    let p = Product {
        m: s.0,
        n: s.1,
        k: s.2,
        ta: false,
        tb: false,
        add: false,
        sparse: false,
        direct: false,
        fused: false,
        implicit: false,
    };
    p.run(a, b, c, par);
}

/// One matrix product as the library hands it to the GEMM crate
/// (`crates/tensor/src/ops/gemm.rs`): `dst[m×n] (+)= op(a)[m×k]·op(b)[k×n]`, where a
/// transposed operand is read through its strides from its stored (row-major) form and `dst`
/// is row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// `a` is stored `[k, m]` and read transposed.
    pub ta: bool,
    /// `b` is stored `[n, k]` and read transposed.
    pub tb: bool,
    /// `dst += a·b` (the library's `Out::Add`, the linear layer's bias-first forward).
    pub add: bool,
    /// The library computes this product with its sparse kernel
    /// (`crates/tensor/src/ops/sparse.rs`), not the GEMM crate; the raw step still runs it
    /// as a dense GEMM (see [`StepProducts`]).
    pub sparse: bool,
    /// The library computes this product with its direct kernel for a one-channel
    /// convolution (`crates/tensor/src/ops/conv.rs`, `runs_direct`), without unfolding the
    /// images; the raw step runs it as the GEMM of the unfolded images.
    pub direct: bool,
    /// The library computes this weight gradient inside the backward pass of the batch
    /// norm after the convolution (a first layer followed by batch norm, ReLU and max
    /// pooling: `crates/nn/src/fuse.rs`, `conv_bn_relu_pool`), plane by plane on its plane
    /// kernel; the raw step runs it as the GEMM of the unfolded images.
    pub fused: bool,
    /// The library computes this product (a convolution's forward pass over a chunk of
    /// several images, or its input gradient) with its implicit kernel
    /// (`crates/tensor/src/ops/conv.rs`, `runs_implicit`), reading a channel-major copy of
    /// the images (or the gathered `dY`) at each tap's offset instead of unfolding them; the raw step runs it as the GEMM of the unfolded
    /// images (the input gradient: `Wᵀ·dY`, as before col2im).
    pub implicit: bool,
}

impl Product {
    fn plain(m: usize, n: usize, k: usize) -> Product {
        Product {
            m,
            n,
            k,
            ta: false,
            tb: false,
            add: false,
            sparse: false,
            direct: false,
            fused: false,
            implicit: false,
        }
    }

    /// Whether the library hands this product to the GEMM crate.
    pub fn on_gemm(&self) -> bool {
        !self.sparse && !self.direct && !self.fused && !self.implicit
    }

    /// Multiply-adds.
    pub fn mads(&self) -> usize {
        self.m * self.n * self.k
    }

    /// The library's rule for making a product as its transpose (`transpose_worth_it` in
    /// `crates/tensor/src/ops/gemm.rs`, crate-private, so restated here): both operands with
    /// `k` contiguous (`a` as stored, `b` transposed), fewer rows than columns, `k ≥ 64` and
    /// at least 2^16 multiply-adds. The `cnn` preset's `fc1` forward is one.
    pub fn routed(&self) -> bool {
        !self.ta
            && self.tb
            && (2..self.n).contains(&self.m)
            && self.k >= 64
            && self.mads() >= 1 << 16
    }

    /// Runs the product through the raw crate with the same strides, α, β and parallelism
    /// the library's `gemm` wrapper passes; a product the library makes as its transpose
    /// ([`Product::routed`]) is made as its transpose here too (into `c`, as `[n, m]`), the
    /// crate's faster way for it, but without the library's copies into and out of it.
    pub fn run(&self, a: &[f32], b: &[f32], c: &mut [f32], par: gemm::Parallelism) {
        let (m, n, k) = (self.m, self.n, self.k);
        assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
        let alpha = if self.add { 1.0 } else { 0.0 };
        // (rows, columns, left operand with its (column stride, row stride), right operand
        // likewise) of the product the crate makes: [m, n] = a·b, or routed [n, m] = bᵀ·aᵀ
        let a_strides = if self.ta { (m, 1) } else { (1, k) };
        let b_strides = if self.tb { (k, 1) } else { (1, n) };
        let ((rows, cols), (lhs, (l_cs, l_rs)), (rhs, (r_cs, r_rs))) = if self.routed() {
            // bᵀ is the stored [n, k] (column stride 1, row stride k), aᵀ the stored [m, k]
            // read transposed (column stride k, row stride 1)
            ((n, m), (b, (1, k)), (a, (k, 1)))
        } else {
            ((m, n), (a, a_strides), (b, b_strides))
        };
        // SAFETY: `a` holds the m×k matrix (stored [m, k], or [k, m] when read transposed:
        // largest offset m·k − 1 either way), `b` the k×n one likewise, and routed, each is
        // read as its own transpose through the same storage; `c` holds the m·n outputs
        // (`rows·cols`, checked above); `c` is a `&mut` borrow, so it overlaps neither input.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                c.as_mut_ptr(),
                1,
                cols as isize,
                self.add,
                lhs.as_ptr(),
                l_cs as isize,
                l_rs as isize,
                rhs.as_ptr(),
                r_cs as isize,
                r_rs as isize,
                alpha,
                1.0f32,
                false,
                false,
                false,
                par,
            );
        }
    }
}

/// What runs one product of a step: the pool's tasks each make theirs on their own thread
/// (the convolution's chunks, `Threads::Caller`), the calling thread makes the linear
/// layers' products with the library's rule for splitting a product over the pool
/// (`Threads::Auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// One task per chunk, spread over rayon's pool, each product single-threaded.
    Pool,
    /// On the calling thread; a product of at least 48³ multiply-adds splits over the pool.
    Caller,
}

/// One stage of a step: a layer's forward or backward products, made by `tasks` (each a
/// list of products made in order), which run as `runner` says.
#[derive(Debug, Clone)]
pub struct Phase {
    pub what: String,
    pub runner: Runner,
    pub tasks: Vec<Vec<Product>>,
}

/// The library's rule for splitting one product over the pool (`profile::parallelism` in
/// `crates/tensor/src/profile.rs`, crate-private, so restated here): at least 48³
/// multiply-adds and more than one thread, for a caller that has the pool to itself (the
/// step's own thread, outside the pool or a worker marked by `profile::alone_on_the_pool`,
/// as both sides' steps run here).
fn auto_parallelism(p: &Product, threads: usize) -> gemm::Parallelism {
    if p.mads() >= 48 * 48 * 48 && threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    }
}

/// The convolution's chunk rule (`Geom::chunk_images` in `crates/tensor/src/ops/conv.rs`,
/// private, so restated here): enough images for about 768 output positions, at most 8.
fn chunk_images(positions: usize) -> usize {
    768usize.div_ceil(positions.max(1)).clamp(1, 8)
}

/// Every matrix product of one library training step, in the order the step makes them.
pub struct StepProducts {
    /// The forward products, layer by layer, then the backward products in reverse.
    pub phases: Vec<Phase>,
    /// One line per linear layer: its input's density and which of its products the library
    /// sends to the sparse kernel.
    pub notes: Vec<String>,
}

impl StepProducts {
    fn all(&self) -> impl Iterator<Item = &Product> {
        self.phases.iter().flat_map(|p| p.tasks.iter().flatten())
    }
    /// FLOPs of every product (2·m·n·k each), the sparse and direct ones counted as dense.
    pub fn flops(&self) -> f64 {
        self.all().map(|p| 2.0 * p.mads() as f64).sum()
    }
    /// FLOPs of the products the library sends to the GEMM crate.
    pub fn gemm_flops(&self) -> f64 {
        self.all()
            .filter(|p| p.on_gemm())
            .map(|p| 2.0 * p.mads() as f64)
            .sum()
    }
    /// Products the library sends to the GEMM crate.
    pub fn gemm_calls(&self) -> usize {
        self.all().filter(|p| p.on_gemm()).count()
    }

    /// Prints one line per phase: its tasks and their distinct shapes.
    pub fn print(&self) {
        println!("the step's products, (m×n×k) as the library calls the GEMM crate (\"as its transpose\": both sides make [n, m]):");
        for ph in &self.phases {
            let mut shapes: Vec<(Product, usize)> = Vec::new();
            for p in ph.tasks.iter().flatten() {
                match shapes.iter_mut().find(|(q, _)| q == p) {
                    Some((_, c)) => *c += 1,
                    None => shapes.push((*p, 1)),
                }
            }
            let list: Vec<String> = shapes
                .iter()
                .map(|(p, c)| {
                    format!(
                        "{c} × {}×{}×{}{}{}{}",
                        p.m,
                        p.n,
                        p.k,
                        if p.ta { " aᵀ" } else { "" },
                        if p.tb { " bᵀ" } else { "" },
                        if p.sparse {
                            " (library: sparse kernel)"
                        } else if p.fused {
                            " (library: plane kernel inside batch norm's backward pass)"
                        } else if p.direct {
                            " (library: direct kernel)"
                        } else if p.implicit {
                            " (library: implicit kernel)"
                        } else if p.routed() {
                            " (as its transpose)"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            let how = match ph.runner {
                Runner::Pool => format!("{} tasks on the pool", ph.tasks.len()),
                Runner::Caller => "caller, split if ≥ 48³".to_string(),
            };
            println!("  {:<22} [{how}] {}", ph.what, list.join(", "));
        }
        for n in &self.notes {
            println!("  {n}");
        }
    }
}

/// The network and inputs a library step runs on: `spec` built for MNIST-shaped images
/// (seed 0) and `batch` uniform inputs with random labels (seed 1).
pub struct Setup {
    pub model: Sequential<f32>,
    pub x: Tensor<f32>,
    pub labels: Vec<usize>,
}

impl Setup {
    pub fn new(spec: &backprop::train::ModelSpec, batch: usize) -> Setup {
        let model = spec
            .build_shaped::<f32>(784, Some([1, 28, 28]), Some(10), 0)
            .unwrap()
            .model;
        let mut rng = Rng::seed(1);
        let x = Tensor::<f32>::rand_uniform(&[batch, 784], 0.0, 1.0, &mut rng);
        let labels: Vec<usize> = (0..batch).map(|_| rng.below(10)).collect();
        Setup { model, x, labels }
    }

    /// The matrix products one step on this batch makes, found by running the layers one at
    /// a time on the same input and applying the library's rules to each convolution
    /// (`crates/tensor/src/ops/conv.rs`: chunks of images, one product per chunk and group
    /// for the forward pass, the transposed weight gradient `col·dYᵀ` and the unfolded input
    /// gradient `Wᵀ·dY`) and linear layer (`crates/tensor/src/ops/matmul.rs` and
    /// `crates/autograd/src/ops/matmul.rs`: `x·wᵀ` onto the bias, `dx = g·w`, `dw = gᵀ·x`,
    /// the forward and the weight gradient on the sparse kernel when the input is sparse
    /// enough). The input of the network needs no gradient, so neither does the first
    /// layer's input. Layers without products (batch norm, ReLU, pooling) are skipped.
    ///
    /// Beyond the count and FLOP check [`report`] prints, the list was checked call by call
    /// (2026-12-02) by breaking on the GEMM crate's f32 kernel entry
    /// (`gemm_f32::gemm::f32::avx512f::gemm_basic`) under gdb: in the W6 bench the raw
    /// step's calls had the library step's dimensions, strides, output form (write or add)
    /// and parallelism, one for one, plus the dense forms of the two products the library
    /// ran on its sparse kernel; in the LeNet-5 bench the library's calls were those of the
    /// printed list.
    pub fn products(&self) -> StepProducts {
        let (mut fwd, mut bwd, mut notes) = (Vec::new(), Vec::new(), Vec::new());
        let mut h = Var::constant(self.x.clone());
        let layers: Vec<_> = self.model.layers().collect();
        for (i, &(name, layer)) in layers.iter().enumerate() {
            let input = h.value();
            if let Some(conv) = layer.as_conv2d() {
                // the library's rule for a first layer (`crates/nn/src/fuse.rs`): one input
                // channel that needs no gradient, then batch norm, ReLU and max pooling
                let next = |k: usize| layers.get(i + k).and_then(|l| l.1.as_any());
                let fused = !h.requires_grad()
                    && runs_plane_weight_grad::<f32>(
                        input.shape(),
                        &conv.weight.shape(),
                        conv.params,
                    )
                    && next(1).is_some_and(|l| l.is::<BatchNorm<f32>>())
                    && layers.get(i + 2).and_then(|l| l.1.activation()) == Some(Activation::Relu)
                    && next(3).is_some_and(|l| l.is::<MaxPool2d>());
                let (f, b) = conv_phases(
                    name,
                    &input,
                    &conv.weight.value(),
                    conv,
                    (h.requires_grad(), fused),
                );
                fwd.push(f);
                bwd.extend(b);
            } else if let Some(lin) = layer.as_any().and_then(|a| a.downcast_ref::<Linear<f32>>()) {
                let (f, b, note) = linear_phases(name, &input, lin, h.requires_grad());
                fwd.push(f);
                bwd.push(b);
                notes.push(note);
            }
            h = layer.forward(&h, Mode::Train);
        }
        bwd.reverse();
        fwd.extend(bwd);
        StepProducts { phases: fwd, notes }
    }
}

/// A convolution's forward phase and (if anything needs a gradient) its backward phase.
fn conv_phases(
    name: &str,
    x: &Tensor<f32>,
    w: &Tensor<f32>,
    conv: &backprop::nn::Conv2d<f32>,
    (input_needs_grad, fused): (bool, bool),
) -> (Phase, Option<Phase>) {
    let p = conv.params;
    let (xs, ws) = (x.shape(), w.shape());
    let y = conv2d_output_shape(xs, ws, p).unwrap();
    let (n, o, pp) = (xs[0], ws[0], y[2] * y[3]);
    let ckk = xs[1] * ws[2] * ws[3];
    let (og, ckkg) = (o / p.groups, ckk / p.groups);
    let want_w = conv.weight.requires_grad();
    let cb = chunk_images(pp);
    let sizes: Vec<usize> = (0..n.div_ceil(cb)).map(|c| cb.min(n - c * cb)).collect();
    // a one-channel convolution's forward pass and weight gradient skip the GEMM crate
    let direct = runs_direct::<f32>(xs, ws, p);
    // chunks of several images (a forward pass) and the input gradient skip it where the
    // output is as large as the input
    let implicit = runs_implicit::<f32>(xs, ws, p);
    let forward = sizes
        .iter()
        .map(|&nb| {
            let y = Product {
                direct,
                implicit: implicit && !direct && nb > 1,
                ..Product::plain(og, nb * pp, ckkg)
            };
            vec![y; p.groups]
        })
        .collect();
    // the forward pass runs a batch that fits one chunk on the calling thread
    let runner = if n <= cb {
        Runner::Caller
    } else {
        Runner::Pool
    };
    let f = Phase {
        what: format!("{name} forward"),
        runner,
        tasks: forward,
    };
    if !want_w && !input_needs_grad {
        return (f, None);
    }
    let backward = sizes
        .iter()
        .map(|&nb| {
            let mut t = Vec::new();
            if want_w {
                // dWᵀ = col·dYᵀ, dY read transposed
                let dw = Product {
                    tb: true,
                    direct,
                    fused,
                    ..Product::plain(ckkg, og, nb * pp)
                };
                t.extend(vec![dw; p.groups]);
            }
            if input_needs_grad {
                // dcol = Wᵀ·dY, W read transposed
                let dx = Product {
                    ta: true,
                    implicit,
                    ..Product::plain(ckkg, nb * pp, og)
                };
                t.extend(vec![dx; p.groups]);
            }
            t
        })
        .collect();
    let b = Phase {
        what: format!("{name} backward"),
        runner: Runner::Pool,
        tasks: backward,
    };
    (f, Some(b))
}

/// A linear layer's forward and backward phases, and a note on its input's density.
fn linear_phases(
    name: &str,
    x: &Tensor<f32>,
    lin: &Linear<f32>,
    input_needs_grad: bool,
) -> (Phase, Phase, String) {
    let ws = lin.weight.value().shape().to_vec();
    let (out_f, in_f) = (ws[0], ws[1]);
    let rows = x.numel() / in_f;
    let max_fwd = sparse::max_density_forward(in_f, out_f);
    let sparse_fwd = sparse::worth_it(x.data(), rows, max_fwd);
    let sparse_dw = sparse::worth_it(x.data(), rows, sparse::MAX_DENSITY_WEIGHT_GRAD);
    let density = x.data().iter().filter(|v| **v != 0.0).count() as f64 / x.numel() as f64;
    let f = Phase {
        what: format!("{name} forward"),
        runner: Runner::Caller,
        tasks: vec![vec![Product {
            tb: true,
            add: lin.bias.is_some(),
            sparse: sparse_fwd,
            ..Product::plain(rows, out_f, in_f)
        }]],
    };
    let mut back = Vec::new();
    if input_needs_grad {
        back.push(Product::plain(rows, in_f, out_f)); // dx = g·w
    }
    back.push(Product {
        ta: true,
        sparse: sparse_dw,
        ..Product::plain(out_f, in_f, rows) // dw = gᵀ·x
    });
    let b = Phase {
        what: format!("{name} backward"),
        runner: Runner::Caller,
        tasks: vec![back],
    };
    let path = |s: bool| if s { "sparse kernel" } else { "GEMM" };
    let note = format!(
        "{name}: input density {density:.3}: forward on the {} (sparse at ≤ {}), weight gradient on the {} (≤ {})",
        path(sparse_fwd),
        max_fwd,
        path(sparse_dw),
        sparse::MAX_DENSITY_WEIGHT_GRAD
    );
    (f, b, note)
}

/// Times the raw GEMM crate on `products`, phase after phase as the library's step makes
/// them (each product dense, the sparse ones too), over `reps` steps after `warmup`:
/// seconds per step. Each thread reuses one set of operands per phase, allocated before the
/// timing, so the operands are as warm in cache as they can be (the library's own im2col
/// and gathers leave theirs warm too): the raw step is the products' best case.
pub fn time_raw_step(products: &StepProducts, warmup: usize, reps: usize) -> f64 {
    // on a pool worker, each step with the other workers kept awake, as the library's step
    // (`time_library_step`, each step inside `alone_on_the_pool`)
    if rayon::current_thread_index().is_none() {
        return rayon::scope(|_| time_raw_step(products, warmup, reps));
    }
    let threads = rayon::current_num_threads();
    // per phase, one set of operands per pool thread and one for a caller outside it, each
    // product's as large as its largest instance in the phase (a last chunk may be smaller)
    let bufs: Vec<PhaseBufs> = products
        .phases
        .iter()
        .map(|ph| {
            let most = ph.tasks.iter().map(Vec::len).max().unwrap_or(0);
            let set: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..most)
                .map(|j| {
                    let size = |f: fn(&Product) -> usize| {
                        ph.tasks
                            .iter()
                            .filter_map(|t| t.get(j).map(f))
                            .max()
                            .unwrap_or(0)
                    };
                    (
                        vec![0.5f32; size(|p| p.m * p.k)],
                        vec![0.25f32; size(|p| p.k * p.n)],
                        vec![0.0f32; size(|p| p.m * p.n)],
                    )
                })
                .collect();
            (0..=threads)
                .map(|_| std::sync::Mutex::new(set.clone()))
                .collect()
        })
        .collect();
    let step = || {
        profile::keep_awake(|| raw_step(products, &bufs, threads));
    };
    for _ in 0..warmup {
        step();
    }
    let t = Instant::now();
    for _ in 0..reps {
        step();
    }
    t.elapsed().as_secs_f64() / reps as f64
}

/// Operands of one phase's products: per pool thread (and one for a caller outside it), an
/// `(a, b, c)` per product of a task.
type PhaseBufs = Vec<std::sync::Mutex<Vec<(Vec<f32>, Vec<f32>, Vec<f32>)>>>;

/// One raw step: every phase's products, as [`time_raw_step`] times them.
fn raw_step(products: &StepProducts, bufs: &[PhaseBufs], threads: usize) {
    {
        for (ph, pb) in products.phases.iter().zip(bufs) {
            let run_task = |task: &Vec<Product>, pool: bool| {
                let slot = rayon::current_thread_index()
                    .unwrap_or(threads)
                    .min(threads);
                let mut tb = pb[slot].lock().unwrap();
                for (p, (a, b, c)) in task.iter().zip(tb.iter_mut()) {
                    let par = if pool {
                        gemm::Parallelism::None
                    } else {
                        auto_parallelism(p, threads)
                    };
                    p.run(a, b, c, par);
                }
            };
            match ph.runner {
                Runner::Pool => ph.tasks.par_iter().for_each(|t| run_task(t, true)),
                Runner::Caller => ph.tasks.iter().for_each(|t| run_task(t, false)),
            }
        }
    }
}

/// The allocator settings of the `backprop` binary (src/main.rs), so that a step is measured
/// as `train` runs it, without page faults on every step's buffers. Call before any thread.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// One training step (forward in training mode, cross-entropy, backward) of `setup`'s
/// network on its whole batch, from the calling thread, timed over `reps` steps after
/// `warmup`: seconds per step and what the GEMM profile saw. Called from outside the pool,
/// the timing runs on one of its workers, each step marked as having the pool to itself
/// with the other workers kept awake (`profile::alone_on_the_pool`), as `Trainer::step`
/// runs a step.
pub fn time_library_step(setup: &Setup, warmup: usize, reps: usize) -> (f64, profile::GemmStats) {
    if rayon::current_thread_index().is_none() {
        return rayon::scope(|_| time_library_step(setup, warmup, reps));
    }
    let step = || {
        profile::alone_on_the_pool(|| {
            let out = setup
                .model
                .forward(&Var::constant(setup.x.clone()), Mode::Train);
            let g = loss::cross_entropy(&out, &setup.labels, loss::Reduction::Mean).backward();
            std::hint::black_box(g);
        })
    };
    for _ in 0..warmup {
        step();
    }
    profile::reset();
    profile::set_enabled(true);
    let t = Instant::now();
    for _ in 0..reps {
        step();
    }
    let secs = t.elapsed().as_secs_f64() / reps as f64;
    profile::set_enabled(false);
    (secs, profile::gemm_stats())
}

/// A whole bench: tunes the allocator, prints its title, times the library's step of
/// `spec` at `batch` against the raw GEMM crate running the same products (8 alternating
/// rounds of `reps` steps each side), and reports; with `BENCH_LIBRARY_ONLY` set, times the
/// library step alone (see [`library_only`]).
pub fn library_against_raw(title: &str, spec: &backprop::train::ModelSpec, reps: usize) {
    tune_allocator();
    let batch = 64;
    let threads = rayon::current_num_threads();
    println!("backprop {title} benchmark ({threads} threads, batch {batch})");
    let setup = Setup::new(spec, batch);
    if library_only(&setup) {
        return;
    }
    let products = setup.products();
    products.print();
    let rounds = 8;
    println!("best of {rounds} alternating rounds of {reps} steps each side");
    let (ours, st, raw, mut per_round) = alternate(&setup, &products, rounds, reps);
    report(batch, reps, ours, &st, raw, &products);
    per_round.sort_by(f64::total_cmp);
    let k = per_round.len();
    let median = (per_round[(k - 1) / 2] + per_round[k / 2]) / 2.0;
    println!(
        "ratio round by round (each round's raw step over its library step, which ran just before it): {:.3}–{:.3}, median {median:.3}",
        per_round[0],
        per_round[k - 1]
    );
}

/// The library step and the raw step timed in `rounds` alternating rounds of `reps` steps
/// each (after a warm-up of both), so that a burst of load on a shared machine hits both
/// sides alike: the best round of each, seconds per step, and the GEMM profile of the
/// library's best round. Also each round's ratio (its raw step's time over its library
/// step's): on a host whose speed moves within a run, the best rounds of the two sides may
/// fall in different phases, while a round's two sides run moments apart.
pub fn alternate(
    setup: &Setup,
    products: &StepProducts,
    rounds: usize,
    reps: usize,
) -> (f64, profile::GemmStats, f64, Vec<f64>) {
    let (mut ours, mut raw) = (f64::INFINITY, f64::INFINITY);
    let mut stats = None;
    let mut per_round = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let warmup = if round == 0 { 5 } else { 1 };
        let (t, st) = time_library_step(setup, warmup, reps);
        if t < ours {
            (ours, stats) = (t, Some(st));
        }
        let r = time_raw_step(products, warmup, reps);
        raw = raw.min(r);
        per_round.push(r / t);
    }
    (ours, stats.expect("at least one round"), raw, per_round)
}

/// With `BENCH_LIBRARY_ONLY=N` in the environment, times only the library step, `N` times
/// (to record its profile with `perf record -g` without the raw step's samples), prints it
/// and returns true.
pub fn library_only(setup: &Setup) -> bool {
    let Some(reps) = std::env::var("BENCH_LIBRARY_ONLY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return false;
    };
    let (ours, st) = time_library_step(setup, 5, reps.max(1));
    println!(
        "library step {:.1} µs (GEMM calls, their times summed over the threads: {:.1}% of it), {reps} steps, no raw step",
        ours * 1e6,
        100.0 * st.seconds / (ours * reps.max(1) as f64)
    );
    true
}

/// Prints the library step against the raw products and their ratio, and checks the product
/// list against what the library's GEMM profile counted.
pub fn report(
    batch: usize,
    reps: usize,
    ours: f64,
    st: &profile::GemmStats,
    raw: f64,
    products: &StepProducts,
) {
    let lib_flops = st.flops as f64 / reps as f64;
    let raw_flops = products.flops();
    println!("library step         {:>9.1} µs   {:>8.0} samples/s   {:>6.2} GFLOP/s ({} GEMMs, their times summed over the threads: {:.1}% of the step)", ours * 1e6, batch as f64 / ours, lib_flops / ours * 1e-9, st.calls / reps as u64, 100.0 * st.seconds / (ours * reps as f64));
    println!(
        "raw gemm, same GEMMs {:>9.1} µs   {:>8.0} samples/s   {:>6.2} GFLOP/s",
        raw * 1e6,
        batch as f64 / raw,
        raw_flops / raw * 1e-9
    );
    println!("ratio library/raw (throughput): {:.3}", raw / ours);
    let own_kernels = raw_flops - products.gemm_flops();
    println!(
        "GEMM FLOPs per step: library {:.2} M, raw list {:.2} M (of which {:.2} M the library runs on its own kernels: sparse, direct, implicit)",
        lib_flops * 1e-6,
        raw_flops * 1e-6,
        own_kernels * 1e-6
    );
    let same = st.calls == (products.gemm_calls() * reps) as u64
        && st.flops as f64 == products.gemm_flops() * reps as f64;
    println!(
        "check: the library's GEMM profile counted {} calls and {:.2} M FLOPs per step, the list's GEMM products are {} and {:.2} M: {}",
        st.calls as f64 / reps as f64,
        lib_flops * 1e-6,
        products.gemm_calls(),
        products.gemm_flops() * 1e-6,
        if same { "same" } else { "DIFFERENT (the list is out of date)" }
    );
}
