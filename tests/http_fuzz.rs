//! Property test over a real socket: mutated and random request bytes, sent in two writes
//! split at a random point, then a half-close. Whatever the bytes, the server must not panic,
//! must keep serving other clients, must never answer after a response that said
//! `Connection: close`, and must close every 400 it sends.

mod http_common;

use std::sync::OnceLock;
use std::time::Duration;

use http_common::{spawn_server, Client, TestServer};
use oneloop::http::ServerConfig;
use proptest::prelude::*;

fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        spawn_server(
            ServerConfig {
                max_body_size: Some(4096),
                headers_timeout_ms: 2_000,
                request_timeout_ms: 2_000,
                check_interval_ms: 50,
                ..ServerConfig::default()
            },
            false,
        )
    })
}

const SEEDS: &[&[u8]] = &[
    b"GET /n/1 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /n/1 HTTP/1.1\r\nHost: h\r\n\r\nGET /n/2 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    b"GET /n/3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab",
    b"GET /chunked HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
];

/// Bytes that matter to an HTTP parser, to make mutations interesting.
const SPECIAL: &[u8] = b"\r\n :\t\0;,\"0123456789abcdefxX-/?#%\x7f\xff";

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = (0..SPECIAL.len()).prop_map(|i| SPECIAL[i]);
    let byte = prop_oneof![special, any::<u8>()];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), byte).prop_map(|(p, b)| Mutation::Insert(p, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), 1..20usize).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
    ]
}

fn apply(seed: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for m in muts {
        if v.is_empty() {
            break;
        }
        match *m {
            Mutation::Flip(p, b) => {
                let p = p % v.len();
                v[p] = b;
            }
            Mutation::Insert(p, b) => {
                let p = p % (v.len() + 1);
                v.insert(p, b);
            }
            Mutation::Delete(p) => {
                let p = p % v.len();
                v.remove(p);
            }
            Mutation::Duplicate(p, n) => {
                let p = p % v.len();
                let end = (p + n).min(v.len());
                let piece = v[p..end].to_vec();
                v.splice(p..p, piece);
            }
        }
    }
    v
}

fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => ((0..SEEDS.len()), prop::collection::vec(mutation(), 1..6))
            .prop_map(|(s, m)| apply(SEEDS[s], &m)),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

/// Sends `bytes` (split at `split`), half-closes, and checks every response that comes back.
fn check_connection(bytes: &[u8], split: usize) -> Result<(), TestCaseError> {
    let mut c = Client::connect(server().addr);
    let split = split % (bytes.len() + 1);
    let ok = c.try_send(&bytes[..split]);
    if ok && split < bytes.len() {
        std::thread::sleep(Duration::from_millis(1));
        c.try_send(&bytes[split..]);
    }
    let _ = c.stream.shutdown(std::net::Shutdown::Write);
    let started = std::time::Instant::now();
    let mut closed_by_server = false;
    while let Some(r) = read_response_lenient(&mut c) {
        prop_assert!(
            !closed_by_server,
            "a response followed one that said Connection: close: {r:?}"
        );
        if r.status == 400 {
            prop_assert!(r.closes(), "400 without Connection: close");
        }
        if r.closes() {
            closed_by_server = true;
        }
    }
    // After the half-close the server answers what is complete and closes: it never waits
    // for a timeout (the client's 5 s read timeout would show up here).
    let took = started.elapsed();
    prop_assert!(
        took < Duration::from_secs(3),
        "the connection took {took:?} to end"
    );
    Ok(())
}

/// A response, or None once the connection is closed (a reset counts as closed).
fn read_response_lenient(c: &mut Client) -> Option<http_common::Resp> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.read_response_opt(false)))
        .unwrap_or(None)
}

/// The server still answers a well-formed request on a new connection.
fn still_serving() -> Result<(), TestCaseError> {
    let mut c = Client::connect(server().addr);
    c.send("GET /n/alive HTTP/1.1\r\nHost: h\r\n\r\n");
    let r = c.read_response();
    prop_assert_eq!(r.body, b"alive".to_vec());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn mutated_requests_never_break_the_server(bytes in request_bytes(), split in any::<usize>()) {
        check_connection(&bytes, split)?;
        still_serving()?;
    }
}
