//! Binary arithmetic with broadcasting, scalar forms, maximum/minimum and `where_`.
//!
//! Gradients (with `g` the upstream gradient, summed back to each input's shape):
//! - `a + b`: `g`, `g`;  `a − b`: `g`, `−g`;  `a·b`: `g·b`, `g·a`;  `a/b`: `g/b`, `−g·a/b²`;
//! - `maximum(a, b)`: `g` to the larger input; at a tie **each input receives `g/2`**
//!   (the symmetric choice, which is also what a central difference measures);
//!   `minimum` likewise;
//! - `where_(c, a, b)`: `g` where `c ≠ 0` to `a`, elsewhere to `b`; `c` gets none.

use backprop_tensor::{Element, Tensor};

use crate::Var;

fn reduce_to<E: Element>(g: Tensor<E>, shape: &[usize]) -> Tensor<E> {
    g.sum_to(shape)
}

impl<E: Element> Var<E> {
    /// `a + b` with broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast (the message names `add` and both shapes).
    #[track_caller]
    pub fn add(&self, other: &Var<E>) -> Var<E> {
        let (a, b) = (self.value(), other.value());
        let y = a.add(&b);
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        Var::from_op(
            "add",
            y,
            vec![self.clone(), other.clone()],
            move |g, needs| {
                vec![
                    needs[0].then(|| reduce_to(g.clone(), &sa)),
                    needs[1].then(|| reduce_to(g.clone(), &sb)),
                ]
            },
        )
    }

    /// `a − b` with broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn sub(&self, other: &Var<E>) -> Var<E> {
        let (a, b) = (self.value(), other.value());
        let y = a.sub(&b);
        let (sa, sb) = (a.shape().to_vec(), b.shape().to_vec());
        Var::from_op(
            "sub",
            y,
            vec![self.clone(), other.clone()],
            move |g, needs| {
                vec![
                    needs[0].then(|| reduce_to(g.clone(), &sa)),
                    needs[1].then(|| reduce_to(g.neg(), &sb)),
                ]
            },
        )
    }

    /// `a · b` elementwise with broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn mul(&self, other: &Var<E>) -> Var<E> {
        let (a, b) = (self.value(), other.value());
        let y = a.mul(&b);
        Var::from_op(
            "mul",
            y,
            vec![self.clone(), other.clone()],
            move |g, needs| {
                vec![
                    needs[0].then(|| g.mul(&b).sum_to(a.shape())),
                    needs[1].then(|| g.mul(&a).sum_to(b.shape())),
                ]
            },
        )
    }

    /// `a / b` elementwise with broadcasting.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn div(&self, other: &Var<E>) -> Var<E> {
        let (a, b) = (self.value(), other.value());
        let y = a.div(&b);
        Var::from_op(
            "div",
            y.clone(),
            vec![self.clone(), other.clone()],
            move |g, needs| {
                vec![
                    needs[0].then(|| g.div(&b).sum_to(a.shape())),
                    // d(a/b)/db = −a/b² = −y/b
                    needs[1].then(|| g.mul(&y).div(&b).neg().sum_to(b.shape())),
                ]
            },
        )
    }

    /// Elementwise maximum with broadcasting; at ties each input gets half the gradient.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn maximum(&self, other: &Var<E>) -> Var<E> {
        self.extreme(other, "maximum", true)
    }

    /// Elementwise minimum with broadcasting; at ties each input gets half the gradient.
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn minimum(&self, other: &Var<E>) -> Var<E> {
        self.extreme(other, "minimum", false)
    }

    #[track_caller]
    fn extreme(&self, other: &Var<E>, op: &'static str, max: bool) -> Var<E> {
        let (a, b) = (self.value(), other.value());
        let y = if max { a.maximum(&b) } else { a.minimum(&b) };
        // share of the gradient going to `a`: 1 where a wins, 0.5 at a tie, 0 where b wins
        let wins = if max { a.gt_mask(&b) } else { a.lt_mask(&b) };
        let share_a = wins.add(&a.eq_mask(&b).mul_scalar(E::from_f64(0.5)));
        Var::from_op(op, y, vec![self.clone(), other.clone()], move |g, needs| {
            vec![
                needs[0].then(|| g.mul(&share_a).sum_to(a.shape())),
                needs[1].then(|| g.mul(&share_a.neg().add_scalar(E::ONE)).sum_to(b.shape())),
            ]
        })
    }

    /// `x + c` for a constant `c`.
    pub fn add_scalar(&self, c: E) -> Var<E> {
        Var::from_op(
            "add_scalar",
            self.value().add_scalar(c),
            vec![self.clone()],
            |g, _| vec![Some(g.clone())],
        )
    }

    /// `x · c` for a constant `c`.
    pub fn mul_scalar(&self, c: E) -> Var<E> {
        Var::from_op(
            "mul_scalar",
            self.value().mul_scalar(c),
            vec![self.clone()],
            move |g, _| vec![Some(g.mul_scalar(c))],
        )
    }

    /// `max(x, c)`: the gradient passes where `x > c`, half of it where `x = c`.
    pub fn maximum_scalar(&self, c: E) -> Var<E> {
        let x = self.value();
        Var::from_op(
            "maximum_scalar",
            x.maximum_scalar(c),
            vec![self.clone()],
            move |g, _| {
                vec![Some(
                    g.mul(
                        &x.gt_scalar(c)
                            .add(&x.eq_scalar(c).mul_scalar(E::from_f64(0.5))),
                    ),
                )]
            },
        )
    }

    /// `min(x, c)`: the gradient passes where `x < c`, half of it where `x = c`.
    pub fn minimum_scalar(&self, c: E) -> Var<E> {
        let x = self.value();
        Var::from_op(
            "minimum_scalar",
            x.minimum_scalar(c),
            vec![self.clone()],
            move |g, _| {
                vec![Some(
                    g.mul(
                        &x.lt_scalar(c)
                            .add(&x.eq_scalar(c).mul_scalar(E::from_f64(0.5))),
                    ),
                )]
            },
        )
    }

    /// `a` where `cond ≠ 0`, else `b`; all three broadcast. `cond` is a constant mask
    /// (e.g. from `Tensor::gt_mask`).
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn where_(cond: &Tensor<E>, a: &Var<E>, b: &Var<E>) -> Var<E> {
        let (av, bv) = (a.value(), b.value());
        let y = Tensor::where_(cond, &av, &bv);
        let (sa, sb) = (av.shape().to_vec(), bv.shape().to_vec());
        let cond = cond.clone();
        Var::from_op("where", y, vec![a.clone(), b.clone()], move |g, needs| {
            let zero = Tensor::scalar(E::ZERO);
            vec![
                needs[0].then(|| Tensor::where_(&cond, g, &zero).sum_to(&sa)),
                needs[1].then(|| Tensor::where_(&cond, &zero, g).sum_to(&sb)),
            ]
        })
    }
}

macro_rules! impl_operator {
    ($tr:ident, $m:ident) => {
        impl<E: Element> std::ops::$tr<&Var<E>> for &Var<E> {
            type Output = Var<E>;
            #[track_caller]
            fn $m(self, rhs: &Var<E>) -> Var<E> {
                Var::$m(self, rhs)
            }
        }
        impl<E: Element> std::ops::$tr<Var<E>> for Var<E> {
            type Output = Var<E>;
            #[track_caller]
            fn $m(self, rhs: Var<E>) -> Var<E> {
                Var::$m(&self, &rhs)
            }
        }
    };
}
impl_operator!(Add, add);
impl_operator!(Sub, sub);
impl_operator!(Mul, mul);
impl_operator!(Div, div);

impl<E: Element> std::ops::Neg for &Var<E> {
    type Output = Var<E>;
    fn neg(self) -> Var<E> {
        Var::neg(self)
    }
}
