//! Abuse against the real `hello` binary, bounded and self-stopping: what a hostile client can
//! make the server hold. Each test caps its own count and wall time (well under 15 s).

mod examples_common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use examples_common::{example_binary, start_and_read_line, Running};
use oneloop::http::DEFAULT_MAX_BUFFERED_BODY_BYTES;

const MIB: u64 = 1 << 20;

fn start_hello() -> (Running, SocketAddr) {
    let mut cmd = Command::new(example_binary("hello"));
    cmd.env("PORT", "0").env("HOST", "127.0.0.1");
    let (hello, line) = start_and_read_line(cmd, Duration::from_secs(10));
    let port: String = line
        .split("http://127.0.0.1:")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let port = port.parse().expect("a port");
    (hello, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The resident set of process `pid`, in bytes (`VmRSS` in /proc/<pid>/status).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// 100 clients each declare 15 MiB + 1 byte, send 15 MiB (hello's `/echo` takes up to 16 MiB)
/// and stall, which without a server-wide budget holds 1.5 GB until the 300 s request
/// timeout. With it the server keeps at most its budget (256 MiB by default) and answers the
/// rest 503.
#[test]
fn stalled_uploads_are_bounded_by_the_server_body_budget() {
    const CLIENTS: usize = 100;
    const BODY: usize = 15 << 20;
    let started = Instant::now();
    let (hello, addr) = start_hello();
    let pid = hello.0.id();
    let base = rss_bytes(pid);
    let body: Arc<Vec<u8>> = Arc::new(vec![b'x'; BODY]);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let body = Arc::clone(&body);
            thread::spawn(move || -> Option<TcpStream> {
                let mut s = TcpStream::connect(addr).ok()?;
                s.set_write_timeout(Some(Duration::from_secs(8))).ok()?;
                let head = format!(
                    "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
                    BODY + 1
                );
                s.write_all(head.as_bytes()).ok()?;
                // Refused uploads are read and discarded for up to a second after the 503,
                // so the write may well succeed; it fails if the server closed first.
                let _ = s.write_all(&body);
                Some(s)
            })
        })
        .collect();
    let streams: Vec<TcpStream> = clients
        .into_iter()
        .filter_map(|c| c.join().expect("client thread"))
        .collect();
    // The server may still be reading what the kernel buffered: sample for a while.
    let mut peak = 0;
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(1500) {
        peak = peak.max(rss_bytes(pid));
        thread::sleep(Duration::from_millis(50));
    }
    // An upload the server refused has its answer (503) waiting; a stalled one has none.
    let (mut stalled, mut refused) = (Vec::new(), 0);
    for mut s in streams {
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        let mut first = [0u8; 12];
        match std::io::Read::read(&mut s, &mut first) {
            Ok(12) if &first == b"HTTP/1.1 503" => refused += 1,
            Ok(n) if n > 0 => panic!("unexpected answer {:?}", String::from_utf8_lossy(&first)),
            Ok(_) => refused += 1, // closed
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                stalled.push(s)
            }
            Err(_) => refused += 1, // reset
        }
    }
    let budget = DEFAULT_MAX_BUFFERED_BODY_BYTES;
    eprintln!(
        "{} of {CLIENTS} uploads stalled in the server, {refused} refused; RSS {} MiB at start, peak {} MiB \
         (budget {} MiB); {:?}",
        stalled.len(),
        base / MIB,
        peak / MIB,
        budget / MIB,
        started.elapsed()
    );
    // What the budget holds, plus the process's own footprint and the allocator's slack.
    let bound = base + budget + 64 * MIB;
    assert!(
        peak < bound,
        "server RSS {} MiB over the bound {} MiB",
        peak / MIB,
        bound / MIB
    );
    assert!(
        (stalled.len() as u64) * BODY as u64 <= budget,
        "{} stalled uploads cannot all be held within the budget",
        stalled.len()
    );
    assert!(
        !stalled.is_empty(),
        "uploads within the budget are accepted"
    );
    assert!(refused > 0, "uploads past the budget are refused");
    // A hang guard, not a speed check: every client write gives up after 8 s, so only a
    // server that stops reading entirely gets near this on a loaded 2-core machine.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the uploads took {:?}: the server stopped reading",
        started.elapsed()
    );
    drop(stalled);
}
