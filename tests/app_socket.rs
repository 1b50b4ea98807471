//! The app layer over real loopback sockets: the seed example, static files (index, dotfiles,
//! traversal), send_file with ETag/304 and Range (206/416), body limits, logging.

mod express_twin;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use oneloop::app::{body, files, logger, App, Body};
use oneloop::http::ServerConfig;
use oneloop::runtime::{Loop, LoopOptions};
use serde_json::json;

/// Starts `build()`'s app on its own thread and loop; the thread lives until the test ends.
use express_twin::serve_oneloop as serve;

/// Sends one request with `Connection: close` and returns (status, headers, body).
fn request(addr: SocketAddr, raw: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head[9..12].parse().unwrap();
    (status, head, buf[split + 4..].to_vec())
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> (u16, String, Vec<u8>) {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n"),
    )
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A fresh fixture directory per test (`tag`): tests run in parallel threads, and rewriting one
/// shared directory raced with another test reading it.
fn fixture_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oneloop-static-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(dir.join("hello.txt"), "0123456789").unwrap();
    std::fs::write(dir.join(".secret"), "nope").unwrap();
    std::fs::write(dir.join("sub/index.html"), "sub index").unwrap();
    std::fs::write(dir.join("style.css"), "body{}").unwrap();
    dir
}

#[test]
fn seed_example_over_a_socket() {
    let addr = serve(|| {
        let mut app = App::new();
        app.get("/api/products", |_req, res| {
            res.json(&json!({"products": []}))
        });
        app
    });
    let (status, head, body) = get(addr, "/api/products", "");
    assert_eq!(status, 200);
    assert_eq!(
        header(&head, "content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(body, br#"{"products":[]}"#);
}

#[test]
fn static_files_serve_index_types_and_refuse_dotfiles_and_traversal() {
    let dir = fixture_dir("static");
    let root = dir.clone();
    let addr = serve(move || {
        let mut app = App::new();
        let stat = files::static_files_with(
            root,
            files::StaticOptions {
                max_age_secs: Some(60),
                index: true,
            },
        );
        app.use_(move |req, res, next| stat(req, res, next));
        app
    });
    let (s, head, body) = get(addr, "/", "");
    assert_eq!((s, body.as_slice()), (200, &b"<h1>home</h1>"[..]));
    assert_eq!(
        header(&head, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&head, "cache-control"), Some("public, max-age=60"));
    let (s, _, body) = get(addr, "/sub/", "");
    assert_eq!((s, body.as_slice()), (200, &b"sub index"[..]));
    let (s, head, _) = get(addr, "/style.css", "");
    assert_eq!(s, 200);
    assert_eq!(
        header(&head, "content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(get(addr, "/.secret", "").0, 404);
    assert_eq!(get(addr, "/../Cargo.toml", "").0, 403);
    assert_eq!(get(addr, "/sub/%2e%2e/%2e%2e/etc/passwd", "").0, 403);
    assert_eq!(get(addr, "/missing.txt", "").0, 404);
}

#[test]
fn send_file_answers_304_on_etag_and_206_or_416_on_ranges() {
    let dir = fixture_dir("send-file");
    let file = dir.join("hello.txt");
    let addr = serve(move || {
        let mut app = App::new();
        app.get("/f", move |req, res| res.send_file(req, &file));
        app
    });
    let (s, head, body) = get(addr, "/f", "");
    assert_eq!((s, body.as_slice()), (200, &b"0123456789"[..]));
    assert_eq!(
        header(&head, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(header(&head, "last-modified").is_some());
    let etag = header(&head, "etag").unwrap().to_string();
    let (s, _, body) = get(addr, "/f", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(s, 304);
    assert!(body.is_empty());
    let (s, head, body) = get(addr, "/f", "Range: bytes=2-5\r\n");
    assert_eq!((s, body.as_slice()), (206, &b"2345"[..]));
    assert_eq!(header(&head, "content-range"), Some("bytes 2-5/10"));
    let (s, _, body) = get(addr, "/f", "Range: bytes=-3\r\n");
    assert_eq!((s, body.as_slice()), (206, &b"789"[..]));
    let (s, head, _) = get(addr, "/f", "Range: bytes=50-\r\n");
    assert_eq!(s, 416);
    assert_eq!(header(&head, "content-range"), Some("bytes */10"));
}

#[test]
fn json_bodies_over_a_socket_parse_and_limits_answer_413() {
    let addr = serve(|| {
        let mut app = App::new();
        app.use_(|req, res, next| logger::logger()(req, res, next));
        let parser = body::json();
        app.use_(move |req, res, next| parser(req, res, next));
        app.post("/p", |req, res| match &req.body {
            Body::Json(v) => res.status(201).json(v),
            _ => res.status(400).send_text("no body"),
        });
        app
    });
    let payload = r#"{"name":"lamp","price":12}"#;
    let (s, _, body) = request(
        addr,
        &format!(
            "POST /p HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
            payload.len()
        ),
    );
    assert_eq!(s, 201);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["name"],
        "lamp"
    );
    // Chunked, over the 100 KiB default limit: 413 while streaming.
    let chunk = "x".repeat(60 * 1024);
    let raw = format!(
        "POST /p HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    assert_eq!(request(addr, &raw).0, 413);
    let (s, _, _) = request(
        addr,
        "POST /p HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{nope",
    );
    assert_eq!(s, 400);
}

/// [`serve`] on a loop made by `make_loop` (a hook installed, a pool size chosen).
fn serve_on(
    make_loop: impl FnOnce() -> Loop + Send + 'static,
    build: impl FnOnce() -> App + Send + 'static,
) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let app = build();
        let mut lp = make_loop();
        let server = app
            .listen_on(&mut lp, "127.0.0.1:0", ServerConfig::default(), |_, _| {})
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        lp.set_timeout(20_000, |lp| lp.stop());
        lp.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap()
}

/// A loop whose uncaught-panic hook counts into `count`.
fn loop_with_counting_hook(count: Arc<AtomicUsize>) -> impl FnOnce() -> Loop + Send {
    move || {
        let mut lp = Loop::new().unwrap();
        lp.on_uncaught_panic(move |_lp, p| {
            assert!(p.message().contains("deferred bug"), "{p}");
            count.fetch_add(1, Ordering::SeqCst);
        });
        lp
    }
}

#[test]
fn panic_in_timer_reaches_uncaught_hook_and_loop_keeps_serving() {
    let panics = Arc::new(AtomicUsize::new(0));
    let addr = serve_on(loop_with_counting_hook(Arc::clone(&panics)), || {
        let mut app = App::new();
        app.get("/later", |_req, res| {
            let res = res.clone();
            res.loop_handle().clone().set_timeout(5, move |_lp| {
                res.set("x-half", "done"); // holds the response, then fails
                panic!("deferred bug in a timer");
            });
        });
        app.get("/ok", |_req, res| res.send_text("ok"));
        app
    });
    // The panic is attributable to the request (its callback held the open response): 500.
    let (s, _, body) = get(addr, "/later", "");
    assert_eq!((s, body.as_slice()), (500, &b"Internal Server Error"[..]));
    assert_eq!(panics.load(Ordering::SeqCst), 1);
    // And the loop goes on serving.
    let (s, _, body) = get(addr, "/ok", "");
    assert_eq!((s, body.as_slice()), (200, &b"ok"[..]));
}

#[test]
fn panic_in_pool_completion_or_deferred_next_answers_its_request_500() {
    let panics = Arc::new(AtomicUsize::new(0));
    let addr = serve_on(loop_with_counting_hook(Arc::clone(&panics)), || {
        let mut app = App::new();
        app.use_(|req, _res, next| {
            if req.path() == "/mw" {
                // A middleware's deferred continuation panics while holding `next`.
                req.loop_handle().set_timeout(1, move |_lp| {
                    let _keep = next;
                    panic!("deferred bug in middleware");
                });
            } else {
                next.call();
            }
        });
        app.get("/work", |_req, res| {
            let res = res.clone();
            res.loop_handle().clone().queue_work(
                || Err::<u64, &str>("disk on fire"),
                move |_lp, r| {
                    let n = r.unwrap().expect("deferred bug in a completion");
                    res.json(&json!({ "n": n }));
                },
            );
        });
        app
    });
    for path in ["/work", "/mw", "/work"] {
        let (s, _, _) = get(addr, path, "");
        assert_eq!(s, 500, "{path}");
    }
    assert_eq!(panics.load(Ordering::SeqCst), 3);
}

#[test]
fn missing_static_file_fall_through_is_not_cached() {
    let dir = fixture_dir("cache");
    let addr = serve(move || {
        let mut app = App::new();
        let stat = files::static_files_with(
            dir,
            files::StaticOptions {
                max_age_secs: Some(86_400),
                index: true,
            },
        );
        app.use_(move |req, res, next| stat(req, res, next));
        app.get("/health", |_req, res| res.send_text("ok"));
        app
    });
    let (s, head, _) = get(addr, "/health", "");
    assert_eq!((s, header(&head, "cache-control")), (200, None));
    let (s, head, _) = get(addr, "/nope.txt", "");
    assert_eq!((s, header(&head, "cache-control")), (404, None));
    // What the middleware serves itself is cached: 200 and 304.
    let (s, head, _) = get(addr, "/hello.txt", "");
    assert_eq!(s, 200);
    assert_eq!(
        header(&head, "cache-control"),
        Some("public, max-age=86400")
    );
    let etag = header(&head, "etag").unwrap().to_string();
    let (s, head, _) = get(addr, "/hello.txt", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(s, 304);
    assert_eq!(
        header(&head, "cache-control"),
        Some("public, max-age=86400")
    );
}

/// The loop thread must not touch the disk, not even to ask "is this a directory?". Observed
/// through a directory that becomes a file between the middleware call (loop thread) and the
/// pool job: a one-thread pool runs a job queued just before the middleware's own, and that
/// job swaps `thing/` (with an `index.html`) for a plain file `thing`. Whatever the answer
/// says about the file must come from the pool job's view: the plain file, no HTML type. A
/// directory check on the loop thread saw the directory and typed the file `text/html`.
#[test]
fn static_middleware_never_stats_on_the_loop_thread() {
    let dir = fixture_dir("loop-thread-stat");
    let _ = std::fs::remove_file(dir.join("thing")); // left by an earlier run
    std::fs::create_dir_all(dir.join("thing")).unwrap();
    std::fs::write(dir.join("thing/index.html"), "<h1>dir</h1>").unwrap();
    let root = dir.clone();
    let one_thread_pool = || {
        Loop::with_options(LoopOptions {
            threadpool_size: 1,
            ..LoopOptions::default()
        })
        .unwrap()
    };
    let addr = serve_on(one_thread_pool, move || {
        let mut app = App::new();
        let swap_dir = root.join("thing");
        app.use_(move |req, _res, next| {
            let swap_dir = swap_dir.clone();
            req.loop_handle().queue_work(
                move || {
                    std::fs::remove_dir_all(&swap_dir).unwrap();
                    std::fs::write(&swap_dir, "plain file").unwrap();
                },
                |_lp, _| {},
            );
            next.call();
        });
        let stat = files::static_files(root);
        app.use_(move |req, res, next| stat(req, res, next));
        app
    });
    let (s, head, body) = get(addr, "/thing", "");
    assert_eq!((s, body.as_slice()), (200, &b"plain file"[..]));
    assert_eq!(
        header(&head, "content-type"),
        Some("application/octet-stream")
    );
}

/// Bytes `0..len` of a pattern no two nearby offsets share, so a misplaced chunk is caught.
fn patterned(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect()
}

#[test]
fn send_file_streams_a_large_file_whole_by_range_and_for_head() {
    let dir = fixture_dir("large");
    let content = patterned(5 << 20);
    std::fs::write(dir.join("big.bin"), &content).unwrap();
    let file = dir.join("big.bin");
    let addr = serve(move || {
        let mut app = App::new();
        app.get("/big", move |req, res| res.send_file(req, &file));
        app
    });
    let (s, head, body) = get(addr, "/big", "");
    assert_eq!(s, 200);
    assert_eq!(header(&head, "content-length"), Some("5242880"));
    assert_eq!(header(&head, "transfer-encoding"), None);
    assert!(body == content, "the streamed body differs from the file");

    let (s, head, body) = get(addr, "/big", "Range: bytes=1000000-3000000\r\n");
    assert_eq!(s, 206);
    assert_eq!(
        header(&head, "content-range"),
        Some("bytes 1000000-3000000/5242880")
    );
    assert!(body == content[1_000_000..=3_000_000], "range body differs");

    let (s, head, body) = request(
        addr,
        "HEAD /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((s, body.len()), (200, 0));
    assert_eq!(header(&head, "content-length"), Some("5242880"));
}

#[test]
fn a_handler_calls_an_upstream_from_the_loop_with_an_overall_deadline() {
    let own_port = Arc::new(std::sync::atomic::AtomicU16::new(0));
    let p = Arc::clone(&own_port);
    let addr = serve(move || {
        let mut app = App::new();
        // An upstream that answers after 2 s, on the same server.
        app.get("/slow", |req, res| {
            let res = res.clone();
            req.with_loop(move |lp| {
                lp.set_timeout(2_000, move |_lp| res.send_text("late"));
            });
        });
        app.get("/proxy", move |req, res| {
            let port = p.load(Ordering::SeqCst);
            let res = res.clone();
            req.with_loop(move |lp| {
                let url = format!("http://127.0.0.1:{port}/slow");
                let upstream = oneloop::http::ClientRequest::new("GET", &url)
                    .expect("a valid URL")
                    .deadline_ms(200); // the whole exchange, connecting included
                let _ = oneloop::http::request(lp, upstream, move |_lp, result| match result {
                    Ok(up) => res.send_bytes(up.body()),
                    Err(e) => res.status(504).send_text(format!("upstream: {e}")),
                });
            });
        });
        app
    });
    own_port.store(addr.port(), Ordering::SeqCst);
    let (status, _, body) = get(addr, "/proxy", "");
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("timed out"));
}
