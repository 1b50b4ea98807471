//! A large file sent with `send_file` streams: a client that stops reading holds the server's
//! memory bounded (the stream pauses on backpressure), and a client that goes away closes the
//! file. In its own test binary (its own process), so no other test's memory is counted.

mod express_twin;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use oneloop::app::App;

use express_twin::serve_oneloop as serve;

/// This process's resident memory, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

/// Descriptors of this process open on `path`.
fn fds_open_on(path: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

#[test]
fn a_client_that_stops_reading_a_large_file_holds_bounded_memory_and_closing_it_closes_the_file() {
    let dir = std::env::temp_dir().join(format!("oneloop-stream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("huge.bin");
    {
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(256 << 20).unwrap(); // 256 MiB, sparse: cheap to make, real to read
    }
    let before = rss_bytes();
    let file = path.clone();
    let addr = serve(move || {
        let mut app = App::new();
        app.get("/huge", move |req, res| res.send_file(req, &file));
        app
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /huge HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1024];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = s.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    // The client reads nothing more: the stream must stop once the socket is full.
    std::thread::sleep(Duration::from_millis(700));
    let grown = rss_bytes().saturating_sub(before);
    eprintln!("RSS grew by {} KiB", grown >> 10);
    assert!(
        grown < 32 << 20,
        "memory grew by {} MiB while the client did not read",
        grown >> 20
    );
    assert_eq!(fds_open_on(&path), 1, "the file is open while it streams");
    drop(s);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fds_open_on(&path) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        fds_open_on(&path),
        0,
        "the file closes once the client is gone"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
