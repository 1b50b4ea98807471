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
    start_proxy_to(&format!("127.0.0.1:{upstream}"), extra)
}

/// The proxy forwarding to `upstream` (`host:port`, the host an IP literal or a name).
fn start_proxy_to(upstream: &str, extra: &[&str]) -> (Running, SocketAddr) {
    let mut cmd = Command::new(example_binary("proxy"));
    cmd.env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("UPSTREAM", upstream)
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
    forwards_to_hello(&[]);
}

/// The same exchanges through the async/await version of the proxy (`--async`).
#[test]
fn the_async_proxy_forwards_requests_to_hello_and_its_answers_back() {
    forwards_to_hello(&["--async"]);
}

fn forwards_to_hello(mode: &[&str]) {
    let (_hello, hello_port) = start_hello();
    let (_proxy, proxy) = start_proxy(hello_port, mode);

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
fn an_upstream_named_by_host_name_is_resolved_and_an_unknown_one_gives_502() {
    let (_hello, hello_port) = start_hello();
    let (_proxy, proxy) = start_proxy_to(&format!("localhost:{hello_port}"), &[]);
    let json = exchange(proxy, "GET /json HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(json.status, 200);
    assert_eq!(json.body, br#"{"message":"Hello, World!"}"#);

    let (_proxy, proxy) = start_proxy_to("nosuch.invalid:80", &[]);
    let r = exchange(proxy, "GET /json HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(r.status, 502, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(
        String::from_utf8_lossy(&r.body).contains("getaddrinfo ENOTFOUND nosuch.invalid"),
        "{:?}",
        String::from_utf8_lossy(&r.body)
    );
}

#[test]
fn a_dead_upstream_gives_502_and_a_silent_one_504() {
    dead_and_silent_upstreams(&[]);
}

#[test]
fn the_async_proxy_gives_502_for_a_dead_upstream_and_504_for_a_silent_one() {
    dead_and_silent_upstreams(&["--async"]);
}

fn dead_and_silent_upstreams(mode: &[&str]) {
    // Nothing listens on a port we bound and released.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_proxy, proxy) = start_proxy(dead, mode);
    let r = exchange(proxy, "GET /json HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(r.status, 502, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("connect failed"));

    // Accepts, never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let args: Vec<&str> = mode
        .iter()
        .copied()
        .chain(["--timeout-ms", "300"])
        .collect();
    let (_proxy, proxy) = start_proxy(silent_port, &args);
    let r = exchange(proxy, "GET /json HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(r.status, 504, "{:?}", String::from_utf8_lossy(&r.body));
    drop(silent);
}

/// A raw upstream on its own threads: `respond` gets each request head and returns the
/// response bytes, or `None` to hang (hold the connection, answer nothing). Every head it
/// receives goes to the returned channel.
fn raw_upstream(
    respond: fn(&str) -> Option<&'static str>,
) -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                // Bounded: a hanging connection ends after 15 s at most.
                let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
                    buf.drain(..end + 4);
                    let _ = tx.send(head.clone());
                    match respond(&head) {
                        Some(answer) => {
                            if s.write_all(answer.as_bytes()).is_err() {
                                return;
                            }
                        }
                        None => {
                            let _ = s.read(&mut chunk); // hang until EOF or the timeout
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, rx)
}

#[test]
fn proxy_drops_content_length_when_upstream_sends_chunked_and_length() {
    let (port, _heads) = raw_upstream(|_head| {
        Some(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n\
             5\r\nhello\r\n0\r\n\r\n",
        )
    });
    let (_proxy, proxy) = start_proxy(port, &[]);
    // Two requests on one keep-alive connection: a wrong length would desync the second.
    let mut c = Client::connect(proxy);
    for _ in 0..2 {
        c.send("GET /x HTTP/1.1\r\nHost: p\r\n\r\n");
        let r = c.read_response();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(
            r.header("content-length"),
            Some("5"),
            "framed by what is sent"
        );
        assert_eq!(r.header("transfer-encoding"), None);
    }
}

#[test]
fn proxy_removes_headers_named_in_connection_both_ways() {
    let (port, heads) = raw_upstream(|_head| {
        Some(
            "HTTP/1.1 200 OK\r\nConnection: x-up-secret, keep-alive\r\nX-Up-Secret: 1\r\n\
             X-Up-Kept: 2\r\nContent-Length: 2\r\n\r\nok",
        )
    });
    let (_proxy, proxy) = start_proxy(port, &[]);
    let r = exchange(
        proxy,
        "GET /x HTTP/1.1\r\nHost: p\r\nConnection: X-Client-Secret\r\nX-Client-Secret: a\r\n\
         X-Client-Kept: b\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-up-secret"), None);
    assert_eq!(r.header("x-up-kept"), Some("2"));
    let head = heads
        .recv_timeout(WAIT)
        .expect("the upstream saw the request");
    let lower = head.to_ascii_lowercase();
    assert!(!lower.contains("x-client-secret"), "{head}");
    assert!(lower.contains("x-client-kept: b"), "{head}");
}

#[test]
fn proxy_answers_from_arrival_even_behind_a_queue_of_hanging_requests() {
    let (port, _heads) = raw_upstream(|head| {
        head.starts_with("GET /ok ")
            .then_some("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    });
    const DEADLINE_MS: u64 = 1_500;
    let (_proxy, proxy) = start_proxy(port, &["--timeout-ms", &DEADLINE_MS.to_string()]);
    // 48 requests hang upstream: 16 on connections, 32 queued in the agent.
    let hanging: Vec<Client> = (0..48)
        .map(|_| {
            let mut c = Client::connect(proxy);
            c.send("GET /hang HTTP/1.1\r\nHost: p\r\n\r\n");
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let r = exchange(proxy, "GET /ok HTTP/1.1\r\nHost: p\r\n\r\n");
    let took = started.elapsed();
    // The hanging ones get 504 at their deadlines (1.5 s after they arrived), freeing the
    // connections: the healthy request is answered (or gets 504) within its own deadline,
    // not after three rounds of upstream timeouts (4.5 s).
    assert!(
        r.status == 200 || r.status == 504,
        "{} {:?}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        took < Duration::from_millis(DEADLINE_MS + 500),
        "answered after {took:?}"
    );
    for mut c in hanging {
        assert_eq!(c.read_response().status, 504);
    }
}

/// A Node `https` server with a fresh self-signed certificate for `localhost` (written to
/// `dir/ca.pem`), answering with its TLS version and how many TLS connections it accepted.
fn node_https_upstream(dir: &std::path::Path) -> (Running, u16, std::path::PathBuf) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    let ca = dir.join("ca.pem");
    let key = dir.join("key.pem");
    std::fs::write(&ca, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    let js = format!(
        "const https = require('https'), fs = require('fs');\n\
         let tls = 0;\n\
         const s = https.createServer({{ cert: fs.readFileSync({ca:?}), key: fs.readFileSync({key:?}) }},\n\
           (req, res) => res.end(`node https ${{req.socket.getProtocol()}} ${{req.url}} connections=${{tls}}`));\n\
         s.on('secureConnection', () => tls++);\n\
         s.listen(0, '127.0.0.1', () => console.log('listening on http://127.0.0.1:' + s.address().port));\n\
         setTimeout(() => process.exit(0), 30000);\n",
        ca = ca.display().to_string(),
        key = key.display().to_string()
    );
    let mut cmd = Command::new("node");
    cmd.args(["-e", &js]);
    let (node, line) = start_and_read_line(cmd, WAIT);
    (node, port_in(&line), ca)
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("oneloop-proxy-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_proxy_forwards_to_an_https_upstream_verified_by_its_ca_over_one_kept_alive_connection() {
    let dir = temp_dir("https");
    let (_node, port, ca) = node_https_upstream(&dir);
    let ca = ca.display().to_string();
    let (_proxy, proxy) = start_proxy_to(&format!("https://localhost:{port}"), &["--ca", &ca]);
    let first = exchange(proxy, "GET /a?x=1 HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(
        (first.status, String::from_utf8_lossy(&first.body).as_ref()),
        (200, "node https TLSv1.3 /a?x=1 connections=1")
    );
    // The agent reuses the TLS connection: no second handshake.
    let second = exchange(proxy, "GET /b HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(&second.body),
        "node https TLSv1.3 /b connections=1"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_proxy_answers_502_naming_the_reason_when_the_https_upstream_is_not_trusted() {
    let dir = temp_dir("https-untrusted");
    let (_node, port, _ca) = node_https_upstream(&dir);
    // Without --ca only Mozilla's roots are trusted: the certificate is self-signed.
    let (_proxy, proxy) = start_proxy_to(&format!("https://localhost:{port}"), &[]);
    let r = exchange(proxy, "GET / HTTP/1.1\r\nHost: p\r\n\r\n");
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 502, "{body}");
    assert!(body.contains("DEPTH_ZERO_SELF_SIGNED_CERT"), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}
