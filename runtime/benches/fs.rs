//! `fs::read_file` of a 4 KiB file: `taskset -c 0 cargo bench -p oneloop-runtime --bench fs`,
//! compared with `taskset -c 0 node benches/node/fs_bench.js` (Node's `fs.readFile`).
//!
//! Same method on both sides: a round reads the file `BATCH` times, either one read at a time
//! (each callback starts the next: the round trip loop → pool → loop) or with `IN_FLIGHT` reads
//! outstanding (the pool's throughput); the per-read time is the round time / `BATCH`, and each
//! case prints the median of `ROUNDS` rounds. Both sides use a pool of 4 threads (Node's
//! default `UV_THREADPOOL_SIZE`).
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use oneloop_runtime::{fs, Loop, LoopOptions};

const BATCH: u64 = 2_000;
const ROUNDS: usize = 15;
const IN_FLIGHT: u64 = 64;

/// Starts one read of `path`; when it completes, counts it and starts another while `left`
/// says more are wanted.
fn read_chain(lp: &mut Loop, path: Rc<std::path::Path>, left: Rc<Cell<u64>>) {
    if left.get() == 0 {
        return;
    }
    left.set(left.get() - 1);
    let p = Rc::clone(&path);
    fs::read_file(lp, &*path, move |lp, data| {
        assert_eq!(data.expect("read").len(), 4096);
        read_chain(lp, p, left);
    })
    .expect("read_file");
}

/// Nanoseconds per read for a round of `BATCH` reads, `chains` of them in flight at once.
fn round(lp: &mut Loop, path: &Rc<std::path::Path>, chains: u64) -> f64 {
    let left = Rc::new(Cell::new(BATCH));
    let start = Instant::now();
    for _ in 0..chains {
        read_chain(lp, Rc::clone(path), Rc::clone(&left));
    }
    lp.run().expect("run");
    start.elapsed().as_nanos() as f64 / BATCH as f64
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("oneloop-fs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("4k.bin");
    std::fs::write(&file, vec![b'x'; 4096]).expect("write the file");
    let path: Rc<std::path::Path> = Rc::from(file.as_path());
    let mut lp = Loop::with_options(LoopOptions {
        threadpool_size: 4,
        ..LoopOptions::default()
    })
    .expect("loop");
    for (name, chains) in [("sequential", 1), ("64 in flight", IN_FLIGHT)] {
        round(&mut lp, &path, chains); // warm-up: threads started, caches hot
        let runs: Vec<f64> = (0..ROUNDS).map(|_| round(&mut lp, &path, chains)).collect();
        println!(
            "oneloop fs::read_file 4 KiB, {name:<13} {:>8.0} ns/read (median of {ROUNDS} rounds of {BATCH})",
            median(runs)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
