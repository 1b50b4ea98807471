//! hyper 1 on tokio's current_thread runtime: one thread, the same routes and bodies as
//! oneloop's `examples/hello.rs` (`GET /` and `/plaintext`: `Hello, World!` text/plain,
//! `/json`: `{"message":"Hello, World!"}`, anything else 404). `PORT` (3000) and `HOST`
//! (127.0.0.1) from the environment. Prints one `listening on` line. HTTP/1.1 keep-alive, no
//! timeouts (hyper's defaults without a timer).
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const HELLO: &[u8] = b"Hello, World!";
const JSON: &[u8] = br#"{"message":"Hello, World!"}"#;

async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let (status, ct, body) = match req.uri().path() {
        "/" | "/plaintext" if get => (StatusCode::OK, "text/plain", HELLO),
        "/json" if get => (StatusCode::OK, "application/json", JSON),
        _ => (StatusCode::NOT_FOUND, "text/plain", &b"Not Found"[..]),
    };
    let mut res = Response::new(Full::new(Bytes::from_static(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert("content-type", ct.parse().expect("static header"));
    Ok(res)
}

fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(format!("{host}:{port}")).await?;
        println!("hyper_hello: listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    eprintln!("hyper_hello: accept: {e}");
                    tokio::task::yield_now().await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::task::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(route))
                    .await;
            });
        }
    })
}
