//! Steady-state reads and writes allocate nothing on the loop thread: the read goes into the
//! loop's shared buffer, the echo write goes straight to the kernel. A counting global
//! allocator (its own test binary) counts allocations made by the loop thread only.

mod tcp_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use oneloop_runtime::{ListenOptions, Loop, ServerId};
use tcp_common::{localhost, watchdog};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNT_THIS_THREAD: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counter
// is a side effect that does not touch the memory handed out.
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

const WARMUP: usize = 64;
const MEASURED: usize = 1000;
const MESSAGE: usize = 1024;

#[test]
fn steady_state_echo_reads_and_writes_allocate_nothing_on_the_loop_thread() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let seen = Rc::new(Cell::new(0usize));
    let window = Rc::new(Cell::new((0u64, 0u64)));
    let server_id = Rc::new(Cell::new(None::<ServerId>));
    let (s, w, sid) = (seen.clone(), window.clone(), server_id.clone());
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            let (s, w, sid) = (s.clone(), w.clone(), sid.clone());
            lp.tcp_on_data(conn, move |lp, id, data| {
                assert!(lp.tcp_write(id, data).unwrap(), "echo went straight out");
                s.set(s.get() + data.len());
                let n = ALLOCATIONS.load(Ordering::Relaxed);
                if s.get() == WARMUP * MESSAGE {
                    w.set((n, n));
                } else if s.get() == (WARMUP + MEASURED) * MESSAGE {
                    w.set((w.get().0, n));
                    // Stop accepting; the loop ends when the client's FIN closes this socket.
                    lp.tcp_server_close(sid.get().unwrap(), |_| {}).unwrap();
                }
            })
            .unwrap();
        })
        .unwrap();
    server_id.set(Some(server));
    let addr = lp.tcp_server_addr(server).unwrap();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        let msg = [0x5au8; MESSAGE];
        let mut back = [0u8; MESSAGE];
        // Ping-pong: one message in flight, so each read is one message.
        for _ in 0..WARMUP + MEASURED {
            s.write_all(&msg).unwrap();
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, msg);
        }
        s.shutdown(Shutdown::Write).unwrap();
        let _ = s.read(&mut back);
    });
    COUNT_THIS_THREAD.with(|c| c.set(true));
    lp.run().unwrap();
    COUNT_THIS_THREAD.with(|c| c.set(false));
    client.join().unwrap();
    let (start, end) = window.get();
    println!(
        "allocations on the loop thread during {MEASURED} echoed messages: {}",
        end - start
    );
    assert_eq!(end - start, 0, "steady-state read/write allocated");
}
