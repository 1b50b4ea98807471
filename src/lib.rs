//! oneloop: Node.js's execution model rebuilt in Rust.
//!
//! The loop lives in [`runtime`] (crate `oneloop-runtime`); this crate adds HTTP and the app layer.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use oneloop_runtime as runtime;
