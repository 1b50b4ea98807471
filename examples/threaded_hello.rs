//! The contract server on the thread-per-connection baseline:
//! `cargo run --release --example threaded_hello` (then `curl localhost:3000/json`).
//!
//! Same routes and same bytes as `examples/hello.rs`, one OS thread per connection
//! (`oneloop::threaded`). Listens on `PORT` (default 3000) on `HOST` (default 127.0.0.1);
//! `--port N` and `--host H` override; `--max-connections N` caps the connection threads.
//! Routes (the query string is ignored):
//! - `GET /` and `GET /plaintext`: `Hello, World!` as text/plain
//! - `GET /json`: `{"message":"Hello, World!"}`
//! - `POST /echo`: the request body, byte for byte (Content-Length or chunked; 413 above 16 MiB)
//! - anything else: 404
mod common;

use oneloop::threaded::{self, ThreadedConfig, ThreadedRequest, ThreadedResponse};

const HELLO: &[u8] = b"Hello, World!";
const JSON: &[u8] = br#"{"message":"Hello, World!"}"#;
/// Largest body `/echo` accepts (413 above), as in `hello.rs`.
const ECHO_LIMIT: u64 = 16 * 1024 * 1024;

fn route(req: &ThreadedRequest, res: &mut ThreadedResponse) {
    match (req.method(), req.path()) {
        ("GET" | "HEAD", "/" | "/plaintext") => {
            res.set_header("content-type", "text/plain");
            res.end(HELLO);
        }
        ("GET" | "HEAD", "/json") => {
            res.set_header("content-type", "application/json");
            res.end(JSON);
        }
        ("POST", "/echo") => {
            if let Some(ct) = req.header("content-type") {
                res.set_header("content-type", ct.to_owned());
            }
            res.end(req.body());
        }
        _ => {
            res.status(404).set_header("content-type", "text/plain");
            res.end("Not Found");
        }
    }
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let args = common::Args::from_env();
    let arg = |name: &str| args.value(name);
    let port = args.port(3000);
    let host = args.host();
    let config = ThreadedConfig {
        max_body_size: ECHO_LIMIT,
        max_connections: arg("--max-connections").and_then(|n| n.parse().ok()),
        ..ThreadedConfig::default()
    };
    let server = threaded::create_server(config, route);
    let listening = server.listen(format!("{host}:{port}"))?;
    println!(
        "threaded_hello: listening on http://{}",
        listening.local_addr()
    );
    listening.join();
    Ok(())
}
