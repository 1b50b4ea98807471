//! Readiness: whether this process wants traffic, for `/readyz` (see [`crate::app::health`]).
//!
//! `Starting` until the program says it serves ([`Readiness::set_ready`], usually from the
//! listen callback), `Ready` while serving, `Draining` from the first shutdown signal on
//! ([`crate::shutdown`] sets it). Shared by every worker of a cluster: it is an atomic, read
//! without a lock.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The readiness states, in the only order they move through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyState {
    /// Not serving yet: `/readyz` answers 503.
    Starting,
    /// Serving: `/readyz` answers 200.
    Ready,
    /// A shutdown signal arrived: `/readyz` answers 503 so load balancers stop sending, while
    /// requests still in flight (and, during the unready delay, new ones) are served.
    Draining,
}

impl ReadyState {
    /// `starting`, `ready` or `draining`.
    pub fn name(self) -> &'static str {
        match self {
            ReadyState::Starting => "starting",
            ReadyState::Ready => "ready",
            ReadyState::Draining => "draining",
        }
    }
}

/// A shared, cloneable readiness flag (`Send + Sync`).
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicU8>);

impl Readiness {
    /// A flag in `Starting`.
    pub fn new() -> Readiness {
        Readiness::default()
    }

    /// The current state.
    pub fn state(&self) -> ReadyState {
        match self.0.load(Ordering::Acquire) {
            0 => ReadyState::Starting,
            1 => ReadyState::Ready,
            _ => ReadyState::Draining,
        }
    }

    /// `Starting` -> `Ready` (no effect once draining: a late listen callback cannot undo a
    /// shutdown).
    pub fn set_ready(&self) {
        let _ = self
            .0
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Any state -> `Draining` (final).
    pub fn set_draining(&self) {
        self.0.store(2, Ordering::Release);
    }
}
