//! Topics: `subscribe`/`unsubscribe`/`publish` across the WebSockets that share a [`Hub`].
//!
//! # No copy per subscriber
//! [`Hub::publish`] encodes the frame (header and payload) once into a [`Bytes`] and hands
//! each subscriber's socket a clone of it (`tcp_write_bytes`): a clone is a reference-count
//! increment; whatever the kernel does not take at once stays queued as that same buffer.
//! With shared compression (permessage-deflate, no context takeover) a publish is compressed
//! once per window size in use and those frame bytes are shared the same way; subscribers
//! without compression get the plain frame, dedicated-mode ones compress for themselves.
//!
//! # Across processes
//! [`Hub::with_redis`] bridges the hub to Redis pub/sub (see `bridge.rs`): publishes also go
//! to every other bridged hub on the same Redis and prefix, each delivered once. Without it
//! a hub is local and costs nothing more than the map below.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use oneloop_runtime::{Loop, TcpId};

use super::bridge::{Bridge, HubRedisOptions, HubRedisStats};
use super::deflate::PublishFrames;
use super::socket::{over_limit, status_of, Message, SendStatus, State, WebSocket};
use crate::redis::RedisError;

#[derive(Default)]
struct HubInner {
    topics: HashMap<Rc<str>, HashMap<TcpId, WebSocket>>,
    /// Nesting depth of [`Hub::begin_batch`]: while above 0, publishing corks each target
    /// socket (once) instead of writing to it.
    batch_depth: usize,
    /// Sockets corked by publishes of the current batch, uncorked by its end.
    batch: Vec<WebSocket>,
    /// The Redis bridge, if any.
    bridge: Option<Rc<Bridge>>,
    /// Topics that gained their first or lost their last local subscriber since the last
    /// [`Hub::sync_redis`] (only with a bridge).
    dirty: Vec<Rc<str>>,
}

/// A hub that does not keep it alive (what the bridge's callbacks hold).
#[derive(Clone)]
pub(super) struct WeakHub(Weak<RefCell<HubInner>>);

impl WeakHub {
    pub(super) fn upgrade(&self) -> Option<Hub> {
        self.0.upgrade().map(Hub)
    }
}

/// A pub/sub registry shared by WebSockets (uWS's per-app topic tree, flat). Cheap to clone;
/// clones are the same hub. [`WsOptions::default`](super::WsOptions) makes a new hub per
/// route: pass one hub to several routes to let them share topics.
#[derive(Clone, Default)]
pub struct Hub(Rc<RefCell<HubInner>>);

impl Hub {
    /// An empty hub.
    pub fn new() -> Hub {
        Hub::default()
    }

    /// A hub bridged to the Redis at `url` (`redis://host:port`, see
    /// [`Redis::connect`](crate::redis::Redis::connect)): [`Hub::publish`] (and
    /// `ws.publish`) deliver locally at once and through Redis to the subscribers of every
    /// other hub bridged with the same prefix, in this process (other workers) or another;
    /// each subscriber gets a message once, and the messages of one hub arrive in the
    /// order it published them. Returns at once; the connections are made in the
    /// background and, until they are ready (or while Redis is down), publishes reach
    /// local subscribers only. Two connections per hub: a publisher and a subscriber.
    /// Neither keeps the loop alive. See docs/ws.md "Across processes".
    ///
    /// # Errors
    /// [`RedisError::InvalidUrl`].
    pub fn with_redis(
        lp: &mut Loop,
        url: &str,
        options: HubRedisOptions,
    ) -> Result<Hub, RedisError> {
        let bridge = Bridge::connect(lp, url, options)?;
        let hub = Hub::new();
        hub.0.borrow_mut().bridge = Some(bridge);
        Ok(hub)
    }

    /// The bridge's counters and connection state (`None` for a local hub).
    pub fn redis_stats(&self) -> Option<HubRedisStats> {
        self.0.borrow().bridge.as_ref().map(|b| b.stats())
    }

    /// The bridge's origin id: 16 hex digits, random per hub (`None` for a local hub).
    pub fn redis_origin(&self) -> Option<String> {
        self.0
            .borrow()
            .bridge
            .as_ref()
            .map(|b| b.origin().to_owned())
    }

    /// Closes the bridge's connections (the publisher after what was already published);
    /// the hub is local from now on. For a clean exit after a graceful shutdown.
    pub fn disconnect_redis(&self, lp: &mut Loop) {
        let bridge = self.0.borrow_mut().bridge.take();
        if let Some(b) = bridge {
            b.close(lp);
        }
    }

    /// Makes the Redis subscriptions follow the local ones: `SUBSCRIBE` for each topic that
    /// gained its first local subscriber, `UNSUBSCRIBE` for each that lost its last. Runs by
    /// itself after a socket's handler, after its message callbacks, when it closes and at
    /// every publish; call it after `ws.subscribe`/`unsubscribe` made elsewhere (a timer) to
    /// apply them at once. A no-op for a local hub.
    pub fn sync_redis(&self, lp: &mut Loop) {
        let (bridge, dirty) = {
            let mut h = self.0.borrow_mut();
            if h.dirty.is_empty() {
                return;
            }
            let Some(b) = h.bridge.clone() else {
                h.dirty.clear();
                return;
            };
            (b, std::mem::take(&mut h.dirty))
        };
        let weak = WeakHub(Rc::downgrade(&self.0));
        for topic in dirty {
            let local = self.0.borrow().topics.contains_key(&topic);
            bridge.sync(lp, weak.clone(), &topic, local);
        }
    }

    /// Starts a batch: until the matching [`Hub::end_batch`], every subscriber a publish
    /// writes to is corked, so all the messages one read publishes leave in one write per
    /// subscriber (a socket's `on_data` wraps its message callbacks in a batch; the bridge
    /// wraps a loop turn's remote messages in one).
    pub(crate) fn begin_batch(&self) {
        self.0.borrow_mut().batch_depth += 1;
    }

    /// Ends a batch; the outermost end uncorks (flushes) every socket the batch corked.
    pub(crate) fn end_batch(&self, lp: &mut Loop) {
        self.sync_redis(lp);
        let mut batch = {
            let mut h = self.0.borrow_mut();
            h.batch_depth -= 1;
            if h.batch_depth > 0 || h.batch.is_empty() {
                return;
            }
            std::mem::take(&mut h.batch)
        };
        for ws in batch.drain(..) {
            let id = {
                let mut c = ws.0.borrow_mut();
                c.hub_corked = false;
                c.id
            };
            // A socket closed meanwhile is stale: nothing to flush.
            let _ = lp.tcp_uncork(id);
        }
        let mut h = self.0.borrow_mut();
        if h.batch.is_empty() {
            h.batch = batch; // keep the capacity
        }
    }

    pub(crate) fn subscribe(&self, ws: &WebSocket, topic: &str) -> bool {
        let mut c = ws.0.borrow_mut();
        if c.state == State::Closed || c.topics.iter().any(|t| &**t == topic) {
            return false;
        }
        let mut inner = self.0.borrow_mut();
        let key = match inner.topics.get_key_value(topic) {
            Some((k, _)) => Rc::clone(k),
            None => Rc::from(topic),
        };
        c.topics.push(Rc::clone(&key));
        let subs = inner.topics.entry(Rc::clone(&key)).or_default();
        let first = subs.is_empty();
        subs.insert(c.id, ws.clone());
        if first && inner.bridge.is_some() {
            inner.dirty.push(key);
        }
        true
    }

    pub(crate) fn unsubscribe(&self, ws: &WebSocket, topic: &str) -> bool {
        let id = {
            let mut c = ws.0.borrow_mut();
            let Some(pos) = c.topics.iter().position(|t| &**t == topic) else {
                return false;
            };
            c.topics.swap_remove(pos);
            c.id
        };
        self.remove(topic, id);
        true
    }

    pub(crate) fn unsubscribe_all(&self, ws: &WebSocket) {
        let (id, topics) = {
            let mut c = ws.0.borrow_mut();
            (c.id, std::mem::take(&mut c.topics))
        };
        for t in topics {
            self.remove(&t, id);
        }
    }

    fn remove(&self, topic: &str, id: TcpId) {
        let mut inner = self.0.borrow_mut();
        if let Some(subs) = inner.topics.get_mut(topic) {
            subs.remove(&id);
            if subs.is_empty() {
                if let Some((key, _)) = inner.topics.remove_entry(topic) {
                    if inner.bridge.is_some() {
                        inner.dirty.push(key);
                    }
                }
            }
        }
    }

    /// Subscribers of `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.0.borrow().topics.get(topic).map_or(0, HashMap::len)
    }

    /// Topics with at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.0.borrow().topics.len()
    }

    /// Sends `msg` to every open subscriber of `topic` (uWS's `app.publish`): the frame is
    /// encoded once and each socket gets a clone of the same buffer. Returns how many local
    /// subscribers got it; the others were over their `max_backpressure` (see
    /// [`SendStatus::Dropped`]) or closing. Order per subscriber is preserved; the order
    /// across subscribers is unspecified. A bridged hub ([`Hub::with_redis`]) also sends it
    /// through Redis to the other hubs' subscribers.
    pub fn publish(&self, lp: &mut Loop, topic: &str, msg: impl Into<Message>) -> usize {
        self.publish_except(lp, topic, &msg.into(), None)
    }

    pub(crate) fn publish_except(
        &self,
        lp: &mut Loop,
        topic: &str,
        msg: &Message,
        except: Option<TcpId>,
    ) -> usize {
        let sent = self.publish_local(lp, topic, msg, except);
        let bridge = self.0.borrow().bridge.clone();
        if let Some(b) = bridge {
            b.forward(lp, topic, msg);
            self.sync_redis(lp);
        }
        sent
    }

    /// A message from another bridged hub: to the local subscribers only.
    pub(super) fn deliver_remote(&self, lp: &mut Loop, topic: &str, msg: &Message) -> usize {
        self.publish_local(lp, topic, msg, None)
    }

    fn publish_local(
        &self,
        lp: &mut Loop,
        topic: &str,
        msg: &Message,
        except: Option<TcpId>,
    ) -> usize {
        let batching = self.0.borrow().batch_depth > 0;
        let targets: Vec<(TcpId, usize, Option<WebSocket>, WebSocket)> = {
            let inner = self.0.borrow();
            let Some(subs) = inner.topics.get(topic) else {
                return 0;
            };
            subs.iter()
                .filter(|(id, _)| Some(**id) != except)
                .filter_map(|(id, ws)| {
                    let c = ws.0.borrow();
                    if c.state != State::Open {
                        return None;
                    }
                    let to_cork = (batching && !c.hub_corked).then(|| ws.clone());
                    Some((*id, c.max_backpressure, to_cork, ws.clone()))
                })
                .collect()
        };
        if targets.is_empty() {
            return 0;
        }
        // One plain frame, one compressed frame per window size (shared compression): built
        // once, the same bytes written to every subscriber that takes them.
        let mut frames = PublishFrames::new(msg.opcode(), msg.as_bytes());
        let mut sent = 0;
        for (id, max_bp, to_cork, ws) in targets {
            if over_limit(lp, id, max_bp) {
                continue;
            }
            if let Some(ws) = to_cork {
                if lp.tcp_cork(id).is_ok() {
                    ws.0.borrow_mut().hub_corked = true;
                    self.0.borrow_mut().batch.push(ws);
                }
            }
            let frame = {
                let mut c = ws.0.borrow_mut();
                let threshold = c.compress_threshold;
                frames.frame_for(&mut c.outgoing, threshold)
            };
            if status_of(lp.tcp_write_bytes(id, frame)) != SendStatus::Dropped {
                sent += 1;
            }
        }
        sent
    }
}
