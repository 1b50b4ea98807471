//! A keep-alive request through `http::create_server` allocates nothing on the loop thread in
//! steady state: the head's bytes are split off the read buffer, its field list is the previous
//! request's (handed back when that `Request` was dropped), the response head is serialized
//! into the connection's output buffer. A counting global allocator (its own test binary)
//! counts allocations made by the loop thread only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use oneloop::http;
use oneloop::runtime::Loop;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNT_THIS_THREAD: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counter
// is a side effect that does not touch the memory handed out, and reading a const-initialized
// thread-local `Cell` neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNT_THIS_THREAD.try_with(|c| c.get()).unwrap_or(false) {
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
        if COUNT_THIS_THREAD.try_with(|c| c.get()).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const WARMUP: u64 = 100;
const MEASURED: u64 = 1000;

/// Requests answered so far, and the loop thread's allocation count when request `WARMUP`
/// and request `WARMUP + MEASURED` arrived.
static SERVED: AtomicU64 = AtomicU64::new(0);
static AT_START: AtomicU64 = AtomicU64::new(0);
static AT_END: AtomicU64 = AtomicU64::new(0);

fn read_one_response(s: &mut TcpStream, buf: &mut Vec<u8>) {
    // The response is small and fixed: head, then "ok" (Content-Length: 2).
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let total = end + 4 + 2;
            if buf.len() >= total {
                assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"), "{buf:?}");
                buf.drain(..total);
                return;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).expect("read a response");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn steady_state_keep_alive_requests_allocate_nothing_on_the_loop_thread() {
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let server_thread = std::thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let server = http::create_server(&mut lp, |lp, _req, res| {
            let n = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
            if n == WARMUP {
                AT_START.store(ALLOCATIONS.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            if n == WARMUP + MEASURED {
                AT_END.store(ALLOCATIONS.load(Ordering::Relaxed), Ordering::Relaxed);
                lp.stop();
            }
            res.set_header("content-type", "text/plain");
            res.end("ok");
        });
        let addr = server.listen(&mut lp, "127.0.0.1:0", |_, _| {}).unwrap();
        addr_tx.send(addr).unwrap();
        COUNT_THIS_THREAD.with(|c| c.set(true));
        lp.run().unwrap();
        COUNT_THIS_THREAD.with(|c| c.set(false));
    });
    let addr = addr_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    for _ in 0..WARMUP + MEASURED {
        s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n")
            .unwrap();
        read_one_response(&mut s, &mut buf);
    }
    server_thread.join().unwrap();
    let allocations = AT_END.load(Ordering::Relaxed) - AT_START.load(Ordering::Relaxed);
    // A Date refresh or a one-off growth may land in the window; one allocation per request
    // would be 1,000.
    assert!(
        allocations < MEASURED / 100,
        "{allocations} allocations on the loop thread over {MEASURED} keep-alive requests"
    );
}
