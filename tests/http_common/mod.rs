//! Shared by the `http_*` integration tests: a test server on its own thread (its own `Loop`),
//! and a raw-socket client that writes bytes and reads whole responses with timeouts.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use oneloop::http::{self, Request, Response, ServerConfig};
use oneloop::runtime::Loop;

/// Client socket timeouts: no test can hang on a read or a write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A command run on the server's loop thread.
pub type Cmd = Box<dyn FnOnce(&mut Loop, &http::Server) + Send>;

/// A running test server. Dropping it stops its loop.
pub struct TestServer {
    pub addr: SocketAddr,
    cmds: mpsc::Sender<Cmd>,
}

impl TestServer {
    /// Runs `f` on the loop thread (within ~5 ms) and returns its result.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Loop, &http::Server) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        self.cmds
            .send(Box::new(move |lp, s| {
                let _ = tx.send(f(lp, s));
            }))
            .expect("server thread gone");
        rx.recv_timeout(IO_TIMEOUT)
            .expect("server command timed out")
    }

    /// Open connections as the server counts them.
    pub fn connections(&self) -> usize {
        self.run(|_lp, s| s.connections())
    }

    /// Waits (up to 2 s) until the server counts `n` open connections; returns the last count.
    /// (A destroyed connection leaves the registry in the loop's close phase.)
    pub fn wait_connections(&self, n: usize) -> usize {
        let t = Instant::now();
        loop {
            let got = self.connections();
            if got == n || t.elapsed() > Duration::from_secs(2) {
                return got;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.cmds.send(Box::new(|lp, _s| lp.stop()));
    }
}

/// The routes every test server (and tests/node/diff_server.js) answers:
/// - `/echo`: the request body (collected, 1 MiB limit: 413 above; 503 past the body budget)
/// - `/n/<k>`: body `<k>` (numbering pipelined requests)
/// - `/slow/<k>`: body `<k>` after a 50 ms timer
/// - `/chunked`: `write("a")`, `write("b")`, trailer `x-t: 1`, `end("c")`
/// - `/status/<code>`: that status, body `x`
/// - `/big/<n>`: `n` bytes of `x`
/// - `/stream/<n>`: `n` chunks of 16 KiB written with `write`, honouring `on_drain`
/// - `/close`: body `bye` with `Connection: close`
/// - `/drip-body`: reads the body via `on_data`, answers its length on `on_end`
/// - anything else: `Hello, World!`
pub fn route(lp: &mut Loop, req: Request, res: Response) {
    let path = req.path().to_owned();
    if path == "/echo" {
        req.collect(1 << 20, move |_lp, body| match body {
            Ok(b) => res.end(&b),
            Err(e) => {
                res.status(e.status()).end(e.to_string());
            }
        });
    } else if let Some(k) = path.strip_prefix("/n/") {
        res.end(k.as_bytes());
    } else if let Some(k) = path.strip_prefix("/slow/") {
        let k = k.to_owned();
        lp.set_timeout(Duration::from_millis(50), move |_lp| res.end(k.as_bytes()));
    } else if path == "/chunked" {
        res.write("a");
        res.write("b");
        res.add_trailers(&[("x-t", "1")]);
        res.end("c");
    } else if let Some(code) = path.strip_prefix("/status/") {
        res.status(code.parse().unwrap_or(500)).end("x");
    } else if let Some(n) = path.strip_prefix("/big/") {
        let n: usize = n.parse().unwrap_or(0);
        res.end(vec![b'x'; n]);
    } else if let Some(n) = path.strip_prefix("/stream/") {
        pump(res, n.parse().unwrap_or(0));
    } else if path == "/close" {
        res.set_header("connection", &b"close"[..]);
        res.end("bye");
    } else {
        res.end("Hello, World!");
    }
}

/// Writes `left` chunks of 16 KiB, waiting for `on_drain` whenever `write` returns false.
fn pump(res: Response, mut left: usize) {
    loop {
        if left == 0 {
            res.end("");
            return;
        }
        left -= 1;
        if !res.write(vec![b'y'; 16 * 1024]) {
            let r = res.clone();
            let mut left = Some(left);
            res.on_drain(move |_lp| {
                if let Some(left) = left.take() {
                    pump(r.clone(), left);
                }
            });
            return;
        }
    }
}

/// Starts a server with `config` and the standard routes; upgrades are echoed (101, then every
/// byte back) when `with_upgrade`.
pub fn spawn_server(config: ServerConfig, with_upgrade: bool) -> TestServer {
    let (cmd_tx, cmd_rx) = mpsc::channel::<Cmd>();
    let (addr_tx, addr_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lp = Loop::new().expect("loop");
        let server = http::create_server_with(&mut lp, config, route);
        if with_upgrade {
            server.on_upgrade(|lp, req, id, rest| {
                let proto = req.header("upgrade").unwrap_or("").to_owned();
                let head = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {proto}\r\n\r\n"
                );
                let _ = lp.tcp_write(id, head.as_bytes());
                let _ = lp.tcp_write(id, &rest);
                let _ = lp.tcp_on_data(id, |lp, id, data| {
                    let _ = lp.tcp_write(id, data);
                });
            });
        }
        let addr = server
            .listen(&mut lp, "127.0.0.1:0", |_lp, _addr| {})
            .expect("listen");
        addr_tx.send(addr).unwrap();
        let s = server.clone();
        lp.set_interval(Duration::from_millis(5), move |lp| {
            while let Ok(cmd) = cmd_rx.try_recv() {
                cmd(lp, &s);
            }
        });
        let _ = lp.run();
    });
    let addr = addr_rx.recv_timeout(IO_TIMEOUT).expect("server start");
    TestServer { addr, cmds: cmd_tx }
}

/// Small timeouts for the timeout tests.
pub fn fast_config() -> ServerConfig {
    ServerConfig {
        check_interval_ms: 20,
        ..ServerConfig::default()
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A raw client: bytes in, responses out, with 5 s timeouts on every read and write.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("client write");
    }

    /// Like `send` but tolerates the server having closed already.
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> bool {
        self.stream.write_all(bytes.as_ref()).is_ok()
    }

    /// Reads more bytes into the buffer; false on EOF/reset.
    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!(
                        "client read timed out; have {:?}",
                        String::from_utf8_lossy(&self.buf)
                    )
                }
                Err(_) => return false, // reset
            }
        }
    }

    fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                self.buf.drain(..p + 2);
                return Some(line);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// Exactly `n` raw bytes (after any response already read).
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        self.read_exact_buf(n).expect("eof before n bytes")
    }

    fn read_exact_buf(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill() {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    fn read_fields(&mut self) -> Option<Vec<(String, String)>> {
        let mut fields = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                return Some(fields);
            }
            let (n, v) = line.split_once(':').expect("header line has a colon");
            fields.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }

    /// Reads one response (interim 1xx responses included as their own response). `head_only`:
    /// the request was HEAD (no body whatever the headers say). `None`: the connection closed
    /// before a status line.
    pub fn read_response_opt(&mut self, head_only: bool) -> Option<Resp> {
        let line = self.read_line()?;
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        assert!(version.starts_with("HTTP/1."), "bad status line {line:?}");
        let status: u16 = parts.next().and_then(|s| s.parse().ok()).expect("status");
        let headers = self.read_fields().expect("eof in response head");
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
            trailers: Vec::new(),
        };
        if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
            return Some(resp);
        }
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().expect("content-length");
            resp.body = self.read_exact_buf(len).expect("eof in body");
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let size_line = self.read_line().expect("eof in chunk size");
                let size = usize::from_str_radix(size_line.trim(), 16).expect("chunk size");
                if size == 0 {
                    resp.trailers = self.read_fields().expect("eof in trailers");
                    break;
                }
                let data = self.read_exact_buf(size + 2).expect("eof in chunk");
                assert_eq!(&data[size..], b"\r\n");
                resp.body.extend_from_slice(&data[..size]);
            }
        } else {
            // Close-delimited.
            while self.fill() {}
            resp.body = std::mem::take(&mut self.buf);
        }
        Some(resp)
    }

    pub fn read_response(&mut self) -> Resp {
        self.read_response_opt(false)
            .expect("connection closed before a response")
    }

    /// Reads a final response, returning the interim (1xx) ones before it too.
    pub fn read_final(&mut self) -> (Vec<u16>, Resp) {
        let mut interim = Vec::new();
        loop {
            let r = self.read_response();
            if r.status >= 200 {
                return (interim, r);
            }
            interim.push(r.status);
        }
    }

    /// Whether the server closed the connection: EOF (or reset) with no further bytes, within
    /// the read timeout. Panics if bytes arrive instead.
    pub fn is_closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            panic!(
                "unexpected bytes after the response: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
        let mut tmp = [0u8; 4096];
        match self.stream.read(&mut tmp) {
            Ok(0) => true,
            Ok(n) => panic!(
                "unexpected bytes after the response: {:?}",
                String::from_utf8_lossy(&tmp[..n])
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(_) => true,
        }
    }

    /// Whether the connection is still open: nothing arrives within `wait`.
    pub fn is_open_for(&mut self, wait: Duration) -> bool {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut tmp = [0u8; 4096];
        let open = match self.stream.read(&mut tmp) {
            Ok(0) => false,
            Ok(n) => panic!(
                "unexpected bytes on an idle connection: {:?}",
                String::from_utf8_lossy(&tmp[..n])
            ),
            Err(e) => matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        };
        self.stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        open
    }

    /// Everything until the server closes (or the timeout).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut tmp = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut tmp) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        std::mem::take(&mut self.buf)
    }
}

/// Elapsed-time guard for speed assertions.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// A Node 20 process running a test script, killed (by its pid, via `Child::kill`) when dropped.
pub struct NodeServer {
    child: Child,
    /// Where the script listens: 127.0.0.1 and the port it printed.
    pub addr: SocketAddr,
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `node tests/<script>` (stdin piped, so the script may exit when the test does) and
/// waits up to 10 s for the one line with its port. Panics, naming the script, if `node` is
/// missing or prints no port.
pub fn start_node(script: &str) -> NodeServer {
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    let child = Command::new("node")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs `node` (v20) on PATH to run {path}: {e}"));
    let mut node = NodeServer {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let stdout = node.child.stdout.take().expect("node stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("node did not print its port ({path})"));
    let port: u16 = line.trim().parse().expect("node printed a port");
    node.addr.set_port(port);
    node
}
