//! Past one core and one process: SO_REUSEPORT workers, graceful shutdown on SIGTERM (in a
//! child process: the signal must not reach the test harness), load shedding, rate limiting.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use oneloop::app::overload::{rate_limit, under_pressure, PressureOptions, RateLimitOptions};
use oneloop::app::{App, InjectRequest};
use oneloop::cluster::{self, ClusterOptions};
use oneloop::http::{self, ServerConfig};
use oneloop::runtime::Loop;
use oneloop::shutdown::{graceful_shutdown, ShutdownOptions};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads one response (Content-Length framed) from `s`; returns (status, head, body).
fn read_response(s: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read head");
        assert!(
            n > 0,
            "connection closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("Content-Length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head[9..12].parse().unwrap(), head, body)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

#[test]
fn two_reuse_port_workers_both_serve_requests() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let ready_tx = std::sync::Mutex::new(ready_tx);
    std::thread::spawn(move || {
        let options = ClusterOptions {
            workers: 2,
            ..ClusterOptions::default()
        };
        cluster::run(options, move |lp, worker| {
            let mut config = ServerConfig::default();
            config.listen.reuse_port = true;
            let server = http::create_server_with(lp, config, move |_lp, _req, res| {
                res.end(worker.to_string());
            });
            server.listen(lp, addr, |_, _| {})?;
            // Bounded: each worker stops by itself.
            lp.set_timeout(10_000, |lp| lp.stop());
            ready_tx.lock().unwrap().send(()).unwrap();
            Ok(())
        })
        .unwrap();
    });
    for _ in 0..2 {
        ready_rx.recv_timeout(IO_TIMEOUT).unwrap();
    }
    let mut seen = [0usize; 2];
    for _ in 0..400 {
        let mut s = connect(addr);
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (status, _, body) = read_response(&mut s);
        assert_eq!(status, 200);
        let w: usize = String::from_utf8(body).unwrap().parse().unwrap();
        seen[w] += 1;
        if seen[0] > 0 && seen[1] > 0 {
            break;
        }
    }
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "both workers must serve: {seen:?}"
    );
}

/// The child side of `sigterm_drains_in_flight_requests_and_exits_0`.
fn run_shutdown_child() -> ! {
    let mut lp = Loop::new().unwrap();
    let server = http::create_server(&mut lp, |lp, req, res| {
        if req.path() == "/slow" {
            lp.set_timeout(400, move |_| res.end("slow done"));
        } else {
            res.end("fast");
        }
    });
    let addr = server.listen(&mut lp, "127.0.0.1:0", |_, _| {}).unwrap();
    let options = ShutdownOptions {
        deadline: Duration::from_secs(3),
        ..ShutdownOptions::default()
    };
    graceful_shutdown(&mut lp, vec![server], options, |_| {}).unwrap();
    println!("PORT={}", addr.port());
    std::io::stdout().flush().unwrap();
    lp.run().unwrap();
    std::process::exit(0);
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_0() {
    if std::env::var("ONELOOP_SHUTDOWN_CHILD").is_ok() {
        run_shutdown_child();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigterm_drains_in_flight_requests_and_exits_0",
            "--nocapture",
        ])
        .env("ONELOOP_SHUTDOWN_CHILD", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // libtest prints its own lines on stdout too: look for ours.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let port: u16 = loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "child exited early"
        );
        // libtest may have printed `test <name> ... ` without a newline just before ours.
        if let Some(at) = line.find("PORT=") {
            let digits: String = line[at + 5..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            break digits.parse().unwrap();
        }
    };
    // Keep draining the child's stdout so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // An idle keep-alive client and a request in flight.
    let mut idle = connect(addr);
    idle.write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle).0, 200);
    let mut busy = connect(addr);
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let started = Instant::now();
    let rc = kill(child.id() as i32, libc::SIGTERM);
    assert_eq!(rc, 0);

    // The idle connection is closed at once (EOF, no reset).
    let mut rest = Vec::new();
    let n = idle
        .read_to_end(&mut rest)
        .expect("idle connection closes cleanly");
    assert_eq!(n, 0);
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "idle closed promptly"
    );

    // The in-flight request completes, told the connection will close.
    let (status, head, body) = read_response(&mut busy);
    assert_eq!(status, 200);
    assert_eq!(body, b"slow done");
    assert!(head.contains("Connection: close"), "{head}");

    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "exited before the deadline"
    );
}

/// Sends `sig` to our own child `pid`.
fn kill(pid: i32, sig: i32) -> i32 {
    // The root crate forbids unsafe code; signal-hook's safe wrapper cannot target another
    // process, so use the `kill` command instead.
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    if status.success() {
        0
    } else {
        -1
    }
}

#[test]
fn a_blocked_loop_sheds_load_with_503_and_recovers() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut app = App::new();
        let shed = under_pressure(PressureOptions {
            max_event_loop_delay_ms: Some(50),
            max_utilization: None,
            sample_interval_ms: 10,
            retry_after_secs: 2,
        });
        app.use_(move |req, res, next| shed(req, res, next));
        app.get("/block", |_req, res| {
            std::thread::sleep(Duration::from_millis(250)); // blocks the loop on purpose
            res.send_text("blocked");
        });
        app.get("/ok", |_req, res| res.send_text("ok"));
        let mut lp = Loop::new().unwrap();
        let server = app
            .listen_on(&mut lp, "127.0.0.1:0", ServerConfig::default(), |_, _| {})
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        lp.set_timeout(10_000, |lp| lp.stop());
        lp.run().unwrap();
    });
    let addr = rx.recv_timeout(IO_TIMEOUT).unwrap();
    let get = |path: &str| {
        let mut s = connect(addr);
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        read_response(&mut s)
    };
    assert_eq!(get("/ok").0, 200); // arms the sampler
    std::thread::sleep(Duration::from_millis(50));
    // The block and the next request overlap: the next one is read after the loop was stuck.
    let addr2 = addr;
    let blocker = std::thread::spawn(move || {
        let mut s = connect(addr2);
        s.write_all(b"GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_response(&mut s).0
    });
    std::thread::sleep(Duration::from_millis(60));
    let (status, head, _) = get("/ok");
    assert_eq!(status, 503, "{head}");
    assert!(head.contains("retry-after: 2"), "{head}");
    assert_eq!(blocker.join().unwrap(), 200);
    // After a few clean samples the server serves again.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get("/ok").0, 200);
}

#[test]
fn rate_limit_answers_429_past_the_budget_and_recovers_after_the_window() {
    let mut app = App::new();
    let limiter = rate_limit(RateLimitOptions {
        limit: 3,
        window: Duration::from_millis(300),
        max_clients: 10,
    });
    app.use_(move |req, res, next| limiter(req, res, next));
    app.get("/", |_req, res| res.send_text("ok"));
    let mut lp = Loop::new().unwrap();
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = app.inject(&mut lp, InjectRequest::new("GET", "/")).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-limit"), Some("3"));
        remaining.push(r.header("ratelimit-remaining").unwrap().to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let r = app.inject(&mut lp, InjectRequest::new("GET", "/")).unwrap();
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    std::thread::sleep(Duration::from_millis(350));
    let r = app.inject(&mut lp, InjectRequest::new("GET", "/")).unwrap();
    assert_eq!(r.status, 200);
}

#[test]
fn no_worker_loop_starts_before_every_worker_finished_setup() {
    // Worker 1's setup is slow; worker 0's loop must not run (and so could not report
    // readiness from a listen callback) until worker 1's setup is done.
    let setup_done = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let loop_started = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (d, l) = (setup_done.clone(), loop_started.clone());
    let t0 = std::time::Instant::now();
    let options = ClusterOptions {
        workers: 2,
        ..ClusterOptions::default()
    };
    cluster::run(options, move |lp, worker| {
        if worker == 1 {
            std::thread::sleep(Duration::from_millis(300));
        }
        d.lock().unwrap().push((worker, t0.elapsed()));
        let l = l.clone();
        lp.next_tick(move |_lp| l.lock().unwrap().push((worker, t0.elapsed())));
        Ok(())
    })
    .unwrap();
    let setup_done = setup_done.lock().unwrap().clone();
    let loop_started = loop_started.lock().unwrap().clone();
    assert_eq!((setup_done.len(), loop_started.len()), (2, 2));
    let last_setup = setup_done.iter().map(|&(_, t)| t).max().unwrap();
    for &(worker, started) in &loop_started {
        assert!(
            started >= last_setup,
            "worker {worker}'s loop ran at {started:?}, before the last setup finished at {last_setup:?}"
        );
    }
}
