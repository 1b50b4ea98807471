//! Bounded attacks on the WebSocket routes of the real example binaries (`hello` `/ws`, `chat`
//! `/echo` and `/bench`), plus the shutdown and upgrade behaviour they rely on. Every loop here
//! stops by itself (a count and a time limit), every read has a timeout, only loopback is used,
//! and each server is a child process killed (by its pid) if a test fails. Memory is the
//! server's VmRSS from /proc/<pid>/status; descriptors are counted in /proc/<pid>/fd.

#[path = "examples_common/mod.rs"]
mod examples_common;
mod ws_common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use examples_common::{example_binary, free_port, start_and_read_line, Running};
use oneloop::ws::frame::OpCode;
use ws_common::{frame, good_request, upgrade_request, Client, KEY};

/// A server may hold at most this much resident memory during a flood (debug build; idle it
/// is a few MiB). Without read backpressure hello reached 1.37 GB in 4 s.
const RSS_BOUND_KB: u64 = 96 * 1024;

/// Starts an example with `--port P` and `extra`, waits for its "listening" line.
fn start(example: &str, extra: &[&str]) -> (Running, std::net::SocketAddr) {
    let port = free_port();
    let mut cmd = Command::new(example_binary(example));
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(extra);
    let (running, line) = start_and_read_line(cmd, Duration::from_secs(20));
    assert!(line.contains("listening"), "{line}");
    (running, format!("127.0.0.1:{port}").parse().unwrap())
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Writes `chunk` over and over for at most `limit` (or until the server stops taking bytes
/// for 1 s: its reading paused), never reading. Returns the bytes written and the peak RSS.
fn flood(stream: &mut TcpStream, chunk: &[u8], pid: u32, limit: Duration) -> (u64, u64) {
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let mut stalled_since: Option<Instant> = None;
    let (mut written, mut peak) = (0u64, 0u64);
    while start.elapsed() < limit {
        match stream.write(chunk) {
            Ok(n) => {
                written += n as u64;
                stalled_since = None;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(1) {
                    break;
                }
            }
            Err(e) => panic!("flood write: {e}"),
        }
        peak = peak.max(rss_kb(pid));
    }
    (written, peak.max(rss_kb(pid)))
}

/// Many small masked frames in one buffer.
fn frames(op: OpCode, payload: &[u8], count: usize) -> Vec<u8> {
    let one = frame(true, op, payload);
    one.iter()
        .copied()
        .cycle()
        .take(one.len() * count)
        .collect()
}

fn connect_ws(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let c = Client::connect(addr, path);
    c.s
}

#[test]
fn ping_flood_from_a_client_that_never_reads_keeps_hello_rss_bounded() {
    let (server, addr) = start("hello", &[]);
    let pid = server.0.id();
    let mut s = connect_ws(addr, "/ws");
    let pings = frames(OpCode::Ping, &[b'p'; 125], 512);
    let (written, peak) = flood(&mut s, &pings, pid, Duration::from_secs(4));
    assert!(
        peak < RSS_BOUND_KB,
        "hello grew to {peak} kB after {written} bytes of pings"
    );
    // Still serving others.
    let mut c = Client::connect(addr, "/ws");
    c.send_text("alive");
    assert_eq!(c.read_text(), "alive");
}

#[test]
fn echo_and_bench_floods_from_clients_that_never_read_keep_chat_rss_bounded() {
    let (server, addr) = start("chat", &[]);
    let pid = server.0.id();
    let text = frames(OpCode::Text, &[b'x'; 1000], 64);
    let mut echo = connect_ws(addr, "/echo");
    let (w1, peak1) = flood(&mut echo, &text, pid, Duration::from_secs(4));
    assert!(
        peak1 < RSS_BOUND_KB,
        "chat /echo grew to {peak1} kB after {w1} bytes"
    );
    // /bench: every message goes to every subscriber, the sender (who never reads) included.
    let mut bench = connect_ws(addr, "/bench");
    let _idle = connect_ws(addr, "/bench");
    let (w2, peak2) = flood(&mut bench, &text, pid, Duration::from_secs(4));
    assert!(
        peak2 < RSS_BOUND_KB,
        "chat /bench grew to {peak2} kB after {w2} bytes"
    );
}

/// SIGTERM through the `kill` command (the test crate has no unsafe `libc::kill`).
fn sigterm(server: &Running) {
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed");
}

#[test]
fn sigterm_closes_open_websockets_with_1001_and_exits_0() {
    const DEADLINE_MS: u64 = 2_000;
    let (mut server, addr) = start("hello", &["--drain-deadline-ms", &DEADLINE_MS.to_string()]);
    // One client answers the close handshake, one never reads or answers.
    let mut polite = Client::connect(addr, "/ws");
    polite.send_text("hi");
    assert_eq!(polite.read_text(), "hi");
    let _deaf = connect_ws(addr, "/ws");
    let t0 = Instant::now();
    sigterm(&server);
    let f = polite.read_frame();
    assert_eq!((f.op, f.close_code()), (8, Some(1001)), "{f:?}");
    polite.send_frame(true, OpCode::Close, &1001u16.to_be_bytes());
    let limit = Duration::from_millis(DEADLINE_MS + 1_000);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "hello exited with {status:?}");
            break;
        }
        assert!(
            t0.elapsed() < limit,
            "hello still running {:?} after SIGTERM",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `request` on `n` connections, reads each answer's head (asserting `status`) and keeps
/// them open (never closing our side).
fn hold(addr: std::net::SocketAddr, request: &[u8], n: usize, status: &str) -> Vec<TcpStream> {
    let mut held: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(request).unwrap();
            s
        })
        .collect();
    for s in &mut held {
        let head = read_head(s);
        assert!(head.starts_with(status), "{head}");
    }
    held
}

/// Waits until the server's descriptor count is back to `baseline` (or `limit` passes).
fn fds_back_to(pid: u32, baseline: usize, limit: Duration) -> (usize, Duration) {
    let t0 = Instant::now();
    loop {
        let n = fd_count(pid);
        if n <= baseline || t0.elapsed() > limit {
            return (n, t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn half_closed_upgrade_refusals_release_every_fd() {
    let (server, addr) = start("chat", &[]);
    let pid = server.0.id();
    let baseline = fd_count(pid);
    // Refused by the endpoint (bad version: 426): the refusal's 1 s linger ends them.
    let bad = upgrade_request(
        "/echo",
        &format!("Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 8\r\n"),
    );
    let held = hold(addr, bad.as_bytes(), 100, "HTTP/1.1 426 ");
    let (n, took) = fds_back_to(pid, baseline, Duration::from_secs(3));
    assert!(
        n <= baseline,
        "{n} fds (baseline {baseline}) after {took:?}"
    );
    drop(held);
    // A path without a ws route: served as HTTP (404), closed by the keep-alive timeout.
    let held = hold(addr, good_request("/nope").as_bytes(), 100, "HTTP/1.1 404 ");
    assert!(
        fd_count(pid) > baseline + 50,
        "the connections are not held"
    );
    let (n, took) = fds_back_to(pid, baseline, Duration::from_secs(8));
    assert!(
        n <= baseline,
        "{n} fds (baseline {baseline}) after {took:?}"
    );
    drop(held);
}

fn read_head(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).expect("read");
        assert!(
            n > 0,
            "EOF before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&b[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn hello_answers_upgrade_offers_it_does_not_take_as_plain_http() {
    let (_server, addr) = start("hello", &[]);
    // `curl --http2 http://host/`: an h2c offer on an ordinary route.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    )
    .unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    // A WebSocket handshake on a path without a ws route: 404 with Date.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(good_request("/nope").as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    assert!(head.contains("\r\nDate: "), "{head}");
}

#[test]
fn hello_ws_echoes_a_16_mib_message() {
    let (_server, addr) = start("hello", &[]);
    let mut c = Client::connect(addr, "/ws");
    c.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let payload: Vec<u8> = (0..16usize << 20).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut s = c.s.try_clone().unwrap();
        let f = frame(true, OpCode::Binary, &payload);
        std::thread::spawn(move || s.write_all(&f).unwrap())
    };
    let f = c.read_frame();
    writer.join().unwrap();
    assert_eq!((f.op, f.payload.len()), (2, payload.len()));
    assert!(f.payload == payload);
}
