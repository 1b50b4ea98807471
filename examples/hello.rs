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
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::hello_routes::{echo, route};
use oneloop::cluster::{self, ClusterOptions};
use oneloop::http::{self, ServerConfig};
use oneloop::shutdown::{graceful_shutdown, ShutdownOptions};
use oneloop::ws::{echo_handler, Endpoint, WsOptions};

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

fn main() -> std::io::Result<()> {
    env_logger::init();
    let args = common::Args::from_env();
    let arg = |name: &str| args.value(name);
    let port = args.port(3000);
    let host = args.host();
    let echo_all = args.flag("--echo-all");
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
    cluster::run(options, move |lp, worker| {
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
        let handler = move |_lp: &mut oneloop::runtime::Loop, req, res| {
            if echo_all {
                echo(req, res)
            } else {
                route(req, res)
            }
        };
        let server = http::create_server_with(lp, config, handler);
        // Only WebSocket upgrades of `/ws` leave HTTP; any other upgrade offer (`h2c`, another
        // path) is served by `route` as an ordinary request. SIGTERM closes each WebSocket
        // with 1001.
        Endpoint::new(WsOptions::default(), echo_handler()).attach(&server, "/ws");
        server.listen(lp, addr.as_str(), move |_lp, addr| {
            if worker == 0 {
                println!("hello: listening on http://{addr}");
            }
        })?;
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
    })
}
