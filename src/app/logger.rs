//! The access log on the `log` crate: one record per finished response with pino-http's fields.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::Instant;

use super::Middleware;

/// Logs `"request completed"` at info level (target `oneloop::access`; 5xx at error level)
/// when each response finishes, with pino-http's fields as key-values:
/// `reqId`, `req.id`, `req.method`, `req.url`, `req.remoteAddress`, `req.remotePort`,
/// `res.statusCode`, `responseTime` (milliseconds, a float). The JSON sink
/// ([`crate::logging`]) nests the dotted keys, so a line reads
/// `{"level":30,..,"reqId":1,"req":{"id":1,"method":"GET","url":"/","remoteAddress":"127.0.0.1","remotePort":50412},"res":{"statusCode":200},"responseTime":0.21,"msg":"request completed"}`.
/// Injected requests (no socket) have no `remoteAddress`/`remotePort`.
pub fn logger() -> Middleware {
    Rc::new(|req, res, next| {
        if !log::log_enabled!(target: "oneloop::access", log::Level::Error) {
            return next.call();
        }
        let started = Instant::now();
        let id = req.id;
        // The standard methods without an allocation; any other as sent.
        let method: Cow<'static, str> = match super::metrics::http_stats::method_label(req.method())
        {
            "OTHER" => Cow::Owned(req.method().to_string()),
            known => Cow::Borrowed(known),
        };
        let url = req.url().to_string();
        let peer = req.http().and_then(|r| r.remote_addr());
        res.on_finish(move |status, _bytes| {
            let ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
            let level = if status >= 500 {
                log::Level::Error
            } else {
                log::Level::Info
            };
            match peer {
                Some(peer) => {
                    let ip = peer.ip();
                    log::log!(target: "oneloop::access", level,
                        reqId = id, "req.id" = id, "req.method" = &*method,
                        "req.url" = url.as_str(), "req.remoteAddress" :% = ip,
                        "req.remotePort" = peer.port(), "res.statusCode" = status,
                        responseTime = ms; "request completed");
                }
                None => {
                    log::log!(target: "oneloop::access", level,
                        reqId = id, "req.id" = id, "req.method" = &*method,
                        "req.url" = url.as_str(), "res.statusCode" = status,
                        responseTime = ms; "request completed");
                }
            }
        });
        next.call();
    })
}
