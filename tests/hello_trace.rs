//! `hello --trace out.json`: the real example binary, real sockets, a real SIGTERM, then the file
//! must be complete JSON with poll phases that contain the I/O callbacks of our requests.
//!
//! The binary is `target/<profile>/examples/hello`, next to this test; the test asks cargo to
//! bring it up to date first (a no-op after `cargo test`, which builds the examples).

mod examples_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use examples_common::{example_binary, free_port, Running};
use serde_json::Value;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A fresh directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "oneloop-hello-trace-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `hello --port P --trace path extra...` and waits until it listens.
fn start_hello(trace: &Path, extra: &[&str]) -> (Running, u16) {
    let port = free_port();
    let mut child = Command::new(example_binary("hello"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--trace",
        ])
        .arg(trace)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hello");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let server = Running(child);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "hello exited before listening"
        );
        if line.contains("listening on") {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (server, port)
}

/// Reads one Content-Length-framed response; returns (status, body).
fn read_response(s: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).expect("read head"), 1, "closed early");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head[9..12].parse().unwrap(), body)
}

/// Sends a few requests over two keep-alive connections; returns how many were answered.
fn make_requests(port: u16) -> usize {
    let mut answered = 0;
    for _ in 0..2 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s), (200, b"Hello, World!".to_vec()));
        s.write_all(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut s).0, 200);
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap();
        assert_eq!(read_response(&mut s), (200, b"hello".to_vec()));
        answered += 3;
    }
    answered
}

/// SIGTERM through the `kill` command (the test crate has no unsafe `libc::kill`), then waits.
fn terminate(server: &mut Running) {
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM failed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            assert!(status.success(), "hello exited with {status:?}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "hello did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One complete (`"ph":"X"`) event.
#[derive(Debug)]
struct Span {
    name: String,
    cat: String,
    ts: f64,
    end: f64,
    iteration: u64,
}

/// Parses the whole file (it must be complete JSON) into its complete events.
fn read_trace(path: &Path) -> Vec<Span> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        let tail = &text[text.len().saturating_sub(200)..];
        panic!(
            "{} is not complete JSON ({e}); it ends with {tail:?}",
            path.display()
        )
    });
    let events = json["traceEvents"].as_array().expect("traceEvents array");
    events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            let ts = e["ts"].as_f64().expect("ts");
            Span {
                name: e["name"].as_str().expect("name").to_owned(),
                cat: e["cat"].as_str().expect("cat").to_owned(),
                ts,
                end: ts + e["dur"].as_f64().expect("dur"),
                iteration: e["args"]["iteration"].as_u64().expect("iteration"),
            }
        })
        .collect()
}

/// Checks the server's trace: iterations, poll waits, and every I/O callback nested in a poll
/// phase (events) or a pending phase (deferred I/O: the first accept after `listen`, reads
/// after a resume) of the same iteration. Returns the I/O callbacks inside poll phases.
fn check_server_trace(spans: &[Span]) -> usize {
    // Timestamps are exact 3-decimal microseconds; allow for float parsing.
    const EPS: f64 = 0.002;
    let phase = |name: &str| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| s.cat == "phase" && s.name == name)
            .collect()
    };
    let (polls, pendings) = (phase("poll"), phase("pending"));
    assert!(!polls.is_empty(), "no poll phase spans");
    assert!(
        spans.iter().any(|s| s.cat == "iteration"),
        "no iteration spans"
    );
    assert!(spans.iter().any(|s| s.cat == "wait"), "no poll wait spans");
    let inside = |cb: &Span, phases: &[&Span]| {
        phases
            .iter()
            .any(|p| p.iteration == cb.iteration && p.ts <= cb.ts + EPS && cb.end <= p.end + EPS)
    };
    let mut in_poll = 0;
    for cb in spans
        .iter()
        .filter(|s| s.cat == "callback" && s.name == "io")
    {
        if inside(cb, &polls) {
            in_poll += 1;
        } else {
            assert!(
                inside(cb, &pendings),
                "io callback outside every poll and pending phase: {cb:?}"
            );
        }
    }
    // The SIGTERM itself reached the loop as a signal-watcher callback in poll.
    let signal = spans
        .iter()
        .find(|s| s.cat == "callback" && s.name == "signal")
        .expect("no signal callback: the trace ended before the shutdown");
    assert!(inside(signal, &polls), "signal callback outside poll");
    in_poll
}

#[test]
fn hello_trace_is_complete_json_with_io_callbacks_in_poll_after_sigterm() {
    let dir = temp_dir("one");
    let path = dir.join("out.json");
    let (mut server, port) = start_hello(&path, &[]);
    let answered = make_requests(port);
    terminate(&mut server);

    let spans = read_trace(&path);
    let io_in_poll = check_server_trace(&spans);
    // Each request was sent after the previous response arrived, so each needs its own
    // readable event; only a connection's first read may have been a deferred one.
    assert!(
        io_in_poll >= answered - 2,
        "{io_in_poll} io callbacks in poll phases for {answered} requests over 2 connections"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hello_trace_with_workers_writes_one_complete_file_per_worker() {
    let dir = temp_dir("workers");
    let path = dir.join("out.json");
    let (mut server, port) = start_hello(&path, &["--workers", "2"]);
    make_requests(port);
    terminate(&mut server);

    assert!(!path.exists(), "with --workers 2 there is no out.json");
    let mut io = 0;
    for w in 0..2 {
        let spans = read_trace(&dir.join(format!("out.w{w}.json")));
        assert!(
            spans.iter().any(|s| s.name == "poll"),
            "worker {w}: no poll"
        );
        io += spans
            .iter()
            .filter(|s| s.cat == "callback" && s.name == "io")
            .count();
    }
    // The kernel may give both connections to one worker; together they saw all of them.
    assert!(io >= 6, "{io} io callbacks across both workers");
    std::fs::remove_dir_all(&dir).ok();
}
