//! `examples/hello.rs`'s HTTP routes, shared with `examples/hello_alloc_count.rs` so the
//! allocation count measures exactly what `hello` serves.

use oneloop::http::{Request, Response};

pub const HELLO: &[u8] = b"Hello, World!";
pub const JSON: &[u8] = br#"{"message":"Hello, World!"}"#;
/// Largest body `/echo` accepts (413 above).
pub const ECHO_LIMIT: usize = 16 * 1024 * 1024;

/// `POST /echo`: the body back, with its content type (413 past [`ECHO_LIMIT`], at once when a
/// larger Content-Length is declared; 503 when the server's body budget is full).
pub fn echo(req: Request, res: Response) {
    let content_type = req.header("content-type").map(str::to_owned);
    req.collect(ECHO_LIMIT, move |_lp, body| match body {
        Ok(body) => {
            if let Some(ct) = content_type {
                res.set_header("content-type", ct.into_bytes());
            }
            res.end(&body);
        }
        Err(e) => {
            res.status(e.status()).end(e.to_string());
        }
    });
}

/// The contract routes: `/` and `/plaintext`, `/json`, `POST /echo`, else 404.
pub fn route(req: Request, res: Response) {
    match (req.method(), req.path()) {
        ("GET" | "HEAD", "/" | "/plaintext") => {
            res.set_header("content-type", "text/plain");
            res.end(HELLO);
        }
        ("GET" | "HEAD", "/json") => {
            res.set_header("content-type", "application/json");
            res.end(JSON);
        }
        ("POST", "/echo") => echo(req, res),
        _ => {
            res.status(404).set_header("content-type", "text/plain");
            res.end("Not Found");
        }
    }
}
