//! Rate limiting against Express 5 + express-rate-limit 8.7.5 (tests/node/rate_limit_app.js):
//! the same sequence of requests (one client, clients behind a trusted proxy with different
//! `X-Forwarded-For`, API keys) must get the same statuses and the same rate-limit headers at
//! every step; seconds-until-reset may differ by one (the two servers' clocks tick apart).
//! Also: the memory store shared by two loops on two threads counts once for both.

mod express_twin;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use express_twin::{exchange, serve_express, serve_oneloop};
use oneloop::app::rate_limit::{
    limiter, KeyBy, MemoryRateStore, RateLimit, StandardHeaders, TrustProxy,
};
use oneloop::app::App;

const HEADERS: [&str; 9] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit",
    "retry-after",
];

fn oneloop_app() -> App {
    let mut app = App::new();
    let base = RateLimit {
        window: Duration::from_secs(60),
        trust_proxy: TrustProxy::Hops(1),
        ..RateLimit::default()
    };
    app.use_mw_at(
        "/a",
        limiter(RateLimit {
            limit: 3,
            ..base.clone()
        }),
    );
    app.use_mw_at(
        "/b",
        limiter(RateLimit {
            limit: 2,
            standard_headers: Some(StandardHeaders::Draft6),
            legacy_headers: false,
            store: Rc::new(MemoryRateStore::default()),
            ..base.clone()
        }),
    );
    app.use_mw_at(
        "/c",
        limiter(RateLimit {
            window: Duration::from_secs(30),
            limit: 1,
            standard_headers: Some(StandardHeaders::Draft7),
            store: Rc::new(MemoryRateStore::default()),
            ..base.clone()
        }),
    );
    app.use_mw_at(
        "/k",
        limiter(RateLimit {
            limit: 2,
            key: KeyBy::header("x-api-key"),
            store: Rc::new(MemoryRateStore::default()),
            ..base
        }),
    );
    for p in ["/a", "/b", "/c", "/k"] {
        app.get(p, |_req, res| res.type_("text/plain").send("ok"));
    }
    app
}

/// A number that counts seconds: compared with a tolerance of one.
fn is_seconds(name: &str, value: &str) -> bool {
    name == "x-ratelimit-reset"
        || name == "ratelimit-reset"
        || name == "retry-after"
        || value.contains("reset=")
}

fn step(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>) {
    let reply = exchange(addr, "GET", path, headers);
    let kept = HEADERS
        .iter()
        .filter_map(|h| reply.all(h).first().map(|v| (h.to_string(), v.to_string())))
        .collect();
    (reply.status, kept)
}

fn seconds_in(value: &str) -> u64 {
    let digits: String = value
        .rsplit(['=', ' '])
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(u64::MAX)
}

#[test]
fn limits_and_headers_match_express_rate_limit() {
    let (_twin, express) = serve_express("rate_limit_app.js", &["express-rate-limit", "express"]);
    let oneloop = serve_oneloop(oneloop_app);
    let sequence: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/a", vec![]),
        ("/a", vec![]),
        ("/a", vec![]),
        ("/a", vec![]),
        ("/a", vec![]),
        ("/b", vec![("X-Forwarded-For", "1.1.1.1")]),
        ("/b", vec![("X-Forwarded-For", "9.9.9.9, 1.1.1.1")]),
        ("/b", vec![("X-Forwarded-For", "1.1.1.1")]),
        ("/b", vec![("X-Forwarded-For", "2.2.2.2")]),
        ("/c", vec![]),
        ("/c", vec![]),
        ("/k", vec![("X-Api-Key", "alpha")]),
        ("/k", vec![("X-Api-Key", "alpha")]),
        ("/k", vec![("X-Api-Key", "alpha")]),
        ("/k", vec![("X-Api-Key", "beta")]),
        ("/k", vec![]),
    ];
    for (i, (path, headers)) in sequence.iter().enumerate() {
        let (their_status, theirs) = step(express, path, headers);
        let (our_status, ours) = step(oneloop, path, headers);
        let context =
            format!("step {i}: {path} {headers:?}\n express {theirs:?}\n oneloop {ours:?}");
        assert_eq!(our_status, their_status, "{context}");
        let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&ours), names(&theirs), "{context}");
        for ((name, ov), (_, tv)) in ours.iter().zip(&theirs) {
            if is_seconds(name, tv) {
                let (a, b) = (seconds_in(ov), seconds_in(tv));
                assert!(a.abs_diff(b) <= 1, "{name}: {ov} vs {tv}\n{context}");
                let strip = |v: &str| {
                    v.rsplit_once("reset=")
                        .map_or(String::new(), |(h, _)| h.to_owned())
                };
                assert_eq!(strip(ov), strip(tv), "{context}");
            } else {
                assert_eq!(ov, tv, "{name}\n{context}");
            }
        }
    }
}

#[test]
fn one_memory_store_counts_for_every_worker_sharing_it() {
    let store = MemoryRateStore::default();
    let app_with = |store: MemoryRateStore| {
        move || {
            let mut app = App::new();
            app.use_mw(limiter(RateLimit {
                limit: 4,
                store: Rc::new(store),
                ..RateLimit::default()
            }));
            app.get("/", |_req, res| res.send("ok"));
            app
        }
    };
    // Two loops on two threads, as two cluster workers.
    let w1 = serve_oneloop(app_with(store.clone()));
    let w2 = serve_oneloop(app_with(store.clone()));
    let statuses: Vec<u16> = (0..6)
        .map(|i| exchange(if i % 2 == 0 { w1 } else { w2 }, "GET", "/", &[]).status)
        .collect();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 429, 429],
        "4 allowed across both workers"
    );
    assert_eq!(store.len(), 1);
}
