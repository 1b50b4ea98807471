//! The contract routes through the app layer: `cargo run --release --example hello_app`.
//!
//! The app-layer row of the benchmarks (docs/benchmarks.md): the same bytes as `hello`, but
//! every request goes through the router (a table of 20 REST routes plus the contract routes)
//! and one middleware, as `benches/compare/express_app.js` and `fastify_app.js` do. Listens on
//! `PORT` (3000) / `HOST` (127.0.0.1), or `--port N`.
//!
//! `--observe` (or `OBSERVE=1`) adds what a production app runs with: pino-shaped JSON logs on
//! stdout with an access line per request (`LOG_LEVEL`, `LOG_FORMAT=text`), the metrics
//! middleware and `GET /metrics`, `GET /healthz` and `GET /readyz` (as
//! `benches/compare/fastify_observed.js` does with pino and fastify-metrics). Off by default,
//! so the benchmark row measures the bare app.
mod common;

use oneloop::app::{health, metrics::Metrics, App};
use oneloop::health::Readiness;
use oneloop::http::ServerConfig;
use oneloop_runtime::Loop;
use serde_json::json;

fn main() -> std::io::Result<()> {
    let args = common::Args::from_env();
    let observe = args.flag("--observe") || std::env::var("OBSERVE").is_ok_and(|v| v == "1");
    let logs = if observe {
        Some(oneloop::logging::init_from_env()?)
    } else {
        env_logger::init();
        None
    };
    let mut lp = Loop::new()?;
    let mut app = App::new();
    let ready = Readiness::new();
    let mut tracked = None;
    if let Some(logs) = &logs {
        let metrics = Metrics::new();
        metrics.watch_log(logs);
        let worker = metrics.worker(&mut lp, 0);
        // The metrics middleware and the access log as one layer (the same series and lines
        // as `worker.install(&mut app)` then `app.use_(logger::logger())`).
        worker.install_with_access_log(&mut app);
        health::install(&mut app, &ready);
        tracked = Some(worker);
    }
    // The one middleware: tag every response.
    app.use_(|_req, res, next| {
        res.set_static("x-app", "oneloop");
        next.call();
    });
    for resource in ["users", "products", "orders", "carts", "reviews"] {
        app.get(&format!("/api/{resource}"), |_req, res| {
            res.json(&json!([]))
        });
        app.post(&format!("/api/{resource}"), |_req, res| {
            res.status(201).end()
        });
        app.get(&format!("/api/{resource}/:id"), |req, res| {
            res.json(&json!({ "id": req.param("id") }))
        });
        app.delete(&format!("/api/{resource}/:id"), |_req, res| {
            res.status(204).end()
        });
    }
    app.get("/", |_req, res| {
        res.set_static("content-type", "text/plain");
        res.send_bytes(b"Hello, World!");
    });
    app.get("/plaintext", |_req, res| {
        res.set_static("content-type", "text/plain");
        res.send_bytes(b"Hello, World!");
    });
    app.get("/json", |_req, res| {
        res.json(&json!({ "message": "Hello, World!" }))
    });
    let addr = args.listen_addr(3000);
    let r = ready.clone();
    let server = app.listen_on(
        &mut lp,
        addr.as_str(),
        ServerConfig::default(),
        move |_lp, a| {
            r.set_ready();
            if observe {
                log::info!("hello_app: listening on http://{a}");
            } else {
                println!("hello_app: listening on http://{a}");
            }
        },
    )?;
    if let Some(worker) = &tracked {
        worker.track_server(&server);
    }
    lp.run()?;
    if let Some(logs) = logs {
        logs.flush();
    }
    Ok(())
}
