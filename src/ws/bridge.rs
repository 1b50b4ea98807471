//! A [`Hub`](super::Hub)'s bridge to Redis pub/sub: topics shared by every process (and
//! every worker) that bridges a hub to the same Redis, the way Socket.IO's Redis adapter
//! shares rooms.
//!
//! # How a message travels
//! - Each bridge has a random 64-bit **origin id** (one per hub, so one per worker).
//! - `publish` delivers to the local subscribers at once, then sends `PUBLISH <prefix><topic>
//!   <kind><origin><message>` on the bridge's publisher connection.
//! - The subscriber connection is `SUBSCRIBE`d to `<prefix><topic>` while the hub has at least
//!   one local subscriber of `topic` (Socket.IO's sharded adapter's "dynamic" mode): Redis
//!   sends a message only to the processes that have someone to give it to.
//! - A message from Redis carrying our own origin id is our own publish coming back: dropped,
//!   so the publisher's process delivers it once. Any other is delivered to the local
//!   subscribers (no copy per subscriber, corked until the check phase like a read's
//!   publishes).
//!
//! # Order and delivery
//! One publisher connection per bridge, and Redis runs commands of one connection in order
//! and writes to each subscriber connection in the order it ran them: the messages one
//! bridge publishes reach every other bridge in publish order. Delivery is at most once:
//! `PUBLISH` is never retried (a retry after a lost reply could deliver twice), and
//! nothing published while Redis is unreachable is queued.
//!
//! # Bounds and failure
//! - Redis not ready (down, restarting, still connecting): the publisher's offline queue is
//!   off, so a publish fails at once and reaches local subscribers only (`publish_failed`);
//!   the first failure after a good period is logged at error level, the recovery at info
//!   level with the number of local-only publishes. Both connections reconnect (the client's
//!   capped backoff with jitter) and the subscriber restores every `SUBSCRIBE` before it is
//!   ready again. Messages published elsewhere while this process was disconnected are lost
//!   (Redis pub/sub keeps nothing).
//! - Redis slow: unwritten commands are bounded by the client's `max_queued_commands` /
//!   `max_queued_bytes`; past them a publish fails at once (local-only, counted).
//! - A message over [`HubRedisOptions::max_message_bytes`] is never sent to Redis
//!   (`too_large`, local-only); the subscriber refuses bulk strings over that bound plus the
//!   17-byte header (a protocol error: the connection is closed and restored), so set the
//!   same value on every instance.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use oneloop_runtime::Loop;

use super::pubsub::{Hub, WeakHub};
use super::socket::Message;
use crate::redis::{Message as RedisMessage, Redis, RedisError, RedisOptions, Subscriber};

/// Bytes before the message in a bridged payload: the kind (`T` text, `B` binary) and the
/// origin id as 16 hex digits.
pub const HEADER_LEN: usize = 17;

/// Default [`HubRedisOptions::max_message_bytes`]: 1 MiB.
pub const DEFAULT_MAX_BRIDGED_MESSAGE: usize = 1 << 20;

/// Settings of a hub's Redis bridge ([`Hub::with_redis`](super::Hub::with_redis)).
#[derive(Clone, Debug)]
pub struct HubRedisOptions {
    /// Channel name prefix: topic `room` is channel `oneloop:ws#room` by default. Hubs with
    /// the same prefix on the same Redis (database numbers do not separate pub/sub) share
    /// topics; give each application its own.
    pub prefix: String,
    /// Largest message sent through Redis; a larger one reaches local subscribers only.
    /// Default 1 MiB. Use the same value on every instance (see the module docs).
    pub max_message_bytes: usize,
    /// Options of both connections. The bridge overrides, on the publisher,
    /// `enable_offline_queue` (false: no stale messages after an outage) and, on the
    /// subscriber, `max_retries_per_request` (1: subscriptions are restored from the
    /// subscriber's own list on reconnect) and `reply_limits.max_bulk_len`.
    pub redis: RedisOptions,
}

impl Default for HubRedisOptions {
    fn default() -> HubRedisOptions {
        HubRedisOptions {
            prefix: "oneloop:ws#".into(),
            max_message_bytes: DEFAULT_MAX_BRIDGED_MESSAGE,
            redis: RedisOptions::default(),
        }
    }
}

/// Counters and state of a hub's Redis bridge ([`Hub::redis_stats`](super::Hub::redis_stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubRedisStats {
    /// Whether the publisher connection is ready.
    pub publisher_ready: bool,
    /// Whether the subscriber connection is ready (its subscriptions restored).
    pub subscriber_ready: bool,
    /// Topics this hub wants from Redis (those with a local subscriber).
    pub remote_topics: usize,
    /// `PUBLISH` commands issued.
    pub published: u64,
    /// Publishes that reached local subscribers only: Redis not ready, queue full, connection
    /// lost before the reply, error reply.
    pub publish_failed: u64,
    /// Publishes over `max_message_bytes`, kept local.
    pub too_large: u64,
    /// Messages from Redis on this hub's channels (our own echoes included).
    pub received: u64,
    /// Our own publishes coming back from Redis, dropped.
    pub own_dropped: u64,
    /// Messages from other hubs handed to local subscribers.
    pub delivered: u64,
    /// Messages from Redis without a valid header (or text that is not UTF-8), dropped.
    pub malformed: u64,
}

pub(super) struct Bridge {
    origin: [u8; 16],
    prefix: Bytes,
    max_message_bytes: usize,
    publisher: Redis,
    subscriber: Subscriber,
    stats: Cell<HubRedisStats>,
    /// Redis was reported unavailable (error logged) and not yet back.
    down: Cell<bool>,
    /// Publishes that failed since `down` was set.
    failed_while_down: Cell<u64>,
    /// Topics `SUBSCRIBE`d (or being), mirrored from local interest by `sync`.
    remote: RefCell<HashSet<Rc<str>>>,
    /// A delivery batch of remote messages is open until the next check phase.
    batch_open: Cell<bool>,
}

fn origin_id() -> [u8; 16] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    let v = h.finish();
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = b"0123456789abcdef"[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

impl Bridge {
    pub(super) fn connect(
        lp: &mut Loop,
        url: &str,
        options: HubRedisOptions,
    ) -> Result<Rc<Bridge>, RedisError> {
        let mut pub_opts = options.redis.clone();
        pub_opts.enable_offline_queue = false;
        let mut sub_opts = options.redis;
        sub_opts.max_retries_per_request = Some(1);
        sub_opts.reply_limits.max_bulk_len = options.max_message_bytes + HEADER_LEN;
        let publisher = Redis::connect(lp, url, pub_opts)?;
        let subscriber = Subscriber::connect(lp, url, sub_opts)?;
        // The server's listener and sockets keep a process alive, never the bridge.
        publisher.unref(lp);
        subscriber.client().unref(lp);
        let bridge = Rc::new(Bridge {
            origin: origin_id(),
            prefix: Bytes::from(options.prefix.into_bytes()),
            max_message_bytes: options.max_message_bytes,
            publisher,
            subscriber,
            stats: Cell::new(HubRedisStats::default()),
            down: Cell::new(false),
            failed_while_down: Cell::new(0),
            remote: RefCell::default(),
            batch_open: Cell::new(false),
        });
        for client in [bridge.publisher.clone(), bridge.subscriber.client().clone()] {
            let b = Rc::downgrade(&bridge);
            client.on_error(move |_lp, e| {
                if let Some(b) = b.upgrade() {
                    b.went_down(&e.to_string());
                }
            });
            let b = Rc::downgrade(&bridge);
            client.on_close(move |_lp| {
                if let Some(b) = b.upgrade() {
                    b.went_down("connection closed");
                }
            });
            let b = Rc::downgrade(&bridge);
            client.on_ready(move |_lp| {
                if let Some(b) = b.upgrade() {
                    b.came_back();
                }
            });
        }
        Ok(bridge)
    }

    /// The origin id (16 hex digits).
    pub(super) fn origin(&self) -> &str {
        std::str::from_utf8(&self.origin).unwrap_or("")
    }

    fn bump(&self, f: impl FnOnce(&mut HubRedisStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    pub(super) fn stats(&self) -> HubRedisStats {
        let mut s = self.stats.get();
        s.publisher_ready = self.publisher.is_ready();
        s.subscriber_ready = self.subscriber.client().is_ready();
        s.remote_topics = self.remote.borrow().len();
        s
    }

    fn went_down(&self, why: &str) {
        if !self.down.replace(true) {
            self.failed_while_down.set(0);
            log::error!(
                "ws hub {}: Redis unavailable ({why}); publishes reach this process's \
                 subscribers only until it is back",
                self.origin()
            );
        }
    }

    fn came_back(&self) {
        if self.publisher.is_ready() && self.subscriber.client().is_ready() && self.down.get() {
            self.down.set(false);
            log::info!(
                "ws hub {}: Redis is back; {} publishes reached local subscribers only meanwhile",
                self.origin(),
                self.failed_while_down.get()
            );
        }
    }

    fn channel(&self, topic: &str) -> Vec<u8> {
        let mut c = Vec::with_capacity(self.prefix.len() + topic.len());
        c.extend_from_slice(&self.prefix);
        c.extend_from_slice(topic.as_bytes());
        c
    }

    /// Sends a message the hub has delivered locally to every other bridged hub.
    pub(super) fn forward(self: &Rc<Self>, lp: &mut Loop, topic: &str, msg: &Message) {
        let data = msg.as_bytes();
        if data.len() > self.max_message_bytes {
            self.bump(|s| s.too_large += 1);
            log::debug!(
                "ws hub: a {} byte message on {topic:?} stays local (max_message_bytes {})",
                data.len(),
                self.max_message_bytes
            );
            return;
        }
        let mut payload = BytesMut::with_capacity(HEADER_LEN + data.len());
        payload.put_u8(match msg {
            Message::Text(_) => b'T',
            Message::Binary(_) => b'B',
        });
        payload.put_slice(&self.origin);
        payload.put_slice(data);
        self.bump(|s| s.published += 1);
        let b = Rc::downgrade(self);
        self.publisher
            .publish(lp, self.channel(topic), payload, move |_lp, r| {
                if let (Err(e), Some(b)) = (r, b.upgrade()) {
                    b.bump(|s| s.publish_failed += 1);
                    if b.down.get() {
                        b.failed_while_down.set(b.failed_while_down.get() + 1);
                    } else {
                        b.went_down(&e.to_string());
                        b.failed_while_down.set(1);
                    }
                }
            });
    }

    /// Makes the Redis subscriptions follow local interest in `topic`.
    pub(super) fn sync(self: &Rc<Self>, lp: &mut Loop, hub: WeakHub, topic: &Rc<str>, local: bool) {
        let remote = self.remote.borrow().contains(topic);
        if local == remote {
            return;
        }
        let channel = self.channel(topic);
        if local {
            self.remote.borrow_mut().insert(Rc::clone(topic));
            let b = Rc::downgrade(self);
            let t = Rc::clone(topic);
            self.subscriber.subscribe(
                lp,
                channel,
                move |lp, m| {
                    if let (Some(b), Some(h)) = (b.upgrade(), hub.upgrade()) {
                        b.on_message(lp, &h, &t, m);
                    }
                },
                |_lp, r| {
                    if let Err(e) = r {
                        log::debug!("ws hub: SUBSCRIBE not confirmed ({e}); restored on reconnect");
                    }
                },
            );
        } else {
            self.remote.borrow_mut().remove(topic);
            self.subscriber.unsubscribe(lp, channel, |_lp, _| {});
        }
    }

    fn on_message(self: &Rc<Self>, lp: &mut Loop, hub: &Hub, topic: &str, m: &RedisMessage) {
        self.bump(|s| s.received += 1);
        let p = &m.payload;
        if p.len() < HEADER_LEN {
            self.bump(|s| s.malformed += 1);
            return;
        }
        if p[1..HEADER_LEN] == self.origin {
            self.bump(|s| s.own_dropped += 1);
            return;
        }
        let data = p.slice(HEADER_LEN..);
        let msg = match p[0] {
            b'T' => match String::from_utf8(data.to_vec()) {
                Ok(s) => Message::Text(s),
                Err(_) => {
                    self.bump(|s| s.malformed += 1);
                    return;
                }
            },
            b'B' => Message::Binary(data),
            _ => {
                self.bump(|s| s.malformed += 1);
                return;
            }
        };
        self.bump(|s| s.delivered += 1);
        // Every message of this read (and of this loop turn) goes out in one write per
        // subscriber: the batch ends in the check phase.
        if !self.batch_open.replace(true) {
            hub.begin_batch();
            let b = Rc::downgrade(self);
            let h = hub.clone();
            lp.set_immediate(move |lp| {
                if let Some(b) = b.upgrade() {
                    b.batch_open.set(false);
                }
                h.end_batch(lp);
            });
        }
        hub.deliver_remote(lp, topic, &msg);
    }

    /// Closes both connections: the publisher after what was already published (`QUIT`),
    /// the subscriber at once.
    pub(super) fn close(&self, lp: &mut Loop) {
        self.down.set(true); // a deliberate close is not an outage: nothing to log
        self.publisher.quit(lp, |_lp, _| {});
        self.subscriber.client().disconnect(lp);
    }
}
