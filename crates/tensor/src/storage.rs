//! A tensor's buffer: a plain `Vec`, or a block that starts on a cache line.
//!
//! Most tensors live briefly (activations, gradients) and use the general allocator, which is
//! fastest for them. Long-lived tensors that the hot loops read again and again (a layer's
//! weights) are moved once into a cache-line-aligned block ([`Tensor::align_storage`]): with
//! 512-bit loads, a buffer that starts off a 64-byte boundary splits every load across two
//! cache lines, which made one-sample inference about 1.5× slower depending only on where
//! the allocator happened to place the weights.
//!
//! [`Tensor::align_storage`]: crate::Tensor::align_storage

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::element::Element;

/// The alignment of [`Buffer::Aligned`] storage: one cache line.
pub(crate) const CACHE_LINE: usize = 64;

/// A tensor's elements.
pub(crate) enum Buffer<E: Element> {
    /// Allocated by the general allocator (every freshly computed tensor).
    Heap(Vec<E>),
    /// A block starting on a [`CACHE_LINE`] boundary (weights, see the module docs).
    Aligned(AlignedBlock<E>),
    /// Elements `start..start + len` of another tensor's buffer, shared without a copy (a
    /// [`Tensor::narrow`] along the leading axis: half a batch, a window of a sequence).
    /// Read-only: mutable access first copies the elements into a buffer of their own.
    /// `whole` is never itself a `Part`.
    ///
    /// [`Tensor::narrow`]: crate::Tensor::narrow
    Part {
        whole: Arc<Buffer<E>>,
        start: usize,
        len: usize,
    },
}

impl<E: Element> Buffer<E> {
    /// True if the elements start on a cache line.
    pub(crate) fn is_aligned(&self) -> bool {
        (self.as_ptr() as usize) % CACHE_LINE == 0
    }

    /// The elements as a `Vec` (a move for heap storage, a copy for an aligned block or a
    /// part).
    pub(crate) fn into_vec(self) -> Vec<E> {
        match self {
            Buffer::Heap(v) => v,
            Buffer::Aligned(b) => b.to_vec(),
            part @ Buffer::Part { .. } => part.to_vec(),
        }
    }

    /// Elements `start..start + len` of `whole`, shared without a copy; `None` (copy them)
    /// if they are none, or less than a quarter of the buffer they would keep alive (the
    /// root one, when `whole` is itself a part).
    pub(crate) fn part(whole: &Arc<Buffer<E>>, start: usize, len: usize) -> Option<Buffer<E>> {
        debug_assert!(start + len <= whole.len());
        let root = match &**whole {
            Buffer::Part { whole, .. } => whole.len(),
            _ => whole.len(),
        };
        if len == 0 || 4 * len < root {
            return None;
        }
        Some(match &**whole {
            Buffer::Part {
                whole,
                start: outer,
                ..
            } => Buffer::Part {
                whole: whole.clone(),
                start: outer + start,
                len,
            },
            _ => Buffer::Part {
                whole: whole.clone(),
                start,
                len,
            },
        })
    }
}

impl<E: Element> Deref for Buffer<E> {
    type Target = [E];
    #[inline]
    fn deref(&self) -> &[E] {
        match self {
            Buffer::Heap(v) => v,
            Buffer::Aligned(b) => b,
            Buffer::Part { whole, start, len } => &whole[*start..*start + *len],
        }
    }
}

impl<E: Element> DerefMut for Buffer<E> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [E] {
        if let Buffer::Part { .. } = self {
            // the elements are shared with the whole: take a copy of them first
            *self = Buffer::Heap(self.to_vec());
        }
        match self {
            Buffer::Heap(v) => v,
            Buffer::Aligned(b) => b,
            Buffer::Part { .. } => unreachable!("a part was just copied into its own buffer"),
        }
    }
}

impl<E: Element> Clone for Buffer<E> {
    /// A copy of the same kind: copying an aligned block gives an aligned block; a part
    /// stays a shared part.
    fn clone(&self) -> Self {
        match self {
            Buffer::Heap(v) => Buffer::Heap(v.clone()),
            Buffer::Aligned(b) => Buffer::Aligned(AlignedBlock::from_slice(b)),
            // still read-only: a copy is taken when one of the two is written
            Buffer::Part { whole, start, len } => Buffer::Part {
                whole: whole.clone(),
                start: *start,
                len: *len,
            },
        }
    }
}

impl<E: Element> PartialEq for Buffer<E> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

/// A fixed-size block of elements whose first element sits on a [`CACHE_LINE`] boundary.
pub(crate) struct AlignedBlock<E: Element> {
    ptr: NonNull<E>,
    len: usize,
}

// SAFETY: the block owns its elements exclusively (like a `Vec`), and `E: Send + Sync`
// (`Element` requires both), so moving or sharing the block across threads is as safe as
// moving or sharing a `Vec<E>`.
unsafe impl<E: Element> Send for AlignedBlock<E> {}
// SAFETY: see `Send` above; `&AlignedBlock` only hands out `&[E]`.
unsafe impl<E: Element> Sync for AlignedBlock<E> {}

impl<E: Element> AlignedBlock<E> {
    fn layout(len: usize) -> Layout {
        let bytes = len
            .checked_mul(std::mem::size_of::<E>())
            .expect("AlignedBlock: size overflows usize");
        Layout::from_size_align(bytes, CACHE_LINE.max(std::mem::align_of::<E>()))
            .expect("AlignedBlock: size overflows isize")
    }

    /// A copy of `src` in a new cache-line-aligned block.
    pub(crate) fn from_slice(src: &[E]) -> Self {
        let len = src.len();
        if len == 0 || std::mem::size_of::<E>() == 0 {
            return AlignedBlock {
                ptr: NonNull::dangling(),
                len,
            };
        }
        let layout = Self::layout(len);
        // SAFETY: the layout has a non-zero size (len > 0 and E is not zero-sized).
        let raw = unsafe { alloc::alloc(layout) } as *mut E;
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: `ptr` is a fresh allocation of `len` elements, suitably aligned for `E`,
        // that cannot overlap `src`; `E: Copy`, so a bitwise copy is a valid copy.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), ptr.as_ptr(), len) };
        AlignedBlock { ptr, len }
    }
}

impl<E: Element> Deref for AlignedBlock<E> {
    type Target = [E];
    #[inline]
    fn deref(&self) -> &[E] {
        // SAFETY: `ptr` points to `len` initialised elements owned by this block (or is
        // dangling and well aligned with len 0), valid for as long as `self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<E: Element> DerefMut for AlignedBlock<E> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [E] {
        // SAFETY: as in `deref`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<E: Element> Drop for AlignedBlock<E> {
    fn drop(&mut self) {
        if self.len != 0 && std::mem::size_of::<E>() != 0 {
            // SAFETY: the block was allocated in `from_slice` with exactly this layout and
            // is freed once, here. `E: Copy` has no destructor to run.
            unsafe { alloc::dealloc(self.ptr.as_ptr() as *mut u8, Self::layout(self.len)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_blocks_start_on_a_cache_line_and_keep_their_values() {
        for len in [0usize, 1, 3, 17, 1000, 200_704] {
            let v: Vec<f32> = (0..len).map(|i| i as f32 * 0.5).collect();
            let b = Buffer::Aligned(AlignedBlock::from_slice(&v));
            assert!(len == 0 || b.is_aligned(), "len {len}");
            assert_eq!(&*b, &v[..]);
            let mut c = b.clone();
            assert!(len == 0 || c.is_aligned());
            if len > 0 {
                c[0] = 42.0;
                assert_eq!(b[0], 0.0);
            }
            assert_eq!(c.clone().into_vec().len(), len);
        }
        let d = Buffer::Aligned(AlignedBlock::from_slice(&[1.0f64, 2.0, 3.0]));
        assert!(d.is_aligned());
        assert_eq!(d.into_vec(), vec![1.0, 2.0, 3.0]);
    }
}
