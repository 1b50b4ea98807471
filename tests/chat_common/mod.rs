//! `examples/chat.rs` as real processes for the cross-process tests: start it, connect chat
//! clients (the blocking WebSocket client of ws_common), ask Redis who is subscribed, and the
//! exactly-once exchange both ws_redis.rs and deploy_multi.rs check.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::examples_common::{example_binary, start_and_read_line, Running};
use crate::ws_common::Client;

/// The Redis channel of the chat's `room` topic (the bridge's default prefix).
pub const ROOM_CHANNEL: &str = "oneloop:ws#room";

/// Starts `chat --host host --port port` plus `extra`; waits for its "listening" line.
pub fn start_chat(host: &str, port: u16, extra: &[&str]) -> Running {
    let mut cmd = Command::new(example_binary("chat"));
    cmd.args(["--host", host, "--port", &port.to_string()])
        .args(extra)
        .env("RUST_LOG", "warn");
    let (running, line) = start_and_read_line(cmd, Duration::from_secs(20));
    assert!(line.contains("chat: listening on"), "{line}");
    running
}

/// A chat client: the WebSocket plus what the server's welcome said.
pub struct ChatClient {
    pub ws: Client,
    pub worker: u64,
    pub pid: u64,
}

impl ChatClient {
    /// Connects to `/chat` and reads the welcome (always the first frame).
    pub fn connect(addr: SocketAddr) -> ChatClient {
        let mut ws = Client::connect(addr, "/chat");
        let welcome: Value = serde_json::from_str(&ws.read_text()).expect("JSON welcome");
        assert!(
            welcome["system"]
                .as_str()
                .is_some_and(|s| s.starts_with("connected to worker")),
            "{welcome}"
        );
        ChatClient {
            worker: welcome["worker"].as_u64().expect("worker"),
            pid: welcome["pid"].as_u64().expect("pid"),
            ws,
        }
    }

    pub fn say(&mut self, name: &str, text: &str) {
        let m = serde_json::json!({ "name": name, "text": text });
        self.ws.send_text(&m.to_string());
    }

    /// The next chat message as `name: text`, skipping system messages (joined, left).
    pub fn next_chat(&mut self) -> String {
        loop {
            let m: Value = serde_json::from_str(&self.ws.read_text()).expect("JSON");
            if m.get("system").is_some() {
                continue;
            }
            return format!(
                "{}: {}",
                m["name"].as_str().unwrap_or("?"),
                m["text"].as_str().unwrap_or("?")
            );
        }
    }

    /// Reads chat messages up to and including `last`, returning all of them.
    pub fn read_until(&mut self, last: &str) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            let m = self.next_chat();
            let done = m == last;
            got.push(m);
            if done {
                return got;
            }
        }
    }
}

/// Runs a command on the redis-server at `port` and returns its whole reply, raw.
pub fn redis_reply(port: u16, words: &[&str], ends_with_int: bool) -> String {
    let mut cmd = format!("*{}\r\n", words.len());
    for w in words {
        cmd.push_str(&format!("${}\r\n{w}\r\n", w.len()));
    }
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis-server");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(cmd.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut out = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("reply");
        out.push_str(&line);
        if !ends_with_int || line.starts_with(':') || line.is_empty() {
            return out;
        }
    }
}

/// How many connections are subscribed to `channel` (`PUBSUB NUMSUB`).
pub fn numsub(port: u16, channel: &str) -> u64 {
    let reply = redis_reply(port, &["PUBSUB", "NUMSUB", channel], true);
    reply
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(':'))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("PUBSUB NUMSUB reply: {reply:?}"))
}

/// Waits (at most 10 s) until exactly `n` connections are subscribed to the room: every
/// hub with a local room member has its SUBSCRIBE confirmed.
pub fn wait_room_subscribers(redis_port: u16, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = numsub(redis_port, ROOM_CHANNEL);
        if got == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} Redis subscribers of {ROOM_CHANNEL}, expected {n}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exactly-once, in-order exchange. `p` (on hub A) sends `count` messages; then `q` (on
/// another hub, B) sends a marker once everyone has the last one; then `p` sends a second
/// marker. Every client in `all` (p and q included, by index) must have received exactly
/// `m0..m{count-1}, marker1, marker2`, in that order.
///
/// Why the markers prove "no duplicate": Redis runs PUBLISHes one at a time and writes each
/// subscriber connection in that order. Marker 1 is published by B after A's last PUBLISH ran
/// (q had received it), so an echo of any of A's messages would reach A's clients before
/// marker 1; marker 2 is published by A after B's PUBLISH of marker 1 ran, so a second copy
/// of anything at B would arrive before marker 2.
pub fn exactly_once_exchange(all: &mut [ChatClient], p: usize, q: usize, count: usize) {
    assert_ne!(
        all[p].pid * 1000 + all[p].worker,
        all[q].pid * 1000 + all[q].worker
    );
    let sent: Vec<String> = (0..count).map(|i| format!("p: m{i}")).collect();
    for i in 0..count {
        all[p].say("p", &format!("m{i}"));
    }
    let last = sent.last().expect("count > 0").clone();
    let mut got: Vec<Vec<String>> = all.iter_mut().map(|c| c.read_until(&last)).collect();
    all[q].say("q", "marker1");
    for (c, g) in all.iter_mut().zip(got.iter_mut()) {
        g.extend(c.read_until("q: marker1"));
    }
    all[p].say("p", "marker2");
    for (c, g) in all.iter_mut().zip(got.iter_mut()) {
        g.extend(c.read_until("p: marker2"));
    }
    let mut expected = sent;
    expected.push("q: marker1".into());
    expected.push("p: marker2".into());
    for (i, (c, g)) in all.iter().zip(&got).enumerate() {
        assert!(
            g == &expected,
            "client {i} (pid {} worker {}) got {} messages, expected {}; first difference at {:?}",
            c.pid,
            c.worker,
            g.len(),
            expected.len(),
            g.iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .or(Some(g.len().min(expected.len())))
        );
    }
}

/// `GET path` on a fresh connection; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("response");
    let status = buf.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

/// The answering worker's `/hub/stats` as JSON.
pub fn hub_stats(addr: SocketAddr) -> Value {
    let (status, body) = http_get(addr, "/hub/stats");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON stats")
}
