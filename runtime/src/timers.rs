//! The timer queue: per-delay FIFO lists (Node's `TimersList`) under a min-heap of their heads,
//! keyed by `(due, seq)`.
//!
//! `seq` comes from a per-loop counter bumped every time a timer is (re)armed, so timers due at
//! the same millisecond fire in the order they were armed (libuv's `start_id`, Node's FIFO lists).
//! Clearing or re-arming a timer does not search the heap: the stale heap entry stays behind and
//! is skipped when it surfaces, because its `seq` no longer matches the timer's (lazy deletion).

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, HashMap, VecDeque};
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

/// A timer's callback. A one-shot timer keeps its `FnOnce` as is: wrapping it in an
/// `Option` to fit an `FnMut` box would give a non-capturing closure a size, and so an
/// allocation on every `set_timeout`.
pub(crate) enum TimerCallback {
    /// `set_timeout`.
    Once(Box<dyn FnOnce(&mut Loop)>),
    /// `set_interval`.
    Repeat(Box<dyn FnMut(&mut Loop)>),
}

pub(crate) struct Timer {
    /// `None` only while the callback is running (it is taken out and put back).
    pub(crate) callback: Option<TimerCallback>,
    pub(crate) due: u64,
    pub(crate) seq: u64,
    /// Milliseconds, already coerced into `1..=TIMEOUT_MAX_MS` (so it fits 31 bits). A `u32`
    /// keeps `Timer` at 56 bytes with `created_at`, so a slab slot stays one 64-byte line.
    pub(crate) delay: u32,
    pub(crate) repeat: bool,
    pub(crate) refed: bool,
    /// Where the timer was created, for "why is the loop alive" reports.
    pub(crate) created_at: &'static std::panic::Location<'static>,
}

impl Timer {
    /// Coerced delays fit a `u32`; anything larger is clamped (it cannot happen).
    pub(crate) fn delay_from(ms: u64) -> u32 {
        u32::try_from(ms.min(TIMEOUT_MAX_MS)).unwrap_or(u32::MAX)
    }
}

/// One FIFO list per distinct delay, as Node's `TimersList`: timers armed with the same delay
/// are armed in nondecreasing `due` order, so each list is (almost) sorted by construction and
/// only its head needs a place in the heap.
struct TimerList {
    delay: u64,
    entries: VecDeque<(u64, u64, Key)>,
}

/// The timer queue: per-delay FIFO lists plus a min-heap of their heads keyed by `(due, seq)`.
///
/// Arming is an append to its list (plus a heap push when the list was empty) and firing is a
/// pop from a heap with one entry per *distinct delay*, not per timer: with thousands of timers
/// sharing a few delays (the common server case: one idle timeout per connection), both are
/// O(1) in practice, where a heap of every timer costs O(log n) per fire.
///
/// An interval re-armed after its callback can land behind a timer its callback armed with the
/// same delay; that timer then runs first even though the interval's deadline is a hair earlier,
/// which is Node's order too (its lists are insertion-ordered).
#[derive(Default)]
pub(crate) struct TimerHeap {
    heads: BinaryHeap<Reverse<(u64, u64, usize)>>,
    lists: Vec<TimerList>,
    /// Indices of `lists` that are empty and may be reused.
    free: Vec<usize>,
    /// Delay -> index of its list, for lists that are not empty.
    by_delay: HashMap<u64, usize>,
    /// The list the last `arm` used (a cache in front of `by_delay`).
    last: Option<usize>,
    len: usize,
    next_seq: u64,
}

impl TimerHeap {
    /// Arms `timer` (stored under `key`) to fire at `now + timer.delay`; bumps the timer's `seq`,
    /// so any older entry for it is now stale.
    pub(crate) fn arm(&mut self, key: Key, timer: &mut Timer, now: u64) {
        timer.due = now.saturating_add(u64::from(timer.delay));
        timer.seq = self.next_seq;
        self.next_seq += 1;
        let entry = (timer.due, timer.seq, key);
        let index = self.list_for(u64::from(timer.delay));
        let list = &mut self.lists[index];
        if list.entries.is_empty() {
            self.heads.push(Reverse((entry.0, entry.1, index)));
        }
        list.entries.push_back(entry);
        self.len += 1;
    }

    fn list_for(&mut self, delay: u64) -> usize {
        if let Some(i) = self.last {
            if self.lists[i].delay == delay && !self.lists[i].entries.is_empty() {
                return i;
            }
        }
        let i = match self.by_delay.get(&delay) {
            Some(&i) => i,
            None => {
                let i = match self.free.pop() {
                    Some(i) => {
                        self.lists[i].delay = delay;
                        i
                    }
                    None => {
                        self.lists.push(TimerList {
                            delay,
                            entries: VecDeque::new(),
                        });
                        self.lists.len() - 1
                    }
                };
                self.by_delay.insert(delay, i);
                i
            }
        };
        self.last = Some(i);
        i
    }

    /// The earliest entry `(due, seq, key)`, which may be stale.
    pub(crate) fn peek(&self) -> Option<(u64, u64, Key)> {
        let Reverse((_, _, index)) = self.heads.peek()?;
        self.lists[*index].entries.front().copied()
    }

    pub(crate) fn pop(&mut self) -> Option<(u64, u64, Key)> {
        let mut top = self.heads.peek_mut()?;
        let Reverse((_, _, index)) = *top;
        let list = &mut self.lists[index];
        let entry = list.entries.pop_front();
        match list.entries.front() {
            // The list's next timer replaces its head in place (one sift-down, no pop + push).
            Some(&(due, seq, _)) => *top = Reverse((due, seq, index)),
            None => {
                PeekMut::pop(top);
                self.release(index);
            }
        }
        self.len -= entry.is_some() as usize;
        entry
    }

    fn release(&mut self, index: usize) {
        let delay = self.lists[index].delay;
        self.by_delay.remove(&delay);
        self.free.push(index);
        if self.last == Some(index) {
            self.last = None;
        }
    }

    /// Entries held, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Drops stale entries, so a timer refreshed in a tight loop cannot grow the queue without
    /// bound.
    pub(crate) fn compact(&mut self, is_live: impl Fn(u64, Key) -> bool) {
        self.heads.clear();
        self.len = 0;
        for index in 0..self.lists.len() {
            let list = &mut self.lists[index];
            if list.entries.is_empty() {
                continue;
            }
            list.entries.retain(|&(_, seq, key)| is_live(seq, key));
            match list.entries.front() {
                Some(&(due, seq, _)) => {
                    self.len += list.entries.len();
                    self.heads.push(Reverse((due, seq, index)));
                }
                None => self.release(index),
            }
        }
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
