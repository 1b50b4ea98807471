//! `examples/proxy.rs`, the real binary in front of the real `hello` binary: every answer comes
//! back through the HTTP client, and an upstream that is down or silent gives 502 or 504.

mod examples_common;
mod http_common;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use examples_common::{example_binary, start_and_read_line, Running};
use http_common::{Client, Resp};

const WAIT: Duration = Duration::from_secs(10);

/// The port in a "... listening on http://127.0.0.1:PORT ..." line.
fn port_in(line: &str) -> u16 {
    let after = line
        .split("http://127.0.0.1:")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a port")
}

fn start_hello() -> (Running, u16) {
    let mut cmd = Command::new(example_binary("hello"));
    cmd.env("PORT", "0").env("HOST", "127.0.0.1");
    let (hello, line) = start_and_read_line(cmd, WAIT);
    let port = port_in(&line);
    (hello, port)
}

fn start_proxy(upstream: u16, extra: &[&str]) -> (Running, SocketAddr) {
    let mut cmd = Command::new(example_binary("proxy"));
    cmd.env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("UPSTREAM", format!("127.0.0.1:{upstream}"))
        .args(extra);
    let (proxy, line) = start_and_read_line(cmd, WAIT);
    let addr = SocketAddr::from(([127, 0, 0, 1], port_in(&line)));
    (proxy, addr)
}

fn exchange(addr: SocketAddr, request: &str) -> Resp {
    let mut c = Client::connect(addr);
    c.send(request);
    c.read_response()
}

fn head_only(addr: SocketAddr, request: &str) -> Resp {
    let mut c = Client::connect(addr);
    c.send(request);
    c.read_response_opt(true).expect("a response head")
}

#[test]
fn the_proxy_forwards_requests_to_hello_and_its_answers_back() {
    let (_hello, hello_port) = start_hello();
    let (_proxy, proxy) = start_proxy(hello_port, &[]);

    let json = exchange(proxy, "GET /json?x=1 HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(json.status, 200);
    assert_eq!(json.body, br#"{"message":"Hello, World!"}"#);
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.header("content-length"), Some("27"));

    let body = "a body, byte for byte";
    let echo = exchange(
        proxy,
        &format!(
            "POST /echo HTTP/1.1\r\nHost: p\r\nContent-Type: text/x-test\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(echo.status, 200);
    assert_eq!(echo.body, body.as_bytes());
    assert_eq!(echo.header("content-type"), Some("text/x-test"));

    // A chunked request body arrives upstream whole (the client sends a Content-Length).
    let chunked = exchange(
        proxy,
        "POST /echo HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    assert_eq!(
        (chunked.status, chunked.body.as_slice()),
        (200, &b"abcde"[..])
    );

    // HEAD keeps the upstream's Content-Length and has no body.
    let head = head_only(proxy, "HEAD /plaintext HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("13"));

    let missing = exchange(proxy, "GET /nope HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(
        (missing.status, missing.body.as_slice()),
        (404, &b"Not Found"[..])
    );
}

#[test]
fn a_dead_upstream_gives_502_and_a_silent_one_504() {
    // Nothing listens on a port we bound and released.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_proxy, proxy) = start_proxy(dead, &[]);
    let r = exchange(proxy, "GET /json HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(r.status, 502, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("connect failed"));

    // Accepts, never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let (_proxy, proxy) = start_proxy(silent_port, &["--timeout-ms", "300"]);
    let r = exchange(proxy, "GET /json HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(r.status, 504, "{:?}", String::from_utf8_lossy(&r.body));
    drop(silent);
}
