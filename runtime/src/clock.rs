//! The loop's clock: real (monotonic, `Instant`) or virtual (moved only by the loop and by
//! [`Loop::advance`](crate::Loop::advance)).
//!
//! A virtual clock makes timer-heavy code deterministic and instant: when the loop would block
//! in poll and nothing but timers can wake it, time jumps straight to the next deadline instead
//! of waiting for it ([`virtual_wait`]). The rest of the loop does not know which clock it has:
//! `update_time` and `hrtime` read one or the other behind a single branch.

use std::time::Duration;

/// Nanoseconds on `CLOCK_MONOTONIC`, the clock [`std::time::Instant`] reads, straight from the
/// vDSO through `rustix` (no `unsafe` here). The loop reads it on every timer arm, as Node's
/// `setTimeout` does (`getLibuvNow()` calls `uv_update_time`), so it is the cheapest form of
/// that read: `Instant::elapsed().as_millis()` adds a `Timespec` subtraction with its
/// checks and a 128-bit conversion, ~70 instructions more per read (docs/benchmarks.md, "Issue
/// #23: timers").
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // A monotonic clock is never negative; seconds since boot fit a u64 of nanoseconds for
    // 584 years.
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// Which clock a loop reads (see [`LoopOptions::clock`](crate::LoopOptions::clock)).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Clock {
    /// The monotonic clock: timers wait for real time to pass.
    #[default]
    Real,
    /// A manual clock that starts at 0. It moves when the loop would block with only timers left
    /// (it jumps to the nearest deadline), while the loop waits for real I/O (by the time
    /// waited), and on [`Loop::advance`](crate::Loop::advance). Thread-pool work takes no
    /// virtual time: the loop blocks for the pool without moving the clock.
    Virtual,
}

/// What the poll phase of a virtual-clock loop does instead of waiting `timeout`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct VirtualWait {
    /// The timeout to give the real poller.
    pub(crate) real_timeout: Option<Duration>,
    /// Virtual time to add after the poll, whatever happened.
    pub(crate) jump: Duration,
    /// Whether to add the real time the poll waited (capped at `timeout`), too.
    pub(crate) follow_real: bool,
}

/// How a virtual-clock loop waits, given the timeout a real loop would use.
///
/// - Zero stays zero.
/// - With I/O sources (sockets, servers, signal watchers) the loop really waits, and virtual time
///   follows the real time waited: only the outside world can say when data arrives.
/// - With thread-pool work pending (and no I/O), the loop blocks until a job completes and
///   virtual time stands still: work takes no virtual time, so its completion always lands
///   before any timer that is not already due.
/// - Otherwise only timers can wake the loop: time jumps to the nearest one and poll does not
///   block.
pub(crate) fn virtual_wait(
    timeout: Option<Duration>,
    has_io_sources: bool,
    has_pending_work: bool,
) -> VirtualWait {
    let stay = |real_timeout| VirtualWait {
        real_timeout,
        jump: Duration::ZERO,
        follow_real: false,
    };
    match timeout {
        Some(d) if d.is_zero() => stay(Some(Duration::ZERO)),
        _ if has_io_sources => VirtualWait {
            follow_real: true,
            ..stay(timeout)
        },
        _ if has_pending_work => stay(None),
        Some(d) => VirtualWait {
            jump: d,
            ..stay(Some(Duration::ZERO))
        },
        // Alive with nothing that can ever wake it: do not hang the test.
        None => stay(Some(Duration::ZERO)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn only_timers_left_jumps_to_the_deadline_without_blocking() {
        let w = virtual_wait(Some(10 * MS), false, false);
        assert_eq!(w.real_timeout, Some(Duration::ZERO));
        assert_eq!(w.jump, 10 * MS);
        assert!(!w.follow_real);
    }

    #[test]
    fn pending_work_blocks_for_the_pool_and_freezes_time() {
        let w = virtual_wait(Some(10 * MS), false, true);
        assert_eq!(w.real_timeout, None);
        assert_eq!(w.jump, Duration::ZERO);
    }

    #[test]
    fn io_sources_wait_for_real_and_time_follows() {
        let w = virtual_wait(Some(10 * MS), true, true);
        assert_eq!(w.real_timeout, Some(10 * MS));
        assert!(w.follow_real);
    }

    #[test]
    fn zero_timeout_never_moves_time() {
        let w = virtual_wait(Some(Duration::ZERO), false, false);
        assert_eq!(w.jump, Duration::ZERO);
        assert_eq!(w.real_timeout, Some(Duration::ZERO));
    }
}
