//! The app layer's stores on Redis: every worker thread and every process that shares one
//! redis-server shares sessions, rate-limit windows and cached responses.
//!
//! ```text
//! session.rs     RedisSessionStore: connect-redis' keys and JSON (sess:<id>)
//! rate_limit.rs  RedisRateStore: rate-limit-redis' Lua script (rl:<key>)
//! cache.rs       RedisCacheStore: the response cache's entries (cache:<method> <url>...)
//! ```
//!
//! Each store holds a [`Redis`] client, which belongs to one loop: make one store per worker
//! loop (each worker connects its own client; they share the server, not the client). The
//! store traits' methods get no `&mut Loop` (app-layer handlers and middleware never hold it),
//! so each command is issued from a `next_tick` queued through the loop's [`LoopHandle`]:
//! it runs as soon as the current callback returns, and the client pipelines it with the rest
//! of that turn's commands. Every command carries a timeout that also covers the time it
//! waits in the client's offline queue while Redis is down, so no request hangs on a dead
//! server. See docs/redis.md, "Stores", for what each store does when Redis is down.

mod cache;
mod rate_limit;
mod session;

pub use cache::RedisCacheStore;
pub use rate_limit::RedisRateStore;
pub use session::RedisSessionStore;

use oneloop_runtime::LoopHandle;

use super::{CmdOptions, Redis, RedisError, Reply};

/// Sends `args` on `redis` from the next tick of the loop behind `handle`, with a timeout of
/// `timeout_ms` (0: none); `done` gets the reply or the error.
fn send_later(
    handle: &LoopHandle,
    redis: &Redis,
    args: Vec<Vec<u8>>,
    timeout_ms: u64,
    done: impl FnOnce(Result<Reply, RedisError>) + 'static,
) {
    let redis = redis.clone();
    let options = CmdOptions {
        retryable: false,
        timeout_ms: Some(timeout_ms),
    };
    handle.next_tick(move |lp| {
        redis.cmd_with(lp, &args, options, move |_lp, reply| done(reply));
    });
}
