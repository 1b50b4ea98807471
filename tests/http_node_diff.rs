//! Differential test against Node's own `http` server (tests/node/diff_server.js, same routes as
//! `http_common::route`): the same raw bytes go to both; the first response's status and whether
//! the connection is closed afterwards must match, except for the differences listed in
//! `EXPECTED_DIFFERENCES` with their reasons. Needs `node` (v20) on PATH.

mod http_common;

use std::net::SocketAddr;
use std::time::Duration;

use http_common::{spawn_server, Client};
use oneloop::http::ServerConfig;

/// What a server did with one request: the first final status (None: closed without one) and
/// whether the connection was closed afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    status: Option<u16>,
    closed: bool,
}

/// One side's expected outcome in `EXPECTED_DIFFERENCES`.
const fn out(status: u16, closed: bool) -> Outcome {
    Outcome {
        status: Some(status),
        closed,
    }
}

/// Cases where oneloop deliberately answers differently from Node 20, with the reason:
/// (case name, Node's outcome, ours, why). Every 4xx/5xx of ours closes the connection.
const EXPECTED_DIFFERENCES: &[(&str, Outcome, Outcome, &str)] = &[
    (
        "duplicate Host",
        out(200, false),
        out(400, true),
        "RFC 9112 §3.2: a request with more than one Host field must get 400 (Node fails h1spec \
         'Multiple Host headers' here)",
    ),
    (
        "invalid Host",
        out(200, false),
        out(400, true),
        "RFC 9112 §3.2: an invalid Host field value must get 400; Node does not validate Host",
    ),
    (
        "Host with userinfo",
        out(200, false),
        out(400, true),
        "RFC 9110 §7.2: Host is uri-host [':' port]; userinfo is not allowed",
    ),
    (
        "unknown method",
        out(400, true),
        out(501, true),
        "RFC 9110 §15.6.2: 501 is the status for a method the server does not recognize",
    ),
    (
        "lowercase method",
        out(400, true),
        out(501, true),
        "methods are case-sensitive tokens: `get` is a well-formed but unknown method (501)",
    ),
    (
        "HTTP/2.0",
        out(200, true),
        out(505, true),
        "RFC 9110 §15.6.6: 505 for an unsupported major version; llhttp parses HTTP/2.0 as a \
         1.x request and Node answers it",
    ),
    (
        "long request line",
        out(200, false),
        out(414, true),
        "we cap the request line at 8 KiB (414, RFC 9112 §3); Node only caps the whole head \
         at 16 KiB",
    ),
    (
        "same CL twice",
        out(400, true),
        out(200, false),
        "RFC 9110 §8.6 lets a recipient accept identical repeated Content-Length values (hyper \
         does); llhttp rejects any repeat",
    ),
    (
        "HTTP/1.0 keep-alive",
        out(200, true),
        out(200, false),
        "a 1.0 request with `Connection: keep-alive` gets a Content-Length response and the \
         connection stays open (RFC 9112 §C.2.2); Node 20 sends 1.0 bodies close-delimited and \
         closes",
    ),
];

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let r = |s: &str| s.as_bytes().to_vec();
    let long = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(9000));
    let big = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "b".repeat(17 * 1024)
    );
    vec![
        // Normal traffic.
        ("GET keep-alive", r("GET /n/1 HTTP/1.1\r\nHost: h\r\n\r\n")),
        ("GET Connection: close", r("GET /n/1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")),
        ("HTTP/1.0", r("GET /n/1 HTTP/1.0\r\n\r\n")),
        ("HTTP/1.0 keep-alive", r("GET /n/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")),
        ("HEAD", r("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")),
        ("response Connection: close", r("GET /close HTTP/1.1\r\nHost: h\r\n\r\n")),
        ("POST Content-Length", r("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")),
        ("POST chunked", r("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")),
        ("chunked response", r("GET /chunked HTTP/1.1\r\nHost: h\r\n\r\n")),
        ("absolute-form", r("GET http://h/n/1 HTTP/1.1\r\nHost: h\r\n\r\n")),
        ("204", r("GET /status/204 HTTP/1.1\r\nHost: h\r\n\r\n")),
        ("Expect 100-continue", r("POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc")),
        ("same CL twice", r("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na")),
        ("empty Host", r("GET / HTTP/1.1\r\nHost:\r\n\r\n")),
        // Rejections.
        ("bare LF", r("GET / HTTP/1.1\nHost: h\n\n")),
        ("obs-fold", r("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n")),
        ("space before colon", r("GET / HTTP/1.1\r\nHost : h\r\n\r\n")),
        ("invalid name char", r("GET / HTTP/1.1\r\nHost: h\r\nX(y): 1\r\n\r\n")),
        ("NUL in value", r("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n")),
        ("missing Host", r("GET / HTTP/1.1\r\n\r\n")),
        ("duplicate Host", r("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")),
        ("invalid Host", r("GET / HTTP/1.1\r\nHost: a b\r\n\r\n")),
        ("Host with userinfo", r("GET / HTTP/1.1\r\nHost: u@h\r\n\r\n")),
        ("CL negative", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n")),
        ("CL plus", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\na")),
        ("CL overflow", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n")),
        ("CL differing", r("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")),
        ("TE and CL", r("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n")),
        ("TE chunked, gzip", r("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")),
        ("bad chunk size", r("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n")),
        ("missing CRLF after chunk", r("POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n")),
        ("unknown method", r("FOO / HTTP/1.1\r\nHost: h\r\n\r\n")),
        ("lowercase method", r("get / HTTP/1.1\r\nHost: h\r\n\r\n")),
        ("HTTP/1.7", r("GET / HTTP/1.7\r\nHost: h\r\n\r\n")),
        ("HTTP/2.0", r("GET / HTTP/2.0\r\nHost: h\r\n\r\n")),
        ("garbage", r("\x01\x02 hello\r\n\r\n")),
        ("unsupported Expect", r("POST /echo HTTP/1.1\r\nHost: h\r\nExpect: foo\r\nContent-Length: 1\r\n\r\nx")),
        ("head over 16 KiB", big.into_bytes()),
        ("long request line", long.into_bytes()),
    ]
}

fn observe(addr: SocketAddr, bytes: &[u8]) -> Outcome {
    let mut c = Client::connect(addr);
    c.try_send(bytes);
    let head_only = bytes.starts_with(b"HEAD ");
    let mut status = None;
    while let Some(r) = c.read_response_opt(head_only) {
        if r.status >= 200 {
            status = Some(r.status);
            break;
        }
    }
    let closed = status.is_none() || !c.is_open_for(Duration::from_millis(300));
    Outcome { status, closed }
}

#[test]
fn oneloop_matches_node_except_for_the_listed_differences() {
    let node = http_common::start_node("node/diff_server.js");
    let node_addr = node.addr;
    let ours = spawn_server(ServerConfig::default(), false);
    let mut failures = Vec::new();
    let mut seen_differences = Vec::new();
    // Each case on its own threads (the keep-alive checks wait 300 ms each).
    let our_addr = ours.addr;
    let runs: Vec<_> = cases()
        .into_iter()
        .map(|(name, bytes)| {
            let b = bytes.clone();
            let node = std::thread::spawn(move || observe(node_addr, &b));
            let ours = std::thread::spawn(move || observe(our_addr, &bytes));
            (name, node, ours)
        })
        .collect();
    for (name, node, ours) in runs {
        let n = node.join().expect("node observation");
        let o = ours.join().expect("our observation");
        let expected = EXPECTED_DIFFERENCES.iter().find(|d| d.0 == name);
        match expected {
            Some(&(_, want_node, want_ours, _)) => {
                if n != want_node || o != want_ours {
                    failures.push(format!(
                        "{name}: expected difference node {want_node:?} / ours {want_ours:?}, \
                         got node {n:?} / ours {o:?}"
                    ));
                }
                seen_differences.push(name);
            }
            None if n != o => failures.push(format!("{name}: node {n:?} / ours {o:?}")),
            None => {}
        }
    }
    for d in EXPECTED_DIFFERENCES {
        assert!(
            seen_differences.contains(&d.0),
            "no case for listed difference {}",
            d.0
        );
    }
    assert!(
        failures.is_empty(),
        "unexpected differences from Node:\n{failures:#?}"
    );
}
