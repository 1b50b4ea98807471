//! The HTTP server over real loopback sockets: raw request bytes in, responses and connection
//! state out. Every parser rejection, keep-alive and close rules, pipelining, body framing split
//! at every byte, timeouts, backpressure, graceful close and upgrade.

mod http_common;

use std::io::Write;
use std::sync::OnceLock;
use std::time::Duration;

use http_common::{fast_config, spawn_server, timed, TestServer};
use oneloop::http::ServerConfig;

/// One server with small limits for the table (max 20 headers, 1 KiB bodies).
fn table_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        spawn_server(
            ServerConfig {
                max_headers_count: 20,
                max_body_size: Some(1024),
                ..ServerConfig::default()
            },
            true,
        )
    })
}

/// A default-config server shared by the tests that need no special settings.
fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| spawn_server(ServerConfig::default(), true))
}

const H: &str = "Host: h\r\n";

/// (name, request bytes, expected status, connection closed after)
fn rejection_table() -> Vec<(&'static str, Vec<u8>, u16)> {
    let long_target = format!("GET /{} HTTP/1.1\r\n{H}\r\n", "a".repeat(9000));
    let big_head = format!(
        "GET / HTTP/1.1\r\n{H}X-Big: {}\r\n\r\n",
        "b".repeat(17 * 1024)
    );
    let many_headers = {
        let mut s = format!("GET / HTTP/1.1\r\n{H}");
        for i in 0..30 {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s + "\r\n"
    };
    let r = |s: &str| s.as_bytes().to_vec();
    vec![
        ("bare LF", r("GET / HTTP/1.1\nHost: h\n\n"), 400),
        ("bare LF in a field", r("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n"), 400),
        ("bare CR", r("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"), 400),
        ("obs-fold", r("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"), 400),
        ("space before colon", r("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), 400),
        ("invalid name char", r("GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n"), 400),
        ("empty name", r("GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n"), 400),
        ("NUL in value", r("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"), 400),
        ("DEL in value", r("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n"), 400),
        ("missing Host", r("GET / HTTP/1.1\r\n\r\n"), 400),
        ("duplicate Host", r("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400),
        ("invalid Host", r("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400),
        ("Host with userinfo", r("GET / HTTP/1.1\r\nHost: u@h\r\n\r\n"), 400),
        ("CL with plus", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello"), 400),
        ("CL negative", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"), 400),
        ("CL with inner space", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n"), 400),
        ("CL overflow", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 400),
        ("CL not a number", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n"), 400),
        ("CL differing duplicates", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"), 400),
        ("CL differing list", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\nab"), 400),
        ("TE and CL", r("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"), 400),
        ("TE not ending in chunked", r("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400),
        ("TE gzip only", r("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"), 400),
        ("TE gzip, chunked", r("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), 501),
        ("TE chunked twice", r("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400),
        ("chunked on HTTP/1.0", r("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400),
        ("bad chunk size", r("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"), 400),
        ("chunk size with space", r("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n0\r\n\r\n"), 400),
        ("chunk size overflow", r("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nab\r\n0\r\n\r\n"), 400),
        ("bad chunk extension", r("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\"x\r\nab\r\n0\r\n\r\n"), 400),
        ("missing CRLF after chunk data", r("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n"), 400),
        ("chunked body over max_body_size", {
            let mut v = r("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n");
            v.extend(vec![b'x'; 2048]);
            v.extend(b"\r\n0\r\n\r\n");
            v
        }, 413),
        ("unknown method", r("FOO / HTTP/1.1\r\nHost: h\r\n\r\n"), 501),
        ("lowercase method", r("get / HTTP/1.1\r\nHost: h\r\n\r\n"), 501),
        ("HTTP/2.0", r("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505),
        ("HTTP/1.7", r("GET / HTTP/1.7\r\nHost: h\r\n\r\n"), 400),
        ("garbage version", r("GET / FOO/1.1\r\nHost: h\r\n\r\n"), 400),
        ("garbage", r("\x01\x02\x03 hello\r\n\r\n"), 400),
        ("missing target", r("GET HTTP/1.1\r\nHost: h\r\n\r\n"), 400),
        ("long request line", long_target.into_bytes(), 414),
        ("head over 16 KiB", big_head.into_bytes(), 431),
        ("too many headers", many_headers.into_bytes(), 431),
        ("CL over max_body_size", r("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2000\r\n\r\n"), 413),
    ]
}

#[test]
fn every_rejection_answers_its_status_with_date_and_close_then_closes() {
    let srv = table_server();
    let mut failures = Vec::new();
    for (name, bytes, status) in rejection_table() {
        let mut c = srv.connect();
        c.try_send(&bytes);
        let Some(resp) = c.read_response_opt(false) else {
            failures.push(format!("{name}: closed without a response"));
            continue;
        };
        if resp.status != status {
            failures.push(format!("{name}: status {} (want {status})", resp.status));
        }
        if resp.header("date").is_none() {
            failures.push(format!("{name}: no Date"));
        }
        if !resp.closes() {
            failures.push(format!("{name}: no Connection: close"));
        }
        if !c.is_closed() {
            failures.push(format!("{name}: connection left open"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn nothing_after_a_framing_error_is_answered() {
    let srv = table_server();
    for (name, bytes, status) in rejection_table() {
        let mut c = srv.connect();
        let mut all = bytes.clone();
        all.extend_from_slice(b"GET /n/2 HTTP/1.1\r\nHost: h\r\n\r\n");
        c.try_send(&all);
        let resp = c.read_response();
        assert_eq!(resp.status, status, "{name}");
        assert!(
            c.is_closed(),
            "{name}: a second response or an open connection"
        );
    }
}

#[test]
fn rejection_split_byte_by_byte_gives_the_same_status() {
    let srv = table_server();
    for (name, bytes, status) in rejection_table() {
        if bytes.len() > 300 {
            continue;
        }
        let mut c = srv.connect();
        for b in &bytes {
            if !c.try_send([*b]) {
                break;
            }
        }
        let resp = c.read_response();
        assert_eq!(resp.status, status, "{name}");
        assert!(c.is_closed(), "{name}");
    }
}

#[test]
fn accepted_forms_answer_200() {
    let srv = table_server();
    let cases: &[(&str, &str)] = &[
        ("absolute-form", "GET http://h/n/abs?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("empty lines before request", "\r\n\r\nGET /n/x HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("same CL twice", "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab"),
        ("HTTP/1.0 without Host", "GET /n/x HTTP/1.0\r\n\r\n"),
        ("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
        ("tab in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\tb\r\n\r\n"),
        ("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
        ("chunk extension", "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b;c=\"d\"\r\nab\r\n0\r\nX-Tr: 1\r\n\r\n"),
        ("Expect on 1.0 ignored", "POST /echo HTTP/1.0\r\nExpect: foo\r\nContent-Length: 1\r\n\r\nx"),
    ];
    for (name, req) in cases {
        let mut c = srv.connect();
        c.send(req);
        let resp = c.read_response();
        assert_eq!(resp.status, 200, "{name}");
    }
    let mut c = srv.connect();
    c.send("GET http://h/n/abs?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(c.read_response().body, b"abs");
}

#[test]
fn unsupported_transfer_coding_gets_501() {
    // RFC 9112 §6.1: the handler must never see gzip-coded bytes as the body.
    for te in ["gzip, chunked", "deflate,chunked", "x-custom ;q=1, chunked"] {
        let mut c = server().connect();
        c.send(format!(
            "POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: {te}\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        ));
        let r = c.read_response();
        assert_eq!(r.status, 501, "{te}");
        assert!(r.closes(), "{te}");
        assert!(c.is_closed(), "{te}");
    }
    // The split form is the same list (RFC 9110 §5.3).
    let mut c = server().connect();
    c.send(format!(
        "POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ));
    assert_eq!(c.read_response().status, 501);
}

#[test]
fn expect_100_continue_gets_interim_response_before_the_final_one() {
    let mut c = server().connect();
    c.send("POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let interim = c.read_response();
    assert_eq!(interim.status, 100);
    c.send("hello");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"hello");
    assert!(!resp.closes());
}

#[test]
fn declared_length_over_limit_gets_413_before_body_is_read() {
    // /echo collects up to 1 MiB; 100 MiB are declared and none sent.
    let mut c = server().connect();
    let (resp, took) = timed(|| {
        c.send(format!(
            "POST /echo HTTP/1.1\r\n{H}Content-Length: {}\r\n\r\n",
            100 << 20
        ));
        c.read_response()
    });
    assert_eq!(resp.status, 413);
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The rest is more than the server would discard: the connection closes.
    assert!(resp.closes());
    assert!(c.is_closed());
    // A small excess is discarded and the connection kept (the drain rule).
    let mut c = server().connect();
    let body = vec![b'x'; (1 << 20) + 1];
    c.send(format!(
        "POST /echo HTTP/1.1\r\n{H}Content-Length: {}\r\n\r\n",
        body.len()
    ));
    assert_eq!(c.read_response().status, 413);
}

#[test]
fn expect_continue_over_limit_gets_413_not_100() {
    let mut c = server().connect();
    c.send(format!(
        "POST /echo HTTP/1.1\r\n{H}Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        100 << 20
    ));
    let resp = c.read_response();
    assert_eq!(resp.status, 413, "the final status instead of 100 Continue");
    assert!(resp.closes(), "the body may never come: last response");
    assert!(c.is_closed());
    // A handler that answers without reading the body sends no 100 either.
    let mut c = server().connect();
    c.send(format!(
        "POST /n/1 HTTP/1.1\r\n{H}Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    ));
    let resp = c.read_response();
    assert_eq!((resp.status, &resp.body[..]), (200, &b"1"[..]));
    assert!(resp.closes());
}

/// Waits (up to 5 s) until the server holds `n` collected body bytes.
fn wait_buffered(srv: &TestServer, n: u64) -> u64 {
    let t = std::time::Instant::now();
    loop {
        let got = srv.run(|_lp, s| s.buffered_body_bytes());
        if got == n || t.elapsed() > Duration::from_secs(5) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn bodies_past_the_server_budget_get_503_and_the_budget_is_released() {
    const K: usize = 1024;
    let srv = spawn_server(
        ServerConfig {
            max_buffered_body_bytes: Some(1 << 20),
            ..ServerConfig::default()
        },
        false,
    );
    let post = |len: usize| format!("POST /echo HTTP/1.1\r\n{H}Content-Length: {len}\r\n\r\n");
    // A stalls after 800 KiB of 900: held against the 1 MiB budget.
    let mut a = srv.connect();
    a.send(post(900 * K));
    a.send(vec![b'a'; 800 * K]);
    assert_eq!(wait_buffered(&srv, (800 * K) as u64), (800 * K) as u64);
    // B declares more than is left: 503 before its body is read.
    let mut b = srv.connect();
    b.send(post(300 * K));
    let r = b.read_response();
    assert_eq!(r.status, 503);
    // C is chunked (no declared length): refused once it outgrows what is left.
    let mut c = srv.connect();
    c.send(format!(
        "POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n"
    ));
    for _ in 0..4 {
        if !c.try_send(format!("{:x}\r\n{}\r\n", 100 * K, "c".repeat(100 * K))) {
            break;
        }
    }
    assert_eq!(c.read_response().status, 503);
    assert!(c.is_closed());
    assert_eq!(wait_buffered(&srv, (800 * K) as u64), (800 * K) as u64);
    // A completes: echoed, and its bytes go back to the budget.
    a.send(vec![b'a'; 100 * K]);
    let r = a.read_response();
    assert_eq!((r.status, r.body.len()), (200, 900 * K));
    assert_eq!(wait_buffered(&srv, 0), 0);
    // A stalled upload whose connection closes gives its bytes back too.
    let mut d = srv.connect();
    d.send(post(900 * K));
    d.send(vec![b'd'; 500 * K]);
    assert_eq!(wait_buffered(&srv, (500 * K) as u64), (500 * K) as u64);
    drop(d);
    assert_eq!(wait_buffered(&srv, 0), 0);
    let mut e = srv.connect();
    e.send(post(900 * K));
    e.send(vec![b'e'; 900 * K]);
    assert_eq!(e.read_response().status, 200);
}

#[test]
fn unsupported_expect_gets_417_and_the_connection_stays_usable() {
    let mut c = server().connect();
    c.send(format!(
        "POST /echo HTTP/1.1\r\n{H}Expect: something\r\nContent-Length: 1\r\n\r\nxGET /n/2 HTTP/1.1\r\n{H}\r\n"
    ));
    let r = c.read_response();
    assert_eq!(r.status, 417);
    assert!(r.header("date").is_some());
    assert_eq!(c.read_response().body, b"2");
}

#[test]
fn keep_alive_is_the_default_on_1_1() {
    let mut c = server().connect();
    for i in 0..3 {
        c.send(format!("GET /n/{i} HTTP/1.1\r\n{H}\r\n"));
        let r = c.read_response();
        assert_eq!(r.body, i.to_string().as_bytes());
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert_eq!(r.header("keep-alive"), Some("timeout=5"));
        assert!(r.header("date").is_some());
    }
    assert!(c.is_open_for(Duration::from_millis(100)));
}

#[test]
fn http_1_0_closes_unless_it_asks_for_keep_alive() {
    let mut c = server().connect();
    c.send("GET /n/a HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert!(r.closes());
    assert!(c.is_closed());

    let mut c = server().connect();
    for _ in 0..2 {
        c.send("GET /n/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.header("connection"), Some("keep-alive"));
        assert_eq!(r.body, b"a");
    }
    // A streamed body on 1.0 is close-delimited.
    c.send("GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response();
    assert!(r.closes());
    assert_eq!(r.body, b"abc");
}

#[test]
fn connection_close_is_honoured_both_ways() {
    let mut c = server().connect();
    c.send(format!("GET / HTTP/1.1\r\n{H}Connection: close\r\n\r\n"));
    assert!(c.read_response().closes());
    assert!(c.is_closed());

    let mut c = server().connect();
    c.send(format!("GET /close HTTP/1.1\r\n{H}\r\n"));
    let r = c.read_response();
    assert!(r.closes());
    assert_eq!(r.body, b"bye");
    assert!(c.is_closed());
}

#[test]
fn hundred_pipelined_requests_are_answered_in_order() {
    let mut c = server().connect();
    let mut all = String::new();
    for i in 0..100 {
        all.push_str(&format!("GET /n/{i} HTTP/1.1\r\n{H}\r\n"));
    }
    c.send(all);
    for i in 0..100 {
        assert_eq!(c.read_response().body, i.to_string().as_bytes());
    }
    assert!(c.is_open_for(Duration::from_millis(50)));
}

/// Repeated heads are copied from the server's head cache: every change of status, body
/// length or keep-alive must still give its own head (and the same request the same one).
#[test]
fn pipelined_heads_follow_status_length_and_keep_alive() {
    let mut c = server().connect();
    let requests = [
        ("/n/ab", 200, "ab"),
        ("/n/ab", 200, "ab"),
        ("/status/404", 404, "x"),
        ("/n/ab", 200, "ab"),
        ("/n/abc", 200, "abc"),
        ("/status/204", 204, ""),
        ("/n/abc", 200, "abc"),
    ];
    let mut all = String::new();
    for (path, _, _) in requests {
        all.push_str(&format!("GET {path} HTTP/1.1\r\n{H}\r\n"));
    }
    all.push_str(&format!(
        "GET /n/abc HTTP/1.1\r\n{H}Connection: close\r\n\r\n"
    ));
    c.send(all);
    for (path, status, body) in requests {
        let r = c.read_response();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (status, body.as_bytes()),
            "{path}"
        );
        let len = (status != 204).then(|| body.len().to_string());
        assert_eq!(r.header("content-length"), len.as_deref(), "{path}");
        assert!(r.header("date").is_some(), "{path}");
        assert!(!r.closes(), "{path}");
    }
    let last = c.read_response();
    assert_eq!(last.body, b"abc");
    assert!(
        last.closes(),
        "the last response says close: {:?}",
        last.headers
    );
    assert!(last.header("keep-alive").is_none());
    assert!(c.is_closed());
}

#[test]
fn a_slow_pipelined_response_still_comes_before_the_next() {
    let mut c = server().connect();
    c.send(format!(
        "GET /slow/1 HTTP/1.1\r\n{H}\r\nGET /n/2 HTTP/1.1\r\n{H}\r\nGET /slow/3 HTTP/1.1\r\n{H}\r\nGET /n/4 HTTP/1.1\r\n{H}\r\n"
    ));
    for want in ["1", "2", "3", "4"] {
        assert_eq!(c.read_response().body, want.as_bytes());
    }
}

#[test]
fn pipelined_requests_after_a_half_close_are_all_answered() {
    let mut c = server().connect();
    c.send(format!(
        "GET /slow/1 HTTP/1.1\r\n{H}\r\nGET /n/2 HTTP/1.1\r\n{H}\r\n"
    ));
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.read_response().body, b"1");
    assert_eq!(c.read_response().body, b"2");
    assert!(c.is_closed());
}

fn split_everywhere(req: &[u8], want: &[u8]) {
    let srv = server();
    let mut c = srv.connect();
    for cut in 1..req.len() {
        c.send(&req[..cut]);
        std::thread::sleep(Duration::from_micros(200));
        c.send(&req[cut..]);
        let r = c.read_response();
        assert_eq!(r.status, 200, "cut at {cut}");
        assert_eq!(r.body, want, "cut at {cut}");
    }
}

#[test]
fn content_length_body_split_at_every_byte_echoes_intact() {
    split_everywhere(
        b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
        b"hello world",
    );
}

#[test]
fn chunked_body_split_at_every_byte_echoes_intact() {
    split_everywhere(
        b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: v\r\n\r\n",
        b"hello world",
    );
}

#[test]
fn thousand_sequential_keep_alive_requests_are_fast() {
    let mut c = server().connect();
    let ((), took) = timed(|| {
        for i in 0..1000 {
            c.send(format!("GET /n/{i} HTTP/1.1\r\n{H}\r\n"));
            assert_eq!(c.read_response().body, i.to_string().as_bytes());
        }
    });
    assert!(took < Duration::from_secs(5), "1000 requests took {took:?}");
    // Also with bodies (two writes per request: head, then body).
    let ((), took) = timed(|| {
        for _ in 0..300 {
            c.send(format!(
                "POST /echo HTTP/1.1\r\n{H}Content-Length: 3\r\n\r\n"
            ));
            c.send("abc");
            assert_eq!(c.read_response().body, b"abc");
        }
    });
    assert!(took < Duration::from_secs(5), "300 POSTs took {took:?}");
}

#[test]
fn head_204_and_304_carry_no_body() {
    let mut c = server().connect();
    c.send(format!("HEAD / HTTP/1.1\r\n{H}\r\n"));
    let r = c.read_response_opt(true).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("13"));
    c.send(format!("HEAD /chunked HTTP/1.1\r\n{H}\r\n"));
    let r = c.read_response_opt(true).unwrap();
    assert_eq!(r.status, 200);
    for code in [204, 304] {
        c.send(format!("GET /status/{code} HTTP/1.1\r\n{H}\r\n"));
        let r = c.read_response();
        assert_eq!(r.status, code);
        assert!(r.header("content-length").is_none(), "{code}");
        assert!(r.header("transfer-encoding").is_none(), "{code}");
    }
    // Nothing stray arrived: the next response parses cleanly.
    c.send(format!("GET /n/ok HTTP/1.1\r\n{H}\r\n"));
    assert_eq!(c.read_response().body, b"ok");
}

#[test]
fn write_before_end_streams_chunked_with_trailers() {
    let mut c = server().connect();
    c.send(format!("GET /chunked HTTP/1.1\r\n{H}\r\n"));
    let r = c.read_response();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, b"abc");
    assert_eq!(r.trailers, vec![("x-t".to_owned(), "1".to_owned())]);
    assert!(!r.closes());
}

#[test]
fn a_streamed_response_honouring_backpressure_completes() {
    let mut c = server().connect();
    c.send(format!("GET /stream/300 HTTP/1.1\r\n{H}\r\n"));
    let r = c.read_response();
    assert_eq!(r.body.len(), 300 * 16 * 1024);
    // And again with a client that reads late, so the socket itself backs up.
    c.send(format!("GET /stream/300 HTTP/1.1\r\n{H}\r\n"));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.read_response().body.len(), 300 * 16 * 1024);
}

fn timeout_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        spawn_server(
            ServerConfig {
                headers_timeout_ms: 200,
                request_timeout_ms: 400,
                keep_alive_timeout_ms: 300,
                send_timeout_ms: 500,
                ..fast_config()
            },
            false,
        )
    })
}

#[test]
fn headers_timeout_answers_408() {
    let mut c = timeout_server().connect();
    c.send("GET / HTTP/1.1\r\nHost: h\r\n");
    let (r, took) = timed(|| c.read_response());
    assert_eq!(r.status, 408);
    assert!(r.closes());
    assert!(c.is_closed());
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn headers_timeout_applies_to_a_pipelined_partial_head() {
    let mut c = timeout_server().connect();
    c.send("GET /n/1 HTTP/1.1\r\nHost: h\r\n\r\nGET /n/2 HTTP/1.1\r\n");
    assert_eq!(c.read_response().body, b"1");
    let r = c.read_response();
    assert_eq!(r.status, 408);
    assert!(c.is_closed());
}

#[test]
fn request_timeout_answers_408_when_the_body_stalls() {
    let mut c = timeout_server().connect();
    c.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    let r = c.read_response();
    assert_eq!(r.status, 408);
    assert!(c.is_closed());
}

#[test]
fn a_dripping_client_is_cut_off_by_the_headers_timeout() {
    let mut c = timeout_server().connect();
    let req = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let ((), took) = timed(|| {
        for b in req.iter() {
            if !c.try_send([*b]) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let r = c.read_response();
    assert_eq!(r.status, 408, "after {took:?}");
    assert!(c.is_closed());
}

#[test]
fn keep_alive_idle_timeout_closes() {
    let mut c = timeout_server().connect();
    c.send(format!("GET / HTTP/1.1\r\n{H}\r\n"));
    let r = c.read_response();
    assert_eq!(r.header("keep-alive"), Some("timeout=0"));
    let (closed, took) = timed(|| c.is_closed());
    assert!(closed);
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn a_silent_connection_is_closed_after_the_headers_timeout() {
    let mut c = timeout_server().connect();
    assert!(c.is_closed());
}

/// Resident memory of this process in KiB (Linux), 0 elsewhere.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn a_client_that_never_reads_is_paused_then_closed_after_send_timeout() {
    let srv = timeout_server();
    let rss_before = rss_kib();
    let mut stuck = srv.connect();
    stuck
        .stream
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // Pipelined requests for 64 KiB each, until the server stops reading: without
    // backpressure 1 MiB of these requests would ask for 1.7 GB of responses.
    let one = format!("GET /big/65536 HTTP/1.1\r\n{H}\r\n");
    let batch = one.repeat(64 * 1024 / one.len());
    let mut sent = 0usize;
    let mut blocked = false;
    while sent < 16 << 20 {
        match stuck.stream.write(batch.as_bytes()) {
            Ok(n) => sent += n,
            Err(_) => {
                blocked = true;
                break;
            }
        }
    }
    assert!(
        blocked,
        "the server kept reading: {sent} bytes of requests accepted"
    );
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB for a client that never reads"
    );
    // Meanwhile another client is served.
    let mut other = srv.connect();
    other.send(format!("GET /n/x HTTP/1.1\r\n{H}\r\n"));
    assert_eq!(other.read_response().body, b"x");
    drop(other);
    // The stuck connection is closed after send_timeout (500 ms) without progress.
    assert_eq!(srv.wait_connections(0), 0);
    assert!(stuck.read_to_close().len() < 64 << 20);
}

#[test]
fn graceful_close_closes_idle_at_once_and_lets_in_flight_finish() {
    let srv = spawn_server(fast_config(), false);
    let mut idle = srv.connect();
    idle.send(format!("GET / HTTP/1.1\r\n{H}\r\n"));
    idle.read_response();
    let mut busy = srv.connect();
    busy.send(format!("GET /slow/7 HTTP/1.1\r\n{H}\r\n"));
    std::thread::sleep(Duration::from_millis(10));
    let (tx, rx) = std::sync::mpsc::channel();
    srv.run(move |lp, s| {
        s.close(lp, move |_lp| {
            let _ = tx.send(());
        })
    });
    assert!(idle.is_closed());
    let r = busy.read_response();
    assert_eq!(r.body, b"7");
    assert!(r.closes(), "in-flight response must say Connection: close");
    assert!(busy.is_closed());
    // The busy client keeps its socket open: the server lingers (at most 1 s) for its FIN.
    rx.recv_timeout(Duration::from_secs(3))
        .expect("close callback");
    assert!(std::net::TcpStream::connect_timeout(&srv.addr, Duration::from_secs(1)).is_err());
}

#[test]
fn close_all_connections_closes_in_flight_too() {
    let srv = spawn_server(fast_config(), false);
    let mut busy = srv.connect();
    busy.send(format!("GET /slow/7 HTTP/1.1\r\n{H}\r\n"));
    let mut idle = srv.connect();
    idle.send(format!("GET / HTTP/1.1\r\n{H}\r\n"));
    idle.read_response();
    srv.run(|lp, s| s.close_all_connections(lp));
    assert!(busy.is_closed());
    assert!(idle.is_closed());
    assert_eq!(srv.wait_connections(0), 0);
}

#[test]
fn max_requests_per_socket_closes_after_the_last() {
    let srv = spawn_server(
        ServerConfig {
            max_requests_per_socket: 3,
            ..ServerConfig::default()
        },
        false,
    );
    let mut c = srv.connect();
    for i in 1..=3 {
        c.send(format!("GET /n/{i} HTTP/1.1\r\n{H}\r\n"));
        let r = c.read_response();
        if i < 3 {
            assert_eq!(r.header("keep-alive"), Some("timeout=5, max=3"));
        } else {
            assert!(r.closes());
        }
    }
    assert!(c.is_closed());
}

#[test]
fn upgrade_hands_over_the_socket_and_the_bytes_after_the_head() {
    let mut c = server().connect();
    c.send(format!(
        "GET /ws HTTP/1.1\r\n{H}Connection: Upgrade\r\nUpgrade: echo\r\n\r\nearly-bytes"
    ));
    let r = c.read_response_opt(true).unwrap();
    assert_eq!(r.status, 101);
    assert_eq!(c.read_n(11), b"early-bytes");
    c.send("later");
    assert_eq!(c.read_n(5), b"later");
}

#[test]
fn an_upgrade_offer_without_a_handler_is_served_as_http() {
    // RFC 9110 §7.8: a server may ignore Upgrade (`curl --http2` offers h2c this way).
    let srv = spawn_server(ServerConfig::default(), false);
    let mut c = srv.connect();
    c.send(format!(
        "GET / HTTP/1.1\r\n{H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
    ));
    let r = c.read_response();
    assert_eq!((r.status, &r.body[..]), (200, &b"Hello, World!"[..]));
    assert!(!r.closes());
    // The connection stays an HTTP/1.1 keep-alive connection.
    c.send(format!("GET /n/2 HTTP/1.1\r\n{H}\r\n"));
    assert_eq!(c.read_response().body, b"2");
}

#[test]
fn upgrades_refused_by_should_upgrade_are_served_as_http() {
    let srv = spawn_server(ServerConfig::default(), true);
    srv.run(|_lp, s| s.should_upgrade(|head| head.header("upgrade") == Some(&b"echo"[..])));
    let mut c = srv.connect();
    c.send(format!(
        "POST /echo HTTP/1.1\r\n{H}Connection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabc"
    ));
    let r = c.read_response();
    assert_eq!((r.status, &r.body[..]), (200, &b"abc"[..]));
    c.send(format!(
        "GET /ws HTTP/1.1\r\n{H}Connection: Upgrade\r\nUpgrade: echo\r\n\r\n"
    ));
    assert_eq!(c.read_response_opt(true).unwrap().status, 101);
}

#[test]
fn connect_without_a_handler_closes() {
    let srv = spawn_server(ServerConfig::default(), false);
    let mut c = srv.connect();
    c.send("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
    assert!(c.is_closed());
}

#[test]
fn pipelined_responses_before_an_upgrade_are_sent() {
    let mut c = server().connect();
    c.send(format!(
        "GET /n/1 HTTP/1.1\r\n{H}\r\nGET /ws HTTP/1.1\r\n{H}Connection: Upgrade\r\nUpgrade: echo\r\n\r\n"
    ));
    assert_eq!(c.read_response().body, b"1");
    assert_eq!(c.read_response_opt(true).unwrap().status, 101);
}

#[test]
fn a_large_response_to_a_half_closed_client_is_sent_whole() {
    let mut c = server().connect();
    c.send(format!("GET /big/4000000 HTTP/1.1\r\n{H}\r\n"));
    c.stream.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let r = c.read_response();
    assert_eq!(r.body.len(), 4_000_000);
}

#[test]
fn a_bad_chunk_after_a_finished_response_still_delivers_the_response() {
    // /n/ answers at once without reading the body; the body is then drained and found bad.
    let mut c = server().connect();
    c.send(format!(
        "POST /n/ok HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nzz\r\n"
    ));
    let r = c.read_response();
    assert_eq!(r.body, b"ok");
    assert!(c.is_closed());
}

#[test]
fn body_discarded_when_the_handler_ignores_it() {
    let mut c = server().connect();
    c.send(format!(
        "POST /n/1 HTTP/1.1\r\n{H}Content-Length: 5\r\n\r\nhelloGET /n/2 HTTP/1.1\r\n{H}\r\n"
    ));
    assert_eq!(c.read_response().body, b"1");
    assert_eq!(c.read_response().body, b"2");
    let mut c = server().connect();
    c.send(format!(
        "POST /n/1 HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /n/2 HTTP/1.1\r\n{H}\r\n"
    ));
    assert_eq!(c.read_response().body, b"1");
    assert_eq!(c.read_response().body, b"2");
    c.stream.flush().unwrap();
}
