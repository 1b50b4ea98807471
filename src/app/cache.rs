//! A response cache (cache-aside): a GET or HEAD whose key is cached is answered from the
//! cache without running the handler; otherwise the handler runs, and its response, if
//! cacheable, is stored for `ttl`. Concurrent requests for a key being fetched wait for that
//! one handler run instead of each running it (stampede protection).
//!
//! ```
//! use std::time::Duration;
//! use oneloop::app::cache::{cache, CacheOptions};
//! use oneloop::app::App;
//!
//! let mut app = App::new();
//! // Lists for 30 s, one entry per Accept-Language.
//! app.use_mw_at("/api/products", cache(CacheOptions {
//!     key_headers: vec!["accept-language".into()],
//!     ..CacheOptions::ttl(Duration::from_secs(30))
//! }));
//! ```
//!
//! # What is cached
//! - Only GET and HEAD requests are looked up; others pass by untouched.
//! - The key is the method, the request target as received (path and query), and the values
//!   of [`CacheOptions::key_headers`]: `GET /api/products?page=2` and `HEAD` of it are two keys.
//! - Only a 200 is stored, and not when the handler's response says
//!   `Cache-Control: no-store`, `private` or `no-cache`, or sets a cookie, or its body is over
//!   [`CacheOptions::max_body_bytes`] (default 1 MiB; the body is still sent, just not kept).
//! - Stored: the status, the header fields (not `Content-Length`, `Date`, `Connection`,
//!   `Transfer-Encoding`, `Keep-Alive`, `X-Cache`), the body as the handler sent it (before
//!   any compression installed earlier, which then compresses the replay too).
//! - Every response that went through the cache carries `X-Cache: HIT` (from the cache, or
//!   from another request's handler run it waited for) or `X-Cache: MISS` (the handler ran).
//! - A hit answers `If-None-Match` against the stored ETag with 304.
//!
//! # Stampede protection
//! The first request for a key that is not cached becomes its *leader*: while the store is
//! asked and the handler runs, other requests for the key (in this loop: each worker thread
//! or process has its own leaders) wait, holding no more than their `Res` and `Next`. When
//! the leader's response is stored, each waiter is answered with it; when it is not
//! cacheable (a 404, `no-store`, too big) or the leader's response is dropped unfinished, the
//! waiters run the handler themselves.
//!
//! # Stores
//! [`MemoryCacheStore`] (the default; one per loop) holds at most `max_entries` (default
//! 1,000) entries and `max_bytes` (default 64 MiB of bodies plus headers), dropping the least
//! recently used first; an entry expires after its TTL.
//! [`RedisCacheStore`](crate::redis::stores::RedisCacheStore) shares entries across workers
//! and processes. A store that fails (Redis down) makes the request a miss: the handler runs,
//! the failure is logged, nothing is stored.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oneloop_runtime::LoopHandle;

use super::res::{BodyHook, BodySink};
use super::{Middleware, Next, Req, Res};

/// Why a store operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

/// Called once when a lookup is done.
pub type CacheCallback<T> = Box<dyn FnOnce(Result<T, StoreError>)>;

/// A stored response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedResponse {
    /// Always 200 today.
    pub status: u16,
    /// Header fields in the order the handler set them (repeated names repeated).
    pub headers: Vec<(String, String)>,
    /// The body as the handler sent it.
    pub body: Bytes,
}

const MAGIC: &[u8; 4] = b"OLC1";

impl CachedResponse {
    /// Bytes it takes in a store (body plus header names and values).
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    }

    /// The form a byte store (Redis) keeps: `OLC1`, status (u16 BE), header count (u16 BE),
    /// each header as name length (u16 BE), name, value length (u32 BE), value; then the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size() + 8 + self.headers.len() * 6);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&(self.headers.len().min(u16::MAX as usize) as u16).to_be_bytes());
        for (name, value) in self.headers.iter().take(u16::MAX as usize) {
            out.extend_from_slice(&(name.len().min(u16::MAX as usize) as u16).to_be_bytes());
            out.extend_from_slice(&name.as_bytes()[..name.len().min(u16::MAX as usize)]);
            out.extend_from_slice(&(value.len() as u32).to_be_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(&self.body);
        out
    }

    /// Reads [`CachedResponse::encode`]'s form; `None` for anything else (never panics).
    pub fn decode(data: &Bytes) -> Option<CachedResponse> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let piece = data.get(at..at.checked_add(n)?)?;
            at += n;
            Some(piece)
        };
        if take(4)? != MAGIC {
            return None;
        }
        let status = u16::from_be_bytes(take(2)?.try_into().ok()?);
        let count = u16::from_be_bytes(take(2)?.try_into().ok()?);
        let mut headers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let name_len = u16::from_be_bytes(take(2)?.try_into().ok()?) as usize;
            let name = std::str::from_utf8(take(name_len)?).ok()?.to_owned();
            let value_len = u32::from_be_bytes(take(4)?.try_into().ok()?) as usize;
            let value = std::str::from_utf8(take(value_len)?).ok()?.to_owned();
            headers.push((name, value));
        }
        Some(CachedResponse {
            status,
            headers,
            body: data.slice(at..),
        })
    }
}

/// Where cached responses live.
pub trait CacheStore {
    /// The entry at `key`, or `None` when absent or expired; `done` runs now or later, on the
    /// loop thread.
    fn get(&self, key: &str, done: CacheCallback<Option<CachedResponse>>);
    /// Stores `value` at `key` for `ttl` (fire and forget: a failure is logged by the store).
    fn set(&self, key: &str, value: &CachedResponse, ttl: Duration);
}

/// Bounded in-memory cache: at most `max_entries` entries and `max_bytes` bytes
/// ([`CachedResponse::size`]), least recently used dropped first, each expiring after its
/// TTL. One per loop (not `Send`).
pub struct MemoryCacheStore {
    inner: RefCell<Lru>,
}

struct Entry {
    value: CachedResponse,
    expires_at: Instant,
    used: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<String, Entry>,
    /// Use order: the first key is the least recently used.
    recency: BTreeMap<u64, String>,
    clock: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl Lru {
    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.recency.remove(&e.used);
            self.bytes -= e.value.size();
        }
    }
}

impl Default for MemoryCacheStore {
    fn default() -> Self {
        MemoryCacheStore::new(1_000, 64 << 20)
    }
}

impl MemoryCacheStore {
    /// At most `max_entries` (at least 1) entries and `max_bytes` bytes.
    pub fn new(max_entries: usize, max_bytes: usize) -> MemoryCacheStore {
        MemoryCacheStore {
            inner: RefCell::new(Lru {
                max_entries: max_entries.max(1),
                max_bytes,
                ..Lru::default()
            }),
        }
    }

    /// Entries held now (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.inner.borrow().entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held now ([`CachedResponse::size`] of every entry).
    pub fn bytes(&self) -> usize {
        self.inner.borrow().bytes
    }
}

impl CacheStore for MemoryCacheStore {
    fn get(&self, key: &str, done: CacheCallback<Option<CachedResponse>>) {
        let found = {
            let mut lru = self.inner.borrow_mut();
            let now = Instant::now();
            match lru.entries.get(key).map(|e| e.expires_at <= now) {
                Some(true) => {
                    lru.remove(key);
                    None
                }
                Some(false) => {
                    lru.clock += 1;
                    let clock = lru.clock;
                    let e = lru.entries.get_mut(key).expect("present");
                    let old = std::mem::replace(&mut e.used, clock);
                    let value = e.value.clone();
                    lru.recency.remove(&old);
                    lru.recency.insert(clock, key.to_owned());
                    Some(value)
                }
                None => None,
            }
        };
        done(Ok(found));
    }

    fn set(&self, key: &str, value: &CachedResponse, ttl: Duration) {
        let mut lru = self.inner.borrow_mut();
        let size = value.size();
        lru.remove(key);
        if size > lru.max_bytes {
            return; // could never fit
        }
        while lru.entries.len() >= lru.max_entries || lru.bytes + size > lru.max_bytes {
            let Some((_, oldest)) = lru.recency.pop_first() else {
                break;
            };
            if let Some(e) = lru.entries.remove(&oldest) {
                lru.bytes -= e.value.size();
            }
        }
        lru.clock += 1;
        let clock = lru.clock;
        lru.recency.insert(clock, key.to_owned());
        lru.bytes += size;
        lru.entries.insert(
            key.to_owned(),
            Entry {
                value: value.clone(),
                expires_at: Instant::now() + ttl,
                used: clock,
            },
        );
    }
}

/// The cache's options; [`CacheOptions::ttl`] gives the defaults with a TTL.
#[derive(Clone)]
pub struct CacheOptions {
    /// How long an entry is served. Default 60 s.
    pub ttl: Duration,
    /// Request headers whose values are part of the key (lower-case names), for responses
    /// that vary on them. Default none.
    pub key_headers: Vec<String>,
    /// Responses with a larger body are not stored. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Default a [`MemoryCacheStore`] of 1,000 entries and 64 MiB.
    pub store: Rc<dyn CacheStore>,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            ttl: Duration::from_secs(60),
            key_headers: Vec::new(),
            max_body_bytes: 1 << 20,
            store: Rc::new(MemoryCacheStore::default()),
        }
    }
}

impl CacheOptions {
    /// The defaults with entries kept for `ttl`.
    pub fn ttl(ttl: Duration) -> CacheOptions {
        CacheOptions {
            ttl,
            ..CacheOptions::default()
        }
    }
}

/// A request waiting for its key's leader.
struct Waiter {
    res: Res,
    next: Next,
    if_none_match: Option<String>,
}

/// Keys being fetched in this loop, with the requests waiting for each.
type InFlight = Rc<RefCell<HashMap<String, Vec<Waiter>>>>;

/// What the waiters of a key get when its leader is done.
enum Outcome {
    Stored(CachedResponse),
    RunHandler,
}

/// The leader's claim on a key: released exactly once, by [`Flight::release`] or, if the
/// leader's response is dropped unfinished, by `Drop` (from a next tick: waiters then run
/// the handler).
struct Flight {
    key: String,
    in_flight: InFlight,
    handle: LoopHandle,
    released: bool,
}

impl Flight {
    fn release(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        let waiters = self
            .in_flight
            .borrow_mut()
            .remove(&self.key)
            .unwrap_or_default();
        for w in waiters {
            match &outcome {
                Outcome::Stored(entry) => {
                    replay(&w.res, entry, w.if_none_match.as_deref());
                }
                Outcome::RunHandler => {
                    w.res.set_static("x-cache", "MISS");
                    w.next.call();
                }
            }
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        let (key, in_flight) = (std::mem::take(&mut self.key), Rc::clone(&self.in_flight));
        self.handle.next_tick(move |_lp| {
            let mut flight = Flight {
                key,
                in_flight,
                handle: _lp.handle(),
                released: false,
            };
            flight.release(Outcome::RunHandler);
        });
    }
}

/// Answers `res` from `entry`.
fn replay(res: &Res, entry: &CachedResponse, if_none_match: Option<&str>) {
    res.status(entry.status);
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in &entry.headers {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            res.append(name, value);
        } else {
            res.set(name, value);
            seen.push(name);
        }
    }
    res.set_static("x-cache", "HIT");
    let etag = res.get("etag");
    if let (Some(inm), Some(tag)) = (if_none_match, etag) {
        if super::res::etag_matches(inm, &tag) {
            res.status(304);
            return res.end();
        }
    }
    res.send_bytes(&entry.body);
}

/// Header fields not stored with an entry: hop-by-hop, per-response, or ours.
fn skipped_header(name: &str) -> bool {
    [
        "content-length",
        "date",
        "connection",
        "transfer-encoding",
        "keep-alive",
        "x-cache",
    ]
    .iter()
    .any(|s| s.eq_ignore_ascii_case(name))
}

/// The body hook of a leader: copies the body as it passes, stores it at the end.
struct Capture {
    flight: Flight,
    store: Rc<dyn CacheStore>,
    ttl: Duration,
    max_body_bytes: usize,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl BodyHook for Capture {
    fn start(&mut self, res: &Res, buffered_len: Option<usize>) -> bool {
        let mut cacheable =
            res.status_code() == 200 && buffered_len.is_none_or(|len| len <= self.max_body_bytes);
        let mut headers = Vec::new();
        res.retain_headers(|name, value| {
            let lower = name.to_ascii_lowercase();
            if lower == "set-cookie" {
                cacheable = false;
            }
            if lower == "cache-control" {
                let v = String::from_utf8_lossy(value).to_ascii_lowercase();
                if v.split(',').any(|d| {
                    matches!(
                        d.trim().split('=').next(),
                        Some("no-store" | "private" | "no-cache")
                    )
                }) {
                    cacheable = false;
                }
            }
            if !skipped_header(name) {
                match std::str::from_utf8(value) {
                    Ok(v) => headers.push((name.to_owned(), v.to_owned())),
                    Err(_) => cacheable = false,
                }
            }
            true
        });
        res.set_static("x-cache", "MISS");
        if !cacheable {
            self.flight.release(Outcome::RunHandler);
            return false;
        }
        self.headers = headers;
        self.body = Some(Vec::with_capacity(buffered_len.unwrap_or(0)));
        true
    }

    fn write(&mut self, chunk: &[u8], down: &BodySink) -> bool {
        self.keep(chunk);
        down.write(chunk)
    }

    fn end(&mut self, last: &[u8], down: BodySink) {
        self.keep(last);
        down.end(last);
        let Some(body) = self.body.take() else {
            return self.flight.release(Outcome::RunHandler);
        };
        let entry = CachedResponse {
            status: 200,
            headers: std::mem::take(&mut self.headers),
            body: Bytes::from(body),
        };
        self.store.set(&self.flight.key, &entry, self.ttl);
        self.flight.release(Outcome::Stored(entry));
    }
}

impl Capture {
    fn keep(&mut self, piece: &[u8]) {
        let too_big = match &mut self.body {
            Some(body) if body.len() + piece.len() <= self.max_body_bytes => {
                body.extend_from_slice(piece);
                false
            }
            Some(_) => true,
            None => false,
        };
        if too_big {
            self.body = None;
            self.flight.release(Outcome::RunHandler);
        }
    }
}

/// The key of `req` under `options`.
fn cache_key(req: &Req, options: &CacheOptions) -> String {
    let mut key = format!("{} {}", req.method(), req.url());
    for name in &options.key_headers {
        key.push('\n');
        key.push_str(name);
        key.push_str(": ");
        key.push_str(req.header(name).unwrap_or(""));
    }
    key
}

/// The cache middleware (see the module docs).
pub fn cache(options: CacheOptions) -> Middleware {
    let options = Rc::new(options);
    let in_flight: InFlight = Rc::default();
    Rc::new(move |req: &mut Req, res: &mut Res, next: Next| {
        if !matches!(req.method(), "GET" | "HEAD") {
            return next.call();
        }
        let key = cache_key(req, &options);
        let if_none_match = req.header("if-none-match").map(str::to_owned);
        if let Some(waiters) = in_flight.borrow_mut().get_mut(&key) {
            waiters.push(Waiter {
                res: res.clone(),
                next,
                if_none_match,
            });
            return;
        }
        in_flight.borrow_mut().insert(key.clone(), Vec::new());
        let mut flight = Flight {
            key: key.clone(),
            in_flight: Rc::clone(&in_flight),
            handle: res.loop_handle().clone(),
            released: false,
        };
        let (o, res) = (Rc::clone(&options), res.clone());
        options.store.get(
            &key,
            Box::new(move |found| {
                let found = found.unwrap_or_else(|e| {
                    log::warn!("cache: store lookup failed, running the handler: {}", e.0);
                    None
                });
                match found {
                    Some(entry) => {
                        replay(&res, &entry, if_none_match.as_deref());
                        flight.release(Outcome::Stored(entry));
                    }
                    None => {
                        res.on_body(Capture {
                            flight,
                            store: Rc::clone(&o.store),
                            ttl: o.ttl,
                            max_body_bytes: o.max_body_bytes,
                            headers: Vec::new(),
                            body: None,
                        });
                        next.call();
                    }
                }
            }),
        );
    })
}
