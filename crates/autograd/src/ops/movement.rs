//! Movement and indexing.
//!
//! Gradients: `reshape` reshapes back; `permute` applies the inverse permutation; `narrow`
//! pads with zeros; `concat`/`stack` split `g` into the inputs' pieces; `index_select`
//! adds each selected slice back where it came from (repeats accumulate); `gather` scatters
//! back (see `Tensor::scatter_add_into`).

use backprop_tensor::shape::norm_axis;
use backprop_tensor::{Element, Tensor};

use crate::Var;

impl<E: Element> Var<E> {
    /// New shape, same elements.
    ///
    /// # Panics
    /// If the element counts differ.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Var<E> {
        let x = self.value();
        let old = x.shape().to_vec();
        Var::from_op(
            "reshape",
            x.reshape(shape),
            vec![self.clone()],
            move |g, _| vec![Some(g.reshape(&old))],
        )
    }

    /// Reorders axes: output axis `i` is input axis `perm[i]`.
    ///
    /// # Panics
    /// If `perm` is not a permutation of the axes.
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Var<E> {
        let y = self.value().permute(perm);
        let mut inv = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        Var::from_op("permute", y, vec![self.clone()], move |g, _| {
            vec![Some(g.permute(&inv))]
        })
    }

    /// Swaps two axes.
    ///
    /// # Panics
    /// If an axis is out of range.
    #[track_caller]
    pub fn transpose(&self, a: isize, b: isize) -> Var<E> {
        let r = self.with_value(|v| v.rank());
        let (a, b) = (norm_axis("transpose", a, r), norm_axis("transpose", b, r));
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Entries `start..start+len` of one axis.
    ///
    /// # Panics
    /// If the range does not fit.
    #[track_caller]
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Var<E> {
        let x = self.value();
        let y = x.narrow(axis, start, len);
        let shape = x.shape().to_vec();
        let ax = norm_axis("narrow", axis, shape.len());
        Var::from_op("narrow", y, vec![self.clone()], move |g, _| {
            // zeros of the input's shape with `g` written into the narrowed slab: for each
            // index before the axis, `len·inner` contiguous values at `start·inner`
            let inner: usize = shape[ax + 1..].iter().product();
            let (span, slab) = (shape[ax] * inner, len * inner);
            let mut out = vec![E::ZERO; shape.iter().product()];
            if slab > 0 {
                for (dst, src) in out.chunks_exact_mut(span).zip(g.data().chunks_exact(slab)) {
                    dst[start * inner..][..slab].copy_from_slice(src);
                }
            }
            vec![Some(Tensor::from_vec(out, &shape))]
        })
    }

    /// Joins variables along an existing axis.
    ///
    /// # Panics
    /// If the list is empty or the shapes disagree off the axis.
    #[track_caller]
    pub fn concat(vars: &[&Var<E>], axis: isize) -> Var<E> {
        let vals: Vec<Tensor<E>> = vars.iter().map(|v| v.value()).collect();
        let refs: Vec<&Tensor<E>> = vals.iter().collect();
        let y = Tensor::concat(&refs, axis);
        let ax = norm_axis("concat", axis, y.rank());
        let sizes: Vec<usize> = vals.iter().map(|v| v.shape()[ax]).collect();
        Var::from_op(
            "concat",
            y,
            vars.iter().map(|v| (*v).clone()).collect(),
            move |g, needs| {
                let mut start = 0;
                sizes
                    .iter()
                    .zip(needs)
                    .map(|(&n, &need)| {
                        let part = need.then(|| g.narrow(ax as isize, start, n));
                        start += n;
                        part
                    })
                    .collect()
            },
        )
    }

    /// Joins equally shaped variables along a new axis.
    ///
    /// # Panics
    /// If the list is empty or the shapes differ.
    #[track_caller]
    pub fn stack(vars: &[&Var<E>], axis: usize) -> Var<E> {
        let first = vars.first().expect("stack: no variables given").shape();
        let mut shape = first.clone();
        shape.insert(axis.min(first.len()), 1);
        let expanded: Vec<Var<E>> = vars
            .iter()
            .map(|v| {
                assert_eq!(
                    v.shape(),
                    first,
                    "stack: shapes {:?} and {:?} differ",
                    first,
                    v.shape()
                );
                v.reshape(&shape)
            })
            .collect();
        let refs: Vec<&Var<E>> = expanded.iter().collect();
        Var::concat(&refs, axis as isize)
    }

    /// The entries `indices` of one axis (see `Tensor::index_select`).
    ///
    /// # Panics
    /// If the axis or an index is out of range.
    #[track_caller]
    pub fn index_select(&self, axis: isize, indices: &[usize]) -> Var<E> {
        let x = self.value();
        let y = x.index_select(axis, indices);
        let (shape, idx) = (x.shape().to_vec(), indices.to_vec());
        Var::from_op("index_select", y, vec![self.clone()], move |g, _| {
            vec![Some(g.index_add_into(&shape, axis, &idx))]
        })
    }

    /// One entry of `axis` per position of the other axes (see `Tensor::gather`): for
    /// scores `[n, c]` and labels, `gather(1, labels)` is each row's score for its label.
    ///
    /// # Panics
    /// If the indices do not fit.
    #[track_caller]
    pub fn gather(&self, axis: isize, indices: &[usize]) -> Var<E> {
        let x = self.value();
        let y = x.gather(axis, indices);
        let (shape, idx) = (x.shape().to_vec(), indices.to_vec());
        Var::from_op("gather", y, vec![self.clone()], move |g, _| {
            vec![Some(g.scatter_add_into(&shape, axis, &idx))]
        })
    }
}
