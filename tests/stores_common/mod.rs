//! Helpers of the Redis stores' tests: an app served by its own loop (with a Redis client
//! made on that loop), RESP reads of whole bulk replies, polling a condition on the server.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use oneloop::app::App;
use oneloop::http::ServerConfig;
use oneloop::redis::{Redis, RedisOptions};
use oneloop::runtime::Loop;

/// Serves the app `build` makes on a new loop of its own thread, with a Redis client
/// connected to `redis_url` on that loop; runs for at most 60 s.
pub fn serve_with_redis(
    redis_url: &str,
    build: impl FnOnce(&mut Loop, Redis) -> App + Send + 'static,
) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    let url = redis_url.to_owned();
    std::thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let redis = Redis::connect(&mut lp, &url, RedisOptions::default()).unwrap();
        let app = build(&mut lp, redis.clone());
        let server = app
            .listen_on(&mut lp, "127.0.0.1:0", ServerConfig::default(), |_, _| {})
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        lp.set_timeout(60_000, move |lp| {
            redis.disconnect(lp);
            lp.stop()
        });
        lp.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap()
}

/// Runs a command (words) on the server at `port` and reads one whole reply; returns it as
/// RESP text (`$5\r\nhello\r\n`, `:3\r\n`, `$-1\r\n`...).
pub fn resp(port: u16, words: &[&str]) -> String {
    let mut cmd = format!("*{}\r\n", words.len());
    for w in words {
        cmd.push_str(&format!("${}\r\n{w}\r\n", w.len()));
    }
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("redis-server answers");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(cmd.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = s.read(&mut chunk).expect("a reply");
        assert!(n > 0, "redis-server closed before a whole reply");
        buf.extend_from_slice(&chunk[..n]);
        if complete(&buf) {
            return String::from_utf8_lossy(&buf).into_owned();
        }
    }
}

/// Whether `buf` holds one whole simple, integer, error or bulk reply.
fn complete(buf: &[u8]) -> bool {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    if buf[0] != b'$' {
        return true;
    }
    let len: i64 = std::str::from_utf8(&buf[1..eol]).unwrap().parse().unwrap();
    len < 0 || buf.len() >= eol + 2 + len as usize + 2
}

/// `GET key`: the value, or `None` for nil.
pub fn get(port: u16, key: &str) -> Option<String> {
    let r = resp(port, &["GET", key]);
    if r.starts_with("$-1") {
        return None;
    }
    let (_, rest) = r.split_once("\r\n").expect("a bulk reply");
    Some(rest.trim_end_matches("\r\n").to_owned())
}

/// An integer reply (`PTTL`, `EXISTS`...).
pub fn int(port: u16, words: &[&str]) -> i64 {
    let r = resp(port, words);
    r.strip_prefix(':')
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("not an integer reply: {r:?}"))
}

/// Polls `cond` every 10 ms until it holds or 5 s pass (the stores save after the response
/// is sent, so the server may see a write a moment after the client saw the response).
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The session id in a `connect.sid` cookie (`s%3A<id>.<signature>`).
pub fn session_id(cookie: &str) -> String {
    let value = cookie.split_once('=').expect("name=value").1;
    let value = value.split(';').next().unwrap().replace("%3A", ":");
    let signed = value.strip_prefix("s:").expect("a signed value");
    signed.rsplit_once('.').expect("id.signature").0.to_owned()
}

/// A running node process; killed (by pid) on drop.
pub struct NodeApp(pub std::process::Child);

impl Drop for NodeApp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `node tests/node_redis/<script> <args>`, which prints its port.
pub fn serve_node(script: &str, args: &[&str]) -> (NodeApp, SocketAddr) {
    use std::io::BufRead;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node_redis");
    assert!(
        dir.join("node_modules/express").is_dir(),
        "tests/node_redis/node_modules is missing: run ./test.sh (it runs `npm ci --prefix tests/node_redis`)"
    );
    let mut child = std::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node (v20) must be installed");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the node app prints its port");
    (NodeApp(child), SocketAddr::from(([127, 0, 0, 1], port)))
}
