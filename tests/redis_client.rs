//! The Redis client against a real redis-server (started per test on a free loopback port):
//! every helper, auto-pipelining, timeouts, size limits, ref/unref.

mod redis_common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use oneloop::redis::{
    CmdOptions, Redis, RedisError, RedisOptions, Reply, ReplyLimits, Script, SetOptions, Ttl,
};
use oneloop::runtime::Loop;
use redis_common::{CountingRelay, RedisServer};

/// A test that hangs fails instead: an unref'd timer that only fires if something still
/// holds the loop after `secs`.
fn watchdog(lp: &mut Loop, secs: u64) {
    let t = lp.set_timeout(secs * 1000, move |_lp| {
        panic!("test still running after {secs} s")
    });
    lp.unref(t).expect("timer");
}

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

#[test]
fn every_command_helper_against_a_real_server() {
    let server = RedisServer::start();
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 30);
    let r = Redis::connect(&mut lp, &server.url(), RedisOptions::default()).expect("url");
    let got = log();
    let g = |s: &str| {
        let got = Rc::clone(&got);
        let s = s.to_string();
        move |text: String| push(&got, format!("{s}: {text}"))
    };
    // Issued before the connection is ready: they wait in the offline queue.
    let (f, r2) = (g("set"), r.clone());
    r.set(
        &mut lp,
        "k",
        "v1",
        SetOptions::default(),
        move |_lp, res| f(format!("{res:?}")),
    );
    let f = g("set nx on existing");
    r.set(
        &mut lp,
        "k",
        "v2",
        SetOptions::default().nx(),
        move |_lp, res| f(format!("{res:?}")),
    );
    let f = g("set xx on missing");
    r.set(
        &mut lp,
        "nokey",
        "v",
        SetOptions::px(5000).xx(),
        move |_lp, res| f(format!("{res:?}")),
    );
    let f = g("get");
    r.get(&mut lp, "k", move |_lp, res| f(format!("{res:?}")));
    let f = g("get missing");
    r.get(&mut lp, "missing", move |_lp, res| f(format!("{res:?}")));
    let f = g("set ex");
    r.set(&mut lp, "ttl", "x", SetOptions::ex(100), move |_lp, res| {
        f(format!("{res:?}"))
    });
    let f = g("pttl");
    r.pttl(&mut lp, "ttl", move |_lp, res| {
        f(match res {
            Ok(Ttl::Millis(ms)) if ms > 90_000 && ms <= 100_000 => "about 100 s".into(),
            other => format!("{other:?}"),
        })
    });
    let f = g("pttl persistent");
    r.pttl(&mut lp, "k", move |_lp, res| f(format!("{res:?}")));
    let f = g("pttl missing");
    r.pttl(&mut lp, "missing", move |_lp, res| f(format!("{res:?}")));
    let f = g("pexpire");
    r.pexpire(&mut lp, "k", 60_000, move |_lp, res| f(format!("{res:?}")));
    let f = g("pexpire missing");
    r.pexpire(&mut lp, "missing", 60_000, move |_lp, res| {
        f(format!("{res:?}"))
    });
    let f = g("incr");
    r.incr(&mut lp, "n", move |_lp, res| f(format!("{res:?}")));
    let f = g("incr again");
    r.incr(&mut lp, "n", move |_lp, res| f(format!("{res:?}")));
    let f = g("incr wrongtype");
    r.hset(&mut lp, "h", &[("a", "1"), ("b", "2")], |_lp, _| {});
    r.incr(&mut lp, "h", move |_lp, res| f(format!("{res:?}")));
    let f = g("hset update");
    r.hset(&mut lp, "h", &[("a", "10"), ("c", "3")], move |_lp, res| {
        f(format!("{res:?}"))
    });
    let f = g("hget");
    r.hget(&mut lp, "h", "a", move |_lp, res| f(format!("{res:?}")));
    let f = g("hget missing");
    r.hget(&mut lp, "h", "zzz", move |_lp, res| f(format!("{res:?}")));
    let f = g("mget");
    r.mget(&mut lp, &["k", "missing", "n"], move |_lp, res| {
        f(format!("{res:?}"))
    });
    let f = g("publish");
    r.publish(&mut lp, "chan", "hi", move |_lp, res| f(format!("{res:?}")));
    let f = g("del");
    r.del(&mut lp, &["k", "missing", "n"], move |_lp, res| {
        f(format!("{res:?}"))
    });
    let script = Script::new("return {KEYS[1], ARGV[1]}");
    let f = g("evalsha");
    let (r3, s2) = (r.clone(), script.clone());
    r.evalsha(&mut lp, &script, &["key1"], &["arg1"], move |lp, res| {
        f(format!("{res:?}"));
        // The first call loaded it with EVAL: now EVALSHA alone answers.
        r3.cmd(lp, &["SCRIPT", "EXISTS", s2.sha1()], |_lp, _| {});
    });
    for i in 0..25 {
        r.set(
            &mut lp,
            format!("scan:{i}"),
            "x",
            SetOptions::default(),
            |_lp, _| {},
        );
    }
    // SCAN to the end, collecting keys across cursors.
    let keys: Rc<RefCell<Vec<Bytes>>> = Rc::default();
    fn scan_all(
        lp: &mut Loop,
        r: Redis,
        cursor: u64,
        keys: Rc<RefCell<Vec<Bytes>>>,
        f: impl FnOnce(usize) + 'static,
    ) {
        let r2 = r.clone();
        r.scan(lp, cursor, Some("scan:*"), Some(10), move |lp, res| {
            let (next, batch) = res.expect("SCAN");
            keys.borrow_mut().extend(batch);
            if next == 0 {
                let n = keys.borrow().len();
                f(n);
            } else {
                scan_all(lp, r2, next, keys, f);
            }
        });
    }
    let f = g("scan");
    let done = move |n: usize| f(format!("{n} keys"));
    let got2 = Rc::clone(&got);
    r.get(&mut lp, "k", move |lp, _| {
        let r4 = r2.clone();
        scan_all(lp, r2, 0, keys, move |n| {
            done(n);
            push(&got2, format!("resp3: {}", r4.is_resp3()));
        });
        // `r4` quits after the scan; the scan's own commands were issued first.
    });
    lp.run_once().expect("run");
    // Run until the scan finished, then quit.
    while !got.borrow().iter().any(|l| l.starts_with("resp3")) {
        lp.run_once().expect("run");
    }
    r.quit(&mut lp, |_lp, res| assert!(res.expect("QUIT").is_ok()));
    lp.run().expect("run");
    let want = vec![
        "set: Ok(true)",
        "set nx on existing: Ok(false)",
        "set xx on missing: Ok(false)",
        "get: Ok(Some(b\"v1\"))",
        "get missing: Ok(None)",
        "set ex: Ok(true)",
        "pttl: about 100 s",
        "pttl persistent: Ok(Persistent)",
        "pttl missing: Ok(Missing)",
        "pexpire: Ok(true)",
        "pexpire missing: Ok(false)",
        "incr: Ok(1)",
        "incr again: Ok(2)",
        "incr wrongtype: Err(Server(\"WRONGTYPE Operation against a key holding the wrong kind of value\"))",
        "hset update: Ok(1)",
        "hget: Ok(Some(b\"10\"))",
        "hget missing: Ok(None)",
        "mget: Ok([Some(b\"v1\"), None, Some(b\"2\")])",
        "publish: Ok(0)",
        "del: Ok(2)",
        "evalsha: Ok(Array([Bulk(b\"key1\"), Bulk(b\"arg1\")]))",
        "scan: 25 keys",
        "resp3: true",
    ];
    assert_eq!(*got.borrow(), want);
    assert_eq!(
        server.command(&["SCRIPT", "EXISTS", script.sha1()]),
        "*1\r\n"
    );
}

#[test]
fn resp2_is_used_when_resp3_is_off_and_replies_are_the_same() {
    let server = RedisServer::start();
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 20);
    let opts = RedisOptions {
        resp3: false,
        client_name: Some("resp2-test".into()),
        ..RedisOptions::default()
    };
    let url = format!("{}/2", server.url());
    let r = Redis::connect(&mut lp, &url, opts).expect("url");
    let got = log();
    let (g, r2) = (Rc::clone(&got), r.clone());
    r.set(
        &mut lp,
        "in-db-2",
        "yes",
        SetOptions::default(),
        |_lp, res| assert_eq!(res, Ok(true)),
    );
    r.mget(&mut lp, &["in-db-2", "nope"], move |lp, res| {
        push(&g, format!("{res:?} resp3={}", r2.is_resp3()));
        let g2 = Rc::clone(&g);
        r2.cmd(lp, &["CLIENT", "GETNAME"], move |_lp, res| {
            push(&g2, format!("{res:?}"))
        });
        r2.quit(lp, |_lp, _| {});
    });
    lp.run().expect("run");
    assert_eq!(
        *got.borrow(),
        [
            "Ok([Some(b\"yes\"), None]) resp3=false",
            "Ok(Bulk(b\"resp2-test\"))"
        ]
    );
    // SELECT 2 was replayed: the key lives in db 2, not db 0.
    assert_eq!(server.command(&["EXISTS", "in-db-2"]), ":0\r\n");
    assert_eq!(server.command(&["SELECT", "2"]), "+OK\r\n");
}

#[test]
fn a_thousand_commands_from_one_callback_go_out_in_a_few_writes() {
    let server = RedisServer::start();
    let relay = CountingRelay::start(server.port);
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 30);
    let url = format!("redis://127.0.0.1:{}", relay.port);
    let r = Redis::connect(&mut lp, &url, RedisOptions::default()).expect("url");
    let order: Rc<RefCell<Vec<i64>>> = Rc::default();
    let reads_before = Rc::new(RefCell::new(0usize));
    let (r2, o, before, reads) = (
        r.clone(),
        Rc::clone(&order),
        Rc::clone(&reads_before),
        relay.client_reads.clone(),
    );
    r.on_ready(move |lp| {
        // Everything so far was the handshake; count from here.
        *before.borrow_mut() = reads.load(Ordering::SeqCst);
        let writes_before = r2.stats().writes;
        for i in 0..1000 {
            let o = Rc::clone(&o);
            r2.incr(lp, "counter", move |_lp, res| {
                o.borrow_mut().push(res.expect("INCR"))
            });
            let _ = i;
        }
        let r3 = r2.clone();
        r2.get(lp, "counter", move |lp, res| {
            assert_eq!(res.expect("GET").as_deref(), Some(&b"1000"[..]));
            assert_eq!(
                r3.stats().writes - writes_before,
                1,
                "one write for 1001 commands"
            );
            r3.quit(lp, |_lp, _| {});
        });
    });
    lp.run().expect("run");
    let reads = relay.client_reads.load(Ordering::SeqCst) - *reads_before.borrow();
    // 1,001 commands (~33 KB) plus QUIT: one write each; the relay's reads of them may be
    // split by the kernel, but never anywhere near one per command.
    assert!(
        reads <= 4,
        "the server side saw {reads} reads for 1,002 commands"
    );
    assert_eq!(*order.borrow(), (1..=1000).collect::<Vec<i64>>(), "FIFO");
}

#[test]
fn per_command_timeout_with_debug_sleep_keeps_the_connection() {
    let server = RedisServer::start();
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 20);
    let r = Redis::connect(&mut lp, &server.url(), RedisOptions::default()).expect("url");
    let got = log();
    let timeout = CmdOptions {
        timeout_ms: Some(100),
        ..CmdOptions::default()
    };
    let g = Rc::clone(&got);
    r.cmd_with(
        &mut lp,
        &["DEBUG", "SLEEP", "0.5"],
        timeout,
        move |_lp, res| push(&g, format!("sleep: {res:?}")),
    );
    let g = Rc::clone(&got);
    let r2 = r.clone();
    r.cmd(&mut lp, &["ECHO", "after"], move |lp, res| {
        push(&g, format!("echo: {res:?}"));
        r2.quit(lp, |_lp, _| {});
    });
    lp.run().expect("run");
    assert_eq!(
        *got.borrow(),
        ["sleep: Err(Timeout)", "echo: Ok(Bulk(b\"after\"))"],
        "the late +OK of DEBUG SLEEP is dropped; ECHO still gets its own reply"
    );
    assert_eq!(r.stats().connects, 1, "no reconnect");
}

#[test]
fn a_reply_over_the_size_limit_fails_and_the_client_reconnects() {
    let server = RedisServer::start();
    server.command(&["SET", "big", &"x".repeat(5000)]);
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 20);
    let opts = RedisOptions {
        reply_limits: ReplyLimits {
            max_bulk_len: 4096,
            ..ReplyLimits::default()
        },
        ..RedisOptions::default()
    };
    let r = Redis::connect(&mut lp, &server.url(), opts).expect("url");
    let got = log();
    let g = Rc::clone(&got);
    r.on_error(move |_lp, e| push(&g, format!("error event: {e:?}")));
    let g = Rc::clone(&got);
    r.get(&mut lp, "big", move |_lp, res| {
        push(&g, format!("get big: {}", res.expect_err("too large")))
    });
    let (g, r2) = (Rc::clone(&got), r.clone());
    r.cmd_with(
        &mut lp,
        &["ECHO", "small"],
        CmdOptions {
            retryable: true,
            ..CmdOptions::default()
        },
        move |lp, res| {
            push(&g, format!("retried echo: {res:?}"));
            r2.quit(lp, |_lp, _| {});
        },
    );
    lp.run().expect("run");
    assert_eq!(
        *got.borrow(),
        [
            "get big: connection lost before the reply (protocol error: bulk string longer \
             than max_bulk_len; connection closed); the command may or may not have run",
            "error event: Protocol(BulkTooLong)",
            "retried echo: Ok(Bulk(b\"small\"))",
        ]
    );
    assert_eq!(r.stats().connects, 2);
}

#[test]
fn an_unrefd_idle_client_lets_the_loop_exit_but_pending_commands_hold_it() {
    let server = RedisServer::start();
    let mut lp = Loop::new().expect("loop");
    let r = Redis::connect(&mut lp, &server.url(), RedisOptions::default()).expect("url");
    r.unref(&mut lp);
    let got = log();
    let g = Rc::clone(&got);
    r.cmd(&mut lp, &["PING"], move |_lp, res| {
        push(&g, format!("{res:?}"))
    });
    // A safety net that does not hold the loop: if the client wrongly held it, run() would
    // block until this fires and the test would fail on the assertions below.
    let t = lp.set_timeout(10_000, |_lp| {});
    lp.unref(t).expect("timer");
    let started = std::time::Instant::now();
    lp.run().expect("run");
    assert_eq!(
        *got.borrow(),
        ["Ok(Simple(b\"PONG\"))"],
        "the pending PING held the loop"
    );
    assert!(r.is_ready(), "still connected, just not holding the loop");
    assert!(started.elapsed() < std::time::Duration::from_secs(9));
    assert_eq!(lp.tcp_socket_count(), 1);
    r.disconnect(&mut lp);
}

#[test]
fn reply_kinds_of_resp3_reach_cmd_callers() {
    let server = RedisServer::start();
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 20);
    let r = Redis::connect(&mut lp, &server.url(), RedisOptions::default()).expect("url");
    let got = log();
    let (g, r2) = (Rc::clone(&got), r.clone());
    r.hset(&mut lp, "m", &[("f", "v")], |_lp, _| {});
    r.cmd(&mut lp, &["HGETALL", "m"], move |lp, res| {
        push(&g, format!("{res:?}"));
        let g2 = Rc::clone(&g);
        r2.cmd(lp, &["EVAL", "return 1.5", "0"], move |_lp, res| {
            push(&g2, format!("{res:?}"))
        });
        r2.quit(lp, |_lp, _| {});
    });
    lp.run().expect("run");
    let want = vec![
        "Ok(Map([(Bulk(b\"f\"), Bulk(b\"v\"))]))".to_string(),
        // Lua numbers become integers (truncated) in both protocols.
        "Ok(Int(1))".to_string(),
    ];
    assert_eq!(*got.borrow(), want);
    let _ = Reply::Nil;
    let _: Option<RedisError> = None;
}

#[test]
fn a_host_name_is_resolved_through_the_loops_dns() {
    let server = RedisServer::start();
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 20);
    let url = format!("redis://localhost:{}", server.port);
    let r = Redis::connect(&mut lp, &url, RedisOptions::default()).expect("url");
    let got = log();
    let (g, r2) = (Rc::clone(&got), r.clone());
    r.cmd(&mut lp, &["PING"], move |lp, res| {
        push(&g, format!("{res:?}"));
        r2.quit(lp, |_lp, _| {});
    });
    lp.run().expect("run");
    assert_eq!(*got.borrow(), ["Ok(Simple(b\"PONG\"))"]);
}

#[test]
fn auth_and_select_are_replayed_after_client_kill_and_a_wrong_password_is_an_error() {
    let server = RedisServer::start_with(redis_common::free_port(), &["--requirepass", "s3cret"]);
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 30);
    // A wrong password: an error event per attempt, commands wait, then give up.
    let wrong = format!("redis://:nope@127.0.0.1:{}", server.port);
    let opts = RedisOptions {
        reconnect: oneloop::redis::Reconnect::Never,
        ..RedisOptions::default()
    };
    let bad = Redis::connect(&mut lp, &wrong, opts).expect("url");
    let got = log();
    let g = Rc::clone(&got);
    bad.on_error(move |_lp, e| push(&g, format!("bad: {e}")));
    // The right one, db 3.
    let url = format!("redis://default:s3cret@127.0.0.1:{}/3", server.port);
    let r = Redis::connect(&mut lp, &url, RedisOptions::default()).expect("url");
    let port = server.port;
    let readies = Rc::new(RefCell::new(0));
    let (g, r2, n) = (Rc::clone(&got), r.clone(), Rc::clone(&readies));
    r.on_ready(move |lp| {
        *n.borrow_mut() += 1;
        let round = *n.borrow();
        let (g2, r3) = (Rc::clone(&g), r2.clone());
        r2.incr(lp, "visits", move |lp, res| {
            push(&g2, format!("ready {round}: incr {res:?}"));
            if round == 1 {
                let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
                use std::io::{BufRead, Write};
                s.write_all(b"AUTH s3cret\r\nCLIENT KILL TYPE normal\r\n")
                    .expect("write");
                let mut reader = std::io::BufReader::new(s);
                let mut line = String::new();
                reader.read_line(&mut line).expect("auth");
                line.clear();
                reader.read_line(&mut line).expect("kill");
                assert_eq!(line, ":1\r\n", "our client was killed");
            } else {
                r3.quit(lp, |_lp, _| {});
            }
        });
    });
    lp.run().expect("run");
    let got = got.borrow();
    assert!(
        got.iter()
            .any(|l| l.starts_with("bad: server error: WRONGPASS")),
        "{got:?}"
    );
    assert!(got.contains(&"ready 1: incr Ok(1)".to_string()), "{got:?}");
    assert!(got.contains(&"ready 2: incr Ok(2)".to_string()), "{got:?}");
    assert!(bad.is_ended());
    // Both INCRs went to db 3 of the password-protected server.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    use std::io::{BufRead, Write};
    s.write_all(b"AUTH s3cret\r\nSELECT 3\r\nGET visits\r\n")
        .expect("write");
    let mut reader = std::io::BufReader::new(s);
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut line = String::new();
        reader.read_line(&mut line).expect("line");
        lines.push(line);
    }
    assert_eq!(lines, ["+OK\r\n", "+OK\r\n", "$1\r\n", "2\r\n"]);
}

#[test]
fn a_stalled_server_backpressures_the_client_and_the_queue_bound_refuses_the_excess() {
    let server = RedisServer::start();
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 60);
    let opts = RedisOptions {
        max_queued_bytes: 1 << 20,
        ..RedisOptions::default()
    };
    let r = Redis::connect(&mut lp, &server.url(), opts).expect("url");
    let value = Rc::new(vec![b'v'; 256 * 1024]);
    let ok = Rc::new(RefCell::new(0u32));
    let full = Rc::new(RefCell::new(0u32));
    let server = Rc::new(server);
    // Once ready: stop the server (SIGSTOP), then issue 3 SETs of 256 KiB per loop turn (768
    // KiB: under the 1 MiB bound, so only an unflushed backlog can reach it) for 64 turns
    // (48 MiB: more than the kernel buffers hold), then let the server go on.
    fn turn(
        lp: &mut Loop,
        r: Redis,
        value: Rc<Vec<u8>>,
        ok: Rc<RefCell<u32>>,
        full: Rc<RefCell<u32>>,
        server: Rc<RedisServer>,
        left: u32,
    ) {
        if left == 0 {
            server.signal("CONT");
            let r2 = r.clone();
            r.cmd(lp, &["PING"], move |lp, res| {
                res.expect("PING after the backlog");
                r2.quit(lp, |_lp, _| {});
            });
            return;
        }
        for _ in 0..3 {
            let (ok, full) = (Rc::clone(&ok), Rc::clone(&full));
            r.set(
                lp,
                "big",
                &value[..],
                SetOptions::default(),
                move |_lp, res| match res {
                    Ok(true) => *ok.borrow_mut() += 1,
                    Err(RedisError::QueueFull { .. }) => *full.borrow_mut() += 1,
                    other => panic!("unexpected {other:?}"),
                },
            );
        }
        lp.set_immediate(move |lp| turn(lp, r, value, ok, full, server, left - 1));
    }
    let (r2, v, o, f, s) = (
        r.clone(),
        Rc::clone(&value),
        Rc::clone(&ok),
        Rc::clone(&full),
        Rc::clone(&server),
    );
    r.on_ready(move |lp| {
        s.signal("STOP");
        turn(
            lp,
            r2.clone(),
            Rc::clone(&v),
            Rc::clone(&o),
            Rc::clone(&f),
            Rc::clone(&s),
            64,
        );
    });
    lp.run().expect("run");
    let (ok, full) = (*ok.borrow(), *full.borrow());
    eprintln!("accepted {ok}, refused {full}, writes {}", r.stats().writes);
    assert_eq!(ok + full, 192);
    assert!(
        full > 0,
        "the bound refused some SETs while the server was stopped"
    );
    assert!(
        ok > 0,
        "what was accepted was written after drain: ok = {ok}"
    );
    assert!(r.stats().writes < 192, "writes: {}", r.stats().writes);
}

#[test]
fn a_unix_socket_url_connects_through_the_loops_pipes() {
    let dir = std::env::temp_dir().join(format!("oneloop-redis-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("redis.sock");
    let sock_arg = sock.to_str().expect("utf-8 path").to_string();
    let server = RedisServer::start_with(
        redis_common::free_port(),
        &["--unixsocket", &sock_arg, "--unixsocketperm", "700"],
    );
    let mut lp = Loop::new().expect("loop");
    watchdog(&mut lp, 20);
    let url = format!("unix://{sock_arg}?db=5");
    let r = Redis::connect(&mut lp, &url, RedisOptions::default()).expect("url");
    let got = log();
    let (g, r2) = (Rc::clone(&got), r.clone());
    r.set(
        &mut lp,
        "over-unix",
        "1",
        SetOptions::default(),
        |_lp, res| assert_eq!(res, Ok(true)),
    );
    r.cmd(&mut lp, &["CLIENT", "INFO"], move |lp, res| {
        let info = res.expect("CLIENT INFO");
        let text = String::from_utf8_lossy(info.as_bytes().expect("a string")).into_owned();
        push(
            &g,
            format!("unix: {}", text.contains(&format!("laddr={sock_arg}"))),
        );
        push(&g, format!("db: {}", text.contains(" db=5 ")));
        r2.quit(lp, |_lp, _| {});
    });
    lp.run().expect("run");
    assert_eq!(*got.borrow(), ["unix: true", "db: true"]);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
