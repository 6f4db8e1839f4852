//! Fused batch normalization and per-channel affine maps (kernels and gradients in
//! `backprop_tensor::ops::norm`).

use backprop_tensor::{
    batch_norm_backward, batch_norm_forward, batch_norm_relu_backward, batch_norm_relu_forward,
    batch_norm_relu_max_pool_backward, batch_norm_relu_max_pool_forward, channel_affine_backward,
    channel_affine_forward, conv2d_batch_norm_relu_max_pool_backward, conv2d_forward, Conv2dParams,
    Element, Pool2dParams, Tensor,
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

    /// [`Var::conv2d`] (weight `w`, bias `b`, parameters `cp`) followed by
    /// [`Var::batch_norm_relu_max_pool`], as one op when this input needs no gradient (a
    /// network's first layer, on its data) and the weight does (a frozen weight takes the
    /// two ops, whose backward pass then skips the weight's gradient): the backward pass
    /// then makes each plane of the
    /// convolution's output gradient in cache and adds it straight into the weight's
    /// gradient, instead of writing the whole gradient out for the convolution to read back
    /// (`backprop_tensor::conv2d_batch_norm_relu_max_pool_backward`). The same values as the
    /// two ops in a row (the weight's gradient up to rounding: it is summed in another
    /// order), which is what an input that needs its gradient (or a convolution of several
    /// groups) gets. Returns the pooled output and the batch mean and biased
    /// variance.
    ///
    /// ```
    /// use backprop_autograd::Var;
    /// use backprop_tensor::{Conv2dParams, Pool2dParams, Tensor};
    /// let x = Var::constant(Tensor::<f64>::from_vec(vec![1.0, 3.0, 2.0, 6.0], &[1, 1, 2, 2]));
    /// let w = Var::parameter(Tensor::from_vec(vec![2.0], &[1, 1, 1, 1]));
    /// let (g, b) = (Var::parameter(Tensor::ones(&[1])), Var::parameter(Tensor::zeros(&[1])));
    /// let p = (Conv2dParams::default(), Pool2dParams::square(2));
    /// let (y, mean, _) = x.conv2d_batch_norm_relu_max_pool(&w, None, &g, &b, 0.0, p);
    /// assert_eq!(mean.to_vec(), vec![6.0]);
    /// let grads = y.sum().backward();
    /// // the pooled maximum (12 − 6)/√14 does not change with w's scale, which the
    /// // normalisation removes: its gradient is zero
    /// assert!(grads.get(&w).unwrap().to_vec()[0].abs() < 1e-12);
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit (the messages of the two ops).
    #[track_caller]
    pub fn conv2d_batch_norm_relu_max_pool(
        &self,
        w: &Var<E>,
        b: Option<&Var<E>>,
        gamma: &Var<E>,
        beta: &Var<E>,
        eps: f64,
        (cp, p): (Conv2dParams, Pool2dParams),
    ) -> (Var<E>, Tensor<E>, Tensor<E>) {
        if self.requires_grad() || !w.requires_grad() || cp.groups != 1 {
            return self
                .conv2d(w, b, cp)
                .batch_norm_relu_max_pool(gamma, beta, eps, p);
        }
        let (x, wv, g, bt) = (self.value(), w.value(), gamma.value(), beta.value());
        let conv_out = conv2d_forward(&x, &wv, b.map(|b| b.value()).as_ref(), cp);
        let eps = E::from_f64(eps);
        let (y, idx, mean, var) = batch_norm_relu_max_pool_forward(&conv_out, &g, &bt, eps, p)
            .unwrap_or_else(|e| panic!("{e}"));
        let (m2, v2) = (mean.clone(), var.clone());
        let w_shape = wv.shape().to_vec();
        let mut parents = vec![w.clone(), gamma.clone(), beta.clone()];
        parents.extend(b.cloned());
        let want_bias = b.is_some();
        let out = Var::from_op(
            "conv2d_batch_norm_relu_max_pool",
            y,
            parents,
            move |dy, _| {
                let (dw, db, dg, dbeta) = conv2d_batch_norm_relu_max_pool_backward(
                    (&x, &w_shape, cp, want_bias),
                    &conv_out,
                    &g,
                    &bt,
                    [&m2, &v2],
                    eps,
                    p,
                    dy,
                    &idx,
                );
                let mut grads = vec![Some(dw), Some(dg), Some(dbeta)];
                if want_bias {
                    grads.push(db);
                }
                grads
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
