//! TLS settings for HTTPS and WSS: certificates from PEM, SNI, ALPN, trusted roots.
//!
//! The encryption itself lives in the runtime (`oneloop_runtime::tls`): a TLS socket is an
//! ordinary [`TcpId`](crate::runtime::TcpId) whose bytes rustls encrypts between the socket's
//! syscalls and its callbacks, so the HTTP server, the client, WebSocket and the app layer
//! need no TLS code of their own. This module builds the rustls configurations they take:
//!
//! - [`ServerTls`]: a certificate and key from PEM (checked to match at start), more
//!   certificates chosen by SNI, ALPN `http/1.1`, TLS 1.2 and 1.3 (Node's defaults), session
//!   tickets and a session cache for resumption, and the handshake timeout (Node's 120 s).
//! - [`ClientTls`]: the roots a client trusts (Mozilla's list, as Node's bundled store; or
//!   your CA), ALPN, and the explicit opt-out of verification.
//!
//! The crypto provider is aws-lc-rs, rustls' default: faster than ring on the handshake and
//! the bulk ciphers, and it builds with a C compiler alone (no CMake, no Go) on x86_64 and
//! aarch64 Linux. See docs/tls.md.

mod client;
mod pem;
mod server;

pub use client::ClientTls;
pub use oneloop_runtime::tls::{
    rustls, tls_error, SelfSignedCertificate, ServerName, TlsClientError, TlsConnectOptions,
    TlsError, TlsInfo, TlsServerOptions, DEFAULT_HANDSHAKE_TIMEOUT_MS,
};
pub use pem::TlsConfigError;
pub use server::ServerTls;

use std::sync::Arc;

/// The crypto provider every configuration here uses (aws-lc-rs).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The guide (docs/tls.md); its code blocks compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/tls.md")]
pub struct TlsGuide;
