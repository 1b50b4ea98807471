//! oneloop: Node.js's execution model rebuilt in Rust.
//!
//! The loop lives in [`runtime`] (crate `oneloop-runtime`); this crate adds HTTP ([`http`]), the
//! app layer ([`app`]) and WebSocket ([`ws`]).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use oneloop_runtime as runtime;

pub mod app;
pub mod cluster;
pub mod health;
pub mod http;
pub mod https;
pub mod load;
pub mod logging;
pub mod redis;
pub mod shutdown;
pub mod threaded;
pub mod tls;
pub mod ws;

/// README.md's code blocks, compiled and run as doctests so the README cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
