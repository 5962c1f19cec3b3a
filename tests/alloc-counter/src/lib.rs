//! Proof for invariant 6 (no allocation on audio paths), shared by every realtime test.
//!
//! A test binary installs the counter as its global allocator:
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: hardmute_alloc_counter::CountingAllocator = hardmute_alloc_counter::CountingAllocator;
//! ```
//! and asks how many heap operations (allocations, reallocations and frees — a free takes the
//! allocator's locks too) a piece of code made on the calling thread: `heap_ops(|| ...)`. Counting
//! per thread keeps the test harness's own threads out of the result.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static OPS: Cell<u64> = const { Cell::new(0) };
}

/// Forwards to the system allocator and counts each call on the calling thread.
pub struct CountingAllocator;

#[inline]
fn note() {
    // `try_with`: during thread teardown the slot may be gone; such calls are not ours to count.
    let _ = OPS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counting touches only a const-initialised thread-local `Cell`,
// which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr`/`layout` came from `System` through us; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Heap operations the calling thread has made so far.
pub fn heap_ops_on_this_thread() -> u64 {
    OPS.try_with(Cell::get).unwrap_or(0)
}

/// Runs `f` and returns its result with the heap operations it made on this thread.
pub fn heap_ops<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = heap_ops_on_this_thread();
    let r = f();
    (r, heap_ops_on_this_thread() - before)
}
