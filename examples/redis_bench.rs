//! GET/SET throughput of the Redis client with auto-pipelining: `--chains N` independent
//! request chains (each issues its next command from the previous one's callback, like
//! N users of a web app), so every loop turn writes the commands of all chains that were
//! answered in one buffer. Prints ops/s per command.
//!
//! Run: `cargo run --release --example redis_bench -- --port 6379 --chains 800 --ops 1000000`
//! (docs/benchmarks.md "Redis client" compares it with redis-benchmark and ioredis).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use oneloop::redis::{Redis, RedisOptions, SetOptions};
use oneloop::runtime::Loop;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One chain: `left` commands, one at a time.
fn chain(lp: &mut Loop, redis: Redis, get: bool, left: Rc<Cell<u64>>, done: Rc<dyn Fn(&mut Loop)>) {
    if left.get() == 0 {
        return done(lp);
    }
    left.set(left.get() - 1);
    let r = redis.clone();
    if get {
        redis.get(lp, "key:bench", move |lp, res| {
            res.expect("GET");
            chain(lp, r, get, left, done);
        });
    } else {
        redis.set(
            lp,
            "key:bench",
            "xxx",
            SetOptions::default(),
            move |lp, res| {
                res.expect("SET");
                chain(lp, r, get, left, done);
            },
        );
    }
}

fn run(lp: &mut Loop, redis: &Redis, get: bool, chains: u64, ops: u64) -> f64 {
    let started = Rc::new(Cell::new(None::<Instant>));
    let finished = Rc::new(Cell::new(None::<Instant>));
    let running = Rc::new(Cell::new(chains));
    let f = Rc::clone(&finished);
    let done: Rc<dyn Fn(&mut Loop)> = Rc::new(move |_lp: &mut Loop| {
        running.set(running.get() - 1);
        if running.get() == 0 {
            f.set(Some(Instant::now()));
        }
    });
    let (r, s) = (redis.clone(), Rc::clone(&started));
    redis.cmd(lp, &["PING"], move |lp, res| {
        res.expect("PING");
        s.set(Some(Instant::now()));
        for _ in 0..chains {
            let left = Rc::new(Cell::new(ops / chains));
            chain(lp, r.clone(), get, left, Rc::clone(&done));
        }
    });
    while finished.get().is_none() {
        lp.run_once().expect("loop");
    }
    let secs = (finished.get().expect("finished") - started.get().expect("started")).as_secs_f64();
    (ops / chains * chains) as f64 / secs
}

fn main() {
    let port = arg("--port", 6379);
    let chains = arg("--chains", 800);
    let ops = arg("--ops", 1_000_000);
    let mut lp = Loop::new().expect("loop");
    let url = format!("redis://127.0.0.1:{port}");
    let redis = Redis::connect(&mut lp, &url, RedisOptions::default()).expect("url");
    let set = run(&mut lp, &redis, false, chains, ops);
    let get = run(&mut lp, &redis, true, chains, ops);
    let stats = redis.stats();
    println!(
        "oneloop redis: SET {set:.0} ops/s, GET {get:.0} ops/s ({chains} chains, {} commands in {} writes)",
        stats.commands, stats.writes
    );
    redis.disconnect(&mut lp);
}
