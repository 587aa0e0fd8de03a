//! Test-only global allocator that remembers, per thread, the largest single allocation
//! since it was last reset: the decoder proptests use it to show that no input, however
//! its length fields lie, makes a decoder reserve memory out of proportion to the input.
//! Nothing is persisted; it only forwards to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Const-initialized and without a destructor, so reading it never allocates.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

struct Probe;

fn note(size: usize) {
    // `try_with`: allocations during thread teardown are not counted, not a panic.
    let _ = LARGEST.try_with(|largest| {
        if size > largest.get() {
            largest.set(size);
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the probe only reads sizes.
unsafe impl GlobalAlloc for Probe {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static PROBE: Probe = Probe;

/// Runs `f` and returns its result with the largest single allocation it made on this
/// thread, in bytes.
pub(crate) fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

/// What a decoder may reserve for `input` bytes: a few times the input (decoded values are
/// larger than their encoding) plus a small constant.
pub(crate) fn allowance(input: usize) -> usize {
    8 * input + 4096
}
