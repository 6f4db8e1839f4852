//! Matrix multiplication through the GEMM crate, 2-D and batched, with transposed operands
//! read through strides (no copies), plus the fused `linear` kernel and a slow reference.
//!
//! Shapes: `matmul a: [*B, m, k], b: [*B, k, n] -> [*B, m, n]`, where either side may be 2-D
//! and is then shared across the batch; `matmul_nt(a, b) = a·bᵀ` with `b: [*B, n, k]`;
//! `matmul_tn(a, b) = aᵀ·b` with `a: [*B, k, m]`; `linear_forward x: [*, in], w: [out, in],
//! b: [out] -> [*, out]`.

use crate::element::Element;
use crate::error::{or_panic, Result, TensorError};
use crate::ops::gemm::{gemm, Mat, Out, Threads};
use crate::ops::sparse;
use crate::team;
use crate::tensor::Tensor;

/// `(rows, cols)` of the last two axes, and the batch dimensions before them.
fn split_matrix<'a, E: Element>(
    op: &'static str,
    t: &'a Tensor<E>,
    other: &Tensor<E>,
    lhs: bool,
) -> Result<(&'a [usize], usize, usize)> {
    let s = t.shape();
    if s.len() < 2 {
        let (l, r) = if lhs {
            (s, other.shape())
        } else {
            (other.shape(), s)
        };
        return Err(TensorError::shapes(
            op,
            l,
            r,
            "both operands need at least 2 dimensions",
        ));
    }
    Ok((&s[..s.len() - 2], s[s.len() - 2], s[s.len() - 1]))
}

/// The shared implementation: `op(a)·op(b)` where `op` transposes the last two axes when
/// the flag is set.
fn matmul_impl<E: Element>(
    op: &'static str,
    a: &Tensor<E>,
    ta: bool,
    b: &Tensor<E>,
    tb: bool,
) -> Result<Tensor<E>> {
    let (ab, ar, ac) = split_matrix(op, a, b, true)?;
    let (bb, br, bc) = split_matrix(op, b, a, false)?;
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if tb { (bc, br) } else { (br, bc) };
    if k != kb {
        return Err(TensorError::shapes(
            op,
            a.shape(),
            b.shape(),
            format!("inner dimensions {k} and {kb} differ"),
        ));
    }
    if !ab.is_empty() && !bb.is_empty() && ab != bb {
        return Err(TensorError::shapes(
            op,
            a.shape(),
            b.shape(),
            "batch dimensions differ",
        ));
    }
    let batch_dims = if ab.is_empty() { bb } else { ab };
    let batch: usize = batch_dims.iter().product();
    let mut out_shape = batch_dims.to_vec();
    out_shape.extend([m, n]);
    let total = batch * m * n;
    if m == 0 || n == 0 || k == 0 {
        return Ok(Tensor::from_parts(vec![E::ZERO; total], out_shape));
    }
    // GEMM writes every output element, so the buffer is not zero-filled first; its length
    // is set once the products are written.
    let mut out: Vec<E> = Vec::with_capacity(total);
    if !ab.is_empty() && bb.is_empty() && !ta {
        // A batched lhs times a shared rhs: the batch folds into the rows of one product.
        gemm(
            Out::WriteUninit(&mut out.spare_capacity_mut()[..total]),
            Mat::new(a.data(), batch * ar, ac),
            Mat::new(b.data(), br, bc).transposed_if(tb),
            Threads::Auto,
        );
    } else {
        let (a_step, b_step) = (
            if ab.is_empty() { 0 } else { ar * ac },
            if bb.is_empty() { 0 } else { br * bc },
        );
        let blocks = out.spare_capacity_mut()[..total].chunks_exact_mut(m * n);
        for (i, dst) in blocks.enumerate() {
            gemm(
                Out::WriteUninit(dst),
                Mat::new(&a.data()[i * a_step..], ar, ac).transposed_if(ta),
                Mat::new(&b.data()[i * b_step..], br, bc).transposed_if(tb),
                Threads::Auto,
            );
        }
    }
    // SAFETY: the products above wrote all `batch` blocks of `m·n` elements (`gemm` writes
    // every element of an `Out::WriteUninit` block).
    unsafe { out.set_len(total) };
    Ok(Tensor::from_parts(out, out_shape))
}

impl<E: Element> Tensor<E> {
    /// Matrix product `a·b`: 2-D, or batched over leading axes (a 2-D side is shared by
    /// every batch entry).
    ///
    /// ```
    /// use backprop_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// let b = Tensor::from_vec(vec![5.0, 6.0, 7.0, 8.0], &[2, 2]);
    /// assert_eq!(a.matmul(&b).to_vec(), vec![19.0, 22.0, 43.0, 50.0]);
    /// ```
    ///
    /// # Panics
    /// If the inner dimensions or the batch dimensions differ; the message names `matmul`
    /// and both shapes.
    #[track_caller]
    pub fn matmul(&self, other: &Tensor<E>) -> Tensor<E> {
        or_panic(self.try_matmul(other))
    }

    /// [`Tensor::matmul`] returning an error on mismatched shapes.
    pub fn try_matmul(&self, other: &Tensor<E>) -> Result<Tensor<E>> {
        matmul_impl("matmul", self, false, other, false)
    }

    /// `a·bᵀ` (transposing the last two axes of `b`) without materialising the transpose.
    ///
    /// # Panics
    /// On mismatched shapes.
    #[track_caller]
    pub fn matmul_nt(&self, other: &Tensor<E>) -> Tensor<E> {
        or_panic(matmul_impl("matmul_nt", self, false, other, true))
    }

    /// `aᵀ·b` (transposing the last two axes of `a`) without materialising the transpose.
    ///
    /// # Panics
    /// On mismatched shapes.
    #[track_caller]
    pub fn matmul_tn(&self, other: &Tensor<E>) -> Tensor<E> {
        or_panic(matmul_impl("matmul_tn", self, true, other, false))
    }

    /// The slow, obviously correct reference for [`Tensor::matmul`] (2-D only), kept to test
    /// the fast path against.
    pub fn matmul_naive(&self, other: &Tensor<E>) -> Tensor<E> {
        let (m, k) = (self.shape()[0], self.shape()[1]);
        let (k2, n) = (other.shape()[0], other.shape()[1]);
        assert_eq!(
            k,
            k2,
            "matmul_naive: shapes {:?} and {:?}",
            self.shape(),
            other.shape()
        );
        let (a, b) = (self.data(), other.data());
        let mut out = vec![E::ZERO; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = E::ZERO;
                for p in 0..k {
                    acc += a[i * k + p] * b[p * n + j];
                }
                out[i * n + j] = acc;
            }
        }
        Tensor::from_parts(out, vec![m, n])
    }
}

/// The fused affine map `y = x·wᵀ + b` with PyTorch's `(out, in)` weight layout: the bias is
/// written into the output first and the GEMM accumulates onto it.
///
/// # Panics
/// If `x`'s last axis is not `w`'s second, or the bias length is not `w`'s first axis.
#[track_caller]
pub fn linear_forward<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
) -> Tensor<E> {
    or_panic(try_linear_forward(x, w, b))
}

/// [`linear_forward`] returning an error on mismatched shapes.
pub fn try_linear_forward<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
) -> Result<Tensor<E>> {
    try_linear_forward_keep(x, w, b).map(|(y, _)| y)
}

/// What [`try_linear_forward_keep`] found out about its input, for the weight gradient
/// ([`linear_weight_grad_kept`]).
pub enum LinearInput<E> {
    /// The input's nonzeros, few enough for the sparse weight gradient.
    Sparse(sparse::KeptInput<E>),
    /// Too many nonzeros for the sparse weight gradient (or too few rows): it takes the GEMM.
    Dense,
}

/// [`try_linear_forward`] that also returns what it found out about `x`: a mostly-zero input's
/// nonzeros, which its forward pass gathered anyway, so that [`linear_weight_grad_kept`]
/// neither counts nor gathers them again.
pub fn try_linear_forward_keep<E: Element>(
    x: &Tensor<E>,
    w: &Tensor<E>,
    b: Option<&Tensor<E>>,
) -> Result<(Tensor<E>, LinearInput<E>)> {
    if w.rank() != 2 || x.rank() < 1 || x.shape()[x.rank() - 1] != w.shape()[1] {
        return Err(TensorError::shapes(
            "linear",
            x.shape(),
            w.shape(),
            "the input's last axis must equal the weight's second (in) axis",
        ));
    }
    let (out_f, in_f) = (w.shape()[0], w.shape()[1]);
    if let Some(b) = b {
        if b.shape() != [out_f] {
            return Err(TensorError::shapes(
                "linear",
                w.shape(),
                b.shape(),
                format!("the bias must have shape [{out_f}]"),
            ));
        }
    }
    let rows = x.numel() / in_f.max(1);
    let mut shape = x.shape().to_vec();
    *shape.last_mut().unwrap() = out_f;
    if in_f > 0 && sparse::worth_it(x.data(), rows, sparse::max_density_forward(in_f, out_f)) {
        let input = sparse::KeptInput::of(x.data(), rows, in_f);
        // inside the halves of a batch (which do not split), a packing shared between them
        let packed = if crate::profile::may_split() {
            None
        } else {
            crate::ops::packing::shared(w, out_f, in_f)
        };
        let out = sparse::linear_forward_kept(
            &input,
            w.data(),
            out_f,
            b.map(|b| b.data()),
            packed.as_deref(),
        );
        let kept = if input.weight_grad_worth_it() {
            LinearInput::Sparse(input)
        } else {
            LinearInput::Dense
        };
        return Ok((Tensor::from_parts(out, shape), kept));
    }
    let mut out = match b {
        Some(b) => {
            let mut v = Vec::with_capacity(rows * out_f);
            for _ in 0..rows {
                v.extend_from_slice(b.data());
            }
            v
        }
        None => vec![E::ZERO; rows * out_f],
    };
    // y[rows, out] += x[rows, in] · wᵀ, w stored [out, in]
    let product = |y: &mut [E], o0: usize, threads: Threads| {
        let n = y.len() / rows.max(1);
        gemm(
            Out::Add(y),
            Mat::new(x.data(), rows, in_f),
            Mat::new(&w.data()[o0 * in_f..(o0 + n) * in_f], n, in_f).t(),
            threads,
        )
    };
    if rows == 1 && out_f >= 2 && out_f * in_f >= team::MIN_WORK && team::splits() {
        // one sample (inference latency): half the outputs, and so half of `w`'s rows, each
        // on this thread and the partner
        let (lo, hi) = out.split_at_mut(out_f / 2);
        team::join(
            || product(lo, 0, Threads::Caller),
            || product(hi, out_f / 2, Threads::Caller),
        );
    } else {
        product(&mut out, 0, Threads::Auto);
    }
    // not sparse enough for the forward kernel (`max_density_forward`), so not for the
    // weight gradient's either (`MAX_DENSITY_WEIGHT_GRAD` is no higher than either forward
    // bound); the same for too few rows or the sparse kernels turned off
    Ok((Tensor::from_parts(out, shape), LinearInput::Dense))
}

/// The weight gradient of [`linear_forward`]: `dw = gᵀ·x` for `g: [rows, out]`,
/// `x: [rows, in]` → `[out, in]`. Mostly-zero inputs (see [`sparse::worth_it`]) take the
/// sparse kernel, everything else one GEMM with `g` read transposed.
///
/// # Panics
/// If the row counts differ or either side is not 2-D.
#[track_caller]
pub fn linear_weight_grad<E: Element>(g: &Tensor<E>, x: &Tensor<E>) -> Tensor<E> {
    check_weight_grad_shapes(g, x);
    let (rows, out_f, in_f) = (x.shape()[0], g.shape()[1], x.shape()[1]);
    if out_f > 0 && sparse::worth_it(x.data(), rows, sparse::MAX_DENSITY_WEIGHT_GRAD) {
        let dw = sparse::linear_weight_grad_sparse(g.data(), x.data(), rows, in_f, out_f);
        return Tensor::from_parts(dw, vec![out_f, in_f]);
    }
    g.matmul_tn(x)
}

/// The shapes [`linear_weight_grad`] takes: `g: [rows, out]` and `x: [rows, in]`.
#[track_caller]
fn check_weight_grad_shapes<E: Element>(g: &Tensor<E>, x: &Tensor<E>) {
    assert!(
        g.rank() == 2 && x.rank() == 2 && g.shape()[0] == x.shape()[0],
        "linear_weight_grad: gradient {:?} and input {:?} must be [rows, out] and [rows, in]",
        g.shape(),
        x.shape()
    );
}

/// [`linear_weight_grad`] for an input whose forward pass was [`try_linear_forward_keep`]:
/// the same products and the same bits, without looking at `x`'s zeros again.
///
/// # Panics
/// As [`linear_weight_grad`]; also if `kept` holds another shape's nonzeros.
#[track_caller]
pub fn linear_weight_grad_kept<E: Element>(
    g: &Tensor<E>,
    x: &Tensor<E>,
    kept: &LinearInput<E>,
) -> Tensor<E> {
    check_weight_grad_shapes(g, x);
    let LinearInput::Sparse(input) = kept else {
        return g.matmul_tn(x);
    };
    let (rows, out_f, in_f) = (x.shape()[0], g.shape()[1], x.shape()[1]);
    assert!(
        input.shape() == (rows, in_f),
        "linear_weight_grad: input {:?} is not the one whose nonzeros were kept ({:?})",
        x.shape(),
        input.shape()
    );
    if out_f == 0 {
        return g.matmul_tn(x);
    }
    let dw = sparse::linear_weight_grad_kept(g.data(), input, out_f);
    Tensor::from_parts(dw, vec![out_f, in_f])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    #[test]
    fn gemm_agrees_with_the_naive_reference() {
        let mut rng = Rng::seed(5);
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 2), (17, 33, 9), (64, 100, 70)] {
            let a = Tensor::<f64>::rand_normal(&[m, k], 0.0, 1.0, &mut rng);
            let b = Tensor::<f64>::rand_normal(&[k, n], 0.0, 1.0, &mut rng);
            assert!(
                a.matmul(&b).allclose(&a.matmul_naive(&b), 1e-12, 1e-12),
                "{m}x{k}x{n}"
            );
            assert!(a
                .matmul_nt(&b.t())
                .allclose(&a.matmul_naive(&b), 1e-12, 1e-12));
            assert!(a
                .t()
                .matmul_tn(&b)
                .allclose(&a.matmul_naive(&b), 1e-12, 1e-12));
        }
    }

    #[test]
    fn batched_matmul_matches_per_item_products() {
        let mut rng = Rng::seed(6);
        let a = Tensor::<f64>::rand_normal(&[3, 4, 5], 0.0, 1.0, &mut rng);
        let b = Tensor::<f64>::rand_normal(&[3, 5, 2], 0.0, 1.0, &mut rng);
        let w = Tensor::<f64>::rand_normal(&[5, 2], 0.0, 1.0, &mut rng);
        let c = a.matmul(&b);
        let cw = a.matmul(&w);
        assert_eq!(c.shape(), &[3, 4, 2]);
        for i in 0..3 {
            let ai = a.narrow(0, i, 1).reshape(&[4, 5]);
            let bi = b.narrow(0, i, 1).reshape(&[5, 2]);
            assert!(c.narrow(0, i, 1).reshape(&[4, 2]).allclose(
                &ai.matmul_naive(&bi),
                1e-12,
                1e-12
            ));
            assert!(cw.narrow(0, i, 1).reshape(&[4, 2]).allclose(
                &ai.matmul_naive(&w),
                1e-12,
                1e-12
            ));
        }
        // a shared lhs against a batched rhs
        let l = Tensor::<f64>::rand_normal(&[4, 5], 0.0, 1.0, &mut rng);
        let lb = l.matmul(&b);
        let b1 = b.narrow(0, 1, 1).reshape(&[5, 2]);
        assert!(lb
            .narrow(0, 1, 1)
            .reshape(&[4, 2])
            .allclose(&l.matmul_naive(&b1), 1e-12, 1e-12));
        // batched transposed forms
        let bt = b.transpose(1, 2);
        assert!(a.matmul_nt(&bt).allclose(&c, 1e-12, 1e-12));
        assert!(a.transpose(1, 2).matmul_tn(&b).allclose(&c, 1e-12, 1e-12));
    }

    #[test]
    fn linear_matches_composition() {
        let mut rng = Rng::seed(7);
        let x = Tensor::<f64>::rand_normal(&[6, 4], 0.0, 1.0, &mut rng);
        let w = Tensor::<f64>::rand_normal(&[3, 4], 0.0, 1.0, &mut rng);
        let b = Tensor::<f64>::rand_normal(&[3], 0.0, 1.0, &mut rng);
        let y = linear_forward(&x, &w, Some(&b));
        assert!(y.allclose(&x.matmul_naive(&w.t()).add(&b), 1e-12, 1e-12));
        assert!(linear_forward(&x, &w, None).allclose(&x.matmul_naive(&w.t()), 1e-12, 1e-12));
        assert!(try_linear_forward(&x, &w.t(), None).is_err());
    }

    #[test]
    fn one_sample_split_with_the_partner_matches_composition() {
        // large enough for `team::join`; an odd output count gives uneven halves
        let mut rng = Rng::seed(8);
        let x = Tensor::<f64>::rand_normal(&[1, 2100], 0.0, 1.0, &mut rng);
        let w = Tensor::<f64>::rand_normal(&[129, 2100], 0.0, 1.0, &mut rng);
        let b = Tensor::<f64>::rand_normal(&[129], 0.0, 1.0, &mut rng);
        assert!(129 * 2100 >= team::MIN_WORK);
        let want = x.matmul_naive(&w.t());
        for _ in 0..20 {
            let (with_b, without) = team::scope(|| {
                (
                    linear_forward(&x, &w, Some(&b)),
                    linear_forward(&x, &w, None),
                )
            });
            assert!(with_b.allclose(&want.add(&b), 1e-10, 1e-10));
            assert!(without.allclose(&want, 1e-10, 1e-10));
        }
    }

    #[test]
    fn mismatch_names_op_and_shapes() {
        let e = Tensor::<f32>::zeros(&[2, 3])
            .try_matmul(&Tensor::zeros(&[4, 5]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("matmul")
                && e.contains("[2, 3]")
                && e.contains("[4, 5]")
                && e.contains("3 and 4"),
            "{e}"
        );
    }

    #[test]
    fn the_kept_input_gives_the_weight_gradient_bit_for_bit() {
        let mut rng = Rng::seed(12);
        // densities below the weight gradient's limit, between the two limits, above both;
        // and fewer rows than the sparse kernels take
        for &(rows, density, sparse_dw) in &[
            (32, 0.1, true),
            (32, 0.25, true),
            (32, 0.4, false),
            (32, 0.9, false),
            (sparse::MIN_ROWS - 1, 0.1, false),
        ] {
            let (in_f, out_f) = (200, 70);
            let v = Tensor::<f32>::rand_normal(&[rows, in_f], 0.0, 1.0, &mut rng);
            let keep = Tensor::<f32>::rand_uniform(&[rows, in_f], 0.0, 1.0, &mut rng);
            let data = v.data().iter().zip(keep.data());
            let data = data.map(|(&v, &k)| if f64::from(k) < density { v } else { 0.0 });
            let x = Tensor::from_vec(data.collect(), &[rows, in_f]);
            let w = Tensor::<f32>::rand_normal(&[out_f, in_f], 0.0, 0.1, &mut rng);
            let b = Tensor::<f32>::rand_normal(&[out_f], 0.0, 0.1, &mut rng);
            let g = Tensor::<f32>::rand_normal(&[rows, out_f], 0.0, 1.0, &mut rng);
            let (y, kept) = try_linear_forward_keep(&x, &w, Some(&b)).unwrap();
            assert_eq!(y.to_vec(), linear_forward(&x, &w, Some(&b)).to_vec());
            assert_eq!(
                matches!(kept, LinearInput::Sparse(_)),
                sparse_dw && sparse::enabled(),
                "rows {rows}, density {density}"
            );
            let dw = linear_weight_grad_kept(&g, &x, &kept);
            assert_eq!(dw.shape(), [out_f, in_f]);
            assert_eq!(
                dw.to_vec(),
                linear_weight_grad(&g, &x).to_vec(),
                "rows {rows}, density {density}"
            );
            assert!(dw.allclose(&g.matmul_tn(&x), 1e-4, 1e-4));
        }
    }

    #[test]
    fn a_layer_much_wider_at_its_input_takes_the_gemm_above_the_narrow_bound() {
        let mut rng = Rng::seed(14);
        // 320 → 20 is 16 times wider at its input: dense above 0.3, where 320 → 21 is not
        for &(out_f, density) in &[(20, 0.4), (20, 0.45)] {
            let (rows, in_f) = (32, 320);
            let v = Tensor::<f32>::rand_normal(&[rows, in_f], 0.0, 1.0, &mut rng);
            let keep = Tensor::<f32>::rand_uniform(&[rows, in_f], 0.0, 1.0, &mut rng);
            let data = v.data().iter().zip(keep.data());
            let data = data.map(|(&v, &k)| if f64::from(k) < density { v } else { 0.0 });
            let x = Tensor::from_vec(data.collect(), &[rows, in_f]);
            let nnz = x.data().iter().filter(|v| **v != 0.0).count() as f64;
            let d = nnz / x.numel() as f64;
            assert!(d > sparse::MAX_DENSITY_FORWARD_NARROW && d <= sparse::MAX_DENSITY_FORWARD);
            let w = Tensor::<f32>::rand_normal(&[out_f, in_f], 0.0, 0.1, &mut rng);
            let b = Tensor::<f32>::rand_normal(&[out_f], 0.0, 0.1, &mut rng);
            let (y, kept) = try_linear_forward_keep(&x, &w, Some(&b)).unwrap();
            assert!(matches!(kept, LinearInput::Dense));
            // the dense path's own arithmetic: the bias, then the product added by the GEMM
            let mut want: Vec<f32> = b
                .data()
                .iter()
                .copied()
                .cycle()
                .take(rows * out_f)
                .collect();
            gemm(
                Out::Add(&mut want),
                Mat::new(x.data(), rows, in_f),
                Mat::new(w.data(), out_f, in_f).t(),
                Threads::Auto,
            );
            assert_eq!(y.to_vec(), want, "{in_f} → {out_f} at {density}");
            // the same input on a layer one output wider keeps the sparse forward
            let w21 = Tensor::<f32>::rand_normal(&[out_f + 1, in_f], 0.0, 0.1, &mut rng);
            assert!(
                sparse::worth_it(x.data(), rows, sparse::max_density_forward(in_f, out_f + 1))
                    || !sparse::enabled()
            );
            let y21 = try_linear_forward(&x, &w21, None).unwrap();
            assert!(y21.allclose(&x.matmul_nt(&w21), 1e-4, 1e-4));
        }
    }

    #[test]
    #[should_panic(expected = "kept")]
    fn a_kept_input_of_another_shape_is_refused() {
        let mut rng = Rng::seed(13);
        let x = Tensor::<f32>::rand_normal(&[16, 40], 0.0, 1.0, &mut rng).map(|v| v.max(1.5) - 1.5);
        let w = Tensor::<f32>::rand_normal(&[8, 40], 0.0, 1.0, &mut rng);
        let (_, kept) = try_linear_forward_keep(&x, &w, None).unwrap();
        assert!(matches!(kept, LinearInput::Sparse(_)) || !sparse::enabled());
        let other = x.narrow(0, 0, 12);
        let g = Tensor::<f32>::zeros(&[12, 8]);
        let _ = linear_weight_grad_kept(&g, &other, &kept);
    }
}
