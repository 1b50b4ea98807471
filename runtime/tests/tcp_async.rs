//! Awaitable TCP (`task::tcp_connect`, `task::TcpStream`) over real loopback sockets: echo
//! clients written with async/await against a callback echo server and a node `net` echo
//! server, a refused connect, an 8 MiB transfer to a slow reader (complete, in order, read
//! queue bounded), and cancellation of a pending read or connect by dropping its task.

mod tcp_common;

use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;

use oneloop_runtime::task::{self, TcpStream, READ_HIGH_WATER_MARK};
use oneloop_runtime::tcp::READ_BUFFER_SIZE;
use oneloop_runtime::{ListenOptions, Loop, ServerId};
use tcp_common::{echo_server, localhost, watchdog, Hash64, Pattern};

/// Writes each message, reads until the echo of all of them came back, ends, reads to the end.
async fn echo_round_trip(stream: &TcpStream, messages: &[&[u8]]) -> Vec<u8> {
    let want: usize = messages.iter().map(|m| m.len()).sum();
    let mut got = Vec::new();
    for m in messages {
        stream.write(m.to_vec()).await.expect("write");
    }
    while got.len() < want {
        match stream.read().await.expect("read") {
            Some(chunk) => got.extend_from_slice(&chunk),
            None => panic!("end of stream after {} of {want} bytes", got.len()),
        }
    }
    stream.end();
    assert_eq!(stream.read().await.expect("read after end"), None);
    got
}

const MESSAGES: [&[u8]; 3] = [b"hello ", b"async ", b"echo"];

#[test]
fn async_echo_client_against_a_callback_echo_server_gets_every_byte_back() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let server = echo_server(&mut lp, ListenOptions::default(), 1);
    let addr = lp.tcp_server_addr(server).unwrap();
    let echoed = Rc::new(RefCell::new(None));
    let out = echoed.clone();
    lp.spawn_task(async move {
        let stream = task::tcp_connect(addr).await.expect("connect");
        *out.borrow_mut() = Some(echo_round_trip(&stream, &MESSAGES).await);
    })
    .detach();
    lp.run().unwrap();
    assert_eq!(echoed.borrow().as_deref(), Some(&b"hello async echo"[..]));
    assert_eq!(lp.tcp_socket_count(), 0);
}

/// A node `net` echo server on a free loopback port; killed (by pid) on drop.
struct NodeEcho {
    child: Child,
    addr: SocketAddr,
}

impl NodeEcho {
    fn start() -> NodeEcho {
        let script = "const net = require('net');\
            const srv = net.createServer((s) => s.pipe(s));\
            srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));";
        let mut child = Command::new("node")
            .args(["-e", script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("this test needs `node` (v20) on PATH: install nodejs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read node's port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("node printed {line:?}, not a port"));
        NodeEcho {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for NodeEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn async_echo_client_against_a_node_net_echo_server_gets_every_byte_back() {
    let node = NodeEcho::start();
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let echoed = Rc::new(RefCell::new(None));
    let out = echoed.clone();
    let addr = node.addr;
    lp.spawn_task(async move {
        let stream = task::tcp_connect(addr).await.expect("connect to node");
        *out.borrow_mut() = Some(echo_round_trip(&stream, &MESSAGES).await);
    })
    .detach();
    lp.run().unwrap();
    assert_eq!(echoed.borrow().as_deref(), Some(&b"hello async echo"[..]));
}

#[test]
fn an_async_echo_server_on_adopted_sockets_serves_a_node_client() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let server_id = Rc::new(Cell::new(None::<ServerId>));
    let srv = server_id.clone();
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            if let Some(s) = srv.get() {
                lp.tcp_server_close(s, |_| {}).unwrap();
            }
            let stream = TcpStream::adopt(lp, conn).expect("adopt");
            lp.spawn_task(async move {
                while let Some(chunk) = stream.read().await.expect("server read") {
                    stream.write(chunk).await.expect("server write");
                }
                stream.end();
            })
            .detach();
        })
        .unwrap();
    server_id.set(Some(server));
    let port = lp.tcp_server_addr(server).unwrap().port();
    let script = format!(
        "const s = require('net').connect({port}, '127.0.0.1', () => s.end('ping from node'));\
         let got = ''; s.on('data', (d) => got += d); s.on('close', () => console.log(got));"
    );
    let child = Command::new("node")
        .args(["-e", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("this test needs `node` (v20) on PATH: install nodejs");
    lp.run().unwrap();
    let out = child.wait_with_output().expect("node client");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ping from node"
    );
}

#[test]
fn connecting_to_a_closed_port_fails_with_node_s_econnrefused_message() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there now
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let result = Rc::new(RefCell::new(None));
    let out = result.clone();
    lp.spawn_task(async move {
        *out.borrow_mut() = Some(task::tcp_connect(addr).await.map(|_| ()));
    })
    .detach();
    lp.run().unwrap();
    let err = result
        .borrow_mut()
        .take()
        .expect("connect settled")
        .expect_err("connect to a closed port must fail");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(err.to_string(), format!("connect ECONNREFUSED {addr}"));
    assert_eq!(lp.tcp_socket_count(), 0);
}

const BIG: usize = 8 * 1024 * 1024;

/// Listens; the one connection gets `BIG` pattern bytes written with Node's backpressure
/// (write until `false`, go on at drain), then the FIN. The server closes after that connection.
fn pattern_server(lp: &mut Loop) -> SocketAddr {
    let server_id = Rc::new(Cell::new(None::<ServerId>));
    let srv = server_id.clone();
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            if let Some(s) = srv.get() {
                lp.tcp_server_close(s, |_| {}).unwrap();
            }
            let state = Rc::new(RefCell::new((Pattern::new(7), BIG)));
            let pump = move |lp: &mut Loop, conn| {
                let mut buf = vec![0u8; 64 * 1024];
                let mut st = state.borrow_mut();
                while st.1 > 0 {
                    let n = st.1.min(buf.len());
                    st.0.fill(&mut buf[..n]);
                    st.1 -= n;
                    if !lp.tcp_write(conn, &buf[..n]).expect("server write") {
                        return;
                    }
                }
                lp.tcp_end(conn).unwrap();
            };
            let pump = Rc::new(pump);
            let p = pump.clone();
            lp.tcp_on_drain(conn, move |lp, conn| p(lp, conn)).unwrap();
            pump(lp, conn);
        })
        .unwrap();
    server_id.set(Some(server));
    lp.tcp_server_addr(server).unwrap()
}

#[test]
fn eight_mib_to_a_slow_reader_arrive_complete_in_order_with_the_read_queue_bounded() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 30);
    let addr = pattern_server(&mut lp);
    let outcome = Rc::new(RefCell::new(None));
    let out = outcome.clone();
    lp.spawn_task(async move {
        let stream = task::tcp_connect(addr).await.expect("connect");
        let mut hash = Hash64::default();
        let mut paused_seen = false;
        while let Some(chunk) = stream.read().await.expect("read") {
            hash.update(&chunk);
            paused_seen |= stream.is_read_paused();
            // The slow reader: every chunk waits for a timer, while the peer keeps sending.
            task::sleep(1).await;
        }
        *out.borrow_mut() = Some((hash.finish(), stream.max_buffered(), paused_seen));
    })
    .detach();
    lp.run().unwrap();
    let (got, max_buffered, paused_seen) = outcome.borrow_mut().take().expect("reader finished");
    let mut want = Hash64::default();
    let mut pattern = Pattern::new(7);
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..BIG / buf.len() {
        pattern.fill(&mut buf);
        want.update(&buf);
    }
    assert_eq!(got, want.finish(), "content or order differs");
    assert!(paused_seen, "the slow reader never paused the socket");
    let bound = READ_HIGH_WATER_MARK - 1 + READ_BUFFER_SIZE;
    assert!(
        max_buffered <= bound,
        "read queue held {max_buffered} bytes, over its bound {bound}"
    );
    assert!(max_buffered >= READ_HIGH_WATER_MARK, "queue never filled");
}

#[test]
fn dropping_a_task_with_a_pending_read_closes_its_socket_and_the_loop_exits() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    // A server that never writes; it sees the client's close as an end of stream.
    let peer_closed = Rc::new(Cell::new(false));
    let closed = peer_closed.clone();
    let server_id = Rc::new(Cell::new(None::<ServerId>));
    let srv = server_id.clone();
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            if let Some(s) = srv.get() {
                lp.tcp_server_close(s, |_| {}).unwrap();
            }
            let closed = closed.clone();
            lp.tcp_on_close(conn, move |_, _, _| closed.set(true))
                .unwrap();
        })
        .unwrap();
    server_id.set(Some(server));
    let addr = lp.tcp_server_addr(server).unwrap();
    let reading = Rc::new(Cell::new(false));
    let read_returned = Rc::new(Cell::new(false));
    let (r, done) = (reading.clone(), read_returned.clone());
    let handle = lp.spawn_task(async move {
        let stream = task::tcp_connect(addr).await.expect("connect");
        r.set(true);
        let _ = stream.read().await;
        done.set(true);
    });
    // Once the read is pending, drop the task's handle (which cancels it).
    let handle = Rc::new(RefCell::new(Some(handle)));
    let reading_now = reading.clone();
    fn drop_when_reading(
        lp: &mut Loop,
        reading: Rc<Cell<bool>>,
        handle: Rc<RefCell<Option<task::JoinHandle<()>>>>,
    ) {
        if reading.get() {
            handle.borrow_mut().take();
        } else {
            lp.set_timeout(1, move |lp| drop_when_reading(lp, reading, handle));
        }
    }
    drop_when_reading(&mut lp, reading_now, handle.clone());
    lp.run().unwrap();
    assert!(reading.get(), "the read never started");
    assert!(handle.borrow().is_none(), "the handle was not dropped");
    assert!(!read_returned.get(), "the cancelled read completed");
    assert!(
        peer_closed.get(),
        "the server never saw the client's socket close"
    );
    assert_eq!(lp.tcp_socket_count(), 0);
    assert_eq!(lp.tasks_alive(), 0);
}

#[test]
fn dropping_a_task_with_a_pending_connect_destroys_the_connecting_socket() {
    // A listener that never accepts: the kernel completes the handshake into its backlog.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let connected = Rc::new(Cell::new(false));
    let c = connected.clone();
    let handle = lp.spawn_task(async move {
        let _stream = task::tcp_connect(addr).await;
        c.set(true);
    });
    assert_eq!(lp.tcp_socket_count(), 1, "the connect did not start");
    drop(handle);
    lp.run().unwrap();
    assert!(!connected.get(), "the cancelled connect completed");
    assert_eq!(lp.tcp_socket_count(), 0);
    assert_eq!(lp.tasks_alive(), 0);
    drop(listener);
}

#[test]
fn writing_after_end_is_an_error_not_a_panic() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let server = echo_server(&mut lp, ListenOptions::default(), 1);
    let addr = lp.tcp_server_addr(server).unwrap();
    let result = Rc::new(RefCell::new(None));
    let out = result.clone();
    lp.spawn_task(async move {
        let stream = task::tcp_connect(addr).await.expect("connect");
        stream.end();
        task::yield_now().await;
        *out.borrow_mut() = Some(stream.write(&b"late"[..]).await);
        while stream.read().await.expect("read").is_some() {}
    })
    .detach();
    lp.run().unwrap();
    let err = result
        .borrow_mut()
        .take()
        .expect("write settled")
        .unwrap_err();
    assert!(err.to_string().contains("write after end"), "{err}");
}

#[test]
fn an_async_accept_loop_serves_three_concurrent_node_clients() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let listener = task::TcpListener::bind(&mut lp, localhost()).unwrap();
    let port = listener.local_addr().port();
    let served = Rc::new(Cell::new(0));
    let count = served.clone();
    lp.spawn_task(async move {
        for _ in 0..3 {
            let stream = listener.accept().await.expect("accept");
            count.set(count.get() + 1);
            task::spawn(async move {
                while let Some(chunk) = stream.read().await.expect("server read") {
                    stream.write(chunk).await.expect("server write");
                }
                stream.end();
            })
            .detach();
        }
        // The listener drops here: the server stops listening, the loop can exit.
    })
    .detach();
    let script = format!(
        "const net = require('net'); const got = []; let open = 3;\
         for (const n of [1, 2, 3]) {{\
           const s = net.connect({port}, '127.0.0.1', () => s.end('client ' + n));\
           let d = ''; s.on('data', (c) => d += c);\
           s.on('close', () => {{ got.push(d); if (--open === 0) console.log(got.sort().join(',')); }});\
         }}"
    );
    let child = Command::new("node")
        .args(["-e", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("this test needs `node` (v20) on PATH: install nodejs");
    lp.run().unwrap();
    let out = child.wait_with_output().expect("node clients");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "client 1,client 2,client 3"
    );
    assert_eq!(served.get(), 3);
}

#[test]
fn connections_nobody_accepts_yet_are_queued_up_to_the_bound_and_the_rest_refused() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let listener = task::TcpListener::bind(&mut lp, localhost()).unwrap();
    listener.set_accept_queue_bound(2);
    let addr = listener.local_addr();
    // Four handshakes complete in the kernel's backlog before the loop runs; the loop accepts
    // them all in one readiness event (its poll phase), before any task awaits one.
    let clients: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(addr).expect("std connect"))
        .collect();
    let outcome = Rc::new(RefCell::new(None));
    let out = outcome.clone();
    // The task starts in the check phase, after the poll phase accepted all four.
    lp.set_immediate(move |lp| {
        lp.spawn_task(async move {
            let first = listener.accept().await.expect("first");
            let second = listener.accept().await.expect("second");
            *out.borrow_mut() = Some((listener.refused(), first.id() != second.id()));
            // Dropping the listener and both streams closes everything.
        })
        .detach();
    });
    lp.run().unwrap();
    let (refused, distinct) = outcome.borrow_mut().take().expect("accepted two");
    assert_eq!(refused, 2, "the queue holds 2: the other 2 must be refused");
    assert!(distinct);
    assert_eq!(lp.tcp_socket_count(), 0);
    drop(clients);
}
