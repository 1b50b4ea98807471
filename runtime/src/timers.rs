//! The timer queue, as Node's `lib/internal/timers.js` keeps it: one FIFO list per delay
//! (`TimersList`) under a priority queue of lists keyed by `(expiry, list id)`.
//!
//! `seq` comes from a per-loop counter bumped every time a timer is (re)armed; an entry whose
//! `seq` no longer matches its timer's is stale (cleared, refreshed, or running) and is skipped
//! where it surfaces, so clearing or refreshing never searches a list.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::hash_map::Entry;
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

/// Integers skip the `f64` round trip: below 1 or above 2^31-1 is 1 ms, as `coerce_ms` says.
macro_rules! int_delay {
    ($($t:ty),*) => {$(
        impl TimerDelay for $t {
            #[inline]
            fn to_delay_ms(self) -> u64 {
                if self < 1 || self as i128 > TIMEOUT_MAX_MS as i128 {
                    1
                } else {
                    self as u64
                }
            }
        }
    )*};
}
int_delay!(i32, i64, u32, u64, usize);

/// A timer's callback. A one-shot timer from `set_timeout` keeps its `FnOnce` as is: wrapping
/// it in an `Option` to fit an `FnMut` box would give a non-capturing closure a size, and so an
/// allocation on every `set_timeout`.
pub(crate) enum TimerCallback {
    /// `set_timeout`: runs once; the timer's slot is freed when it fires.
    Once(Box<dyn FnOnce(&mut Loop)>),
    /// `set_interval`, and `set_timeout_mut` (a one-shot that can run again after a refresh).
    Mut(Box<dyn FnMut(&mut Loop)>),
}

/// Which API armed a timer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TimerKind {
    /// `set_timeout`: an `FnOnce` that cannot run again, so the timer is never re-armed once
    /// its callback started.
    Once,
    /// `set_timeout_mut`: a one-shot that a refresh re-arms, even after it fired.
    Refreshable,
    /// `set_interval`: re-armed after every callback.
    Interval,
}

/// One timer's slot.
///
/// # States
/// - **armed** (`armed`): it has a live entry in its delay's list; counted in the loop's refs
///   if `refed`.
/// - **running** (neither `armed` nor `fired`, `callback` taken out): its callback runs; still
///   counted if `refed`, as in Node until `listOnTimeout` destroys it after the callback.
/// - **fired** (`fired`): a `set_timeout_mut` one-shot whose callback ran and did not re-arm
///   it (Node's `_destroyed` timer). It keeps its slot and callback until `clear_timeout`, so
///   `refresh_timer` re-arms it (and counts it as ref'd again), and `has_ref`/`ref_`/`unref`
///   change only its flag. Never counted in the loop's refs, never in a list.
///
/// A `set_timeout` (`TimerKind::Once`) timer never reaches **fired**: its `FnOnce` is spent, so its slot
/// is freed (generation bumped: its id turns stale) right after the callback returns. While it
/// runs it is valid as in Node (`has_ref`, `unref`, `clear_timeout` of itself), except that
/// `refresh_timer` cannot re-arm it.
pub(crate) struct Timer {
    /// `None` only while the callback is running (it is taken out and put back).
    pub(crate) callback: Option<TimerCallback>,
    /// Matches the `seq` of the timer's live list entry (the entry also holds the due time,
    /// which the timer itself never reads, so it is not stored twice).
    pub(crate) seq: u64,
    /// Milliseconds, already coerced into `1..=TIMEOUT_MAX_MS` (so it fits 31 bits). A `u32`
    /// keeps `Timer` at 48 bytes with `created_at`: a slab slot is 56 bytes (at most 64).
    pub(crate) delay: u32,
    pub(crate) kind: TimerKind,
    pub(crate) refed: bool,
    /// Whether the timer has a live entry in its list (false while its callback runs, until a
    /// refresh or an interval's re-arm puts it back).
    pub(crate) armed: bool,
    /// A fired `set_timeout_mut` one-shot (see the states above): not armed, not counted.
    pub(crate) fired: bool,
    /// Where the timer was created, for "why is the loop alive" reports.
    pub(crate) created_at: &'static std::panic::Location<'static>,
}

impl Timer {
    /// Coerced delays fit a `u32`; anything larger is clamped (it cannot happen).
    pub(crate) fn delay_from(ms: u64) -> u32 {
        u32::try_from(ms.min(TIMEOUT_MAX_MS)).unwrap_or(u32::MAX)
    }
}

/// One FIFO list per distinct delay, as Node's `TimersList`: timers are appended when armed,
/// so a list holds them in arming order (not necessarily in `due` order: an interval re-armed
/// after its callback lands behind a timer its callback armed, as in Node).
///
/// `expiry` and `id` are the list's place in the queue, exactly as Node keeps them: set when
/// the list is created (`expiry` = its first timer's due time, `id` from a per-loop counter),
/// *not* touched when a timer is appended, and renewed (new `id` too) only when the timers phase
/// finds the list's head not yet due. Lists due at the same millisecond run in `id` order.
struct TimerList {
    delay: u64,
    entries: VecDeque<(u64, u64, Key)>,
    expiry: u64,
    id: u64,
    /// Armed timers in `entries` (the rest are stale: cleared, refreshed or running).
    live: usize,
    /// Emptied by a clear while the timers phase runs it: the next timer with this delay gets a
    /// new list, and this one leaves the queue when the phase is done with it.
    dead: bool,
}

/// The `id` of a list slot that is free: no heap entry carries it, so every entry that still
/// points at the slot is stale.
const NO_LIST: u64 = u64::MAX;

/// The timer queue, Node's `lib/internal/timers.js` structure: per-delay FIFO lists plus a
/// priority queue of the lists keyed by `(expiry, id)`.
///
/// Arming is an append to its list (plus a heap push when the list is new): O(1) for a delay
/// already in use, the common server case (one idle timeout per connection). The timers phase
/// ([`Loop::run_timers`](crate::Loop)) runs every due timer of the first list before it moves to
/// the next list, as Node's `listOnTimeout` does.
///
/// Clearing or re-arming a timer does not search its list: the old entry stays behind and is
/// skipped wherever it surfaces, because its `seq` no longer matches the timer's. A skipped
/// entry is never a list's head for scheduling purposes, so a cleared timer can never delay
/// another, as in Node where it is unlinked at once.
///
/// A list emptied by a clear leaves the queue at once (Node's `unenroll` removes it from the
/// priority queue): its slot is freed and its heap entry turns stale (the slot's `id` no longer
/// matches), to be dropped where it surfaces or when stale entries outnumber the live ones.
///
/// # Bounds
/// `lists` holds at most one slot per delay in use plus the one the timers phase runs; `heads`
/// at most twice the lists in the queue plus 64 (stale entries), so a program that arms and
/// clears a long timer per request, one request after another, holds O(1) memory and
/// allocates nothing in steady state (`tests::arm_and_clear_in_turn_keeps_one_list`).
#[derive(Default)]
pub(crate) struct TimerHeap {
    heads: BinaryHeap<Reverse<(u64, u64, usize)>>,
    /// Entries of `heads` whose list was freed by a clear (stale, not yet dropped).
    stale_heads: usize,
    lists: Vec<TimerList>,
    /// Indices of `lists` that left the queue and may be reused.
    free: Vec<usize>,
    /// The list the timers phase is running (from [`TimerHeap::expired_list`]).
    running: Option<usize>,
    /// Delay -> index of its list, for lists that are in the queue and not dead.
    by_delay: HashMap<u64, usize>,
    /// The list the last `arm` used (a cache in front of `by_delay`).
    last: Option<usize>,
    len: usize,
    next_seq: u64,
    next_list_id: u64,
}

impl TimerHeap {
    /// Arms `timer` (stored under `key`) to fire at `now + timer.delay`; bumps the timer's `seq`,
    /// so any older entry for it is now stale. The caller has made that older entry stale in
    /// the books already ([`TimerHeap::forget`]).
    #[inline]
    pub(crate) fn arm(&mut self, key: Key, timer: &mut Timer, now: u64) {
        let due = now.saturating_add(u64::from(timer.delay));
        timer.seq = self.next_seq;
        self.next_seq += 1;
        let entry = (due, timer.seq, key);
        let index = self.list_for(u64::from(timer.delay), due);
        let list = &mut self.lists[index];
        list.entries.push_back(entry);
        list.live += 1;
        self.len += 1;
    }

    /// Takes a timer out of the books: `armed` if it has an entry in a list (that entry turns
    /// stale); `cleared` if this is `clear_timeout` (Node's `unenroll`), which drops the list of
    /// its delay when that list is left with no armed timer. A timer about to run or be re-armed
    /// leaves its list in place, as Node's `L.remove` does.
    pub(crate) fn forget(&mut self, timer: &Timer, armed: bool, cleared: bool) {
        let delay = u64::from(timer.delay);
        let index = match self.last {
            Some(i) if self.lists[i].delay == delay && !self.lists[i].dead => Some(i),
            _ => self.by_delay.get(&delay).copied(),
        };
        if let Some(index) = index {
            let list = &mut self.lists[index];
            if armed {
                list.live = list.live.saturating_sub(1);
            }
            if cleared && list.live == 0 {
                self.by_delay.remove(&list.delay);
                if self.last == Some(index) {
                    self.last = None;
                }
                list.dead = true;
                if self.running != Some(index) {
                    // Out of the queue now: the slot is free, its heap entry stale.
                    self.len -= list.entries.len();
                    list.entries.clear();
                    list.id = NO_LIST;
                    self.free.push(index);
                    self.stale_heads += 1;
                    self.drop_stale_heads_if_many();
                }
            }
        }
    }

    /// Rebuilds `heads` without its stale entries once they outnumber the live ones (and 64):
    /// amortized O(1) per clear.
    fn drop_stale_heads_if_many(&mut self) {
        if self.stale_heads > 64 && self.stale_heads * 2 > self.heads.len() {
            let lists = &self.lists;
            self.heads
                .retain(|&Reverse((_, id, index))| lists[index].id == id);
            self.stale_heads = 0;
        }
    }

    /// The list for `delay` (created with expiry `due` if there is none): the list the last arm
    /// used, checked inline, else [`TimerHeap::find_or_add_list`].
    #[inline]
    fn list_for(&mut self, delay: u64, due: u64) -> usize {
        if let Some(i) = self.last {
            if self.lists[i].delay == delay && !self.lists[i].dead {
                return i;
            }
        }
        self.find_or_add_list(delay, due)
    }

    #[inline(never)]
    fn find_or_add_list(&mut self, delay: u64, due: u64) -> usize {
        let i = match self.by_delay.entry(delay) {
            Entry::Occupied(list) => *list.get(),
            Entry::Vacant(vacant) => {
                let id = self.next_list_id;
                self.next_list_id += 1;
                let fresh = TimerList {
                    delay,
                    entries: VecDeque::new(),
                    expiry: due,
                    id,
                    live: 0,
                    dead: false,
                };
                let i = match self.free.pop() {
                    Some(i) => {
                        let old = std::mem::replace(&mut self.lists[i], fresh);
                        // Keep the ring buffer's allocation.
                        let mut entries = old.entries;
                        entries.clear();
                        self.lists[i].entries = entries;
                        i
                    }
                    None => {
                        self.lists.push(fresh);
                        self.lists.len() - 1
                    }
                };
                self.heads.push(Reverse((due, id, i)));
                vacant.insert(i);
                i
            }
        };
        self.last = Some(i);
        i
    }

    /// When the first list in the queue expires (the poll timeout's deadline). May be early
    /// (a list whose timers were all cleared or refreshed): a spurious wake-up, never a late one.
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.heads.peek().map(|Reverse((expiry, _, _))| *expiry)
    }

    /// The first list in the queue if it has expired at `now`; the timers phase then runs it
    /// until it asks again (or calls [`TimerHeap::phase_done`]). Drops the stale entries it
    /// finds on top.
    pub(crate) fn expired_list(&mut self, now: u64) -> Option<usize> {
        loop {
            let &Reverse((expiry, id, index)) = self.heads.peek()?;
            if expiry > now {
                return None;
            }
            if self.lists[index].id == id {
                self.running = Some(index);
                return Some(index);
            }
            self.heads.pop();
            self.stale_heads -= 1;
        }
    }

    /// The timers phase is over: no list is running.
    pub(crate) fn phase_done(&mut self) {
        self.running = None;
    }

    /// Takes the first entry of list `index`, stale or not: the timers phase pops before it
    /// looks, so a list's ring buffer is indexed once per timer (a head found not due goes
    /// back with [`TimerHeap::unpop_front`]).
    #[inline]
    pub(crate) fn pop_front(&mut self, index: usize) -> Option<(u64, u64, Key)> {
        let entry = self.lists[index].entries.pop_front()?;
        self.len -= 1;
        Some(entry)
    }

    /// Puts back the head [`TimerHeap::pop_front`] took (it was not due yet).
    pub(crate) fn unpop_front(&mut self, index: usize, entry: (u64, u64, Key)) {
        self.lists[index].entries.push_front(entry);
        self.len += 1;
    }

    /// The timer of the entry just popped from list `index` is about to run: it leaves the
    /// list's live count ([`TimerHeap::forget`] of an armed timer, without looking its list up
    /// by delay: a live entry is always in its delay's current list).
    #[inline]
    pub(crate) fn popped_live(&mut self, index: usize) {
        let list = &mut self.lists[index];
        list.live = list.live.saturating_sub(1);
    }

    /// Node's "list wait": the head of the first list is not due at `now`; the list moves to
    /// `max(due, now + 1)` with a new id.
    pub(crate) fn reschedule_first(&mut self, due: u64, now: u64) {
        let id = self.next_list_id;
        self.next_list_id += 1;
        if let Some(mut top) = self.heads.peek_mut() {
            let Reverse((_, _, index)) = *top;
            let expiry = due.max(now + 1);
            self.lists[index].expiry = expiry;
            self.lists[index].id = id;
            *top = Reverse((expiry, id, index));
        }
    }

    /// The first list ran out of timers: it leaves the queue (Node's `timerListQueue.shift()`).
    pub(crate) fn remove_first(&mut self) {
        if let Some(top) = self.heads.peek_mut() {
            let Reverse((_, _, index)) = PeekMut::pop(top);
            let list = &mut self.lists[index];
            self.len -= list.entries.len();
            list.entries.clear();
            if !list.dead {
                self.by_delay.remove(&list.delay);
            }
            if self.last == Some(index) {
                self.last = None;
            }
            self.free.push(index);
        }
    }

    /// Entries held, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Drops stale entries, so a timer refreshed in a tight loop cannot grow a list without
    /// bound. Lists keep their place in the queue (an emptied list leaves it when it surfaces).
    /// Not called while the timers phase runs.
    pub(crate) fn compact(&mut self, is_live: impl Fn(u64, Key) -> bool) {
        self.len = 0;
        for list in &mut self.lists {
            list.entries.retain(|&(_, seq, key)| is_live(seq, key));
            self.len += list.entries.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, HandleError, LoopOptions};
    use std::cell::Cell;
    use std::rc::Rc;

    fn virtual_loop() -> Loop {
        Loop::with_options(LoopOptions {
            threadpool_size: 1,
            trace_to_stderr: false,
            clock: Clock::Virtual,
        })
        .expect("loop")
    }

    #[test]
    fn a_fired_refreshable_timer_keeps_its_slot_until_cleared_then_its_id_is_stale() {
        let mut lp = virtual_loop();
        let runs = Rc::new(Cell::new(0));
        let r = runs.clone();
        let t = lp.set_timeout_mut(5, move |_| r.set(r.get() + 1));
        lp.run().unwrap();
        assert_eq!(runs.get(), 1);
        assert_eq!(lp.timers.len(), 1, "fired, kept for a refresh");
        assert_eq!(lp.refs, 0, "a fired timer does not keep the loop alive");
        assert!(!lp.timer_is_active(t));
        assert!(lp.active_handles().is_empty());
        assert_eq!(lp.has_ref(t), Ok(true));

        lp.refresh_timer(t).unwrap();
        assert_eq!(lp.refs, 1, "refreshed: counted again");
        lp.run().unwrap();
        assert_eq!(runs.get(), 2, "the same callback ran again");

        lp.clear_timeout(t).unwrap();
        assert_eq!(lp.timers.len(), 0, "clear frees the slot");
        assert_eq!(lp.refresh_timer(t), Err(HandleError::Stale));
        // The slot is reused with a new generation: the old id never reaches the new timer.
        let new_runs = Rc::new(Cell::new(0));
        let n = new_runs.clone();
        let u = lp.set_timeout(5, move |_| n.set(n.get() + 1));
        assert_eq!(u.0.index, t.0.index, "slot reused");
        assert_eq!(lp.clear_timeout(t), Err(HandleError::Stale));
        assert_eq!(lp.has_ref(t), Err(HandleError::Stale));
        assert_eq!(lp.unref(t), Err(HandleError::Stale));
        lp.run().unwrap();
        assert_eq!((runs.get(), new_runs.get()), (2, 1));
    }

    #[test]
    fn an_unrefd_fired_timer_refreshed_does_not_keep_the_loop_alive() {
        let mut lp = virtual_loop();
        let runs = Rc::new(Cell::new(0));
        let r = runs.clone();
        let t = lp.set_timeout_mut(5, move |_| r.set(r.get() + 1));
        lp.run().unwrap();
        lp.unref(t).unwrap();
        assert_eq!(lp.refs, 0);
        assert_eq!(lp.has_ref(t), Ok(false));
        lp.refresh_timer(t).unwrap();
        assert_eq!(lp.refs, 0);
        lp.run().unwrap();
        assert_eq!(
            runs.get(),
            1,
            "nothing ref'd: the loop ended before it was due"
        );
        lp.ref_(t).unwrap();
        assert_eq!(lp.refs, 1, "ref'd while armed: counted");
        lp.run().unwrap();
        assert_eq!(runs.get(), 2);
        assert_eq!(lp.refs, 0);
    }

    #[test]
    fn a_set_timeout_timer_is_valid_in_its_own_callback_and_stale_after_it() {
        let mut lp = virtual_loop();
        type Seen = (Result<bool, HandleError>, Result<(), HandleError>);
        let seen: Rc<Cell<Option<Seen>>> = Rc::default();
        let me: Rc<Cell<Option<crate::TimerId>>> = Rc::default();
        let (s, m) = (seen.clone(), me.clone());
        let t = lp.set_timeout(5, move |lp| {
            let id = m.get().unwrap();
            s.set(Some((lp.has_ref(id), lp.refresh_timer(id))));
        });
        me.set(Some(t));
        lp.run().unwrap();
        // Its `FnOnce` is spent: a refresh cannot re-arm it (use `set_timeout_mut`).
        assert_eq!(seen.get(), Some((Ok(true), Err(HandleError::Stale))));
        assert_eq!(lp.timers.len(), 0, "freed after its callback");
        assert_eq!(lp.has_ref(t), Err(HandleError::Stale));
        assert_eq!(lp.refs, 0);
    }

    #[test]
    fn arm_and_clear_in_turn_keeps_one_list() {
        let mut lp = virtual_loop();
        for _ in 0..100_000 {
            let t = lp.set_timeout(30_000, |_| {});
            lp.clear_timeout(t).unwrap();
        }
        let heap = &lp.timer_heap;
        assert!(heap.lists.len() <= 1, "lists: {}", heap.lists.len());
        assert!(heap.heads.len() <= 66, "heads: {}", heap.heads.len());
        // Arm and clear timers of many delays: the lists come and go, the queue stays bounded.
        for i in 0..10_000u64 {
            let t = lp.set_timeout(1_000 + i, |_| {});
            lp.clear_timeout(t).unwrap();
        }
        assert!(lp.timer_heap.lists.len() <= 1);
        assert!(lp.timer_heap.heads.len() <= 66);
        // Still a working queue.
        let fired = Rc::new(Cell::new(0));
        let f = fired.clone();
        lp.set_timeout(10, move |_| f.set(f.get() + 1));
        lp.run().unwrap();
        assert_eq!(fired.get(), 1);
    }

    /// The memory bound: one-shots that fire never accumulate (their slots are reused), and
    /// refreshable ones hold a slot only until cleared.
    #[test]
    fn a_million_fired_one_shots_leave_no_slot_behind() {
        let mut lp = virtual_loop();
        let fired = Rc::new(Cell::new(0u32));
        for round in 0..100 {
            for _ in 0..10_000 {
                let f = fired.clone();
                lp.set_timeout(1 + round % 3, move |_| f.set(f.get() + 1));
            }
            lp.run().unwrap();
            assert_eq!(lp.timers.len(), 0);
        }
        assert_eq!(fired.get(), 1_000_000);
        let ids: Vec<_> = (0..1000).map(|_| lp.set_timeout_mut(1, |_| {})).collect();
        lp.run().unwrap();
        assert_eq!(lp.timers.len(), 1000, "fired, held until cleared");
        for id in ids {
            lp.clear_timeout(id).unwrap();
        }
        assert_eq!(lp.timers.len(), 0);
    }

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
