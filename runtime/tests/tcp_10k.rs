//! 10,000 concurrent connections, each exchanging one message with an echo server on the loop.
//!
//! The clients are a second `Loop` (with `tcp_connect`) in a child process: this very test
//! binary, re-run with `ONELOOP_TCP_10K_CLIENT=<addr>`. A child process rather than a thread
//! because 10,000 connections cost 20,000 descriptors when both ends live in one process, and
//! this machine's hard RLIMIT_NOFILE is exactly 20,000. Each process raises its own soft limit
//! up to the hard limit (libc::setrlimit) and the test skips, printing why, when the hard limit
//! is below 10,500 (10,000 connections plus headroom). Bounded by watchdogs on both sides.

mod tcp_common;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use oneloop_runtime::{ListenOptions, Loop, ServerId, SocketOptions, TcpId};
use tcp_common::{echo_on, localhost, nofile, raise_nofile, watchdog};

const CONNECTIONS: usize = 10_000;
/// Connects in flight at once (the rest start as these complete): keeps the accept queue short.
const CONNECTS_IN_FLIGHT: usize = 512;
const CLIENT_ENV: &str = "ONELOOP_TCP_10K_CLIENT";
const NEEDED_FDS: u64 = 10_500;

#[test]
fn ten_thousand_concurrent_connections_each_exchange_a_message() {
    if let Ok(addr) = std::env::var(CLIENT_ENV) {
        return run_clients(addr.parse().expect("client address"));
    }
    let (_, hard) = nofile();
    if hard < NEEDED_FDS || raise_nofile(NEEDED_FDS) < NEEDED_FDS {
        println!("skipped: RLIMIT_NOFILE hard limit {hard} < {NEEDED_FDS}");
        return;
    }
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 45);
    let closed = Rc::new(Cell::new(0usize));
    let server_id = Rc::new(Cell::new(None::<ServerId>));
    let peak = Rc::new(Cell::new(0usize));
    let (c, s, p) = (closed.clone(), server_id.clone(), peak.clone());
    let opts = ListenOptions {
        backlog: 4096,
        ..ListenOptions::default()
    };
    let server = lp
        .tcp_listen(localhost(), opts, move |lp, conn| {
            let open = lp.tcp_server_connections(s.get().unwrap()).unwrap();
            p.set(p.get().max(open));
            echo_on(lp, conn, c.clone(), s.clone(), CONNECTIONS);
        })
        .unwrap();
    server_id.set(Some(server));
    let addr = lp.tcp_server_addr(server).unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "ten_thousand_concurrent_connections_each_exchange_a_message",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CLIENT_ENV, addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null()) // the child's harness chatter; failures go to stderr
        .spawn()
        .expect("spawn the client process");
    let started = Instant::now();
    lp.run().unwrap();
    let elapsed = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("client process did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    println!(
        "10k: {CONNECTIONS} connections served in {elapsed:?}, peak open on the server {}",
        peak.get()
    );
    assert!(status.success(), "client process failed: {status}");
    assert_eq!(closed.get(), CONNECTIONS);
    assert_eq!(peak.get(), CONNECTIONS, "all connections were open at once");
}

struct Clients {
    addr: SocketAddr,
    started: Cell<usize>,
    in_flight: Cell<usize>,
    done: Cell<usize>,
    ids: RefCell<Vec<TcpId>>,
}

fn message(i: usize) -> Vec<u8> {
    format!("hello {i:08}\n").into_bytes()
}

/// Opens connections until `CONNECTIONS` are started, at most `CONNECTS_IN_FLIGHT` at a time.
fn start_more(lp: &mut Loop, st: &Rc<Clients>) {
    while st.in_flight.get() < CONNECTS_IN_FLIGHT && st.started.get() < CONNECTIONS {
        let i = st.started.get();
        st.started.set(i + 1);
        st.in_flight.set(st.in_flight.get() + 1);
        let s = st.clone();
        let id = lp
            .tcp_connect(st.addr, SocketOptions::default(), move |lp, id| {
                s.in_flight.set(s.in_flight.get() - 1);
                lp.tcp_write(id, &message(i)).unwrap();
                start_more(lp, &s);
            })
            .expect("connect");
        st.ids.borrow_mut().push(id);
        lp.tcp_on_error(id, move |_, _, e| panic!("client {i}: {e}"))
            .unwrap();
        let s = st.clone();
        let mut got = Vec::new();
        lp.tcp_on_data(id, move |lp, _, data| {
            got.extend_from_slice(data);
            let want = message(i);
            if got.len() < want.len() {
                return;
            }
            assert_eq!(got, want, "client {i} got a wrong echo");
            s.done.set(s.done.get() + 1);
            if s.done.get() == CONNECTIONS {
                // Every connection is open and answered: now close them all.
                for id in s.ids.borrow().iter() {
                    let _ = lp.tcp_destroy(*id);
                }
            }
        })
        .unwrap();
    }
}

fn run_clients(addr: SocketAddr) {
    assert!(raise_nofile(NEEDED_FDS) >= NEEDED_FDS, "client: fd limit");
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 40);
    let st = Rc::new(Clients {
        addr,
        started: Cell::new(0),
        in_flight: Cell::new(0),
        done: Cell::new(0),
        ids: RefCell::new(Vec::with_capacity(CONNECTIONS)),
    });
    let started = Instant::now();
    start_more(&mut lp, &st);
    lp.run().unwrap();
    println!(
        "10k client: {} echoes in {:?}",
        st.done.get(),
        started.elapsed()
    );
    assert_eq!(st.done.get(), CONNECTIONS);
}
