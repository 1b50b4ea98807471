//! WebSocket (RFC 6455), server side: the protocol codec (handshake, frames, UTF-8 validation,
//! message assembly: pure code, no I/O), the connection on the HTTP upgrade hook
//! ([`WebSocket`], [`Endpoint`]) and topics ([`Hub`], shared across processes through Redis
//! with [`Hub::with_redis`]). `App::ws` mounts an endpoint on a path.
//! See docs/ws.md.
//!
//! ```no_run
//! use oneloop::app::App;
//! use oneloop::ws::{SendStatus, WsOptions};
//! let mut app = App::new();
//! app.ws("/chat", WsOptions::default(), |_lp, ws| {
//!     ws.subscribe("room");
//!     ws.on_message(|lp, ws, msg| {
//!         ws.publish(lp, "room", msg.clone());
//!         if ws.send(lp, msg) == SendStatus::Dropped {
//!             ws.close(lp, 1008, "too slow");
//!         }
//!     });
//! });
//! app.listen(3000, || println!("ws://127.0.0.1:3000/chat"))?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod bridge;
pub mod deflate;
mod endpoint;
pub mod frame;
pub mod handshake;
pub mod message;
mod pubsub;
mod socket;
pub mod utf8;

pub use bridge::{HubRedisOptions, HubRedisStats, DEFAULT_MAX_BRIDGED_MESSAGE};
pub use deflate::CompressionMode;
pub use endpoint::{
    echo_handler, Endpoint, WsHandler, WsOptions, DEFAULT_COMPRESS_THRESHOLD, DEFAULT_MAX_PAYLOAD,
};
pub use pubsub::Hub;
pub use socket::{
    is_sendable_close_code, Message, SendStatus, WebSocket, CLOSE_ABNORMAL, CLOSE_NO_STATUS,
    CLOSE_TIMEOUT_MS, DEFAULT_MAX_BACKPRESSURE,
};
