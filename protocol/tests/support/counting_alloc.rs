//! A counting global allocator, for tests that must prove a bound on memory: it forwards
//! every call to the system allocator and records, per thread, the bytes held and the
//! largest single allocation. [`measure`] reports what a closure needed.
//!
//! Installed only by the test binary that includes this file (`hostile.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards every call to the system allocator and counts, for the calling thread, the
/// bytes it holds and the largest single request. `realloc` is left to the trait's default,
/// which goes through `alloc` and `dealloc` below and so is counted too.
struct Counting;

#[derive(Clone, Copy)]
struct Counters {
    /// Bytes allocated minus bytes freed by this thread (memory freed by another thread
    /// than its allocator's makes this drift, which is why only differences are used).
    live: isize,
    /// The highest `live` since the last reset.
    peak_live: isize,
    /// The largest single allocation since the last reset.
    peak_single: usize,
}

thread_local! {
    // `const` initialisation and no destructor: touching it never allocates, so the
    // allocator cannot recurse into itself.
    static COUNTERS: Cell<Counters> = const {
        Cell::new(Counters { live: 0, peak_live: 0, peak_single: 0 })
    };
}

fn count(change: impl FnOnce(&mut Counters)) {
    // `try_with`: while a thread is being torn down the slot may be gone; those few
    // allocations are simply not counted.
    let _ = COUNTERS.try_with(|cell| {
        let mut counters = cell.get();
        change(&mut counters);
        cell.set(counters);
    });
}

fn counted_alloc(ptr: *mut u8, size: usize) -> *mut u8 {
    if !ptr.is_null() {
        count(|c| {
            c.live += size as isize;
            c.peak_live = c.peak_live.max(c.live);
            c.peak_single = c.peak_single.max(size);
        });
    }
    ptr
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so this
// allocator keeps exactly `System`'s guarantees; the counting touches only a thread-local
// `Cell` and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract (non-zero size),
        // which is all `System.alloc` needs.
        counted_alloc(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        counted_alloc(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(|c| c.live -= layout.size() as isize);
        // SAFETY: every block this allocator hands out comes from `System` with the same
        // layout, and the caller guarantees `ptr` is such a block, freed once.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What one measured run needed.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// The largest single allocation.
    pub peak_single: usize,
    /// The most bytes held at once, above what the thread held before the run.
    pub peak_live: usize,
}

/// Runs `f` and reports the memory it needed on this thread.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    let start = COUNTERS.with(|cell| {
        let mut counters = cell.get();
        counters.peak_live = counters.live;
        counters.peak_single = 0;
        cell.set(counters);
        counters.live
    });
    let result = f();
    let end = COUNTERS.with(Cell::get);
    let usage = Usage {
        peak_single: end.peak_single,
        peak_live: usize::try_from(end.peak_live - start).unwrap_or(0),
    };
    (result, usage)
}
