//! Out of file descriptors: the server backs off instead of spinning, and serves the queued
//! connections once descriptors free up.
//!
//! In its own test binary because it lowers the process's RLIMIT_NOFILE soft limit (to 64)
//! with libc::setrlimit. The clients run in a child process (this binary re-run with
//! `ONELOOP_TCP_EMFILE_CLIENT=<addr>`), spawned before the limit is lowered, so they are never
//! starved of descriptors themselves.

mod tcp_common;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use oneloop_runtime::{ListenOptions, Loop, ServerId};
use tcp_common::{localhost, set_nofile_soft, thread_cpu_time, watchdog};

const CLIENTS: usize = 200;
const SOFT_LIMIT: u64 = 64;
const CLIENT_ENV: &str = "ONELOOP_TCP_EMFILE_CLIENT";
/// The client holds every connection open this long before reading: the server is saturated
/// (out of descriptors, backlog non-empty) for the whole window.
const SATURATED_FOR: Duration = Duration::from_millis(2000);

#[test]
fn server_out_of_descriptors_backs_off_cheaply_and_serves_queued_connections_later() {
    if let Ok(addr) = std::env::var(CLIENT_ENV) {
        return run_clients(addr.parse().expect("client address"));
    }
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 30);
    let closed = Rc::new(Cell::new(0usize));
    let accepted = Rc::new(Cell::new(0usize));
    let server_id = Rc::new(Cell::new(None::<ServerId>));
    // (cpu, wall, accepted, closed) at the start and end of the measured window.
    let samples = Rc::new(RefCell::new(Vec::<(Duration, Instant, usize, usize)>::new()));
    let (c, a, s, smp) = (
        closed.clone(),
        accepted.clone(),
        server_id.clone(),
        samples.clone(),
    );
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            a.set(a.get() + 1);
            if a.get() == 1 {
                // Measure from 300 ms after the first connection (the child has opened all of
                // its connections by then) over one second of saturation.
                let (a, c, smp) = (a.clone(), c.clone(), smp.clone());
                lp.set_timeout(300, move |lp| {
                    let sample = move || (thread_cpu_time(), Instant::now(), a.get(), c.get());
                    smp.borrow_mut().push(sample());
                    lp.set_timeout(1000, move |_| smp.borrow_mut().push(sample()));
                });
            }
            tcp_common::echo_on(lp, conn, c.clone(), s.clone(), CLIENTS);
        })
        .unwrap();
    server_id.set(Some(server));
    let addr = lp.tcp_server_addr(server).unwrap();

    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "server_out_of_descriptors_backs_off_cheaply_and_serves_queued_connections_later",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CLIENT_ENV, addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null()) // the child's harness chatter; failures go to stderr
        .spawn()
        .expect("spawn the client process");
    set_nofile_soft(SOFT_LIMIT);

    let started = Instant::now();
    lp.run().unwrap();
    let elapsed = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
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
    assert!(status.success(), "client process failed: {status}");

    let samples = samples.borrow();
    assert_eq!(samples.len(), 2, "the measurement window completed");
    let (cpu0, t0, acc0, closed0) = samples[0];
    let (cpu1, t1, acc1, closed1) = samples[1];
    let cpu_share = (cpu1 - cpu0).as_secs_f64() / (t1 - t0).as_secs_f64();
    println!(
        "emfile: ~{open_fds} fds open before lowering the limit to {SOFT_LIMIT}; {acc0} accepted \
         before saturation, {acc1} at the end of the window, {} pending in the backlog; loop \
         thread CPU {:.1}% over {:?}; all {CLIENTS} served in {elapsed:?}",
        CLIENTS - acc1,
        cpu_share * 100.0,
        t1 - t0
    );
    assert!(
        acc0 < CLIENTS && acc0 == acc1,
        "saturated during the window"
    );
    assert_eq!(closed0, 0);
    assert_eq!(closed1, 0);
    assert!(
        cpu_share < 0.20,
        "loop burned {:.1}% CPU",
        cpu_share * 100.0
    );
    assert_eq!(
        accepted.get(),
        CLIENTS,
        "queued connections were served later"
    );
    assert_eq!(closed.get(), CLIENTS);
}

/// Opens all connections and sends on each, waits, then reads each echo in order and closes
/// that connection (freeing a descriptor in the server for the next queued one).
fn run_clients(addr: SocketAddr) {
    let mut conns = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let mut s = TcpStream::connect(addr).expect("connect completes in the backlog");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("message {i:04}").as_bytes()).unwrap();
        conns.push(s);
    }
    std::thread::sleep(SATURATED_FOR);
    for (i, mut s) in conns.into_iter().enumerate() {
        let want = format!("message {i:04}");
        let mut got = vec![0u8; want.len()];
        s.read_exact(&mut got)
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(got, want.as_bytes());
        drop(s);
    }
}
