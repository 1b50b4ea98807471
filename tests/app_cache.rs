//! The response cache middleware over real sockets: hits and misses (`X-Cache`), what is not
//! stored (POST, non-200, `no-store`/`private`, cookies), key headers, 304 on a hit, the
//! stampede case (N concurrent requests run the handler once), the memory store's bounds,
//! and the Redis store shared by two loops and degrading to misses when Redis is down.

mod express_twin;
mod redis_common;
mod stores_common;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use express_twin::{exchange, serve_oneloop, Reply};
use oneloop::app::cache::{cache, CacheOptions, CacheStore, CachedResponse, MemoryCacheStore};
use oneloop::app::App;
use oneloop::redis::stores::RedisCacheStore;
use redis_common::RedisServer;
use stores_common::{eventually, get, int, serve_with_redis};

/// Routes behind the cache, each counting its handler runs in `runs`.
fn app(runs: Arc<AtomicUsize>, options: CacheOptions) -> App {
    let mut app = App::new();
    app.use_mw(cache(options));
    let r = Arc::clone(&runs);
    app.get("/slow", move |_req, res| {
        let n = r.fetch_add(1, Ordering::SeqCst) + 1;
        // Answers later, so concurrent requests overlap the handler run.
        let res2 = res.clone();
        res.loop_handle()
            .set_timeout(Duration::from_millis(300), move |_lp| {
                res2.type_("text/plain").send(format!("run {n}"))
            });
    });
    let r = Arc::clone(&runs);
    app.get("/fast", move |req, res| {
        let n = r.fetch_add(1, Ordering::SeqCst) + 1;
        let lang = req.header("accept-language").unwrap_or("-").to_owned();
        res.set("x-custom", "kept");
        res.json(&serde_json::json!({"run": n, "lang": lang}));
    });
    let r = Arc::clone(&runs);
    app.post("/fast", move |_req, res| {
        r.fetch_add(1, Ordering::SeqCst);
        res.send("posted");
    });
    let r = Arc::clone(&runs);
    app.get("/nostore", move |_req, res| {
        r.fetch_add(1, Ordering::SeqCst);
        res.set("cache-control", "no-store").send("fresh");
    });
    let r = Arc::clone(&runs);
    app.get("/private", move |_req, res| {
        r.fetch_add(1, Ordering::SeqCst);
        res.set("cache-control", "private, max-age=60").send("mine");
    });
    let r = Arc::clone(&runs);
    app.get("/cookie", move |_req, res| {
        r.fetch_add(1, Ordering::SeqCst);
        res.cookie("a", "b", &[]).send("with a cookie");
    });
    let r = Arc::clone(&runs);
    app.get("/missing", move |_req, res| {
        r.fetch_add(1, Ordering::SeqCst);
        res.status(404).send("nope");
    });
    app
}

fn x_cache(r: &Reply) -> &str {
    r.all("x-cache").first().copied().unwrap_or("none")
}

fn body(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn a_second_get_is_a_hit_with_the_same_headers_and_body() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let addr = serve_oneloop(move || app(r, CacheOptions::default()));
    let first = exchange(addr, "GET", "/fast", &[]);
    let second = exchange(addr, "GET", "/fast", &[]);
    assert_eq!((x_cache(&first), x_cache(&second)), ("MISS", "HIT"));
    assert_eq!(body(&first), body(&second));
    assert_eq!(second.all("x-custom"), ["kept"]);
    assert_eq!(second.all("content-type"), first.all("content-type"));
    assert_eq!(second.all("content-length"), first.all("content-length"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // A matching If-None-Match is a 304 from the cache.
    let etag = first.all("etag")[0].to_owned();
    let again = exchange(addr, "GET", "/fast", &[("if-none-match", &etag)]);
    assert_eq!((again.status, x_cache(&again)), (304, "HIT"));
    // Another query string is another key; POST is never cached.
    assert_eq!(x_cache(&exchange(addr, "GET", "/fast?page=2", &[])), "MISS");
    exchange(addr, "POST", "/fast", &[]);
    exchange(addr, "POST", "/fast", &[]);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[test]
fn no_store_private_cookies_and_non_200_responses_are_not_stored() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let addr = serve_oneloop(move || app(r, CacheOptions::default()));
    for path in ["/nostore", "/private", "/cookie", "/missing"] {
        let before = runs.load(Ordering::SeqCst);
        let a = exchange(addr, "GET", path, &[]);
        let b = exchange(addr, "GET", path, &[]);
        assert_eq!((x_cache(&a), x_cache(&b)), ("MISS", "MISS"), "{path}");
        assert_eq!(runs.load(Ordering::SeqCst), before + 2, "{path} ran twice");
    }
}

#[test]
fn key_headers_keep_one_entry_per_value() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let addr = serve_oneloop(move || {
        let options = CacheOptions {
            key_headers: vec!["accept-language".into()],
            ..CacheOptions::default()
        };
        app(r, options)
    });
    let en = exchange(addr, "GET", "/fast", &[("accept-language", "en")]);
    let fr = exchange(addr, "GET", "/fast", &[("accept-language", "fr")]);
    let en2 = exchange(addr, "GET", "/fast", &[("accept-language", "en")]);
    assert_eq!(
        (x_cache(&en), x_cache(&fr), x_cache(&en2)),
        ("MISS", "MISS", "HIT")
    );
    assert!(body(&fr).contains("\"fr\""));
    assert_eq!(body(&en), body(&en2));
}

#[test]
fn concurrent_requests_for_one_key_run_the_handler_once() {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&runs);
    let addr = serve_oneloop(move || app(r, CacheOptions::default()));
    let threads: Vec<_> = (0..16)
        .map(|_| std::thread::spawn(move || exchange(addr, "GET", "/slow", &[])))
        .collect();
    let replies: Vec<Reply> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "one handler run for 16 requests"
    );
    for r in &replies {
        assert_eq!((r.status, body(r)), (200, "run 1".to_owned()));
    }
    let misses = replies.iter().filter(|r| x_cache(r) == "MISS").count();
    assert_eq!(misses, 1, "the leader is the only miss");
}

#[test]
fn the_memory_store_keeps_to_its_entry_and_byte_bounds() {
    let entry = |n: usize| CachedResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: Bytes::from(vec![b'x'; n]),
    };
    let store = MemoryCacheStore::new(2, 1_000);
    let ttl = Duration::from_secs(60);
    store.set("a", &entry(10), ttl);
    store.set("b", &entry(10), ttl);
    store.set("c", &entry(10), ttl);
    assert_eq!(store.len(), 2, "at most 2 entries");
    let found = Rc::new(std::cell::Cell::new(None));
    let f = Rc::clone(&found);
    store.get("a", Box::new(move |r| f.set(Some(r.unwrap().is_some()))));
    assert_eq!(
        found.get(),
        Some(false),
        "the least recently used went first"
    );
    store.set("big", &entry(900), ttl);
    assert!(store.bytes() <= 1_000, "{} bytes", store.bytes());
    store.set("huge", &entry(2_000), ttl);
    assert!(store.bytes() <= 1_000);
    // The byte form round-trips and refuses garbage.
    let e = entry(5);
    assert_eq!(CachedResponse::decode(&Bytes::from(e.encode())), Some(e));
    assert_eq!(
        CachedResponse::decode(&Bytes::from_static(b"OLC1\x00")),
        None
    );
}

#[test]
fn the_redis_store_shares_entries_between_loops_and_misses_when_redis_is_down() {
    let mut server = RedisServer::start();
    let runs = Arc::new(AtomicUsize::new(0));
    let serve = |runs: &Arc<AtomicUsize>| {
        let r = Arc::clone(runs);
        serve_with_redis(&server.url(), move |lp, redis| {
            let options = CacheOptions {
                store: Rc::new(RedisCacheStore::new(lp, redis).timeout_ms(300)),
                ..CacheOptions::ttl(Duration::from_secs(30))
            };
            app(r, options)
        })
    };
    let (a, b) = (serve(&runs), serve(&runs));
    let first = exchange(a, "GET", "/fast", &[]);
    assert_eq!(x_cache(&first), "MISS");
    eventually("the entry stored", || {
        get(server.port, "cache:GET /fast").is_some()
    });
    let pttl = int(server.port, &["PTTL", "cache:GET /fast"]);
    assert!(pttl > 25_000 && pttl <= 30_000, "PTTL {pttl}");
    let from_b = exchange(b, "GET", "/fast", &[]);
    assert_eq!(x_cache(&from_b), "HIT", "B answers from A's entry");
    assert_eq!(body(&from_b), body(&first));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    server.kill();
    let down = exchange(a, "GET", "/fast", &[]);
    assert_eq!((down.status, x_cache(&down)), (200, "MISS"));
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the handler answered");
}
