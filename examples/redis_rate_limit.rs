//! One rate limit across processes: `GET /` allows `--limit` (5) requests per `--window-ms`
//! (60,000) per client address, counted in Redis by rate-limit-redis' Lua script, so every
//! process started with the same `--redis URL` shares the windows:
//!
//! ```text
//! cargo run --example redis_rate_limit -- --redis redis://127.0.0.1:6379 --port 3001 &
//! cargo run --example redis_rate_limit -- --redis redis://127.0.0.1:6379 --port 3002 &
//! for i in $(seq 12); do curl -s -o /dev/null -w '%{http_code}\n' localhost:300$((i % 2 + 1)); done
//! ```
//!
//! prints five 200s and seven 429s. Prints `listening on http://ADDR` once listening.
use std::rc::Rc;
use std::time::Duration;

use oneloop::app::rate_limit::{limiter, RateLimit};
use oneloop::app::App;
use oneloop::http::ServerConfig;
use oneloop::redis::stores::RedisRateStore;
use oneloop::redis::{Redis, RedisOptions};
use oneloop::runtime::Loop;

/// The value after `--name`, parsed, or `default`.
fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    let Some(i) = args.iter().position(|a| a == name) else {
        return default;
    };
    match args.get(i + 1).and_then(|v| v.parse().ok()) {
        Some(v) => v,
        None => {
            eprintln!(
                "usage: redis_rate_limit [--redis URL] [--port N] [--limit N] [--window-ms MS]"
            );
            std::process::exit(2);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let url: String = arg(&args, "--redis", "redis://127.0.0.1:6379".to_string());
    let port: u16 = arg(&args, "--port", 3000);
    let limit: u64 = arg(&args, "--limit", 5);
    let window = Duration::from_millis(arg(&args, "--window-ms", 60_000));

    let mut lp = Loop::new()?;
    let redis = Redis::connect(&mut lp, &url, RedisOptions::default())?;
    let mut app = App::new();
    app.use_mw(limiter(RateLimit {
        store: Rc::new(RedisRateStore::new(&lp, redis)),
        ..RateLimit::per(window, limit)
    }));
    app.get("/", |_req, res| res.send_text("ok"));
    app.use_error(|err, _req, res, _next| {
        res.status(err.status).send_text(&err.message);
    });
    app.listen_on(
        &mut lp,
        ("127.0.0.1", port),
        ServerConfig::default(),
        |_lp, addr| println!("listening on http://{addr}"),
    )?;
    lp.run()?;
    Ok(())
}
