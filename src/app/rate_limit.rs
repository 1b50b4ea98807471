//! Rate limiting as express-rate-limit (8.x) does it: a fixed window per key, `limit` hits per
//! `window`, its headers (`X-RateLimit-*` by default, the IETF drafts' `RateLimit-*` on
//! request), the client's address as the key unless a key function says otherwise, and a store
//! that every worker of a cluster can share.
//!
//! ```
//! use std::time::Duration;
//! use oneloop::app::rate_limit::{limiter, KeyBy, RateLimit, StandardHeaders, TrustProxy};
//! use oneloop::app::App;
//!
//! let mut app = App::new();
//! // Five login attempts per 15 minutes per user name, behind one proxy (nginx).
//! app.use_mw_at("/login", limiter(RateLimit {
//!     window: Duration::from_secs(15 * 60),
//!     limit: 5,
//!     key: KeyBy::header("x-user"),
//!     trust_proxy: TrustProxy::Hops(1),
//!     standard_headers: Some(StandardHeaders::Draft7),
//!     ..RateLimit::default()
//! }));
//! ```
//!
//! Past the limit the request fails with `AppError` 429 ("Too many requests, please try again
//! later.") through the error middleware, with `Retry-After` and the headers already set
//! (express-rate-limit answers it itself; here an app's error middleware shapes it like every
//! other error).
//!
//! # Sharing across workers
//! [`MemoryRateStore`] is `Send + Sync` and cheap to clone: create it once, before
//! `cluster::run`, and give each worker's limiter a clone (`Rc::new(store.clone())`); every
//! worker then counts in the same windows (a per-worker limiter lets N times the limit
//! through). It is sharded by key (16 mutexes held for one map operation each). Across
//! processes (several instances behind a load balancer), use
//! [`RedisRateStore`](crate::redis::stores::RedisRateStore): rate-limit-redis' atomic Lua
//! script on one redis-server, its callback answering later.
//!
//! # Bounds
//! The memory store tracks at most `max_keys` (default 100,000) keys; at the cap, a new key
//! first drops the expired windows of its shard, then the window that ends first.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv6Addr};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{AppError, Middleware, Next, Req, Res};

/// What a hit on a key returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hits {
    /// Hits in the current window, this one included.
    pub total: u64,
    /// When the window ends.
    pub reset_at: SystemTime,
}

/// Why a store failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

/// Counts hits per key in fixed windows (express-rate-limit's `Store`). Used on the loop
/// thread only (a limiter holds it in an `Rc`); to count across the worker threads of one
/// process, give each worker a clone of one [`MemoryRateStore`]; across processes, use
/// [`RedisRateStore`](crate::redis::stores::RedisRateStore).
pub trait RateLimitStore {
    /// Counts a hit on `key` in its window (opening a window of `window` if none is open) and
    /// calls `done` with the count, now or later (on the loop thread).
    fn increment(
        &self,
        key: &str,
        window: Duration,
        done: Box<dyn FnOnce(Result<Hits, StoreError>)>,
    );
    /// Forgets `key`'s window.
    fn reset_key(&self, key: &str);
}

const SHARDS: usize = 16;

/// The in-memory store: fixed windows, sharded, bounded; shareable by every worker thread.
#[derive(Clone)]
pub struct MemoryRateStore {
    shards: Arc<[Mutex<HashMap<String, Hits>>; SHARDS]>,
    max_keys_per_shard: usize,
}

impl Default for MemoryRateStore {
    fn default() -> Self {
        MemoryRateStore::new(100_000)
    }
}

impl MemoryRateStore {
    /// At most `max_keys` keys tracked (at least one per shard).
    pub fn new(max_keys: usize) -> MemoryRateStore {
        MemoryRateStore {
            shards: Arc::new(std::array::from_fn(|_| Mutex::new(HashMap::new()))),
            max_keys_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, Hits>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[h.finish() as usize % SHARDS]
    }

    /// Keys tracked now, all shards.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RateLimitStore for MemoryRateStore {
    fn increment(
        &self,
        key: &str,
        window: Duration,
        done: Box<dyn FnOnce(Result<Hits, StoreError>)>,
    ) {
        let now = SystemTime::now();
        let hits = {
            let Ok(mut map) = self.shard(key).lock() else {
                return done(Err(StoreError("rate-limit store poisoned".into())));
            };
            if !map.contains_key(key) && map.len() >= self.max_keys_per_shard {
                map.retain(|_, h| h.reset_at > now);
                if map.len() >= self.max_keys_per_shard {
                    let first = map.iter().min_by_key(|(_, h)| h.reset_at);
                    if let Some(k) = first.map(|(k, _)| k.clone()) {
                        map.remove(&k);
                    }
                }
            }
            let entry = map.entry(key.to_owned()).or_insert(Hits {
                total: 0,
                reset_at: now + window,
            });
            if entry.reset_at <= now {
                *entry = Hits {
                    total: 0,
                    reset_at: now + window,
                };
            }
            entry.total += 1;
            *entry
        };
        done(Ok(hits));
    }

    fn reset_key(&self, key: &str) {
        if let Ok(mut map) = self.shard(key).lock() {
            map.remove(key);
        }
    }
}

/// Which proxies to believe about the client's address (Express's `trust proxy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TrustProxy {
    /// The socket's peer is the client (default).
    #[default]
    None,
    /// The last `n` hops are proxies: the address `n` entries from the right of
    /// socket-peer + `X-Forwarded-For` (or `Forwarded: for=`) is the client's.
    Hops(usize),
    /// Every hop: the leftmost forwarded address.
    All,
}

/// How requests are keyed.
#[derive(Clone, Default)]
pub enum KeyBy {
    /// The client's address (per [`TrustProxy`]); an IPv6 address counts by its /56
    /// (express-rate-limit's `ipKeyGenerator`: one user's many addresses are one key).
    #[default]
    Ip,
    /// A request header's value (an API key, a user name); requests without it share the key
    /// `""`.
    Header(String),
    /// Whatever the function returns.
    Fn(Rc<dyn Fn(&Req) -> String>),
}

impl KeyBy {
    /// Keyed by request header `name`.
    pub fn header(name: &str) -> KeyBy {
        KeyBy::Header(name.to_owned())
    }

    /// Keyed by `f(req)`.
    pub fn func(f: impl Fn(&Req) -> String + 'static) -> KeyBy {
        KeyBy::Fn(Rc::new(f))
    }
}

/// The IETF drafts' header sets (express-rate-limit's `standardHeaders`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StandardHeaders {
    /// `RateLimit-Policy`, `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
    Draft6,
    /// `RateLimit-Policy` and one `RateLimit: limit=, remaining=, reset=`.
    Draft7,
}

/// Decides that a request is not counted.
pub type SkipFn = Rc<dyn Fn(&Req) -> bool>;

/// express-rate-limit's options; [`Default`] is its defaults.
#[derive(Clone)]
pub struct RateLimit {
    /// Default 60 s.
    pub window: Duration,
    /// Hits allowed per window per key. Default 5.
    pub limit: u64,
    /// Default [`KeyBy::Ip`].
    pub key: KeyBy,
    /// Default [`TrustProxy::None`].
    pub trust_proxy: TrustProxy,
    /// Default none.
    pub standard_headers: Option<StandardHeaders>,
    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset`. Default on.
    pub legacy_headers: bool,
    /// Default 429.
    pub status: u16,
    /// Default `Too many requests, please try again later.`.
    pub message: String,
    /// Requests for which this returns true are not counted. Default none.
    pub skip: Option<SkipFn>,
    /// Default a fresh [`MemoryRateStore`] (one per limiter: pass a shared clone to count
    /// across workers, a Redis store to count across processes).
    pub store: Rc<dyn RateLimitStore>,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            window: Duration::from_secs(60),
            limit: 5,
            key: KeyBy::Ip,
            trust_proxy: TrustProxy::None,
            standard_headers: None,
            legacy_headers: true,
            status: 429,
            message: "Too many requests, please try again later.".into(),
            skip: None,
            store: Rc::new(MemoryRateStore::default()),
        }
    }
}

impl RateLimit {
    /// The defaults with `limit` hits per `window`.
    pub fn per(window: Duration, limit: u64) -> RateLimit {
        RateLimit {
            window,
            limit,
            ..RateLimit::default()
        }
    }
}

/// The client's address: the socket's peer, or a forwarded one per `trust`.
pub fn client_ip(req: &Req, trust: TrustProxy) -> Option<IpAddr> {
    let peer = req.http().and_then(|r| r.remote_addr()).map(|a| a.ip());
    let hops = match trust {
        TrustProxy::None => return peer,
        TrustProxy::Hops(n) => n,
        TrustProxy::All => usize::MAX,
    };
    let forwarded: Vec<IpAddr> = match req.header("x-forwarded-for") {
        Some(xff) => xff.split(',').filter_map(|a| parse_ip(a.trim())).collect(),
        None => req
            .header("forwarded")
            .map(|f| {
                f.split([',', ';'])
                    .filter_map(|p| {
                        p.trim()
                            .strip_prefix("for=")
                            .or(p.trim().strip_prefix("FOR="))
                    })
                    .filter_map(|a| parse_ip(a.trim_matches('"')))
                    .collect()
            })
            .unwrap_or_default(),
    };
    // Right to left: the peer, then each forwarded address; the first untrusted one is the
    // client's (Express's proxy-addr with a hop count).
    let chain: Vec<IpAddr> = peer
        .into_iter()
        .chain(forwarded.into_iter().rev())
        .collect();
    chain.get(hops.min(chain.len().saturating_sub(1))).copied()
}

/// An address as it appears in `X-Forwarded-For` / `Forwarded`: bare, bracketed IPv6, with or
/// without a port.
fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.rsplit_once(':').and_then(|(h, _)| h.parse().ok())
}

/// express-rate-limit's `ipKeyGenerator`: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by /56.
fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let masked = u128::from(v6) & !((1u128 << (128 - 56)) - 1);
                format!("{}/56", Ipv6Addr::from(masked))
            }
        },
    }
}

fn unix_secs_ceil(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The limiter (express-rate-limit's `rateLimit(options)`).
pub fn limiter(options: RateLimit) -> Middleware {
    let options = Rc::new(options);
    let window_secs = options.window.as_millis().div_ceil(1000) as u64;
    Rc::new(move |req: &mut Req, res: &mut Res, next: Next| {
        if options.skip.as_ref().is_some_and(|skip| skip(req)) {
            return next.call();
        }
        let key = match &options.key {
            KeyBy::Ip => client_ip(req, options.trust_proxy).map_or_else(String::new, ip_key),
            KeyBy::Header(name) => req.header(name).unwrap_or("").to_owned(),
            KeyBy::Fn(f) => f(req),
        };
        let (o, res) = (Rc::clone(&options), res.clone());
        options.store.increment(
            &key,
            options.window,
            Box::new(move |hits| {
                let hits = match hits {
                    Ok(h) => h,
                    Err(e) => {
                        return next.error(AppError::internal(format!("rate limit: {}", e.0)))
                    }
                };
                let remaining = o.limit.saturating_sub(hits.total);
                let reset_in = hits
                    .reset_at
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                let reset_secs = reset_in.as_millis().div_ceil(1000) as u64;
                if o.legacy_headers {
                    res.set("x-ratelimit-limit", &o.limit.to_string())
                        .set("x-ratelimit-remaining", &remaining.to_string())
                        .set(
                            "x-ratelimit-reset",
                            &unix_secs_ceil(hits.reset_at).to_string(),
                        );
                }
                match o.standard_headers {
                    Some(StandardHeaders::Draft6) => {
                        res.set("ratelimit-policy", &format!("{};w={window_secs}", o.limit))
                            .set("ratelimit-limit", &o.limit.to_string())
                            .set("ratelimit-remaining", &remaining.to_string())
                            .set("ratelimit-reset", &reset_secs.to_string());
                    }
                    Some(StandardHeaders::Draft7) => {
                        res.set("ratelimit-policy", &format!("{};w={window_secs}", o.limit))
                            .set(
                                "ratelimit",
                                &format!(
                                    "limit={}, remaining={remaining}, reset={reset_secs}",
                                    o.limit
                                ),
                            );
                    }
                    None => {}
                }
                if hits.total > o.limit {
                    res.set("retry-after", &reset_secs.to_string());
                    next.error(AppError::new(o.status, o.message.clone()));
                } else {
                    next.call();
                }
            }),
        );
    })
}
