//! Steady-state reads and writes allocate nothing on the loop thread: the read goes into the
//! loop's shared buffer, the echo write goes straight to the kernel. A counting global
//! allocator (its own test binary) counts allocations made by the loop thread only.

mod alloc_counter;
mod tcp_common;

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use oneloop_runtime::{ListenOptions, Loop, ServerId};
use tcp_common::{localhost, watchdog};

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
                let n = alloc_counter::allocations();
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
    alloc_counter::count_this_thread(true);
    lp.run().unwrap();
    alloc_counter::count_this_thread(false);
    client.join().unwrap();
    let (start, end) = window.get();
    println!(
        "allocations on the loop thread during {MEASURED} echoed messages: {}",
        end - start
    );
    assert_eq!(end - start, 0, "steady-state read/write allocated");
}
