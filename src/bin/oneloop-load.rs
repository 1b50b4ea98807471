//! `oneloop-load`: an HTTP/1.1 load generator on oneloop's own loop.
//!
//! `cargo run --release --bin oneloop-load -- http://127.0.0.1:3000/plaintext -c 64 -d 5s`
//! (see docs/load.md, or `--help`).
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use oneloop::load::{self, Command, Progress, ProgressFn};

fn main() -> ExitCode {
    let command = match load::parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("oneloop-load: {e}");
            return ExitCode::from(2);
        }
    };
    let (config, json) = match command {
        Command::Help => {
            println!("{}", load::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Run { config, json } => (config, json),
    };
    // The live line goes to stderr, and only when it is a terminal.
    let progress: Option<ProgressFn> = std::io::stderr().is_terminal().then(|| {
        Box::new(|p: &Progress| {
            let phase = if p.warming_up { " (warm-up)" } else { "" };
            eprint!(
                "\r\x1b[2K  {:5.1}s{phase}  {:>10.0} req/s  {:>10} requests  {} errors",
                p.elapsed.as_secs_f64(),
                p.recent_rate,
                p.requests,
                p.errors
            );
            let _ = std::io::stderr().flush();
        }) as ProgressFn
    });
    let interactive = progress.is_some();
    let report = match load::run(*config, progress) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("oneloop-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    if interactive {
        eprint!("\r\x1b[2K");
    }
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.human());
    }
    ExitCode::SUCCESS
}
