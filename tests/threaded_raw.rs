//! The thread-per-connection server over real loopback sockets: raw request bytes in,
//! responses and connection state out. Same contract as the loop server (tests/http_raw.rs):
//! parser rejections, keep-alive and close, pipelining, chunked bodies, the headers timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oneloop::threaded::{self, Listening, ThreadedConfig, ThreadedRequest, ThreadedResponse};

/// `examples/threaded_hello.rs`'s routes.
fn route(req: &ThreadedRequest, res: &mut ThreadedResponse) {
    match (req.method(), req.path()) {
        ("GET" | "HEAD", "/" | "/plaintext") => {
            res.set_header("content-type", "text/plain");
            res.end("Hello, World!");
        }
        ("GET" | "HEAD", "/json") => {
            res.set_header("content-type", "application/json");
            res.end(r#"{"message":"Hello, World!"}"#);
        }
        ("POST", "/echo") => {
            if let Some(ct) = req.header("content-type") {
                res.set_header("content-type", ct.to_owned());
            }
            res.end(req.body());
        }
        ("GET", "/panic") => panic!("handler panics on purpose"),
        _ => {
            res.status(404).set_header("content-type", "text/plain");
            res.end("Not Found");
        }
    }
}

fn start(config: ThreadedConfig) -> Listening {
    threaded::create_server(config, route)
        .listen("127.0.0.1:0")
        .expect("listen")
}

/// A default server shared by the tests (small body limit for the 413 row).
fn addr() -> SocketAddr {
    static SERVER: OnceLock<SocketAddr> = OnceLock::new();
    *SERVER.get_or_init(|| {
        let listening = start(ThreadedConfig {
            max_body_size: 1024,
            ..ThreadedConfig::default()
        });
        let addr = listening.local_addr();
        // The server lives as long as the test process.
        std::mem::forget(listening);
        addr
    })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one Content-Length-framed response (HEAD: no body). `None` at EOF.
fn read_response(r: &mut BufReader<TcpStream>, head_request: bool) -> Option<Resp> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    assert!(line.ends_with("\r\n"), "status line {line:?}");
    let status = line.get(9..12)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).ok()?;
        let l = l.trim_end_matches("\r\n");
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("field line");
        headers.push((k.to_owned(), v.trim().to_owned()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = resp
        .header("content-length")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    if !head_request && status != 100 {
        resp.body = vec![0; len];
        r.read_exact(&mut resp.body).ok()?;
    }
    Some(resp)
}

/// True when the server closes the connection (EOF) within the read timeout.
fn closed(r: &mut BufReader<TcpStream>) -> bool {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).is_ok()
}

/// Sends `request` on a new connection; returns the response and whether the server closed.
fn exchange(request: &[u8]) -> (Resp, bool) {
    let mut s = connect(addr());
    s.write_all(request).unwrap();
    let mut r = BufReader::new(s);
    let resp = read_response(&mut r, false).expect("a response");
    r.get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1];
    let closed = matches!(r.read(&mut buf), Ok(0));
    (resp, closed)
}

#[test]
fn threaded_rejects_malformed_requests_with_status_date_and_close() {
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(9000));
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
        "b".repeat(17_000)
    );
    let table: Vec<(&str, Vec<u8>, u16)> = vec![
        ("bare LF", b"GET / HTTP/1.1\nHost: h\n\n".to_vec(), 400),
        ("missing Host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n".to_vec(), 400),
        (
            "TE and CL",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n".to_vec(),
            400,
        ),
        (
            "bad chunk size",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            400,
        ),
        (
            "body over the limit",
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n".to_vec(),
            413,
        ),
        ("long request line", long_target.into_bytes(), 414),
        ("head too large", big_head.into_bytes(), 431),
        ("unknown method", b"FOO / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), 501),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: h\r\n\r\n".to_vec(), 505),
    ];
    for (name, request, status) in table {
        let (resp, closed) = exchange(&request);
        assert_eq!(resp.status, status, "{name}");
        assert!(
            resp.header("date").is_some_and(|d| d.ends_with(" GMT")),
            "{name}: Date"
        );
        assert_eq!(resp.header("connection"), Some("close"), "{name}");
        assert_eq!(resp.header("content-length"), Some("0"), "{name}");
        assert!(closed, "{name}: connection closed");
    }
}

#[test]
fn threaded_keeps_http11_alive_and_closes_http10() {
    let (resp, closed) = exchange(b"GET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"Hello, World!");
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    assert_eq!(resp.header("keep-alive"), Some("timeout=5"));
    assert!(!closed);

    let (resp, closed) = exchange(b"GET /json HTTP/1.0\r\n\r\n");
    assert_eq!(resp.body, br#"{"message":"Hello, World!"}"#);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(closed);

    let (resp, closed) = exchange(b"GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    assert!(!closed);

    let (resp, closed) = exchange(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(closed);
}

#[test]
fn threaded_answers_404_and_head_without_body() {
    let (resp, _) = exchange(b"GET /nope HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (404, &b"Not Found"[..])
    );

    let mut s = connect(addr());
    s.write_all(
        b"HEAD /plaintext HTTP/1.1\r\nHost: h\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let head = read_response(&mut r, true).unwrap();
    assert_eq!(head.header("content-length"), Some("13"));
    let get = read_response(&mut r, false).unwrap();
    assert_eq!(get.body, b"Hello, World!");
}

#[test]
fn threaded_answers_100_pipelined_requests_in_order() {
    let mut s = connect(addr());
    let mut batch = Vec::new();
    for i in 0..100 {
        let body = format!("request {i}");
        batch.extend_from_slice(
            format!(
                "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
    s.write_all(&batch).unwrap();
    let mut r = BufReader::new(s);
    for i in 0..100 {
        let resp = read_response(&mut r, false).expect("response");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, format!("request {i}").as_bytes());
    }
}

#[test]
fn threaded_echoes_a_chunked_body_split_across_writes() {
    let mut s = connect(addr());
    let pieces: [&[u8]; 4] = [
        b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Type: text/x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"lo\r\n7;ext=1\r\n, worl",
        b"d\r\n0\r\nTrailer: x\r\n",
        b"\r\n",
    ];
    for p in pieces {
        s.write_all(p).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut r = BufReader::new(s);
    let resp = read_response(&mut r, false).unwrap();
    assert_eq!(resp.body, b"hello, world");
    assert_eq!(resp.header("content-type"), Some("text/x"));
    assert_eq!(resp.header("content-length"), Some("12"));
}

#[test]
fn threaded_sends_100_continue_before_reading_the_body() {
    let mut s = connect(addr());
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let cont = read_response(&mut r, false).unwrap();
    assert_eq!(cont.status, 100);
    s.write_all(b"hi").unwrap();
    let resp = read_response(&mut r, false).unwrap();
    assert_eq!(resp.body, b"hi");
}

#[test]
fn threaded_serves_1000_sequential_keep_alive_requests() {
    let mut s = connect(addr());
    let mut r = BufReader::new(s.try_clone().unwrap());
    for _ in 0..1000 {
        s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
        let resp = read_response(&mut r, false).expect("response");
        assert_eq!(resp.body, b"Hello, World!");
    }
}

#[test]
fn threaded_answers_408_when_the_head_is_not_complete_in_time() {
    let listening = start(ThreadedConfig {
        headers_timeout: Duration::from_millis(300),
        keep_alive_timeout: Duration::from_millis(300),
        ..ThreadedConfig::default()
    });
    // A head that drips in slower than the timeout allows.
    let mut s = connect(listening.local_addr());
    let t0 = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let _ = s.write_all(b"Host: h\r\n");
    let mut r = BufReader::new(s);
    let resp = read_response(&mut r, false).expect("408");
    assert_eq!(resp.status, 408);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(closed(&mut r));
    assert!(t0.elapsed() < Duration::from_secs(2));

    // An idle keep-alive connection is closed quietly.
    let mut s = connect(listening.local_addr());
    s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(read_response(&mut r, false).unwrap().status, 200);
    let t0 = Instant::now();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the keep-alive timeout");
    assert!(t0.elapsed() < Duration::from_secs(2));
    listening.close();
}

#[test]
fn threaded_answers_500_and_closes_when_the_handler_panics() {
    let (resp, closed) = exchange(b"GET /panic HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(resp.status, 500);
    assert!(closed);
    // The server goes on serving.
    let (resp, _) = exchange(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(resp.status, 200);
}

#[test]
fn threaded_connection_cap_queues_extra_clients() {
    let listening = start(ThreadedConfig {
        max_connections: Some(1),
        keep_alive_timeout: Duration::from_millis(200),
        ..ThreadedConfig::default()
    });
    let addr = listening.local_addr();
    let mut first = connect(addr);
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let mut r1 = BufReader::new(first);
    assert_eq!(read_response(&mut r1, false).unwrap().status, 200);
    // The second client is accepted only once the first connection's thread ends (its
    // keep-alive timeout), so its answer comes after that.
    let t0 = Instant::now();
    let mut second = connect(addr);
    second
        .write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let mut r2 = BufReader::new(second);
    assert_eq!(read_response(&mut r2, false).unwrap().status, 200);
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t0.elapsed()
    );
    listening.close();
}

/// The backlog of the socket listening on `port`: `ss -ltn` shows it as the Send-Q of a
/// listening socket.
fn listen_backlog(port: u16) -> u32 {
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no listener on {port}: {text:?}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    // State Recv-Q Send-Q Local Peer
    cols[2]
        .parse()
        .unwrap_or_else(|_| panic!("Send-Q in {line:?}"))
}

#[test]
fn threaded_listens_with_the_same_backlog_as_the_loop_server() {
    let threaded = start(ThreadedConfig::default());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lp = oneloop::runtime::Loop::new().expect("loop");
        let server = oneloop::http::create_server(&mut lp, |_lp, _req, res| res.end("hi"));
        let addr = server
            .listen(&mut lp, "127.0.0.1:0", |_lp, _addr| {})
            .expect("listen");
        tx.send(addr).expect("send the address");
        let _ = lp.run();
    });
    let looped = rx.recv().expect("the loop server's address");
    let ours = listen_backlog(threaded.local_addr().port());
    let theirs = listen_backlog(looped.port());
    // Capped by net.core.somaxconn (4096 by default since Linux 5.4).
    assert_eq!((ours, theirs), (511, 511));
}

#[test]
fn an_h2c_upgrade_offer_is_served_as_plain_http() {
    // `curl --http2 http://host/`: RFC 9110 §7.8 lets a server ignore Upgrade; Node answers 200.
    let mut s = connect(addr());
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let resp = read_response(&mut r, false).expect("a response, not a closed connection");
    assert_eq!((resp.status, &resp.body[..]), (200, &b"Hello, World!"[..]));
}
