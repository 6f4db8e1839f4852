//! Elementwise functions.
//!
//! Gradients, with `y` the output and `g` the upstream gradient:
//! `neg: −g`; `exp: g·y`; `log: g/x`; `sqrt: g/(2y)`; `powf(p): g·p·x^{p−1}`;
//! `sigmoid: g·y(1−y)`; `tanh: g·(1−y²)`;
//! kinks, by definition: `relu'(0) = 0`; `abs'(0) = 0`; `sign' = 0` everywhere (a step has
//! no useful gradient; it is 0 almost everywhere and undefined at 0).

use backprop_tensor::{Element, Tensor};

use crate::Var;

impl<E: Element> Var<E> {
    fn unary(
        &self,
        op: &'static str,
        y: Tensor<E>,
        rule: impl FnOnce(&Tensor<E>) -> Tensor<E> + Send + 'static,
    ) -> Var<E> {
        Var::from_op(op, y, vec![self.clone()], move |g, _| vec![Some(rule(g))])
    }

    /// `−x`.
    pub fn neg(&self) -> Var<E> {
        self.unary("neg", self.value().neg(), |g| g.neg())
    }

    /// `eˣ`.
    pub fn exp(&self) -> Var<E> {
        let y = self.value().exp();
        self.unary("exp", y.clone(), move |g| g.mul(&y))
    }

    /// Natural logarithm.
    pub fn log(&self) -> Var<E> {
        let x = self.value();
        self.unary("log", x.log(), move |g| g.div(&x))
    }

    /// Square root.
    pub fn sqrt(&self) -> Var<E> {
        let y = self.value().sqrt();
        self.unary("sqrt", y.clone(), move |g| {
            g.div(&y.mul_scalar(E::from_f64(2.0)))
        })
    }

    /// `xᵖ` for a constant exponent.
    pub fn powf(&self, p: E) -> Var<E> {
        let x = self.value();
        self.unary("powf", x.powf(p), move |g| {
            g.mul(&x.powf(p - E::ONE).mul_scalar(p))
        })
    }

    /// `|x|`, with gradient `sign(x)` and so 0 at 0.
    pub fn abs(&self) -> Var<E> {
        let x = self.value();
        self.unary("abs", x.abs(), move |g| g.mul(&x.sign()))
    }

    /// −1, 0 or 1; its gradient is 0 everywhere (by definition at 0).
    pub fn sign(&self) -> Var<E> {
        let x = self.value();
        self.unary("sign", x.sign(), |g| g.zeros_like())
    }

    /// `max(x, 0)`, with `relu'(0) = 0`.
    pub fn relu(&self) -> Var<E> {
        let x = self.value();
        self.unary("relu", x.relu(), move |g| {
            let (gd, xd) = (g.data(), x.data());
            let d = gd
                .iter()
                .zip(xd)
                .map(|(&g, &x)| if x > E::ZERO { g } else { E::ZERO })
                .collect();
            Tensor::from_vec(d, x.shape())
        })
    }

    /// `σ(x) = 1/(1 + e^{−x})`.
    pub fn sigmoid(&self) -> Var<E> {
        let y = self.value().sigmoid();
        self.unary("sigmoid", y.clone(), move |g| {
            g.mul(&y.map(|s| s * (E::ONE - s)))
        })
    }

    /// `tanh(x)`.
    pub fn tanh(&self) -> Var<E> {
        let y = self.value().tanh();
        self.unary("tanh", y.clone(), move |g| {
            g.mul(&y.map(|t| E::ONE - t * t))
        })
    }
}
