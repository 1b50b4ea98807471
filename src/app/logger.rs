//! Request logging on the `log` crate: one line per request with Fastify's fields.

use std::rc::Rc;
use std::time::Instant;

use super::Middleware;

/// Logs `req-<id> <METHOD> <path> <status> <bytes>B <ms>ms` at info level (target
/// `oneloop::access`) when each response finishes; 5xx at error level.
pub fn logger() -> Middleware {
    Rc::new(|req, res, next| {
        let started = Instant::now();
        let id = req.id;
        let method = req.method().to_string();
        let path = req.path().to_string();
        res.on_finish(move |status, bytes| {
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let level = if status >= 500 {
                log::Level::Error
            } else {
                log::Level::Info
            };
            log::log!(target: "oneloop::access", level,
                "req-{id} {method} {path} {status} {bytes}B {ms:.3}ms");
        });
        next.call();
    })
}
