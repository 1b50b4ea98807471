//! More than one machine, on loopback: `deploy/multi_instance.sh` runs three chat instances on
//! 127.0.0.2-4, one redis-server and nginx in front (all real processes, stopped by pid). A
//! chat message crosses instances (directly and through nginx), a rolling restart of all
//! three under HTTP load through nginx fails no request, and killing redis-server keeps
//! delivery local until it is back.

mod chat_common;
mod examples_common;
mod ws_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_common::{exactly_once_exchange, hub_stats, numsub, ChatClient, ROOM_CHANNEL};
use examples_common::example_binary;

const ADDRS: [[u8; 4]; 3] = [[127, 0, 0, 2], [127, 0, 0, 3], [127, 0, 0, 4]];

/// A port free on 127.0.0.2, .3 and .4 alike (the instances share it).
fn port_free_on_all() -> u16 {
    'next: for _ in 0..50 {
        let l = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let port = l.local_addr().unwrap().port();
        for a in &ADDRS[1..] {
            if TcpListener::bind(SocketAddr::from((*a, port))).is_err() {
                continue 'next;
            }
        }
        return port;
    }
    panic!("no port free on 127.0.0.2-4");
}

fn free_port() -> u16 {
    examples_common::free_port()
}

/// The deployment; `down` (every process by its pid) when dropped, pass or fail.
struct Deployment {
    dir: PathBuf,
    chat_port: u16,
    nginx: SocketAddr,
    redis_port: u16,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/multi_instance.sh")
}

impl Deployment {
    fn up() -> Deployment {
        for (tool, package) in [
            ("nginx", "nginx"),
            ("redis-server", "redis-server"),
            ("curl", "curl"),
        ] {
            let found = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}"))
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "{tool} is missing: this test runs the real one; install it with \
                 `apt-get install -y {package}` (./test.sh does)"
            );
        }
        let dir = std::env::temp_dir().join(format!("oneloop-multi-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = Deployment {
            dir,
            chat_port: port_free_on_all(),
            nginx: SocketAddr::from(([127, 0, 0, 1], free_port())),
            redis_port: free_port(),
        };
        let chat = example_binary("chat");
        let out = Command::new(script())
            .arg("up")
            .arg(&d.dir)
            .env("CHAT_BIN", chat)
            .env("CHAT_PORT", d.chat_port.to_string())
            .env("NGINX_LISTEN", d.nginx.to_string())
            .env("REDIS_PORT", d.redis_port.to_string())
            .output()
            .expect("run deploy/multi_instance.sh");
        d.check("up", out);
        d
    }

    fn run(&self, args: &[&str]) {
        let out = Command::new(script())
            .arg(args[0])
            .arg(&self.dir)
            .args(&args[1..])
            .output()
            .expect("run deploy/multi_instance.sh");
        self.check(args[0], out);
    }

    fn check(&self, what: &str, out: std::process::Output) {
        assert!(
            out.status.success(),
            "multi_instance.sh {what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn instance(&self, n: usize) -> SocketAddr {
        SocketAddr::from((ADDRS[n], self.chat_port))
    }

    /// Waits (at most 10 s) until `want(redis stats)` holds on instance `n`.
    fn wait_stats(&self, n: usize, what: &str, want: impl Fn(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = hub_stats(self.instance(n));
            if want(&s["redis"]) {
                return;
            }
            assert!(Instant::now() < deadline, "instance {n}: {what}: {s}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the room has one Redis subscriber per instance some client is on.
    fn wait_subscribed(&self, clients: &[&ChatClient]) {
        let mut pids: Vec<u64> = clients.iter().map(|c| c.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        let deadline = Instant::now() + Duration::from_secs(10);
        while numsub(self.redis_port, ROOM_CHANNEL) != pids.len() as u64 {
            assert!(
                Instant::now() < deadline,
                "room subscribers never reached {}",
                pids.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("down").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Keep-alive `GET /` through nginx from `threads` threads until `stop`, bounded by
/// `max_each` requests per thread: (requests, failures and what the first failure was).
fn load(
    at: SocketAddr,
    threads: usize,
    max_each: u64,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<(u64, u64, Option<String>)>> {
    (0..threads)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut ok, mut failed, mut first) = (0u64, 0u64, None);
                let mut conn: Option<TcpStream> = None;
                while !stop.load(Ordering::Relaxed) && ok + failed < max_each {
                    let s = match conn.take() {
                        Some(s) => s,
                        None => match TcpStream::connect(at) {
                            Ok(s) => {
                                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                                s
                            }
                            Err(e) => {
                                failed += 1;
                                first.get_or_insert(format!("connect: {e}"));
                                continue;
                            }
                        },
                    };
                    match get_root(s) {
                        Ok(s) => {
                            ok += 1;
                            conn = s;
                        }
                        Err(e) => {
                            failed += 1;
                            first.get_or_insert(e);
                        }
                    }
                }
                (ok, failed, first)
            })
        })
        .collect()
}

/// One `GET /` on `s`: Ok(the connection, if still open) on a 200, Err(why) otherwise.
fn get_root(mut s: TcpStream) -> Result<Option<TcpStream>, String> {
    s.write_all(b"GET / HTTP/1.1\r\nHost: chat\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(head.lines().next().unwrap_or("").to_string());
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or("no content-length")?;
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).map_err(|e| format!("read body: {e}"))?;
                if n == 0 {
                    return Err("EOF in the body".into());
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            let close = head.contains("connection: close");
            return Ok((!close).then_some(s));
        }
        let n = s.read(&mut tmp).map_err(|e| format!("read head: {e}"))?;
        if n == 0 {
            return Err(format!("EOF before a response ({} bytes read)", buf.len()));
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

#[test]
fn three_instances_behind_nginx_share_a_room_survive_a_rolling_restart_and_a_redis_outage() {
    let d = Deployment::up();

    // 1. Through instance A (127.0.0.2) to a client on instance C (127.0.0.4), and to a client
    //    that came in through nginx (any instance), each message once and in order.
    let mut clients = vec![
        ChatClient::connect(d.instance(0)),
        ChatClient::connect(d.instance(0)),
        ChatClient::connect(d.instance(2)),
        ChatClient::connect(d.nginx),
    ];
    d.wait_subscribed(&clients.iter().collect::<Vec<_>>());
    exactly_once_exchange(&mut clients, 0, 2, 20);
    // And from the nginx client to everyone.
    clients[3].say("n", "via nginx");
    for c in clients.iter_mut() {
        assert_eq!(c.next_chat(), "n: via nginx");
    }
    drop(clients); // closed before the restart (a drain waits for open WebSockets)

    // 2. Rolling restart of all three under load through nginx: no request may fail.
    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(d.nginx, 4, 200_000, Arc::clone(&stop));
    std::thread::sleep(Duration::from_millis(300));
    d.run(&["rolling"]);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let total = AtomicU64::new(0);
    let mut failures = Vec::new();
    for w in workers {
        let (ok, failed, first) = w.join().unwrap();
        total.fetch_add(ok, Ordering::Relaxed);
        if failed > 0 {
            failures.push(format!("{failed} failed, first: {first:?}"));
        }
    }
    let total = total.into_inner();
    assert!(
        failures.is_empty(),
        "failed requests during the rolling restart: {failures:?}"
    );
    assert!(total > 100, "only {total} requests went through");
    eprintln!("rolling restart: {total} requests through nginx, 0 failed");

    // 3. After the restart the room works again across instances.
    let mut a = ChatClient::connect(d.instance(0));
    let mut a2 = ChatClient::connect(d.instance(0));
    let mut c = ChatClient::connect(d.instance(2));
    d.wait_subscribed(&[&a, &c]);
    a.say("a", "after the restart");
    for cl in [&mut a, &mut a2, &mut c] {
        assert_eq!(cl.next_chat(), "a: after the restart");
    }

    // 4. redis-server killed: A's room still works locally, C gets nothing, and nothing of
    //    the outage arrives late; cross-instance delivery recovers when it is back.
    d.run(&["redis-kill"]);
    d.wait_stats(0, "A notices Redis is gone", |r| {
        r["publisher_ready"] == false
    });
    a.say("a", "during the outage");
    assert_eq!(a.next_chat(), "a: during the outage");
    assert_eq!(a2.next_chat(), "a: during the outage");
    d.wait_stats(0, "the local-only publish is counted", |r| {
        r["publish_failed"].as_u64() >= Some(1)
    });
    d.run(&["redis-start"]);
    for n in 0..3 {
        d.wait_stats(n, "reconnected", |r| {
            r["publisher_ready"] == true && r["subscriber_ready"] == true
        });
    }
    d.wait_subscribed(&[&a, &c]);
    a.say("a", "Redis is back");
    assert_eq!(c.next_chat(), "a: Redis is back");
    assert_eq!(a2.next_chat(), "a: Redis is back");
    c.say("c", "C to A");
    assert_eq!(a.next_chat(), "a: Redis is back");
    assert_eq!(a.next_chat(), "c: C to A");
}
