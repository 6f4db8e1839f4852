//! Hints to the CPU that change no result.

/// Asks the CPU to start loading `s` into its caches, one request per 64-byte line: a hint,
/// which never faults and does nothing on targets other than x86-64. For data read soon at
/// addresses the hardware prefetchers cannot guess (a shuffled batch's rows, one channel's
/// planes strided through a batch).
#[inline]
pub fn prefetch<E>(s: &[E]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(s);
        let p = s.as_ptr() as *const i8;
        // every 64 bytes, and the last byte (whose line the steps miss when `s` does not
        // start on a line)
        for off in (0..bytes).step_by(64).chain(bytes.checked_sub(1)) {
            // SAFETY: a prefetch is only a hint and never faults; `off < bytes`, so the
            // address is inside `s` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}
