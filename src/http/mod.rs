//! HTTP/1.1 on the loop, in Node's `http` shape.
//!
//! ```text
//! parse.rs    request head: httparse + every check httparse leaves to us (RFC 9112)
//! decode.rs   request body framing: Content-Length and chunked (strict)
//! encode.rs   response head and chunk writers
//! conn.rs     the connection state machine (keep-alive, pipelining, timeouts, upgrade)
//! server.rs   listen, connection registry, deadline sweep, graceful close
//! upgrade.rs  refusing a handed-over upgrade: one answer, then a bounded linger
//! request.rs  Request: head + body stream    response.rs  Response: status, headers, body
//! pool.rs     server-wide pools of empty buffers (field lists, header lists, output buffers)
//! budget.rs   the server-wide budget for buffered request body bytes
//! client/     the client: http::request / http::get (mod.rs), URLs (url.rs), strict
//!             response framing, the body collected (reader.rs), the keep-alive Agent (agent.rs)
//! ```
//! See docs/http.md for the state machine, the defaults and every limit with its status code.

mod budget;
pub mod client;
mod config;
mod conn;
pub mod date;
pub mod decode;
pub mod encode;
pub mod error;
pub mod parse;
mod pool;
mod request;
mod response;
mod server;
pub mod status;
mod upgrade;

pub use client::{
    get, request, request_async, Agent, AgentOptions, ClientError, ClientRequest, ClientResponse,
    NoAgent, RequestHandle, DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_HEAD_SIZE,
};
pub use config::{ServerConfig, DEFAULT_MAX_BUFFERED_BODY_BYTES};
pub use error::ParseError;
pub use parse::{Method, Version};
pub use request::{BodyError, Request};
pub use response::{HeaderError, HeaderValue, IntoHeaderValue, Response};
pub use server::{create_server, create_server_with, Handler, Server, UpgradeHandler};
pub use upgrade::{refuse_upgrade, REFUSAL_LINGER_MS};

/// The guide (docs/http.md); its code blocks compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/http.md")]
pub struct HttpGuide;
