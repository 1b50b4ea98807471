//! [`RedisSessionStore`]: sessions in Redis, in connect-redis' shape, so that every worker
//! thread and every process sharing one redis-server sees the same sessions (and an Express
//! app with express-session + connect-redis on the same server reads and writes them too).
//!
//! | operation | command |
//! |---|---|
//! | `get` | `GET sess:<id>`: express-session's JSON (`{"cookie":{..},"views":3}`), or nil |
//! | `set` | `SET sess:<id> <json> PX <ttl_ms>` (connect-redis: `EX` in seconds) |
//! | `touch` | `PEXPIRE sess:<id> <ttl_ms>` (connect-redis: `EXPIRE`) |
//! | `destroy` | `DEL sess:<id>` |
//!
//! The TTL is the session cookie's max-age, or the middleware's `default_ttl_ms` (24 h, which
//! is connect-redis' default `ttl` of 86,400 s). Every command has a timeout
//! ([`RedisSessionStore::timeout_ms`], default 2 s) that also covers the time it waits in the
//! client's offline queue while Redis is down: a request whose session cannot be read fails
//! with 500 through the error middleware within that time instead of hanging; a failed save
//! or touch at the end of a response is logged (the response is already on its way).

use oneloop_runtime::{Loop, LoopHandle};

use super::send_later;
use crate::app::session::{SessionData, SessionStore, StoreCallback, StoreError};
use crate::redis::{Redis, RedisError, Reply};

/// Default per-command timeout, ms.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;

/// Sessions in Redis (connect-redis' `RedisStore`). Cheap to clone: clones share the client.
#[derive(Clone)]
pub struct RedisSessionStore {
    redis: Redis,
    handle: LoopHandle,
    prefix: String,
    timeout_ms: u64,
}

impl RedisSessionStore {
    /// A store on `redis`, a client connected on `lp` (prefix `sess:`, timeout 2 s).
    pub fn new(lp: &Loop, redis: Redis) -> RedisSessionStore {
        RedisSessionStore {
            redis,
            handle: lp.handle(),
            prefix: "sess:".into(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// Keys are `<prefix><id>` (connect-redis' `prefix`). Default `sess:`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> RedisSessionStore {
        self.prefix = prefix.into();
        self
    }

    /// Each command fails with a timeout after `ms` (time queued while Redis is down
    /// included). `0` disables it (then a request waits as long as the client's offline queue
    /// and `max_retries_per_request` let it). Default 2,000.
    pub fn timeout_ms(mut self, ms: u64) -> RedisSessionStore {
        self.timeout_ms = ms;
        self
    }

    /// The Redis key of session `sid`.
    pub fn key(&self, sid: &str) -> String {
        format!("{}{sid}", self.prefix)
    }

    /// Sends `args`; `map` turns the reply into the store's answer.
    fn send<T: 'static>(
        &self,
        args: Vec<Vec<u8>>,
        done: StoreCallback<T>,
        map: impl FnOnce(Reply) -> Result<T, StoreError> + 'static,
    ) {
        send_later(&self.handle, &self.redis, args, self.timeout_ms, move |r| {
            done(r.map_err(store_error).and_then(map))
        });
    }
}

fn store_error(e: RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

fn unexpected(what: &str, reply: &Reply) -> StoreError {
    StoreError(format!("redis: unexpected reply to {what}: {reply:?}"))
}

impl SessionStore for RedisSessionStore {
    fn get(&self, sid: &str, done: StoreCallback<Option<SessionData>>) {
        let args = vec![b"GET".to_vec(), self.key(sid).into_bytes()];
        self.send(args, done, |reply| match reply {
            Reply::Nil => Ok(None),
            other => {
                let bytes = other.as_bytes().ok_or_else(|| unexpected("GET", &other))?;
                serde_json::from_slice::<SessionData>(bytes)
                    .map(Some)
                    .map_err(|e| StoreError(format!("session in redis is not a JSON object: {e}")))
            }
        });
    }

    fn set(&self, sid: &str, data: &SessionData, ttl_ms: u64, done: StoreCallback<()>) {
        let json = match serde_json::to_vec(data) {
            Ok(j) => j,
            Err(e) => return done(Err(StoreError(format!("session does not serialize: {e}")))),
        };
        let args = vec![
            b"SET".to_vec(),
            self.key(sid).into_bytes(),
            json,
            b"PX".to_vec(),
            ttl_ms.max(1).to_string().into_bytes(),
        ];
        self.send(args, done, |reply| match reply.is_ok() {
            true => Ok(()),
            false => Err(unexpected("SET", &reply)),
        });
    }

    fn touch(&self, sid: &str, ttl_ms: u64, done: StoreCallback<()>) {
        let args = vec![
            b"PEXPIRE".to_vec(),
            self.key(sid).into_bytes(),
            ttl_ms.max(1).to_string().into_bytes(),
        ];
        // 0: the session expired meanwhile; nothing to push back (connect-redis ignores it).
        self.send(args, done, |reply| match reply {
            Reply::Int(_) => Ok(()),
            other => Err(unexpected("PEXPIRE", &other)),
        });
    }

    fn destroy(&self, sid: &str, done: StoreCallback<()>) {
        let args = vec![b"DEL".to_vec(), self.key(sid).into_bytes()];
        self.send(args, done, |reply| match reply {
            Reply::Int(_) => Ok(()),
            other => Err(unexpected("DEL", &other)),
        });
    }
}
