//! Work on plain threads, results back on the loop: `cargo run --example worker_channel`.
//!
//! Four worker threads each sum a range of numbers and report progress and their result through
//! a typed channel (`Loop::channel`); the loop prints each message as it arrives and `run`
//! returns once every worker has finished (the channel closes itself when its last `Sender` is
//! dropped). A UDP socket on the same loop answers `sum?` with the running total:
//! `ONELOOP_UDP=1` keeps the loop alive for that (try `echo -n 'sum?' | nc -u -w1 127.0.0.1 PORT`).
use std::cell::Cell;
use std::rc::Rc;

use oneloop_runtime::{Loop, UdpOptions};

enum Msg {
    Progress { worker: usize, percent: u32 },
    Done { worker: usize, sum: u64 },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut lp = Loop::new()?;
    let total = Rc::new(Cell::new(0u64));
    let t = Rc::clone(&total);
    let (tx, _channel) = lp.channel(move |_lp, msg: Msg| match msg {
        Msg::Progress { worker, percent } => println!("worker {worker}: {percent}%"),
        Msg::Done { worker, sum } => {
            t.set(t.get() + sum);
            println!(
                "worker {worker}: done, sum {sum} (total so far {})",
                t.get()
            );
        }
    });
    for worker in 0..4 {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let (from, to) = (worker as u64 * 25_000_000, (worker as u64 + 1) * 25_000_000);
            let mut sum = 0u64;
            for (i, n) in (from..to).enumerate() {
                sum = sum.wrapping_add(n);
                if i % 12_500_000 == 12_499_999 {
                    let percent = ((i + 1) * 100 / 25_000_000) as u32;
                    let _ = tx.send(Msg::Progress { worker, percent });
                }
            }
            let _ = tx.send(Msg::Done { worker, sum });
        });
    }
    drop(tx); // the workers hold the only senders now

    let udp = lp.udp_bind("127.0.0.1:0".parse()?, UdpOptions::default())?;
    println!(
        "udp: ask 127.0.0.1:{} with 'sum?'",
        lp.udp_local_addr(udp)?.port()
    );
    lp.udp_on_message(udp, move |lp, data, peer| {
        if data == b"sum?" {
            let answer = format!("{}\n", total.get());
            lp.udp_send(udp, answer.as_bytes(), peer, |_, _| {}).ok();
        }
    })?;
    if std::env::var("ONELOOP_UDP").as_deref() != Ok("1") {
        lp.unref(udp)?; // the workers decide when we are done
    }
    lp.run()?;
    println!("all workers done");
    Ok(())
}
