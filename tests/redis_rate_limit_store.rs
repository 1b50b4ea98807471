//! `RedisRateStore` against a real redis-server: one limit across two processes (two
//! `examples/redis_rate_limit` instances), shared with Express + express-rate-limit 8.7.5 +
//! rate-limit-redis 6.0.1 (tests/node_redis/rate_limit_app.js) on the same keys, the
//! EVALSHA → NOSCRIPT → EVAL path after `SCRIPT FLUSH`, and Redis down answered 500.

mod examples_common;
mod express_twin;
mod redis_common;
mod stores_common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use examples_common::{example_binary, free_port, start_and_read_line, Running};
use express_twin::{exchange, Reply};
use redis_common::RedisServer;
use stores_common::{resp, serve_node};

/// Starts one `redis_rate_limit` process on `url` with `limit` per `window_ms`.
fn instance(url: &str, limit: u64, window_ms: u64) -> (Running, SocketAddr) {
    let port = free_port();
    let mut cmd = Command::new(example_binary("redis_rate_limit"));
    cmd.args(["--redis", url, "--port", &port.to_string()])
        .args([
            "--limit",
            &limit.to_string(),
            "--window-ms",
            &window_ms.to_string(),
        ]);
    let (running, line) = start_and_read_line(cmd, Duration::from_secs(30));
    assert!(line.starts_with("listening on"), "{line}");
    (running, SocketAddr::from(([127, 0, 0, 1], port)))
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.all(name).first().copied()
}

/// Sends `n` requests alternating over `servers`; returns (status, remaining) of each.
fn alternate(servers: &[SocketAddr], n: usize) -> Vec<(u16, String, Reply)> {
    (0..n)
        .map(|i| {
            let r = exchange(servers[i % servers.len()], "GET", "/", &[]);
            let remaining = header(&r, "x-ratelimit-remaining")
                .unwrap_or("-")
                .to_owned();
            (r.status, remaining, r)
        })
        .collect()
}

#[test]
fn two_processes_sharing_redis_let_exactly_the_limit_through() {
    let server = RedisServer::start();
    let url = server.url();
    let (_a, a) = instance(&url, 5, 60_000);
    let (_b, b) = instance(&url, 5, 60_000);
    let seen = alternate(&[a, b], 12);
    let statuses: Vec<u16> = seen.iter().map(|s| s.0).collect();
    assert_eq!(statuses, [[200; 5].as_slice(), &[429; 7]].concat());
    let remaining: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(
        remaining,
        ["4", "3", "2", "1", "0", "0", "0", "0", "0", "0", "0", "0"]
    );
    for (status, _, r) in &seen {
        assert_eq!(header(r, "x-ratelimit-limit"), Some("5"));
        assert!(header(r, "x-ratelimit-reset").is_some());
        if *status == 429 {
            let retry: u64 = header(r, "retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
            assert_eq!(
                String::from_utf8_lossy(&r.body),
                "Too many requests, please try again later."
            );
        }
    }
    // rate-limit-redis' key and its PX window.
    let pttl = resp(server.port, &["PTTL", "rl:127.0.0.1"]);
    let pttl: i64 = pttl.trim().trim_start_matches(':').parse().unwrap();
    assert!(pttl > 50_000 && pttl <= 60_000, "PTTL {pttl}");
    assert!(resp(server.port, &["GET", "rl:127.0.0.1"]).ends_with("12\r\n"));
}

#[test]
fn express_rate_limit_with_rate_limit_redis_and_oneloop_count_in_the_same_windows() {
    let server = RedisServer::start();
    let url = server.url();
    let (_ours, ours) = instance(&url, 5, 60_000);
    let (_node, express) = serve_node("rate_limit_app.js", &[&url, "5", "60000"]);
    // The package loads its script at start-up: ours is the same script (the same SHA-1).
    let sha = {
        let lp = oneloop::runtime::Loop::new().unwrap();
        let mut lp = lp;
        let redis = oneloop::redis::Redis::connect(&mut lp, &url, Default::default()).unwrap();
        let store = oneloop::redis::stores::RedisRateStore::new(&lp, redis.clone());
        redis.disconnect(&mut lp);
        store.script_sha1().to_owned()
    };
    stores_common::eventually("rate-limit-redis loaded its script", || {
        resp(server.port, &["SCRIPT", "EXISTS", &sha]) == "*1\r\n:1\r\n"
    });
    let seen = alternate(&[express, ours], 12);
    let statuses: Vec<u16> = seen.iter().map(|s| s.0).collect();
    assert_eq!(statuses, [[200; 5].as_slice(), &[429; 7]].concat());
    let remaining: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(
        remaining,
        ["4", "3", "2", "1", "0", "0", "0", "0", "0", "0", "0", "0"]
    );
    // The same header set and values on both sides (the reset within a second).
    let names = |r: &Reply| -> Vec<String> {
        let mut v: Vec<String> = r
            .headers
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| {
                n.starts_with("x-ratelimit") || n.starts_with("ratelimit") || n == "retry-after"
            })
            .collect();
        v.sort();
        v
    };
    // Pairs (Express, oneloop) answered with the same status: 1-2, 3-4 (200), 7-8.. (429).
    for pair in seen.chunks(2).filter(|p| p[0].0 == p[1].0) {
        let (theirs, mine) = (&pair[0].2, &pair[1].2);
        assert_eq!(names(theirs), names(mine));
        let reset = |r: &Reply| -> i64 { header(r, "x-ratelimit-reset").unwrap().parse().unwrap() };
        assert!((reset(theirs) - reset(mine)).abs() <= 1);
    }
    let last = &seen[11].2;
    assert_eq!(
        String::from_utf8_lossy(&seen[10].2.body),
        String::from_utf8_lossy(&last.body)
    );
}

#[test]
fn a_flushed_script_cache_is_reloaded_with_eval() {
    let server = RedisServer::start();
    let (_a, a) = instance(&server.url(), 3, 60_000);
    assert_eq!(exchange(a, "GET", "/", &[]).status, 200);
    assert!(resp(server.port, &["SCRIPT", "FLUSH"]).starts_with("+OK"));
    let seen = alternate(&[a], 3);
    let remaining: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(
        remaining,
        ["1", "0", "0"],
        "NOSCRIPT answered by EVAL, count kept"
    );
    assert_eq!(seen[2].0, 429);
}

#[test]
fn redis_down_fails_the_request_with_500_instead_of_lifting_the_limit() {
    let mut server = RedisServer::start();
    let (_a, a) = instance(&server.url(), 5, 60_000);
    assert_eq!(exchange(a, "GET", "/", &[]).status, 200);
    server.kill();
    // exchange() reads with a 5 s timeout; the store's is 1 s.
    let r = exchange(a, "GET", "/", &[]);
    assert_eq!(r.status, 500);
}
