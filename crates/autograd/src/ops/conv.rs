//! Convolution and pooling.
//!
//! Gradients (kernels in `backprop_tensor::ops::conv` and `::pool`): for `y = conv(x, w) + b`,
//! `dw = Σ_images dY·colᵀ`, `dx = col2im(Wᵀ·dY)` (for a "same" convolution with unit steps
//! on AVX-512F, in `f32`, the convolution of `dY` with the weights turned around, without
//! unfolding), `db = Σ dY` (the backward pass unfolds the images again, chunk by chunk in
//! cache); max pooling sends each
//! output's gradient to its window's first maximum; average pooling spreads `dy/(KH·KW)`
//! over the window.

use backprop_tensor::{
    avg_pool2d_backward, avg_pool2d_forward, conv2d_backward, conv2d_forward, max_pool2d_backward,
    max_pool2d_forward, relu_max_pool2d_backward, relu_max_pool2d_forward, Conv2dParams, Element,
    Pool2dParams,
};

use crate::Var;

impl<E: Element> Var<E> {
    /// 2-D convolution of `[N, C, H, W]` with weights `[O, C/groups, KH, KW]` and an optional
    /// bias `[O]`.
    ///
    /// ```
    /// use backprop_autograd::Var;
    /// use backprop_tensor::{Conv2dParams, Tensor};
    /// let x = Var::constant(Tensor::<f32>::ones(&[1, 1, 4, 4]));
    /// let w = Var::parameter(Tensor::ones(&[2, 1, 3, 3]));
    /// let y = x.conv2d(&w, None, Conv2dParams { padding: (1, 1), ..Default::default() });
    /// assert_eq!(y.shape(), vec![1, 2, 4, 4]);
    /// assert_eq!(y.value().get(&[0, 0, 1, 1]), 9.0);
    /// ```
    ///
    /// # Panics
    /// If the shapes do not fit (the message names `conv2d` and both shapes).
    #[track_caller]
    pub fn conv2d(&self, w: &Var<E>, b: Option<&Var<E>>, p: Conv2dParams) -> Var<E> {
        let (x, wv) = (self.value(), w.value());
        let bv = b.map(|b| b.value());
        // The backward pass unfolds each chunk of images again, into a buffer that stays in
        // cache, rather than keeping the forward pass's columns (`try_conv2d_forward_keep`):
        // for the W6 network those are 12.5 MB a step written out and read back, and the
        // epoch took 8% longer with them (15.5 against 16.8 s and 16.5 against 17.9 s in
        // paired runs; LeNet's within the noise).
        let y = conv2d_forward(&x, &wv, bv.as_ref(), p);
        let mut parents = vec![self.clone(), w.clone()];
        if let Some(b) = b {
            parents.push(b.clone());
        }
        Var::from_op("conv2d", y, parents, move |g, needs| {
            let want_b = needs.get(2).copied().unwrap_or(false);
            let want = (needs[0], needs[1], want_b);
            let (dx, dw, db) = conv2d_backward(&x, &wv, g, p, want);
            let mut out = vec![dx, dw];
            if needs.len() > 2 {
                out.push(db);
            }
            out
        })
    }

    /// `max_pool2d(relu(x))` as one op: each plane goes through the ReLU in cache and is
    /// pooled from there, and its gradient is written once; the same values and gradients
    /// as [`Var::relu`] then [`Var::max_pool2d`], to the bit.
    ///
    /// ```
    /// use backprop_autograd::Var;
    /// use backprop_tensor::{Pool2dParams, Tensor};
    /// let x = Var::constant(Tensor::<f64>::from_vec(vec![-1.0, -3.0, -2.0, -6.0], &[1, 1, 2, 2]));
    /// assert_eq!(x.relu_max_pool2d(Pool2dParams::square(2)).value().to_vec(), vec![0.0]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 4-D or the window does not fit.
    #[track_caller]
    pub fn relu_max_pool2d(&self, p: Pool2dParams) -> Var<E> {
        let x = self.value();
        let (y, idx) = relu_max_pool2d_forward(&x, p).unwrap_or_else(|e| panic!("{e}"));
        Var::from_op("relu_max_pool2d", y, vec![self.clone()], move |g, _| {
            vec![Some(relu_max_pool2d_backward(&x, g, &idx, p))]
        })
    }

    /// Max pooling of `[N, C, H, W]`; ties send the gradient to the first maximum.
    ///
    /// # Panics
    /// If the input is not 4-D or the window does not fit.
    #[track_caller]
    pub fn max_pool2d(&self, p: Pool2dParams) -> Var<E> {
        let x = self.value();
        let (y, idx) = max_pool2d_forward(&x, p).unwrap_or_else(|e| panic!("{e}"));
        let shape = x.shape().to_vec();
        Var::from_op("max_pool2d", y, vec![self.clone()], move |g, _| {
            vec![Some(max_pool2d_backward(&shape, g, &idx, p))]
        })
    }

    /// Average pooling of `[N, C, H, W]` (zero padding counted in the divisor).
    ///
    /// # Panics
    /// If the input is not 4-D or the window does not fit.
    #[track_caller]
    pub fn avg_pool2d(&self, p: Pool2dParams) -> Var<E> {
        let x = self.value();
        let y = avg_pool2d_forward(&x, p).unwrap_or_else(|e| panic!("{e}"));
        let shape = x.shape().to_vec();
        Var::from_op("avg_pool2d", y, vec![self.clone()], move |g, _| {
            vec![Some(avg_pool2d_backward(&shape, g, p))]
        })
    }
}
