//! WebSocket (RFC 6455): the protocol codec (handshake, frames, UTF-8 validation, message
//! assembly). Pure code with no I/O; the connection layer on the HTTP upgrade hook builds on it.

pub mod frame;
pub mod handshake;
pub mod message;
pub mod utf8;
