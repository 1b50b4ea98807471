//! Differential tests against Express: a oneloop app on a loop thread, its Express 5 twin
//! (a script in tests/node run by `node` with the pinned npm packages of tests/node, which
//! ./test.sh installs), and a raw HTTP/1.1 exchange to send both the same bytes.
#![allow(dead_code)] // each test binary uses its part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use oneloop::app::App;
use oneloop::http::ServerConfig;
use oneloop::runtime::Loop;

/// Serves the app `build` makes on 127.0.0.1 from a loop thread (bounded: 30 s).
pub fn serve_oneloop(build: impl FnOnce() -> App + Send + 'static) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let app = build();
        let mut lp = Loop::new().unwrap();
        let server = app
            .listen_on(&mut lp, "127.0.0.1:0", ServerConfig::default(), |_, _| {})
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        lp.set_timeout(30_000, |lp| lp.stop());
        lp.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap()
}

/// A running twin; killed on drop.
pub struct Twin(Child);

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tests/node/<script>`, which prints its port; `packages` must be installed.
pub fn serve_express(script: &str, packages: &[&str]) -> (Twin, SocketAddr) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    for p in packages {
        assert!(
            dir.join("node_modules").join(p).is_dir(),
            "tests/node/node_modules/{p} is missing: run ./test.sh (it runs `npm ci --prefix tests/node`)"
        );
    }
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("node (v20) must be installed");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the twin prints its port");
    (Twin(child), SocketAddr::from(([127, 0, 0, 1], port)))
}

/// `curl -s` with `args` against `url`: the status and the body (for real multipart forms).
pub fn curl(url: &str, args: &[String]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl must be installed (./test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_owned())
}

/// One response: status, header fields (names lower-cased, in order) and body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// Every value of header `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Sends `method path` with `headers` and `Connection: close`; reads the whole response.
pub fn exchange(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    exchange_with_body(addr, method, path, headers, b"")
}

/// As [`exchange`], with a body (and its `Content-Length` when it is not empty).
pub fn exchange_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.get(9..12))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}
