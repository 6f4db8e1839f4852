//! The one entry point to the GEMM crate. Every matrix product of the tensor layer (matmul
//! and its transposed forms, the fused linear map, the convolution's im2col products) goes
//! through [`gemm`], which checks the operands' extents once and holds the one `unsafe`
//! call into the crate, with its safety argument (and the transpositions of a product made
//! as its transpose, see [`transpose_worth_it`]).
//!
//! Shapes: `dst: [m, n] (+)= a: [m, k] · b: [k, n]`, where each operand is a row-major block
//! at the start of a slice, read as stored or transposed (through its strides, no copy), and
//! `dst` is row-major `[m, n]`.

use std::mem::MaybeUninit;

use crate::element::Element;
use crate::profile;

/// A row-major `rows × cols` matrix at the start of a slice, read as stored or transposed.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, E> {
    data: &'a [E],
    /// Rows as stored.
    rows: usize,
    /// Columns as stored.
    cols: usize,
    /// The distance between stored rows, in elements (`cols` unless padded).
    ld: usize,
    transposed: bool,
}

impl<'a, E> Mat<'a, E> {
    /// The `rows × cols` matrix stored row-major at the start of `data` (checked by [`gemm`]).
    pub(crate) fn new(data: &'a [E], rows: usize, cols: usize) -> Self {
        Self::padded(data, rows, cols, cols)
    }

    /// The `rows × cols` matrix whose rows start `ld ≥ cols` elements apart (checked by
    /// [`gemm`]): a padded leading dimension, which keeps the columns of a matrix whose row
    /// length is a large power of two off the same cache sets.
    pub(crate) fn padded(data: &'a [E], rows: usize, cols: usize, ld: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            ld,
            transposed: false,
        }
    }

    /// The same storage read transposed, `cols × rows`.
    pub(crate) fn t(self) -> Self {
        self.transposed_if(true)
    }

    /// [`Mat::t`] when `t` is set, else the matrix as it is.
    pub(crate) fn transposed_if(self, t: bool) -> Self {
        Mat {
            transposed: self.transposed != t,
            ..self
        }
    }

    /// `(rows, cols)` as read.
    fn dims(&self) -> (usize, usize) {
        if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// `(row stride, column stride)` as read, in elements. Only called once the extent check
    /// has passed, so `ld ≤ data.len() ≤ isize::MAX` (or the matrix has one row, whose
    /// stride is never used: it is then clamped) and the cast is exact.
    fn strides(&self) -> (isize, isize) {
        let ld = self.ld.min(self.data.len()) as isize;
        if self.transposed {
            (1, ld)
        } else {
            (ld, 1)
        }
    }

    /// True when the stored `rows × cols` block, rows `ld` apart, lies inside the slice.
    fn fits(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        self.ld >= self.cols
            && (self.rows - 1)
                .checked_mul(self.ld)
                .and_then(|v| v.checked_add(self.cols))
                .is_some_and(|need| need <= self.data.len())
    }
}

/// `rows·cols ≤ len`, without overflow.
fn fits(rows: usize, cols: usize, len: usize) -> bool {
    rows.checked_mul(cols).is_some_and(|need| need <= len)
}

/// Where a product goes: a row-major `[m, n]` block at the start of the slice.
pub(crate) enum Out<'a, E> {
    /// `dst = a·b`; the old contents are not read.
    Write(&'a mut [E]),
    /// `dst = a·b` into memory not yet initialised (a `Vec`'s spare capacity), so an output
    /// buffer need not be zero-filled first. Every element of the block is written.
    WriteUninit(&'a mut [MaybeUninit<E>]),
    /// `dst += a·b`.
    Add(&'a mut [E]),
}

/// Whether a product may split over the thread pool.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Threads {
    /// When it is large and the caller is not itself a pool task (see
    /// [`profile::parallelism`]).
    Auto,
    /// Always on the calling thread (callers that already split their work over the pool).
    Caller,
}

/// `dst (+)= a·b` through the GEMM crate, counted by [`profile`]. When
/// [`transpose_worth_it`] says so, the crate makes `dstᵀ = bᵀ·aᵀ` into a buffer, which is
/// then transposed into `dst` (the same bits); the profile's time covers the product only,
/// not those two copies.
///
/// # Panics
/// If `a`'s columns (as read) are not `b`'s rows, or a slice is too short for its matrix;
/// the message names `gemm` and the dimensions.
#[track_caller]
pub(crate) fn gemm<E: Element>(dst: Out<'_, E>, a: Mat<'_, E>, b: Mat<'_, E>, threads: Threads) {
    gemm_routed(dst, a, b, threads, true)
}

/// [`gemm`], through the transposed product when `may_transpose` and
/// [`transpose_worth_it`] say so.
#[track_caller]
fn gemm_routed<E: Element>(
    dst: Out<'_, E>,
    a: Mat<'_, E>,
    b: Mat<'_, E>,
    threads: Threads,
    may_transpose: bool,
) {
    let ((m, k), (kb, n)) = (a.dims(), b.dims());
    assert!(
        k == kb && a.fits() && b.fits(),
        "gemm: a [{m}, {k}] of {} elements times b [{kb}, {n}] of {} elements",
        a.data.len(),
        b.data.len()
    );
    let (ptr, len, read_dst) = match dst {
        Out::Write(d) => (d.as_mut_ptr(), d.len(), false),
        Out::WriteUninit(d) => (d.as_mut_ptr().cast::<E>(), d.len(), false),
        Out::Add(d) => (d.as_mut_ptr(), d.len(), true),
    };
    assert!(
        fits(m, n, len),
        "gemm: the output [{m}, {n}] does not fit in {len} elements"
    );
    if m == 0 || n == 0 {
        return;
    }
    if may_transpose && transpose_worth_it(&a, &b, (m, n, k)) {
        // dstᵀ = bᵀ·aᵀ into a buffer, which the crate then reads `a` for, and back
        let mut t: Vec<E> = Vec::with_capacity(n * m);
        let out = if read_dst {
            // SAFETY: `dst` holds an initialised `[m, n]` block (`Out::Add`, `fits` checked
            // above); `t`'s spare capacity holds `n·m` elements, written here as `n` rows of
            // `m` (stride `m`) and not overlapping `dst`.
            unsafe {
                let d = std::slice::from_raw_parts(ptr.cast_const(), m * n);
                crate::ops::sparse::transpose_into(d, m, n, t.as_mut_ptr(), m);
                t.set_len(n * m);
            }
            Out::Add(&mut t[..])
        } else {
            Out::WriteUninit(&mut t.spare_capacity_mut()[..n * m])
        };
        gemm_routed(out, b.t(), a.t(), threads, false);
        // SAFETY: the product wrote (or, with `Out::Add`, updated) every element of the
        // `[n, m]` block; `dst` is valid for writes of `m` rows of `n` at stride `n` (`fits`
        // above), a `&mut` borrow apart from `t`.
        unsafe {
            t.set_len(n * m);
            crate::ops::sparse::transpose_into(&t, n, m, ptr, n);
        }
        return;
    }
    profile::count_flops(m, n, k);
    let parallelism = match threads {
        Threads::Auto => profile::parallelism(m, n, k),
        Threads::Caller => gemm::Parallelism::None,
    };
    let ((a_rs, a_cs), (b_rs, b_cs)) = (a.strides(), b.strides());
    let alpha = if read_dst { E::ONE } else { E::ZERO };
    profile::timed_gemm(|| {
        // SAFETY: `gemm::gemm` reads `a`'s element (i, p) at `i·a_rs + p·a_cs` for i < m,
        // p < k, `b`'s (p, j) likewise for j < n, and writes `dst`'s (i, j) at `i·n + j`.
        // - In bounds: a stored `rows × cols` block with rows `ld ≥ cols` apart, read as
        //   stored, has strides (ld, 1) and read transposed (1, ld), so its largest offset is
        //   `(rows−1)·ld + cols−1` either way, and `fits` checked `(rows−1)·ld + cols ≤ len`
        //   for `a` and `b` (without overflow; with one row the clamped stride is never
        //   multiplied by a nonzero index); `dst`'s largest offset is `m·n − 1 < len`,
        //   checked likewise. The inner dimensions were checked equal, so no read runs past
        //   `k`.
        // - Strides fit `isize`: every stride is at most a slice's length.
        // - No aliasing: `dst` comes from a `&mut` borrow, `a` and `b` from shared ones, so
        //   the output overlaps neither input.
        // - Initialisation: with `read_dst = false` the crate sets α to zero and stores
        //   without loading (k = 0 included: it writes zeros), so `Out::WriteUninit`'s
        //   memory is only written, and every element of the `m × n` block is; with
        //   `read_dst = true` the memory is an initialised `&mut [E]`.
        // - Types: `E` is `f32` or `f64` (the `Element` impls), which the crate supports; it
        //   panics on any other type rather than misreading it.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                ptr,
                1,
                n as isize,
                read_dst,
                a.data.as_ptr(),
                a_cs,
                a_rs,
                b.data.as_ptr(),
                b_cs,
                b_rs,
                alpha,
                E::ONE,
                false,
                false,
                false,
                parallelism,
            )
        }
    })
}

/// Whether `a·b` (`m×k` times `k×n`) goes through its transpose (see [`gemm`]): when both
/// operands are stored with `k` contiguous (`a` as stored, `b` transposed, as `x·wᵀ` has
/// them) and `a` has fewer rows than `b`. The crate makes a row-major output column by column
/// of its transpose, so it would copy `b`, the larger side, into its panels element by
/// element at a stride of `k`: with `k` a multiple of 1024 every row of a panel falls in the
/// same cache set. The transposed product makes it copy `a` instead, and the transposition
/// back costs `m·n` moves. One thread, this project's AMD EPYC: `[64, 1024]·[1024, 512]`
/// 1.13 ms → 0.37 ms, `[64, 3136]·[3136, 128]` 284 → 249 µs, `[64, 784]·[784, 256]` 140 →
/// 112 µs; with more rows than columns (`[1024, 784]·[784, 256]`) the crate's own way is
/// the faster. Small products (under `2^16` multiply-adds or `k < 64`) stay as they are: the
/// copies would cost more than the packing they save.
fn transpose_worth_it<E>(a: &Mat<'_, E>, b: &Mat<'_, E>, (m, n, k): (usize, usize, usize)) -> bool {
    !a.transposed
        && b.transposed
        && (2..n).contains(&m)
        && k >= 64
        && m.saturating_mul(n).saturating_mul(k) >= 1 << 16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Rng, Tensor};

    fn naive(a: &[f64], ta: bool, b: &[f64], tb: bool, m: usize, n: usize, k: usize) -> Vec<f64> {
        let at = |i: usize, p: usize| if ta { a[p * m + i] } else { a[i * k + p] };
        let bt = |p: usize, j: usize| if tb { b[j * k + p] } else { b[p * n + j] };
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            }
        }
        out
    }

    fn close(x: &[f64], y: &[f64]) -> bool {
        x.len() == y.len() && x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-12)
    }

    #[test]
    fn every_output_form_and_transpose_agrees_with_the_naive_product() {
        let mut rng = Rng::seed(11);
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 2, 5),
            (17, 9, 33),
            (70, 64, 100),
            (20, 90, 70),
        ] {
            let a = Tensor::<f64>::rand_normal(&[m * k], 0.0, 1.0, &mut rng).to_vec();
            let b = Tensor::<f64>::rand_normal(&[k * n], 0.0, 1.0, &mut rng).to_vec();
            let c0 = Tensor::<f64>::rand_normal(&[m * n], 0.0, 1.0, &mut rng).to_vec();
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let am = if ta {
                    Mat::new(&a, k, m).t()
                } else {
                    Mat::new(&a, m, k)
                };
                let bm = if tb {
                    Mat::new(&b, n, k).t()
                } else {
                    Mat::new(&b, k, n)
                };
                let want = naive(&a, ta, &b, tb, m, n, k);
                for threads in [Threads::Auto, Threads::Caller] {
                    let mut w = vec![f64::NAN; m * n];
                    gemm(Out::Write(&mut w), am, bm, threads);
                    assert!(close(&w, &want), "write {m}x{n}x{k} {ta} {tb}");
                    let mut u: Vec<f64> = Vec::with_capacity(m * n);
                    gemm(Out::WriteUninit(u.spare_capacity_mut()), am, bm, threads);
                    // SAFETY: `gemm` wrote all m·n elements of the spare capacity.
                    unsafe { u.set_len(m * n) };
                    assert!(close(&u, &want), "uninit {m}x{n}x{k} {ta} {tb}");
                    let mut acc = c0.clone();
                    gemm(Out::Add(&mut acc), am, bm, threads);
                    let sum: Vec<f64> = c0.iter().zip(&want).map(|(c, w)| c + w).collect();
                    assert!(close(&acc, &sum), "add {m}x{n}x{k} {ta} {tb}");
                }
            }
        }
    }

    #[test]
    fn a_product_with_k_contiguous_operands_and_fewer_rows_goes_through_its_transpose_to_the_same_bits(
    ) {
        let mut rng = Rng::seed(13);
        // f32 (the vector transposition where the CPU has it), b's rows padded with NaN
        for &(m, n, k, ld) in &[(20, 90, 70, 70), (64, 128, 300, 301), (2, 40, 1100, 1100)] {
            let a = Tensor::<f32>::rand_normal(&[m * k], 0.0, 1.0, &mut rng).to_vec();
            let mut b = vec![f32::NAN; (n - 1) * ld + k];
            for r in 0..n {
                for c in 0..k {
                    b[r * ld + c] = rng.normal() as f32;
                }
            }
            let (am, bm) = (Mat::new(&a, m, k), Mat::padded(&b, n, k, ld).t());
            assert!(transpose_worth_it(&am, &bm, (m, n, k)), "{m}x{n}x{k}");
            let c0 = Tensor::<f32>::rand_normal(&[m * n], 0.0, 1.0, &mut rng).to_vec();
            // against the crate's own way with the same operands (`direct`): the same bits
            for threads in [Threads::Auto, Threads::Caller] {
                let (mut w, mut direct) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
                gemm(Out::Write(&mut w), am, bm, threads);
                gemm_routed(Out::Write(&mut direct), am, bm, threads, false);
                assert_eq!(w, direct, "write {m}x{n}x{k}");
                let mut u: Vec<f32> = Vec::with_capacity(m * n);
                gemm(Out::WriteUninit(u.spare_capacity_mut()), am, bm, threads);
                // SAFETY: `gemm` wrote all m·n elements of the spare capacity.
                unsafe { u.set_len(m * n) };
                assert_eq!(u, direct, "uninit {m}x{n}x{k}");
                let (mut acc, mut acc_direct) = (c0.clone(), c0.clone());
                gemm(Out::Add(&mut acc), am, bm, threads);
                gemm_routed(Out::Add(&mut acc_direct), am, bm, threads, false);
                assert_eq!(acc, acc_direct, "add {m}x{n}x{k}");
                // and against the sum in f64
                for i in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|p| f64::from(a[i * k + p]) * f64::from(b[j * ld + p]))
                            .sum();
                        let got = f64::from(w[i * n + j]);
                        assert!(
                            (got - want).abs() < 1e-3 * (1.0 + want.abs()),
                            "{m}x{n}x{k} ({i}, {j})"
                        );
                    }
                }
            }
        }
        // a padded `a` through the transpose, against the crate's own way
        let (m, n, k, lda) = (24, 100, 80, 83);
        let mut ap = vec![f32::NAN; (m - 1) * lda + k];
        for r in 0..m {
            for c in 0..k {
                ap[r * lda + c] = rng.normal() as f32;
            }
        }
        let bt = Tensor::<f32>::rand_normal(&[n * k], 0.0, 1.0, &mut rng).to_vec();
        let (am, bm) = (Mat::padded(&ap, m, k, lda), Mat::new(&bt, n, k).t());
        assert!(transpose_worth_it(&am, &bm, (m, n, k)));
        let (mut w, mut direct) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
        gemm(Out::Write(&mut w), am, bm, Threads::Caller);
        gemm_routed(Out::Write(&mut direct), am, bm, Threads::Caller, false);
        assert_eq!(w, direct, "padded a");
        assert!(w.iter().all(|v| v.is_finite()), "the padding was read");
        // fewer multiply-adds, a short k, one row, no fewer rows than columns, or an operand
        // without k contiguous: as it is
        assert!(!transpose_worth_it(
            &Mat::new(&[0.0f32; 1024], 1, 1024),
            &Mat::new(&[0.0f32; 128 * 1024], 128, 1024).t(),
            (1, 128, 1024)
        ));
        let (a, b) = (vec![0.0f32; 64 * 64], vec![0.0f32; 128 * 64]);
        assert!(!transpose_worth_it(
            &Mat::new(&a, 64, 8).t(),
            &Mat::new(&b, 128, 64).t(),
            (8, 128, 64)
        ));
        assert!(!transpose_worth_it(
            &Mat::new(&a, 8, 64),
            &Mat::new(&b, 64, 128),
            (8, 128, 64)
        ));
        assert!(!transpose_worth_it(
            &Mat::new(&a, 8, 63),
            &Mat::new(&b, 128, 63).t(),
            (8, 128, 63)
        ));
        assert!(!transpose_worth_it(
            &Mat::new(&a, 4, 64),
            &Mat::new(&b, 128, 64).t(),
            (4, 128, 64)
        ));
        assert!(!transpose_worth_it(
            &Mat::new(&a, 1, 64),
            &Mat::new(&b, 128, 64).t(),
            (1, 128, 64)
        ));
        assert!(!transpose_worth_it(
            &Mat::new(&a, 64, 64),
            &Mat::new(&b, 64, 64).t(),
            (64, 64, 64)
        ));
        assert!(transpose_worth_it(
            &Mat::new(&a, 8, 64),
            &Mat::new(&b, 128, 64).t(),
            (8, 128, 64)
        ));
    }

    #[test]
    fn padded_rows_read_like_a_packed_copy_and_a_short_padded_slice_is_refused() {
        let mut rng = Rng::seed(12);
        let (m, n, k, ld) = (5, 7, 6, 9);
        let a = Tensor::<f64>::rand_normal(&[m * k], 0.0, 1.0, &mut rng).to_vec();
        let b = Tensor::<f64>::rand_normal(&[k * n], 0.0, 1.0, &mut rng).to_vec();
        // b with its rows ld apart (the gaps hold NaN, which must never be read); the last
        // row needs only n elements, so the slice ends there
        let mut bp = vec![f64::NAN; (k - 1) * ld + n];
        for (r, row) in b.chunks_exact(n).enumerate() {
            bp[r * ld..][..n].copy_from_slice(row);
        }
        // and read transposed: the [n, k] matrix bᵀ stored with rows ld apart
        let mut bt = vec![f64::NAN; (n - 1) * ld + k];
        for r in 0..n {
            for c in 0..k {
                bt[r * ld + c] = b[c * n + r];
            }
        }
        let want = naive(&a, false, &b, false, m, n, k);
        for (bm, what) in [
            (Mat::padded(&bp, k, n, ld), "as stored"),
            (Mat::padded(&bt, n, k, ld).t(), "transposed"),
        ] {
            for threads in [Threads::Auto, Threads::Caller] {
                let mut w = vec![0.0; m * n];
                gemm(Out::Write(&mut w), Mat::new(&a, m, k), bm, threads);
                assert!(close(&w, &want), "{what}");
            }
        }
        // one row: the stride is never used, so ld may exceed the slice
        let one = &b[..n];
        let want1 = naive(&a[..k], false, &b, false, 1, n, k);
        let mut w1 = vec![0.0; n];
        gemm(
            Out::Write(&mut w1),
            Mat::padded(&a[..k], 1, k, 1000),
            Mat::new(&b, k, n),
            Threads::Caller,
        );
        assert!(close(&w1, &want1), "one padded row");
        // and a one-row matrix read transposed (a column)
        let mut w2 = vec![0.0; n];
        gemm(
            Out::Write(&mut w2),
            Mat::padded(one, 1, n, 1000).t(),
            Mat::new(&[2.0], 1, 1),
            Threads::Caller,
        );
        assert!(
            w2.iter().zip(one).all(|(w, v)| *w == 2.0 * v),
            "one padded row, transposed"
        );
        let short = &bp[..bp.len() - 1];
        let refused = std::panic::catch_unwind(|| {
            let mut w = vec![0.0; m * n];
            gemm(
                Out::Write(&mut w),
                Mat::new(&a, m, k),
                Mat::padded(short, k, n, ld),
                Threads::Caller,
            );
        });
        assert!(refused.is_err(), "a padded matrix past its slice's end");
        let narrow = std::panic::catch_unwind(|| {
            let mut w = vec![0.0; m * n];
            gemm(
                Out::Write(&mut w),
                Mat::new(&a, m, k),
                Mat::padded(&bp, k, n, n - 1),
                Threads::Caller,
            );
        });
        assert!(narrow.is_err(), "rows closer together than their length");
    }

    #[test]
    fn an_empty_inner_dimension_writes_zeros_or_adds_nothing() {
        let mut w = vec![f32::NAN; 6];
        gemm(
            Out::Write(&mut w),
            Mat::new(&[], 2, 0),
            Mat::new(&[], 0, 3),
            Threads::Auto,
        );
        assert_eq!(w, vec![0.0; 6]);
        let mut acc = vec![1.5f32; 6];
        gemm(
            Out::Add(&mut acc),
            Mat::new(&[], 2, 0),
            Mat::new(&[], 0, 3),
            Threads::Auto,
        );
        assert_eq!(acc, vec![1.5; 6]);
    }

    fn panics(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let p = std::panic::catch_unwind(f).unwrap_err();
        p.downcast::<String>().map(|s| *s).unwrap_or_default()
    }

    #[test]
    fn short_slices_and_mismatched_dimensions_are_refused_before_the_crate_is_called() {
        let (a, b) = (vec![1.0f32; 6], vec![1.0f32; 6]);
        let mut d = vec![0.0f32; 4];
        gemm(
            Out::Write(&mut d),
            Mat::new(&a, 2, 3),
            Mat::new(&b, 3, 2),
            Threads::Auto,
        );
        assert_eq!(d, vec![3.0; 4], "a fitting product runs");
        let msg = panics(|| {
            let mut d = vec![0.0f32; 4];
            gemm(
                Out::Write(&mut d),
                Mat::new(&a, 2, 4),
                Mat::new(&b, 4, 2),
                Threads::Auto,
            );
        });
        assert!(msg.starts_with("gemm: a [2, 4] of 6 elements"), "{msg}");
        let msg = panics(|| {
            let mut d = vec![0.0f32; 4];
            gemm(
                Out::Write(&mut d),
                Mat::new(&a, 2, 3),
                Mat::new(&b, 2, 3),
                Threads::Auto,
            );
        });
        assert!(
            msg.contains("a [2, 3]") && msg.contains("b [2, 3]"),
            "{msg}"
        );
        let msg = panics(|| {
            let mut d = vec![0.0f32; 3];
            gemm(
                Out::Add(&mut d),
                Mat::new(&a, 2, 3),
                Mat::new(&b, 3, 2),
                Threads::Auto,
            );
        });
        assert!(msg.contains("output [2, 2] does not fit in 3"), "{msg}");
        let msg = panics(|| {
            let mut d = vec![0.0f32; 4];
            let huge = Mat::new(&a, usize::MAX / 2, 3);
            gemm(Out::Write(&mut d), huge, Mat::new(&b, 3, 2), Threads::Auto);
        });
        assert!(
            msg.starts_with("gemm:"),
            "an overflowing extent is refused: {msg}"
        );
    }
}
