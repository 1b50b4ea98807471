//! Steady-state async sends and channel messages allocate nothing: neither the sending side nor
//! the loop's side (the ready list and the channel's queue are swapped with spares that keep
//! their capacity). A counting global allocator (its own test binary) counts this thread's
//! allocations; the sends come from the loop's own thread so every allocation is seen.

mod alloc_counter;

use std::cell::Cell;
use std::rc::Rc;

use oneloop_runtime::Loop;

const ROUNDS: usize = 1000;
const PER_ROUND: u64 = 64;

#[test]
fn steady_state_async_sends_and_channel_messages_allocate_nothing() {
    let mut lp = Loop::new().unwrap();
    let calls = Rc::new(Cell::new(0u64));
    let c = Rc::clone(&calls);
    let handle = lp.async_handle(move |_| c.set(c.get() + 1));
    let got = Rc::new(Cell::new(0u64));
    let g = Rc::clone(&got);
    let (tx, channel) = lp.channel(move |_lp, n: u64| g.set(g.get() + n));
    let round = |lp: &mut Loop| {
        for n in 0..PER_ROUND {
            handle.send().unwrap();
            tx.send(n).unwrap();
        }
        lp.run_once().unwrap();
    };
    for _ in 0..10 {
        round(&mut lp); // warm-up: the lists and queues reach their working capacity
    }
    alloc_counter::count_this_thread(true);
    let before = alloc_counter::allocations();
    for _ in 0..ROUNDS {
        round(&mut lp);
    }
    let allocated = alloc_counter::allocations() - before;
    alloc_counter::count_this_thread(false);
    assert_eq!(calls.get(), 10 + ROUNDS as u64, "one callback per round");
    let per_round: u64 = (0..PER_ROUND).sum();
    assert_eq!(got.get(), (10 + ROUNDS as u64) * per_round, "every message");
    assert_eq!(
        allocated, 0,
        "{ROUNDS} rounds of {PER_ROUND} sends + messages allocated {allocated} times"
    );
    lp.async_close(handle.id(), |_| {}).unwrap();
    lp.async_close(channel, |_| {}).unwrap();
    lp.run().unwrap();
}
