//! The contract server: `cargo run --release --example hello` (then `curl localhost:3000/json`).
//!
//! Listens on `PORT` (default 3000) on `HOST` (default 127.0.0.1); `--port N` and `--host H`
//! override. Routes (the query string is ignored):
//! - `GET /` and `GET /plaintext`: `Hello, World!` as text/plain
//! - `GET /json`: `{"message":"Hello, World!"}`
//! - `POST /echo`: the request body, byte for byte (Content-Length or chunked)
//! - anything else: 404
//!
//! - `GET /ws`: a WebSocket echo (for Autobahn and other conformance tools; messages up to
//!   16 MiB, the default `max_payload`). Other upgrade offers (`curl --http2`'s `h2c`, a
//!   WebSocket handshake on another path) are ignored: those requests are routed as above.
//!
//! `--unix PATH` also serves the same routes on the Unix domain socket PATH (worker 0 only;
//! `curl --unix-socket PATH http://localhost/json`); the file is removed on shutdown.
//! `--echo-all` makes every method on every path echo its body (for conformance tools).
//! `--observe` (or `OBSERVE=1`; off by default, so the benchmark path is unchanged) logs
//! pino-shaped JSON lines (`LOG_LEVEL`, `LOG_FORMAT=text`) and serves `GET /metrics` (the
//! loop's, connection and process metrics of every worker; per-route request histograms need
//! the app layer: see `hello_app --observe`), `GET /healthz` and `GET /readyz` (503 from the
//! first SIGTERM on).
//! `--backlog N` sets the listen backlog (default 511, Node's; the kernel caps it at
//! `net.core.somaxconn`): a burst of thousands of connects overflows 511 and the dropped SYNs
//! are retried by the clients' kernels a second or more later.
//! `--workers N` runs N loops on N threads sharing the port (SO_REUSEPORT; 0 = one per core).
//! SIGTERM or SIGINT drains gracefully (in-flight requests finish, idle connections close,
//! WebSockets get a Close 1001 "going away", 10 s deadline: `--drain-deadline-ms N` changes
//! it; a second signal forces), then the process exits 0.
//! `--trace out.json` records the loop as a Chrome trace (iterations, phases, poll waits, every
//! callback: `io` for socket events; open it in <https://ui.perfetto.dev> or draw it with
//! `examples/trace_render.rs`). The file is finished when the drain completes (and, failing
//! that, when the loop is dropped), so it is complete JSON after SIGTERM/SIGINT. With
//! `--workers N` (N > 1) each worker writes its own file: `out.json` becomes `out.w0.json`,
//! `out.w1.json`, ... (a worker restarted after a panic starts its file afresh). A busy server
//! writes ~100 bytes per callback: trace short runs.
//! `--tls` serves HTTPS (and `wss://` on `/ws`) instead: with a development certificate for
//! `localhost`/`127.0.0.1` generated at start (its PEM file and SHA-256 fingerprint are
//! printed; `curl --cacert FILE https://localhost:3000/`), or `--cert CERT.pem --key KEY.pem`.
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::hello_routes::{echo, route};
use oneloop::app::metrics::{Metrics, WorkerMetrics, CONTENT_TYPE};
use oneloop::cluster::{self, ClusterOptions};
use oneloop::health::{Readiness, ReadyState};
use oneloop::http::{self, ServerConfig};
use oneloop::runtime::TlsServerOptions;
use oneloop::shutdown::{graceful_shutdown, ShutdownOptions};
use oneloop::tls::ServerTls;
use oneloop::ws::{echo_handler, Endpoint, WsOptions};
use sha2::{Digest, Sha256};

/// The trace file of `worker`: `path` itself with one worker, else `stem.wN.ext`.
fn trace_path(path: &Path, worker: usize, many: bool) -> PathBuf {
    if !many {
        return path.to_path_buf();
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.w{worker}.{}", ext.to_string_lossy()),
        None => format!("{stem}.w{worker}"),
    };
    path.with_file_name(name)
}

/// `/metrics`, `/healthz`, `/readyz` for `--observe`; `None` for every other request.
fn observe_route(
    req: &http::Request,
    metrics: &WorkerMetrics,
    ready: &Readiness,
) -> Option<(u16, &'static str, Vec<u8>)> {
    if req.method() != "GET" {
        return None;
    }
    Some(match req.path() {
        "/metrics" => (200, CONTENT_TYPE, metrics.scrape().into_bytes()),
        "/healthz" => (200, "application/json", br#"{"status":"ok"}"#.to_vec()),
        "/readyz" => {
            let state = ready.state();
            let code = if state == ReadyState::Ready { 200 } else { 503 };
            let body = format!(r#"{{"status":"{}"}}"#, state.name());
            (code, "application/json", body.into_bytes())
        }
        _ => return None,
    })
}

/// `--tls`: HTTPS with `--cert FILE --key FILE`, or a development certificate generated now
/// (rcgen, for `localhost` and `127.0.0.1`), written to a temp file for `curl --cacert` and
/// announced with its SHA-256 fingerprint.
fn tls_from_args(args: &common::Args) -> std::io::Result<Option<TlsServerOptions>> {
    if !args.flag("--tls") {
        return Ok(None);
    }
    let server_tls = match (args.value("--cert"), args.value("--key")) {
        (Some(cert), Some(key)) => ServerTls::from_pem_files(cert, key)?,
        (None, None) => {
            let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            let dev = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
            let cert_pem = dev.cert.pem();
            let fingerprint: Vec<String> = Sha256::digest(dev.cert.der())
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect();
            let path =
                std::env::temp_dir().join(format!("oneloop-dev-cert-{}.pem", std::process::id()));
            std::fs::write(&path, &cert_pem)?;
            println!(
                "hello: development certificate for localhost, 127.0.0.1 (self-signed, made now): {}",
                path.display()
            );
            println!("hello: SHA-256 fingerprint {}", fingerprint.join(":"));
            ServerTls::from_pem(
                cert_pem.as_bytes(),
                dev.signing_key.serialize_pem().as_bytes(),
            )?
        }
        _ => {
            eprintln!("usage: hello --tls [--cert CERT.pem --key KEY.pem]");
            std::process::exit(2);
        }
    };
    Ok(Some(server_tls.build()?))
}

fn main() -> std::io::Result<()> {
    let args = common::Args::from_env();
    let observe = args.flag("--observe") || std::env::var("OBSERVE").is_ok_and(|v| v == "1");
    let logs = if observe {
        Some(oneloop::logging::init_from_env()?)
    } else {
        env_logger::init();
        None
    };
    let metrics = logs.as_ref().map(|logs| {
        let m = Metrics::new();
        m.watch_log(logs);
        m
    });
    let ready = Readiness::new();
    let arg = |name: &str| args.value(name);
    let port = args.port(3000);
    let host = args.host();
    let echo_all = args.flag("--echo-all");
    let backlog = args.backlog()?;
    let workers: usize = arg("--workers").and_then(|w| w.parse().ok()).unwrap_or(1);
    let many = cluster::worker_count(workers) > 1;
    let drain_deadline = match arg("--drain-deadline-ms").map(|ms| ms.parse::<u64>()) {
        None => ShutdownOptions::default().deadline,
        Some(Ok(ms)) => Duration::from_millis(ms),
        Some(Err(_)) => {
            eprintln!("usage: hello --drain-deadline-ms MILLISECONDS");
            std::process::exit(2);
        }
    };
    let addr = format!("{host}:{port}");
    let unix = arg("--unix").map(PathBuf::from);
    let tls = tls_from_args(&args)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let trace = match (args.flag("--trace"), arg("--trace")) {
        (false, _) => None,
        (true, Some(path)) if !path.starts_with("--") => Some(PathBuf::from(path)),
        (true, _) => {
            eprintln!("usage: hello --trace out.json");
            std::process::exit(2);
        }
    };

    let options = ClusterOptions {
        workers,
        ..ClusterOptions::default()
    };
    let result = cluster::run(options, move |lp, worker| {
        if let Some(path) = &trace {
            let path = trace_path(path, worker, many);
            lp.start_trace_file(&path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("--trace {}: {e}", path.display()))
            })?;
            eprintln!(
                "hello: worker {worker} tracing the loop to {}",
                path.display()
            );
        }
        let mut config = ServerConfig::default();
        config.listen.reuse_port = many;
        if let Some(backlog) = backlog {
            config.listen.backlog = backlog;
        }
        let observed = metrics.as_ref().map(|m| m.worker(lp, worker));
        let (obs, r) = (observed.clone(), ready.clone());
        let handler = move |_lp: &mut oneloop::runtime::Loop,
                            req: http::Request,
                            res: http::Response| {
            if let Some((code, ty, body)) = obs.as_ref().and_then(|m| observe_route(&req, m, &r)) {
                res.status(code).set_header("content-type", ty);
                res.end(body);
            } else if echo_all {
                echo(req, res)
            } else {
                route(req, res)
            }
        };
        if let Some(tls) = &tls {
            config.listen.tls = Some(tls.clone());
        }
        let server = http::create_server_with(lp, config, handler.clone());
        // Only WebSocket upgrades of `/ws` leave HTTP; any other upgrade offer (`h2c`, another
        // path) is served by `route` as an ordinary request. SIGTERM closes each WebSocket
        // with 1001.
        Endpoint::new(WsOptions::default(), echo_handler()).attach(&server, "/ws");
        let r = ready.clone();
        server.listen(lp, addr.as_str(), move |_lp, addr| {
            r.set_ready();
            if worker == 0 {
                println!("hello: listening on {scheme}://{addr}");
            }
        })?;
        if let Some(m) = &observed {
            m.track_server(&server);
        }
        let mut servers = vec![server];
        if let (Some(path), 0) = (&unix, worker) {
            let on_path = http::create_server_with(lp, ServerConfig::default(), handler);
            let shown = path.display().to_string();
            on_path.listen_path(lp, path, move |_lp| {
                println!("hello: listening on unix:{shown}")
            })?;
            servers.push(on_path);
        }
        let traced = trace.is_some();
        let shutdown = ShutdownOptions {
            deadline: drain_deadline,
            readiness: Some(ready.clone()),
            ..ShutdownOptions::default()
        };
        graceful_shutdown(lp, servers, shutdown, move |lp| {
            // Drained: end the trace's JSON and flush it now rather than waiting for the drop.
            if traced {
                if let Err(e) = lp.finish_trace() {
                    eprintln!("hello: worker {worker}: trace incomplete: {e}");
                }
            }
        })
    });
    if let Some(logs) = logs {
        logs.flush();
    }
    result
}
