//! Movement and indexing: reshape, permute/transpose, narrow, concat, stack, index_select,
//! gather (and their scatter inverses, used by backward), one-hot.
//!
//! Shapes: `reshape [*] -> [*']` with equal element counts; `permute [d0..dn] -> [d_p0..d_pn]`;
//! `narrow(axis, start, len)` keeps `len` entries of `axis`; `concat` joins along an existing
//! axis, `stack` along a new one; `index_select(axis, idx) [.., n, ..] -> [.., idx.len(), ..]`;
//! `gather(axis, idx) [.., n, ..] -> [.., ..]` picks one entry of `axis` per other position;
//! `one_hot(labels, c) -> [labels.len(), c]`.

use super::for_each_broadcast;
use super::reduce::split_at_axis;
use crate::element::Element;
use crate::error::{or_panic, Result, TensorError};
use crate::shape::{norm_axis, numel, strides, try_norm_axis};
use crate::tensor::Tensor;

impl<E: Element> Tensor<E> {
    /// The same elements under a new shape; shares the buffer (no copy).
    ///
    /// # Panics
    /// If the element counts differ.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Tensor<E> {
        or_panic(self.try_reshape(shape))
    }

    /// [`Tensor::reshape`] returning an error when the element counts differ.
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Tensor<E>> {
        if numel(shape) != self.numel() {
            return Err(TensorError::shapes(
                "reshape",
                self.shape(),
                shape,
                "the element counts differ",
            ));
        }
        Ok(self.with_shape(shape.to_vec()))
    }

    /// Reorders the axes: output axis `i` is input axis `perm[i]`.
    ///
    /// ```
    /// use backprop_tensor::Tensor;
    /// let x = Tensor::<f32>::zeros(&[2, 3, 4]);
    /// assert_eq!(x.permute(&[2, 0, 1]).shape(), &[4, 2, 3]);
    /// ```
    ///
    /// # Panics
    /// If `perm` is not a permutation of `0..rank`.
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Tensor<E> {
        or_panic(self.try_permute(perm))
    }

    /// [`Tensor::permute`] returning an error for a bad permutation.
    pub fn try_permute(&self, perm: &[usize]) -> Result<Tensor<E>> {
        let mut seen = vec![false; self.rank()];
        if perm.len() != self.rank()
            || perm
                .iter()
                .any(|&p| p >= self.rank() || std::mem::replace(&mut seen[p], true))
        {
            return Err(TensorError::invalid(
                "permute",
                format!(
                    "{perm:?} is not a permutation of the axes of shape {:?}",
                    self.shape()
                ),
            ));
        }
        let in_st = strides(self.shape());
        let out_shape: Vec<usize> = perm.iter().map(|&p| self.shape()[p]).collect();
        let st: Vec<usize> = perm.iter().map(|&p| in_st[p]).collect();
        let x = self.data();
        let mut out = Vec::with_capacity(self.numel());
        for_each_broadcast(&out_shape, [&st], |_, [j]| out.push(x[j]));
        Ok(Tensor::from_parts(out, out_shape))
    }

    /// Swaps two axes (negative counts from the end).
    ///
    /// # Panics
    /// If an axis is out of range.
    #[track_caller]
    pub fn transpose(&self, a: isize, b: isize) -> Tensor<E> {
        let r = self.rank();
        let (a, b) = (norm_axis("transpose", a, r), norm_axis("transpose", b, r));
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// The transpose of a matrix.
    ///
    /// # Panics
    /// If the tensor is not 2-D.
    pub fn t(&self) -> Tensor<E> {
        assert_eq!(
            self.rank(),
            2,
            "t: expected a 2-D tensor, got shape {:?}",
            self.shape()
        );
        self.transpose(0, 1)
    }

    /// Entries `start..start+len` of one axis.
    ///
    /// Along the leading axis (or any axis with only length-1 axes before it) the entries
    /// are one contiguous run. If they are at least a quarter of the buffer they would keep
    /// alive (for a narrow of a narrow, the first one's source), the result shares them
    /// with `self` instead of copying: no time, no memory, and the whole buffer stays alive
    /// while the part does. Writing to either ([`Tensor::data_mut`]) copies first, so
    /// neither ever sees the other's writes. Smaller parts and other axes copy.
    ///
    /// ```
    /// use backprop_tensor::Tensor;
    /// let x = Tensor::<f32>::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
    /// assert_eq!(x.narrow(1, 1, 2).to_vec(), vec![1.0, 2.0, 4.0, 5.0]);
    /// ```
    ///
    /// # Panics
    /// If the range does not fit the axis.
    #[track_caller]
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Tensor<E> {
        or_panic(self.try_narrow(axis, start, len))
    }

    /// [`Tensor::narrow`] returning an error when the range does not fit.
    pub fn try_narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor<E>> {
        let ax = try_norm_axis("narrow", axis, self.rank())?;
        let (outer, n, inner) = split_at_axis(self.shape(), ax);
        if start + len > n {
            return Err(TensorError::invalid(
                "narrow",
                format!(
                    "range {start}..{} is outside axis {ax} of shape {:?}",
                    start + len,
                    self.shape()
                ),
            ));
        }
        let mut shape = self.shape().to_vec();
        shape[ax] = len;
        if outer == 1 {
            // one contiguous run of elements, a quarter of the whole or more: share it
            // instead of copying (a smaller part is copied, so that it cannot keep a much
            // larger buffer alive)
            if let Some(part) = self.shared_part(start * inner, shape.clone()) {
                return Ok(part);
            }
        }
        let x = self.data();
        let mut out = Vec::with_capacity(outer * len * inner);
        for o in 0..outer {
            out.extend_from_slice(&x[(o * n + start) * inner..(o * n + start + len) * inner]);
        }
        Ok(Tensor::from_parts(out, shape))
    }

    /// Joins tensors along an existing axis; all other dimensions must agree.
    ///
    /// # Panics
    /// If the list is empty or the shapes disagree off the axis.
    #[track_caller]
    pub fn concat(tensors: &[&Tensor<E>], axis: isize) -> Tensor<E> {
        or_panic(Self::try_concat(tensors, axis))
    }

    /// [`Tensor::concat`] returning an error on mismatched shapes.
    pub fn try_concat(tensors: &[&Tensor<E>], axis: isize) -> Result<Tensor<E>> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::invalid("concat", "no tensors given"))?;
        let ax = try_norm_axis("concat", axis, first.rank())?;
        let mut total = 0;
        for t in tensors {
            let ok = t.rank() == first.rank()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(i, (a, b))| i == ax || a == b);
            if !ok {
                return Err(TensorError::shapes(
                    "concat",
                    first.shape(),
                    t.shape(),
                    format!("they differ off axis {ax}"),
                ));
            }
            total += t.shape()[ax];
        }
        let (outer, _, inner) = split_at_axis(first.shape(), ax);
        let mut out = Vec::with_capacity(outer * total * inner);
        for o in 0..outer {
            for t in tensors {
                let n = t.shape()[ax];
                out.extend_from_slice(&t.data()[o * n * inner..(o + 1) * n * inner]);
            }
        }
        let mut shape = first.shape().to_vec();
        shape[ax] = total;
        Ok(Tensor::from_parts(out, shape))
    }

    /// Joins equally shaped tensors along a new axis placed at `axis` (0..=rank).
    ///
    /// # Panics
    /// If the list is empty or the shapes differ.
    #[track_caller]
    pub fn stack(tensors: &[&Tensor<E>], axis: usize) -> Tensor<E> {
        or_panic(Self::try_stack(tensors, axis))
    }

    /// [`Tensor::stack`] returning an error on mismatched shapes.
    pub fn try_stack(tensors: &[&Tensor<E>], axis: usize) -> Result<Tensor<E>> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::invalid("stack", "no tensors given"))?;
        if axis > first.rank() {
            return Err(TensorError::invalid(
                "stack",
                format!("axis {axis} is past rank {}", first.rank()),
            ));
        }
        let mut shape = first.shape().to_vec();
        shape.insert(axis, 1);
        let mut parts = Vec::with_capacity(tensors.len());
        for t in tensors {
            if t.shape() != first.shape() {
                return Err(TensorError::shapes(
                    "stack",
                    first.shape(),
                    t.shape(),
                    "stacked tensors must have equal shapes",
                ));
            }
            parts.push(t.with_shape(shape.clone()));
        }
        let refs: Vec<&Tensor<E>> = parts.iter().collect();
        Self::try_concat(&refs, axis as isize)
    }

    /// The entries `indices` of one axis, in that order (repeats allowed).
    ///
    /// # Panics
    /// If the axis is out of range or an index is past its end.
    #[track_caller]
    pub fn index_select(&self, axis: isize, indices: &[usize]) -> Tensor<E> {
        or_panic(self.try_index_select(axis, indices))
    }

    /// [`Tensor::index_select`] returning an error for a bad axis or index.
    pub fn try_index_select(&self, axis: isize, indices: &[usize]) -> Result<Tensor<E>> {
        let ax = try_norm_axis("index_select", axis, self.rank())?;
        let (outer, n, inner) = split_at_axis(self.shape(), ax);
        check_indices("index_select", indices, n)?;
        let x = self.data();
        let mut out = Vec::with_capacity(outer * indices.len() * inner);
        for o in 0..outer {
            for &i in indices {
                out.extend_from_slice(&x[(o * n + i) * inner..(o * n + i + 1) * inner]);
            }
        }
        let mut shape = self.shape().to_vec();
        shape[ax] = indices.len();
        Ok(Tensor::from_parts(out, shape))
    }

    /// The inverse of [`Tensor::index_select`] for gradients: a zero tensor of `shape` with
    /// `self`'s slices added at `indices` along `axis` (repeated indices accumulate).
    #[track_caller]
    pub fn index_add_into(&self, shape: &[usize], axis: isize, indices: &[usize]) -> Tensor<E> {
        let ax = norm_axis("index_add", axis, shape.len());
        let (outer, n, inner) = split_at_axis(shape, ax);
        let g = self.data();
        let mut out = vec![E::ZERO; numel(shape)];
        let m = indices.len();
        for o in 0..outer {
            for (k, &i) in indices.iter().enumerate() {
                let src = &g[(o * m + k) * inner..(o * m + k + 1) * inner];
                for (d, &s) in out[(o * n + i) * inner..(o * n + i + 1) * inner]
                    .iter_mut()
                    .zip(src)
                {
                    *d += s;
                }
            }
        }
        Tensor::from_parts(out, shape.to_vec())
    }

    /// Picks one entry along `axis` for every position of the other axes: for a `[n, c]`
    /// matrix and `axis = 1`, `out[i] = x[i, indices[i]]` (each row's score for its label).
    /// `indices` is laid out in the row-major order of the output.
    ///
    /// ```
    /// use backprop_tensor::Tensor;
    /// let scores = Tensor::from_vec(vec![0.1, 0.9, 0.7, 0.3], &[2, 2]);
    /// assert_eq!(scores.gather(1, &[1, 0]).to_vec(), vec![0.9, 0.7]);
    /// ```
    ///
    /// # Panics
    /// If the index count or an index does not fit.
    #[track_caller]
    pub fn gather(&self, axis: isize, indices: &[usize]) -> Tensor<E> {
        or_panic(self.try_gather(axis, indices))
    }

    /// [`Tensor::gather`] returning an error when the indices do not fit.
    pub fn try_gather(&self, axis: isize, indices: &[usize]) -> Result<Tensor<E>> {
        let ax = try_norm_axis("gather", axis, self.rank())?;
        let (outer, n, inner) = split_at_axis(self.shape(), ax);
        if indices.len() != outer * inner {
            return Err(TensorError::invalid(
                "gather",
                format!(
                    "{} indices given for shape {:?} along axis {ax}; expected {}",
                    indices.len(),
                    self.shape(),
                    outer * inner
                ),
            ));
        }
        check_indices("gather", indices, n)?;
        let x = self.data();
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                out.push(x[(o * n + indices[o * inner + i]) * inner + i]);
            }
        }
        let mut shape = self.shape().to_vec();
        shape.remove(ax);
        Ok(Tensor::from_parts(out, shape))
    }

    /// The inverse of [`Tensor::gather`] for gradients: a zero tensor of `shape` with each of
    /// `self`'s values added at the gathered position.
    #[track_caller]
    pub fn scatter_add_into(&self, shape: &[usize], axis: isize, indices: &[usize]) -> Tensor<E> {
        let ax = norm_axis("scatter_add", axis, shape.len());
        let (outer, n, inner) = split_at_axis(shape, ax);
        let g = self.data();
        let mut out = vec![E::ZERO; numel(shape)];
        for o in 0..outer {
            for i in 0..inner {
                out[(o * n + indices[o * inner + i]) * inner + i] += g[o * inner + i];
            }
        }
        Tensor::from_parts(out, shape.to_vec())
    }

    /// One row per label with a 1 in the label's column: shape `[labels.len(), classes]`.
    ///
    /// ```
    /// use backprop_tensor::Tensor;
    /// assert_eq!(Tensor::<f32>::one_hot(&[2, 0], 3).to_vec(), vec![0., 0., 1., 1., 0., 0.]);
    /// ```
    ///
    /// # Panics
    /// If a label is not below `classes`.
    #[track_caller]
    pub fn one_hot(labels: &[usize], classes: usize) -> Tensor<E> {
        or_panic(check_indices("one_hot", labels, classes));
        let mut out = vec![E::ZERO; labels.len() * classes];
        for (r, &l) in labels.iter().enumerate() {
            out[r * classes + l] = E::ONE;
        }
        Tensor::from_parts(out, vec![labels.len(), classes])
    }
}

fn check_indices(op: &'static str, indices: &[usize], n: usize) -> Result<()> {
    match indices.iter().find(|&&i| i >= n) {
        Some(i) => Err(TensorError::invalid(
            op,
            format!("index {i} is out of range for an axis of length {n}"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    fn iota(shape: &[usize]) -> Tensor<f64> {
        let n: usize = shape.iter().product();
        Tensor::from_vec((0..n).map(|v| v as f64).collect(), shape)
    }

    #[test]
    fn reshape_shares_and_permute_moves() {
        let x = iota(&[2, 3]);
        let r = x.reshape(&[3, 2]);
        assert!(r.shares_buffer(&x));
        assert!(x.try_reshape(&[4]).is_err());
        assert_eq!(x.t().to_vec(), vec![0., 3., 1., 4., 2., 5.]);
        let y = iota(&[2, 3, 4]);
        let p = y.permute(&[2, 0, 1]);
        assert_eq!(p.shape(), &[4, 2, 3]);
        assert_eq!(p.get(&[3, 1, 2]), y.get(&[1, 2, 3]));
        assert_eq!(y.transpose(0, -1).get(&[3, 2, 1]), y.get(&[1, 2, 3]));
        assert!(y.try_permute(&[0, 0, 1]).is_err());
    }

    #[test]
    fn a_narrow_along_the_leading_axis_shares_its_rows_and_copies_on_write() {
        let inside = |part: &Tensor<f64>, whole: &Tensor<f64>| {
            let range = whole.data().as_ptr_range();
            range.contains(&part.data().as_ptr())
        };
        let mut whole = iota(&[5, 4]);
        let rows = whole.narrow(0, 1, 3);
        assert_eq!(rows.shape(), &[3, 4]);
        assert_eq!(rows.to_vec(), (4..16).map(f64::from).collect::<Vec<_>>());
        assert!(inside(&rows, &whole), "the rows were copied");
        // a part of a part points into the same whole, at the right place
        let inner = rows.narrow(0, 1, 2);
        assert!(inside(&inner, &whole));
        assert_eq!(inner.to_vec(), (8..16).map(f64::from).collect::<Vec<_>>());
        assert_eq!(inner.narrow(0, 1, 1).to_vec(), vec![12., 13., 14., 15.]);
        // leading axes of length 1 keep the run contiguous; a later axis copies
        let t = iota(&[1, 4, 3]);
        let mid = t.narrow(1, 2, 2);
        assert!(inside(&mid, &t));
        assert_eq!(mid.to_vec(), vec![6., 7., 8., 9., 10., 11.]);
        assert!(!inside(&whole.narrow(1, 1, 2), &whole));
        assert_eq!(whole.narrow(0, 5, 0).numel(), 0);
        // less than a quarter of the rows is copied: it does not hold on to the whole
        let big = iota(&[9, 4]);
        let (one, two) = (big.narrow(0, 3, 2), big.narrow(0, 3, 3));
        assert!(!inside(&one, &big) && inside(&two, &big));
        assert_eq!(one.to_vec(), vec![12., 13., 14., 15., 16., 17., 18., 19.]);
        // so is a narrow of a narrow that is under a quarter of the first one's source
        let (a, b) = (two.narrow(0, 0, 2), two.narrow(0, 1, 2).narrow(0, 0, 1));
        assert!(!inside(&a, &big) && !inside(&b, &big));
        assert_eq!(b.to_vec(), vec![16., 17., 18., 19.]);
        // a part made a parameter (aligned storage) gets a buffer of its own
        let long = iota(&[4, 1024]);
        let mut half = long.narrow(0, 2, 2);
        assert!(inside(&half, &long));
        half.align_storage();
        assert!(!inside(&half, &long) && half.is_storage_aligned());
        assert_eq!(half.to_vec(), long.data()[2048..].to_vec());
        // writing to the part copies it first: the whole keeps its values
        let mut written = rows.clone();
        written.data_mut()[0] = -1.0;
        assert!(!inside(&written, &whole));
        assert_eq!(written.get(&[0, 0]), -1.0);
        assert_eq!(whole.get(&[1, 0]), 4.0);
        assert_eq!(rows.get(&[0, 0]), 4.0);
        // writing to the whole copies it (the parts hold it): the parts keep their values
        whole.data_mut()[4] = -2.0;
        assert_eq!(whole.get(&[1, 0]), -2.0);
        assert_eq!((rows.get(&[0, 0]), inner.get(&[0, 0])), (4.0, 8.0));
        assert_eq!(rows.reshape(&[12]).to_vec(), rows.to_vec());
        assert_eq!(rows.clone().into_vec(), rows.to_vec());
        assert_eq!(inner.map(|v| v + 1.0).to_vec()[0], 9.0);
    }

    #[test]
    fn narrow_concat_stack() {
        let x = iota(&[2, 3]);
        assert_eq!(x.narrow(0, 1, 1).to_vec(), vec![3., 4., 5.]);
        assert!(x.try_narrow(1, 2, 2).is_err());
        let c = Tensor::concat(&[&x, &x.narrow(1, 0, 1)], 1);
        assert_eq!(c.shape(), &[2, 4]);
        assert_eq!(c.to_vec(), vec![0., 1., 2., 0., 3., 4., 5., 3.]);
        let s = Tensor::stack(&[&x, &x], 1);
        assert_eq!(s.shape(), &[2, 2, 3]);
        assert_eq!(s.get(&[1, 1, 2]), 5.0);
        let e = Tensor::try_concat(&[&x, &iota(&[3, 3])], 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("concat") && e.contains("[2, 3]") && e.contains("[3, 3]"),
            "{e}"
        );
    }

    #[test]
    fn index_select_gather_and_their_inverses() {
        let x = iota(&[3, 2]);
        let s = x.index_select(0, &[2, 0, 2]);
        assert_eq!(s.to_vec(), vec![4., 5., 0., 1., 4., 5.]);
        let back = Tensor::<f64>::ones(&[3, 2]).index_add_into(&[3, 2], 0, &[2, 0, 2]);
        assert_eq!(back.to_vec(), vec![1., 1., 0., 0., 2., 2.]);
        let g = x.gather(1, &[1, 0, 1]);
        assert_eq!(g.to_vec(), vec![1., 2., 5.]);
        let sc = Tensor::<f64>::from_vec(vec![7., 8., 9.], &[3]).scatter_add_into(
            &[3, 2],
            1,
            &[1, 0, 1],
        );
        assert_eq!(sc.to_vec(), vec![0., 7., 8., 0., 0., 9.]);
        assert!(x.try_gather(1, &[0, 2, 0]).is_err());
        assert!(x.try_gather(1, &[0]).is_err());
    }
}
