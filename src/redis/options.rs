//! [`RedisOptions`]: the client's settings, fixed at connect, with ioredis' defaults where
//! they make sense and bounds where ioredis has none.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

use super::resp::ReplyLimits;

/// Default [`RedisOptions::connect_timeout_ms`]: 10 s (ioredis' `connectTimeout`).
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Default [`RedisOptions::max_queued_commands`].
pub const DEFAULT_MAX_QUEUED_COMMANDS: usize = 16_384;
/// Default [`RedisOptions::max_queued_bytes`]: 16 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 16 << 20;
/// Default [`RedisOptions::max_retries_per_request`]: 20 (ioredis' `maxRetriesPerRequest`).
pub const DEFAULT_MAX_RETRIES_PER_REQUEST: u32 = 20;

/// How long to wait before reconnect attempt `n` (1 for the first), or `None` to stop
/// reconnecting.
#[derive(Clone)]
pub enum Reconnect {
    /// Capped exponential backoff with jitter: attempt `n` waits a random delay between
    /// `d/2` and `d`, where `d = min(base_ms * 2^(n-1), max_ms)` ("equal jitter"), so clients
    /// that lost the same server do not come back in lockstep. The default is
    /// `base_ms: 50, max_ms: 2000` (ioredis' cap; ioredis grows linearly, `min(n * 50, 2000)`,
    /// without jitter).
    Backoff {
        /// The first delay (before jitter).
        base_ms: u64,
        /// The largest delay (before jitter).
        max_ms: u64,
    },
    /// Never reconnect: the first lost connection ends the client.
    Never,
    /// Your own strategy (ioredis' `retryStrategy`): the delay in ms for attempt `n`, or
    /// `None` to stop.
    Custom(Rc<dyn Fn(u32) -> Option<u64>>),
}

impl Default for Reconnect {
    fn default() -> Reconnect {
        Reconnect::Backoff {
            base_ms: 50,
            max_ms: 2_000,
        }
    }
}

impl fmt::Debug for Reconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reconnect::Backoff { base_ms, max_ms } => f
                .debug_struct("Backoff")
                .field("base_ms", base_ms)
                .field("max_ms", max_ms)
                .finish(),
            Reconnect::Never => f.write_str("Never"),
            Reconnect::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl Reconnect {
    /// The delay before attempt `attempt` (1-based), or `None` to give up.
    pub fn delay_ms(&self, attempt: u32) -> Option<u64> {
        match self {
            Reconnect::Never => None,
            Reconnect::Custom(f) => f(attempt),
            Reconnect::Backoff { base_ms, max_ms } => {
                let shift = attempt.saturating_sub(1).min(32);
                let d = base_ms.saturating_mul(1u64 << shift).min(*max_ms);
                Some(d / 2 + random_below(d / 2 + 1))
            }
        }
    }
}

/// A random number below `n` (n > 0) from the standard library's per-process random hash
/// keys: jitter needs no cryptographic quality and no extra crate.
fn random_below(n: u64) -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish() % n.max(1)
}

/// Settings of a client, fixed when it connects. `RedisOptions::default()` gives the values
/// documented on each field.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Time from starting a connection attempt (DNS, TCP connect, handshake) to ready; past
    /// it the attempt is abandoned and counts as a failed one. Default 10,000 ms; 0 disables.
    pub connect_timeout_ms: u64,
    /// Per-command timeout: a command without a reply after this long fails with
    /// [`RedisError::Timeout`](super::RedisError::Timeout); the connection stays up and the
    /// late reply is dropped. Default 0 (none), as ioredis' `commandTimeout`.
    pub command_timeout_ms: u64,
    /// Send `HELLO 3` on connect (RESP3), falling back to RESP2 if the server refuses.
    /// Default true.
    pub resp3: bool,
    /// `CLIENT SETNAME` on every connection (ioredis' `connectionName`). Default none.
    pub client_name: Option<String>,
    /// Queue commands while not connected (ioredis' `enableOfflineQueue`, default true);
    /// false fails them at once with [`RedisError::NotConnected`](super::RedisError::NotConnected).
    pub enable_offline_queue: bool,
    /// Most commands waiting to be written: in the offline queue, or held back while the
    /// socket is above its high-water mark. One more fails at once with
    /// [`RedisError::QueueFull`](super::RedisError::QueueFull). Default 16,384 (ioredis: no bound).
    pub max_queued_commands: usize,
    /// Most bytes of encoded commands waiting as above. Default 16 MiB.
    pub max_queued_bytes: usize,
    /// A queued command fails with
    /// [`RedisError::MaxRetries`](super::RedisError::MaxRetries) after this many failed
    /// reconnect attempts since it was queued. Default 20 (ioredis'); `None`: wait forever.
    pub max_retries_per_request: Option<u32>,
    /// When and whether to reconnect. Default [`Reconnect::Backoff`] 50 ms .. 2 s.
    pub reconnect: Reconnect,
    /// Bounds on each reply (and so on the read buffer); see [`ReplyLimits`].
    pub reply_limits: ReplyLimits,
}

impl Default for RedisOptions {
    fn default() -> RedisOptions {
        RedisOptions {
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            command_timeout_ms: 0,
            resp3: true,
            client_name: None,
            enable_offline_queue: true,
            max_queued_commands: DEFAULT_MAX_QUEUED_COMMANDS,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_retries_per_request: Some(DEFAULT_MAX_RETRIES_PER_REQUEST),
            reconnect: Reconnect::default(),
            reply_limits: ReplyLimits::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_to_its_cap_with_jitter() {
        let r = Reconnect::default();
        for (attempt, full) in [
            (1, 50),
            (2, 100),
            (3, 200),
            (6, 1600),
            (7, 2000),
            (40, 2000),
        ] {
            for _ in 0..50 {
                let d = r.delay_ms(attempt).expect("backoff never gives up");
                assert!((full / 2..=full).contains(&d), "attempt {attempt}: {d}");
            }
        }
        let spread: std::collections::HashSet<u64> =
            (0..50).map(|_| r.delay_ms(7).expect("a delay")).collect();
        assert!(spread.len() > 5, "jitter spreads delays: {spread:?}");
        assert_eq!(Reconnect::Never.delay_ms(1), None);
    }
}
