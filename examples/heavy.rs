//! A CPU-heavy route, three ways: `cargo run --release --example heavy` (port 3000).
//!
//! The benchmark server for benches/compare's "CPU-heavy" row (see benches/compare/run.sh):
//! - `GET /heavy-blocking`: ~5 ms of hashing (iterated SHA-1) right in the request callback, so
//!   the loop can do nothing else meanwhile (what a naive Node handler does);
//! - `GET /heavy-pool`: the same work on the loop's thread pool ([`Loop::queue_work`], 4
//!   threads or `ONELOOP_THREADPOOL_SIZE`), the response sent from the completion callback;
//! - `GET /` and `/plaintext`: `Hello, World!`, the cheap request whose latency shows whether
//!   the heavy ones hold everybody up.
//!
//! `--threaded` serves the same routes on the thread-per-connection baseline
//! (`oneloop::threaded`); there both heavy routes hash on the connection's own thread.
//!
//! The work is a fixed number of SHA-1 iterations, calibrated once at start-up so that it takes
//! `HEAVY_MS` (5) milliseconds on this machine (the fastest of 15 timing trials), or exactly
//! `HEAVY_ITERS` iterations when that is set. The ready line prints the count.
//! `PORT` (3000) and `HOST` (127.0.0.1) from the environment, `--port N` overrides.
//!
//! [`Loop::queue_work`]: oneloop::runtime::Loop::queue_work
use std::env;
use std::time::{Duration, Instant};

use oneloop::http;
use oneloop::runtime::Loop;
use oneloop::threaded::{self, ThreadedConfig, ThreadedRequest, ThreadedResponse};

const HELLO: &[u8] = b"Hello, World!";

/// `iters` rounds of SHA-1 over the previous digest; the hex of the last one.
fn work(iters: u32) -> String {
    let mut digest = [0u8; 20];
    for _ in 0..iters {
        digest = sha1_smol::Sha1::from(digest).digest().bytes();
    }
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Iterations that take `ms` milliseconds: the fastest of 15 trials of 1,000 (the fastest is
/// the one least disturbed by other processes on a shared machine).
fn calibrate(ms: f64) -> u32 {
    let best = (0..15)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(work(std::hint::black_box(1000)));
            t.elapsed()
        })
        .min()
        .unwrap_or(Duration::from_millis(1));
    ((ms / 1e3) / (best.as_secs_f64() / 1000.0))
        .round()
        .max(1.0) as u32
}

fn threaded_route(iters: u32, req: &ThreadedRequest, res: &mut ThreadedResponse) {
    match (req.method(), req.path()) {
        ("GET", "/heavy-blocking" | "/heavy-pool") => {
            res.set_header("content-type", "text/plain");
            res.end(work(iters));
        }
        ("GET" | "HEAD", "/" | "/plaintext") => {
            res.set_header("content-type", "text/plain");
            res.end(HELLO);
        }
        _ => {
            res.status(404).set_header("content-type", "text/plain");
            res.end("Not Found");
        }
    }
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let args: Vec<String> = env::args().collect();
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| env::var("PORT").ok())
        .unwrap_or_else(|| "3000".into());
    let host = env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let addr = format!("{host}:{port}");
    let ms: f64 = env::var("HEAVY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let iters: u32 = match env::var("HEAVY_ITERS").ok().and_then(|v| v.parse().ok()) {
        Some(n) => n,
        None => calibrate(ms),
    };
    let t = Instant::now();
    std::hint::black_box(work(iters));
    let once = t.elapsed().as_secs_f64() * 1e3;

    if args.iter().any(|a| a == "--threaded") {
        let server = threaded::create_server(ThreadedConfig::default(), move |req, res| {
            threaded_route(iters, req, res)
        });
        let listening = server.listen(addr)?;
        println!(
            "heavy (threaded): listening on http://{} ({iters} SHA-1 iterations, {once:.1} ms)",
            listening.local_addr()
        );
        listening.join();
        return Ok(());
    }

    let mut lp = Loop::new()?;
    let server = http::create_server(&mut lp, move |lp, req, res| {
        match (req.method(), req.path()) {
            ("GET", "/heavy-blocking") => {
                res.set_header("content-type", "text/plain");
                res.end(work(iters));
            }
            ("GET", "/heavy-pool") => {
                let queued = lp.queue_work(
                    move || work(iters),
                    move |_lp, digest| match digest {
                        Ok(hex) => {
                            res.set_header("content-type", "text/plain");
                            res.end(hex);
                        }
                        Err(e) => {
                            res.status(500).end(e.to_string());
                        }
                    },
                );
                if let Err(e) = queued {
                    log::error!("heavy: queue_work: {e}");
                }
            }
            ("GET" | "HEAD", "/" | "/plaintext") => {
                res.set_header("content-type", "text/plain");
                res.end(HELLO);
            }
            _ => {
                res.status(404).set_header("content-type", "text/plain");
                res.end("Not Found");
            }
        }
    });
    server.listen(&mut lp, addr.as_str(), move |_lp, addr| {
        println!("heavy: listening on http://{addr} ({iters} SHA-1 iterations, {once:.1} ms)");
    })?;
    lp.run()
}
