//! Overload protection, off unless you add it: load shedding on event-loop delay or utilisation
//! (Fastify's `@fastify/under-pressure`) and a per-client token-bucket rate limiter.
//!
//! Both answer at once instead of queueing: a request that cannot be served well is cheaper to
//! refuse with a `Retry-After` than to serve late.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use oneloop_runtime::{Loop, LoopMetrics};

use super::{Middleware, Next, Req, Res};

/// Thresholds for [`under_pressure`].
#[derive(Clone, Copy, Debug)]
pub struct PressureOptions {
    /// Shed when the event-loop delay (how late the sampling timer fired) exceeds this.
    pub max_event_loop_delay_ms: Option<u64>,
    /// Shed when event-loop utilisation over the last sample exceeds this (0..=1).
    pub max_utilization: Option<f64>,
    /// How often the loop is sampled.
    pub sample_interval_ms: u64,
    /// `Retry-After` seconds sent with 503.
    pub retry_after_secs: u64,
}

impl Default for PressureOptions {
    fn default() -> Self {
        PressureOptions {
            max_event_loop_delay_ms: Some(1000),
            max_utilization: None,
            sample_interval_ms: 100,
            retry_after_secs: 10,
        }
    }
}

/// What the sampler saw last.
#[derive(Default)]
struct Pressure {
    started: Cell<bool>,
    delay_ms: Cell<f64>,
    utilization: Cell<f64>,
}

fn sample(lp: &mut Loop, state: &Rc<Pressure>, interval_ns: u64, last: &Cell<(u64, LoopMetrics)>) {
    let now = lp.hrtime();
    let metrics = lp.metrics();
    let (prev_ns, prev_metrics) = last.get();
    let late = now.saturating_sub(prev_ns + interval_ns);
    state.delay_ms.set(late as f64 / 1e6);
    state
        .utilization
        .set(metrics.utilization(Some(&prev_metrics)));
    last.set((now, metrics));
}

/// Answers 503 with `Retry-After` while the loop is overloaded (see [`PressureOptions`]).
///
/// The sampler is an unref'd interval armed on the first request: it measures how late it fires
/// (a handler that blocks the loop for 300 ms makes the next sample 300 ms late) and the loop's
/// utilisation between samples.
pub fn under_pressure(options: PressureOptions) -> Middleware {
    let state = Rc::new(Pressure::default());
    Rc::new(move |req: &mut Req, res: &mut Res, next: Next| {
        if !state.started.replace(true) {
            let state = Rc::clone(&state);
            req.loop_handle().next_tick(move |lp| {
                let interval = options.sample_interval_ms.max(1);
                let last = Cell::new((lp.hrtime(), lp.metrics()));
                let timer = lp.set_interval(interval, move |lp| {
                    sample(lp, &state, interval * 1_000_000, &last);
                });
                let _ = lp.unref(timer);
            });
        }
        let too_late = options
            .max_event_loop_delay_ms
            .is_some_and(|max| state.delay_ms.get() > max as f64);
        let too_busy = options
            .max_utilization
            .is_some_and(|max| state.utilization.get() > max);
        if too_late || too_busy {
            log::warn!(
                "shedding load: delay {:.1} ms, utilization {:.2}",
                state.delay_ms.get(),
                state.utilization.get()
            );
            res.status(503)
                .set("retry-after", &options.retry_after_secs.to_string());
            res.send_text("Service Unavailable");
            return;
        }
        next.call();
    })
}

/// Budget for [`rate_limit`].
#[derive(Clone, Copy, Debug)]
pub struct RateLimitOptions {
    /// Requests allowed per `window` per client address (the bucket's size).
    pub limit: u32,
    /// The window over which `limit` refills.
    pub window: Duration,
    /// Most client addresses tracked; beyond it, full buckets are forgotten first.
    pub max_clients: usize,
}

impl Default for RateLimitOptions {
    fn default() -> Self {
        RateLimitOptions {
            limit: 100,
            window: Duration::from_secs(60),
            max_clients: 100_000,
        }
    }
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// A token bucket per client address: `limit` requests, refilled continuously over `window`.
/// Every answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (the
/// IETF draft's fields); past the budget it answers 429 with `Retry-After`.
pub fn rate_limit(options: RateLimitOptions) -> Middleware {
    let buckets: Rc<RefCell<HashMap<IpAddr, Bucket>>> = Rc::new(RefCell::new(HashMap::new()));
    let limit = options.limit.max(1) as f64;
    let per_sec = limit / options.window.as_secs_f64().max(1e-3);
    Rc::new(move |req: &mut Req, res: &mut Res, next: Next| {
        let ip = req
            .http()
            .and_then(|r| r.remote_addr())
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let now = Instant::now();
        let mut map = buckets.borrow_mut();
        if map.len() >= options.max_clients && !map.contains_key(&ip) {
            // Forget clients whose bucket is full again: they cost nothing to recreate.
            map.retain(|_, b| {
                b.tokens + now.duration_since(b.refilled).as_secs_f64() * per_sec < limit
            });
        }
        let bucket = map.entry(ip).or_insert(Bucket {
            tokens: limit,
            refilled: now,
        });
        bucket.tokens = (bucket.tokens
            + now.duration_since(bucket.refilled).as_secs_f64() * per_sec)
            .min(limit);
        bucket.refilled = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let remaining = bucket.tokens.floor() as u64;
        let reset = ((limit - bucket.tokens) / per_sec).ceil() as u64;
        let retry_after = ((1.0 - bucket.tokens).max(0.0) / per_sec).ceil().max(1.0) as u64;
        drop(map);
        res.set("ratelimit-limit", &options.limit.to_string())
            .set("ratelimit-remaining", &remaining.to_string())
            .set("ratelimit-reset", &reset.to_string());
        if allowed {
            next.call();
        } else {
            res.status(429).set("retry-after", &retry_after.to_string());
            res.send_text("Too Many Requests");
        }
    })
}
