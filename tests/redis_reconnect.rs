//! Losing the connection: CLIENT KILL, the server killed and restarted on the same port, a
//! fake server that sends garbage or closes mid-reply, connect timeouts, the bounded offline
//! queue and max_retries_per_request.

mod redis_common;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::rc::Rc;

use oneloop::redis::{ProtocolError, Reconnect, Redis, RedisError, RedisOptions, Subscriber};
use oneloop::runtime::Loop;
use redis_common::{free_port, RedisServer};

fn watchdog(lp: &mut Loop, secs: u64) {
    let t = lp.set_timeout(secs * 1000, move |_lp| {
        panic!("test still running after {secs} s")
    });
    lp.unref(t).expect("timer");
}

type Log = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

#[test]
fn client_kill_reconnects_both_connections_and_restores_subscriptions() {
    let server = RedisServer::start();
    let port = server.port;
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 30);
    let got: Log = Rc::default();
    let sub = Subscriber::connect(&mut lp, &server.url(), RedisOptions::default()).expect("url");
    let publisher = Redis::connect(&mut lp, &server.url(), RedisOptions::default()).expect("url");
    let (g, s2, p2) = (Rc::clone(&got), sub.clone(), publisher.clone());
    sub.subscribe(
        &mut lp,
        "news",
        move |lp, msg| {
            let text = String::from_utf8_lossy(&msg.payload).into_owned();
            push(&g, format!("message {text}"));
            if text == "two" {
                s2.client().quit(lp, |_lp, _| {});
                p2.quit(lp, |_lp, _| {});
            }
        },
        |_lp, done| done.expect("subscribed"),
    );
    let readies = Rc::new(RefCell::new(0));
    let (g, p2, n) = (Rc::clone(&got), publisher.clone(), Rc::clone(&readies));
    sub.client().on_ready(move |lp| {
        *n.borrow_mut() += 1;
        let round = *n.borrow();
        push(&g, format!("subscriber ready {round}"));
        let (g2, word) = (Rc::clone(&g), if round == 1 { "one" } else { "two" });
        p2.publish(lp, "news", word, move |_lp, res| {
            push(&g2, format!("publish {word}: {res:?}"));
            if word == "one" {
                // Kill every client connection but the one asking.
                let s = RedisServer::raw_to(port, &["CLIENT", "KILL", "TYPE", "pubsub"]);
                assert_eq!(s, ":1\r\n");
                let s = RedisServer::raw_to(port, &["CLIENT", "KILL", "TYPE", "normal"]);
                assert_eq!(s, ":1\r\n");
            }
        });
    });
    lp.run().expect("run");
    let got = got.borrow();
    assert_eq!(
        got.iter()
            .filter(|l| l.starts_with("message"))
            .collect::<Vec<_>>(),
        ["message one", "message two"]
    );
    assert!(got.contains(&"publish two: Ok(1)".to_string()), "{got:?}");
    assert!(got.contains(&"subscriber ready 2".to_string()), "{got:?}");
    assert_eq!(sub.client().stats().connects, 2);
    assert_eq!(publisher.stats().connects, 2);
}

#[test]
fn server_restart_drains_the_offline_queue_in_order_and_bounds_it() {
    let server = Rc::new(RefCell::new(RedisServer::start()));
    let url = server.borrow().url();
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 30);
    let got: Log = Rc::default();
    let opts = RedisOptions {
        max_queued_commands: 10,
        ..RedisOptions::default()
    };
    let r = Redis::connect(&mut lp, &url, opts).expect("url");
    let sub = Subscriber::connect(&mut lp, &url, RedisOptions::default()).expect("url");
    let g = Rc::clone(&got);
    sub.subscribe(
        &mut lp,
        "after-restart",
        move |_lp, msg| push(&g, format!("message {:?}", msg.payload)),
        |_lp, _| {},
    );
    let g = Rc::clone(&got);
    r.on_error(move |_lp, e| {
        if let RedisError::Connect { kind, .. } = e {
            push(&g, format!("error {kind:?}"));
        }
    });
    let first_ready = Rc::new(RefCell::new(true));
    let (srv, fr) = (Rc::clone(&server), Rc::clone(&first_ready));
    r.on_ready(move |_lp| {
        if std::mem::replace(&mut *fr.borrow_mut(), false) {
            srv.borrow_mut().kill();
        }
    });
    // Two things must happen before the final check: the last queued RPUSH answered, and
    // the subscriber is back (ready for the second time, subscriptions restored).
    let waiting = Rc::new(RefCell::new(2));
    let (g, r2, s2) = (Rc::clone(&got), r.clone(), sub.clone());
    let one_done: Rc<dyn Fn(&mut Loop)> = Rc::new(move |lp: &mut Loop| {
        *waiting.borrow_mut() -= 1;
        if *waiting.borrow() > 0 {
            return;
        }
        let (g2, r3, s3) = (Rc::clone(&g), r2.clone(), s2.clone());
        r2.cmd(lp, &["LRANGE", "list", "0", "-1"], move |lp, res| {
            push(&g2, format!("lrange: {res:?}"));
            let (g3, r4) = (Rc::clone(&g2), r3.clone());
            r3.publish(lp, "after-restart", "hello", move |lp, res| {
                push(&g3, format!("publish: {res:?}"));
                r4.quit(lp, |_lp, _| {});
                s3.client().quit(lp, |_lp, _| {});
            });
        });
    });
    // The subscriber's first ready on the restarted server has its subscription restored.
    // (Not "the first ready after the kill": the old server may have answered the
    // subscriber's handshake just before it died, and that ready is processed afterwards.)
    let restarted = Rc::new(RefCell::new(false));
    let counted = Rc::new(RefCell::new(false));
    let (d, re) = (Rc::clone(&one_done), Rc::clone(&restarted));
    sub.client().on_ready(move |lp| {
        if *re.borrow() && !std::mem::replace(&mut *counted.borrow_mut(), true) {
            d(lp);
        }
    });
    let attempts = Rc::new(RefCell::new(0));
    let re2 = Rc::clone(&restarted);
    let (g, srv, r2, a) = (
        Rc::clone(&got),
        Rc::clone(&server),
        r.clone(),
        Rc::clone(&attempts),
    );
    r.on_reconnecting(move |lp, delay| {
        *a.borrow_mut() += 1;
        assert!(delay <= 2000);
        match *a.borrow() {
            1 => {
                for i in 0..11 {
                    let (g, d) = (Rc::clone(&g), Rc::clone(&one_done));
                    r2.cmd(lp, &["RPUSH", "list", &i.to_string()], move |lp, res| {
                        push(&g, format!("rpush {i}: {res:?}"));
                        if i == 9 {
                            d(lp);
                        }
                    });
                }
            }
            3 => {
                // After two refused attempts.
                srv.borrow_mut().restart();
                *re2.borrow_mut() = true;
            }
            _ => {}
        }
    });
    lp.run().expect("run");
    let got = got.borrow();
    let rpush: Vec<&String> = got.iter().filter(|l| l.starts_with("rpush")).collect();
    // The 11th command was refused at once (before any reply), the 10 queued ones answered
    // in order after the restart.
    assert_eq!(
        rpush[0],
        "rpush 10: Err(QueueFull { queued_commands: 10, queued_bytes: 320 })"
    );
    let answered: Vec<String> = (0..10)
        .map(|i| format!("rpush {i}: Ok(Int({}))", i + 1))
        .collect();
    assert_eq!(
        rpush[1..].iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        answered
    );
    let lrange = got
        .iter()
        .find(|l| l.starts_with("lrange"))
        .expect("lrange ran");
    for i in 0..10 {
        assert!(lrange.contains(&format!("Bulk(b\"{i}\")")), "{lrange}");
    }
    assert!(
        got.iter()
            .filter(|l| *l == "error ConnectionRefused")
            .count()
            >= 2,
        "{got:?}"
    );
    assert!(got.contains(&"publish: Ok(1)".to_string()), "{got:?}");
    assert!(got.contains(&"message b\"hello\"".to_string()), "{got:?}");
}

#[test]
fn queued_commands_fail_after_max_retries_per_request() {
    let port = free_port(); // nothing listens here
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 20);
    let opts = RedisOptions {
        max_retries_per_request: Some(2),
        reconnect: Reconnect::Backoff {
            base_ms: 5,
            max_ms: 20,
        },
        ..RedisOptions::default()
    };
    let r = Redis::connect(&mut lp, &format!("redis://127.0.0.1:{port}"), opts).expect("url");
    r.on_error(|_lp, _e| {});
    let got: Log = Rc::default();
    let (g, r2) = (Rc::clone(&got), r.clone());
    r.cmd(&mut lp, &["PING"], move |lp, res| {
        push(
            &g,
            format!("{res:?} after {} attempts", r2.stats().connects),
        );
        r2.disconnect(lp);
    });
    lp.run().expect("run");
    assert_eq!(*got.borrow(), ["Err(MaxRetries(2)) after 3 attempts"]);
}

/// A fake server: for each connection, the script of (expect a read, then write these bytes,
/// then maybe close). Returns the listener's port; the thread ends after the last script.
fn fake_server(scripts: Vec<Vec<(&'static [u8], bool)>>) -> (u16, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let mut accepted = 0;
        for script in scripts {
            let Ok((mut conn, _)) = listener.accept() else {
                break;
            };
            accepted += 1;
            let mut buf = [0u8; 4096];
            for (answer, close) in script {
                if conn.read(&mut buf).unwrap_or(0) == 0 {
                    break;
                }
                let _ = conn.write_all(answer);
                if close {
                    let _ = conn.shutdown(std::net::Shutdown::Write);
                    break;
                }
            }
            // Keep reading until the client goes away.
            while conn.read(&mut buf).unwrap_or(0) > 0 {}
        }
        accepted
    });
    (port, handle)
}

#[test]
fn a_fake_server_sending_garbage_or_closing_mid_reply_gives_clear_errors_and_reconnects() {
    let unknown_hello: &[u8] = b"-ERR unknown command 'HELLO'\r\n";
    let (port, server) = fake_server(vec![
        // 1: garbage instead of a HELLO reply.
        vec![(b"hello world\r\n", false)],
        // 2: RESP2 server; the queued PING gets half a reply, then the connection closes.
        vec![(unknown_hello, false), (b"$5\r\nhel", true)],
        // 3: RESP2 server that answers the next command, then QUIT.
        vec![
            (unknown_hello, false),
            (b"+PONG\r\n", false),
            (b"+OK\r\n", true),
        ],
    ]);
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 20);
    let opts = RedisOptions {
        reconnect: Reconnect::Backoff {
            base_ms: 5,
            max_ms: 20,
        },
        ..RedisOptions::default()
    };
    let r = Redis::connect(&mut lp, &format!("redis://127.0.0.1:{port}"), opts).expect("url");
    let got: Log = Rc::default();
    let g = Rc::clone(&got);
    r.on_error(move |_lp, e| push(&g, format!("error: {e:?}")));
    let g = Rc::clone(&got);
    r.on_ready(move |_lp| push(&g, "ready"));
    let (g, r2) = (Rc::clone(&got), r.clone());
    r.cmd(&mut lp, &["PING"], move |lp, res| {
        push(&g, format!("first ping: {res:?}"));
        let (g2, r3) = (Rc::clone(&g), r2.clone());
        r2.cmd(lp, &["PING"], move |lp, res| {
            push(&g2, format!("second ping: {res:?}"));
            r3.quit(lp, |_lp, _| {});
        });
    });
    lp.run().expect("run");
    assert_eq!(
        *got.borrow(),
        [
            "error: Protocol(BadType(104))".to_string(),
            "ready".to_string(),
            "first ping: Err(ConnectionLost(\"the server closed the connection\"))".to_string(),
            "ready".to_string(),
            "second ping: Ok(Simple(b\"PONG\"))".to_string(),
        ]
    );
    assert_eq!(server.join().expect("fake server"), 3);
    assert!(!r.is_resp3());
    let _ = ProtocolError::BadType(0);
}

#[test]
fn a_server_that_never_answers_the_handshake_hits_the_connect_timeout() {
    let (port, _server) = fake_server(vec![vec![]]);
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 20);
    let opts = RedisOptions {
        connect_timeout_ms: 200,
        reconnect: Reconnect::Never,
        ..RedisOptions::default()
    };
    let r = Redis::connect(&mut lp, &format!("redis://127.0.0.1:{port}"), opts).expect("url");
    let got: Log = Rc::default();
    let g = Rc::clone(&got);
    r.on_error(move |_lp, e| push(&g, format!("error: {e:?}")));
    let g = Rc::clone(&got);
    r.on_end(move |_lp| push(&g, "end"));
    let g = Rc::clone(&got);
    r.cmd(&mut lp, &["PING"], move |_lp, res| {
        push(&g, format!("ping: {res:?}"))
    });
    lp.run().expect("run");
    assert_eq!(
        *got.borrow(),
        ["error: ConnectTimeout", "ping: Err(Closed)", "end"]
    );
    assert!(r.is_ended());
}
