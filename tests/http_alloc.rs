//! A keep-alive request through `http::create_server` allocates nothing on the loop thread in
//! steady state: the head's bytes are split off the read buffer, its field list is the previous
//! request's (handed back when that `Request` was dropped), the response head is serialized
//! into a pooled output buffer. A counting global allocator (runtime/tests/alloc_counter, its
//! own test binary) counts allocations made by the loop thread only.

#[path = "../runtime/tests/alloc_counter/mod.rs"]
mod alloc_counter;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use oneloop::http;
use oneloop::runtime::Loop;

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
                AT_START.store(alloc_counter::allocations(), Ordering::Relaxed);
            }
            if n == WARMUP + MEASURED {
                AT_END.store(alloc_counter::allocations(), Ordering::Relaxed);
                lp.stop();
            }
            res.set_header("content-type", "text/plain");
            res.end("ok");
        });
        let addr = server.listen(&mut lp, "127.0.0.1:0", |_, _| {}).unwrap();
        addr_tx.send(addr).unwrap();
        alloc_counter::count_this_thread(true);
        lp.run().unwrap();
        alloc_counter::count_this_thread(false);
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
