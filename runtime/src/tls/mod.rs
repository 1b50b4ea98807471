//! TLS on the loop: a socket that speaks rustls, with the same `net` semantics as a plain one.
//!
//! Node's `tls.TLSSocket` *is* a `net.Socket`; here a TLS socket is a [`TcpId`] like any other,
//! whose socket carries a rustls session (a `TlsLayer`). Everything above the runtime (the HTTP
//! server and client, WebSocket, the app layer) reads and writes a TLS socket through the
//! same `tcp_*` calls, and the upgrade hook hands over a TLS socket as it is: `wss://` costs
//! nothing extra. That is why this lives in the runtime and not in the `oneloop` crate: the
//! encryption sits between the socket's syscalls and its callbacks, where only the runtime
//! reaches, and a plaintext socket pays one `Option` test per read and per write for it.
//!
//! # How bytes travel
//! - **Reading**: the socket reads ciphertext into the loop's shared read buffer (drained to
//!   `WouldBlock`, as for any socket), hands it to rustls (`read_tls`, `process_new_packets`),
//!   sends what rustls wants to send (handshake messages, alerts, key updates), then copies the
//!   decrypted bytes into a second shared buffer and emits `on_data` with them. When the user
//!   pauses mid-chunk, the ciphertext not yet given to rustls waits in the session (at most one
//!   read, 64 KiB) and the plaintext rustls holds (at most its 16 KiB receive limit) waits
//!   there, both delivered on resume before anything new is read.
//! - **Writing**: `tcp_write` encrypts at once (in 64 KiB pieces) and queues the ciphertext in
//!   the socket's ordinary write queue; rustls' own output buffer is therefore empty after
//!   every call, so `wants_write` never needs a writable interest of its own, and the one
//!   edge-triggered registration for both directions (see `tcp/socket.rs`) covers TLS too.
//!   Before the handshake completes, writes are kept as plaintext and sent once it does.
//!   `tcp_queued` and the high-water mark count both: plaintext waiting for the handshake and
//!   ciphertext waiting for the kernel, so `write` returns `false` honestly.
//! - **Cork**: a corked TLS socket holds back *plaintext* and encrypts it at uncork into as
//!   few records as possible (16 KiB write-through, as for a plain socket).
//! - **End**: `tcp_end` encrypts what is held back, sends `close_notify`, then the FIN. A
//!   peer's `close_notify` is the end of its stream (`on_end`); a FIN without it also ends the
//!   stream (as Node, which leaves truncation detection to the protocol above: HTTP framing).
//!
//! # Handshake
//! A server socket is announced to the server's connection callback once its handshake has
//! completed (Node's `'secureConnection'`); a client's `on_connect` runs then too (Node's
//! `'secureConnect'`). A handshake that does not complete within the timeout (Node's
//! `handshakeTimeout`, 120 s) fails with [`TlsError::HandshakeTimeout`].
//!
//! # Errors
//! Every failure is an `io::Error` whose inner error is a [`TlsError`] ([`tls_error`] finds
//! it), reported to the socket's `on_error` (an established socket, a client) or, for a
//! server's socket still in its handshake, to [`Loop::tcp_server_on_tls_error`] (Node's
//! `'tlsClientError'`). rustls' alert, if any, is sent before the socket closes. Nothing a
//! peer sends can panic.
//!
//! # Plain HTTP on the TLS port
//! A server socket whose first byte is an ASCII capital letter (an HTTP method: no TLS record
//! starts with one) is answered `400 Bad Request` in plain text saying the port speaks
//! HTTPS, then closed, as nginx does. Node closes such a connection without a word (its
//! `tlsClientError` is `ERR_SSL_HTTP_REQUEST`); a readable answer tells the user what to fix.

mod drive;
mod layer;

use std::fmt;
use std::io;
use std::sync::Arc;

pub use rustls;
pub use rustls::pki_types::ServerName;

pub(crate) use layer::TlsLayer;

use crate::tcp::StreamAddr;

/// Node's default `handshakeTimeout`: 120 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 120_000;

/// TLS settings of a listening server ([`crate::ListenOptions::tls`]).
#[derive(Clone, Debug)]
pub struct TlsServerOptions {
    /// The rustls configuration: certificates (and SNI), versions, ALPN, session tickets.
    pub config: Arc<rustls::ServerConfig>,
    /// A connection whose handshake has not completed this long after accept is closed with
    /// [`TlsError::HandshakeTimeout`] (Node's `handshakeTimeout`, default 120 s). 0 disables.
    pub handshake_timeout_ms: u64,
}

impl TlsServerOptions {
    /// `config` with Node's handshake timeout.
    pub fn new(config: Arc<rustls::ServerConfig>) -> TlsServerOptions {
        TlsServerOptions {
            config,
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
        }
    }
}

/// TLS settings of one outgoing connection ([`crate::Loop::tls_connect`]).
#[derive(Clone, Debug)]
pub struct TlsConnectOptions {
    /// The rustls configuration: trusted roots, versions, ALPN.
    pub config: Arc<rustls::ClientConfig>,
    /// The name the certificate must be valid for, also sent as SNI (a DNS name; an IP
    /// address is checked against the certificate's IP SANs and not sent).
    pub server_name: ServerName<'static>,
    /// As [`TlsServerOptions::handshake_timeout_ms`] (from the TCP connect's start).
    pub handshake_timeout_ms: u64,
}

/// Why a TLS connection failed: the inner error of the `io::Error` a TLS socket reports.
#[derive(Debug)]
pub enum TlsError {
    /// rustls refused what the peer sent or failed to verify it: a malformed record, a fatal
    /// alert received (`AlertReceived`), no common version or cipher suite, an invalid
    /// certificate (expired, unknown issuer, wrong name), a renegotiation attempt...
    Protocol(rustls::Error),
    /// The handshake did not complete in time (Node's `handshakeTimeout`).
    HandshakeTimeout {
        /// The timeout that ran out.
        ms: u64,
    },
    /// The peer closed the connection before the handshake completed.
    ClosedDuringHandshake,
    /// A plain HTTP request arrived at a TLS server (it was answered 400).
    PlainHttp,
}

/// A server certificate that is signed by its own key and is not among the trusted roots
/// (Node's `DEPTH_ZERO_SELF_SIGNED_CERT`). A verifier reports it inside
/// `rustls::CertificateError::Other`, where rustls alone would say `UnknownIssuer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfSignedCertificate;

impl fmt::Display for SelfSignedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("self-signed certificate (not issued by a trusted CA)")
    }
}

impl std::error::Error for SelfSignedCertificate {}

impl TlsError {
    /// The `err.code` Node's `tls`/`https` client gives the same certificate failure:
    /// `CERT_HAS_EXPIRED`, `CERT_NOT_YET_VALID`, `DEPTH_ZERO_SELF_SIGNED_CERT`,
    /// `ERR_TLS_CERT_ALTNAME_INVALID`, `CERT_REVOKED`. `None` for anything else (an unknown
    /// issuer has several OpenSSL codes depending on the chain sent, so none is guessed).
    pub fn node_code(&self) -> Option<&'static str> {
        use rustls::CertificateError as C;
        let TlsError::Protocol(rustls::Error::InvalidCertificate(c)) = self else {
            return None;
        };
        Some(match c {
            C::Expired | C::ExpiredContext { .. } => "CERT_HAS_EXPIRED",
            C::NotValidYet | C::NotValidYetContext { .. } => "CERT_NOT_YET_VALID",
            C::NotValidForName | C::NotValidForNameContext { .. } => "ERR_TLS_CERT_ALTNAME_INVALID",
            C::Revoked => "CERT_REVOKED",
            C::Other(o) if o.0.is::<SelfSignedCertificate>() => "DEPTH_ZERO_SELF_SIGNED_CERT",
            _ => return None,
        })
    }

    /// The alert received from the peer, if that is what ended the connection.
    pub fn alert_received(&self) -> Option<rustls::AlertDescription> {
        match self {
            TlsError::Protocol(rustls::Error::AlertReceived(a)) => Some(*a),
            _ => None,
        }
    }

    pub(crate) fn into_io(self) -> io::Error {
        let kind = match self {
            TlsError::HandshakeTimeout { .. } => io::ErrorKind::TimedOut,
            TlsError::ClosedDuringHandshake => io::ErrorKind::UnexpectedEof,
            TlsError::Protocol(_) | TlsError::PlainHttp => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Protocol(e) => {
                match e {
                    // rustls prints `Other(OtherError(..))`: say what the error says.
                    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o)) => {
                        write!(f, "tls: invalid peer certificate: {o}")?
                    }
                    _ => write!(f, "tls: {e}")?,
                }
                match self.node_code() {
                    Some(code) => write!(f, " ({code})"),
                    None => Ok(()),
                }
            }
            TlsError::HandshakeTimeout { ms } => {
                write!(f, "tls: handshake not completed within {ms} ms")
            }
            TlsError::ClosedDuringHandshake => {
                f.write_str("tls: connection closed by the peer during the handshake")
            }
            TlsError::PlainHttp => {
                f.write_str("tls: plain HTTP request sent to a TLS port (answered 400)")
            }
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

/// The [`TlsError`] inside an `io::Error` a TLS socket reported, if it is one.
pub fn tls_error(e: &io::Error) -> Option<&TlsError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<TlsError>())
}

/// A connection to a TLS server that failed before its handshake completed (Node's
/// `'tlsClientError'`), given to [`crate::Loop::tcp_server_on_tls_error`].
#[derive(Debug)]
pub struct TlsClientError {
    /// The peer's address, when the socket still knew it.
    pub remote: Option<StreamAddr>,
    /// The error (its inner error is a [`TlsError`] for anything TLS; an `io::Error` from
    /// the socket otherwise, e.g. a reset).
    pub error: io::Error,
}

impl TlsClientError {
    pub(crate) fn new(remote: Option<StreamAddr>, e: &io::Error) -> TlsClientError {
        // io::Error is not Clone: keep the kind and the message (the inner TlsError is
        // rebuilt as text).
        let error = match tls_error(e) {
            Some(TlsError::HandshakeTimeout { ms }) => {
                TlsError::HandshakeTimeout { ms: *ms }.into_io()
            }
            Some(TlsError::ClosedDuringHandshake) => TlsError::ClosedDuringHandshake.into_io(),
            Some(TlsError::PlainHttp) => TlsError::PlainHttp.into_io(),
            Some(TlsError::Protocol(p)) => TlsError::Protocol(p.clone()).into_io(),
            None => io::Error::new(e.kind(), e.to_string()),
        };
        TlsClientError { remote, error }
    }

    /// The [`TlsError`], when the failure was a TLS one.
    pub fn tls(&self) -> Option<&TlsError> {
        tls_error(&self.error)
    }
}

impl fmt::Display for TlsClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.remote {
            Some(r) => write!(f, "{} (from {r})", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

/// What a TLS socket negotiated ([`crate::Loop::tls_info`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// `"TLSv1.2"` or `"TLSv1.3"` (Node's `getProtocol()`), once negotiated.
    pub protocol: Option<&'static str>,
    /// The cipher suite, as rustls names it (e.g. `TLS13_AES_128_GCM_SHA256`).
    pub cipher: Option<String>,
    /// The ALPN protocol agreed on (Node's `alpnProtocol`), e.g. `http/1.1`.
    pub alpn: Option<Vec<u8>>,
    /// The SNI name the client asked for (server side; Node's `servername`).
    pub server_name: Option<String>,
    /// The session was resumed (a ticket or session id) rather than fully negotiated (Node's
    /// `isSessionReused()`).
    pub resumed: bool,
    /// The handshake has completed.
    pub established: bool,
}
