//! Async handle and channel benchmarks: `cargo bench -p oneloop-runtime --bench async_handle`.
//!
//! Each pair runs the same work two ways, so the ratio comes from one run:
//! - **round trip**: the bench thread sends a number to a loop running on another thread and
//!   waits for the loop's reply on a `std::sync::mpsc` channel. oneloop: `Loop::channel`.
//!   Baseline: a bare mio `Poll` whose thread drains a `std::sync::mpsc` receiver after each
//!   `Waker` event (the hand-written pattern the channel replaces).
//! - **throughput**: the bench thread sends 100,000 numbers and waits for one reply after the
//!   last. oneloop: `Loop::channel` (coalesced wakes). Baseline: `mpsc::send` + `Waker::wake`
//!   per message. Also the raw async handle: 100,000 `send`s then waiting for a callback that
//!   saw the last one.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use mio::{Events, Poll, Token, Waker};
use oneloop_runtime::{Loop, Sender};

const BURST: u64 = 100_000;

/// A loop on its own thread with a channel that replies `n` on `reply` when it gets `n` and
/// `n % every == every - 1` (every = 1: each message).
fn oneloop_echo(every: u64) -> (Sender<u64>, mpsc::Receiver<u64>, thread::JoinHandle<()>) {
    let (reply_tx, reply_rx) = mpsc::channel();
    let (setup_tx, setup_rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let (tx, _id) = lp.channel(move |_lp, n: u64| {
            if n % every == every - 1 {
                let _ = reply_tx.send(n);
            }
        });
        setup_tx.send(tx).unwrap();
        lp.run().unwrap(); // until the bench drops its sender
    });
    (setup_rx.recv().unwrap(), reply_rx, t)
}

/// The baseline: a bare mio poll loop draining a std channel after each waker event.
struct MioEcho {
    tx: Option<mpsc::Sender<u64>>,
    waker: Arc<Waker>,
    thread: Option<thread::JoinHandle<()>>,
}

impl MioEcho {
    fn start(every: u64) -> (MioEcho, mpsc::Receiver<u64>) {
        let (reply_tx, reply_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel::<u64>();
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        let t = thread::spawn(move || {
            let mut events = Events::with_capacity(64);
            loop {
                poll.poll(&mut events, None).unwrap();
                loop {
                    match rx.try_recv() {
                        Ok(n) => {
                            if n % every == every - 1 {
                                let _ = reply_tx.send(n);
                            }
                        }
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => return,
                    }
                }
            }
        });
        let echo = MioEcho {
            tx: Some(tx),
            waker,
            thread: Some(t),
        };
        (echo, reply_rx)
    }

    fn send(&self, n: u64) {
        self.tx.as_ref().unwrap().send(n).unwrap();
        self.waker.wake().unwrap();
    }
}

impl Drop for MioEcho {
    fn drop(&mut self) {
        self.tx = None;
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bench(c: &mut Criterion) {
    c.bench_function("round trip: oneloop channel", |b| {
        let (tx, replies, t) = oneloop_echo(1);
        let mut n = 0;
        b.iter(|| {
            tx.send(n).unwrap();
            assert_eq!(replies.recv().unwrap(), n);
            n += 1;
        });
        drop(tx);
        t.join().unwrap();
    });
    c.bench_function("round trip: mpsc + mio waker", |b| {
        let (echo, replies) = MioEcho::start(1);
        let mut n = 0;
        b.iter(|| {
            echo.send(n);
            assert_eq!(replies.recv().unwrap(), n);
            n += 1;
        });
    });
    c.bench_function("throughput 100k: oneloop channel", |b| {
        let (tx, replies, t) = oneloop_echo(BURST);
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for n in 0..BURST {
                    tx.send(n).unwrap();
                }
                replies.recv().unwrap();
            }
            start.elapsed()
        });
        drop(tx);
        t.join().unwrap();
    });
    c.bench_function("throughput 100k: mpsc + mio waker per send", |b| {
        let (echo, replies) = MioEcho::start(BURST);
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for n in 0..BURST {
                    echo.send(n);
                }
                replies.recv().unwrap();
            }
            start.elapsed()
        });
    });
    c.bench_function("throughput 100k: raw async handle sends", |b| {
        let (reply_tx, replies) = mpsc::channel();
        let (setup_tx, setup_rx) = mpsc::channel();
        let target = Arc::new(AtomicU64::new(u64::MAX));
        let sent = Arc::new(AtomicU64::new(0));
        let (tg, st) = (Arc::clone(&target), Arc::clone(&sent));
        let t = thread::spawn(move || {
            let mut lp = Loop::new().unwrap();
            // Replies once per burst: the callback that sees the burst's last send.
            let h = lp.async_handle(move |_lp| {
                let target = tg.load(Ordering::Acquire);
                if st.load(Ordering::Acquire) == target
                    && tg
                        .compare_exchange(target, u64::MAX, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    let _ = reply_tx.send(());
                }
            });
            setup_tx.send(h).unwrap();
            lp.run().unwrap();
        });
        let h = setup_rx.recv().unwrap();
        let mut total = 0u64;
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                target.store(total + BURST, Ordering::Release);
                for _ in 0..BURST {
                    total += 1;
                    sent.store(total, Ordering::Release);
                    h.send().unwrap();
                }
                replies.recv().unwrap();
            }
            start.elapsed()
        });
        // The handle stays open (ref'd), so its loop thread stays parked in poll, detached; it
        // ends with the process.
        drop(h);
        drop(t);
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
