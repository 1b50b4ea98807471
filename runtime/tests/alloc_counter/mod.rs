//! A counting global allocator for the allocation tests (`runtime/tests/tcp_alloc.rs`, and
//! `tests/http_alloc.rs` through `#[path]`): it counts allocations and reallocations made by
//! threads that opted in with [`count_this_thread`], so a test's client threads do not count.
//! Including this module installs it as the test binary's `#[global_allocator]`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNT_THIS_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread's allocations count from now on.
pub fn count_this_thread(on: bool) {
    COUNT_THIS_THREAD.with(|c| c.set(on));
}

/// Allocations counted so far, all counting threads together.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

fn counting() -> bool {
    COUNT_THIS_THREAD.try_with(|c| c.get()).unwrap_or(false)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counter
// is a side effect that does not touch the memory handed out, and reading a const-initialized
// thread-local `Cell` (no destructor) neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counting() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;
