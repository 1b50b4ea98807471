//! [`Subscriber`]: a connection in subscribe mode. Messages go to the callback of their
//! channel (or pattern); the subscriptions are remembered and restored after every reconnect,
//! before anything queued is sent.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::Bytes;
use oneloop_runtime::Loop;

use super::client::{CmdOptions, Redis};
use super::options::RedisOptions;
use super::resp::Reply;
use super::RedisError;

pub(super) type MessageCallback = Rc<RefCell<dyn FnMut(&mut Loop, &Message)>>;

/// A published message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The channel it was published to.
    pub channel: Bytes,
    /// The pattern that matched, for `PSUBSCRIBE` subscriptions.
    pub pattern: Option<Bytes>,
    /// The message.
    pub payload: Bytes,
}

/// What a reply on a subscriber connection is.
pub(super) enum Incoming {
    /// A reply to a command (confirmations of (un)subscribe included): matched FIFO.
    Reply(Reply),
    /// A message for a live subscription.
    Message(MessageCallback, Message),
    /// A message for a channel no longer subscribed (it crossed the `UNSUBSCRIBE`).
    Ignored,
}

/// The subscriptions of a [`Subscriber`], by channel and by pattern.
#[derive(Default)]
pub(super) struct Subs {
    channels: BTreeMap<Bytes, MessageCallback>,
    patterns: BTreeMap<Bytes, MessageCallback>,
}

impl Subs {
    pub(super) fn channel_names(&self) -> Vec<Bytes> {
        self.channels.keys().cloned().collect()
    }

    pub(super) fn pattern_names(&self) -> Vec<Bytes> {
        self.patterns.keys().cloned().collect()
    }

    /// Sorts a reply into a message (RESP2 array or RESP3 push `message`/`pmessage`) or a
    /// reply to match against the command queue.
    pub(super) fn classify(&self, reply: Reply) -> Incoming {
        let items = match &reply {
            Reply::Push(v) | Reply::Array(v) => v,
            _ => return Incoming::Reply(reply),
        };
        let bulk = |i: usize| items.get(i).and_then(Reply::as_bytes).cloned();
        let kind = items.first().and_then(Reply::as_bytes);
        match (kind.map(|k| &k[..]), items.len()) {
            (Some(b"message" | b"smessage"), 3) => {
                let (Some(channel), Some(payload)) = (bulk(1), bulk(2)) else {
                    return Incoming::Reply(reply);
                };
                match self.channels.get(&channel) {
                    Some(cb) => Incoming::Message(
                        Rc::clone(cb),
                        Message {
                            channel,
                            pattern: None,
                            payload,
                        },
                    ),
                    None => Incoming::Ignored,
                }
            }
            (Some(b"pmessage"), 4) => {
                let (Some(pattern), Some(channel), Some(payload)) = (bulk(1), bulk(2), bulk(3))
                else {
                    return Incoming::Reply(reply);
                };
                match self.patterns.get(&pattern) {
                    Some(cb) => Incoming::Message(
                        Rc::clone(cb),
                        Message {
                            channel,
                            pattern: Some(pattern),
                            payload,
                        },
                    ),
                    None => Incoming::Ignored,
                }
            }
            (
                Some(
                    b"subscribe" | b"unsubscribe" | b"psubscribe" | b"punsubscribe" | b"ssubscribe"
                    | b"sunsubscribe",
                ),
                _,
            ) => Incoming::Reply(reply),
            // Any other RESP3 push (client-side caching invalidations, ...) is out of band:
            // never matched against a command.
            _ if matches!(reply, Reply::Push(_)) => Incoming::Ignored,
            _ => Incoming::Reply(reply),
        }
    }
}

/// A subscriber connection (ioredis' client after `subscribe`): SUBSCRIBE/PSUBSCRIBE with a
/// callback per channel or pattern. Uses its own connection; publish from a [`Redis`].
///
/// ```no_run
/// use oneloop::redis::{RedisOptions, Subscriber};
/// # let mut lp = oneloop::runtime::Loop::new()?;
/// let sub = Subscriber::connect(&mut lp, "redis://127.0.0.1:6379", RedisOptions::default())?;
/// sub.subscribe(&mut lp, "news", |_lp, msg| {
///     println!("{:?}: {:?}", msg.channel, msg.payload);
/// }, |_lp, done| done.expect("subscribed"));
/// lp.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Guarantees
/// - After a reconnect, every current subscription is restored (`SUBSCRIBE`, `PSUBSCRIBE`)
///   before queued commands are sent and before `on_ready` runs; messages published while
///   the connection was down are lost (Redis pub/sub is fire-and-forget).
/// - The `done` callback of a (un)subscribe runs once Redis confirmed every name.
#[derive(Clone)]
pub struct Subscriber {
    redis: Redis,
}

impl Subscriber {
    /// Opens a subscriber connection (same URL and options as [`Redis::connect`]).
    ///
    /// # Errors
    /// [`RedisError::InvalidUrl`].
    pub fn connect(lp: &mut Loop, url: &str, opts: RedisOptions) -> Result<Subscriber, RedisError> {
        let redis = Redis::open(lp, url, opts, Some(Subs::default()))?;
        Ok(Subscriber { redis })
    }

    /// The connection, for its events ([`Redis::on_ready`], ...), [`Redis::quit`],
    /// [`Redis::unref`] and [`Redis::stats`]. Commands other than pub/sub ones fail on a
    /// RESP2 subscriber connection.
    pub fn client(&self) -> &Redis {
        &self.redis
    }

    /// Subscribes to `channel`; `on_message` runs for each message (replacing an earlier
    /// callback for the same channel). `done` runs once Redis confirmed.
    pub fn subscribe(
        &self,
        lp: &mut Loop,
        channel: impl AsRef<[u8]>,
        on_message: impl FnMut(&mut Loop, &Message) + 'static,
        done: impl FnOnce(&mut Loop, Result<(), RedisError>) + 'static,
    ) {
        self.add(
            lp,
            false,
            channel.as_ref(),
            Rc::new(RefCell::new(on_message)),
            done,
        );
    }

    /// Subscribes to the glob `pattern` (`news.*`).
    pub fn psubscribe(
        &self,
        lp: &mut Loop,
        pattern: impl AsRef<[u8]>,
        on_message: impl FnMut(&mut Loop, &Message) + 'static,
        done: impl FnOnce(&mut Loop, Result<(), RedisError>) + 'static,
    ) {
        self.add(
            lp,
            true,
            pattern.as_ref(),
            Rc::new(RefCell::new(on_message)),
            done,
        );
    }

    /// Unsubscribes from `channel`; no message reaches its callback from now on.
    pub fn unsubscribe(
        &self,
        lp: &mut Loop,
        channel: impl AsRef<[u8]>,
        done: impl FnOnce(&mut Loop, Result<(), RedisError>) + 'static,
    ) {
        self.remove(lp, false, channel.as_ref(), done);
    }

    /// Unsubscribes from the pattern.
    pub fn punsubscribe(
        &self,
        lp: &mut Loop,
        pattern: impl AsRef<[u8]>,
        done: impl FnOnce(&mut Loop, Result<(), RedisError>) + 'static,
    ) {
        self.remove(lp, true, pattern.as_ref(), done);
    }

    /// Channels subscribed to (sorted).
    pub fn channels(&self) -> Vec<Bytes> {
        let c = self.redis.shared.borrow();
        c.subs.as_ref().map(Subs::channel_names).unwrap_or_default()
    }

    fn add(
        &self,
        lp: &mut Loop,
        pattern: bool,
        name: &[u8],
        cb: MessageCallback,
        done: impl FnOnce(&mut Loop, Result<(), RedisError>) + 'static,
    ) {
        {
            let mut c = self.redis.shared.borrow_mut();
            if let Some(subs) = c.subs.as_mut() {
                let map = match pattern {
                    true => &mut subs.patterns,
                    false => &mut subs.channels,
                };
                map.insert(Bytes::copy_from_slice(name), cb);
            }
        }
        let verb: &[u8] = if pattern { b"PSUBSCRIBE" } else { b"SUBSCRIBE" };
        // Retryable: a subscription is idempotent, and a reconnect restores it anyway.
        let options = CmdOptions {
            retryable: true,
            timeout_ms: None,
        };
        self.redis.send(
            lp,
            &[verb, name],
            options,
            1,
            Box::new(move |lp, r| done(lp, r.map(|_| ()))),
        );
    }

    fn remove(
        &self,
        lp: &mut Loop,
        pattern: bool,
        name: &[u8],
        done: impl FnOnce(&mut Loop, Result<(), RedisError>) + 'static,
    ) {
        {
            let mut c = self.redis.shared.borrow_mut();
            if let Some(subs) = c.subs.as_mut() {
                match pattern {
                    true => subs.patterns.remove(name),
                    false => subs.channels.remove(name),
                };
            }
        }
        let verb: &[u8] = if pattern {
            b"PUNSUBSCRIBE"
        } else {
            b"UNSUBSCRIBE"
        };
        let options = CmdOptions {
            retryable: true,
            timeout_ms: None,
        };
        self.redis.send(
            lp,
            &[verb, name],
            options,
            1,
            Box::new(move |lp, r| done(lp, r.map(|_| ()))),
        );
    }
}
