//! Weights packed once for the sparse forward kernel and shared by the tasks of one scope.
//!
//! The sparse forward ([`super::sparse`]) reads `w: [out, in]` input-major: per block of
//! 128 inputs and group of 64 outputs it transposes the weights into a 32 KB block, then
//! every row of the batch adds its nonzeros' weight vectors from it. A training step that
//! splits its batch in two halves (the trainer's) runs the same layer twice, on two threads
//! at once, and so packed every weight twice, each thread streaming all of `w` from memory.
//! Inside [`SharedPacking::run`], the two halves share one packing of each weight instead:
//! whichever thread first needs a block packs it and the other uses it (if it needs it while
//! it is being packed, it packs a copy of its own instead of waiting), and the halves start
//! on different groups so that each packs about half. The packed values are the same
//! whoever packs them, so the outputs are bit for bit the same as without sharing.

use std::any::Any;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use crate::element::Element;
use crate::tensor::Tensor;

/// A scope in which linear layers' packed weights are shared between threads
/// ([`SharedPacking::run`]); dropping it frees them.
///
/// ```
/// use backprop_tensor::ops::packing::SharedPacking;
/// let shared = SharedPacking::new();
/// let (a, b) = rayon::join(|| shared.run(|| 1), || shared.run(|| 2));
/// assert_eq!(a + b, 3);
/// ```
#[derive(Default)]
pub struct SharedPacking {
    entries: Mutex<Vec<Entry>>,
}

/// One weight's packing.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Entry {
    /// The weight's address and length.
    key: (usize, usize),
    /// A clone of the weight tensor: while the entry lives, its buffer can be neither freed
    /// (so no other tensor can take its address) nor written (a write would copy it first).
    _pin: Box<dyn Any + Send + Sync>,
    packed: Arc<Packed>,
}

/// A weight's packed blocks (on x86-64; elsewhere nothing is ever packed ahead).
#[cfg(target_arch = "x86_64")]
pub(crate) use simd::Packed;
/// A weight's packed blocks (on x86-64; elsewhere nothing is ever packed ahead).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) enum Packed {}

/// No packing is shared off x86-64.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn shared<E: Element>(_: &Tensor<E>, _: usize, _: usize) -> Option<Arc<Packed>> {
    None
}

thread_local! {
    /// The scope [`SharedPacking::run`] set on this thread, if any.
    static CURRENT: RefCell<Option<Arc<SharedPacking>>> = const { RefCell::new(None) };
}

impl SharedPacking {
    /// An empty scope.
    pub fn new() -> Arc<Self> {
        Arc::new(SharedPacking::default())
    }

    /// Runs `f` on this thread with the sparse forward kernel's packed weights shared
    /// through this scope (with every other thread inside a `run` of the same scope).
    pub fn run<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        /// Puts the previous scope back, also when `f` unwinds.
        struct Restore(Option<Arc<SharedPacking>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let prev = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = prev);
            }
        }
        let prev = CURRENT.with(|c| c.borrow_mut().replace(self.clone()));
        let _restore = Restore(prev);
        f()
    }

    /// How many weights have been packed in this scope.
    pub fn weights(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }
}

/// The packing of `w` (`[out_f, in_f]`) shared in this thread's scope, created empty on
/// first use; `None` outside a scope, for other element types than `f32`, or without
/// AVX-512F.
#[cfg(target_arch = "x86_64")]
pub(crate) fn shared<E: Element>(w: &Tensor<E>, out_f: usize, in_f: usize) -> Option<Arc<Packed>> {
    if std::any::TypeId::of::<E>() != std::any::TypeId::of::<f32>() || !super::sparse::avx512() {
        return None;
    }
    let scope = CURRENT.with(|c| c.borrow().clone())?;
    let key = (w.data().as_ptr() as usize, w.numel());
    let mut entries = scope.entries.lock().ok()?;
    if let Some(e) = entries.iter().find(|e| e.key == key) {
        // the same buffer, pinned: the same weights, unless viewed as another shape
        return e.packed.fits(out_f, in_f).then(|| e.packed.clone());
    }
    let packed = Arc::new(simd::Packed::new(out_f, in_f));
    entries.push(Entry {
        key,
        _pin: Box::new(w.clone()),
        packed: packed.clone(),
    });
    Some(packed)
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod simd {
    use std::cell::UnsafeCell;
    use std::mem::MaybeUninit;
    use std::sync::atomic::{AtomicU8, Ordering};

    use crate::ops::sparse::simd::{Line, GROUP, KB};

    const EMPTY: u8 = 0;
    const PACKING: u8 = 1;
    const READY: u8 = 2;

    /// A weight `[out_f, in_f]`'s blocks, each packed once by whichever thread needs it
    /// first. Group `q` (outputs `64q..64q + 64`) holds `in_f` rows of 64 floats, input-major;
    /// its block `kb` is rows `128·kb..` of them.
    pub(crate) struct Packed {
        out_f: usize,
        in_f: usize,
        kblocks: usize,
        state: Vec<AtomicU8>,
        lines: Box<[UnsafeCell<MaybeUninit<Line>>]>,
    }

    // SAFETY: a block's lines are written only by the one thread that moved its state from
    // EMPTY to PACKING, and read only after that thread stored READY (release) and the
    // reader loaded it (acquire); so no line is ever written and accessed at the same time.
    unsafe impl Sync for Packed {}
    // SAFETY: the lines are plain floats owned by the value.
    unsafe impl Send for Packed {}

    impl Packed {
        /// Room for `w: [out_f, in_f]`, nothing packed yet.
        pub(crate) fn new(out_f: usize, in_f: usize) -> Packed {
            let kblocks = in_f.div_ceil(KB).max(1);
            let groups = out_f.div_ceil(GROUP);
            let lines = groups * in_f * (GROUP / 16);
            Packed {
                out_f,
                in_f,
                kblocks,
                state: (0..kblocks * groups)
                    .map(|_| AtomicU8::new(EMPTY))
                    .collect(),
                lines: (0..lines)
                    .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                    .collect(),
            }
        }

        /// True if this is a packing of a weight of exactly this shape.
        pub(crate) fn fits(&self, out_f: usize, in_f: usize) -> bool {
            (self.out_f, self.in_f) == (out_f, in_f)
        }

        /// Block `(q, kb)`: packed here by `pack` if no thread has begun it, or as packed by
        /// another thread; `None` while another thread is packing it (the caller then packs
        /// a copy of its own: the values are the same, and nobody waits).
        ///
        /// `pack` must write the block's rows (one per input, 64 floats each) at the pointer
        /// it is given. If it unwinds, the block goes back to unpacked.
        ///
        /// # Panics
        /// If `(q, kb)` is not a block of this packing.
        pub(crate) fn block(
            &self,
            q: usize,
            kb: usize,
            pack: impl FnOnce(*mut f32),
        ) -> Option<*const f32> {
            /// Marks the block unpacked again unless defused (when `pack` unwinds).
            struct Undo<'a>(&'a AtomicU8, bool);
            impl Drop for Undo<'_> {
                fn drop(&mut self) {
                    if self.1 {
                        self.0.store(EMPTY, Ordering::Release);
                    }
                }
            }
            assert!(
                q < self.out_f.div_ceil(GROUP) && kb < self.kblocks,
                "packed block ({q}, {kb}) out of range"
            );
            let i = q * self.kblocks + kb;
            let line = (q * self.in_f + kb * KB) * (GROUP / 16);
            let ptr = self.lines[line..].as_ptr() as *mut f32;
            match self.state[i].compare_exchange(
                EMPTY,
                PACKING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let mut undo = Undo(&self.state[i], true);
                    pack(ptr);
                    undo.1 = false;
                    self.state[i].store(READY, Ordering::Release);
                    Some(ptr)
                }
                Err(READY) => Some(ptr),
                Err(_) => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::matmul::try_linear_forward_keep;
    use crate::Rng;

    /// `[rows, cols]` with about `density` of its entries nonzero.
    fn sparse(rows: usize, cols: usize, density: f32, rng: &mut Rng) -> Tensor<f32> {
        let v = Tensor::<f32>::rand_normal(&[rows, cols], 0.0, 1.0, rng);
        let keep = Tensor::<f32>::rand_uniform(&[rows, cols], 0.0, 1.0, rng);
        let data = v.data().iter().zip(keep.data());
        let data = data.map(|(&v, &k)| if k < density { v } else { 0.0 });
        Tensor::from_vec(data.collect(), &[rows, cols])
    }

    /// True where weights are packed ahead (x86-64 with AVX-512F).
    fn packs() -> bool {
        #[cfg(target_arch = "x86_64")]
        return std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        return false;
    }

    fn forward(x: &Tensor<f32>, w: &Tensor<f32>, b: &Tensor<f32>) -> Vec<f32> {
        try_linear_forward_keep(x, w, Some(b)).unwrap().0.to_vec()
    }

    #[test]
    fn halves_sharing_a_packing_give_the_unshared_outputs_bit_for_bit() {
        let mut rng = Rng::seed(21);
        // outputs not a multiple of 64 and inputs not a multiple of 128 (partial blocks);
        // the 784-256 layer of the MLP
        for &(in_f, out_f) in &[(200, 70), (784, 256), (130, 3)] {
            let w = Tensor::<f32>::rand_normal(&[out_f, in_f], 0.0, 0.1, &mut rng);
            let w2 = Tensor::<f32>::rand_normal(&[out_f, in_f], 0.0, 0.1, &mut rng);
            let b = Tensor::<f32>::rand_normal(&[out_f], 0.0, 0.1, &mut rng);
            let halves: Vec<Tensor<f32>> =
                (0..4).map(|_| sparse(32, in_f, 0.2, &mut rng)).collect();
            let alone: Vec<Vec<f32>> = halves.iter().map(|x| forward(x, &w, &b)).collect();
            let alone2: Vec<Vec<f32>> = halves.iter().map(|x| forward(x, &w2, &b)).collect();
            for _ in 0..20 {
                let shared = SharedPacking::new();
                // each thread runs two batches through `w` (the second use finds the blocks
                // packed) and one through `w2`
                let side = |i: usize| {
                    shared.run(|| {
                        let first = forward(&halves[i], &w, &b);
                        let again = forward(&halves[i + 2], &w, &b);
                        let other = forward(&halves[i], &w2, &b);
                        (first, again, other)
                    })
                };
                let (a, c) = rayon::join(|| side(0), || side(1));
                if crate::ops::sparse::enabled() && packs() {
                    assert_eq!(shared.weights(), 2, "[{out_f}, {in_f}]");
                }
                assert_eq!(a.0, alone[0], "[{out_f}, {in_f}]");
                assert_eq!(c.0, alone[1]);
                assert_eq!(a.1, alone[2]);
                assert_eq!(c.1, alone[3]);
                assert_eq!((&a.2, &c.2), (&alone2[0], &alone2[1]));
            }
        }
    }

    #[test]
    fn a_scope_holds_its_weights_until_it_is_dropped_and_no_longer() {
        let mut rng = Rng::seed(22);
        let mut w = Tensor::<f32>::rand_normal(&[64, 128], 0.0, 0.1, &mut rng);
        let b = Tensor::<f32>::zeros(&[64]);
        let x = sparse(16, 128, 0.2, &mut rng);
        let before = forward(&x, &w, &b);
        let shared = SharedPacking::new();
        let inside = shared.run(|| forward(&x, &w, &b));
        assert_eq!(inside, before);
        // outside `run` nothing is shared, even while the scope lives
        let weights = shared.weights();
        let _ = forward(&x, &w, &b);
        assert_eq!(shared.weights(), weights);
        drop(shared);
        // the scope let go of the weight: writing to it does not copy it
        let at = w.data().as_ptr();
        w.data_mut().iter_mut().for_each(|v| *v += 1.0);
        assert_eq!(w.data().as_ptr(), at);
        // and a new scope packs the new values
        let changed = SharedPacking::new().run(|| forward(&x, &w, &b));
        assert_eq!(changed, forward(&x, &w, &b));
        assert_ne!(changed, before);
    }
}
