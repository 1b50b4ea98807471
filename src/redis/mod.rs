//! A Redis client on the loop (ioredis' model in the loop's callback style): RESP2/RESP3,
//! auto-pipelining, reconnect with a bounded offline queue, pub/sub.
//!
//! ```text
//! resp.rs      Reply, the incremental Parser (bounded), encode_command
//! url.rs       redis://[[user]:password@]host[:port][/db], unix:///path[?db=N]
//! options.rs   RedisOptions, Reconnect (backoff with jitter)
//! client.rs    Redis: the connection state machine, auto-pipelining, queues, events
//! commands.rs  typed helpers: get/set/del/incr/pexpire/pttl/mget/hget/hset/scan/publish/evalsha
//! pubsub.rs    Subscriber: SUBSCRIBE/PSUBSCRIBE, callbacks, resubscribe after reconnect
//! stores/      the app layer's session, rate-limit and cache stores on Redis
//! ```
//!
//! See docs/redis.md for the lifecycle, the bounds and the failure behaviour.

mod client;
mod commands;
mod options;
mod pubsub;
pub mod resp;
pub mod stores;
mod url;

use std::fmt;
use std::io;

pub use client::{CmdOptions, Redis, RedisStats};
pub use commands::{Condition, Expiry, Script, SetOptions, Ttl};
pub use options::{
    Reconnect, RedisOptions, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MAX_QUEUED_BYTES,
    DEFAULT_MAX_QUEUED_COMMANDS, DEFAULT_MAX_RETRIES_PER_REQUEST,
};
pub use pubsub::{Message, Subscriber};
pub use resp::{ProtocolError, Reply, ReplyLimits};
pub use url::{parse_url, RedisUrl};

/// Why a command (or the connection) failed. Every command's callback runs exactly once, with
/// its reply or one of these.
#[derive(Clone, Debug, PartialEq)]
pub enum RedisError {
    /// The server answered with an error reply (`WRONGTYPE Operation against a key ...`):
    /// the whole line, code first. The connection is fine.
    Server(String),
    /// The server sent bytes that are not RESP, or a reply over a [`ReplyLimits`] bound; the
    /// connection was closed (and is reconnected).
    Protocol(ProtocolError),
    /// The connection dropped after the command was written, before its reply: it may or may
    /// not have run. (Commands marked [`CmdOptions::retryable`] are resent instead.)
    ConnectionLost(String),
    /// The host name did not resolve.
    Dns(String),
    /// The TCP connection could not be made.
    Connect {
        /// The OS error's kind, e.g. `ConnectionRefused`.
        kind: io::ErrorKind,
        /// The OS error's message.
        message: String,
    },
    /// No connection became ready within `connect_timeout_ms`.
    ConnectTimeout,
    /// No reply within the command's timeout; the reply, if it comes, is dropped.
    Timeout,
    /// The queue of commands waiting to be written is full (`max_queued_commands` or
    /// `max_queued_bytes`): the command was not queued.
    QueueFull {
        /// Commands waiting when this one was refused.
        queued_commands: usize,
        /// Bytes waiting when this one was refused.
        queued_bytes: usize,
    },
    /// Not connected and the offline queue is disabled.
    NotConnected,
    /// The command waited through `max_retries_per_request` failed reconnect attempts.
    MaxRetries(u32),
    /// The client was closed ([`Redis::quit`], [`Redis::disconnect`]) or gave up
    /// reconnecting.
    Closed,
    /// The URL cannot be used.
    InvalidUrl(&'static str),
    /// A typed helper got a reply of a kind the command does not return.
    UnexpectedReply(String),
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Server(msg) => write!(f, "server error: {msg}"),
            RedisError::Protocol(e) => write!(f, "protocol error: {e}; connection closed"),
            RedisError::ConnectionLost(why) => write!(
                f,
                "connection lost before the reply ({why}); the command may or may not have run"
            ),
            RedisError::Dns(msg) => f.write_str(msg),
            RedisError::Connect { message, .. } => write!(f, "connect failed: {message}"),
            RedisError::ConnectTimeout => f.write_str("connect timed out"),
            RedisError::Timeout => f.write_str("command timed out"),
            RedisError::QueueFull {
                queued_commands,
                queued_bytes,
            } => write!(
                f,
                "command queue full ({queued_commands} commands, {queued_bytes} bytes waiting \
                 to be written): command not sent"
            ),
            RedisError::NotConnected => {
                f.write_str("not connected and the offline queue is disabled")
            }
            RedisError::MaxRetries(n) => write!(
                f,
                "gave up after {n} failed reconnect attempts (max_retries_per_request)"
            ),
            RedisError::Closed => f.write_str("the client is closed"),
            RedisError::InvalidUrl(why) => write!(f, "invalid Redis URL: {why}"),
            RedisError::UnexpectedReply(what) => write!(f, "unexpected reply: {what}"),
        }
    }
}

impl std::error::Error for RedisError {}

/// docs/redis.md's code blocks, compiled as doctests so the page cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../docs/redis.md")]
pub struct RedisDocDoctests;
