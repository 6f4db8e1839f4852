//! Linear maps whose input is mostly zeros: MNIST pixels are 81% zeros, and ReLU outputs
//! are often half zeros. A dense GEMM multiplies every zero; these kernels visit only the
//! nonzeros of each input row.
//!
//! Shapes: `x: [rows, in]`, `w: [out, in]` (PyTorch's layout), `b: [out]`,
//! `g: [rows, out]`. Forward `y = x·wᵀ + b`: each output row is the bias plus a sum of rows
//! of `wᵀ` scaled by the row's nonzeros, so `w` is transposed once per call into a scratch
//! buffer (`[in, out]`, contiguous rows). Weight gradient `dw = gᵀ·x`: column `k` of `dw` is
//! the sum of the rows of `g` whose sample has `x[·, k] ≠ 0`, so `x` is indexed by column and
//! `dw` is written sixteen columns at a time through a register transpose.
//!
//! Both skip exact zeros only, so the results equal the dense products up to the order of
//! the floating-point sums, with one documented difference: a zero input times an infinite
//! or NaN weight contributes nothing here (a dense product would give NaN). NaN inputs count
//! as nonzeros and propagate as usual. Each output is summed in a fixed order that does not
//! depend on the thread count.
//!
//! On x86-64 with AVX-512F the `f32` kernels use it (detected at run time); everything else
//! runs the portable loops, which the tests hold the fast kernels to.

use std::any::TypeId;

use rayon::prelude::*;

use crate::element::Element;
use crate::ops::packing::Packed;

/// Inputs at most this dense take the sparse forward. Measured with `cargo bench --bench
/// sparse` (one thread, this project's machine): on the 784-256 layer at batch 32 the sparse
/// forward beats the GEMM crate up to about 0.6 density, on 256-128 at every density tried;
/// a margin keeps borderline inputs on the GEMM.
pub const MAX_DENSITY_FORWARD: f64 = 0.5;

/// Inputs at most this dense take the sparse forward when the layer is at least
/// [`NARROW_RATIO`] times wider at its input than at its output. Counting and gathering the
/// nonzeros costs in proportion to the input's width, the products they save in proportion
/// to the output's, so a narrow output pays the gathering with less saved work: measured
/// with `cargo bench --bench sparse` (one thread, AMD EPYC), the sparse forward stops winning
/// at about 0.3 density on 3136-64 at batch 32 and at 0.35–0.4 on 3136-128 at batch 32 and 64
/// (the `cnn` preset's `fc1`), against 0.47 on 1568-128 and 0.57 on 784-256.
pub const MAX_DENSITY_FORWARD_NARROW: f64 = 0.3;

/// How many times wider than its output a layer's input must be for
/// [`MAX_DENSITY_FORWARD_NARROW`] to apply.
pub const NARROW_RATIO: usize = 16;

/// The density up to which a linear layer of `in_f` inputs and `out_f` outputs takes the
/// sparse forward: [`MAX_DENSITY_FORWARD`], or [`MAX_DENSITY_FORWARD_NARROW`] when
/// `in_f ≥ NARROW_RATIO·out_f`.
pub fn max_density_forward(in_f: usize, out_f: usize) -> f64 {
    if in_f >= NARROW_RATIO.saturating_mul(out_f) {
        MAX_DENSITY_FORWARD_NARROW
    } else {
        MAX_DENSITY_FORWARD
    }
}

/// Inputs at most this dense take the sparse weight gradient, which wins up to about 0.45
/// density on the 784-256 layer and 0.3 on 256-128.
pub const MAX_DENSITY_WEIGHT_GRAD: f64 = 0.3;

// a dense forward pass keeps no nonzeros for the weight gradient (`try_linear_forward_keep`),
// so every input dense enough for it must be too dense for the sparse weight gradient
const _: () = assert!(
    MAX_DENSITY_WEIGHT_GRAD <= MAX_DENSITY_FORWARD
        && MAX_DENSITY_WEIGHT_GRAD <= MAX_DENSITY_FORWARD_NARROW
);

/// Fewer rows than this stay dense: packing `w` costs as much as a few rows of work.
pub const MIN_ROWS: usize = 8;

/// True when `x` (`rows` rows) has at most `max_density` nonzeros, enough rows, and the
/// sparse kernels are [`enabled`].
pub fn worth_it<E: Element>(x: &[E], rows: usize, max_density: f64) -> bool {
    if rows < MIN_ROWS || x.is_empty() || !enabled() {
        return false;
    }
    let nnz = if split_over_pool(x.len() * 64) {
        x.par_chunks(1 << 16).map(count_nonzeros).sum()
    } else {
        count_nonzeros(x)
    };
    sparse_enough(nnz, x.len(), max_density)
}

/// The density rule of [`worth_it`]: at most `max_density` of `len` elements are nonzero.
fn sparse_enough(nonzeros: usize, len: usize, max_density: f64) -> bool {
    (nonzeros as f64) <= max_density * len as f64
}

/// How many elements of `x` are not zero (NaN counts; −0 does not), with AVX-512F for `f32`
/// where the CPU has it: the portable loop compiles to two lanes at a time, which made the
/// count 10% of a batch-1024 inference of the MLP.
fn count_nonzeros<E: Element>(x: &[E]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if let Some(xf) = as_f32(x).filter(|_| avx512()) {
        // SAFETY: AVX-512F was detected.
        return unsafe { simd::count_nonzeros_f32(xf) };
    }
    x.iter().filter(|v| **v != E::ZERO).count()
}

/// False when the environment sets `BACKPROP_SPARSE=0`: every linear map then takes the
/// dense GEMM, which is how the two paths are compared end to end.
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("BACKPROP_SPARSE").map_or(true, |v| v != "0"))
}

/// The nonzeros of a row-major matrix, row by row (compressed sparse rows).
struct Csr<E> {
    /// `ptr[r]..ptr[r + 1]` indexes row `r`'s entries.
    ptr: Vec<usize>,
    col: Vec<u32>,
    val: Vec<E>,
}

impl<E: Element> Csr<E> {
    fn build(x: &[E], rows: usize, cols: usize) -> Self {
        if let (Some(xf), true) = (as_f32(x), avx512()) {
            #[cfg(target_arch = "x86_64")]
            {
                let c = if split_over_pool(x.len() * 64) && rows >= 64 {
                    // large inputs (batched inference): compress row chunks side by side,
                    // then join them in order
                    let per = rows.div_ceil(rayon::current_num_threads() * 2);
                    let parts: Vec<simd::CsrF32> = xf
                        .par_chunks(per * cols)
                        // SAFETY: AVX-512F was detected (`avx512()`); the chunk holds
                        // `chunk.len() / cols` whole rows of `cols`.
                        .map(|chunk| unsafe { simd::csr_f32(chunk, chunk.len() / cols, cols) })
                        .collect();
                    let nnz: usize = parts.iter().map(|p| p.col.len()).sum();
                    let mut all = simd::CsrF32 {
                        ptr: Vec::with_capacity(rows + 1),
                        col: Vec::with_capacity(nnz),
                        val: Vec::with_capacity(nnz),
                    };
                    all.ptr.push(0);
                    let mut bases = Vec::with_capacity(parts.len());
                    for p in &parts {
                        let base = all.ptr[all.ptr.len() - 1];
                        bases.push(base);
                        all.ptr.extend(p.ptr[1..].iter().map(|o| o + base));
                    }
                    // the parts' entries copied into place side by side
                    let (cp, vp) = (SendPtr(all.col.as_mut_ptr()), SendPtr(all.val.as_mut_ptr()));
                    parts.par_iter().zip(&bases).for_each(|(p, &base)| {
                        // SAFETY: part k goes to base_k..base_k + len_k; these ranges are
                        // disjoint and end at nnz, the buffers' capacity.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                p.col.as_ptr(),
                                cp.get().add(base),
                                p.col.len(),
                            );
                            std::ptr::copy_nonoverlapping(
                                p.val.as_ptr(),
                                vp.get().add(base),
                                p.val.len(),
                            );
                        }
                    });
                    // SAFETY: every one of the nnz entries was written above.
                    unsafe {
                        all.col.set_len(nnz);
                        all.val.set_len(nnz);
                    }
                    all
                } else {
                    assert!(
                        xf.len() >= rows * cols,
                        "sparse: x is shorter than its rows"
                    );
                    // SAFETY: AVX-512F was detected (`avx512()`); `xf` holds `rows` rows of
                    // `cols` (checked just above).
                    unsafe { simd::csr_f32(xf, rows, cols) }
                };
                return Csr {
                    ptr: c.ptr,
                    col: c.col,
                    val: cast_vec(c.val),
                };
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = xf;
        }
        let mut ptr = Vec::with_capacity(rows + 1);
        let mut col = Vec::new();
        let mut val = Vec::new();
        ptr.push(0);
        for r in 0..rows {
            for (k, &v) in x[r * cols..(r + 1) * cols].iter().enumerate() {
                if v != E::ZERO {
                    col.push(k as u32);
                    val.push(v);
                }
            }
            ptr.push(col.len());
        }
        Csr { ptr, col, val }
    }

    fn row(&self, r: usize) -> (&[u32], &[E]) {
        let (s, e) = (self.ptr[r], self.ptr[r + 1]);
        (&self.col[s..e], &self.val[s..e])
    }

    /// The same entries indexed by column: `(ptr, row, val)` with `cols + 1` pointers.
    fn by_column(&self, rows: usize, cols: usize) -> (Vec<usize>, Vec<u32>, Vec<E>) {
        let mut ptr = vec![0usize; cols + 1];
        for &k in &self.col {
            ptr[k as usize + 1] += 1;
        }
        for k in 0..cols {
            ptr[k + 1] += ptr[k];
        }
        let mut next = ptr.clone();
        let mut row = vec![0u32; self.col.len()];
        let mut val = vec![E::ZERO; self.col.len()];
        for r in 0..rows {
            let (cs, vs) = self.row(r);
            for (&k, &v) in cs.iter().zip(vs) {
                let p = &mut next[k as usize];
                row[*p] = r as u32;
                val[*p] = v;
                *p += 1;
            }
        }
        (ptr, row, val)
    }
}

/// The nonzeros of a linear layer's input `[rows, cols]`, found by its forward pass
/// ([`try_linear_forward_keep`]) and kept for its weight gradient, which then neither counts
/// nor gathers them again.
///
/// [`try_linear_forward_keep`]: crate::try_linear_forward_keep
pub struct KeptInput<E> {
    csr: Csr<E>,
    rows: usize,
    cols: usize,
}

impl<E: Element> KeptInput<E> {
    /// The nonzeros of `x` (`rows` rows of `cols`).
    pub(crate) fn of(x: &[E], rows: usize, cols: usize) -> Self {
        KeptInput {
            csr: Csr::build(x, rows, cols),
            rows,
            cols,
        }
    }

    /// `(rows, cols)` of the input.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// True if the sparse weight gradient is worth it for this input: what [`worth_it`]
    /// with [`MAX_DENSITY_WEIGHT_GRAD`] says, from the kept count (the same nonzeros: the
    /// CSR keeps NaN and drops −0 as the count does).
    pub(crate) fn weight_grad_worth_it(&self) -> bool {
        self.rows >= MIN_ROWS
            && self.cols > 0
            && sparse_enough(
                self.csr.col.len(),
                self.rows * self.cols,
                MAX_DENSITY_WEIGHT_GRAD,
            )
    }
}

/// `x·wᵀ + b` (`[rows, out_f]`, row-major) from `x`'s nonzeros.
pub fn linear_forward_sparse<E: Element>(
    x: &[E],
    rows: usize,
    in_f: usize,
    w: &[E],
    out_f: usize,
    b: Option<&[E]>,
) -> Vec<E> {
    assert_eq!(x.len(), rows * in_f, "linear_forward_sparse: x");
    linear_forward_kept(&KeptInput::of(x, rows, in_f), w, out_f, b, None)
}

/// [`linear_forward_sparse`] from an input's kept nonzeros; with `packed`, a packing of
/// this `w` shared with other threads ([`crate::ops::packing`]).
pub(crate) fn linear_forward_kept<E: Element>(
    input: &KeptInput<E>,
    w: &[E],
    out_f: usize,
    b: Option<&[E]>,
    packed: Option<&Packed>,
) -> Vec<E> {
    let (rows, in_f, csr) = (input.rows, input.cols, &input.csr);
    assert_eq!(w.len(), out_f * in_f, "linear_forward_sparse: w");
    assert!(
        b.is_none_or(|b| b.len() == out_f),
        "linear_forward_sparse: b"
    );
    if out_f == 0 || rows == 0 {
        return Vec::new();
    }
    #[cfg(target_arch = "x86_64")]
    if let (Some(wf), true) = (as_f32(w), avx512()) {
        let vals = as_f32(&csr.val).unwrap();
        let bf = b.map(|b| as_f32(b).unwrap());
        let bounds = simd::block_bounds(&csr.ptr, &csr.col, in_f);
        let mut out: Vec<E> = Vec::with_capacity(rows * out_f);
        let yp = SendPtr(out.as_mut_ptr() as *mut f32);
        // One group of 64 outputs per task: each task reads its rows of `w` once and writes
        // its own columns of `out`. With fewer groups than threads (a narrow layer) the rows
        // are split as well, so no thread idles.
        let slabs = out_f.div_ceil(simd::GROUP);
        let parallel = split_over_pool(csr.col.len() * out_f);
        let parts = if parallel {
            (2 * rayon::current_num_threads()).div_ceil(slabs).min(rows)
        } else {
            1
        };
        let per = rows.div_ceil(parts);
        let stride = in_f.div_ceil(simd::KB).max(1) + 1;
        // A shared packing serves the tasks of one thread each (the halves of a batch).
        // (Split over the pool with the rows in parts, every part of a group packs the
        // group's blocks again. A packing of the call's own for them, which allocates the
        // whole packed weight per call, made the `cnn` preset's epoch slower in most of
        // nine alternating pairs, so they do not share one.)
        let packed = packed.filter(|p| !parallel && p.fits(out_f, in_f));
        let task = |(q, part): (usize, usize)| {
            let (r0, r1) = ((part * per).min(rows), ((part + 1) * per).min(rows));
            if r0 == r1 {
                // an empty last part: nothing to compute, nothing to pack
                return;
            }
            // SAFETY: AVX-512F was detected; column indices are below `in_f`; `out` holds
            // `rows` rows of `out_f`, rows r0..r1 start at `r0·out_f`, and group q of them
            // writes only their columns 64q..64q + 64.
            unsafe {
                simd::forward_group(
                    &bounds[r0 * stride..r1 * stride],
                    &csr.col,
                    vals,
                    wf,
                    in_f,
                    out_f,
                    bf,
                    q,
                    yp.get().add(r0 * out_f),
                    packed,
                )
            }
        };
        // Sharing a packing, the threads start on different groups (by worker parity), so
        // that each packs about half of the blocks while the other packs the rest.
        let first = match packed {
            Some(_) => rayon::current_thread_index().unwrap_or(0) % 2 * (slabs / 2),
            None => 0,
        };
        let tasks = (0..slabs).flat_map(|i| (0..parts).map(move |p| ((first + i) % slabs, p)));
        if parallel {
            tasks.collect::<Vec<_>>().into_par_iter().for_each(task);
        } else {
            tasks.for_each(task);
        }
        // SAFETY: the groups wrote every element of every row.
        unsafe { out.set_len(rows * out_f) };
        return out;
    }
    // nothing is packed ahead for the portable loops
    let _ = packed;
    let mut out = vec![E::ZERO; rows * out_f];
    let mut wt = vec![E::ZERO; in_f * out_f];
    transpose(w, out_f, in_f, &mut wt);
    let run = |r0: usize, y: &mut [E]| forward_rows(csr, r0, &wt, out_f, b, y);
    if split_over_pool(csr.col.len() * out_f) {
        let per = rows.div_ceil(rayon::current_num_threads() * 4).max(1);
        out.par_chunks_mut(per * out_f)
            .enumerate()
            .for_each(|(c, y)| run(c * per, y));
    } else {
        run(0, &mut out);
    }
    out
}

/// Rows `r0..` of the forward product, as many as `y` holds.
fn forward_rows<E: Element>(
    csr: &Csr<E>,
    r0: usize,
    wt: &[E],
    n: usize,
    b: Option<&[E]>,
    y: &mut [E],
) {
    for (i, yr) in y.chunks_mut(n).enumerate() {
        let (cols, vals) = csr.row(r0 + i);
        match b {
            Some(b) => yr.copy_from_slice(b),
            None => yr.fill(E::ZERO),
        }
        for (&k, &v) in cols.iter().zip(vals) {
            let wr = &wt[k as usize * n..][..n];
            for (yj, &wj) in yr.iter_mut().zip(wr) {
                *yj += v * wj;
            }
        }
    }
}

/// `dw = gᵀ·x` (`[out_f, in_f]`, row-major) from `x`'s nonzeros, for `g: [rows, out_f]`.
pub fn linear_weight_grad_sparse<E: Element>(
    g: &[E],
    x: &[E],
    rows: usize,
    in_f: usize,
    out_f: usize,
) -> Vec<E> {
    assert_eq!(x.len(), rows * in_f, "linear_weight_grad_sparse: x");
    linear_weight_grad_kept(g, &KeptInput::of(x, rows, in_f), out_f)
}

/// [`linear_weight_grad_sparse`] from the input's kept nonzeros.
pub(crate) fn linear_weight_grad_kept<E: Element>(
    g: &[E],
    input: &KeptInput<E>,
    out_f: usize,
) -> Vec<E> {
    let (rows, in_f) = (input.rows, input.cols);
    assert_eq!(g.len(), rows * out_f, "linear_weight_grad_sparse: g");
    if out_f == 0 || in_f == 0 {
        return Vec::new();
    }
    let csr = &input.csr;
    let (ptr, row, val) = csr.by_column(rows, in_f);
    let parallel = split_over_pool(csr.col.len() * out_f);
    #[cfg(target_arch = "x86_64")]
    if let (Some(vals), true) = (as_f32(&val), avx512()) {
        let mut dw: Vec<E> = Vec::with_capacity(out_f * in_f);
        let dwp = SendPtr(dw.as_mut_ptr() as *mut f32);
        // SAFETY: AVX-512F was detected; `g` holds `rows` rows of `out_f` (asserted on entry).
        let (ga, ns) = unsafe { simd::aligned_rows(as_f32(g).unwrap(), rows, out_f) };
        let gp = SendPtr(ga.as_ptr() as *mut f32);
        // Sixteen columns of dw per task; tasks write disjoint columns.
        let block = |tmp: &mut Vec<simd::Line>, kb: usize| {
            // SAFETY: AVX-512F was detected; dw is [out_f, in_f]; the row indices are
            // below `rows`, so every read of the aligned copy of g is in bounds.
            unsafe {
                simd::weight_grad_block(
                    &ptr,
                    &row,
                    vals,
                    gp.get(),
                    ns,
                    out_f,
                    in_f,
                    kb * 16,
                    tmp,
                    dwp.get(),
                )
            }
        };
        let blocks = in_f.div_ceil(16);
        if parallel {
            (0..blocks).into_par_iter().for_each_init(Vec::new, block);
        } else {
            let mut tmp = Vec::new();
            (0..blocks).for_each(|kb| block(&mut tmp, kb));
        }
        // SAFETY: the blocks wrote every column of every row.
        unsafe { dw.set_len(out_f * in_f) };
        return dw;
    }
    // Portable: the rows of dwᵀ, one column of x at a time, then one transpose.
    let _ = parallel;
    let mut dwt = vec![E::ZERO; in_f * out_f];
    for (k, d) in dwt.chunks_mut(out_f).enumerate() {
        for e in ptr[k]..ptr[k + 1] {
            let (r, v) = (row[e] as usize, val[e]);
            for (dj, &gj) in d.iter_mut().zip(&g[r * out_f..][..out_f]) {
                *dj += v * gj;
            }
        }
    }
    let mut dw = vec![E::ZERO; out_f * in_f];
    transpose(&dwt, in_f, out_f, &mut dw);
    dw
}

/// `dst[cols, rows] = src[rows, cols]ᵀ`, both contiguous.
///
/// # Panics
/// If `src` or `dst` does not hold `rows·cols` elements.
pub fn transpose<E: Element>(src: &[E], rows: usize, cols: usize, dst: &mut [E]) {
    transpose_strided(src, rows, cols, dst, rows)
}

/// `src[rows, cols]ᵀ` into `dst`, `cols` rows of `ld ≥ rows` elements (each row's first
/// `rows` are written, the padding is left as it is).
///
/// # Panics
/// If `src` does not hold `rows·cols` elements, `dst` not `cols·ld`, or `ld < rows`.
pub(crate) fn transpose_strided<E: Element>(
    src: &[E],
    rows: usize,
    cols: usize,
    dst: &mut [E],
    ld: usize,
) {
    assert!(
        ld >= rows
            && rows.checked_mul(cols) == Some(src.len())
            && cols.checked_mul(ld) == Some(dst.len()),
        "transpose: a [{rows}, {cols}] matrix from {} elements into {} at stride {ld}",
        src.len(),
        dst.len()
    );
    // SAFETY: `src` holds `rows·cols` elements and `dst`, a `&mut` borrow separate from
    // `src`, holds `cols` rows of `ld ≥ rows` (all checked above), which is what
    // `transpose_into` needs with `dst_stride = ld`.
    unsafe { transpose_into(src, rows, cols, dst.as_mut_ptr(), ld) }
}

/// Writes `src[rows, cols]ᵀ` to `dst`, whose rows are `dst_stride` apart.
///
/// # Safety
/// `src` must hold `rows·cols` elements, and `dst` must be valid for writes of `cols` rows
/// of `rows` elements at stride `dst_stride` (element `(c, r)` at `c·dst_stride + r`)
/// without overlapping `src`.
pub(crate) unsafe fn transpose_into<E: Element>(
    src: &[E],
    rows: usize,
    cols: usize,
    dst: *mut E,
    dst_stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(sf), true) = (as_f32(src), avx512()) {
        // SAFETY: AVX-512F was detected; `E` is `f32`, so `dst` is the same memory as `f32`;
        // the extents of `src` (rows × cols at stride cols) and `dst` are this function's
        // own safety conditions.
        unsafe { simd::transpose_f32(sf.as_ptr(), rows, cols, cols, dst as *mut f32, dst_stride) };
        return;
    }
    const T: usize = 16;
    for r0 in (0..rows).step_by(T) {
        for c0 in (0..cols).step_by(T) {
            for r in r0..(r0 + T).min(rows) {
                for c in c0..(c0 + T).min(cols) {
                    // SAFETY: r < rows and c < cols, so `(c, r)` is inside the region the
                    // caller guarantees `dst` is valid for.
                    unsafe { *dst.add(c * dst_stride + r) = src[r * cols + c] };
                }
            }
        }
    }
}

fn split_over_pool(multiply_adds: usize) -> bool {
    multiply_adds >= 1 << 21 && crate::profile::may_split()
}

#[derive(Clone, Copy)]
struct SendPtr<E>(*mut E);
// SAFETY: a `SendPtr` is used only to write disjoint parts of one buffer from pool tasks,
// and the buffer outlives the tasks (they are joined before it is used again).
unsafe impl<E> Send for SendPtr<E> {}
// SAFETY: as for `Send`: the tasks sharing it write disjoint elements.
unsafe impl<E> Sync for SendPtr<E> {}
impl<E> SendPtr<E> {
    fn get(self) -> *mut E {
        self.0
    }
}

pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && !force_portable()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Tests switch the SIMD kernels off to compare them with the portable ones.
#[cfg(test)]
fn force_portable() -> bool {
    tests::PORTABLE.with(|p| p.get())
}
#[cfg(not(test))]
fn force_portable() -> bool {
    false
}

fn as_f32<E: Element>(s: &[E]) -> Option<&[f32]> {
    (TypeId::of::<E>() == TypeId::of::<f32>())
        // SAFETY: E is f32.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
}

#[cfg(target_arch = "x86_64")]
fn cast_vec<E: Element>(v: Vec<f32>) -> Vec<E> {
    assert_eq!(TypeId::of::<E>(), TypeId::of::<f32>());
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: E is f32 (checked), so layout and allocation are the same.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut E, v.len(), v.capacity()) }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod simd {
    use std::arch::x86_64::*;

    use crate::ops::packing::simd::Packed;

    pub struct CsrF32 {
        pub ptr: Vec<usize>,
        pub col: Vec<u32>,
        pub val: Vec<f32>,
    }

    /// Compresses each row's nonzeros with `vcompressps` into registers (the memory form is
    /// slow on some cores) and unaligned full-width stores; the buffers carry 16 elements of
    /// slack for the last store.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and `x` must hold `rows·cols` elements.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn csr_f32(x: &[f32], rows: usize, cols: usize) -> CsrF32 {
        let cap = x.len() + 16;
        let mut col: Vec<u32> = Vec::with_capacity(cap);
        let mut val: Vec<f32> = Vec::with_capacity(cap);
        let mut ptr = Vec::with_capacity(rows + 1);
        ptr.push(0);
        let (cp, vp) = (col.as_mut_ptr() as *mut i32, val.as_mut_ptr());
        let mut n = 0usize;
        let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let zero = _mm512_setzero_ps();
        for r in 0..rows {
            let row = x.as_ptr().add(r * cols);
            let mut k = 0usize;
            while k < cols {
                let lanes = (cols - k).min(16);
                let live: __mmask16 = if lanes == 16 {
                    0xffff
                } else {
                    ((1u32 << lanes) - 1) as u16
                };
                let v = _mm512_maskz_loadu_ps(live, row.add(k));
                // NaN != 0 holds, so NaN inputs are kept
                let m = _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(live, v, zero);
                if m != 0 {
                    let idx = _mm512_add_epi32(_mm512_set1_epi32(k as i32), iota);
                    _mm512_storeu_ps(vp.add(n), _mm512_maskz_compress_ps(m, v));
                    _mm512_storeu_si512(
                        cp.add(n) as *mut __m512i,
                        _mm512_maskz_compress_epi32(m, idx),
                    );
                    n += m.count_ones() as usize;
                }
                k += 16;
            }
            ptr.push(n);
        }
        col.set_len(n);
        val.set_len(n);
        CsrF32 { ptr, col, val }
    }

    /// [`super::count_nonzeros`] for `f32`: one compare per sixteen elements, counted from
    /// the mask.
    ///
    /// # Safety
    /// The CPU must have AVX-512F. Loads read `x`'s elements only (the tail masked).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn count_nonzeros_f32(x: &[f32]) -> usize {
        let zero = _mm512_setzero_ps();
        let mut n = 0usize;
        let mut k = 0usize;
        while k < x.len() {
            let live = lanes(x.len() - k);
            let v = _mm512_maskz_loadu_ps(live, x.as_ptr().add(k));
            // NaN != 0 holds (unordered), as in the portable count
            n += _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(live, v, zero).count_ones() as usize;
            k += 16;
        }
        n
    }

    fn lanes(n: usize) -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            ((1u32 << n) - 1) as u16
        }
    }

    /// Inputs per block: a block of packed weights (128 inputs × 64 outputs, 32 KB) is
    /// read by every row before the next is packed. Measured with `cargo bench --bench
    /// sparse`: 128 and 256 are best on the MLP's shapes (64 costs 6–15% more, 1024 20%).
    pub const KB: usize = 128;
    /// Outputs per group: four slabs of sixteen, so each nonzero's index and value are
    /// loaded once for four vector FMAs.
    pub const GROUP: usize = 64;

    /// Where each row's entries for each block of [`KB`] inputs start: row `r`, block `kb`
    /// at `[r * (kblocks + 1) + kb]`, with the row's end last.
    pub fn block_bounds(ptr: &[usize], cols: &[u32], in_f: usize) -> Vec<usize> {
        let kblocks = in_f.div_ceil(KB).max(1);
        let rows = ptr.len() - 1;
        let mut bounds = vec![0usize; rows * (kblocks + 1)];
        let one = |r: usize, out: &mut [usize]| {
            let row = &cols[ptr[r]..ptr[r + 1]];
            let mut at = 0;
            for (kb, o) in out[..kblocks].iter_mut().enumerate() {
                while at < row.len() && (row[at] as usize) < kb * KB {
                    at += 1;
                }
                *o = ptr[r] + at;
            }
            out[kblocks] = ptr[r + 1];
        };
        if crate::profile::split_elementwise(cols.len()) {
            use rayon::prelude::*;
            bounds
                .par_chunks_mut(kblocks + 1)
                .enumerate()
                .with_min_len(64)
                .for_each(|(r, out)| one(r, out));
        } else {
            for (r, out) in bounds.chunks_exact_mut(kblocks + 1).enumerate() {
                one(r, out);
            }
        }
        bounds
    }

    /// Outputs `64q..64q + 64` of every row. Per block of [`KB`] inputs, the group's weights
    /// `w[64q.., k]` are transposed into a 32 KB buffer (input-major, 64 outputs per input)
    /// and every row adds its nonzeros' weight vectors to its running sums. `w` is read
    /// once; the buffer stays in L1. With `packed` (a packing of `w` shared with other
    /// threads, see [`crate::ops::packing`]) the blocks come from there, each packed once.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `bounds` must come from [`block_bounds`] for these
    /// entries, with every column index below `in_f`; `w` must hold `n·in_f` elements and `b`
    /// (if given) `n`; `q·GROUP < n`; `y` must be valid for writes of `rows` rows of `n`,
    /// of which this call writes only columns `q·GROUP..q·GROUP + GROUP`; and `packed`, if
    /// given, must be a packing of this very `w` ([`Packed::fits`] its shape).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn forward_group(
        bounds: &[usize],
        cols: &[u32],
        vals: &[f32],
        w: &[f32],
        in_f: usize,
        n: usize,
        b: Option<&[f32]>,
        q: usize,
        y: *mut f32,
        packed: Option<&Packed>,
    ) {
        let kblocks = in_f.div_ceil(KB).max(1);
        let rows = bounds.len() / (kblocks + 1);
        let c0 = q * GROUP;
        let on = (n - c0).min(GROUP);
        let masks: [__mmask16; 4] = std::array::from_fn(|s| lanes(on.saturating_sub(16 * s)));
        let bias: [__m512; 4] = std::array::from_fn(|s| match b {
            Some(b) => _mm512_maskz_loadu_ps(masks[s], b.as_ptr().add(c0 + 16 * s)),
            None => _mm512_setzero_ps(),
        });
        // 64-byte aligned, so no vector load straddles two cache lines
        let mut buf = Block([0f32; KB * GROUP]);
        let bp = buf.0.as_mut_ptr();
        for kb in 0..kblocks {
            let k_lo = kb * KB;
            let k_hi = (k_lo + KB).min(in_f);
            // SAFETY (both packings): AVX-512F was detected (this function's contract); `w`
            // holds `n·in_f` elements and `q·GROUP < n`; a shared block and `buf` each
            // hold `k_hi − k_lo` rows of GROUP floats.
            let shared = packed.and_then(|p| {
                p.block(q, kb, |dst| unsafe {
                    pack_block(w, in_f, c0, &masks, k_lo, k_hi, dst)
                })
            });
            let wb = match shared {
                Some(block) => block,
                None => {
                    pack_block(w, in_f, c0, &masks, k_lo, k_hi, bp);
                    bp as *const f32
                }
            };
            for r in 0..rows {
                let st = bounds[r * (kblocks + 1) + kb];
                let e = bounds[r * (kblocks + 1) + kb + 1];
                let out = y.add(r * n + c0);
                let mut acc: [__m512; 4] = if kb == 0 {
                    bias
                } else {
                    std::array::from_fn(|s| _mm512_maskz_loadu_ps(masks[s], out.add(16 * s)))
                };
                for i in st..e {
                    let v = _mm512_set1_ps(*vals.get_unchecked(i));
                    let p = wb.add((*cols.get_unchecked(i) as usize - k_lo) * GROUP);
                    for (s, a) in acc.iter_mut().enumerate() {
                        *a = _mm512_fmadd_ps(v, _mm512_loadu_ps(p.add(16 * s)), *a);
                    }
                }
                for (s, a) in acc.iter().enumerate() {
                    _mm512_mask_storeu_ps(out.add(16 * s), masks[s], *a);
                }
            }
        }
    }

    /// Transposes `w[c0.., k_lo..k_hi]` (the group's 64 outputs, masked by `masks`) into
    /// `dst`, input-major: row `k − k_lo` holds the 64 outputs' weights for input `k`.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `w` must hold the group's rows of `in_f` (those `masks`
    /// lets through, from row `c0`), `k_lo < k_hi ≤ in_f`, and `dst` must be valid for
    /// writes of `(k_hi − k_lo)·GROUP` floats.
    #[target_feature(enable = "avx512f")]
    unsafe fn pack_block(
        w: &[f32],
        in_f: usize,
        c0: usize,
        masks: &[__mmask16; 4],
        k_lo: usize,
        k_hi: usize,
        dst: *mut f32,
    ) {
        for (s, &m) in masks.iter().enumerate() {
            let jn = m.count_ones() as usize;
            for k0 in (k_lo..k_hi).step_by(16) {
                let kn = (k_hi - k0).min(16);
                let km = lanes(kn);
                let mut t = [_mm512_setzero_ps(); 16];
                for (i, v) in t.iter_mut().enumerate().take(jn) {
                    let src = w.as_ptr().add((c0 + 16 * s + i) * in_f + k0);
                    *v = _mm512_maskz_loadu_ps(km, src);
                }
                transpose16(&mut t);
                for (i, v) in t.iter().enumerate().take(kn) {
                    _mm512_storeu_ps(dst.add((k0 - k_lo + i) * GROUP + 16 * s), *v);
                }
            }
        }
    }

    /// One packed block: [`KB`] inputs × [`GROUP`] outputs, input-major, on a cache line.
    #[repr(C, align(64))]
    struct Block([f32; KB * GROUP]);

    /// One cache line of floats; a `Vec<Line>` is 64-byte aligned.
    #[derive(Clone, Copy)]
    #[repr(C, align(64))]
    pub struct Line(pub(crate) [f32; 16]);

    /// `g: [rows, n]` copied into 64-byte aligned rows of `stride = n` rounded up to 16,
    /// zero-padded, so the kernels' vector loads never straddle cache lines.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, and `g` must hold `rows·n` elements.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn aligned_rows(g: &[f32], rows: usize, n: usize) -> (Vec<Line>, usize) {
        let lines = n.div_ceil(16);
        let mut out = vec![Line([0.0; 16]); rows * lines];
        let o = out.as_mut_ptr() as *mut f32;
        for r in 0..rows {
            for l in 0..lines {
                let v = _mm512_maskz_loadu_ps(lanes(n - 16 * l), g.as_ptr().add(r * n + 16 * l));
                _mm512_store_ps(o.add((r * lines + l) * 16), v);
            }
        }
        (out, lines * 16)
    }

    /// Columns `k0..k0 + 16` (fewer at the edge) of `dw = gᵀ·x`, given `x` by column
    /// (`ptr`, `row`, `val`) and `g` from [`aligned_rows`] (row stride `ns`): each column's
    /// sum of rows of `g`, 128 outputs per pass in eight registers, into a `[16, ns]` block
    /// that is then transposed into place sixteen by sixteen.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `ptr`/`row`/`val` must index `in_f` columns whose row
    /// indices are rows of `g`, which must be an [`aligned_rows`] copy of stride `ns ≥ n`;
    /// `k0 < in_f`; and `dw` must be valid for writes of `n` rows of `in_f`, of which this
    /// call writes only columns `k0..k0 + 16`.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn weight_grad_block(
        ptr: &[usize],
        row: &[u32],
        val: &[f32],
        g: *const f32,
        ns: usize,
        n: usize,
        in_f: usize,
        k0: usize,
        tmp: &mut Vec<Line>,
        dw: *mut f32,
    ) {
        let kn = (in_f - k0).min(16);
        tmp.resize(16 * ns / 16, Line([0.0; 16]));
        let t = tmp.as_mut_ptr() as *mut f32;
        for kk in 0..kn {
            let k = k0 + kk;
            let (s, e) = (ptr[k], ptr[k + 1]);
            let (rs, vs) = (&row[s..e], &val[s..e]);
            let mut c0 = 0;
            while c0 + 128 <= ns {
                col_chunk::<8>(rs, vs, g, ns, c0, t.add(kk * ns));
                c0 += 128;
            }
            while c0 < ns {
                col_chunk::<1>(rs, vs, g, ns, c0, t.add(kk * ns));
                c0 += 16;
            }
        }
        transpose_f32(t, kn, n, ns, dw.add(k0), in_f);
    }

    /// `out[c0..] = Σ val[i]·g[row[i], c0..]` over `V` aligned vectors.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; every `g[row[i]·ns + c0..][..16·V]` must be in bounds and
    /// 64-byte aligned, and so must `out[c0..][..16·V]`.
    #[inline(always)]
    unsafe fn col_chunk<const V: usize>(
        row: &[u32],
        val: &[f32],
        g: *const f32,
        ns: usize,
        c0: usize,
        out: *mut f32,
    ) {
        let mut acc = [_mm512_setzero_ps(); V];
        for (&r, &v) in row.iter().zip(val) {
            let vb = _mm512_set1_ps(v);
            let p = g.add(r as usize * ns + c0);
            for (i, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(vb, _mm512_load_ps(p.add(16 * i)), *a);
            }
        }
        for (i, a) in acc.iter().enumerate() {
            _mm512_store_ps(out.add(c0 + 16 * i), *a);
        }
    }

    /// Transposes a 16×16 tile held as sixteen row vectors: interleave pairs of rows (ps,
    /// then pd), then exchange 128-bit lanes twice.
    ///
    /// # Safety
    /// The CPU must have AVX-512F (the function touches no memory but `t`).
    #[inline(always)]
    unsafe fn transpose16(t: &mut [__m512; 16]) {
        let mut a = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            a[2 * i] = _mm512_unpacklo_ps(t[2 * i], t[2 * i + 1]);
            a[2 * i + 1] = _mm512_unpackhi_ps(t[2 * i], t[2 * i + 1]);
        }
        let pd = |x: __m512| _mm512_castps_pd(x);
        let ps = |x: __m512d| _mm512_castpd_ps(x);
        let mut b = [_mm512_setzero_ps(); 16];
        for i in 0..4 {
            let (a0, a1, a2, a3) = (a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]);
            b[4 * i] = ps(_mm512_unpacklo_pd(pd(a0), pd(a2)));
            b[4 * i + 1] = ps(_mm512_unpackhi_pd(pd(a0), pd(a2)));
            b[4 * i + 2] = ps(_mm512_unpacklo_pd(pd(a1), pd(a3)));
            b[4 * i + 3] = ps(_mm512_unpackhi_pd(pd(a1), pd(a3)));
        }
        // b[4i + c] holds, in each 128-bit lane L, column 4L + c of rows 4i..4i + 4
        let mut c = [_mm512_setzero_ps(); 16];
        for i in 0..4 {
            c[i] = _mm512_shuffle_f32x4::<0x88>(b[i], b[4 + i]);
            c[4 + i] = _mm512_shuffle_f32x4::<0xdd>(b[i], b[4 + i]);
            c[8 + i] = _mm512_shuffle_f32x4::<0x88>(b[8 + i], b[12 + i]);
            c[12 + i] = _mm512_shuffle_f32x4::<0xdd>(b[8 + i], b[12 + i]);
        }
        for i in 0..4 {
            t[i] = _mm512_shuffle_f32x4::<0x88>(c[i], c[8 + i]);
            t[8 + i] = _mm512_shuffle_f32x4::<0xdd>(c[i], c[8 + i]);
            t[4 + i] = _mm512_shuffle_f32x4::<0x88>(c[4 + i], c[12 + i]);
            t[12 + i] = _mm512_shuffle_f32x4::<0xdd>(c[4 + i], c[12 + i]);
        }
    }

    /// `src[rows, cols]ᵀ` into `dst` (row stride `dst_stride`): 16×16 tiles in registers,
    /// scalar edges.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; `s` must be valid for reads of `rows` rows of `cols` at
    /// stride `src_stride`, and `dst` for writes of `cols` rows of `rows` at stride
    /// `dst_stride`, not overlapping `s`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn transpose_f32(
        s: *const f32,
        rows: usize,
        cols: usize,
        src_stride: usize,
        dst: *mut f32,
        dst_stride: usize,
    ) {
        let (rf, cf) = (rows / 16 * 16, cols / 16 * 16);
        for r0 in (0..rf).step_by(16) {
            for c0 in (0..cf).step_by(16) {
                let mut t = [_mm512_setzero_ps(); 16];
                for (i, v) in t.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(s.add((r0 + i) * src_stride + c0));
                }
                transpose16(&mut t);
                for (i, v) in t.iter().enumerate() {
                    _mm512_storeu_ps(dst.add((c0 + i) * dst_stride + r0), *v);
                }
            }
        }
        // edges: the last cols % 16 columns of every row, and the last rows % 16 rows
        for r in 0..rows {
            let c_start = if r < rf { cf } else { 0 };
            for c in c_start..cols {
                *dst.add(c * dst_stride + r) = *s.add(r * src_stride + c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rng, Tensor};
    use std::cell::Cell;

    thread_local! {
        pub static PORTABLE: Cell<bool> = const { Cell::new(false) };
    }

    #[test]
    fn a_layer_much_wider_at_its_input_takes_the_sparse_forward_only_when_sparser() {
        // the `cnn` preset's fc1 (3136 → 128) and the MLP's layers (784 → 256, 256 → 128,
        // 128 → 10)
        assert_eq!(max_density_forward(3136, 128), MAX_DENSITY_FORWARD_NARROW);
        assert_eq!(max_density_forward(784, 256), MAX_DENSITY_FORWARD);
        assert_eq!(max_density_forward(256, 128), MAX_DENSITY_FORWARD);
        assert_eq!(max_density_forward(128, 10), MAX_DENSITY_FORWARD);
        // the bound: exactly 16 times wider is narrow, one input fewer is not
        assert_eq!(max_density_forward(16 * 40, 40), MAX_DENSITY_FORWARD_NARROW);
        assert_eq!(max_density_forward(16 * 40 - 1, 40), MAX_DENSITY_FORWARD);
        // no outputs at all: narrow, and no overflow for a huge output count
        assert_eq!(max_density_forward(5, 0), MAX_DENSITY_FORWARD_NARROW);
        assert_eq!(max_density_forward(5, usize::MAX), MAX_DENSITY_FORWARD);
        assert!(MAX_DENSITY_FORWARD_NARROW < MAX_DENSITY_FORWARD);
        // what the rule decides for an input of 0.4 density: dense on the narrow layer only
        let mut rng = Rng::seed(31);
        for (in_f, out_f, sparse_path) in [(640, 40, false), (639, 40, true)] {
            let x = sparse(32, in_f, 0.4, &mut rng);
            assert_eq!(
                worth_it(x.data(), 32, max_density_forward(in_f, out_f)),
                sparse_path && enabled(),
                "{in_f} → {out_f}"
            );
        }
    }

    /// A matrix with about `density` of its entries nonzero.
    fn sparse(rows: usize, cols: usize, density: f64, rng: &mut Rng) -> Tensor<f32> {
        let v = Tensor::<f32>::rand_normal(&[rows, cols], 0.0, 1.0, rng);
        let keep = Tensor::<f32>::rand_uniform(&[rows, cols], 0.0, 1.0, rng);
        let data = v
            .to_vec()
            .into_iter()
            .zip(keep.to_vec())
            .map(|(v, k)| if (k as f64) < density { v } else { 0.0 })
            .collect();
        Tensor::from_vec(data, &[rows, cols])
    }

    fn both_paths(mut f: impl FnMut()) {
        for portable in [false, true] {
            PORTABLE.with(|p| p.set(portable));
            f();
        }
        PORTABLE.with(|p| p.set(false));
    }

    #[test]
    fn transpose_matches_naive_on_ragged_shapes() {
        let mut rng = Rng::seed(1);
        both_paths(|| {
            for &(r, c) in &[(1, 1), (16, 16), (17, 33), (256, 784), (5, 40), (48, 3)] {
                let a = Tensor::<f32>::rand_normal(&[r, c], 0.0, 1.0, &mut rng);
                let mut out = vec![0.0f32; r * c];
                transpose(a.data(), r, c, &mut out);
                assert_eq!(out, a.t().to_vec(), "{r}x{c}");
            }
        });
    }

    #[test]
    fn sparse_forward_and_weight_grad_match_dense_products() {
        let mut rng = Rng::seed(2);
        both_paths(|| {
            for &(rows, inf, outf) in &[
                (8, 784, 256),
                (300, 784, 256),
                // enough nonzeros (≈ 170k) that the row index is also built over the pool
                (1100, 784, 40),
                // two groups, each in two parts of rows (W6's fc1)
                (64, 3136, 128),
                (9, 33, 129),
                (32, 256, 128),
                (40, 17, 10),
                (3, 5, 1),
            ] {
                let x = sparse(rows, inf, 0.2, &mut rng);
                let w = Tensor::<f32>::rand_normal(&[outf, inf], 0.0, 1.0, &mut rng);
                let b = Tensor::<f32>::rand_normal(&[outf], 0.0, 1.0, &mut rng);
                let g = Tensor::<f32>::rand_normal(&[rows, outf], 0.0, 1.0, &mut rng);
                let want = x.matmul_naive(&w.t()).add(&b);
                let y = linear_forward_sparse(x.data(), rows, inf, w.data(), outf, Some(b.data()));
                // split over the pool (in parts of rows) or not, the same bits as each row
                // alone
                let alone: Vec<f32> = (0..rows)
                    .flat_map(|r| {
                        let xr = &x.data()[r * inf..(r + 1) * inf];
                        linear_forward_sparse(xr, 1, inf, w.data(), outf, Some(b.data()))
                    })
                    .collect();
                assert!(y == alone, "forward {rows}x{inf}x{outf}: rows alone differ");
                let y = Tensor::from_vec(y, &[rows, outf]);
                assert!(y.allclose(&want, 1e-4, 1e-4), "forward {rows}x{inf}x{outf}");
                let y0 = linear_forward_sparse(x.data(), rows, inf, w.data(), outf, None);
                let want0 = x.matmul_naive(&w.t());
                assert!(Tensor::from_vec(y0, &[rows, outf]).allclose(&want0, 1e-4, 1e-4));
                let dw = linear_weight_grad_sparse(g.data(), x.data(), rows, inf, outf);
                let want_dw = g.t().matmul_naive(&x);
                assert!(
                    Tensor::from_vec(dw, &[outf, inf]).allclose(&want_dw, 1e-4, 1e-4),
                    "weight grad {rows}x{inf}x{outf}"
                );
            }
        });
    }

    #[test]
    fn all_zero_rows_give_the_bias_and_zero_gradients() {
        both_paths(|| {
            let x = vec![0.0f32; 8 * 20];
            let w = vec![1.0f32; 3 * 20];
            let y = linear_forward_sparse(&x, 8, 20, &w, 3, Some(&[1.0, 2.0, 3.0]));
            assert_eq!(&y[..3], &[1.0, 2.0, 3.0]);
            assert_eq!(&y[21..], &[1.0, 2.0, 3.0]);
            let dw = linear_weight_grad_sparse(&[1.0; 24], &x, 8, 20, 3);
            assert!(dw.iter().all(|v| *v == 0.0));
        });
    }

    #[test]
    fn nan_inputs_propagate() {
        both_paths(|| {
            let mut x = vec![0.0f32; 8 * 4];
            x[5] = f32::NAN;
            let y = linear_forward_sparse(&x, 8, 4, &[1.0; 8], 2, None);
            assert!(y[2].is_nan() && y[3].is_nan() && y[0] == 0.0);
        });
    }

    #[test]
    fn f64_uses_the_portable_loops_and_agrees() {
        let mut rng = Rng::seed(3);
        let x = sparse(12, 30, 0.3, &mut rng).cast::<f64>();
        let w = Tensor::<f64>::rand_normal(&[7, 30], 0.0, 1.0, &mut rng);
        let g = Tensor::<f64>::rand_normal(&[12, 7], 0.0, 1.0, &mut rng);
        let y = linear_forward_sparse(x.data(), 12, 30, w.data(), 7, None);
        assert!(Tensor::from_vec(y, &[12, 7]).allclose(&x.matmul_naive(&w.t()), 1e-12, 1e-12));
        let dw = linear_weight_grad_sparse(g.data(), x.data(), 12, 30, 7);
        assert!(Tensor::from_vec(dw, &[7, 30]).allclose(&g.t().matmul_naive(&x), 1e-12, 1e-12));
    }

    #[test]
    fn worth_it_needs_rows_and_zeros() {
        let mut rng = Rng::seed(4);
        assert!(worth_it(sparse(32, 100, 0.2, &mut rng).data(), 32, 0.3));
        assert!(!worth_it(sparse(32, 100, 0.45, &mut rng).data(), 32, 0.3));
        assert!(!worth_it(sparse(32, 100, 0.9, &mut rng).data(), 32, 0.5));
        assert!(!worth_it(sparse(2, 100, 0.1, &mut rng).data(), 2, 0.5));
    }

    #[test]
    fn nonzeros_are_counted_as_the_portable_loop_counts_them() {
        let mut rng = Rng::seed(5);
        // lengths around the sixteen-lane blocks; NaN counts, −0 does not
        for len in [0, 1, 15, 16, 17, 33, 1000] {
            let mut x = sparse(1, len.max(1), 0.3, &mut rng).to_vec();
            x.truncate(len);
            if len > 3 {
                x[1] = f32::NAN;
                x[2] = -0.0;
                x[3] = f32::INFINITY;
            }
            // and in the masked tail
            if len > 16 {
                x[len - 1] = f32::NAN;
                x[16] = -0.0;
            }
            let want = x.iter().filter(|v| **v != 0.0).count();
            assert_eq!(count_nonzeros(&x), want, "{len}");
            let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            assert_eq!(count_nonzeros(&x64), want, "{len} f64");
        }
    }
}
