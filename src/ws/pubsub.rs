//! Topics: `subscribe`/`unsubscribe`/`publish` across the WebSockets that share a [`Hub`].
//!
//! # No copy per subscriber
//! [`Hub::publish`] encodes the frame (header and payload) once into a [`Bytes`] and hands
//! each subscriber's socket a clone of it (`tcp_write_bytes`): a clone is a reference-count
//! increment; whatever the kernel does not take at once stays queued as that same buffer.
//! With shared compression (permessage-deflate, no context takeover) a publish is compressed
//! once per window size in use and those frame bytes are shared the same way; subscribers
//! without compression get the plain frame, dedicated-mode ones compress for themselves.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use oneloop_runtime::{Loop, TcpId};

use super::deflate::PublishFrames;
use super::socket::{over_limit, status_of, Message, SendStatus, State, WebSocket};

#[derive(Default)]
struct HubInner {
    topics: HashMap<Rc<str>, HashMap<TcpId, WebSocket>>,
    /// Nesting depth of [`Hub::begin_batch`]: while above 0, publishing corks each target
    /// socket (once) instead of writing to it.
    batch_depth: usize,
    /// Sockets corked by publishes of the current batch, uncorked by its end.
    batch: Vec<WebSocket>,
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

    /// Starts a batch: until the matching [`Hub::end_batch`], every subscriber a publish
    /// writes to is corked, so all the messages one read publishes leave in one write per
    /// subscriber (a socket's `on_data` wraps its message callbacks in a batch).
    pub(crate) fn begin_batch(&self) {
        self.0.borrow_mut().batch_depth += 1;
    }

    /// Ends a batch; the outermost end uncorks (flushes) every socket the batch corked.
    pub(crate) fn end_batch(&self, lp: &mut Loop) {
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
        inner
            .topics
            .entry(key)
            .or_default()
            .insert(c.id, ws.clone());
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
                inner.topics.remove(topic);
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
    /// encoded once and each socket gets a clone of the same buffer. Returns how many
    /// subscribers got it; the others were over their `max_backpressure` (see
    /// [`SendStatus::Dropped`]) or closing. Order per subscriber is preserved; the order
    /// across subscribers is unspecified.
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
