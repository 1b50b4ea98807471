//! `oneloop-ws-load`: a WebSocket load client on oneloop's own loop (one thread).
//!
//! `cargo run --release --bin oneloop-ws-load -- echo -c 64 -p 8 -s 32 ws://127.0.0.1:3000/echo`
//! `cargo run --release --bin oneloop-ws-load -- fanout -c 1000 ws://127.0.0.1:3000/bench`
//! (see `--help`, and `oneloop::load::ws` for what every number means).
use std::process::ExitCode;

use oneloop::load::ws::{self, WsCommand};

fn main() -> ExitCode {
    let command = match ws::parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("oneloop-ws-load: {e}");
            return ExitCode::from(2);
        }
    };
    let (config, json) = match command {
        WsCommand::Help => {
            println!("{}", ws::USAGE);
            return ExitCode::SUCCESS;
        }
        WsCommand::Run { config, json } => (config, json),
    };
    let report = match ws::run(*config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("oneloop-ws-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.human());
    }
    match &report.failure {
        Some(f) => {
            eprintln!("oneloop-ws-load: {f}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}
