//! Echo over real loopback sockets: content integrity from 1 byte to 64 MiB (hashes compared),
//! a loop client via `tcp_connect`, IPv6, port 0, `reuse_port`, and a refused connect.

mod tcp_common;

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use oneloop_runtime::{ListenOptions, Loop, SocketOptions, TcpId};
use tcp_common::{echo_server, watchdog, Hash64, Pattern};

const CHUNK: usize = 64 * 1024;

/// Sends `total` pattern bytes from one thread while reading the echo on another; returns the
/// (sent, received) hashes and lengths. Blocking sockets with 20 s timeouts: never hangs.
fn std_echo_client(addr: SocketAddr, total: usize, seed: u64) -> ((u64, u64), (u64, u64)) {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let mut pattern = Pattern::new(seed);
        let mut hash = Hash64::default();
        let mut buf = vec![0u8; CHUNK];
        let mut left = total;
        while left > 0 {
            let n = left.min(CHUNK);
            pattern.fill(&mut buf[..n]);
            hash.update(&buf[..n]);
            writer.write_all(&buf[..n]).expect("client write");
            left -= n;
        }
        writer.shutdown(Shutdown::Write).unwrap();
        hash.finish()
    });
    let mut reader = stream;
    let mut hash = Hash64::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hash.update(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("client read: {e}"),
        }
    }
    (sender.join().unwrap(), hash.finish())
}

fn echo_with_std_client(total: usize) {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 30);
    let server = echo_server(&mut lp, ListenOptions::default(), 1);
    let addr = lp.tcp_server_addr(server).unwrap();
    let client = thread::spawn(move || std_echo_client(addr, total, total as u64));
    let started = Instant::now();
    lp.run().unwrap();
    let (sent, received) = client.join().unwrap();
    println!(
        "echo {total} bytes: {:?}, hash {:016x}",
        started.elapsed(),
        received.0
    );
    assert_eq!(sent.1, total as u64);
    assert_eq!(received, sent, "echoed stream differs from the sent one");
}

#[test]
fn echo_returns_one_byte_intact() {
    echo_with_std_client(1);
}

#[test]
fn echo_returns_one_mebibyte_intact() {
    echo_with_std_client(1 << 20);
}

#[test]
fn echo_returns_sixty_four_mebibytes_intact() {
    echo_with_std_client(64 << 20);
}

/// A client on the loop itself (`tcp_connect`): writes are queued while connecting, the client
/// honours backpressure, and the echo arrives intact.
#[test]
fn loop_client_echoes_one_mebibyte_through_tcp_connect() {
    const TOTAL: usize = 1 << 20;
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 30);
    let server = echo_server(&mut lp, ListenOptions::default(), 1);
    let addr = lp.tcp_server_addr(server).unwrap();

    let sent = Rc::new(RefCell::new(Hash64::default()));
    let received = Rc::new(RefCell::new(Hash64::default()));
    let connected = Rc::new(Cell::new(false));
    let closed = Rc::new(Cell::new(false));

    // Sends the next chunks until `write` says stop; continued from `on_drain`.
    fn pump(
        lp: &mut Loop,
        id: TcpId,
        left: &Cell<usize>,
        pattern: &RefCell<Pattern>,
        hash: &RefCell<Hash64>,
    ) {
        let mut buf = [0u8; 16 * 1024];
        while left.get() > 0 {
            let n = left.get().min(buf.len());
            pattern.borrow_mut().fill(&mut buf[..n]);
            hash.borrow_mut().update(&buf[..n]);
            left.set(left.get() - n);
            if !lp.tcp_write(id, &buf[..n]).unwrap() {
                return;
            }
        }
        lp.tcp_end(id).unwrap();
    }

    let left = Rc::new(Cell::new(TOTAL));
    let pattern = Rc::new(RefCell::new(Pattern::new(7)));
    let c = connected.clone();
    let id = lp
        .tcp_connect(addr, SocketOptions::default(), move |_, _| c.set(true))
        .unwrap();
    // Writing before the connection completes queues.
    pump(&mut lp, id, &left, &pattern, &sent);
    assert!(
        left.get() < TOTAL,
        "first write was accepted into the queue"
    );
    let (l, p, s) = (left.clone(), pattern.clone(), sent.clone());
    lp.tcp_on_drain(id, move |lp, id| pump(lp, id, &l, &p, &s))
        .unwrap();
    let r = received.clone();
    lp.tcp_on_data(id, move |_, _, data| r.borrow_mut().update(data))
        .unwrap();
    let cl = closed.clone();
    lp.tcp_on_close(id, move |_, _, had_error| {
        assert!(!had_error);
        cl.set(true)
    })
    .unwrap();
    lp.run().unwrap();
    assert!(connected.get() && closed.get());
    let sent = Rc::try_unwrap(sent).ok().unwrap().into_inner().finish();
    let received = Rc::try_unwrap(received).ok().unwrap().into_inner().finish();
    assert_eq!(sent.1, TOTAL as u64);
    assert_eq!(received, sent);
}

/// A connect to a port nobody listens on reports ECONNREFUSED to `on_error`, then `on_close`
/// with `had_error = true`; `on_connect` never runs.
#[test]
fn connect_to_closed_port_reports_refused_then_close_with_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let l = log.clone();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let id = lp
        .tcp_connect(addr, SocketOptions::default(), move |_, _| {
            l.borrow_mut().push("connect".into())
        })
        .unwrap();
    let l = log.clone();
    lp.tcp_on_error(id, move |_, _, e| {
        l.borrow_mut().push(format!("error {:?}", e.kind()))
    })
    .unwrap();
    let l = log.clone();
    lp.tcp_on_close(id, move |_, _, had_error| {
        l.borrow_mut().push(format!("close had_error={had_error}"))
    })
    .unwrap();
    lp.run().unwrap();
    assert_eq!(
        *log.borrow(),
        vec!["error ConnectionRefused", "close had_error=true"]
    );
}

/// Listening on `[::1]:0` reports the bound port, and both a std client and a loop client
/// exchange data with it. Skips (with a message) when the host has no IPv6 loopback.
#[test]
fn ipv6_loopback_listen_and_connect_work() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let any6: SocketAddr = "[::1]:0".parse().unwrap();
    let closed = Rc::new(Cell::new(0usize));
    let server_id = Rc::new(Cell::new(None));
    let (c, s) = (closed.clone(), server_id.clone());
    let server = match lp.tcp_listen(any6, ListenOptions::default(), move |lp, conn| {
        tcp_common::echo_on(lp, conn, c.clone(), s.clone(), 2)
    }) {
        Ok(s) => s,
        Err(e) => {
            println!("skipped: no IPv6 loopback here ({e})");
            return;
        }
    };
    server_id.set(Some(server));
    let addr = lp.tcp_server_addr(server).unwrap();
    assert!(addr.is_ipv6());
    assert_ne!(addr.port(), 0, "port 0 reports the bound port");

    let client = thread::spawn(move || std_echo_client(addr, 1000, 3));
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let id = lp
        .tcp_connect(addr, SocketOptions::default(), |lp, id| {
            assert!(lp.tcp_local_addr(id).unwrap().is_ipv6());
            lp.tcp_write(id, b"over v6").unwrap();
            lp.tcp_end(id).unwrap();
        })
        .unwrap();
    lp.tcp_on_data(id, move |_, _, d| g.borrow_mut().extend_from_slice(d))
        .unwrap();
    lp.run().unwrap();
    let (sent, received) = client.join().unwrap();
    assert_eq!(sent, received);
    assert_eq!(&got.borrow()[..], b"over v6");
    assert_eq!(closed.get(), 2);
}

/// Port 0 picks a free port and `tcp_server_addr` reports it; the address really accepts.
#[test]
fn port_zero_reports_the_bound_port() {
    let mut lp = Loop::new().unwrap();
    let server = lp
        .tcp_listen(tcp_common::localhost(), ListenOptions::default(), |_, _| {})
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    assert_ne!(addr.port(), 0);
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to reported port");
    lp.tcp_server_close(server, |_| {}).unwrap();
}

/// Two listeners with `reuse_port` bind the same port (the kernel balances connections between
/// them); without it the second bind fails with AddrInUse.
#[test]
fn reuse_port_lets_two_listeners_bind_the_same_port() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let opts = ListenOptions {
        reuse_port: true,
        ..ListenOptions::default()
    };
    let accepted = Rc::new(RefCell::new([0usize; 2]));
    let a = accepted.clone();
    let first = lp
        .tcp_listen(tcp_common::localhost(), opts.clone(), move |lp, c| {
            a.borrow_mut()[0] += 1;
            lp.tcp_destroy(c).unwrap();
        })
        .unwrap();
    let addr = lp.tcp_server_addr(first).unwrap();
    let a = accepted.clone();
    let second = lp
        .tcp_listen(addr, opts, move |lp, c| {
            a.borrow_mut()[1] += 1;
            lp.tcp_destroy(c).unwrap();
        })
        .expect("second listener on the same port with reuse_port");
    assert_eq!(lp.tcp_server_addr(second).unwrap(), addr);
    let err = Loop::new()
        .unwrap()
        .tcp_listen(addr, ListenOptions::default(), |_, _| {})
        .expect_err("a listener without reuse_port cannot join");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);

    const CLIENTS: usize = 32;
    let clients = thread::spawn(move || {
        for _ in 0..CLIENTS {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.read(&mut [0u8; 1]); // wait for the server to close it
        }
    });
    let a = accepted.clone();
    let t = lp.set_interval(5, move |lp| {
        let n = a.borrow();
        if n[0] + n[1] == CLIENTS {
            lp.tcp_server_close(first, |_| {}).unwrap();
            lp.tcp_server_close(second, |_| {}).unwrap();
        }
    });
    lp.unref(t).unwrap();
    lp.run().unwrap();
    clients.join().unwrap();
    let n = *accepted.borrow();
    println!("reuse_port: connections per listener {n:?}");
    assert_eq!(n[0] + n[1], CLIENTS);
}
