//! [`RedisCacheStore`]: the response cache's entries in Redis, shared by every worker and
//! process on the server.
//!
//! | operation | command |
//! |---|---|
//! | `get` | `GET cache:<key>` (the entry in [`CachedResponse::encode`]'s form, or nil) |
//! | `set` | `SET cache:<key> <entry> PX <ttl_ms>` |
//!
//! `<key>` is the middleware's key: `GET /api/products?page=2`, then a line per key header.
//! Each command has a timeout ([`RedisCacheStore::timeout_ms`], default 500 ms, queued time
//! while Redis is down included). When Redis is down a lookup fails after at most that
//! time, and the middleware treats it as a miss (the handler runs); a failed `SET` is logged.
//! An entry that does not decode (written by something else) is a miss too.

use std::time::Duration;

use oneloop_runtime::{Loop, LoopHandle};

use super::send_later;
use crate::app::cache::{CacheCallback, CacheStore, CachedResponse, StoreError};
use crate::redis::{Redis, Reply};

/// Default per-command timeout, ms.
pub const DEFAULT_TIMEOUT_MS: u64 = 500;

/// Cached responses in Redis. Cheap to clone: clones share the client.
#[derive(Clone)]
pub struct RedisCacheStore {
    redis: Redis,
    handle: LoopHandle,
    prefix: String,
    timeout_ms: u64,
}

impl RedisCacheStore {
    /// A store on `redis`, a client connected on `lp` (prefix `cache:`, timeout 500 ms).
    pub fn new(lp: &Loop, redis: Redis) -> RedisCacheStore {
        RedisCacheStore {
            redis,
            handle: lp.handle(),
            prefix: "cache:".into(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// Keys are `<prefix><key>`. Default `cache:`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> RedisCacheStore {
        self.prefix = prefix.into();
        self
    }

    /// Each command fails with a timeout after `ms` (`0`: none). Default 500.
    pub fn timeout_ms(mut self, ms: u64) -> RedisCacheStore {
        self.timeout_ms = ms;
        self
    }
}

impl CacheStore for RedisCacheStore {
    fn get(&self, key: &str, done: CacheCallback<Option<CachedResponse>>) {
        let args = vec![
            b"GET".to_vec(),
            format!("{}{key}", self.prefix).into_bytes(),
        ];
        send_later(&self.handle, &self.redis, args, self.timeout_ms, move |r| {
            done(match r {
                Ok(Reply::Nil) => Ok(None),
                Ok(Reply::Bulk(b)) => Ok(CachedResponse::decode(&b)),
                Ok(other) => Err(StoreError(format!(
                    "redis: unexpected reply to GET: {other:?}"
                ))),
                Err(e) => Err(StoreError(format!("redis: {e}"))),
            })
        });
    }

    fn set(&self, key: &str, value: &CachedResponse, ttl: Duration) {
        let args = vec![
            b"SET".to_vec(),
            format!("{}{key}", self.prefix).into_bytes(),
            value.encode(),
            b"PX".to_vec(),
            ttl.as_millis().max(1).to_string().into_bytes(),
        ];
        send_later(&self.handle, &self.redis, args, self.timeout_ms, |r| {
            if let Err(e) = r {
                log::warn!("cache: redis SET failed: {e}");
            }
        });
    }
}
