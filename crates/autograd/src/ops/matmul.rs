//! Matrix products.
//!
//! Gradients: for `C = A·B`, `dA = dC·Bᵀ` and `dB = Aᵀ·dC` (batched: per batch entry, and
//! summed over the batch for a shared 2-D operand). For the fused affine map
//! `Y = X·Wᵀ + b`: `dX = dY·W`, `dW = dYᵀ·X`, `db = Σ_rows dY`. Transposes are read through
//! strides by the GEMM crate, never copied.

use backprop_tensor::{linear_weight_grad_kept, try_linear_forward_keep, Element, Tensor};

use crate::Var;

/// Collapses all leading axes of a tensor into rows: `[*, n] -> [rows, n]`.
fn rows<E: Element>(t: &Tensor<E>) -> Tensor<E> {
    let n = *t.shape().last().unwrap();
    t.reshape(&[t.numel() / n.max(1), n])
}

impl<E: Element> Var<E> {
    /// Matrix product, 2-D or batched (see `Tensor::matmul`).
    ///
    /// # Panics
    /// If the shapes do not fit; the message names `matmul` and both shapes.
    #[track_caller]
    pub fn matmul(&self, other: &Var<E>) -> Var<E> {
        let (a, b) = (self.value(), other.value());
        let y = a.matmul(&b);
        Var::from_op(
            "matmul",
            y,
            vec![self.clone(), other.clone()],
            move |g, needs| {
                let da = needs[0].then(|| {
                    let d = g.matmul_nt(&b);
                    if d.shape() == a.shape() {
                        d
                    } else {
                        rows(&d)
                            .reshape(&[d.numel() / a.numel(), a.shape()[0], a.shape()[1]])
                            .sum_axis(0, false)
                    }
                });
                let db = needs[1].then(|| {
                    if b.rank() == 2 && a.rank() > 2 {
                        // shared rhs: fold the batch into the rows, one GEMM
                        rows(&a).matmul_tn(&rows(g))
                    } else {
                        let d = a.matmul_tn(g);
                        if d.shape() == b.shape() {
                            d
                        } else {
                            d.reshape(&[d.numel() / b.numel(), b.shape()[0], b.shape()[1]])
                                .sum_axis(0, false)
                        }
                    }
                });
                vec![da, db]
            },
        )
    }

    /// The affine map `x·wᵀ + b` with PyTorch's `(out, in)` weight layout, fused into one
    /// GEMM. `x: [*, in]`, `w: [out, in]`, `b: [out]` → `[*, out]`.
    ///
    /// ```
    /// use backprop_autograd::Var;
    /// use backprop_tensor::Tensor;
    /// let x = Var::constant(Tensor::<f32>::from_vec(vec![1.0, 2.0], &[1, 2]));
    /// let w = Var::parameter(Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.0], &[2, 2]));
    /// let b = Var::parameter(Tensor::from_vec(vec![0.1, 0.2], &[2]));
    /// assert_eq!(x.linear(&w, Some(&b)).value().to_vec(), vec![-1.4, 2.2]);
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit; the message names `linear` and the shapes.
    #[track_caller]
    pub fn linear(&self, w: &Var<E>, b: Option<&Var<E>>) -> Var<E> {
        let (x, wv) = (self.value(), w.value());
        let bv = b.map(|b| b.value());
        // a mostly-zero input's nonzeros, gathered by the forward kernel, kept for dw
        let (y, kept) = match try_linear_forward_keep(&x, &wv, bv.as_ref()) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        };
        let mut parents = vec![self.clone(), w.clone()];
        if let Some(b) = b {
            parents.push(b.clone());
        }
        Var::from_op("linear", y, parents, move |g, needs| {
            let g2 = rows(g);
            let dx = needs[0].then(|| g2.matmul(&wv).reshape(x.shape()));
            let dw = needs[1].then(|| linear_weight_grad_kept(&g2, &rows(&x), &kept));
            let mut out = vec![dx, dw];
            if needs.len() > 2 {
                out.push(needs[2].then(|| g2.sum_axis(0, false)));
            }
            out
        })
    }
}
