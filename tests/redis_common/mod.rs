//! A real redis-server for tests: started on a free loopback port in its own temp dir,
//! stopped by pid. Missing redis-server is a test failure with a clear message, never a skip.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
    extra: Vec<String>,
}

static DIRS: AtomicU64 = AtomicU64::new(0);

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    /// Starts redis-server on `port`: `--save "" --appendonly no`, debug commands allowed
    /// from loopback (`DEBUG SLEEP`), in a fresh temp dir.
    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::start_with(port, &[])
    }

    /// Starts it with extra arguments (`["--requirepass", "secret"]`).
    pub fn start_with(port: u16, extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!(
            "oneloop-redis-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut server = RedisServer {
            port,
            child: None,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.restart();
        server
    }

    /// (Re)starts the server process on the same port.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): these tests need the real server; install \
                     it with `apt-get install -y redis-server` (.ci/run does)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(reply) = self.raw(b"*1\r\n$4\r\nPING\r\n") {
                // -NOAUTH: up, with a password.
                if reply.starts_with("+PONG") || reply.starts_with("-NOAUTH") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (`"STOP"`, `"CONT"`) to the server process, by pid.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        // The shell's kill builtin: no dependency on procps' /bin/kill.
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{signal} {pid}"))
            .status()
            .expect("sh");
        assert!(status.success());
    }

    /// Kills the server (SIGKILL, by pid) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's temp dir (for a `--unixsocket` path).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command over a plain blocking socket; returns the first reply line (enough for
    /// the status and integer replies the tests check).
    pub fn raw(&self, cmd: &[u8]) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(cmd)?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        Ok(line)
    }

    /// Runs a command given as words on the server listening on `port`.
    pub fn raw_to(port: u16, words: &[&str]) -> String {
        let mut cmd = format!("*{}\r\n", words.len());
        for w in words {
            cmd.push_str(&format!("${}\r\n{w}\r\n", w.len()));
        }
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(cmd.as_bytes()).expect("write");
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).expect("read");
        line
    }

    /// Runs a command given as words, RESP-encoded.
    pub fn command(&self, words: &[&str]) -> String {
        let mut cmd = format!("*{}\r\n", words.len());
        for w in words {
            cmd.push_str(&format!("${}\r\n{w}\r\n", w.len()));
        }
        self.raw(cmd.as_bytes()).expect("redis-server answers")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP relay between the client and a server that counts the reads it makes from the
/// client side (one read per burst the client wrote, give or take the kernel's segmenting).
pub struct CountingRelay {
    pub port: u16,
    pub client_reads: Arc<AtomicUsize>,
}

impl CountingRelay {
    pub fn start(upstream: u16) -> CountingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let client_reads = Arc::new(AtomicUsize::new(0));
        let reads = Arc::clone(&client_reads);
        std::thread::spawn(move || {
            // One connection is enough for these tests; the thread ends when it closes.
            let Ok((mut client, _)) = listener.accept() else {
                return;
            };
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            let (mut client2, mut server2) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                while let Ok(n) = server2.read(&mut buf) {
                    if n == 0 || client2.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = client2.shutdown(std::net::Shutdown::Both);
            });
            let mut buf = vec![0u8; 1 << 20];
            while let Ok(n) = client.read(&mut buf) {
                if n == 0 {
                    break;
                }
                reads.fetch_add(1, Ordering::SeqCst);
                if server.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = server.shutdown(std::net::Shutdown::Both);
        });
        CountingRelay { port, client_reads }
    }
}
