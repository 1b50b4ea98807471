//! Flow control and stream lifecycle over real loopback sockets: backpressure and drain,
//! half-close both ways, pause/resume, idle timeouts, graceful server close, max_connections.

mod tcp_common;

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use oneloop_runtime::tcp::DEFAULT_HIGH_WATER_MARK;
use oneloop_runtime::{DropInfo, ListenOptions, Loop, SocketOptions, TcpId};
use tcp_common::{localhost, watchdog, Hash64, Pattern};

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read to EOF");
    out
}

fn half_open() -> ListenOptions {
    ListenOptions {
        socket: SocketOptions {
            allow_half_open: true,
            ..SocketOptions::server_default()
        },
        ..ListenOptions::default()
    }
}

/// A peer that does not read: `tcp_write` returns false once the kernel buffers are full and
/// the queue reaches the high-water mark; the queue then stays below hwm + one chunk because we
/// stop writing; `on_drain` fires once the peer reads, and every byte arrives in order.
#[test]
fn write_returns_false_against_a_peer_that_never_reads_then_drain_fires_when_it_reads() {
    const CHUNK: usize = 64 * 1024;
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let written = Rc::new(Cell::new(0usize));
    let queued_at_false = Rc::new(Cell::new(0usize));
    let kernel_took = Rc::new(Cell::new(0usize));
    let drains = Rc::new(Cell::new(0usize));
    let sent_hash = Rc::new(RefCell::new(Hash64::default()));

    let (w, q, k, d, h) = (
        written.clone(),
        queued_at_false.clone(),
        kernel_took.clone(),
        drains.clone(),
        sent_hash.clone(),
    );
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            let mut pattern = Pattern::new(11);
            let mut buf = vec![0u8; CHUNK];
            // Write until `write` says stop: the kernel takes what fits, then the queue grows.
            loop {
                pattern.fill(&mut buf);
                h.borrow_mut().update(&buf);
                w.set(w.get() + CHUNK);
                let ok = lp.tcp_write(conn, &buf).unwrap();
                let queued = lp.tcp_queued(conn).unwrap();
                assert!(
                    queued < DEFAULT_HIGH_WATER_MARK + CHUNK,
                    "queue bounded: {queued}"
                );
                if !ok {
                    q.set(queued);
                    k.set(w.get() - queued);
                    break;
                }
                assert!(w.get() < 256 << 20, "write never returned false");
            }
            go_tx.send(()).unwrap(); // now let the peer read
            let d = d.clone();
            lp.tcp_on_drain(conn, move |lp, id| {
                d.set(d.get() + 1);
                assert_eq!(lp.tcp_queued(id).unwrap(), 0);
                lp.tcp_end(id).unwrap();
            })
            .unwrap();
        })
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    let reader = thread::spawn(move || {
        let mut s = connect(addr);
        go_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        thread::sleep(Duration::from_millis(100)); // the queue stays put while nobody reads
        let mut hash = Hash64::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hash.update(&buf[..n]),
                Err(e) => panic!("{e}"),
            }
        }
        hash.finish()
    });
    let s = server;
    let d = drains.clone();
    let t = lp.set_interval(5, move |lp| {
        if d.get() > 0 && lp.tcp_socket_count() == 0 && lp.tcp_server_is_listening(s) {
            lp.tcp_server_close(s, |_| {}).unwrap();
        }
    });
    lp.unref(t).unwrap();
    lp.run().unwrap();
    let received = reader.join().unwrap();
    println!(
        "backpressure: kernel took {} bytes before write returned false; queued then {} (hwm {})",
        kernel_took.get(),
        queued_at_false.get(),
        DEFAULT_HIGH_WATER_MARK
    );
    assert!(queued_at_false.get() >= DEFAULT_HIGH_WATER_MARK);
    assert_eq!(drains.get(), 1, "on_drain fires once");
    let sent = Rc::try_unwrap(sent_hash)
        .ok()
        .unwrap()
        .into_inner()
        .finish();
    assert_eq!(received, sent);
}

/// allow_half_open = true: the peer's FIN reaches `on_end`, and we can still write; the peer
/// reads what we wrote after its FIN, then our `tcp_end` closes the socket.
#[test]
fn half_open_socket_writes_after_peer_fin_and_peer_reads_it() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let l = log.clone();
    let server = lp
        .tcp_listen(localhost(), half_open(), move |lp, conn| {
            let l2 = l.clone();
            lp.tcp_on_data(conn, move |_, _, d| {
                l2.borrow_mut()
                    .push(format!("data {}", String::from_utf8_lossy(d)))
            })
            .unwrap();
            let l2 = l.clone();
            lp.tcp_on_end(conn, move |lp, id| {
                l2.borrow_mut().push("end".into());
                assert!(lp.tcp_read_ended(id));
                // Still writable after the peer's FIN.
                lp.tcp_write(id, b"reply after your FIN").unwrap();
                let l3 = l2.clone();
                lp.set_timeout(20, move |lp| {
                    l3.borrow_mut().push("still open".into());
                    lp.tcp_write(id, b", later").unwrap();
                    lp.tcp_end(id).unwrap();
                });
            })
            .unwrap();
            let l2 = l.clone();
            lp.tcp_on_close(conn, move |_, _, e| {
                l2.borrow_mut().push(format!("close had_error={e}"))
            })
            .unwrap();
        })
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    let client = thread::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"ping").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        read_to_end(&mut s)
    });
    let l = log.clone();
    let t = lp.set_interval(5, move |lp| {
        if l.borrow().last().is_some_and(|e| e.starts_with("close")) {
            lp.tcp_server_close(server, |_| {}).unwrap();
        }
    });
    lp.unref(t).unwrap();
    lp.run().unwrap();
    assert_eq!(client.join().unwrap(), b"reply after your FIN, later");
    assert_eq!(
        *log.borrow(),
        vec!["data ping", "end", "still open", "close had_error=false"]
    );
}

/// `tcp_end` sends our FIN while the peer keeps sending: the peer reads EOF, then its data still
/// reaches `on_data`; its FIN then closes the socket.
#[test]
fn ending_our_side_lets_the_peer_see_eof_while_it_still_sends_to_us() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let got = Rc::new(RefCell::new(Vec::new()));
    let closed = Rc::new(Cell::new(false));
    let (g, c) = (got.clone(), closed.clone());
    let server = lp
        .tcp_listen(localhost(), half_open(), move |lp, conn| {
            lp.tcp_write(conn, b"bye").unwrap();
            lp.tcp_end(conn).unwrap();
            assert!(matches!(
                lp.tcp_write(conn, b"x"),
                Err(oneloop_runtime::TcpError::WriteAfterEnd)
            ));
            let g = g.clone();
            lp.tcp_on_data(conn, move |_, _, d| g.borrow_mut().extend_from_slice(d))
                .unwrap();
            let c = c.clone();
            lp.tcp_on_close(conn, move |lp, _, e| {
                assert!(!e);
                c.set(true);
                let _ = lp;
            })
            .unwrap();
        })
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    let client = thread::spawn(move || {
        let mut s = connect(addr);
        let got = read_to_end(&mut s); // EOF: the server ended its side
        s.write_all(b"still sending").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        got
    });
    let c = closed.clone();
    let t = lp.set_interval(5, move |lp| {
        if c.get() && lp.tcp_server_is_listening(server) {
            lp.tcp_server_close(server, |_| {}).unwrap();
        }
    });
    lp.unref(t).unwrap();
    lp.run().unwrap();
    assert_eq!(client.join().unwrap(), b"bye");
    assert_eq!(&got.borrow()[..], b"still sending");
    assert!(closed.get());
}

/// allow_half_open = false (the default): after `on_end` the socket ends itself, so the peer
/// reads EOF without our calling `tcp_end`, and the socket closes.
#[test]
fn default_socket_ends_itself_after_peer_fin() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let events = Rc::new(RefCell::new(Vec::<&str>::new()));
    let e = events.clone();
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            let e1 = e.clone();
            lp.tcp_on_end(conn, move |_, _| e1.borrow_mut().push("end"))
                .unwrap();
            let e2 = e.clone();
            lp.tcp_on_close(conn, move |lp, _, _| {
                e2.borrow_mut().push("close");
                let _ = lp;
            })
            .unwrap();
        })
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    let client = thread::spawn(move || {
        let mut s = connect(addr);
        s.write_all(b"x").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        read_to_end(&mut s)
    });
    let e = events.clone();
    let t = lp.set_interval(5, move |lp| {
        if e.borrow().contains(&"close") && lp.tcp_server_is_listening(server) {
            lp.tcp_server_close(server, |_| {}).unwrap();
        }
    });
    lp.unref(t).unwrap();
    lp.run().unwrap();
    assert_eq!(client.join().unwrap(), b"", "peer sees EOF");
    assert_eq!(*events.borrow(), vec!["end", "close"]);
}

/// While paused no `on_data` runs; after resume everything sent meanwhile arrives, including a
/// FIN that arrived while paused (its readiness event was ignored then).
#[test]
fn paused_socket_gets_no_data_until_resumed_and_loses_nothing() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let got = Rc::new(RefCell::new(Vec::new()));
    let ended = Rc::new(Cell::new(false));
    let resumed_at = Rc::new(Cell::new(None::<Instant>));
    let (g, en, r) = (got.clone(), ended.clone(), resumed_at.clone());
    let server = lp
        .tcp_listen(localhost(), half_open(), move |lp, conn| {
            lp.tcp_pause(conn).unwrap();
            assert!(lp.tcp_is_paused(conn));
            let (g, r2) = (g.clone(), r.clone());
            lp.tcp_on_data(conn, move |lp, id, d| {
                assert!(!lp.tcp_is_paused(id), "on_data while paused");
                assert!(r2.get().is_some(), "on_data before resume");
                g.borrow_mut().extend_from_slice(d);
            })
            .unwrap();
            let en = en.clone();
            lp.tcp_on_end(conn, move |lp, id| {
                en.set(true);
                lp.tcp_end(id).unwrap();
            })
            .unwrap();
            let r = r.clone();
            lp.set_timeout(300, move |lp| {
                r.set(Some(Instant::now()));
                lp.tcp_resume(conn).unwrap();
            });
        })
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    let client = thread::spawn(move || {
        let mut s = connect(addr);
        for i in 0..3 {
            s.write_all(format!("part{i};").as_bytes()).unwrap();
            thread::sleep(Duration::from_millis(30));
        }
        s.shutdown(Shutdown::Write).unwrap(); // FIN while the server is still paused
        read_to_end(&mut s)
    });
    let en = ended.clone();
    let t = lp.set_interval(5, move |lp| {
        if en.get() && lp.tcp_socket_count() == 0 && lp.tcp_server_is_listening(server) {
            lp.tcp_server_close(server, |_| {}).unwrap();
        }
    });
    lp.unref(t).unwrap();
    lp.run().unwrap();
    client.join().unwrap();
    assert_eq!(&got.borrow()[..], b"part0;part1;part2;");
    assert!(
        ended.get(),
        "the FIN that arrived while paused is delivered"
    );
}

/// Pausing from inside `on_data` and resuming from a timer, over and over, across a 4 MiB
/// stream: nothing is lost or reordered.
#[test]
fn pausing_inside_on_data_and_resuming_later_keeps_the_stream_intact() {
    const TOTAL: usize = 4 << 20;
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 20);
    let hash = Rc::new(RefCell::new(Hash64::default()));
    let pauses = Rc::new(Cell::new(0usize));
    let (h, p) = (hash.clone(), pauses.clone());
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            let (h, p) = (h.clone(), p.clone());
            lp.tcp_on_data(conn, move |lp, id, d| {
                assert!(!lp.tcp_is_paused(id));
                h.borrow_mut().update(d);
                p.set(p.get() + 1);
                lp.tcp_pause(id).unwrap();
                lp.set_timeout(1, move |lp| {
                    let _ = lp.tcp_resume(id);
                });
            })
            .unwrap();
        })
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    let client = thread::spawn(move || {
        let mut s = connect(addr);
        let mut pattern = Pattern::new(5);
        let mut h = Hash64::default();
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..TOTAL / buf.len() {
            pattern.fill(&mut buf);
            h.update(&buf);
            s.write_all(&buf).unwrap();
        }
        s.shutdown(Shutdown::Write).unwrap();
        read_to_end(&mut s);
        h.finish()
    });
    let t = lp.set_interval(5, move |lp| {
        if lp.tcp_server_connections(server).ok() == Some(0)
            && lp.tcp_server_is_listening(server)
            && lp.tcp_socket_count() == 0
            && lp.now() > 50
        {
            lp.tcp_server_close(server, |_| {}).unwrap();
        }
    });
    lp.unref(t).unwrap();
    lp.run().unwrap();
    let sent = client.join().unwrap();
    let received = Rc::try_unwrap(hash).ok().unwrap().into_inner().finish();
    println!("pause/resume: {} pauses over {TOTAL} bytes", pauses.get());
    assert_eq!(received, sent);
}

/// The idle timeout emits `on_timeout` after the idle period and does not close the socket: it
/// still carries data afterwards.
#[test]
fn idle_timeout_fires_and_leaves_the_socket_open() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let fired = Rc::new(RefCell::new(Vec::<u64>::new()));
    let f = fired.clone();
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            lp.tcp_set_timeout(conn, 100).unwrap();
            let start = lp.now();
            let f = f.clone();
            lp.tcp_on_timeout(conn, move |lp, id| {
                f.borrow_mut().push(lp.now() - start);
                assert!(lp.tcp_is_open(id), "timeout does not close");
                if f.borrow().len() == 2 {
                    lp.tcp_set_timeout(id, 0).unwrap();
                    lp.tcp_write(id, b"after two timeouts").unwrap();
                    lp.tcp_end(id).unwrap();
                }
            })
            .unwrap();
        })
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    let client = thread::spawn(move || {
        let mut s = connect(addr);
        let got = read_to_end(&mut s);
        drop(s);
        got
    });
    let f = fired.clone();
    let t = lp.set_interval(5, move |lp| {
        if f.borrow().len() == 2 && lp.tcp_socket_count() == 0 && lp.tcp_server_is_listening(server)
        {
            lp.tcp_server_close(server, |_| {}).unwrap();
        }
    });
    lp.unref(t).unwrap();
    lp.run().unwrap();
    assert_eq!(client.join().unwrap(), b"after two timeouts");
    let fired = fired.borrow();
    println!("idle timeout fired after {fired:?} ms");
    assert!(fired[0] >= 100 && fired[1] >= 200, "{fired:?}");
}

/// `tcp_server_close(cb)` stops accepting at once but calls `cb` only after every open
/// connection closed, after their own close callbacks.
#[test]
fn server_close_waits_for_open_connections_then_calls_back() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let conns = Rc::new(RefCell::new(Vec::<TcpId>::new()));
    let (l, c) = (log.clone(), conns.clone());
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            c.borrow_mut().push(conn);
            let l = l.clone();
            lp.tcp_on_close(conn, move |_, _, _| {
                l.borrow_mut().push("conn closed".into())
            })
            .unwrap();
        })
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    let client = thread::spawn(move || {
        let mut a = connect(addr);
        let mut b = connect(addr);
        (read_to_end(&mut a), read_to_end(&mut b))
    });
    let (l, c) = (log.clone(), conns.clone());
    let t = lp.set_interval(5, move |lp| {
        if c.borrow().len() == 2 && lp.tcp_server_is_listening(server) {
            let l2 = l.clone();
            lp.tcp_server_close(server, move |_| {
                l2.borrow_mut().push("server closed".into())
            })
            .unwrap();
            assert!(!lp.tcp_server_is_listening(server));
            assert!(TcpStream::connect(addr).is_err(), "no longer accepting");
            l.borrow_mut().push("close requested".into());
            let conns = c.borrow().clone();
            let l3 = l.clone();
            lp.set_timeout(50, move |lp| {
                l3.borrow_mut().push("destroy first".into());
                lp.tcp_destroy(conns[0]).unwrap();
                let l4 = l3.clone();
                lp.set_timeout(50, move |lp| {
                    assert_eq!(lp.tcp_server_connections(server).unwrap(), 1);
                    l4.borrow_mut().push("destroy second".into());
                    lp.tcp_destroy(conns[1]).unwrap();
                });
            });
        }
    });
    lp.unref(t).unwrap();
    lp.run().unwrap();
    client.join().unwrap();
    assert_eq!(
        *log.borrow(),
        vec![
            "close requested",
            "destroy first",
            "conn closed",
            "destroy second",
            "conn closed",
            "server closed"
        ]
    );
}

/// With `max_connections = 2`, a third connection is accepted, closed at once and reported to
/// the drop callback with its addresses; the two others keep working.
#[test]
fn connection_over_max_connections_is_closed_and_reported_to_on_drop() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let opts = ListenOptions {
        max_connections: Some(2),
        ..ListenOptions::default()
    };
    let accepted = Rc::new(Cell::new(0usize));
    let drops = Rc::new(RefCell::new(Vec::<DropInfo>::new()));
    let a = accepted.clone();
    let server = lp
        .tcp_listen(localhost(), opts, move |lp, conn| {
            a.set(a.get() + 1);
            lp.tcp_on_data(conn, |lp, id, d| {
                lp.tcp_write(id, d).unwrap();
            })
            .unwrap();
        })
        .unwrap();
    let (d, a) = (drops.clone(), accepted.clone());
    lp.tcp_server_on_drop(server, move |lp, info| {
        assert_eq!(a.get(), 2);
        assert_eq!(lp.tcp_server_connections(server).unwrap(), 2);
        d.borrow_mut().push(info);
        // The two kept connections close when the client thread drops them (EOF -> auto-end
        // -> close); then the server finishes closing and the loop ends.
        lp.tcp_server_close(server, |_| {}).unwrap();
    })
    .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    let (tx, rx) = mpsc::channel();
    let client = thread::spawn(move || {
        let mut a = connect(addr);
        let mut b = connect(addr);
        for s in [&mut a, &mut b] {
            s.write_all(b"hi").unwrap();
            let mut buf = [0u8; 2];
            s.read_exact(&mut buf).unwrap();
        }
        let mut c = connect(addr);
        let c_addr = c.local_addr().unwrap();
        let mut buf = [0u8; 8];
        let n = match c.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(n, 0, "the connection over the cap is closed");
        tx.send(c_addr).unwrap();
        // The first two still work.
        a.write_all(b"ok").unwrap();
        a.read_exact(&mut buf[..2]).unwrap();
    });
    lp.run().unwrap();
    client.join().unwrap();
    let c_addr = rx.recv().unwrap();
    let drops = drops.borrow();
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].remote, c_addr);
    assert_eq!(drops[0].local, addr);
}

/// `tcp_cork` holds writes back (nothing reaches the peer before the outermost `tcp_uncork`),
/// corked bytes do not count toward the high-water mark, and the uncork sends everything in
/// order followed by the FIN a corked `tcp_end` asked for.
#[test]
fn corked_writes_reach_the_peer_only_at_the_outermost_uncork_in_order_then_the_fin() {
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let uncorked_at = Rc::new(Cell::new(None::<Instant>));
    let all_true = Rc::new(Cell::new(true));
    let (u, t) = (uncorked_at.clone(), all_true.clone());
    let server = lp
        .tcp_listen(localhost(), ListenOptions::default(), move |lp, conn| {
            lp.tcp_set_high_water_mark(conn, 1).unwrap();
            lp.tcp_cork(conn).unwrap();
            lp.tcp_cork(conn).unwrap();
            assert!(lp.tcp_is_corked(conn));
            for i in 0..200 {
                let ok = lp.tcp_write(conn, format!("{i},").as_bytes()).unwrap();
                t.set(t.get() && ok);
            }
            lp.tcp_end(conn).unwrap();
            lp.set_timeout(100, move |lp| {
                lp.tcp_uncork(conn).unwrap();
                assert!(lp.tcp_is_corked(conn), "still corked once");
            });
            let u = u.clone();
            lp.set_timeout(300, move |lp| {
                u.set(Some(Instant::now()));
                lp.tcp_uncork(conn).unwrap();
                assert!(!lp.tcp_is_corked(conn));
            });
        })
        .unwrap();
    let addr = lp.tcp_server_addr(server).unwrap();
    let client = thread::spawn(move || {
        let mut s = connect(addr);
        let mut first = [0u8; 1];
        s.read_exact(&mut first).unwrap();
        let arrived = Instant::now();
        let mut rest = read_to_end(&mut s);
        rest.insert(0, first[0]);
        (arrived, rest)
    });
    let t = lp.set_timeout(400, move |lp| lp.tcp_server_close(server, |_| {}).unwrap());
    let _ = t;
    lp.run().unwrap();
    let (arrived, bytes) = client.join().unwrap();
    let expected: String = (0..200).map(|i| format!("{i},")).collect();
    assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    assert!(
        arrived >= uncorked_at.get().expect("uncorked"),
        "data before uncork"
    );
    assert!(
        all_true.get(),
        "corked writes counted toward the high-water mark"
    );
}
