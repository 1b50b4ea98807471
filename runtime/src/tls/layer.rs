//! The TLS state one socket carries: the rustls session and what waits around it.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::handle::TimerId;

/// Where the session stands.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Handshake in progress; `timer` is the handshake timeout, when one is armed.
    Handshaking { timer: Option<TimerId> },
    /// Application data flows.
    Established,
    /// A plain HTTP request arrived at the TLS port and was answered: input is discarded
    /// until the peer closes.
    Refused,
}

/// One socket's TLS session.
///
/// # Bounds
/// - `early`: plaintext written before the handshake completed; counted in the socket's
///   `queued`, so `tcp_write` reports backpressure on it like on any queued byte.
/// - `stash`: ciphertext read but not given to rustls because reading paused mid-chunk: at
///   most one read (the loop's 64 KiB read buffer); nothing more is read while paused.
/// - `corked`: plaintext held back by `tcp_cork`, encrypted at uncork or once it reaches the
///   cork write-through size (16 KiB); between corks its capacity is kept only up to 4 KiB.
/// - rustls' own buffers: received plaintext is capped by rustls (16 KiB by default) and
///   always drained (or left there while paused); its outgoing buffer is emptied into the
///   socket's queue after every call; its ciphertext receive buffer is sized to 4 KiB
///   before every read (up to one 16 KiB record while one is incomplete, 64 KiB for a
///   handshake message) and shrunk back to 4 KiB once empty.
///
/// So an idle established TLS socket holds the rustls session (keys, ~3-4 KiB), rustls' 4 KiB
/// receive buffer and at most 4 KiB of cork buffer: measured 7-9 KiB per idle connection in
/// all (docs/benchmarks.md, "TLS"), against ~1.4 KiB for a plaintext one.
pub(crate) struct TlsLayer {
    pub(crate) conn: rustls::Connection,
    pub(crate) phase: Phase,
    pub(crate) early: VecDeque<Bytes>,
    pub(crate) early_bytes: usize,
    pub(crate) stash: Vec<u8>,
    pub(crate) corked: Vec<u8>,
    /// Any ciphertext has arrived (the plain-HTTP check looks at the first byte only).
    pub(crate) any_input: bool,
    /// Reading paused with input left (in `stash` or in rustls): resume delivers it first.
    pub(crate) resume_pending: bool,
    pub(crate) handshake_timeout_ms: u64,
}

impl TlsLayer {
    pub(crate) fn new(conn: rustls::Connection, handshake_timeout_ms: u64) -> TlsLayer {
        TlsLayer {
            conn,
            phase: Phase::Handshaking { timer: None },
            early: VecDeque::new(),
            early_bytes: 0,
            stash: Vec::new(),
            corked: Vec::new(),
            any_input: false,
            resume_pending: false,
            handshake_timeout_ms,
        }
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshaking { .. })
    }

    pub(crate) fn handshake_timer(&self) -> Option<TimerId> {
        match self.phase {
            Phase::Handshaking { timer } => timer,
            _ => None,
        }
    }

    pub(crate) fn is_server(&self) -> bool {
        matches!(self.conn, rustls::Connection::Server(_))
    }
}
