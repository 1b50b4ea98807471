//! Async handles and typed channels: sends from real threads into a loop.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use oneloop_runtime::{AsyncClosed, AsyncId, CallbackKind, Loop, SendError, TraceEvent};

const THREADS: usize = 4;
const PER_THREAD: u32 = 100_000;

/// An unref'd timer that ends a hung test with a clear failure instead of hanging forever
/// (the assertions, not this timer, decide what passes).
fn watchdog(lp: &mut Loop, what: &'static str) -> Rc<Cell<bool>> {
    let fired = Rc::new(Cell::new(false));
    let f = Rc::clone(&fired);
    let t = lp.set_timeout(60_000, move |lp| {
        f.set(true);
        lp.stop();
        eprintln!("watchdog: {what} did not finish in 60 s");
    });
    lp.unref(t).unwrap();
    fired
}

#[test]
fn channel_delivers_4_threads_x_100k_messages_exactly_once_in_order_per_sender() {
    let mut lp = Loop::new().unwrap();
    let next = Rc::new(RefCell::new(vec![0u32; THREADS]));
    let out_of_order = Rc::new(Cell::new(0u64));
    let (n, o) = (Rc::clone(&next), Rc::clone(&out_of_order));
    let (tx, _id) = lp.channel(move |_lp, (thread, seq): (usize, u32)| {
        let mut next = n.borrow_mut();
        if next[thread] != seq {
            o.set(o.get() + 1);
        }
        next[thread] = seq + 1;
    });
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let tx = tx.clone();
            thread::spawn(move || {
                for seq in 0..PER_THREAD {
                    tx.send((t, seq)).expect("channel open");
                }
            })
        })
        .collect();
    drop(tx); // the channel closes itself once the threads' senders are gone
    let hung = watchdog(&mut lp, "the channel");
    lp.run().unwrap();
    for s in senders {
        s.join().unwrap();
    }
    assert!(!hung.get());
    assert_eq!(
        *next.borrow(),
        vec![PER_THREAD; THREADS],
        "every message once"
    );
    assert_eq!(out_of_order.get(), 0, "per-sender order");
}

#[test]
fn async_sends_before_the_loop_runs_coalesce_into_one_callback() {
    let mut lp = Loop::new().unwrap();
    let calls = Rc::new(Cell::new(0u32));
    let c = Rc::clone(&calls);
    let handle = lp.async_handle(move |_| c.set(c.get() + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let h = handle.clone();
            thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    h.send().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    lp.run_once().unwrap();
    assert_eq!(
        calls.get(),
        1,
        "400k sends before the loop ran: one callback"
    );
    // A send after the callback causes exactly one more.
    handle.send().unwrap();
    handle.send().unwrap();
    lp.run_once().unwrap();
    assert_eq!(calls.get(), 2);
    lp.async_close(handle.id(), |_| {}).unwrap();
    lp.run().unwrap();
}

#[test]
fn async_sends_while_the_loop_runs_are_never_lost_the_last_is_followed_by_a_callback() {
    let mut lp = Loop::new().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let total = THREADS as u64 * u64::from(PER_THREAD);
    let calls = Rc::new(Cell::new(0u64));
    let (c, s) = (Rc::clone(&calls), Arc::clone(&sent));
    // Each sender counts, then sends; a callback that runs after the last send sees the full
    // count. If the last send were lost, no callback would see it and the loop would not end.
    let handle = lp.async_handle(move |lp| {
        c.set(c.get() + 1);
        if s.load(Ordering::SeqCst) == total {
            lp.stop();
        }
    });
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (h, sent) = (handle.clone(), Arc::clone(&sent));
            thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    sent.fetch_add(1, Ordering::SeqCst);
                    h.send().unwrap();
                }
            })
        })
        .collect();
    let hung = watchdog(&mut lp, "the last send's callback");
    lp.run().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert!(!hung.get(), "the last send was not followed by a callback");
    assert!(
        calls.get() >= 1 && calls.get() <= total,
        "calls: {}",
        calls.get()
    );
    lp.async_close(handle.id(), |_| {}).unwrap();
    lp.run().unwrap();
}

#[test]
fn a_refd_async_handle_keeps_run_from_returning_until_it_is_closed() {
    let mut lp = Loop::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = Rc::clone(&order);
    let me: Rc<Cell<Option<AsyncId>>> = Rc::default();
    let m = Rc::clone(&me);
    let handle = lp.async_handle(move |lp| {
        o.borrow_mut().push("callback");
        assert_eq!(lp.active_handles()[0].kind, "async");
        let o = Rc::clone(&o);
        lp.async_close(m.get().unwrap(), move |_| o.borrow_mut().push("close"))
            .unwrap();
    });
    me.set(Some(handle.id()));
    let remote = handle.clone();
    // Sent from a thread a little later: if the ref'd handle did not hold `run`, it would
    // have returned before this arrived and the callback would never run.
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        remote.send().unwrap();
    });
    lp.run().unwrap();
    t.join().unwrap();
    assert_eq!(*order.borrow(), ["callback", "close"]);
    assert_eq!(handle.send(), Err(AsyncClosed), "send after close");
    assert!(handle.is_closed());
}

#[test]
fn an_unrefd_async_handle_lets_run_return_while_it_is_open() {
    let mut lp = Loop::new().unwrap();
    let handle = lp.async_handle(|_| {});
    assert!(lp.is_alive());
    assert_eq!(lp.active_handles()[0].kind, "async");
    lp.unref(handle.id()).unwrap();
    assert!(!lp.has_ref(handle.id()).unwrap());
    assert!(!lp.is_alive());
    lp.run().unwrap(); // returns at once
    assert!(lp.async_is_open(handle.id()));
    assert!(handle.send().is_ok(), "still open after run returned");
    lp.ref_(handle.id()).unwrap();
    assert!(lp.is_alive());
    lp.async_close(handle.id(), |_| {}).unwrap();
    lp.run().unwrap();
    assert!(!lp.is_alive());
}

#[test]
fn channel_send_after_close_returns_the_message_and_after_the_loop_drops_too() {
    let mut lp = Loop::new().unwrap();
    let (tx, id) = lp.channel(|_lp, _msg: String| {});
    assert_eq!(lp.active_handles()[0].kind, "channel");
    lp.async_close(id, |_| {}).unwrap();
    assert_eq!(tx.send("late".into()), Err(SendError("late".to_string())));
    assert_eq!(
        lp.async_close(id, |_| {}),
        Err(oneloop_runtime::HandleError::Stale)
    );
    lp.run().unwrap();

    let mut lp = Loop::new().unwrap();
    let (tx, _id) = lp.channel(|_lp, _msg: u8| {});
    let handle = lp.async_handle(|_| {});
    drop(lp);
    assert_eq!(tx.send(7), Err(SendError(7)));
    assert_eq!(handle.send(), Err(AsyncClosed));
}

#[test]
fn channel_messages_run_in_poll_as_async_callbacks_with_ticks_drained_after_each() {
    let mut lp = Loop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let kinds = Rc::new(RefCell::new(Vec::new()));
    let k = Rc::clone(&kinds);
    lp.set_trace(Some(Box::new(move |ev: &TraceEvent| {
        if let TraceEvent::Callback { kind, phase, .. } = ev {
            k.borrow_mut().push((*phase, *kind));
        }
    })));
    let l = Rc::clone(&log);
    let (tx, _id) = lp.channel(move |lp, n: u32| {
        l.borrow_mut().push(format!("msg {n}"));
        let l = Rc::clone(&l);
        lp.next_tick(move |_| l.borrow_mut().push(format!("tick {n}")));
    });
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    lp.run().unwrap();
    assert_eq!(*log.borrow(), ["msg 1", "tick 1", "msg 2", "tick 2"]);
    let poll: Vec<_> = kinds
        .borrow()
        .iter()
        .filter(|(phase, _)| *phase == oneloop_runtime::Phase::Poll)
        .map(|(_, kind)| *kind)
        .collect();
    use CallbackKind::{Async, NextTick};
    assert_eq!(poll, [Async, NextTick, Async, NextTick]);
}

#[test]
fn a_channel_closed_by_its_own_callback_delivers_nothing_more() {
    let mut lp = Loop::new().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = Rc::clone(&got);
    let me: Rc<Cell<Option<AsyncId>>> = Rc::default();
    let m = Rc::clone(&me);
    let (tx, id) = lp.channel(move |lp, n: u32| {
        g.borrow_mut().push(n);
        if n == 2 {
            lp.async_close(m.get().unwrap(), |_| {}).unwrap();
        }
    });
    me.set(Some(id));
    for n in 1..=4 {
        tx.send(n).unwrap();
    }
    lp.run().unwrap();
    assert_eq!(*got.borrow(), [1, 2]);
    assert!(tx.send(5).is_err());
}

#[test]
fn a_send_from_another_thread_while_the_callback_runs_causes_one_more_callback() {
    let mut lp = Loop::new().unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
    let calls = Rc::new(Cell::new(0u32));
    let me: Rc<Cell<Option<AsyncId>>> = Rc::default();
    let (c, m) = (Rc::clone(&calls), Rc::clone(&me));
    let handle = lp.async_handle(move |lp| {
        c.set(c.get() + 1);
        if c.get() == 1 {
            // The other thread sends while this callback is still running.
            go_tx.send(()).unwrap();
            sent_rx.recv().unwrap();
        } else {
            lp.async_close(m.get().unwrap(), |_| {}).unwrap();
        }
    });
    me.set(Some(handle.id()));
    let remote = handle.clone();
    let t = thread::spawn(move || {
        go_rx.recv().unwrap();
        remote.send().unwrap();
        sent_tx.send(()).unwrap();
    });
    handle.send().unwrap();
    let hung = watchdog(&mut lp, "the callback after a send during the callback");
    lp.run().unwrap();
    t.join().unwrap();
    assert!(!hung.get(), "the send made during the callback was lost");
    assert_eq!(calls.get(), 2);
}
