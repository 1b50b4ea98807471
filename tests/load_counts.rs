//! oneloop-load's counting against a local server with known behaviour: a raw TCP server on a
//! oneloop `Loop` in a thread that answers `/ok` 200, `/err` 500, `/slow` 200 after 10 ms,
//! `/chunked` a chunked 200, `/close` 200 with `Connection: close`, closes the connection on
//! `/drop` and never answers `/hang`.

use std::cell::RefCell;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use oneloop::load::{self, parse_args, Command, LoadConfig, Report};
use oneloop::runtime::{ListenOptions, Loop, TcpId};
use oneloop::threaded::{self, ThreadedConfig};

fn respond(lp: &mut Loop, id: TcpId, path: &str) {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    match path {
        "/ok" => {
            let _ = lp.tcp_write(id, ok);
        }
        "/err" => {
            let _ = lp.tcp_write(
                id,
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nerr",
            );
        }
        "/slow" => {
            lp.set_timeout(10u64, move |lp| {
                let _ = lp.tcp_write(id, ok);
            });
        }
        "/chunked" => {
            let _ = lp.tcp_write(
                id,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n",
            );
        }
        "/close" => {
            let _ = lp.tcp_write(
                id,
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            );
            let _ = lp.tcp_end(id);
        }
        "/drop" => {
            let _ = lp.tcp_destroy(id);
        }
        "/hang" => {}
        _ => {
            let _ = lp.tcp_write(id, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

/// The known server, started once per test binary.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lp = Loop::new().unwrap();
            let sid = lp
                .tcp_listen(
                    "127.0.0.1:0".parse().unwrap(),
                    ListenOptions::default(),
                    |lp, id| {
                        let buf = Rc::new(RefCell::new(Vec::<u8>::new()));
                        let _ = lp.tcp_on_data(id, move |lp, id, data| {
                            let mut b = buf.borrow_mut();
                            b.extend_from_slice(data);
                            while let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head: Vec<u8> = b.drain(..end + 4).collect();
                                let line = String::from_utf8_lossy(&head);
                                let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                                respond(lp, id, &path);
                                if !lp.tcp_is_open(id) {
                                    break;
                                }
                            }
                        });
                    },
                )
                .unwrap();
            tx.send(lp.tcp_server_addr(sid).unwrap()).unwrap();
            lp.run().unwrap();
        });
        rx.recv().unwrap()
    })
}

fn config(path: &str) -> LoadConfig {
    let mut c = LoadConfig::new(&format!("http://{}{path}", server())).unwrap();
    c.connections = 2;
    c.duration = Duration::from_secs(10);
    c
}

fn run(c: LoadConfig) -> Report {
    load::run(c, None).expect("run")
}

#[test]
fn load_counts_exactly_the_requests_asked_for() {
    let mut c = config("/ok");
    c.connections = 4;
    c.requests = Some(2000);
    let r = run(c);
    assert_eq!(r.requests, 2000);
    assert_eq!(r.statuses.get(&200), Some(&2000));
    assert_eq!(r.non_2xx, 0);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert_eq!(r.connects, 4);
    assert_eq!(r.latency.len(), 2000);
    assert_eq!(r.bytes, 2000 * 40);
}

#[test]
fn load_counts_pipelined_requests() {
    let mut c = config("/ok");
    c.pipeline = 16;
    c.requests = Some(5000);
    let r = run(c);
    assert_eq!(r.requests, 5000);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
}

#[test]
fn load_counts_non_2xx_responses_by_status() {
    let mut c = config("/err");
    c.requests = Some(500);
    let r = run(c);
    assert_eq!(r.requests, 500);
    assert_eq!(r.non_2xx, 500);
    assert_eq!(r.statuses.get(&500), Some(&500));
    assert_eq!(r.errors.total(), 0);
}

#[test]
fn load_frames_chunked_and_connection_close_responses() {
    let mut c = config("/chunked");
    c.requests = Some(300);
    let r = run(c);
    assert_eq!((r.requests, r.errors.total()), (300, 0));

    let mut c = config("/close");
    c.requests = Some(50);
    let r = run(c);
    assert_eq!(r.requests, 50);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert!(r.connects >= 49, "a connection per request: {}", r.connects);
}

#[test]
fn load_measures_latency_percentiles_of_a_slow_route() {
    let mut c = config("/slow");
    c.duration = Duration::from_millis(500);
    let r = run(c);
    let p50 = r.percentile_ns(50.0);
    assert!(p50 >= 10_000_000, "p50 {p50} ns below the 10 ms sleep");
    assert!(p50 < 60_000_000, "p50 {p50} ns");
    assert!(r.percentile_ns(99.0) >= p50);
    // Two connections, one request each per ~10 ms, for 0.5 s.
    assert!((30..=110).contains(&r.requests), "{} requests", r.requests);
    let secs = r.elapsed.as_secs_f64();
    assert!((0.45..1.0).contains(&secs), "elapsed {secs}");
}

#[test]
fn load_counts_requests_lost_to_a_dropped_connection() {
    let mut c = config("/drop");
    c.connections = 1;
    c.duration = Duration::from_millis(300);
    let r = run(c);
    assert_eq!(r.requests, 0);
    assert!(r.errors.closed >= 3, "{:?}", r.errors);
    // Every loss is one request, and every drop is followed by a new connection.
    assert!(r.connects + 1 >= r.errors.closed, "{} connects", r.connects);
}

#[test]
fn load_times_out_requests_without_an_answer() {
    let mut c = config("/hang");
    c.timeout = Duration::from_millis(100);
    c.duration = Duration::from_millis(550);
    let r = run(c);
    assert_eq!(r.requests, 0);
    // Two connections, each timing out about every 100 ms and reconnecting.
    assert!((4..=12).contains(&r.errors.timeout), "{:?}", r.errors);
    assert_eq!(r.errors.closed, 0);
}

#[test]
fn load_counts_refused_connects() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = LoadConfig::new(&format!("http://127.0.0.1:{port}/")).unwrap();
    c.connections = 2;
    c.duration = Duration::from_millis(200);
    let r = run(c);
    assert_eq!(r.requests, 0);
    assert!(r.errors.connect >= 2, "{:?}", r.errors);
    // Reconnects are spaced out, not a busy loop.
    assert!(r.errors.connect < 100, "{:?}", r.errors);
}

#[test]
fn load_open_loop_sends_at_the_asked_rate() {
    let mut c = config("/ok");
    c.connections = 4;
    c.rate = Some(1000.0);
    c.duration = Duration::from_secs(1);
    let r = run(c);
    assert!(
        (850..=1150).contains(&r.requests),
        "{} requests",
        r.requests
    );
    assert_eq!(r.errors.total(), 0);
}

#[test]
fn load_open_loop_charges_the_wait_for_a_stalled_server() {
    // One connection, no pipelining, 10 ms per answer: at most 100 answers/s. Asking for 200/s
    // means every request is sent later than intended, and open-loop latency (from the
    // intended time) grows through the run; closed-loop latency stays at ~10 ms.
    let mut open = config("/slow");
    open.connections = 1;
    open.rate = Some(200.0);
    open.duration = Duration::from_secs(1);
    let open = run(open);
    let mut closed = config("/slow");
    closed.connections = 1;
    closed.duration = Duration::from_millis(500);
    let closed = run(closed);
    let (open_p99, closed_p99) = (open.percentile_ns(99.0), closed.percentile_ns(99.0));
    assert!(closed_p99 < 40_000_000, "closed-loop p99 {closed_p99}");
    assert!(
        open_p99 > 300_000_000,
        "open-loop p99 {open_p99} ns should include the backlog"
    );
}

#[test]
fn load_counts_only_after_the_warmup() {
    let mut c = config("/slow");
    c.warmup = Duration::from_millis(200);
    c.duration = Duration::from_millis(300);
    let r = run(c);
    let secs = r.elapsed.as_secs_f64();
    assert!((0.28..0.6).contains(&secs), "measured {secs}s");
    // ~2 connections x 30 answers in 300 ms, not the 50 of the whole 500 ms.
    assert!(r.requests <= 70, "{} requests", r.requests);
}

#[test]
fn load_holds_idle_connections_after_one_request_each() {
    let mut c = config("/ok");
    c.connections = 0;
    c.idle = 5;
    c.duration = Duration::from_millis(300);
    let r = run(c);
    let idle = r.idle.expect("idle report");
    assert_eq!(
        (idle.connected, idle.answered, idle.closed_by_server),
        (5, 5, 0)
    );
}

#[test]
fn load_idle_every_keeps_idle_connections_through_the_keep_alive_timeout() {
    // A server that closes keep-alive connections idle for 150 ms.
    let listening = threaded::create_server(
        ThreadedConfig {
            keep_alive_timeout: Duration::from_millis(150),
            ..ThreadedConfig::default()
        },
        |_req, res| res.end("ok"),
    )
    .listen("127.0.0.1:0")
    .unwrap();
    let idle_run = |every: Option<Duration>| {
        let mut c = LoadConfig::new(&format!("http://{}/", listening.local_addr())).unwrap();
        c.connections = 0;
        c.idle = 3;
        c.idle_every = every;
        c.duration = Duration::from_millis(700);
        run(c).idle.expect("idle report")
    };
    // Silent: the server closes all three after its timeout.
    let silent = idle_run(None);
    assert_eq!((silent.answered, silent.repeats), (3, 0));
    assert_eq!(silent.closed_by_server, 3);
    // Repeating every 50 ms: all three stay open, and repeat many times.
    let kept = idle_run(Some(Duration::from_millis(50)));
    assert_eq!((kept.answered, kept.closed_by_server), (3, 0));
    assert!(kept.repeats >= 3 * 5, "{} repeats", kept.repeats);
}

#[test]
fn load_slowloris_connections_are_closed_by_the_headers_timeout() {
    let listening = threaded::create_server(
        ThreadedConfig {
            headers_timeout: Duration::from_millis(200),
            ..ThreadedConfig::default()
        },
        |_req, res| res.end("ok"),
    )
    .listen("127.0.0.1:0")
    .unwrap();
    let mut c = LoadConfig::new(&format!("http://{}/", listening.local_addr())).unwrap();
    c.connections = 1;
    c.slowloris = 3;
    c.slowloris_interval = Duration::from_millis(20);
    c.duration = Duration::from_millis(800);
    let r = run(c);
    let slow = r.slowloris.expect("slowloris report");
    assert_eq!(slow.connected, 3);
    assert_eq!(slow.closed_by_server, 3);
    assert_eq!(slow.statuses.get(&408), Some(&3));
    assert!(
        slow.held_secs.iter().all(|&s| (0.15..0.7).contains(&s)),
        "{:?}",
        slow.held_secs
    );
    // The load connection was served all along.
    assert!(r.requests > 10);
    listening.close();
}

#[test]
fn load_report_has_json_and_human_forms() {
    let cmd = parse_args([
        format!("http://{}/err", server()),
        "-c".into(),
        "1".into(),
        "-n".into(),
        "20".into(),
    ])
    .unwrap();
    let Command::Run { config, .. } = cmd else {
        panic!("a run")
    };
    let r = run(*config);
    let j = r.to_json();
    assert_eq!(j["requests"], 20);
    assert_eq!(j["non_2xx"], 20);
    assert_eq!(j["statuses"]["500"], 20);
    assert_eq!(j["errors"]["total"], 0);
    assert!(j["latency_us"]["p99"].as_f64().unwrap() > 0.0);
    assert!(j["latency_us"]["p99_9"].is_number());
    let human = r.human();
    assert!(human.contains("Requests/sec:"), "{human}");
    assert!(human.contains("Non-2xx responses: 20"), "{human}");
}
