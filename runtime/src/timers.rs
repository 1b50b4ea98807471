//! The timer heap: a binary min-heap keyed by `(due, seq)`.
//!
//! `seq` comes from a per-loop counter bumped every time a timer is (re)armed, so timers due at
//! the same millisecond fire in the order they were armed (libuv's `start_id`, Node's FIFO lists).
//! Clearing or re-arming a timer does not search the heap: the stale heap entry stays behind and
//! is skipped when it surfaces, because its `seq` no longer matches the timer's (lazy deletion).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use crate::handle::Key;
use crate::Loop;

/// Largest delay Node accepts (2^31 - 1 ms); anything larger becomes 1 ms, as in Node.
pub const TIMEOUT_MAX_MS: u64 = (1 << 31) - 1;

/// A timer delay, coerced the way Node coerces `setTimeout`'s second argument.
///
/// Integers and floats are milliseconds. Values below 1, above 2^31-1 or NaN become 1 ms;
/// fractions are truncated. A [`Duration`] is truncated to whole milliseconds, then coerced.
pub trait TimerDelay {
    /// The delay in whole milliseconds, already coerced into `1..=TIMEOUT_MAX_MS`.
    fn to_delay_ms(self) -> u64;
}

fn coerce_ms(ms: f64) -> u64 {
    if ms.is_nan() || ms < 1.0 || ms > TIMEOUT_MAX_MS as f64 {
        1
    } else {
        ms.trunc() as u64
    }
}

impl TimerDelay for Duration {
    fn to_delay_ms(self) -> u64 {
        let ms = self.as_millis();
        if ms == 0 || ms > TIMEOUT_MAX_MS as u128 {
            1
        } else {
            ms as u64
        }
    }
}

impl TimerDelay for f64 {
    fn to_delay_ms(self) -> u64 {
        coerce_ms(self)
    }
}

macro_rules! int_delay {
    ($($t:ty),*) => {$(
        impl TimerDelay for $t {
            fn to_delay_ms(self) -> u64 {
                coerce_ms(self as f64)
            }
        }
    )*};
}
int_delay!(i32, i64, u32, u64, usize);

pub(crate) type TimerCallback = Box<dyn FnMut(&mut Loop)>;

pub(crate) struct Timer {
    /// `None` only while the callback is running (it is taken out and put back).
    pub(crate) callback: Option<TimerCallback>,
    pub(crate) due: u64,
    pub(crate) seq: u64,
    pub(crate) delay: u64,
    pub(crate) repeat: bool,
    pub(crate) refed: bool,
    /// Where the timer was created, for "why is the loop alive" reports.
    pub(crate) created_at: &'static std::panic::Location<'static>,
}

#[derive(Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<(u64, u64, Key)>>,
    next_seq: u64,
}

impl TimerHeap {
    /// Arms `timer` (stored under `key`) to fire at `now + timer.delay`; returns nothing, but
    /// bumps the timer's `seq` so any older heap entry for it is now stale.
    pub(crate) fn arm(&mut self, key: Key, timer: &mut Timer, now: u64) {
        timer.due = now.saturating_add(timer.delay);
        timer.seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse((timer.due, timer.seq, key)));
    }

    /// The earliest entry `(due, seq, key)`, which may be stale.
    pub(crate) fn peek(&self) -> Option<(u64, u64, Key)> {
        self.heap.peek().map(|Reverse(e)| *e)
    }

    pub(crate) fn pop(&mut self) -> Option<(u64, u64, Key)> {
        self.heap.pop().map(|Reverse(e)| e)
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Drops stale entries when they outnumber live ones, so a timer refreshed in a tight loop
    /// cannot grow the heap without bound.
    pub(crate) fn compact(&mut self, is_live: impl Fn(u64, Key) -> bool) {
        self.heap
            .retain(|Reverse((_, seq, key))| is_live(*seq, *key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_coerced_like_node() {
        assert_eq!(0.to_delay_ms(), 1);
        assert_eq!((-5).to_delay_ms(), 1);
        assert_eq!(f64::NAN.to_delay_ms(), 1);
        assert_eq!(1.9f64.to_delay_ms(), 1);
        assert_eq!(2.5f64.to_delay_ms(), 2);
        assert_eq!((TIMEOUT_MAX_MS + 1).to_delay_ms(), 1);
        assert_eq!(TIMEOUT_MAX_MS.to_delay_ms(), TIMEOUT_MAX_MS);
        assert_eq!(Duration::from_micros(999).to_delay_ms(), 1);
        assert_eq!(Duration::from_millis(10).to_delay_ms(), 10);
        assert_eq!(Duration::from_secs(1 << 40).to_delay_ms(), 1);
    }
}
