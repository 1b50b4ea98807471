//! [`RedisRateStore`]: express-rate-limit's windows in Redis, as rate-limit-redis (6.x) keeps
//! them, so one limit holds across every process sharing the server.
//!
//! A hit is one atomic Lua script (rate-limit-redis' `increment`, byte for byte in its
//! logic): if `rl:<key>` has no TTL left, `SET rl:<key> 1 PX <window_ms>` and answer
//! `{1, window_ms}`; otherwise `INCR` it and answer `{hits, PTTL}`. It is sent as `EVALSHA`,
//! and on `NOSCRIPT` (a restarted or flushed server) as `EVAL`, which loads it again.
//! `reset_key` is `DEL rl:<key>`.
//!
//! Each command has a timeout ([`RedisRateStore::timeout_ms`], default 1 s, queued time while
//! Redis is down included). A failed hit makes the request fail with 500 through the error
//! middleware, as express-rate-limit does by default (`passOnStoreError: false`): a limit that
//! cannot be checked is not silently lifted.

use std::time::{Duration, SystemTime};

use oneloop_runtime::{Loop, LoopHandle};

use crate::app::rate_limit::{Hits, RateLimitStore, StoreError};
use crate::redis::{CmdOptions, Redis, Reply, Script};

/// Default per-command timeout, ms.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;

/// rate-limit-redis 6.0.1's `increment` script, its whitespace stripped as it strips it (the
/// trailing spaces after `INCR` are its own): the same bytes, so the same SHA-1, which
/// tests/redis_rate_limit_store.rs checks against the package.
const INCREMENT: &str = concat!(
    "local windowMs = tonumber(ARGV[1])\n",
    "local timeToExpire = redis.call(\"PTTL\", KEYS[1])\n",
    "if timeToExpire <= 0 then\n",
    "redis.call(\"SET\", KEYS[1], 1, \"PX\", windowMs)\n",
    "return { 1, windowMs }\n",
    "end\n",
    "local totalHits = redis.call(\"INCR\", KEYS[1])        \n",
    "return { totalHits, timeToExpire }",
);

/// Rate-limit windows in Redis (rate-limit-redis' `RedisStore`). Cheap to clone: clones
/// share the client.
#[derive(Clone)]
pub struct RedisRateStore {
    redis: Redis,
    handle: LoopHandle,
    prefix: String,
    timeout_ms: u64,
    script: Script,
}

impl RedisRateStore {
    /// A store on `redis`, a client connected on `lp` (prefix `rl:`, timeout 1 s).
    pub fn new(lp: &Loop, redis: Redis) -> RedisRateStore {
        RedisRateStore {
            redis,
            handle: lp.handle(),
            prefix: "rl:".into(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            script: Script::new(INCREMENT),
        }
    }

    /// Keys are `<prefix><key>` (rate-limit-redis' `prefix`). Default `rl:`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> RedisRateStore {
        self.prefix = prefix.into();
        self
    }

    /// Each command fails with a timeout after `ms` (`0`: none). Default 1,000.
    pub fn timeout_ms(mut self, ms: u64) -> RedisRateStore {
        self.timeout_ms = ms;
        self
    }

    /// The SHA-1 of the increment script (the same as rate-limit-redis' `SCRIPT LOAD` gives).
    pub fn script_sha1(&self) -> &str {
        self.script.sha1()
    }
}

fn parse_hits(reply: Reply) -> Result<Hits, StoreError> {
    let bad = || {
        StoreError(format!(
            "redis: unexpected reply to the rate-limit script: {reply:?}"
        ))
    };
    let Some([Reply::Int(total), Reply::Int(ttl_ms)]) = reply.as_slice() else {
        return Err(bad());
    };
    let total = u64::try_from(*total).map_err(|_| bad())?;
    let ttl = Duration::from_millis(u64::try_from(*ttl_ms).unwrap_or(0));
    Ok(Hits {
        total,
        reset_at: SystemTime::now() + ttl,
    })
}

impl RateLimitStore for RedisRateStore {
    fn increment(
        &self,
        key: &str,
        window: Duration,
        done: Box<dyn FnOnce(Result<Hits, StoreError>)>,
    ) {
        let (redis, script) = (self.redis.clone(), self.script.clone());
        let key = format!("{}{key}", self.prefix);
        let window_ms = window.as_millis().max(1).to_string();
        let options = CmdOptions {
            retryable: false,
            timeout_ms: Some(self.timeout_ms),
        };
        self.handle.next_tick(move |lp| {
            redis.evalsha_with(lp, &script, &[key], &[window_ms], options, move |_lp, r| {
                done(
                    r.map_err(|e| StoreError(format!("redis: {e}")))
                        .and_then(parse_hits),
                )
            });
        });
    }

    fn reset_key(&self, key: &str) {
        let args = vec![
            b"DEL".to_vec(),
            format!("{}{key}", self.prefix).into_bytes(),
        ];
        super::send_later(&self.handle, &self.redis, args, self.timeout_ms, |r| {
            if let Err(e) = r {
                log::error!("rate limit: redis DEL failed: {e}");
            }
        });
    }
}
