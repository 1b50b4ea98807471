//! may_minihttp on one `may` worker thread: the same routes and bodies as oneloop's
//! `examples/hello.rs` (`/` and `/plaintext`: `Hello, World!` text/plain, `/json`:
//! `{"message":"Hello, World!"}`, anything else 404). `PORT` (3000) and `HOST` (127.0.0.1)
//! from the environment. Prints one `listening on` line. The reference for the pipelined path:
//! it parses every request with httparse and writes all responses of one read with one write.
use std::io;

use may_minihttp::{HttpService, HttpServiceFactory, Request, Response};

struct Hello;

impl HttpService for Hello {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        match req.path().split('?').next().unwrap_or("") {
            "/" | "/plaintext" => {
                rsp.header("Content-Type: text/plain").body("Hello, World!");
            }
            "/json" => {
                rsp.header("Content-Type: application/json")
                    .body(r#"{"message":"Hello, World!"}"#);
            }
            _ => {
                rsp.status_code(404, "Not Found").body("Not Found");
            }
        }
        Ok(())
    }
}

struct Factory;

impl HttpServiceFactory for Factory {
    type Service = Hello;

    fn new_service(&self, _: usize) -> Hello {
        Hello
    }
}

fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    // One worker: the server is pinned to one core like every other in the comparison.
    may::config().set_workers(1).set_stack_size(0x1000);
    let addr = format!("{host}:{port}");
    let server = Factory.start(&addr).expect("bind");
    println!("may_hello: listening on http://{addr}");
    server.join().expect("server thread");
}
