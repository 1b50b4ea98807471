//! The server-wide budget for request body bytes held in memory.
//!
//! Each request's body is bounded by the limit given to [`Request::collect`](super::Request::collect)
//! (and by `ServerConfig::max_body_size`), but many bodies at once are bounded only here:
//! `collect` takes every byte it buffers from the server's budget before it keeps it, and gives
//! the bytes back when its callback gets the body, or when the exchange is dropped (the
//! connection closed, the request timed out). A request that does not fit is refused with
//! [`BodyError::Overloaded`](super::BodyError::Overloaded) (503) instead of growing the process.

use std::cell::Cell;
use std::rc::Rc;

/// Bytes in use against a fixed limit. One per server, shared by its connections.
#[derive(Debug)]
pub(crate) struct BodyBudget {
    limit: u64,
    used: Cell<u64>,
}

impl BodyBudget {
    /// A budget of `limit` bytes (`None`: unlimited).
    pub(crate) fn new(limit: Option<u64>) -> BodyBudget {
        BodyBudget {
            limit: limit.unwrap_or(u64::MAX),
            used: Cell::new(0),
        }
    }

    /// Bytes that can still be taken.
    pub(crate) fn available(&self) -> u64 {
        self.limit.saturating_sub(self.used.get())
    }

    /// Bytes taken and not yet given back, all requests together.
    pub(crate) fn used(&self) -> u64 {
        self.used.get()
    }
}

/// The bytes one request took from a [`BodyBudget`]; they go back when it is dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Rc<BodyBudget>,
    bytes: u64,
}

impl Reservation {
    /// An empty reservation on `budget`.
    pub(crate) fn new(budget: Rc<BodyBudget>) -> Reservation {
        Reservation { budget, bytes: 0 }
    }

    /// Takes `n` more bytes, or nothing and `false` when they do not fit.
    pub(crate) fn grow(&mut self, n: u64) -> bool {
        if n > self.budget.available() {
            return false;
        }
        self.budget.used.set(self.budget.used.get() + n);
        self.bytes += n;
        true
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let used = self.budget.used.get();
        self.budget.used.set(used.saturating_sub(self.bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_takes_what_fits_and_gives_it_back_when_dropped() {
        let budget = Rc::new(BodyBudget::new(Some(10)));
        let mut a = Reservation::new(Rc::clone(&budget));
        assert!(a.grow(6));
        let mut b = Reservation::new(Rc::clone(&budget));
        assert!(!b.grow(5), "only 4 left");
        assert!(b.grow(4));
        assert_eq!((budget.used(), budget.available()), (10, 0));
        drop(a);
        assert_eq!(budget.available(), 6);
        drop(b);
        assert_eq!(budget.used(), 0);
        let unlimited = Rc::new(BodyBudget::new(None));
        assert!(Reservation::new(unlimited).grow(u64::MAX));
    }
}
