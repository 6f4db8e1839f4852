//! The [`Tensor`] type: an n-dimensional, row-major, contiguous array.

use std::fmt;
use std::sync::Arc;

use crate::element::Element;
use crate::error::{or_panic, Result, TensorError};
use crate::rng::Rng;
use crate::shape::{numel, strides};
use crate::storage::{AlignedBlock, Buffer};

/// An n-dimensional array of `f32` (the default) or `f64`, stored contiguously in row-major
/// order.
///
/// Cloning is cheap: the buffer is shared and copied only when one clone is written
/// ([`Tensor::data_mut`]). `reshape` shares the buffer, and so does a large enough `narrow`
/// along the leading axis (a contiguous run of it, see [`Tensor::narrow`]); every other
/// movement op (transpose, concat...) makes a new contiguous buffer. Either way every
/// kernel sees contiguous elements.
///
/// # Example
/// ```
/// use backprop_tensor::Tensor;
/// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
/// let b = Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3]);
/// let c = a.add(&b); // broadcasts b over the rows
/// assert_eq!(c.to_vec(), vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
/// assert_eq!(c.sum_axis(0, false).to_vec(), vec![25.0, 47.0, 69.0]);
/// ```
#[derive(Clone)]
pub struct Tensor<E: Element = f32> {
    data: Arc<Buffer<E>>,
    shape: Vec<usize>,
}

impl<E: Element> Tensor<E> {
    /// A tensor from row-major data and a shape.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    #[track_caller]
    pub fn from_vec(data: Vec<E>, shape: &[usize]) -> Self {
        or_panic(Self::try_from_vec(data, shape))
    }

    /// [`Tensor::from_vec`] that returns an error instead of panicking.
    pub fn try_from_vec(data: Vec<E>, shape: &[usize]) -> Result<Self> {
        if data.len() != numel(shape) {
            return Err(TensorError::invalid(
                "from_vec",
                format!(
                    "{} values cannot fill shape {:?} ({} elements)",
                    data.len(),
                    shape,
                    numel(shape)
                ),
            ));
        }
        Ok(Tensor {
            data: Arc::new(Buffer::Heap(data)),
            shape: shape.to_vec(),
        })
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar(x: E) -> Self {
        Tensor {
            data: Arc::new(Buffer::Heap(vec![x])),
            shape: vec![],
        }
    }

    /// All elements equal to `value`.
    pub fn full(shape: &[usize], value: E) -> Self {
        Tensor {
            data: Arc::new(Buffer::Heap(vec![value; numel(shape)])),
            shape: shape.to_vec(),
        }
    }

    /// All zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, E::ZERO)
    }

    /// All ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, E::ONE)
    }

    /// A zero tensor with the shape of `self`.
    pub fn zeros_like(&self) -> Self {
        Self::zeros(&self.shape)
    }

    /// `start, start+step, ...` up to but excluding `end`, as a 1-D tensor.
    ///
    /// # Panics
    /// If `step` is zero or has the wrong sign to reach `end`.
    ///
    /// ```
    /// use backprop_tensor::Tensor;
    /// assert_eq!(Tensor::<f32>::arange(0.0, 1.0, 0.25).to_vec(), vec![0.0, 0.25, 0.5, 0.75]);
    /// ```
    pub fn arange(start: E, end: E, step: E) -> Self {
        let (s, e, st) = (start.to_f64(), end.to_f64(), step.to_f64());
        assert!(
            st != 0.0 && (e - s) * st >= 0.0,
            "arange: step {st} cannot go from {s} to {e}"
        );
        let n = ((e - s) / st).ceil().max(0.0) as usize;
        let data: Vec<E> = (0..n).map(|i| E::from_f64(s + st * i as f64)).collect();
        Tensor {
            shape: vec![n],
            data: Arc::new(Buffer::Heap(data)),
        }
    }

    /// Seeded samples from the uniform distribution on `[lo, hi)`.
    pub fn rand_uniform(shape: &[usize], lo: f64, hi: f64, rng: &mut Rng) -> Self {
        let data = (0..numel(shape))
            .map(|_| E::from_f64(rng.uniform_range(lo, hi)))
            .collect();
        Tensor {
            data: Arc::new(Buffer::Heap(data)),
            shape: shape.to_vec(),
        }
    }

    /// Seeded samples from the normal distribution N(mean, std²).
    pub fn rand_normal(shape: &[usize], mean: f64, std: f64, rng: &mut Rng) -> Self {
        let data = (0..numel(shape))
            .map(|_| E::from_f64(mean + std * rng.normal()))
            .collect();
        Tensor {
            data: Arc::new(Buffer::Heap(data)),
            shape: shape.to_vec(),
        }
    }

    /// The shape.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements in row-major order.
    #[inline]
    pub fn data(&self) -> &[E] {
        &self.data
    }

    /// Mutable access to the elements; copies the buffer first if it is shared.
    pub fn data_mut(&mut self) -> &mut [E] {
        &mut **Arc::make_mut(&mut self.data)
    }

    /// The elements as a `Vec`.
    pub fn to_vec(&self) -> Vec<E> {
        self.data.to_vec()
    }

    /// The elements as a `Vec`, without a copy when the buffer is not shared (and is not
    /// part of another tensor's, as a [`Tensor::narrow`] can be).
    pub fn into_vec(self) -> Vec<E> {
        Arc::try_unwrap(self.data).map_or_else(|a| a.to_vec(), Buffer::into_vec)
    }

    /// The value of a one-element tensor (any rank).
    ///
    /// # Panics
    /// If the tensor has more than one element.
    pub fn item(&self) -> E {
        assert!(
            self.numel() == 1,
            "item: tensor of shape {:?} has {} elements, not 1",
            self.shape,
            self.numel()
        );
        self.data[0]
    }

    /// The element at a multi-index.
    ///
    /// # Panics
    /// If the index has the wrong rank or is out of bounds.
    pub fn get(&self, index: &[usize]) -> E {
        assert_eq!(
            index.len(),
            self.rank(),
            "get: index {index:?} for shape {:?}",
            self.shape
        );
        let st = strides(&self.shape);
        let mut off = 0;
        for (i, (&ix, &d)) in index.iter().zip(&self.shape).enumerate() {
            assert!(
                ix < d,
                "get: index {index:?} out of bounds for shape {:?}",
                self.shape
            );
            off += ix * st[i];
        }
        self.data[off]
    }

    /// Moves the elements into a block that starts on a 64-byte cache line, unless they
    /// already start on one or are smaller than a page (4 KiB).
    ///
    /// For long-lived tensors read by hot loops, such as a layer's weights (autograd calls
    /// it for every parameter): 512-bit loads from a buffer off a cache line each touch two
    /// lines. Copy-on-write copies of an aligned buffer stay aligned, so in-place optimizer
    /// updates keep the alignment.
    pub fn align_storage(&mut self) {
        let bytes = self.data.len() * std::mem::size_of::<E>();
        // a part of another tensor's buffer (a narrow) gets a block of its own, aligned or
        // not: it would otherwise keep the whole alive and lose its alignment on first write
        let part = matches!(*self.data, Buffer::Part { .. });
        if bytes >= 4096 && (part || !self.data.is_aligned()) {
            self.data = Arc::new(Buffer::Aligned(AlignedBlock::from_slice(&self.data)));
        }
    }

    /// True if the elements start on a 64-byte cache line.
    pub fn is_storage_aligned(&self) -> bool {
        self.data.is_aligned()
    }

    /// True if both tensors share one buffer (used in tests of copy-free ops).
    pub fn shares_buffer(&self, other: &Tensor<E>) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }

    /// Applies `f` to every element (over the thread pool for large tensors outside pool
    /// tasks; the result does not depend on it).
    pub fn map(&self, f: impl Fn(E) -> E + Sync) -> Self {
        let data = if crate::profile::split_elementwise(self.data.len()) {
            use rayon::prelude::*;
            let mut out = Vec::with_capacity(self.data.len());
            self.data
                .par_iter()
                .map(|&x| f(x))
                .collect_into_vec(&mut out);
            out
        } else {
            self.data.iter().map(|&x| f(x)).collect()
        };
        Tensor {
            data: Arc::new(Buffer::Heap(data)),
            shape: self.shape.clone(),
        }
    }

    /// Converts to another element type.
    pub fn cast<F: Element>(&self) -> Tensor<F> {
        Tensor {
            data: Arc::new(Buffer::Heap(
                self.data.iter().map(|&x| F::from_f64(x.to_f64())).collect(),
            )),
            shape: self.shape.clone(),
        }
    }

    /// True if no element is NaN or infinite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|x| x.is_finite())
    }

    /// True if the shapes are equal and every pair of elements satisfies
    /// `|a − b| ≤ atol + rtol·|b|`.
    pub fn allclose(&self, other: &Tensor<E>, rtol: f64, atol: f64) -> bool {
        self.shape == other.shape
            && self.data.iter().zip(other.data.iter()).all(|(&a, &b)| {
                let (a, b) = (a.to_f64(), b.to_f64());
                (a - b).abs() <= atol + rtol * b.abs()
            })
    }

    /// Builds a tensor from parts the caller has checked (crate-internal fast path).
    #[inline]
    pub(crate) fn from_parts(data: Vec<E>, shape: Vec<usize>) -> Self {
        debug_assert_eq!(data.len(), numel(&shape));
        Tensor {
            data: Arc::new(Buffer::Heap(data)),
            shape,
        }
    }

    /// Elements `start..start + numel(shape)` of this tensor's buffer as a tensor of
    /// `shape`, shared without a copy; `None` when they are too few to share (see
    /// `Buffer::part`). Crate-internal; callers check the range.
    pub(crate) fn shared_part(&self, start: usize, shape: Vec<usize>) -> Option<Self> {
        let len = numel(&shape);
        debug_assert!(start + len <= self.data.len());
        Some(Tensor {
            data: Arc::new(Buffer::part(&self.data, start, len)?),
            shape,
        })
    }

    /// Same buffer, new shape (crate-internal; callers check the element count).
    #[inline]
    pub(crate) fn with_shape(&self, shape: Vec<usize>) -> Self {
        debug_assert_eq!(self.data.len(), numel(&shape));
        Tensor {
            data: Arc::clone(&self.data),
            shape,
        }
    }
}

impl<E: Element> fmt::Debug for Tensor<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}>{:?} ", E::NAME, self.shape)?;
        fmt::Display::fmt(self, f)
    }
}

impl<E: Element> fmt::Display for Tensor<E> {
    /// Nested brackets like NumPy; long axes are elided with `...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn rec<E: Element>(
            f: &mut fmt::Formatter<'_>,
            data: &[E],
            shape: &[usize],
            prec: Option<usize>,
        ) -> fmt::Result {
            if shape.is_empty() {
                return match prec {
                    Some(p) => write!(f, "{:.*}", p, data[0]),
                    None => write!(f, "{}", data[0]),
                };
            }
            let n = shape[0];
            let inner: usize = shape[1..].iter().product();
            write!(f, "[")?;
            for i in 0..n {
                if n > 8 && i == 3 {
                    write!(f, "..., ")?;
                }
                if n > 8 && (3..n - 3).contains(&i) {
                    continue;
                }
                rec(f, &data[i * inner..(i + 1) * inner], &shape[1..], prec)?;
                if i + 1 < n {
                    write!(f, ", ")?;
                }
            }
            write!(f, "]")
        }
        rec(f, &self.data, &self.shape, f.precision())
    }
}

impl<E: Element> PartialEq for Tensor<E> {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.data.as_ref() == other.data.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_map_splits_over_the_pool_and_keeps_every_element_in_place() {
        let n = 300_007; // above the split threshold, not a multiple of any chunk size
        let t = Tensor::<f64>::from_vec((0..n).map(|i| i as f64 - 1000.0).collect(), &[n]);
        assert!(crate::profile::split_elementwise(n) || rayon::current_num_threads() == 1);
        let r = t.relu();
        for (i, &v) in r.data().iter().enumerate() {
            assert_eq!(v, (i as f64 - 1000.0).max(0.0), "element {i}");
        }
    }

    #[test]
    fn creation_and_access() {
        let t = Tensor::<f64>::from_vec((0..6).map(|x| x as f64).collect(), &[2, 3]);
        assert_eq!(t.get(&[1, 2]), 5.0);
        assert_eq!(Tensor::<f32>::zeros(&[2, 2]).to_vec(), vec![0.0; 4]);
        assert_eq!(Tensor::<f32>::ones(&[3]).to_vec(), vec![1.0; 3]);
        assert_eq!(Tensor::<f32>::full(&[2], 7.0).to_vec(), vec![7.0, 7.0]);
        assert_eq!(Tensor::<f32>::scalar(2.5).item(), 2.5);
        assert_eq!(
            Tensor::<f64>::arange(5.0, 0.0, -2.0).to_vec(),
            vec![5.0, 3.0, 1.0]
        );
        let e = Tensor::<f32>::try_from_vec(vec![1.0; 5], &[2, 3])
            .unwrap_err()
            .to_string();
        assert!(e.contains("5 values") && e.contains("[2, 3]"), "{e}");
    }

    #[test]
    fn seeded_random_is_reproducible_and_has_the_right_range() {
        let a = Tensor::<f32>::rand_uniform(&[100], -2.0, 3.0, &mut Rng::seed(9));
        let b = Tensor::<f32>::rand_uniform(&[100], -2.0, 3.0, &mut Rng::seed(9));
        assert_eq!(a, b);
        assert!(a.data().iter().all(|&x| (-2.0..3.0).contains(&x)));
        let n = Tensor::<f64>::rand_normal(&[10_000], 5.0, 2.0, &mut Rng::seed(1));
        let mean = n.data().iter().sum::<f64>() / 10_000.0;
        assert!((mean - 5.0).abs() < 0.1, "{mean}");
    }

    #[test]
    fn clones_share_until_written() {
        let a = Tensor::<f32>::ones(&[3]);
        let mut b = a.clone();
        assert!(a.shares_buffer(&b));
        b.data_mut()[0] = 5.0;
        assert!(!a.shares_buffer(&b));
        assert_eq!(a.to_vec(), vec![1.0; 3]);
    }

    #[test]
    fn display_is_nested() {
        let t = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        assert_eq!(format!("{t}"), "[[1, 2], [3, 4]]");
        assert_eq!(format!("{t:.1}"), "[[1.0, 2.0], [3.0, 4.0]]");
    }
}
