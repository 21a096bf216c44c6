//! A counting allocator: `System`, plus the live and peak bytes of the
//! calling thread, so one input's peak can be measured while other tests
//! of the binary run on other threads.
//!
//! The counters are thread-local `Cell`s with const initialisers: reading
//! them allocates nothing and registers no destructor, which is what code
//! inside an allocator may do.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// `System`, counted.
pub struct Counting;

thread_local! {
    /// Bytes this thread allocated and has not freed (a block freed by
    /// another thread leaves it high, never low enough to hide a peak).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`reset_peak`].
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grow(by: usize) {
    let live = LIVE.with(|l| {
        let v = l.get().wrapping_add(by as isize);
        l.set(v);
        v
    });
    PEAK.with(|p| {
        if live > p.get() {
            p.set(live);
        }
    });
}

fn shrink(by: usize) {
    LIVE.with(|l| l.set(l.get().wrapping_sub(by as isize)));
}

// SAFETY: every call is passed straight to `System`; the counting around
// it touches only this thread's counters and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is System's.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as the new block before the old one goes: realloc may
            // hold both for a moment.
            grow(new_size);
            shrink(layout.size());
        }
        p
    }
}

/// Starts a measurement: the peak is set to what is live now, which is
/// returned as the baseline.
pub fn reset_peak() -> isize {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    live
}

/// The highest live byte count since [`reset_peak`], above `baseline`.
pub fn peak_since(baseline: isize) -> usize {
    usize::try_from(PEAK.with(Cell::get) - baseline).unwrap_or(0)
}
