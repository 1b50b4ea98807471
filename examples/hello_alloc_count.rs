//! `examples/hello.rs`'s routes under a counting allocator: heap allocations per request.
//!
//! `cargo run --release --example hello_alloc_count`, then load it (e.g.
//! `wrk -t1 -c64 -d3s http://127.0.0.1:3002/plaintext`). Every `EVERY` requests (env
//! `EVERY`, default 100000) it prints to stderr the allocations and bytes allocated per request
//! since the previous line: allocation count delta / request count delta, both read in the
//! handler. The first line includes connection set-up; later lines are the steady state. The
//! target in docs/benchmarks.md is <= 2 allocations per keep-alive request.
//!
//! Listens on `PORT` (default 3002) on `HOST` (default 127.0.0.1).
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::env;
use std::sync::atomic::{AtomicU64, Ordering};

use common::hello_routes::route;
use oneloop::http;
use oneloop::runtime::Loop;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// Forwards every call to [`System`] and counts allocations (`alloc`, `alloc_zeroed`,
/// `realloc`; `dealloc` is not counted).
struct Counting;

// SAFETY: every method forwards its arguments unchanged to `System`, which implements
// `GlobalAlloc` correctly, and returns `System`'s result unchanged; so each method upholds
// exactly the contract `System` upholds (the layout/pointer preconditions are the caller's, and
// are passed through as received). The only other effect is `fetch_add` on two `AtomicU64`s,
// which does not allocate, cannot panic (wrapping arithmetic) and is thread-safe, so it cannot
// re-enter the allocator, unwind out of it, or race.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `layout` are passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` with `layout`; `new_size` is the caller's, unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Requests seen, and the counters at the last report.
struct Meter {
    every: u64,
    requests: Cell<u64>,
    last: Cell<(u64, u64, u64)>,
}

impl Meter {
    fn tick(&self) {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        if !n.is_multiple_of(self.every) {
            return;
        }
        let allocs = ALLOCS.load(Ordering::Relaxed);
        let bytes = BYTES.load(Ordering::Relaxed);
        let (n0, a0, b0) = self.last.get();
        let dn = (n - n0) as f64;
        eprintln!(
            "alloc_count: requests={n} allocs/request={:.3} bytes/request={:.1}",
            (allocs - a0) as f64 / dn,
            (bytes - b0) as f64 / dn,
        );
        self.last.set((n, allocs, bytes));
    }
}

fn main() -> std::io::Result<()> {
    let port = env::var("PORT").unwrap_or_else(|_| "3002".into());
    let host = env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let every = env::var("EVERY")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &u64| n > 0)
        .unwrap_or(100_000);
    let meter = Meter {
        every,
        requests: Cell::new(0),
        last: Cell::new((
            0,
            ALLOCS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        )),
    };

    let mut lp = Loop::new()?;
    let server = http::create_server(&mut lp, move |_lp, req, res| {
        // Count before routing, so the allocations of this request land in this window.
        meter.tick();
        route(req, res)
    });
    server.listen(&mut lp, format!("{host}:{port}"), |_lp, addr| {
        println!("hello_alloc_count: listening on http://{addr}");
    })?;
    lp.run()
}
