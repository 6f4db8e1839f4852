//! Fused batch normalization and per-channel affine maps (kernels and gradients in
//! `backprop_tensor::ops::norm`).

use backprop_tensor::{
    batch_norm_backward, batch_norm_forward, batch_norm_relu_backward, batch_norm_relu_forward,
    batch_norm_relu_max_pool_backward, batch_norm_relu_max_pool_forward, channel_affine_backward,
    channel_affine_forward, Element, Pool2dParams, Tensor,
};

use crate::Var;

impl<E: Element> Var<E> {
    /// Training-mode batch normalization of `[N, C]` or `[N, C, H, W]` over everything but
    /// the channel axis: `γ (x − μ)/√(σ² + ε) + β`. Returns the output and the batch mean and
    /// biased variance (for running statistics).
    ///
    /// # Panics
    /// If the input is not 2-D or 4-D or `γ`, `β` are not `[C]`.
    pub fn batch_norm(
        &self,
        gamma: &Var<E>,
        beta: &Var<E>,
        eps: f64,
    ) -> (Var<E>, Tensor<E>, Tensor<E>) {
        let (x, g) = (self.value(), gamma.value());
        let eps = E::from_f64(eps);
        let (y, mean, var) = batch_norm_forward(&x, &g, &beta.value(), eps);
        let (m2, v2) = (mean.clone(), var.clone());
        let out = Var::from_op(
            "batch_norm",
            y,
            vec![self.clone(), gamma.clone(), beta.clone()],
            move |dy, _| {
                let (dx, dg, db) = batch_norm_backward(&x, &g, &m2, &v2, eps, dy);
                vec![Some(dx), Some(dg), Some(db)]
            },
        );
        (out, mean, var)
    }

    /// [`Var::batch_norm`] followed by ReLU, `max(BN(x), 0)`, as one op: the ReLU is applied
    /// as the normalised values are written, and its gradient as the batch norm's backward
    /// pass reads `dy`, its mask recomputed from the input (no separate passes, no buffer
    /// between, and the output is not read again). Returns the output and the
    /// batch mean and biased variance.
    ///
    /// ```
    /// use backprop_autograd::Var;
    /// use backprop_tensor::Tensor;
    /// let x = Var::constant(Tensor::<f64>::from_vec(vec![1.0, 3.0, 2.0, 6.0], &[2, 2]));
    /// let (g, b) = (Var::parameter(Tensor::ones(&[2])), Var::parameter(Tensor::zeros(&[2])));
    /// let (y, mean, _) = x.batch_norm_relu(&g, &b, 0.0);
    /// assert_eq!(y.value().to_vec(), vec![0.0, 0.0, 1.0, 1.0]);
    /// assert_eq!(mean.to_vec(), vec![1.5, 4.5]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 2-D or 4-D or `γ`, `β` are not `[C]`.
    pub fn batch_norm_relu(
        &self,
        gamma: &Var<E>,
        beta: &Var<E>,
        eps: f64,
    ) -> (Var<E>, Tensor<E>, Tensor<E>) {
        let (x, g, b) = (self.value(), gamma.value(), beta.value());
        let eps = E::from_f64(eps);
        let (y, mean, var) = batch_norm_relu_forward(&x, &g, &b, eps);
        let (m2, v2) = (mean.clone(), var.clone());
        let out = Var::from_op(
            "batch_norm_relu",
            y,
            vec![self.clone(), gamma.clone(), beta.clone()],
            move |dy, _| {
                let (dx, dg, db) = batch_norm_relu_backward(&x, &g, &b, &m2, &v2, eps, dy);
                vec![Some(dx), Some(dg), Some(db)]
            },
        );
        (out, mean, var)
    }

    /// [`Var::batch_norm_relu`] followed by max pooling, as one op: each plane is
    /// normalised and pooled while it is in cache, so neither the full-size output nor its
    /// gradient is written out and read back. The same values and gradients as the two ops
    /// in a row ([`Var::max_pool2d`] after [`Var::batch_norm_relu`]), to the bit. Returns
    /// the pooled output and the batch mean and biased variance.
    ///
    /// ```
    /// use backprop_autograd::Var;
    /// use backprop_tensor::{Pool2dParams, Tensor};
    /// let x = Var::constant(Tensor::<f64>::from_vec(vec![1.0, 3.0, 2.0, 6.0], &[1, 1, 2, 2]));
    /// let (g, b) = (Var::parameter(Tensor::ones(&[1])), Var::parameter(Tensor::zeros(&[1])));
    /// let (y, mean, _) = x.batch_norm_relu_max_pool(&g, &b, 0.0, Pool2dParams::square(2));
    /// assert_eq!(mean.to_vec(), vec![3.0]);
    /// assert!((y.value().to_vec()[0] - 3.0 / 14f64.sqrt() * 2.0).abs() < 1e-12);
    /// ```
    ///
    /// # Panics
    /// If the input is not 4-D, the window does not fit it, or `γ`, `β` are not `[C]`.
    #[track_caller]
    pub fn batch_norm_relu_max_pool(
        &self,
        gamma: &Var<E>,
        beta: &Var<E>,
        eps: f64,
        p: Pool2dParams,
    ) -> (Var<E>, Tensor<E>, Tensor<E>) {
        let (x, g, b) = (self.value(), gamma.value(), beta.value());
        let eps = E::from_f64(eps);
        let (y, idx, mean, var) =
            batch_norm_relu_max_pool_forward(&x, &g, &b, eps, p).unwrap_or_else(|e| panic!("{e}"));
        let (m2, v2) = (mean.clone(), var.clone());
        let out = Var::from_op(
            "batch_norm_relu_max_pool",
            y,
            vec![self.clone(), gamma.clone(), beta.clone()],
            move |dy, _| {
                let (dx, dg, db) =
                    batch_norm_relu_max_pool_backward(&x, &g, &b, [&m2, &v2], eps, p, dy, &idx);
                vec![Some(dx), Some(dg), Some(db)]
            },
        );
        (out, mean, var)
    }

    /// The per-channel affine map `y = s_c·x + t_c` on `[N, C]` or `[N, C, H, W]`.
    ///
    /// # Panics
    /// If the input is not 2-D or 4-D or `s`, `t` are not `[C]`.
    pub fn channel_affine(&self, s: &Var<E>, t: &Var<E>) -> Var<E> {
        let (x, sv) = (self.value(), s.value());
        let y = channel_affine_forward(&x, &sv, &t.value());
        Var::from_op(
            "channel_affine",
            y,
            vec![self.clone(), s.clone(), t.clone()],
            move |dy, _| {
                let (dx, ds, dt) = channel_affine_backward(&x, &sv, dy);
                vec![Some(dx), Some(ds), Some(dt)]
            },
        )
    }
}
